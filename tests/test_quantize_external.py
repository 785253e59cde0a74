"""quantize/external.py and quantize/native.py: models with external data in, artifacts with
external data out, the native DequantizeLinear representation."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantzoo.errors import QuantzooError
from quantzoo.quantize import quantize_file, quantize_weights
from quantzoo.quantize.external import open_lazy, save, tensor_array, uses_external

D = 64


def transformer_like(opset: int = 17) -> onnx.ModelProto:
    """Two MatMul [K, N] projections with a bias and a residual, like a transformer block's MLP."""
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array((rng.standard_normal((D, 4 * D)) * 0.05).astype(np.float32), "fc1.w"),
             numpy_helper.from_array((rng.standard_normal(4 * D) * 0.01).astype(np.float32), "fc1.b"),
             numpy_helper.from_array((rng.standard_normal((4 * D, D)) * 0.05).astype(np.float32), "fc2.w")]
    nodes = [helper.make_node("MatMul", ["x", "fc1.w"], ["h"]), helper.make_node("Add", ["h", "fc1.b"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["r"]), helper.make_node("MatMul", ["r", "fc2.w"], ["o"]),
             helper.make_node("Add", ["x", "o"], ["y"])]
    g = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, D])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, D])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def saved_external(tmp_path, opset: int = 17):
    path = tmp_path / "m.onnx"
    onnx.save(transformer_like(opset), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="m.data", size_threshold=0)
    return path


def outputs(path, **opts):
    so = ort.SessionOptions()
    for k, v in opts.items():
        so.add_session_config_entry(k, v)
    x = np.random.default_rng(0).standard_normal((2, D)).astype(np.float32)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_external_model_in(tmp_path):
    src = saved_external(tmp_path)
    assert (tmp_path / "m.data").is_file() and uses_external(onnx.load(str(src), load_external_data=False))
    report = quantize_file(src, tmp_path / "q.onnx", mode="linear", nbits=8)
    assert len(report.tensors) == 2 and report.artifact_files == []
    assert not uses_external(onnx.load(str(tmp_path / "q.onnx"), load_external_data=False))
    np.testing.assert_allclose(outputs(tmp_path / "q.onnx"), outputs(src), atol=0.02)
    # the ModelProto path: the returned model holds all its data
    proto = quantize_weights(src, 8, "linear")
    assert not uses_external(proto)
    same = onnx.load(str(tmp_path / "q.onnx"))
    assert proto.SerializeToString(deterministic=True) == same.SerializeToString(deterministic=True)


def test_external_model_as_modelproto_is_refused_with_advice(tmp_path):
    proto = onnx.load(str(saved_external(tmp_path)), load_external_data=False)
    with pytest.raises(QuantzooError, match="pass the model's path"):
        quantize_weights(proto, 8, "linear")


def test_inline_model_opens_lazily_and_gives_the_same_artifact(tmp_path):
    inline = tmp_path / "inline.onnx"
    onnx.save(transformer_like(), str(inline))
    lazy = open_lazy(inline)
    big = [t for t in lazy.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    assert {t.name for t in big} == {"fc1.w", "fc2.w"} and lazy.ByteSize() < 2000
    full = onnx.load(str(inline))
    for t in big:
        np.testing.assert_array_equal(tensor_array(t, tmp_path),
                                      numpy_helper.to_array(next(i for i in full.graph.initializer if i.name == t.name)))
    a = quantize_file(inline, tmp_path / "a.onnx", mode="linear", nbits=4)
    b = quantize_weights(full, 4, "linear").SerializeToString(deterministic=True)
    assert (tmp_path / "a.onnx").read_bytes() == b and a.artifact_bytes == len(b)


def test_artifact_over_the_threshold_is_written_with_external_data(tmp_path):
    src = saved_external(tmp_path)
    report = quantize_file(src, tmp_path / "q.onnx", mode="fp16", min_elements=0, external_threshold=10_000)
    names = [f["file"] for f in report.artifact_files]
    assert names == ["q.onnx", "q.onnx.data"]
    assert report.artifact_bytes == sum((tmp_path / n).stat().st_size for n in names)
    assert report.to_dict()["artifact_files"] == report.artifact_files
    np.testing.assert_allclose(outputs(tmp_path / "q.onnx"), outputs(src), atol=0.01)
    again = quantize_file(src, tmp_path / "r.onnx", mode="fp16", min_elements=0, external_threshold=10_000,
                          data_name="r-weights.bin")
    assert [f["file"] for f in again.artifact_files] == ["r.onnx", "r-weights.bin"]
    assert again.artifact_files[1]["sha256"] == report.artifact_files[1]["sha256"]  # same bytes, other name


def test_save_inline_below_the_threshold(tmp_path):
    files = save(transformer_like(), tmp_path / "m.onnx")
    assert [f["file"] for f in files] == ["m.onnx"] and not (tmp_path / "m.onnx.data").exists()


@pytest.mark.parametrize("granularity,block", [("per_channel", None), ("per_block", 32)])
def test_native_representation_is_dequantize_linear(tmp_path, granularity, block):
    src = tmp_path / "m.onnx"
    onnx.save(transformer_like(opset=21), str(src))
    dst = tmp_path / "n.onnx"
    quantize_file(src, dst, mode="linear", nbits=4, granularity=granularity, block_size=block,
                  representation="native")
    m = onnx.load(str(dst))
    dq = [n for n in m.graph.node if n.op_type == "DequantizeLinear"]
    assert len(dq) == 2 and not m.functions
    assert {p.key: p.value for p in m.metadata_props}["quantzoo.representation"] == "native"
    decoded = tmp_path / "d.onnx"
    quantize_file(src, decoded, mode="linear", nbits=4, granularity=granularity, block_size=block)
    ref = outputs(decoded)  # the same codes through the in-graph decode
    np.testing.assert_allclose(outputs(dst), ref, atol=1e-4)
    np.testing.assert_allclose(outputs(dst, **{"session.disable_quant_qdq": "1"}), ref, atol=1e-4)


def test_native_falls_back_where_dequantize_linear_cannot_say_it(tmp_path):
    src = tmp_path / "m.onnx"
    onnx.save(transformer_like(opset=17), str(src))  # no uint4 before opset 21
    quantize_file(src, tmp_path / "n.onnx", mode="linear", nbits=4, representation="native")
    ops = {n.op_type for n in onnx.load(str(tmp_path / "n.onnx")).graph.node}
    assert "DequantizeLinear" not in ops
    quantize_file(src, tmp_path / "e.onnx", mode="linear", nbits=8, representation="native")  # uint8: opset 13
    assert sum(n.op_type == "DequantizeLinear" for n in onnx.load(str(tmp_path / "e.onnx")).graph.node) == 2
