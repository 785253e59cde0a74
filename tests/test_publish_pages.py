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


def test_the_graph_block_shows_the_inspect_summary_of_the_float_model(synth, tmp_path):
    import dataclasses

    from quantzoo.pipeline.graphinfo import graph_info
    from tinyzoo import classifier

    _, built = synth
    path = tmp_path / "tiny.onnx"
    classifier(path, seed=1)  # w1 64×64 is compressed, w2 64×10 is below min_elements
    bm = dataclasses.replace(next(b for b in built if b.model.task == "classification"), info=graph_info(path))
    ctx = pages.model_context(bm)
    assert ctx["graph"]["opsets"] == "ai.onnx 13" and ctx["graph"]["io"][0]["shape"] == "[N, 64]"
    assert ctx["graph"]["locations"][0]["where"] == "initializers"
    page = render.model_page(render.environment(project_root() / "site_src" / "templates"), bm, None, "0")
    for phrase in ('<h3 id="graph">Graph</h3>', "ONNX IR version 8, opsets ai.onnx 13",
                   "Quantization compresses <strong>1 tensor</strong> (4.1k elements, 16.4 kB)",
                   "leaves <strong>1 tensor</strong> alone", "<td>fewer than 2048 elements</td>", "<code>w2</code>"):
        assert phrase in page, phrase
    assert pages.model_context(built[0])["graph"] is None  # no summary (an older cache entry): no block


def test_the_runtime_table_shows_a_tick_with_the_difference_or_a_cross_with_the_reason(synth):
    import dataclasses

    _, built = synth
    bm = next(b for b in built if b.model.task == "classification")
    assert pages.model_context(bm)["runtimes"] is None  # nothing measured: no table
    ok = {"onnxruntime": {"runs": True, "max_abs_diff": None, "error": None},
          "openvino": {"runs": True, "max_abs_diff": 2.4e-07, "error": None}}
    bad = ok | {"openvino": {"runs": False, "max_abs_diff": None, "error": "float model does not run either"}}
    bm = dataclasses.replace(bm, float_runtimes=ok,
                             variants=[dataclasses.replace(bm.variants[0], runtimes=bad)] + bm.variants[1:])
    ctx = pages.model_context(bm)["runtimes"]
    assert ctx["columns"] == ["ONNX Runtime", "OpenVINO"]
    assert [c["text"] for c in ctx["rows"][0]["cells"]] == ["✓", "✓ 2.4e-07"]
    assert ctx["rows"][1]["cells"][1] == {"ok": False, "text": "✗ float model does not run either", "title": ""}
    assert ctx["rows"][2]["cells"][0]["text"] == "–"  # a variant without a matrix
    page = render.model_page(render.environment(project_root() / "site_src" / "templates"), bm, None, "0")
    assert '<table class="qz-table qz-runtimes">' in page and "✗ float model does not run either" in page


def test_a_model_with_a_custom_op_gets_a_custom_layers_section_with_its_source_and_snippet(synth, tmp_path):
    import dataclasses

    from quantzoo.publish import BuiltCustomOp
    from tinymodels import AFFINE_CODE

    _, built = synth
    code = tmp_path / "blob"
    code.write_text(AFFINE_CODE, encoding="utf-8")
    op = BuiltCustomOp("ai.test.tiny", "Affine", "affine_impl:Affine", "h times scale plus <shift>",
                       {"label": "tiny", "scale": 0.5}, 1, code, "ab" * 32, len(AFFINE_CODE))
    bm = dataclasses.replace(next(b for b in built if b.model.task == "classification"), custom_ops=(op,))
    [c] = pages.model_context(bm)["custom_ops"]
    assert (c["class_name"], c["attributes"], c["file"]) == ("Affine", [("label", '"tiny"'), ("scale", "0.5")],
                                                            "affine_impl.py")
    page = render.model_page(render.environment(project_root() / "site_src" / "templates"), bm, None, "0")
    section = page[page.index("## Custom layers"):page.index("## Use it")]
    assert "h times scale plus &lt;shift&gt;" in section  # escaped like every manifest string
    assert f'href="../files/{bm.model.id}/affine_impl.py" download' in section and "ab" * 32 in section
    assert "output_shapes" in section and 'class="language-python highlight"' in section  # the source, highlighted
    assert "session_options" in section and "affine_impl:Affine" in section  # the snippet registers it
    assert "plain onnxruntime" not in page[page.index("## Use it"):]


