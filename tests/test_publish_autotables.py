"""publish.autotables: the model page's per-tensor table and bits picture of an auto variant."""

from __future__ import annotations

import dataclasses

import pytest

from auto_models import feeds, save
from publishzoo import synthetic
from quantzoo.compare import prepare
from quantzoo.publish import pages, render
from quantzoo.publish.autotables import auto_context
from quantzoo.publish.site import project_root
from quantzoo.quantize.allocate import auto_quantize
from quantzoo.quantize.variants import parse_variant


@pytest.fixture(scope="module")
def auto_bm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auto")
    _, built = synthetic(tmp)
    bm = next(b for b in built if b.model.task == "classification")
    src = save(tmp)
    cal = prepare(src, feeds(16), cache=False, batch_size=8)
    report, recipe, table = auto_quantize(src, tmp / "out.onnx", cal, {"output": "y", "metric": "snr_db", "min": 30.0},
                                          None, schemes=("fp16", "linear-8", "kmeans-4", "kmeans-2"),
                                          selector={"min_elements": 1024})
    auto = {"recipe": recipe.to_dict(), "sensitivity": table.to_dict(), "report": report.to_dict()}
    last = dataclasses.replace(bm.variants[0], variant=parse_variant("auto"), auto=auto)
    return dataclasses.replace(bm, variants=list(bm.variants) + [last]), recipe


def test_the_section_lists_every_tensor_with_its_sensitivity_and_choice(auto_bm):
    bm, recipe = auto_bm
    (block,) = auto_context(bm)
    assert [r["tensor"] for r in block["rows"]] == ["A", "B", "C"]
    assert block["schemes"] == ["fp16", "linear-8", "kmeans-4", "kmeans-2"]  # most bits first
    for r in block["rows"]:
        assert r["chosen"] == recipe.schemes[r["tensor"]]
        assert sum(c["chosen"] for c in r["cells"]) == (r["chosen"] != "float")
    assert block["svg"].startswith("<svg") and block["svg"].count("<rect") == 3
    assert "snr_db ≥ 30.0" in block["target_text"]


def test_the_model_page_shows_the_section_and_the_auto_row(auto_bm):
    bm, _ = auto_bm
    ctx = pages.model_context(bm)
    assert ctx["variants"][-1]["nbits"] == "mixed" and ctx["variants"][-1]["mode"] == "auto"
    page = render.model_page(render.environment(project_root() / "site_src" / "templates"), bm, None, "0")
    assert "## Automatic mixed precision" in page and 'id="auto-auto"' in page and 'class="qz-bits"' in page
    assert not auto_context(dataclasses.replace(bm, variants=bm.variants[:-1]))


def test_the_recipe_is_published_beside_the_artifact(auto_bm, tmp_path):
    from quantzoo.publish.autotables import write_recipe_file
    from quantzoo.quantize.recipe import read_recipe

    bm, recipe = auto_bm
    assert write_recipe_file(bm.model.id, bm.variants[-1], tmp_path) == 1
    assert read_recipe(tmp_path / f"{bm.model.id}-auto.recipe.json").schemes == recipe.schemes
    assert write_recipe_file(bm.model.id, bm.variants[0], tmp_path) == 0
