"""Speech recognition pieces (compare/asr.py): WER on hand-made transcripts, the byte-level token
decoder, Whisper's log-mel front end, and a spoken phrase with its known text."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from quantzoo.compare import asr as A
from quantzoo.compare.summary import summarize
from quantzoo.errors import QuantzooError


def test_word_error_rate_of_hand_made_transcripts():
    # one substitution (sat -> sit), one deletion (the), one insertion (very): 3 errors over 6 words
    assert A.wer_row("the cat sit on mat very", "The cat sat on the mat.") == (3.0, 6.0)
    assert A.wer_row("THE CAT, SAT!", "the cat sat") == (0.0, 3.0)
    assert A.wer_row("", "two words") == (2.0, 2.0)
    assert A.wer_row("anything", "...") is None  # no reference words: undefined
    # pooled over utterances: (3 + 0) errors / (6 + 3) words
    assert float(A.pooled_wer(np.array([[3.0, 6.0], [0.0, 3.0]]))) == pytest.approx(1 / 3)


def test_wer_summary_is_pooled_with_a_bootstrap_interval():
    rows = [(0.0, 5.0)] * 8 + [(5.0, 5.0)] * 2
    s = summarize("wer", rows)
    assert s["mean"] == pytest.approx(0.2) and s["n"] == 10
    assert s["ci95"][0] < 0.2 < s["ci95"][1] <= 0.5
    agree = summarize("transcript_agreement", [1.0] * 9 + [0.0])
    assert agree["mean"] == 0.9 and agree["ci95"] == pytest.approx([0.5958499, 0.9821238], abs=1e-6)  # Wilson


def test_normalise_keeps_numbers_and_contractions_comparable():
    assert A.normalise("It's 1,000 km -- the U.S. said.") == ["it's", "1000", "km", "the", "us", "said"]
    assert A.word_errors(A.normalise("It rose 11%."), A.normalise("it rose 11 percent")) == 1


def test_token_text_decodes_byte_level_bpe():
    # GPT-2's alphabet: "Ġ" is a space, "Ã©" the two bytes of é; ids from 4 on are special tokens
    vocab = ["Caf", "Ã©", "Ġopen", "!", "<|endoftext|>", "<|notimestamps|>"]
    assert A.token_text([5, 0, 1, 2, 3, 4, -1, 0], vocab, special_from=4) == "Café open!"
    assert A.token_text([-1, 0], vocab, 4) == ""


def test_compare_transcript_against_float_and_text():
    vocab = ["Ġthe", "Ġwoman", "Ġwas", "Ġnot", "Ġhurt", "Ġthird", "<|endoftext|>"]
    ref = np.array([[0, 1, 2, 3, 4, -1], [0, 1, 2, 3, 5, -1]])
    test = np.array([[0, 1, 2, 3, 4, -1], [0, 1, 2, 5, 5, 5]])
    ctx = {"vocab": vocab, "options": {"special_from": 6}, "labels": ["The woman was not hurt.", None]}
    out = A.compare_transcript(ref, test, ctx)
    assert out["transcript_agreement"] == [1.0, 0.0]
    assert out["wer"] == [(0.0, 5.0), (2.0, 5.0)]  # "not" -> "third", one "third" inserted
    assert out["wer_labels"] == [(0.0, 5.0), None] and out["wer_labels_float"] == [(0.0, 5.0), None]
    # records with the first step's scores: their pooled SNR rows too
    rec = np.zeros(2, dtype=[("ids", np.int32, (6,)), ("first", np.float32, (2,))])
    rec["ids"], rec["first"] = ref, [[3.0, 4.0], [1.0, 0.0]]
    rec2 = rec.copy()
    rec2["ids"], rec2["first"] = test, [[3.0, 4.0], [1.0, 1.0]]
    out = A.compare_transcript(rec, rec2, ctx)
    assert out["wer"] == [(0.0, 5.0), (2.0, 5.0)] and len(out["snr_db"]) == 2
    assert summarize("snr_db", out["snr_db"])["mean"] == pytest.approx(10 * np.log10(26.0), abs=1e-5)  # 26 / 1
    with pytest.raises(QuantzooError, match="needs the model's vocabulary"):
        A.compare_transcript(ref, test, {})


def test_mel_filters_and_log_mel_match_a_direct_computation():
    f = A.mel_filters()
    assert f.shape == (80, 201) and float(f.sum()) == pytest.approx(1.9990242, abs=1e-6)
    # a 1 kHz tone: the log-mel peaks in the band around 1 kHz, in every frame
    t = np.arange(16000) / 16000
    m = A.log_mel(0.5 * np.sin(2 * np.pi * 1000 * t).astype(np.float32), 100)
    centres = (np.arange(201) * 40.0) @ f.T / f.sum(axis=1)
    assert m.shape == (80, 100) and np.all(np.abs(centres[m.argmax(axis=0)] - 1000) < 60)
    # the floor: at most 8 (log10 units) below the peak, then (x + 4) / 4
    assert float(m.max() - m.min()) <= 2.0 + 1e-6


def test_phrases_cut_sentences_evenly():
    text = "One two three four five six seven eight nine ten eleven twelve thirteen. Short one."
    # 13 words, at most 8 a phrase: two phrases of 6 and 7; "Short one." is under 3 words
    assert A.phrases(text, 3, 8) == ["One two three four five six", "seven eight nine ten eleven twelve thirteen."]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_sentences_speaks_phrases_labelled_with_their_text(tmp_path):
    (tmp_path / "t.txt").write_text("The woman was not hurt. Police said the fire was lit deliberately.\n")
    skipped: list = []
    params = {"count": 2, "min_words": 4, "max_words": 8, "pad": 0.1, "voices": ["en-us"], "speeds": [175]}
    out = A.espeak_sentences(tmp_path / "t.txt", params, skipped)
    assert sorted(s.label for s in out) == ["Police said the fire was lit deliberately.", "The woman was not hurt."]
    a = out[0].data
    pad = int(0.1 * a.rate)
    assert np.all(a.samples[:pad] == 0) and np.all(a.samples[-pad:] == 0) and np.abs(a.samples).max() > 0.05
    assert A.espeak_sentences(tmp_path / "t.txt", params, [])[0].data.samples.tobytes() == a.samples.tobytes()
    with pytest.raises(QuantzooError, match="fewer than count 5"):
        A.espeak_sentences(tmp_path / "t.txt", {**params, "count": 5}, [])
    A.espeak_sentences(tmp_path / "t.txt", {**params, "max_seconds": 0.5}, skipped)
    assert len(skipped) == 2 and "longer than max_seconds" in skipped[0][1]



@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_whisper_tiny_en_transcribes_a_spoken_sentence(catalog_model, catalog_cache, registry, tmp_path):
    import onnxruntime as ort

    from quantzoo.compare.core import prepare
    from quantzoo.compare.preprocess import PREPROCESSORS
    from quantzoo.compare.sources import model_labels
    from quantzoo.customops import run

    orig = catalog_model("whisper-tiny-en")  # converted from the CTranslate2 file on first use
    ev = prepare(orig, model="whisper-tiny-en", registry=registry, cache=False, limit=2)
    assert ev.output_names == ["logits"] and ev.reference[0][0]["ids"].shape == (1, 24)
    m = ev.compare(orig).metrics["logits"]
    assert m["wer"]["mean"] == 0.0 and m["transcript_agreement"]["mean"] == 1.0
    # a spoken sentence with a known transcript, through the manifest's own front end and decoder
    (tmp_path / "t.txt").write_text("The cuts will take effect this financial year.\n")
    sample = A.espeak_sentences(tmp_path / "t.txt", {"count": 1, "voices": ["en-us"], "speeds": [175], "pad": 0.3}, [])[0]
    model = registry.model("whisper-tiny-en")
    feed = PREPROCESSORS["whisper-mel"].preprocess(sample.data, model.preprocessing["params"], list(ev.specs))
    sess = ort.InferenceSession(str(orig), providers=["CPUExecutionProvider"])
    (out,) = ev.stream.run_batch(run, sess, ["logits"], {"mel": feed["mel"][None]}, list(ev.specs))
    vocab = model_labels(model, sess, catalog_cache)
    assert A.token_text(out["ids"][0], vocab, 50256) == "The cuts will take effect this financial year."
