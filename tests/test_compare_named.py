"""Named samples: the top label and probability of a classifier on photographs a manifest names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantzoo.compare import named
from quantzoo.compare.named import find_named, probabilities, top_label


def test_logits_become_a_softmax_and_probabilities_stay_as_they_are():
    p = probabilities(np.array([2.0, 0.0, -1.0], dtype=np.float32))
    assert abs(p.sum() - 1) < 1e-12 and p.argmax() == 0
    assert abs(p[0] - np.exp(2) / (np.exp(2) + 1 + np.exp(-1))) < 1e-12
    assert probabilities(np.array([0.1, 0.9])).tolist() == [0.1, 0.9]


def test_the_top_label_falls_back_to_the_class_index_without_names():
    assert top_label(np.array([0.0, 5.0]), None) == {"index": 1, "label": "1", "probability": 0.9933}
    assert top_label(np.array([0.2, 0.8]), ["no", "yes"])["label"] == "yes"


def test_named_samples_are_found_by_key_or_file_name_and_augmented_views_are_not_taken():
    keys = ["coffee.png#flip", "photos/coffee.png", "chelsea.png#rot+8", "chelsea.png"]
    assert find_named(keys, ["chelsea.png", "coffee.png", "astronaut.png"]) == [("chelsea.png", 3), ("coffee.png", 1)]


def test_the_page_table_marks_variants_whose_top_class_changed():
    from quantzoo.publish.data import BuiltModel, BuiltVariant
    from quantzoo.publish.pages import named_context
    from quantzoo.quantize.variants import parse_variant

    def pred(i, label, p):
        return {"index": i, "label": label, "probability": p}

    result = {"output": "logits", "samples": ["a.png", "b.png"],
              "models": {"float": {"a.png": pred(1, "cat", 0.9), "b.png": pred(2, "dog", 0.5)},
                         "kmeans-2": {"a.png": pred(1, "cat", 0.7), "b.png": pred(0, "fox", 0.4)}}}
    variant = BuiltVariant(parse_variant("kmeans-2"), Path("x.onnx"), "0" * 64, 10, {})
    bm = BuiltModel(model=None, float_path=Path("f.onnx"), float_sha256="1" * 64, float_size=20, info={},
                    variants=[variant], named=result)
    ctx = named_context(bm)
    assert ctx["samples"] == ["a.png", "b.png"]
    assert [r["id"] for r in ctx["rows"]] == ["float", "kmeans-2"]
    assert ctx["rows"][0]["cells"][0] == {"label": "cat", "probability": "90%", "changed": False}
    assert [c["changed"] for c in ctx["rows"][1]["cells"]] == [False, True]
    assert named_context(BuiltModel(model=None, float_path=Path("f"), float_sha256="", float_size=0, info={})) is None


@pytest.mark.slow
def test_efficientnet_lite0_names_coffee_espresso_and_a_second_call_runs_no_model(registry, catalog_model,
                                                                                  catalog_cache, monkeypatch):
    import onnxruntime

    m = registry.model("efficientnet-lite0")
    float_path = catalog_model("efficientnet-lite0")
    got = named.named_predictions(m, float_path, {"same-file": float_path}, registry, catalog_cache)
    assert got["samples"] == m.samples
    assert got["models"]["float"]["coffee.png"]["label"] == "espresso"
    assert got["models"]["float"]["coffee.png"]["probability"] > 0.9
    assert got["models"]["same-file"] == got["models"]["float"]

    def no_session(*a, **k):
        raise AssertionError("the cached result should be read, not recomputed")

    monkeypatch.setattr(onnxruntime, "InferenceSession", no_session)
    assert named.named_predictions(m, float_path, {"same-file": float_path}, registry, catalog_cache) == got
