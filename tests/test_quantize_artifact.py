"""artifact: what the written ONNX file is — checked, folded away by onnxruntime, near the ideal size."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from quantize_models import OPSET, RNG, graphs, make_model

from quantzoo.quantize import MODES, Layout, decode, quantize_file, quantize_weights
from quantzoo.quantize.artifact import joint_layout, joint_table, recipe_name
from quantzoo.quantize.pack import pack


def test_onnxruntime_folds_the_decode_away_at_session_creation(tmp_path):
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(make_model(), src)
    quantize_file(src, dst, mode="kmeans_lut", nbits=3)

    def optimized_ops(path):
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        out = tmp_path / f"{path.stem}.opt.onnx"
        so.optimized_model_filepath = str(out)
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        m = onnx.load(out)
        return sorted(n.op_type for _, g in graphs(m.graph) for n in g.node)

    assert optimized_ops(dst) == optimized_ops(src)


def test_artifact_passes_the_onnx_checker_and_records_what_was_done(tmp_path):
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(make_model(), src)
    report = quantize_file(src, dst, mode="linear", nbits=4, granularity="per_block", block_size=16)
    m = onnx.load(dst)
    onnx.checker.check_model(m, full_check=True)
    meta = {p.key: p.value for p in m.metadata_props}
    from quantzoo import __version__
    from quantzoo.cache import sha256_file

    assert meta["quantzoo.mode"] == "linear" and meta["quantzoo.nbits"] == "4"
    assert meta["quantzoo.granularity"] == "per_block" and meta["quantzoo.block_size"] == "16"
    assert meta["quantzoo.tool_version"] == __version__
    assert meta["quantzoo.source_sha256"] == sha256_file(src) == report.source_sha256
    assert not m.functions and {n.domain for _, g in graphs(m.graph) for n in g.node} == {""}


def test_fp16_records_16_bits():
    meta = {p.key: p.value for p in quantize_weights(make_model(), mode="fp16").metadata_props}
    assert meta["quantzoo.mode"] == "fp16" and meta["quantzoo.nbits"] == "16"


def test_decode_functions_are_named_by_what_they_do():
    w = np.arange(64, dtype=np.float32).reshape(8, 8)
    assert recipe_name(MODES["kmeans_lut"].encode(w, 3, Layout())) == "DecodeLut3"
    assert recipe_name(MODES["linear"].encode(w, 5, Layout("per_channel", 0))) == "DecodeAffine5"
    assert recipe_name(MODES["fp16"].encode(w, 16, Layout())) == "Cast"


@pytest.mark.parametrize("nbits", range(1, 9))
def test_a_joint_index_built_from_the_packed_planes_names_its_group_of_codes(nbits):
    g, planes = joint_layout(nbits)
    codes = np.random.default_rng(nbits).integers(0, 1 << nbits, 8 * g).astype(np.uint8)
    streams = pack(codes, nbits)
    table = joint_table(nbits)
    for group in range(len(codes) // g):
        index = 0
        for stream, (width, _, offset) in zip(streams, planes):
            index |= _bits(stream, group * g * width, g * width) << offset  # the group's unit of this plane
        assert table[index].tolist() == codes[group * g:(group + 1) * g].tolist()


def _bits(stream: np.ndarray, start: int, count: int) -> int:
    """`count` bits of a little-endian byte stream from bit `start`."""
    return (int.from_bytes(stream.tobytes(), "little") >> start) & ((1 << count) - 1)


def _big_model(n_out=512, n_in=1024):
    w = (np.random.default_rng(3).standard_normal((n_in, n_out)) * 0.05).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "big",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])],
                          [numpy_helper.from_array(w, "W")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)]), w


@pytest.mark.parametrize("mode,nbits,granularity", [
    ("linear", 8, None), ("kmeans_lut", 4, None), ("kmeans_lut", 3, None), ("linear", 2, None), ("kmeans_lut", 1, None),
    ("fp16", None, None), ("kmeans_lut", 6, "per_grouped_channel"), ("linear", 5, "per_tensor")])
def test_artifact_bytes_are_within_two_percent_of_ideal(tmp_path, mode, nbits, granularity):
    model, w = _big_model()
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(model, src)
    report = quantize_file(src, dst, mode=mode, nbits=nbits, granularity=granularity)
    bits = nbits or 16
    params = {"linear": 2 * 512, "kmeans_lut": 1 << bits, "fp16": 0}[mode]
    if granularity == "per_grouped_channel":
        params *= 512 // 32  # one table per 32 output channels
    if granularity == "per_tensor":
        params = 1 << bits  # a per-tensor linear code is a table
    ideal = w.size * bits / 8 + 4 * params
    assert report.ideal_bytes == ideal
    rest = src.stat().st_size - w.nbytes  # the graph without the weight
    assert (dst.stat().st_size - rest) / ideal <= 1.02


def test_a_tensor_read_by_several_nodes_is_stored_once():
    w = (RNG.standard_normal((64, 64)) * 0.1).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("MatMul", ["h", "W"], ["y"])], "shared",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [numpy_helper.from_array(w, "W")])
    q = quantize_weights(helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)]), 4, "kmeans_lut")
    decoders = [n for n in q.graph.node if list(n.output) == ["W"]]  # the last node of W's inlined decode
    assert len(decoders) == 1 and sum(t.name.startswith("W:p") for t in q.graph.initializer) == 1
    x = RNG.standard_normal((1, 64)).astype(np.float32)
    y = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    wq = decode(MODES["kmeans_lut"].encode(w, 4, Layout()))
    np.testing.assert_allclose(y, x @ wq @ wq, rtol=1e-5, atol=1e-6)


def test_models_padded_to_a_whole_byte_trim_the_padding():
    w = RNG.standard_normal((3, 7, 101)).astype(np.float32)  # 2121 elements: not a multiple of 8
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"]), helper.make_node("Identity", ["W"], ["w"])],
                          "odd", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 1, 7])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("w", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "W")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    for mode, nbits in (("kmeans_lut", 3), ("kmeans_lut", 4), ("linear", 5), ("linear", 1)):
        q = quantize_weights(model, nbits, mode)
        got = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            ["w"], {"x": np.ones((3, 1, 7), np.float32)})[0]
        want = decode(MODES[mode].encode(w, nbits, Layout("per_channel" if mode == "linear" else "per_tensor", 2, 1)))
        assert np.array_equal(got, want)
