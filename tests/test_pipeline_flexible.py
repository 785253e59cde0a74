"""pipeline.flexible: a manifest's `shapes` through build, index.json, the model page and pull."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from quantzoo.cli import main
from quantzoo.pipeline.flexible import batch_shapes, difference, measure, shape_failure
from tinyzoo import make_zoo


def _promise(zoo, mid, shapes):
    path = zoo / "models" / mid / "model.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["shapes"] = shapes
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _build(tmp_path, zoo, *extra):
    return main(["build", "--zoo", str(zoo), "--cache", str(tmp_path / "cache"), "--site-dir",
                 str(tmp_path / "site"), "--jobs", "1", *extra])


def test_a_model_with_shapes_is_verified_timed_published_and_pull_checks_the_shape(tmp_path, capfd):
    zoo = make_zoo(tmp_path / "zoo")
    _promise(zoo, "tiny-classifier", ["x=1..32,64"])
    assert _build(tmp_path, zoo, "tiny-classifier") == 0
    index = json.loads((tmp_path / "site" / "index.json").read_text())
    entry = next(m for m in index["models"] if m["id"] == "tiny-classifier")
    for v in [entry["float"], *entry["variants"]]:
        assert v["shapes"]["accepted"] == {"x": {"ranges": [[1, 32], [64, 64]], "original": [1, 64]}}
        assert [c["shape"] for c in v["shapes"]["verified"]] == ["1x64", "32x64"]
        assert all(c["runs"] for c in v["shapes"]["verified"])
        assert sorted(v["throughput"], key=int) == ["1", "8", "32"] and all(t > 0 for t in v["throughput"].values())
    fp16 = next(v for v in entry["variants"] if v["id"] == "fp16")
    assert fp16["shapes"]["verified"][1]["top1_agreement"] == 1.0
    assert entry["float"]["shapes"]["verified"][0]["top1_agreement"] is None
    page = (tmp_path / "site" / "models" / "tiny-classifier.html").read_text()
    assert "Shapes" in page and "qz-shapes" in page and "qz-throughput" in page and "x=1..32,64" in page

    catalog = str(tmp_path / "site")
    pull = ["pull", "tiny-classifier", "--variant", "fp16", "--catalog", catalog, "--cache", str(tmp_path / "cc"),
            "-o", str(tmp_path / "out")]
    capfd.readouterr()
    assert main([*pull, "--shape", "x=32x64"]) == 0
    assert main([*pull, "--shape", "x=64x64"]) == 1
    err = capfd.readouterr().err
    assert "not verified at x=64x64" in err and "1x64, 32x64" in err
    assert main(["info", "tiny-classifier", "--catalog", catalog]) == 0
    assert "x=1..32,64" in capfd.readouterr().out

    import quantzoo  # the Python client takes the same check

    sess = quantzoo.load("tiny-classifier", "fp16", catalog=catalog, cache=tmp_path / "cc", session=True,
                         shape="x=32x64")
    assert sess.run(None, {"x": np.zeros((32, 64), np.float32)})[0].shape == (32, 10)
    with pytest.raises(quantzoo.QuantzooError, match="not verified at x=64x64"):
        quantzoo.load("tiny-classifier", "fp16", catalog=catalog, cache=tmp_path / "cc", shape="x=64x64")


def test_a_float_model_that_cannot_be_made_flexible_fails_alone(tmp_path, capfd):
    zoo = make_zoo(tmp_path / "zoo")
    _promise(zoo, "tiny-classifier", ["x=1..32,32..128"])  # the MatMul weight fixes the width at 64
    assert _build(tmp_path, zoo) == 1
    out = capfd.readouterr()
    assert "tiny-classifier" in out.out + out.err and "w1" in out.out + out.err
    index = json.loads((tmp_path / "site" / "index.json").read_text())
    assert [m["id"] for m in index["models"]] == ["tiny-mapper"]
    assert all("shapes" not in v and "throughput" not in v for v in index["models"][0]["variants"])


def test_a_variant_that_does_not_run_at_a_promised_shape_fails_with_the_reason(tmp_path, capfd, monkeypatch):
    from quantzoo.pipeline import flexible

    real = flexible.measure

    def broken(path, float_path, custom_ops=None, **kw):
        doc = real(path, float_path, custom_ops, **kw)
        if path != float_path and "fp16" in open(str(path).replace(".onnx", ".json")).read():
            doc["verified"][1] |= {"runs": False, "error": "Invalid rank for input"}
        return doc

    monkeypatch.setattr(flexible, "measure", broken)
    zoo = make_zoo(tmp_path / "zoo")
    _promise(zoo, "tiny-classifier", ["x=1..32,64"])
    assert _build(tmp_path, zoo, "tiny-classifier") == 1
    assert "does not run at the promised shape 32x64: Invalid rank" in capfd.readouterr().err
    index = json.loads((tmp_path / "site" / "index.json").read_text())
    assert "fp16" not in [v["id"] for v in index["models"][0]["variants"]]
    monkeypatch.setattr(flexible, "measure", real)
    assert _build(tmp_path, zoo, "tiny-classifier") == 1  # from the cache: still failed, still said why
    assert "32x64" in capfd.readouterr().err


def test_measure_difference_and_batches(tmp_path):
    from quantzoo.shapes import make_flexible, parse_spec
    import onnx

    zoo = make_zoo(tmp_path / "zoo")
    flexible, _ = make_flexible(zoo / "files" / "tiny-classifier.onnx", ["x=2,64"])
    path = tmp_path / "f.onnx"
    onnx.save(flexible, path)
    doc = measure(path, path)
    assert doc["verified"] == [{"shape": "2x64", "runs": True, "max_abs_diff": None, "top1_agreement": None}]
    assert list(doc["throughput"]) == ["2"] and shape_failure(doc) is None
    assert difference([[1.0]], [[1.0, 2.0]]) == (None, None)
    assert batch_shapes({"x": parse_spec("x=1x64,8x64")}, {"x": [1, 64]}) == {1: {"x": [1, 64]}, 8: {"x": [8, 64]}}


def test_the_float_outputs_are_kept_once_and_a_variant_is_checked_against_them(tmp_path):
    from quantzoo.pipeline.flexible import float_outputs, save_outputs
    from quantzoo.shapes import make_flexible
    import onnx

    zoo = make_zoo(tmp_path / "zoo")
    flexible, _ = make_flexible(zoo / "files" / "tiny-classifier.onnx", ["x=1..4,64"])
    path = tmp_path / "f.onnx"
    onnx.save(flexible, path)
    kept: dict = {}
    measure(path, path, keep=kept)
    assert sorted(kept) == ["1x64", "4x64"] and kept["4x64"][0].shape == (4, 10)
    assert save_outputs(tmp_path / "o.npz", kept)
    reference = float_outputs(tmp_path / "o.npz")
    assert all(np.array_equal(a, b) for s in kept for a, b in zip(kept[s], reference[s]))
    # the same file "as a variant": against the kept outputs it agrees exactly ...
    same = measure(path, tmp_path / "missing.onnx", reference=reference)
    assert [r["max_abs_diff"] for r in same["verified"]] == [0.0, 0.0]
    # ... and against shifted ones it differs by the shift: the kept outputs are what it is checked against
    shifted = {s: [a + 0.5 for a in arrays] for s, arrays in reference.items()}
    assert [r["max_abs_diff"] for r in measure(path, tmp_path / "missing.onnx", reference=shifted)["verified"]] == [0.5, 0.5]
    assert float_outputs(tmp_path / "none.npz") is None


def test_a_wrong_shapes_entry_is_a_manifest_problem(tmp_path):
    from quantzoo.errors import ManifestError
    from quantzoo.registry import load_registry

    zoo = make_zoo(tmp_path / "zoo")
    _promise(zoo, "tiny-classifier", ["x=4..2,64"])
    with pytest.raises(ManifestError, match=r"shapes\[0\].*the range 4\.\.2 is empty"):
        load_registry(zoo)


def test_a_model_with_a_custom_layer_promises_a_batch_range_and_every_variant_is_checked(tmp_path):
    """Like stn-digits: the custom layer's class (the manifest's custom_ops) runs in the float
    model's flexible conversion and in every shape check."""
    from tinymodels import AFFINE_CODE, CUSTOM_OP, custom_op_model
    from tinyzoo import sha

    zoo = make_zoo(tmp_path / "zoo")
    onnx_path = custom_op_model(zoo / "files" / "tiny-custom.onnx")
    impl = zoo / "models" / "tiny-custom" / "affine_impl.py"
    impl.parent.mkdir(parents=True)
    impl.write_text(AFFINE_CODE)
    doc = yaml.safe_load((zoo / "models" / "tiny-classifier" / "model.yaml").read_text())
    doc.update(id="tiny-custom", name="Tiny custom", variants=["fp16", "linear-8"], shapes=["x=1..16,64"],
               source={"kind": "file", "path": "../../files/tiny-custom.onnx", "sha256": sha(onnx_path),
                       "size": onnx_path.stat().st_size},
               outputs=[{"name": "y", "dtype": "float32", "shape": ["N", 64]}],
               threshold={"output": "y", "metric": "top1_agreement", "min": 0.5},
               custom_ops={CUSTOM_OP: {"class": "affine_impl:Affine", "source": {
                   "kind": "file", "path": "affine_impl.py", "sha256": sha(impl), "size": impl.stat().st_size}}})
    (impl.parent / "model.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    assert _build(tmp_path, zoo, "tiny-custom") == 0
    entry = json.loads((tmp_path / "site" / "index.json").read_text())["models"][0]
    for v in [entry["float"], *entry["variants"]]:
        assert [(c["shape"], c["runs"]) for c in v["shapes"]["verified"]] == [("1x64", True), ("16x64", True)]
    for v in entry["variants"]:  # agreement on the evaluation vectors, at their own size: the comparison's
        assert v["shapes"]["verified"][1]["evaluation"]["metrics"]["y"]["top1_agreement"] == \
            v["metrics"]["y"]["top1_agreement"]
