"""recipe: one scheme per tensor, recorded in the artifact, reproduced byte for byte."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from auto_models import WEIGHTS, feeds, save
from quantzoo.errors import QuantzooError
from quantzoo.quantize import decode, quantize_file
from quantzoo.quantize.modes import MODES, Layout
from quantzoo.quantize.recipe import Recipe, read_recipe, scheme_config, tensor_key, write_recipe

RECIPE = Recipe({"A": "kmeans-4-g8", "B": "linear-6", "C": "float"}, min_elements=1024)


def test_a_recipe_gives_each_tensor_its_scheme_and_keeps_float_ones(tmp_path):
    src = save(tmp_path)
    report = quantize_file(src, tmp_path / "a.onnx", recipe=RECIPE)
    rows = {r.name: r for r in report.tensors}
    assert set(rows) == {"A", "B"} and rows["A"].bits == 4 and rows["B"].bits == 6
    assert rows["A"].granularity == "per_grouped_channel"
    assert [s.reason for s in report.skipped if s.name == "C"] == ["kept in float by the recipe"]
    m = onnx.load(tmp_path / "a.onnx")
    meta = {p.key: p.value for p in m.metadata_props}
    assert json.loads(meta["quantzoo.recipe"]) == RECIPE.schemes and meta["quantzoo.mode"] == "auto"
    assert "C" in {i.name for i in m.graph.initializer}
    # the artifact computes with exactly the numpy decode of each scheme
    want = decode(MODES["kmeans_lut"].encode(WEIGHTS["A"], 4, Layout("per_grouped_channel", 1, 0, None, 8)))
    x = feeds(1)[0]["x"][None]
    got = ort.InferenceSession(str(tmp_path / "a.onnx")).run(None, {"x": x})[0]
    wb = decode(MODES["linear"].encode(WEIGHTS["B"], 6, Layout("per_channel", 1, 0)))
    ref = x @ want + np.float32(0.01) * (x @ wb + x @ WEIGHTS["C"])
    assert np.allclose(got, ref, atol=1e-5)


def test_the_recipe_file_reproduces_the_artifact_byte_for_byte(tmp_path):
    src = save(tmp_path)
    write_recipe(tmp_path / "r.json", RECIPE)
    quantize_file(src, tmp_path / "a.onnx", recipe=RECIPE)
    quantize_file(src, tmp_path / "b.onnx", recipe=read_recipe(tmp_path / "r.json"))
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    other = Recipe({**RECIPE.schemes, "C": "fp16"}, min_elements=1024)
    quantize_file(src, tmp_path / "c.onnx", recipe=other)
    assert (tmp_path / "c.onnx").read_bytes() != (tmp_path / "a.onnx").read_bytes()


def test_bad_recipes_say_what_is_wrong(tmp_path):
    src = save(tmp_path)
    with pytest.raises(QuantzooError, match="names tensors the selector does not choose: nope"):
        quantize_file(src, tmp_path / "x.onnx", recipe=Recipe({"nope": "fp16"}, min_elements=1024))
    with pytest.raises(QuantzooError, match="recipe scheme 'kmeans-9'"):
        scheme_config("kmeans-9")
    (tmp_path / "bad.json").write_text('{"kind": "other"}')
    with pytest.raises(QuantzooError, match="not a quantzoo recipe"):
        read_recipe(tmp_path / "bad.json")
    with pytest.raises(QuantzooError, match="no such recipe file"):
        read_recipe(tmp_path / "missing.json")
    assert not (tmp_path / "x.onnx").exists()


def test_recipe_json_round_trips_and_names_subgraph_tensors():
    r = Recipe({"b": "fp16", "a": "kmeans-2"}, target={"output": "y", "metric": "snr_db", "min": 30},
               measured={"passes": 3})
    assert Recipe.from_dict(json.loads(r.to_json())) == r
    assert r.to_json() == Recipe.from_dict(json.loads(r.to_json())).to_json()
    assert tensor_key("w", "If_0/then_branch") == "If_0/then_branch/w"
