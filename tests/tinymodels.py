"""Tiny ONNX models made in the tests, and a compressed copy of any model (weights rounded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def scale_model(path: Path, factor: float, shape=(None, 4), out_name: str = "y") -> Path:
    """y = x * factor, with `factor` held in an initializer (a 'weight' to compress)."""
    g = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], [out_name])], "scale",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, list(shape))],
        [numpy_helper.from_array(np.array(factor, np.float32), "w")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def classifier(path: Path, w: np.ndarray) -> Path:
    """logits = x @ w for x [N, 4] and w [4, C]."""
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["logits"])], "cls",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, w.shape[1]])],
        [numpy_helper.from_array(w.astype(np.float32), "w")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def compressed_copy(src: Path, dst: Path, bits: int = 4) -> Path:
    """Round every float32 weight (initializers and Constant nodes) to `bits`-bit per-tensor
    linear codes and back: a real compressed model with the same graph."""
    m = onnx.load(str(src))

    def q(t: onnx.TensorProto) -> None:
        a = numpy_helper.to_array(t)
        if a.dtype != np.float32 or a.size < 16:
            return
        lo, hi = float(a.min()), float(a.max())
        if hi == lo:
            return
        step = (hi - lo) / (2 ** bits - 1)
        t.CopyFrom(numpy_helper.from_array((np.round((a - lo) / step) * step + lo).astype(np.float32), t.name))

    for t in m.graph.initializer:
        q(t)
    for n in m.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    q(a.t)
    onnx.save(m, str(dst))
    return dst


def rows(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal(4).astype(np.float32)} for _ in range(n)]


# --- a model with a custom op, and a one-model catalog publishing it with its implementation ---

CUSTOM_OP = "ai.test.tiny.Affine"
AFFINE_CODE = '''import numpy as np


class Affine:
    """y = h * scale + the mean row of shift, the node's parameters scale and (text) label."""

    def __init__(self, scale, label):
        self.scale, self.label = scale, label

    def evaluate(self, h, shift):
        return (h * self.scale + shift.mean(axis=0)).astype(np.float32)

    def output_shapes(self, h_shape, shift_shape):
        return [h_shape]
'''


def custom_op_model(path: Path, seed: int = 0) -> Path:
    """x [N, 64] → MatMul with W [64, 64] (a weight) → the custom node Affine(h, shift) whose
    second input, shift [64, 64], is read by the custom node only (its mean row is added); attributes scale and label."""
    rng = np.random.default_rng(seed)
    node = helper.make_node("Affine", ["h", "shift"], ["y"], domain="ai.test.tiny", name="affine", scale=0.5,
                            label="tiny")
    node.doc_string = "h times scale plus shift"
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), node], "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 64])],
        [numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32), "W"),
         numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32), "shift")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.test.tiny", 1)])
    onnx.save(model, path)
    return path


def custom_op_catalog(root: Path, artifact: Path, code: str = AFFINE_CODE) -> Path:
    """A catalog folder with one model ("tiny-custom"), `artifact` as its only variant and the
    Affine implementation published beside it (index.json written through quantzoo.catalog)."""
    import hashlib

    from quantzoo.catalog import CatalogIndex, CustomOpEntry, FileEntry, ModelEntry, VariantEntry

    folder = root / "files" / "tiny-custom"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny-custom-linear-4.onnx").write_bytes(artifact.read_bytes())
    (folder / "affine_impl.py").write_text(code, encoding="utf-8")

    def entry(name: str) -> tuple[str, int, str]:
        data = (folder / name).read_bytes()
        return f"files/tiny-custom/{name}", len(data), hashlib.sha256(data).hexdigest()

    op = CustomOpEntry("Affine", "ai.test.tiny", "affine_impl:Affine", "h times scale plus shift",
                       {"label": "tiny", "scale": 0.5}, 1, FileEntry(*entry("affine_impl.py")))
    variant = VariantEntry("linear-4", "linear", 4, "per_channel", *entry("tiny-custom-linear-4.onnx"))
    index = CatalogIndex((ModelEntry("tiny-custom", "tiny custom", "generic", recommended="linear-4",
                                     variants=(variant,), custom_ops=(op,)),))
    (root / "index.json").write_bytes(index.to_bytes())
    return root
