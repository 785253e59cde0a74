"""publish.pages and publish.render: what the model pages say."""

from __future__ import annotations

import pytest

from publishzoo import synthetic, with_metric
from quantzoo.publish import pages, render
from quantzoo.publish.site import project_root


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return synthetic(tmp_path_factory.mktemp("synth"))


def test_no_variant_meeting_the_threshold_makes_the_page_say_use_float(synth):
    _, built = synth
    bm = next(b for b in built if b.model.task == "classification")
    bm = with_metric(bm, {v.variant.id: 0.2 for v in bm.variants})
    page = render.model_page(render.environment(project_root() / "site_src" / "templates"), bm, None, "0")
    assert "use the float model" in page


def test_a_non_finite_metric_is_infinity_on_the_page(synth):
    _, built = synth
    bm = next(b for b in built if b.model.task == "dense")  # snr_db
    bm = with_metric(bm, {"fp16": float("inf")})
    ctx = pages.model_context(bm)
    assert ctx["variants"][0]["cells"][0]["text"] == "∞ dB"


def test_the_threshold_metric_is_the_first_column_and_named_for_people(synth):
    _, built = synth
    bm = next(b for b in built if b.model.task == "classification")
    ctx = pages.model_context(bm)
    assert ctx["columns"][0]["metric"] == "top1_agreement" and ctx["columns"][0]["label"] == "top-1 agreement"
    assert ctx["columns"][0]["title"].startswith("share of samples")


def test_cells_show_the_interval_and_n_and_the_page_states_the_conservative_rule(synth):
    _, built = synth
    bm = next(b for b in built if b.model.task == "classification")  # top1_agreement >= 0.99
    bm = with_metric(bm, {"fp16": 0.97}, {"fp16": [0.915481, 0.989745]})
    ctx = pages.model_context(bm)
    assert ctx["variants"][0]["cells"][0]["text"] == "97.00 % (91.55–98.97, n=100)"
    page = render.model_page(render.environment(project_root() / "site_src" / "templates"), bm, None, "0")
    assert "only when the lower end of its 95 % interval does" in page


def test_methodology_says_how_every_figure_is_computed(synth):
    reg, built = synth
    page = render.methodology_page(render.environment(project_root() / "site_src" / "templates"), built, reg, "0")
    for phrase in ("SNR and PSNR are pooled", "Wilson score interval", "percentile bootstrap",
                   "distinct photos", "the *lower* end of its 95 % interval", "### Recommended variant"):
        assert phrase in page
