"""A tiny model for the auto-quantization tests: one tensor far more sensitive than the others.

``y = x @ A + 0.01 * (x @ B) + 0.01 * (x @ C)``: A, B and C have the same shape and the same
kind of values, so they compress equally well, but an error in B or C reaches the output
attenuated 100 times (40 dB) while an error in A reaches it whole.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(17)
SHAPE = (64, 48)
WEIGHTS = {name: (RNG.standard_normal(SHAPE) * 0.1).astype(np.float32) for name in ("A", "B", "C")}


def make_model() -> onnx.ModelProto:
    small = numpy_helper.from_array(np.array(0.01, np.float32), "small")
    nodes = [helper.make_node("MatMul", ["x", "A"], ["a"]),
             helper.make_node("MatMul", ["x", "B"], ["b"]),
             helper.make_node("MatMul", ["x", "C"], ["c"]),
             helper.make_node("Add", ["b", "c"], ["bc"]),
             helper.make_node("Mul", ["bc", "small"], ["bc_small"]),
             helper.make_node("Add", ["a", "bc_small"], ["y"])]
    inits = [numpy_helper.from_array(w, n) for n, w in WEIGHTS.items()] + [small]
    g = helper.make_graph(nodes, "auto", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", SHAPE[0]])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", SHAPE[1]])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def feeds(n: int = 24, seed: int = 3) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal(SHAPE[0]).astype(np.float32)} for _ in range(n)]


def save(tmp_path) -> str:
    path = tmp_path / "auto.onnx"
    onnx.save(make_model(), path)
    return str(path)
