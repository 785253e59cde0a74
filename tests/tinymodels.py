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
