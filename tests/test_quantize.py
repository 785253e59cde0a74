"""quantize: every mode × nbits on small models built here, decoded by real onnxruntime.

The test model has weights in all three places real models keep them: graph initializers (Conv,
Gemm), a Constant node (MatMul) and Constant nodes inside both branches of an If. Every weight
is also exposed through an Identity output, so the decoded values onnxruntime computes can be
compared bit for bit with the engine's own numpy decode.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantzoo.cli import main
from quantzoo.errors import QuantzooError, UsageError
from quantzoo.quantize import MODES, Layout, decode, quantize_file, quantize_weights

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


def _const(name, array):
    return helper.make_node("Constant", [], [name], name=f"{name}.const", value=numpy_helper.from_array(array, name))


def _branch(tag, w):
    nodes = [_const(f"{tag}.w", w),
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
        _const("matmul.w", w["matmul.w"]),
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
    out = {}
    for name, (w, ca, ba) in WEIGHTS.items():
        w = (weights or {}).get(name, w)
        enc = MODES[mode](w, nbits, Layout(granularity, ca, ba, kw.get("block_size"), kw.get("group_size"),
                                            kw.get("lut_function"), "custom"))
        out[name] = decode(enc)
    return out


def snap(w, levels):
    """w with every value replaced by its nearest of `levels` (for unique_lut)."""
    levels = np.sort(np.asarray(levels, np.float32))
    return levels[np.abs(w[..., None] - levels).argmin(-1)].astype(np.float32)


def sign_table(weights, nbits):
    """A custom table: the mean of the negative and of the non-negative weights."""
    neg, pos = weights[weights < 0], weights[weights >= 0]
    lut = np.array([neg.mean() if neg.size else 0.0, pos.mean() if pos.size else 0.0], np.float32)
    return lut, (weights >= 0).astype(np.int64).ravel()


GRID = [(mode, nbits) for mode in ("linear", "linear_symmetric", "linear_lut", "kmeans_lut") for nbits in range(1, 9)]


@pytest.mark.parametrize("mode,nbits", GRID)
def test_weights_in_initializers_constants_and_if_branches_decode_exactly_in_onnxruntime(mode, nbits):
    from quantzoo.registry import MODE_DEFAULT_GRANULARITY

    q = quantize_weights(make_model(), nbits, mode)
    got = decoded_in_onnxruntime(q)
    want = expected(mode, nbits, MODE_DEFAULT_GRANULARITY[mode])
    for name in WEIGHTS:
        assert got[name].dtype == np.float32 and got[name].shape == WEIGHTS[name][0].shape
        assert np.array_equal(got[name], want[name]), f"{name} decoded differently in onnxruntime"


@pytest.mark.parametrize("nbits", range(1, 9))
def test_unique_lut_is_lossless_when_a_tensor_has_at_most_2_pow_n_values(nbits):
    levels = np.linspace(-0.5, 0.5, 1 << nbits).astype(np.float32)
    weights = {name: snap(w, levels) for name, (w, _, _) in WEIGHTS.items()}
    q = quantize_weights(make_model(weights), nbits, "unique_lut")
    got = decoded_in_onnxruntime(q)
    for name in WEIGHTS:
        assert np.array_equal(got[name], weights[name])


@pytest.mark.parametrize("nbits", range(1, 9))
def test_custom_lut_function_decodes_to_its_own_table(nbits):
    q = quantize_weights(make_model(), nbits, "custom_lut", lut_function=sign_table)
    got = decoded_in_onnxruntime(q)
    want = expected("custom_lut", nbits, "per_tensor", lut_function=sign_table)
    for name in WEIGHTS:
        assert np.array_equal(got[name], want[name])
        assert len(np.unique(got[name])) <= 2


def test_fp16_decodes_to_the_float16_rounding_of_every_weight():
    got = decoded_in_onnxruntime(quantize_weights(make_model(), mode="fp16"))
    for name, (w, _, _) in WEIGHTS.items():
        assert np.array_equal(got[name], w.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("mode,nbits,granularity,extra", [
    ("linear", 4, "per_tensor", {}),
    ("linear", 3, "per_block", {"block_size": 8}),
    ("linear_symmetric", 5, "per_block", {"block_size": 16}),
    ("linear", 8, "per_block", {"block_size": 32}),
    ("kmeans_lut", 3, "per_grouped_channel", {"group_size": 16}),
    ("linear_lut", 4, "per_grouped_channel", {"group_size": 5}),
    ("kmeans_lut", 8, "per_grouped_channel", {}),
])
def test_every_granularity_decodes_exactly(mode, nbits, granularity, extra):
    q = quantize_weights(make_model(), nbits, mode, granularity=granularity, **extra)
    got = decoded_in_onnxruntime(q)
    want = expected(mode, nbits, granularity, **extra)
    for name in WEIGHTS:
        assert np.array_equal(got[name], want[name]), name


def test_per_block_uses_one_scale_per_channel_and_block():
    enc = MODES["linear"](CONV_W, 4, Layout("per_block", 0, 1, 4))
    assert enc.kind == "affine" and enc.scale.shape == (32, 2, 1, 1, 1)
    err_block = np.linalg.norm(decode(enc) - CONV_W)
    err_channel = np.linalg.norm(decode(MODES["linear"](CONV_W, 4, Layout("per_channel", 0))) - CONV_W)
    assert err_block < err_channel


def test_per_block_that_does_not_divide_the_input_axis_falls_back_to_per_channel_and_says_so():
    enc = MODES["linear"](CONV_W, 4, Layout("per_block", 0, 1, 3))
    assert enc.granularity == "per_channel" and "not a multiple of block_size 3" in enc.note


def test_one_bit_linear_is_sign_times_scale_not_min_max():
    for mode in ("linear", "linear_symmetric"):
        enc = MODES[mode](GEMM_W, 1, Layout("per_channel", 0))
        approx = decode(enc)
        assert np.array_equal(np.sign(approx), np.where(GEMM_W >= 0, 1, -1))
        np.testing.assert_allclose(np.abs(approx).max(axis=1), np.abs(GEMM_W).mean(axis=1), rtol=1e-5)
        assert np.linalg.norm(approx - GEMM_W) / np.linalg.norm(GEMM_W) < 0.8


def test_linear_keeps_zero_exact():
    w = CONV_W.copy()
    w[0, 0, 0, :] = 0.0
    for nbits in range(2, 9):
        assert np.all(decode(MODES["linear"](w, nbits, Layout("per_channel", 0)))[0, 0, 0] == 0.0)


def test_error_shrinks_as_bits_grow_for_every_mode():
    for mode in ("linear", "linear_symmetric", "linear_lut", "kmeans_lut"):
        errs = [np.linalg.norm(decode(MODES[mode](GEMM_W, n, Layout("per_tensor"))) - GEMM_W) for n in range(2, 9)]
        assert all(a > b for a, b in zip(errs, errs[1:])), (mode, errs)


def test_kmeans_beats_linear_table_at_the_same_bits():
    for n in (2, 3, 4):
        km = np.linalg.norm(decode(MODES["kmeans_lut"](GEMM_W, n, Layout())) - GEMM_W)
        lin = np.linalg.norm(decode(MODES["linear_lut"](GEMM_W, n, Layout())) - GEMM_W)
        assert km < lin


# --- what the artifact is ---------------------------------------------------------------------

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
        return sorted(n.op_type for _, g in _graphs(m.graph) for n in g.node)

    assert optimized_ops(dst) == optimized_ops(src)


def _graphs(g):
    from quantzoo.quantize.weights import walk_graphs

    return walk_graphs(g)


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
    assert {f.name for f in m.functions} <= {"DecodeAffine4", "DecodeAffine4View", "DecodeLut4"}


def test_same_input_and_config_give_byte_identical_files(tmp_path):
    src = tmp_path / "f.onnx"
    onnx.save(make_model(), src)
    for mode, nbits in (("kmeans_lut", 3), ("linear", 6), ("fp16", None)):
        a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
        ra = quantize_file(src, a, mode=mode, nbits=nbits)
        rb = quantize_file(src, b, mode=mode, nbits=nbits, jobs=1)
        assert a.read_bytes() == b.read_bytes()
        assert ra.to_dict() == rb.to_dict()


def test_spreading_tensors_over_processes_changes_no_byte(tmp_path):
    src, a, b = tmp_path / "f.onnx", tmp_path / "a.onnx", tmp_path / "b.onnx"
    onnx.save(make_model(), src)
    quantize_file(src, a, mode="kmeans_lut", nbits=5, jobs=1)
    quantize_file(src, b, mode="kmeans_lut", nbits=5, jobs=2)
    assert a.read_bytes() == b.read_bytes()


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


def test_report_lists_compressed_and_skipped_tensors_with_reasons(tmp_path):
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(make_model(), src)
    report = quantize_file(src, dst, mode="kmeans_lut", nbits=4)
    rows = {r.name: r for r in report.tensors}
    assert set(rows) == set(WEIGHTS)
    assert rows["gemm.w"].op == "Gemm" and rows["conv.w"].op == "Conv" and rows["then.w"].scope.endswith("then_branch")
    assert all(0 < r.relative_error < 0.2 and r.bits == 4 for r in rows.values())
    skipped = {s.name: s.reason for s in report.skipped}
    assert skipped["conv.b"].startswith("not a weight") and "Conv:2" in skipped["conv.b"]
    assert skipped["gemm.b"].startswith("not a weight")
    d = report.to_dict()
    assert d["totals"]["compressed_tensors"] == 5 and d["totals"]["artifact_bytes"] == dst.stat().st_size
    import json

    json.dumps(d)


def test_small_tensors_and_excluded_names_stay_float():
    q = quantize_weights(make_model(), 4, "kmeans_lut", min_elements=3000, exclude=["gemm.*"])
    kept = {t.name for t in q.graph.initializer}
    assert "conv.w" in kept and "gemm.w" in kept  # 2304 < 3000; excluded by pattern
    assert any(n.output[0] == "matmul.w" and n.domain == "ai.quantzoo" for n in q.graph.node)


def test_op_types_limits_what_is_compressed():
    q = quantize_weights(make_model(), 4, "linear", op_types=["Conv"])
    decoders = [n.output[0] for n in q.graph.node if n.domain == "ai.quantzoo"]
    assert decoders == ["conv.w"]


def test_a_tensor_read_by_several_nodes_is_stored_once():
    w = (RNG.standard_normal((64, 64)) * 0.1).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("MatMul", ["h", "W"], ["y"])], "shared",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [numpy_helper.from_array(w, "W")])
    q = quantize_weights(helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)]), 4, "kmeans_lut")
    decoders = [n for n in q.graph.node if n.domain == "ai.quantzoo"]
    assert len(decoders) == 1 and sum(t.name.startswith("W:p") for t in q.graph.initializer) == 1
    x = RNG.standard_normal((1, 64)).astype(np.float32)
    y = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    wq = decode(MODES["kmeans_lut"](w, 4, Layout()))
    np.testing.assert_allclose(y, x @ wq @ wq, rtol=1e-5, atol=1e-6)


def test_embedding_gather_and_lstm_weights_are_found():
    emb = (RNG.standard_normal((300, 16)) * 0.1).astype(np.float32)
    wx = (RNG.standard_normal((1, 4 * 32, 16)) * 0.1).astype(np.float32)
    wh = (RNG.standard_normal((1, 4 * 32, 32)) * 0.1).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Gather", ["E", "ids"], ["e"]),
         helper.make_node("LSTM", ["e", "WX", "WH"], ["y"], hidden_size=32)], "rnn",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [5, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(emb, "E"), numpy_helper.from_array(wx, "WX"), numpy_helper.from_array(wh, "WH")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    q = quantize_weights(model, 6, "linear")
    assert sorted(n.output[0] for n in q.graph.node if n.domain == "ai.quantzoo") == ["E", "WH", "WX"]
    ids = np.array([[1], [299], [7], [0], [42]], np.int64)
    y = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]
    assert np.all(np.isfinite(y)) and y.shape == (5, 1, 1, 32)


def test_weights_inside_a_loop_body_are_compressed_and_decoded_there():
    w = (RNG.standard_normal((48, 48)) * 0.2).astype(np.float32)
    body = helper.make_graph(
        [_const("loop.w", w), helper.make_node("MatMul", ["h_in", "loop.w"], ["h_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 48])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 48])])
    g = helper.make_graph([helper.make_node("Loop", ["trips", "", "h0"], ["h"], body=body)], "loop",
                          [helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 48])],
                          [helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 48])],
                          [numpy_helper.from_array(np.array(3, np.int64), "trips")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    q = quantize_weights(model, 5, "kmeans_lut")
    (row,) = [n for _, gr in _graphs(q.graph) for n in gr.node if n.domain == "ai.quantzoo"]
    assert row.output[0] == "loop.w" and row.op_type == "DecodeLut5"
    h0 = RNG.standard_normal((1, 48)).astype(np.float32)
    h = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"h0": h0})[0]
    wq = decode(MODES["kmeans_lut"](w, 5, Layout()))
    np.testing.assert_allclose(h, h0 @ wq @ wq @ wq, rtol=1e-5, atol=1e-6)


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
        want = decode(MODES[mode](w, nbits, Layout("per_channel" if mode == "linear" else "per_tensor", 2, 1)))
        assert np.array_equal(got, want)


# --- bad input --------------------------------------------------------------------------------

def test_a_file_that_is_not_onnx_is_a_clear_error_and_writes_nothing(tmp_path):
    src, dst = tmp_path / "notes.onnx", tmp_path / "out.onnx"
    src.write_text("this is not a model\n" * 10)
    with pytest.raises(QuantzooError, match=r"notes\.onnx is not an ONNX model") as e:
        quantize_file(src, dst, mode="linear", nbits=8)
    assert "expected a .onnx file" in str(e.value)
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(QuantzooError, match=r"missing\.onnx: no such file"):
        quantize_file(tmp_path / "missing.onnx", tmp_path / "o.onnx", mode="linear", nbits=8)


@pytest.mark.parametrize("nbits", [0, 9, -1, 2.5, None])
def test_nbits_outside_1_to_8_is_a_usage_error(tmp_path, nbits):
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(make_model(), src)
    with pytest.raises(UsageError, match=f"nbits must be an integer from 1 to 8 for mode linear, found {nbits}"):
        quantize_file(src, dst, mode="linear", nbits=nbits)
    assert not dst.exists()


def test_unknown_mode_lists_the_known_ones():
    with pytest.raises(UsageError, match="unknown mode 'palettize'; expected one of linear, linear_symmetric, "
                                         "linear_lut, kmeans_lut, unique_lut, custom_lut, fp16"):
        quantize_weights(make_model(), 4, "palettize")


def test_fp16_with_nbits_is_a_usage_error():
    with pytest.raises(UsageError, match="mode fp16 takes no nbits"):
        quantize_weights(make_model(), 8, "fp16")


def test_wrong_granularity_and_missing_block_size_are_usage_errors():
    with pytest.raises(UsageError, match="granularity 'per_block' does not apply to mode kmeans_lut"):
        quantize_weights(make_model(), 4, "kmeans_lut", granularity="per_block")
    with pytest.raises(UsageError, match="per_block needs a positive integer block_size"):
        quantize_weights(make_model(), 4, "linear", granularity="per_block")


def test_no_tensor_selected_is_a_clear_error_and_writes_nothing(tmp_path):
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(make_model(), src)
    with pytest.raises(QuantzooError, match=r"f\.onnx: no tensor selected for compression .*elements < min_elements"):
        quantize_file(src, dst, mode="linear", nbits=4, min_elements=10**9)
    assert not dst.exists()


def test_unique_lut_with_too_many_values_says_how_many_there_are():
    with pytest.raises(QuantzooError, match=r"tensor 'conv.w' has 2304 distinct values; unique_lut at nbits=4 "
                                            r"holds at most 16; use nbits >= 12"):
        quantize_weights(make_model(), 4, "unique_lut")


def test_custom_lut_with_a_wrong_table_shape_names_the_function():
    def two_d(weights, nbits):
        return np.zeros((2, 2), np.float32), np.zeros(weights.size, np.int64)

    with pytest.raises(QuantzooError, match=r"lut_function .*two_d: lut must be a 1-D numeric array of 1..4 entries "
                                            r"for nbits=2, found shape \(2, 2\)"):
        quantize_weights(make_model(), 2, "custom_lut", lut_function=two_d)


def test_custom_lut_with_an_out_of_range_code_names_the_function():
    def too_far(weights, nbits):
        return np.zeros(4, np.float32), np.full(weights.size, 4, np.int64)

    with pytest.raises(QuantzooError, match=r"too_far: codes must lie in \[0, 3\] .*found \[4, 4\]"):
        quantize_weights(make_model(), 2, "custom_lut", lut_function=too_far)


def test_custom_lut_by_module_and_function_name(tmp_path, monkeypatch):
    (tmp_path / "my_tables.py").write_text(
        "import numpy as np\n"
        "def halves(weights, nbits):\n"
        "    lut = np.array([-0.5, 0.5], np.float32)\n"
        "    return lut, (weights >= 0).astype(np.int32).ravel()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    q = quantize_weights(make_model(), 3, "custom_lut", lut_function="my_tables:halves")
    got = decoded_in_onnxruntime(q)
    assert set(np.unique(got["gemm.w"]).tolist()) == {-0.5, 0.5}
    assert {p.key: p.value for p in q.metadata_props}["quantzoo.lut_function"] == "my_tables:halves"
    with pytest.raises(QuantzooError, match="lut_function 'my_tables:nope': module 'my_tables' has no function 'nope'"):
        quantize_weights(make_model(), 3, "custom_lut", lut_function="my_tables:nope")


@pytest.mark.parametrize("name", ["engine", "modes", "kmeans", "pack", "artifact", "weights"])
def test_docstring_examples_run(name):
    import doctest
    import importlib

    module = importlib.import_module(f"quantzoo.quantize.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0, f"{result.failed} of {result.attempted} failed in {name}"


# --- the command line -------------------------------------------------------------------------

def test_cli_quantizes_and_prints_a_row_per_tensor(tmp_path, capsys):
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(make_model(), src)
    assert main(["quantize", str(src), "-o", str(dst), "--mode", "kmeans_lut", "--nbits", "3",
                 "--exclude", "else.*"]) == 0
    out = capsys.readouterr().out
    assert "kmeans_lut 3-bit per_tensor: 4 tensors compressed" in out
    assert "gemm.w" in out and "Gemm" in out and "excluded by pattern 'else.*'" in out
    assert dst.exists()


def test_cli_exit_codes_for_bad_nbits_and_bad_file(tmp_path, capsys):
    src = tmp_path / "f.onnx"
    onnx.save(make_model(), src)
    assert main(["quantize", str(src), "-o", str(tmp_path / "q.onnx"), "--mode", "linear", "--nbits", "9"]) == 2
    assert "nbits must be an integer from 1 to 8" in capsys.readouterr().err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\xff" * 50)
    assert main(["quantize", str(bad), "-o", str(tmp_path / "q.onnx"), "--mode", "fp16"]) == 1
    assert "is not an ONNX model" in capsys.readouterr().err
    assert not (tmp_path / "q.onnx").exists()
