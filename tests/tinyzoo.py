"""A tiny real zoo for pipeline and site tests: small ONNX models and .npy datasets made on the spot.

`make_zoo(root)` writes two models (a MatMul classifier and a conv net with a [N, 1, 16, 16] map
output), their float files and two bundled .npy datasets, all with real sha256 values, so the
registry, fetch, quantize, compare and publish stages run on them unchanged.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from quantzoo.cache import tree_listing, tree_sha256

VARIANTS = ["fp16", "linear-8", "kmeans-4"]


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def classifier(path: Path, seed: int) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((64, 64)).astype(np.float32) * 0.3
    w2 = rng.standard_normal((64, 10)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["logits"])], "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)


def mapper(path: Path, seed: int) -> None:
    """x [N, 3, 16, 16] → Conv 3×3 (96 channels, 2592 weights) → Relu → Conv 1×1 → Sigmoid: a map."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((96, 3, 3, 3)).astype(np.float32) * 0.2
    w2 = rng.standard_normal((1, 96, 1, 1)).astype(np.float32) * 0.2
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
         helper.make_node("Conv", ["r", "w2"], ["m"]), helper.make_node("Sigmoid", ["m"], ["map"])], "mapper",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("map", TensorProto.FLOAT, ["N", 1, 16, 16])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)


def dataset(zoo: Path, ds_id: str, shape: tuple, n: int, seed: int) -> None:
    import yaml

    folder = zoo / "data" / ds_id
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n):
        p = folder / f"s{i:02d}.npy"
        np.save(p, rng.standard_normal(shape).astype(np.float32))
        parts.append({"name": p.name, "source": {"kind": "file", "path": f"../data/{ds_id}/{p.name}",
                                                  "sha256": sha(p), "size": p.stat().st_size}})
    doc = {"id": ds_id, "description": f"{n} random arrays of shape {list(shape)}.",
           "license": {"spdx": "CC0-1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"},
           "source": {"kind": "bundle", "parts": parts, "sha256": tree_sha256(tree_listing(folder))},
           "adapter": "arrays"}
    (zoo / "datasets" / f"{ds_id}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def model(zoo: Path, mid: str, kind: str, *, variants=VARIANTS, source_sha256: str | None = None,
           description: str = "A tiny model made by the test.") -> Path:
    import yaml

    folder = zoo / "models" / mid
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = zoo / "files" / f"{mid}.onnx"
    onnx_path.parent.mkdir(exist_ok=True)
    is_classifier = kind == "classifier"
    (classifier if is_classifier else mapper)(onnx_path, seed=len(mid))
    doc = {
        "id": mid, "name": f"Tiny {kind} {mid}", "task": "classification" if is_classifier else "dense",
        "description": description,
        "license": {"spdx": "MIT", "url": "https://opensource.org/license/mit"}, "authors": ["the test"],
        "source": {"kind": "file", "path": f"../../files/{mid}.onnx", "sha256": source_sha256 or sha(onnx_path),
                   "size": onnx_path.stat().st_size},
        "inputs": [{"name": "x", "dtype": "float32", "shape": ["N", 64] if is_classifier else ["N", 3, 16, 16]}],
        "outputs": [{"name": "logits" if is_classifier else "map", "dtype": "float32",
                     "shape": ["N", 10] if is_classifier else ["N", 1, 16, 16]}],
        "preprocessing": {"adapter": "arrays"},
        "dataset": "vectors" if is_classifier else "volumes",
        "variants": list(variants),
        "threshold": ({"output": "logits", "metric": "top1_agreement", "min": 0.8} if is_classifier
                      else {"output": "map", "metric": "snr_db", "min": 20}),
    }
    (folder / "model.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder / "model.yaml"



def make_zoo(root: Path) -> Path:
    """A zoo with tiny-classifier (on `vectors`) and tiny-mapper (on `volumes`); returns its folder."""
    (root / "datasets").mkdir(parents=True)
    dataset(root, "vectors", (64,), 24, seed=1)
    dataset(root, "volumes", (3, 16, 16), 6, seed=2)
    model(root, "tiny-classifier", "classifier")
    model(root, "tiny-mapper", "mapper")
    return root