def test_a_reason_the_float_model_already_gives_is_said_once(synth):
    import dataclasses

    _, built = synth
    bm = next(b for b in built if b.model.task == "classification")
    custom = {"runs": False, "max_abs_diff": None, "error": "custom op d.Op has no implementation in OpenVINO"}
    ok = {"runs": True, "max_abs_diff": None, "error": None}
    bm = dataclasses.replace(bm, float_runtimes={"onnxruntime": ok, "openvino": custom},
                             variants=[dataclasses.replace(v, runtimes={"onnxruntime": ok, "openvino": custom})
                                       for v in bm.variants])
    rows = pages.model_context(bm)["runtimes"]["rows"]
    assert rows[0]["cells"][1]["text"] == "✗ custom op d.Op has no implementation in OpenVINO"
    assert {r["cells"][1]["text"] for r in rows[1:]} == {"✗ as the float model"}
    assert rows[1]["cells"][1]["title"] == custom["error"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    from publishzoo import catalog_zoo

    return catalog_zoo(tmp_path_factory.mktemp("catalog"), 24)


def test_the_catalog_offers_every_task_and_license_as_a_filter(catalog):
    from quantzoo.compare.tasks import TASKS

    _, built = catalog
    ctx = pages.catalog_context(built)
    assert ctx["n_models"] == 24 and [r["id"] for r in ctx["rows"]] == sorted(b.model.id for b in built)
    assert ctx["tasks"] == sorted(TASKS)  # 24 models cycle through every task
    assert ctx["licenses"] == ["Apache-2.0", "BSD-3-Clause", "CC-BY-4.0", "MIT"]
    assert [c["key"] for c in ctx["columns"]][:3] == ["model", "task", "float_size"]
    assert {c["key"]: c["type"] for c in ctx["columns"]}["agreement"] is None  # mixed metrics: not sortable


def test_a_catalog_row_gives_the_recommended_variant_its_agreement_with_n_and_interval(catalog):
    _, built = catalog
    bm = next(b for b in built if b.model.task == "classification")
    bm = with_metric(bm, {v.variant.id: 0.2 for v in bm.variants} | {"linear-8": 0.999},
                     {"linear-8": [0.994449, 0.999823]})
    row = pages.catalog_row(bm)
    rec = next(v for v in bm.variants if v.variant.id == "linear-8")
    assert row["recommended"] == "linear-8" and row["download_size"] == rec.size
    assert row["ratio_text"] == f"{rec.size / bm.float_size:.3f}×"
    assert (row["agreement_label"], row["agreement_value"], row["agreement_interval"]) == \
        ("top-1 agreement", "99.90 %", "(99.44–99.98, n=100)")
    assert row["threshold_text"] == "≥ 99.00 %"


def test_a_model_without_a_recommended_variant_is_listed_at_its_float_size(catalog):
    _, built = catalog
    bm = next(b for b in built if b.model.task == "classification")
    row = pages.catalog_row(with_metric(bm, {v.variant.id: 0.2 for v in bm.variants}))
    assert row["recommended"] is None and row["agreement_value"] is None
    assert row["download_size"] == bm.float_size  # what the size filter compares
    html = render.catalog_page(render.environment(project_root() / "site_src" / "templates"),
                               [with_metric(bm, {v.variant.id: 0.2 for v in bm.variants})], [], "0")
    assert '<tr class="qz-norec"' in html and "no variant meets ≥ 99.00 %" in html
    assert "none: use the float model" in html


def test_every_catalog_cell_is_labelled_for_the_phone_layout_and_the_page_is_deterministic(catalog):
    import re

    _, built = catalog
    env = render.environment(project_root() / "site_src" / "templates")
    html = render.catalog_page(env, built, [], "0")
    ctx = pages.catalog_context(built)
    rows = re.findall(r"<tr[^>]* data-task=.*</tr>", html)
    assert len(rows) == 24
    labels = [c["label"] for c in ctx["columns"]]
    for row in rows:
        assert re.findall(r'<td class="qz-c-[a-z_]+" data-label="([^"]+)"', row) == labels
        assert re.search(r'data-license="(Apache-2.0|MIT|BSD-3-Clause|CC-BY-4.0)"', row)
    # the filters are hidden until the script shows them: without JavaScript the page is the table
    assert '<div class="qz-filters" data-qz-table="catalog" hidden>' in html
    assert html.count('<option value="') == len(ctx["tasks"]) + len(ctx["licenses"]) + 2
    assert render.catalog_page(env, list(reversed(built)), [], "0") == html


def test_a_model_whose_variants_meet_the_threshold_only_on_the_value_says_the_evidence_is_short(catalog):
    _, built = catalog
    bm = next(b for b in built if b.model.task == "classification")
    # linear-8 measures 99.9 % but its interval reaches down to 95 %: too few samples to show ≥ 99 %
    bm = with_metric(bm, {v.variant.id: 0.2 for v in bm.variants} | {"linear-8": 0.999},
                     {"linear-8": [0.95, 1.0]})
    ctx = pages.model_context(bm)
    assert ctx["recommended"] is None and ctx["short_of_evidence"] == ["linear-8"]
    page = render.model_page(render.environment(project_root() / "site_src" / "templates"), bm, None, "0")
    assert "use the float model. linear-8 meets it on the measured value, but the evaluation set is too small" in page
    # with a variant that meets it across its interval, nothing is short of evidence
    ok = with_metric(bm, {v.variant.id: 0.2 for v in bm.variants} | {"linear-8": 0.999}, {"linear-8": [0.995, 1.0]})
    assert pages.model_context(ok)["short_of_evidence"] == []
