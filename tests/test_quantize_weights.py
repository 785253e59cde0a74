"""weights: where weights live (initializers, Constant nodes, If/Loop bodies) and which are compressed."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from quantize_models import OPSET, RNG, WEIGHTS, const, graphs, make_model

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
    assert any(n.output[0] == "matmul.w" and n.domain == "ai.quantzoo" for n in q.graph.node)


def test_op_types_limits_what_is_compressed():
    q = quantize_weights(make_model(), 4, "linear", op_types=["Conv"])
    decoders = [n.output[0] for n in q.graph.node if n.domain == "ai.quantzoo"]
    assert decoders == ["conv.w"]


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
    (row,) = [n for _, gr in graphs(q.graph) for n in gr.node if n.domain == "ai.quantzoo"]
    assert row.output[0] == "loop.w" and row.op_type == "DecodeLut5"
    h0 = RNG.standard_normal((1, 48)).astype(np.float32)
    h = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"h0": h0})[0]
    wq = decode(MODES["kmeans_lut"].encode(w, 5, Layout()))
    np.testing.assert_allclose(h, h0 @ wq @ wq @ wq, rtol=1e-5, atol=1e-6)
