"""Small ONNX models for the quantize tests, with weights in every place real models keep them.

The test model has weights in graph initializers (Conv, Gemm), a Constant node (MatMul) and
Constant nodes inside both branches of an If. Every weight is also exposed through an Identity
output, so the decoded values onnxruntime computes can be compared bit for bit with the engine's
own numpy decode (`expected`).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from quantzoo.quantize import MODES, Layout, decode

OPSET = 17
RNG = np.random.default_rng(7)
CONV_W = (RNG.standard_normal((32, 8, 3, 3)) * 0.2).astype(np.float32)   # initializer, 2304
MATMUL_W = (RNG.standard_normal((32, 96)) * 0.1).astype(np.float32)      # Constant node, 3072
GEMM_W = (RNG.laplace(size=(64, 96)) * 0.05).astype(np.float32)          # initializer, transB, 6144
THEN_W = (RNG.standard_normal((64, 48)) * 0.1).astype(np.float32)        # Constant in If then
ELSE_W = (RNG.uniform(-1, 1, (64, 48))).astype(np.float32)               # Constant in If else

# name -> (array, channel axis, block axis) as the selector should find them
WEIGHTS = {
    "conv.w": (CONV_W, 0, 1),
    "matmul.w": (MATMUL_W, 1, 0),
    "gemm.w": (GEMM_W, 0, 1),
    "then.w": (THEN_W, 1, 0),
    "else.w": (ELSE_W, 1, 0),
}


def const(name, array):
    return helper.make_node("Constant", [], [name], name=f"{name}.const", value=numpy_helper.from_array(array, name))


def _branch(tag, w):
    nodes = [const(f"{tag}.w", w),
             helper.make_node("MatMul", ["gemm_out", f"{tag}.w"], [f"{tag}.y"]),
             helper.make_node("Identity", [f"{tag}.w"], [f"{tag}.w_out"])]
    return helper.make_graph(nodes, tag, [], [helper.make_tensor_value_info(f"{tag}.y", TensorProto.FLOAT, [1, 48]),
                                              helper.make_tensor_value_info(f"{tag}.w_out", TensorProto.FLOAT, [64, 48])])


def make_model(weights=None) -> onnx.ModelProto:
    w = {k: v[0] for k, v in WEIGHTS.items()}
    w.update(weights or {})
    nodes = [
        helper.make_node("Conv", ["x", "conv.w", "conv.b"], ["conv_out"], pads=[1, 1, 1, 1]),
        helper.make_node("ReduceMean", ["conv_out"], ["pooled"], axes=[2, 3], keepdims=0),
        const("matmul.w", w["matmul.w"]),
        helper.make_node("MatMul", ["pooled", "matmul.w"], ["mm_out"]),
        helper.make_node("Gemm", ["mm_out", "gemm.w", "gemm.b"], ["gemm_out"], transB=1),
        helper.make_node("If", ["flag"], ["y", "branch_w"], then_branch=_branch("then", w["then.w"]),
                         else_branch=_branch("else", w["else.w"])),
        helper.make_node("Identity", ["conv.w"], ["conv_w_out"]),
        helper.make_node("Identity", ["matmul.w"], ["matmul_w_out"]),
        helper.make_node("Identity", ["gemm.w"], ["gemm_w_out"]),
    ]
    inits = [numpy_helper.from_array(w["conv.w"], "conv.w"),
             numpy_helper.from_array(np.linspace(-0.1, 0.1, 32, dtype=np.float32), "conv.b"),
             numpy_helper.from_array(w["gemm.w"], "gemm.w"),
             numpy_helper.from_array(np.linspace(-1, 1, 64, dtype=np.float32), "gemm.b")]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in
            (("y", [1, 48]), ("branch_w", [64, 48]), ("conv_w_out", [32, 8, 3, 3]), ("matmul_w_out", [32, 96]),
             ("gemm_w_out", [64, 96]))]
    graph = helper.make_graph(nodes, "test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6]),
                                              helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
                              outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


X = RNG.standard_normal((1, 8, 6, 6)).astype(np.float32)


def run(model: onnx.ModelProto | str, flag: bool, opt=ort.GraphOptimizationLevel.ORT_ENABLE_ALL) -> dict:
    so = ort.SessionOptions()
    so.graph_optimization_level = opt
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {"x": X, "flag": np.array(flag)})))


def decoded_in_onnxruntime(model) -> dict:
    a, b = run(model, True), run(model, False)
    return {"conv.w": a["conv_w_out"], "matmul.w": a["matmul_w_out"], "gemm.w": a["gemm_w_out"],
            "then.w": a["branch_w"], "else.w": b["branch_w"]}


def expected(mode, nbits, granularity, weights=None, **kw) -> dict:
    """What `decode` gives for every weight of the test model: onnxruntime must agree bit for bit."""
    out = {}
    for name, (w, ca, ba) in WEIGHTS.items():
        w = (weights or {}).get(name, w)
        enc = MODES[mode].encode(w, nbits, Layout(granularity, ca, ba, kw.get("block_size"), kw.get("group_size"),
                                                  kw.get("lut_function"), "custom"))
        out[name] = decode(enc)
    return out


def matmul_model(w: np.ndarray, name: str = "W") -> onnx.ModelProto:
    """One MatMul ``x @ W`` with W an initializer."""
    g = helper.make_graph([helper.make_node("MatMul", ["x", name], ["y"])], "matmul",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, w.shape[0]])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, w.shape[1]])],
                          [numpy_helper.from_array(w, name)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])


def decoded(g: onnx.GraphProto) -> list[str]:
    """The weights a graph decodes (inlined standard ops), in node order: a node writes the
    weight's name and the graph holds the weight's stored parts ``name:p0``, ``name:fp16``, ..."""
    parts = {t.name.rsplit(":", 1)[0] for t in g.initializer if ":" in t.name}
    return [n.output[0] for n in g.node if n.output and n.output[0] in parts]


def graphs(g):
    from quantzoo.quantize.weights import walk_graphs

    return walk_graphs(g)
