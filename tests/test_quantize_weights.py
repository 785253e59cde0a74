"""weights: where weights live (initializers, Constant nodes, If/Loop bodies) and which are compressed."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from quantize_models import OPSET, RNG, WEIGHTS, const, decoded, graphs, make_model

from quantzoo.quantize import MODES, Layout, decode, quantize_weights
from quantzoo.quantize.weights import Skipped, select


def test_the_selector_finds_every_weight_with_its_op_and_axes():
    chosen, skipped = select(make_model())
    found = {s.tensor.name: (s.op, s.channel_axis, s.block_axis) for s in chosen}
    assert {n: (ca, ba) for n, (_, ca, ba) in found.items()} == {n: (ca, ba) for n, (_, ca, ba) in WEIGHTS.items()}
    assert found["conv.w"][0] == "Conv" and found["gemm.w"][0] == "Gemm" and found["then.w"][0] == "MatMul"
    assert {s.name for s in skipped} == {"conv.b", "gemm.b"} and all(isinstance(s, Skipped) for s in skipped)


def test_small_tensors_and_excluded_names_stay_float():
    q = quantize_weights(make_model(), 4, "kmeans_lut", min_elements=3000, exclude=["gemm.*"])
    kept = {t.name for t in q.graph.initializer}
    assert "conv.w" in kept and "gemm.w" in kept  # 2304 < 3000; excluded by pattern
    assert "matmul.w" in decoded(q.graph)


def test_op_types_limits_what_is_compressed():
    q = quantize_weights(make_model(), 4, "linear", op_types=["Conv"])
    assert decoded(q.graph) == ["conv.w"]


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
    assert sorted(decoded(q.graph)) == ["E", "WH", "WX"]
    ids = np.array([[1], [299], [7], [0], [42]], np.int64)
    y = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]
    assert np.all(np.isfinite(y)) and y.shape == (5, 1, 1, 32)


def test_weights_inside_a_loop_body_are_compressed_and_decoded_there():
    w = (RNG.standard_normal((48, 48)) * 0.2).astype(np.float32)
    body = helper.make_graph(
        [const("loop.w", w), helper.make_node("MatMul", ["h_in", "loop.w"], ["h_out"]),
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
    assert [decoded(gr) for _, gr in graphs(q.graph)] == [[], ["loop.w"]]  # decoded inside the body
    h0 = RNG.standard_normal((1, 48)).astype(np.float32)
    h = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"h0": h0})[0]
    wq = decode(MODES["kmeans_lut"].encode(w, 5, Layout()))
    np.testing.assert_allclose(h, h0 @ wq @ wq @ wq, rtol=1e-5, atol=1e-6)


def _nested_model():
    """W1 (main-graph initializer) and W2 (Constant in the If's then branch) are read only by a
    Loop body inside that branch; the else branch defines its own Constant under the name W2."""
    w1 = (RNG.standard_normal((48, 48)) * 0.2).astype(np.float32)
    w2 = (RNG.standard_normal((48, 48)) * 0.2).astype(np.float32)
    w2_else = (RNG.standard_normal((48, 48)) * 0.2).astype(np.float32)
    vi = helper.make_tensor_value_info
    body = helper.make_graph(
        [helper.make_node("MatMul", ["h_in", "W1"], ["h_mid"]), helper.make_node("MatMul", ["h_mid", "W2"], ["h_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])], "body",
        [vi("i", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []), vi("h_in", TensorProto.FLOAT, [1, 48])],
        [vi("cond_out", TensorProto.BOOL, []), vi("h_out", TensorProto.FLOAT, [1, 48])])
    then = helper.make_graph([const("W2", w2), helper.make_node("Loop", ["trips", "", "h0"], ["h_then"], body=body)],
                             "then", [], [vi("h_then", TensorProto.FLOAT, [1, 48])])
    other = helper.make_graph([const("W2", w2_else), helper.make_node("MatMul", ["h0", "W2"], ["h_else"])],
                              "else", [], [vi("h_else", TensorProto.FLOAT, [1, 48])])
    g = helper.make_graph([helper.make_node("If", ["flag"], ["h"], then_branch=then, else_branch=other)], "nested",
                          [vi("h0", TensorProto.FLOAT, [1, 48]), vi("flag", TensorProto.BOOL, [])],
                          [vi("h", TensorProto.FLOAT, [1, 48])],
                          [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(np.array(2, np.int64), "trips")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)]), w1, w2, w2_else


def test_weights_read_only_through_outer_scope_names_in_deeper_subgraphs_are_found():
    model, *_ = _nested_model()
    chosen, _ = select(model)
    found = sorted((s.tensor.scope, s.tensor.name, s.op, s.channel_axis, s.block_axis) for s in chosen)
    assert found == [("", "W1", "MatMul", 1, 0), ("If_0/else_branch", "W2", "MatMul", 1, 0),
                     ("If_0/then_branch", "W2", "MatMul", 1, 0)]


def test_outer_scope_weights_decode_where_they_are_defined_and_run_at_every_depth():
    model, w1, w2, w2_else = _nested_model()
    q = quantize_weights(model, 4, "kmeans_lut")
    assert decoded(q.graph) == ["W1"]
    (then, other) = [g for _, g in graphs(q.graph)][1:3]
    assert decoded(then) == ["W2"] and decoded(other) == ["W2"]
    sess = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"])
    h0 = RNG.standard_normal((1, 48)).astype(np.float32)
    d1, d2, d3 = (decode(MODES["kmeans_lut"].encode(w, 4, Layout())) for w in (w1, w2, w2_else))
    np.testing.assert_allclose(sess.run(None, {"h0": h0, "flag": np.array(True)})[0], h0 @ d1 @ d2 @ d1 @ d2,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sess.run(None, {"h0": h0, "flag": np.array(False)})[0], h0 @ d3, rtol=1e-5, atol=1e-6)


def test_a_weight_sliced_and_reassembled_before_its_lstm_keeps_its_channel_axis():
    # silero-vad's shape: W [4H, I] read in a deeper If branch, gates sliced, concatenated,
    # unsqueezed to [1, 4H, I] and fed to LSTM; the output channels are W's rows.
    hidden, inp = 32, 16
    w = (RNG.standard_normal((4 * hidden, inp)) * 0.1).astype(np.float32)
    vi = helper.make_tensor_value_info
    nodes = [const(f"s{i}", np.array([i * hidden], np.int64)) for i in range(5)] + [
        const("zero", np.array([0], np.int64))]
    nodes += [helper.make_node("Slice", ["W", f"s{i}", f"s{i + 1}", "zero"], [f"g{i}"]) for i in range(4)]
    nodes += [helper.make_node("Concat", ["g0", "g3", "g1", "g2"], ["w_iofc"], axis=0),
              helper.make_node("Unsqueeze", ["w_iofc", "zero"], ["w3"]),
              helper.make_node("LSTM", ["x", "w3", "w3h"], ["y"], hidden_size=hidden)]
    wh = (RNG.standard_normal((1, 4 * hidden, hidden)) * 0.1).astype(np.float32)
    branch = helper.make_graph(nodes, "then", [], [vi("y", TensorProto.FLOAT, None)])
    g = helper.make_graph([helper.make_node("If", ["flag"], ["out"], then_branch=branch, else_branch=branch)], "rnn",
                          [vi("x", TensorProto.FLOAT, [3, 1, inp]), vi("flag", TensorProto.BOOL, [])],
                          [vi("out", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "W"), numpy_helper.from_array(wh, "w3h")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    chosen, _ = select(model)
    assert {s.tensor.name: (s.op, s.channel_axis, s.block_axis) for s in chosen} == {
        "W": ("LSTM", 0, 1), "w3h": ("LSTM", 1, 2)}
    q = quantize_weights(model, 8, "linear")
    x = RNG.standard_normal((3, 1, inp)).astype(np.float32)
    feeds = {"x": x, "flag": np.array(True)}
    got = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert np.max(np.abs(got - want)) < 0.02


def test_float16_and_bfloat16_weights_are_selected_and_other_dtypes_say_why_not():
    vi = helper.make_tensor_value_info
    w16 = numpy_helper.from_array((RNG.standard_normal((64, 64)) * 0.1).astype(np.float16), "W16")
    wi = numpy_helper.from_array(np.ones((64, 64), np.int32), "WI")
    nodes = [helper.make_node("MatMul", ["x", "W16"], ["y"]), helper.make_node("MatMul", ["i", "WI"], ["j"])]
    g = helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT16, [1, 64]), vi("i", TensorProto.INT32, [1, 64])],
                          [vi("y", TensorProto.FLOAT16, [1, 64]), vi("j", TensorProto.INT32, [1, 64])], [w16, wi])
    chosen, skipped = select(helper.make_model(g))
    assert [s.tensor.name for s in chosen] == ["W16"]
    assert skipped[0].reason == "int32: only float32, float16 and bfloat16 tensors are compressed"


def test_custom_nodes_stay_as_they_are_and_the_layers_around_them_are_compressed(tmp_path):
    import onnx

    import quantzoo
    from quantzoo.customops import run
    from quantzoo.quantize import quantize_file
    from tinymodels import CUSTOM_OP, custom_op_catalog, custom_op_model

    src = custom_op_model(tmp_path / "custom.onnx")
    dst = tmp_path / "custom-linear-4.onnx"
    report = quantize_file(src, dst, mode="linear", nbits=4)
    assert [t.name for t in report.tensors] == ["W"]
    assert [(s.name, s.reason) for s in report.skipped] == [("shift", f"read only by custom op {CUSTOM_OP}")]
    assert report.artifact_bytes < 0.7 * report.source_bytes
    before = next(n for n in onnx.load(src).graph.node if n.domain == "ai.test.tiny")
    after = [n for n in onnx.load(dst).graph.node if n.domain == "ai.test.tiny"]
    assert len(after) == 1 and after[0] == before  # inputs, attributes and description untouched

    class Affine:  # the user's own class, given to quantzoo.load
        def __init__(self, scale, label):
            self.scale = scale

        def evaluate(self, h, shift):
            return (h * self.scale + shift.mean(axis=0)).astype(np.float32)

        def output_shapes(self, h_shape, shift_shape):
            return [h_shape]

    catalog = custom_op_catalog(tmp_path / "site", dst)
    sess = quantzoo.load("tiny-custom", catalog=catalog, session=True, cache=tmp_path / "cache",
                         custom_ops={CUSTOM_OP: Affine})
    x = RNG.standard_normal((2, 64)).astype(np.float32)
    w = numpy_helper.to_array(next(t for t in onnx.load(src).graph.initializer if t.name == "W"))
    shift = numpy_helper.to_array(next(t for t in onnx.load(src).graph.initializer if t.name == "shift"))
    [y] = run(sess, None, {"x": x})
    assert np.abs(y - ((x @ w) * 0.5 + shift.mean(axis=0))).max() < 0.25 * np.abs(x @ w).max()
