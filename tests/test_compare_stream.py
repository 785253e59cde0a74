"""Stateful streaming: a model run window by window with its state carried, checked by hand."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from quantzoo.compare import stream as S
from quantzoo.compare.core import prepare
from quantzoo.compare.inputs import InputSpec
from quantzoo.errors import QuantzooError


def _accumulator(path, scale: float = 1.0):
    """y = state + scale·sum(x) per row; the new state is y. Inputs x [B, W], state [B, 1], k (scalar)."""
    nodes = [helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=1),
             helper.make_node("Mul", ["s", "k"], ["ks"]),
             helper.make_node("Mul", ["ks", "scale"], ["kss"]),
             helper.make_node("Add", ["state", "kss"], ["y"]),
             helper.make_node("Identity", ["y"], ["stateN"])]
    g = helper.make_graph(nodes, "acc",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None]),
                           helper.make_tensor_value_info("state", TensorProto.FLOAT, [None, 1]),
                           helper.make_tensor_value_info("k", TensorProto.FLOAT, [])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1]),
                           helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [None, 1])],
                          [helper.make_tensor(name="scale", data_type=TensorProto.FLOAT, dims=[], vals=[scale]),
                           helper.make_tensor(name="axes", data_type=TensorProto.INT64, dims=[1], vals=[1])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


STREAM = {"input": "x", "frame": 2, "context": 1, "state": {"state": "stateN"}, "constants": {"k": 2.0}}
SPECS = [InputSpec("x", "tensor(float)", (None, None)), InputSpec("state", "tensor(float)", (None, 1)),
         InputSpec("k", "tensor(float)", ())]


def test_windows_carry_context_and_pad_with_zeros():
    w = S.windows(np.array([[1, 2, 3, 4, 5]], np.float32), frame=2, context=1)
    assert w.shape == (3, 1, 3)
    assert w[:, 0].tolist() == [[0, 1, 2], [2, 3, 4], [4, 5, 0]]


def test_stateful_runner_equals_the_hand_computed_running_sum(tmp_path):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(_accumulator(tmp_path / "acc.onnx")))
    stream = S.stream_of({"stream": STREAM}, SPECS, ["y", "stateN"], "acc.onnx")
    x = np.array([[1, 2, 3, 4, 5], [10, 0, 0, 0, 1]], np.float32)
    (y,) = S.run_batch(lambda s, n, f: s.run(n, f), sess, ["y"], {"x": x}, stream, SPECS)
    # windows (context 1, frame 2): row 0: [0,1,2] [2,3,4] [4,5,0] -> sums 3, 9, 9; times k = 2, accumulated
    assert y.shape == (2, 3, 1)
    assert y[0, :, 0].tolist() == [6.0, 24.0, 42.0]
    assert y[1, :, 0].tolist() == [20.0, 20.0, 22.0]


def test_first_step_is_the_first_window_with_zero_state_and_constants():
    stream = S.stream_of({"stream": STREAM}, SPECS, ["y", "stateN"], "acc.onnx")
    f = S.first_step({"x": np.ones((3, 5), np.float32)}, stream, SPECS)
    assert f["x"].shape == (3, 3) and f["state"].tolist() == [[0.0]] * 3 and f["k"].shape == () and float(f["k"]) == 2.0
    assert S.fed_specs(SPECS, stream) == SPECS[:1] and S.compared_outputs(["y", "stateN"], stream) == ["y"]


def test_a_stream_naming_an_unknown_state_output_is_refused():
    bad = {**STREAM, "state": {"state": "nope"}}
    with pytest.raises(QuantzooError, match="'nope', which is not an output of acc.onnx"):
        S.stream_of({"stream": bad}, SPECS, ["y", "stateN"], "acc.onnx")


def test_compare_runs_a_streamed_model_end_to_end(tmp_path):
    """prepare feeds only the streamed input, carries the state, compares only `y` ([N, T, 1])."""
    float_model = _accumulator(tmp_path / "f.onnx")
    changed = _accumulator(tmp_path / "q.onnx", scale=1.5)

    class M:  # the registry model fields prepare reads
        id, task, path, custom_ops, labels, dataset = "acc", "dense", None, None, None, None
        preprocessing = {"adapter": "arrays", "params": {"stream": STREAM, "batch_size": 4}}

    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(3):
        np.save(folder / f"s{i}.npy", np.arange(6, dtype=np.float32) * (i + 1))
    ev = prepare(float_model, folder, model=M(), cache=False)
    assert ev.output_names == ["y"] and ev.reference[0][0].shape == (3, 3, 1)
    same = ev.compare(float_model)
    assert same.metrics["y"]["max_abs_error"]["mean"] == 0.0
    other = ev.compare(changed)
    # windows of sample 0 ([0..5], context 1, frame 2): sums 1, 6, 12 -> y = 2, 14, 38 (float) vs 3, 21, 57;
    # sample i is (i + 1) times sample 0: largest differences 19, 38, 57
    assert other.metrics["y"]["max_abs_error"]["n"] == 3 and other.metrics["y"]["max_abs_error"]["mean"] == 38.0
    assert ev.feed(ev.batches[0])["state"].shape == (3, 1)


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None,
                    reason="espeak-ng is not installed (make test installs Debian's espeak-ng)")
def test_silero_vad_streams_over_generated_speech_and_finds_it(catalog_model, registry):
    orig = catalog_model("silero-vad")
    ev = prepare(orig, model="silero-vad", registry=registry, cache=False, limit=4)
    assert ev.output_names == ["output"] and ev.reference[0][0].shape == (4, 188, 1)  # 6 s = 187.5 windows
    m = ev.compare(orig).metrics["output"]
    assert m["vad_agreement"]["mean"] == 1.0 and m["vad_agreement"]["n"] == 4
    assert m["vad_accuracy_float"]["mean"] > 0.85  # silero finds the spoken sentences between the silences
