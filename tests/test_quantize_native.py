"""quantize/native.py: DequantizeLinear where it wins (``representation="auto"``), K padded to a
power-of-two block so onnxruntime fuses the MatMul, float16 weights, the rule on real shapes."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from quantzoo.quantize import quantize_file
from quantzoo.quantize.modes import MODES, Layout
from quantzoo.quantize.native import AUTO_MIN_ELEMENTS, auto_native, matmul_only, native_form, padded_block


def mlp(k: int, n: int, opset: int = 21, dtype=np.float32) -> onnx.ModelProto:
    w = (np.random.default_rng(0).standard_normal((k, n)) * 0.02).astype(dtype)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "mlp",
                          [helper.make_tensor_value_info("x", elem, ["N", k])],
                          [helper.make_tensor_value_info("y", elem, ["N", n])], [numpy_helper.from_array(w, "W")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def run(path, x, level=None, optimized=None):
    so = ort.SessionOptions()
    if level is not None:  # the fused kernel's activations: 0 = float32 (exact), default 4 = int8
        so.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", level)
    if optimized:
        so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def form_of(shape, nbits=4, granularity="per_channel", block=None, pad=True, opset=21):
    w = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    enc = MODES["linear"].encode(w, nbits, Layout(granularity, 1, 0, block))
    found = native_form(enc, 1, opset, pad=pad)
    return found and found[0]


# The largest weights of the catalog's models (magika's dense layers, PaddleOCR's recognition head,
# EfficientNet's classifier and last convolutions) and a transformer-sized MatMul.
CATALOG_SHAPES = [(512, 512), (1024, 256), (120, 6625), (1280, 1000), (1280, 320, 1, 1), (320, 1152, 1, 1)]


@pytest.mark.parametrize("shape", CATALOG_SHAPES)
def test_auto_leaves_catalog_sized_tensors_to_the_decode(shape):
    assert int(np.prod(shape)) < AUTO_MIN_ELEMENTS
    assert not auto_native({"fused": True}, True, int(np.prod(shape)), TensorProto.FLOAT)


def test_auto_rule_on_shapes():
    big = 4096 * 4096
    assert auto_native(form_of((64, 32)), True, big, TensorProto.FLOAT)  # K a power of two: one block of K
    assert auto_native(form_of((200, 32)), True, big, TensorProto.FLOAT)  # K padded to a power-of-two block
    assert not auto_native(form_of((200, 32), pad=False), True, big, TensorProto.FLOAT)  # block of 200: not fused
    assert not auto_native(form_of((64, 32)), False, big, TensorProto.FLOAT)  # not only a MatMul's B
    assert not auto_native(form_of((64, 32), nbits=2, opset=25), True, big, TensorProto.FLOAT)  # 2 bits: no fusion
    assert not auto_native(form_of((64, 32), nbits=3), True, big, TensorProto.FLOAT)  # no uint3
    assert not auto_native(form_of((96, 32), granularity="per_block", block=48), True, big, TensorProto.FLOAT)
    assert auto_native(form_of((96, 32), granularity="per_block", block=32), True, big, TensorProto.FLOAT)
    assert not auto_native(form_of((64, 32)), True, big, TensorProto.FLOAT16)  # fp16 weights keep the decode
    assert not auto_native(form_of((64, 32), opset=17), True, big, TensorProto.FLOAT)  # no uint4 blocks before 21
    assert padded_block(5000, 5000, 4) == 1024 and padded_block(4096, 4096, 8) == 4096


def test_matmul_only():
    m = mlp(64, 32)
    assert matmul_only(m.graph, "W")
    m.graph.node.append(helper.make_node("Identity", ["W"], ["W2"]))
    assert not matmul_only(m.graph, "W")


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("mode,nbits", [("linear", 4), ("linear", 8), ("linear_symmetric", 4), ("kmeans_lut", 4)])
def test_auto_is_the_decode_byte_for_byte_below_the_threshold(tmp_path, mode, nbits):
    src = tmp_path / "m.onnx"
    onnx.save(mlp(1024, 1024), str(src))
    auto = quantize_file(src, tmp_path / "a.onnx", mode=mode, nbits=nbits)  # the default
    quantize_file(src, tmp_path / "d.onnx", mode=mode, nbits=nbits, representation="decode")
    assert sha(tmp_path / "a.onnx") == sha(tmp_path / "d.onnx")
    assert [r.representation for r in auto.tensors] == ["decode"]
    keys = {p.key for p in onnx.load(str(tmp_path / "a.onnx")).metadata_props}
    assert "quantzoo.representation" not in keys and "quantzoo.native_tensors" not in keys


@pytest.mark.parametrize("k", [2048, 2000])  # 2000: padded to 2048 rows in blocks of a power of two
def test_auto_writes_large_matmul_weights_natively(tmp_path, k):
    src, dst, ref = tmp_path / "m.onnx", tmp_path / "a.onnx", tmp_path / "d.onnx"
    onnx.save(mlp(k, 2048), str(src))
    report = quantize_file(src, dst, mode="linear", nbits=4)
    quantize_file(src, ref, mode="linear", nbits=4, representation="decode")
    assert [r.representation for r in report.tensors] == ["native"]
    assert report.to_dict()["tensors"][0]["representation"] == "native"
    m = onnx.load(str(dst))
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["quantzoo.representation"] == "auto" and meta["quantzoo.native_tensors"] == '["W"]'
    ops = [n.op_type for n in m.graph.node]
    assert ops == (["DequantizeLinear", "MatMul"] if k == 2048 else ["DequantizeLinear", "Pad", "MatMul"])
    x = np.random.default_rng(2).uniform(-1, 1, (3, k)).astype(np.float32)
    expected = run(ref, x)
    np.testing.assert_allclose(run(dst, x, level="0", optimized=tmp_path / "opt.onnx"), expected, atol=1e-4)
    assert "MatMulNBits" in {n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node}
    np.testing.assert_allclose(ReferenceEvaluator(str(dst)).run(None, {"x": x})[0], expected, atol=1e-4)
    # by default the fused kernel quantizes activations to int8: close, not exact
    assert np.linalg.norm(run(dst, x) - expected) / np.linalg.norm(expected) < 0.02


def test_native_pads_k_and_keeps_the_product(tmp_path):
    src, dst, ref = tmp_path / "m.onnx", tmp_path / "n.onnx", tmp_path / "d.onnx"
    onnx.save(mlp(200, 48), str(src))
    report = quantize_file(src, dst, mode="linear", nbits=8, representation="native")
    quantize_file(src, ref, mode="linear", nbits=8, representation="decode")
    m = onnx.load(str(dst))
    dq = next(n for n in m.graph.node if n.op_type == "DequantizeLinear")
    block = next(a.i for a in dq.attribute if a.name == "block_size")
    codes = next(t for t in m.graph.initializer if t.name == dq.input[0])
    assert block & (block - 1) == 0 and codes.dims[0] % block == 0 and codes.dims[0] >= 200
    assert report.tensors[0].stored_bytes == codes.dims[0] * 48 + (codes.dims[0] // block) * 48 * 5
    x = np.random.default_rng(2).uniform(-1, 1, (2, 200)).astype(np.float32)
    np.testing.assert_allclose(run(dst, x, level="0"), run(ref, x), atol=1e-4)


def fp16_net(opset: int = 21) -> onnx.ModelProto:
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array((rng.standard_normal((16, 3, 3, 3)) * 0.2).astype(np.float16), "conv.w"),
             numpy_helper.from_array((rng.standard_normal((16 * 8 * 8, 64)) * 0.02).astype(np.float16), "fc.w"),
             numpy_helper.from_array(np.array([1, 16 * 8 * 8], np.int64), "flat")]
    nodes = [helper.make_node("Conv", ["x", "conv.w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Reshape", ["r", "flat"], ["f"]),
             helper.make_node("MatMul", ["f", "fc.w"], ["y"])]
    g = helper.make_graph(nodes, "fp16", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 64])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("nbits", [4, 8])
def test_native_float16_weights_cast_back(tmp_path, nbits):
    src, dst, ref = tmp_path / "m.onnx", tmp_path / "n.onnx", tmp_path / "d.onnx"
    onnx.save(fp16_net(), str(src))
    report = quantize_file(src, dst, mode="linear", nbits=nbits, representation="native", min_elements=0)
    quantize_file(src, ref, mode="linear", nbits=nbits, representation="decode", min_elements=0)
    assert [r.representation for r in report.tensors] == ["native", "native"]
    m = onnx.load(str(dst))
    onnx.checker.check_model(m, full_check=True)
    assert sum(n.op_type == "Cast" for n in m.graph.node) == 2
    x = np.random.default_rng(5).uniform(-1, 1, (1, 3, 8, 8)).astype(np.float16)
    got = run(dst, x, level="0")
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), run(ref, x).astype(np.float32), atol=2e-2)
    auto = quantize_file(src, tmp_path / "a.onnx", mode="linear", nbits=nbits, min_elements=0)
    assert [r.representation for r in auto.tensors] == ["decode", "decode"]
