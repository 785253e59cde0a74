"""Greedy decoding of an encoder-decoder graph (compare/seq2seq.py), on a tiny ONNX model whose
transcripts are known by construction."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from quantzoo.compare import seq2seq as Q
from quantzoo.compare.inputs import InputSpec
from quantzoo.compare.stream import compared_outputs, fed_specs, first_step, run_batch, runner_of
from quantzoo.customops import run
from quantzoo.errors import QuantzooError

V, END = 6, 5


def _tiny(path):
    """encoded = sum of mel over its channels [B, T, 1]; logits = onehot(last token + 1) · 2
    + sum(encoded_in) · onehot(END): silence counts 1, 2, 3 ... up to the end token, a loud
    recording ends at once."""
    table = np.zeros((V, V), np.float32)
    for t in range(V):
        table[t, min(t + 1, V - 1)] = 2.0
    end = np.zeros(V, np.float32)
    end[END] = 1.0
    nodes = [
        helper.make_node("ReduceSum", ["mel", "ax1"], ["s"], keepdims=0),
        helper.make_node("Unsqueeze", ["s", "ax2"], ["encoded"]),
        helper.make_node("Gather", ["tokens", "last"], ["lt"], axis=1),
        helper.make_node("Gather", ["table", "lt"], ["row"], axis=0),
        helper.make_node("ReduceSum", ["encoded_in", "ax12"], ["loud"], keepdims=0),
        helper.make_node("Unsqueeze", ["loud", "ax1"], ["loud1"]),
        helper.make_node("Mul", ["loud1", "end"], ["push"]),
        helper.make_node("Add", ["row", "push"], ["logits"]),
    ]
    inits = [helper.make_tensor("ax1", TensorProto.INT64, [1], [1]),
             helper.make_tensor("ax2", TensorProto.INT64, [1], [2]),
             helper.make_tensor("ax12", TensorProto.INT64, [2], [1, 2]),
             helper.make_tensor("last", TensorProto.INT64, [], [-1]),
             helper.make_tensor("table", TensorProto.FLOAT, [V, V], table.ravel().tolist()),
             helper.make_tensor("end", TensorProto.FLOAT, [V], end.tolist())]
    g = helper.make_graph(nodes, "tiny-seq2seq",
                          [helper.make_tensor_value_info("mel", TensorProto.FLOAT, [None, 2, None]),
                           helper.make_tensor_value_info("tokens", TensorProto.INT64, [None, None]),
                           helper.make_tensor_value_info("encoded_in", TensorProto.FLOAT, [None, None, 1])],
                          [helper.make_tensor_value_info("encoded", TensorProto.FLOAT, [None, None, 1]),
                           helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, V])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


PARAMS = {"decode": {"input": "mel", "encoded": "encoded", "features": "encoded_in", "tokens": "tokens",
                     "logits": "logits", "start": [0], "end": END, "max_tokens": 8}}
SPECS = [InputSpec("mel", "tensor(float)", (None, 2, None)), InputSpec("tokens", "tensor(int64)", (None, None)),
         InputSpec("encoded_in", "tensor(float)", (None, None, 1))]


def test_the_runner_decodes_each_recording_greedily(tmp_path):
    sess = _tiny(tmp_path / "m.onnx")
    d = runner_of(PARAMS, SPECS, ["encoded", "logits"], "m.onnx")
    assert isinstance(d, Q.Decode)
    assert [s.name for s in fed_specs(SPECS, d)] == ["mel"]
    assert compared_outputs(["encoded", "logits"], d) == ["logits"]
    mel = np.zeros((2, 2, 4), np.float32)
    mel[1] = 3.0  # loud: the end token wins at the first step
    (out,) = run_batch(run, sess, ["logits"], {"mel": mel}, d, SPECS)
    assert out["ids"].dtype == np.int32 and out["ids"].tolist() == [[1, 2, 3, 4, -1, -1, -1, -1], [-1] * 8]
    assert out.dtype.names == ("ids",)  # no first-step scores unless asked for
    d2 = runner_of({"decode": {**PARAMS["decode"], "first_scores": True}}, SPECS, ["encoded", "logits"], "m.onnx")
    (out,) = run_batch(run, sess, ["logits"], {"mel": mel}, d2, SPECS)
    assert out["first"].tolist() == [[0, 2, 0, 0, 0, 0], [0, 2, 0, 0, 0, 24]]  # after token 0: 1; loud: END
    # what a runtime check runs: one call with the prompt and a one-step dummy encoding
    feed = first_step({"mel": mel}, d, SPECS)
    assert feed["tokens"].tolist() == [[0], [0]] and feed["encoded_in"].shape == (2, 2, 1)


def test_max_tokens_cuts_a_sequence_that_does_not_end(tmp_path):
    sess = _tiny(tmp_path / "m.onnx")
    d = runner_of({"decode": {**PARAMS["decode"], "max_tokens": 3}}, SPECS, ["encoded", "logits"], "m.onnx")
    (out,) = run_batch(run, sess, ["logits"], {"mel": np.zeros((1, 2, 4), np.float32)}, d, SPECS)
    assert out["ids"].tolist() == [[1, 2, 3]]


def test_suppressed_ids_are_never_chosen():
    scores = np.array([[0.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    d = Q.Decode("m", "e", "f", "t", "l", start=(0,), end=END, max_tokens=3, suppress=(1,), suppress_from=4,
                 suppress_first=(2,))
    ids, first = Q.greedy(lambda toks: np.repeat(scores, len(toks), axis=0), np.zeros((1, 1), np.int64), d)
    assert first.tolist() == scores.tolist()  # the scores as the model gave them, before suppression
    # step 0: 1 suppressed always, 2 at the first step, 4 and 5 from suppress_from -> 3; then 2, 2
    assert ids.tolist() == [[3, 2, 2]]


def test_bad_decode_params_name_what_is_wrong():
    with pytest.raises(QuantzooError, match="decode.tokens names 'toks', which is not an input of m.onnx"):
        runner_of({"decode": {**PARAMS["decode"], "tokens": "toks"}}, SPECS, ["encoded", "logits"], "m.onnx")
    with pytest.raises(QuantzooError, match="must be a mapping with"):
        runner_of({"decode": {"input": "mel"}}, SPECS, ["encoded", "logits"], "m.onnx")
    with pytest.raises(QuantzooError, match="both 'stream' and 'decode'"):
        runner_of({**PARAMS, "stream": {"input": "mel", "frame": 2}}, SPECS, ["encoded", "logits"], "m.onnx")
