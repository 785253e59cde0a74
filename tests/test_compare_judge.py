"""compare/judge.py: a judge model's readings of a compressed model's outputs, scored as word error
rates; the judge's manifest param, its checks, and its identity in the comparison key."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace as N

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from quantzoo.compare.judge import JUDGINGS, Judge, judge_id, judge_model, judge_params, wer_metrics
from quantzoo.errors import QuantzooError
from quantzoo.pipeline.keys import comparison_key
from quantzoo.pipeline.plan import JobKeys

# the toy transcriber's vocabulary: 4 is the prompt, 3 ends a sequence and is not text
VOCAB = ["the", "Ġcat", "Ġdog", "<|end|>", "<|start|>"]


def toy_transcriber(path: Path) -> Path:
    """An encoder-decoder graph in Whisper's shape whose greedy transcript is always "the cat": the
    next token's scores are a table's row for the last token (start -> the -> cat -> end)."""
    table = np.zeros((5, 5), np.float32)
    table[4, 0] = table[0, 1] = table[1, 3] = 10.0
    nodes = [helper.make_node("Transpose", ["mel"], ["encoded"], perm=[0, 2, 1]),
             helper.make_node("Gather", ["tokens", "last"], ["prev"], axis=1),
             helper.make_node("Gather", ["table", "prev"], ["logits"], axis=0)]
    graph = helper.make_graph(
        nodes, "toy", [helper.make_tensor_value_info("mel", TensorProto.FLOAT, [None, 80, None]),
                       helper.make_tensor_value_info("tokens", TensorProto.INT64, [None, None]),
                       helper.make_tensor_value_info("encoded_in", TensorProto.FLOAT, [None, None, 80])],
        [helper.make_tensor_value_info("encoded", TensorProto.FLOAT, [None, None, 80]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 5])],
        [helper.make_tensor("last", TensorProto.INT64, [], [-1]),
         helper.make_tensor("table", TensorProto.FLOAT, [5, 5], table.ravel().tolist())])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def toy_judge(tmp_path: Path) -> Judge:
    model = N(id="toy-asr", task="speech-recognition", labels=VOCAB, path=None,
              preprocessing={"adapter": "whisper-mel", "params": {
                  "frames": 10, "batch_size": 1,
                  "decode": {"input": "mel", "encoded": "encoded", "features": "encoded_in", "tokens": "tokens",
                             "logits": "logits", "start": [4], "end": 3, "max_tokens": 4},
                  "metrics": {"special_from": 3}}})
    spec = {"model": "toy-asr", "params": {"batch_size": 2}}
    return Judge(model, toy_transcriber(tmp_path / "toy.onnx"), judge_params(model, spec), None)


def test_wer_metrics_score_each_reading_against_text_and_float():
    out = wer_metrics(["the cat sat", "a b", None], ["the cat", "a b", "x"], ["The cat sat.", None, "x"])
    assert out["asr_wer"] == [(1.0, 3.0), None, (0.0, 1.0)]
    assert out["asr_wer_float"] == [(0.0, 3.0), None, None]
    assert out["asr_wer_vs_float"] == [(1.0, 3.0), (0.0, 2.0), None]


def test_a_judge_transcribes_audio_and_scores_it(tmp_path):
    judge = toy_judge(tmp_path)
    assert judge.params["batch_size"] == 2 and judge.params["frames"] == 10  # the judging params laid over
    audio = np.zeros((3, 1, 1, 512), np.float32)  # three short recordings in one batch (Piper's [N, 1, 1, S])
    long = np.zeros((1, 1, 1, 4000), np.float32)   # 0.18 s at 22,050 Hz: longer than the 10-frame window
    judging = JUDGINGS["waveform"]
    assert judge.read(judging, [audio, long], {"sample_rate": 22050}) == ["the cat"] * 3 + [None]
    out = judge.metrics("waveform", [audio], [audio], ["The cat.", "the dog", None], {"sample_rate": 22050})
    assert out == {"asr_wer": [(0.0, 2.0), (1.0, 2.0), None], "asr_wer_float": [(0.0, 2.0), (1.0, 2.0), None],
                   "asr_wer_vs_float": [(0.0, 2.0)] * 3}
    assert len(judge.readings) == 1  # the float outputs are read once
    with pytest.raises(QuantzooError, match="the judge toy-asr cannot read the float model's output 0"):
        judge.metrics("waveform", [long], [long], [None], {"sample_rate": 22050})
    assert judge.metrics("dense", [audio], [audio], [None] * 3, {}) == {}


def test_judge_param_checks():
    assert judge_id({"params": {"metrics": {"sample_rate": 1}}}) is None
    for bad in ("whisper", {"model": 3}, {"model": "w", "extra": 1}, {"model": "w", "params": [1]}):
        with pytest.raises(QuantzooError, match="must be a mapping"):
            judge_id({"params": {"metrics": {"judge": bad}}})
    asr = N(id="asr", task="speech-recognition")
    tts = N(id="tts", path=None, preprocessing={"params": {"metrics": {"judge": {"model": "asr"}}}})
    assert judge_model(tts, N(models={"asr": asr, "tts": tts})) is asr
    with pytest.raises(QuantzooError, match="no model 'asr' in the registry; known: tts"):
        judge_model(tts, N(models={"tts": tts}))
    with pytest.raises(QuantzooError, match="a judge must be one of: speech-recognition"):
        judge_model(tts, N(models={"asr": N(id="asr", task="classification")}))
    with pytest.raises(QuantzooError, match="cannot judge itself"):
        judge_model(N(id="asr", path=None, preprocessing=tts.preprocessing), N(models={"asr": asr}))


def test_the_judge_is_part_of_the_comparison_key_only():
    m = N(task="speech-synthesis", preprocessing={}, labels=None, label_map=None, samples=None)
    v = N(spec=lambda: {"mode": "fp16"})
    plain = JobKeys.of(m, v, "f" * 64, None)
    a = JobKeys.of(m, v, "f" * 64, None, {"model": "w", "float_sha256": "1" * 64})
    b = JobKeys.of(m, v, "f" * 64, None, {"model": "w", "float_sha256": "2" * 64})
    assert len({plain.comparison("a" * 64), a.comparison("a" * 64), b.comparison("a" * 64)}) == 3
    assert a.artifact == b.artifact == plain.artifact and a.identity == plain.identity  # nothing else rebuilds
    # a model without a judge keeps the key it had
    assert plain.comparison("a" * 64) == comparison_key("a" * 64, "f" * 64, plain.identity)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_whisper_tiny_en_judges_espeak_speech(registry, catalog_cache):
    """The catalog's float whisper-tiny-en, as piper's manifest runs it, transcribes a known sentence."""
    from quantzoo.compare.judge import judge_of
    from quantzoo.compare.speech import ESPEAK_RATE, speak

    judge = judge_of(registry.model("piper-en-us-joe-medium"), registry, catalog_cache)  # converted on first use
    text = "Life expectancy has been reduced to 40 years."  # a Lee-corpus sentence tiny.en gets right
    wave = speak(text, "en-us", 150)[None, None]
    assert judge.read(JUDGINGS["waveform"], [wave], {"sample_rate": ESPEAK_RATE}) == [text]
    out = judge.metrics("waveform", [wave], [wave], [text], {"sample_rate": ESPEAK_RATE})
    assert out["asr_wer"] == out["asr_wer_float"] == out["asr_wer_vs_float"] == [(0.0, 8.0)]
