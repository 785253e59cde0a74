"""Text to Piper phoneme ids (compare/phonemes.py): Piper's rules on hand-made maps with known
answers, and espeak-ng 1.51 (Debian's libespeak-ng) on sentences with known phonemes."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from quantzoo.compare import phonemes as P
from quantzoo.compare.preprocess import PREPROCESSORS, InputSpec
from quantzoo.compare.speech import espeak_version
from quantzoo.errors import QuantzooError

needs_espeak = pytest.mark.skipif(espeak_version() is None or not espeak_version().startswith("1.51"),
                                  reason="needs Debian's espeak-ng 1.51 (make espeak)")
MAP = {"_": [0], "^": [1], "$": [2], " ": [3], ",": [8], ".": [10], "?": [13],
       "a": [14], "b": [15], "ˈ": [120], "̃": [141]}


def test_ids_are_bos_pad_interleaved_and_eos():
    ids, missing = P.phoneme_ids(["ˈ", "a", " ", "b", "."], MAP)
    assert ids == [1, 0, 120, 0, 14, 0, 3, 0, 15, 0, 10, 0, 2]
    assert missing == []


def test_missing_phonemes_are_left_out_and_named():
    ids, missing = P.phoneme_ids(["a", "z", "b"], MAP)
    assert ids == [1, 0, 14, 0, 15, 0, 2] and missing == ["z"]
    with pytest.raises(QuantzooError, match="BOS"):
        P.phoneme_ids(["a"], {"a": [1]})


def test_piper_keeps_punctuation_drops_language_flags_and_decomposes():
    # "ã" is one code point here; NFD gives "a" + combining tilde, as Piper does
    got = P.piper_phonemes([("ˈa\u00e3", ","), ("(fr)b(en)a", "?"), ("ab", "")])
    assert got == ["ˈ", "a", "a", "\u0303", ",", " ", "b", "a", "?", "a", "b"]
    assert P.phoneme_ids(got, MAP)[0] == [1, 0, 120, 0, 14, 0, 14, 0, 141, 0, 8, 0, 3, 0, 15, 0, 14, 0, 13, 0,
                                           14, 0, 15, 0, 2]


def test_terminator_read_past_espeaks_lookahead():
    assert P.terminator_of("Hello world, t", last=False) == ","
    assert P.terminator_of("went home.", last=True) == "."
    assert P.terminator_of("went home", last=True) == ""
    assert P.terminator_of("he said \"no!\" T", last=False) == "!"


@needs_espeak
def test_espeak_clauses_match_the_command_line_and_known_ipa():
    text = "Hello world, this is a test."
    clauses = P.espeak_clauses(text, "en-us")
    assert clauses == [("həlˈoʊ wˈɜːld", ","), ("ðɪs ɪz ɐ tˈɛst", ".")]
    cli = subprocess.run([shutil.which("espeak-ng"), "-q", "--ipa", "-v", "en-us", text],
                         capture_output=True, text=True).stdout.split("\n")
    assert [c for c, _ in clauses] == [line.strip() for line in cli if line.strip()]
    assert P.espeak_clauses(text, "en-us") == clauses  # deterministic


@needs_espeak
def test_sentence_ids_and_the_sentences_that_are_skipped():
    ipa = "ðə wˈʊmən wʌz nˌɑːt hˈɜːt."  # espeak-ng 1.51, en-us, clause terminator kept
    ids_map = {**MAP, **{ch: [200 + i] for i, ch in enumerate(sorted(set(ipa) - set(MAP)))}}
    ids, why = P.sentence_ids("The woman was not hurt.", "en-us", ids_map)
    assert why is None
    want = [1, 0]
    for ch in ipa:
        want += [ids_map[ch][0], 0]
    assert ids == want + [2]
    # espeak ends a sentence at "Mr.": Piper would speak two sentences; one sample is one sentence
    assert P.sentence_ids("Mr. Smith went home.", "en-us", ids_map) == (None, "espeak-ng ends a sentence inside it "
                                                                          "(at '.': an abbreviation?)")
    none, why = P.sentence_ids("Big cats.", "en-us", ids_map)
    assert none is None and why.startswith("phonemes not in the voice's phoneme_id_map: ")


@needs_espeak
def test_adapter_reads_text_and_voice_config(tmp_path):
    ipa = "ðə wˈʊmən wʌz nˌɑːt hˈɜːt."
    full = {**MAP, **{ch: [100 + i] for i, ch in enumerate(sorted(set(ipa) - set(MAP)))}}
    (tmp_path / "voice.onnx.json").write_text(json.dumps({"phoneme_id_map": full, "espeak": {"voice": "en-us"}}))
    (tmp_path / "t.cor").write_text("The woman was not hurt. Big cats jump high. Too short.\n", encoding="utf-8")
    skipped: list = []
    got = P.piper_sentences(tmp_path, {"count": 10, "min_words": 3, "max_words": 8}, skipped)
    assert [(s.key, s.label) for s in got] == [("lee-0000", "The woman was not hurt.")]
    assert got[0].data.dtype == np.int64 and got[0].data.tolist() == P.sentence_ids(got[0].label, "en-us", full)[0]
    assert [k for k, _ in skipped] == ["lee-0001"] and "phoneme_id_map" in skipped[0][1]
    with pytest.raises(QuantzooError, match="Piper voice config"):
        P.piper_sentences(tmp_path / "t.cor", {"config": "missing.json"}, [])


def test_preprocessor_feeds_ids_length_and_scales():
    specs = [InputSpec("input", "tensor(int64)", (None, None)), InputSpec("input_lengths", "tensor(int64)", (None,)),
             InputSpec("scales", "tensor(float)", (3,))]
    f = PREPROCESSORS["phoneme-ids"].preprocess(np.array([1, 0, 14, 0, 2]), {"length_scale": 1.5}, specs)
    assert f["input"].dtype == np.int64 and f["input"].tolist() == [1, 0, 14, 0, 2]
    assert f["input_lengths"].shape == () and int(f["input_lengths"]) == 5
    assert f["scales"].dtype == np.float32 and f["scales"].tolist() == [0.0, 1.5, 0.0]
    with pytest.raises(QuantzooError, match="phoneme ids"):
        P.phoneme_input(np.zeros((2, 2), np.float32), {}, specs)
    with pytest.raises(QuantzooError, match="Piper's inputs"):
        P.phoneme_input(np.array([1, 2]), {}, specs[:1])


@pytest.mark.slow
@needs_espeak
def test_the_real_voice_maps_a_known_sentence_and_speaks_deterministically_without_noise(catalog_model, catalog_dataset,
                                                                                          registry):
    import onnxruntime as ort

    root = catalog_dataset("piper-sentences")
    cfg = P.voice_config(root / "en_US-joe-medium.onnx.json")
    ids, why = P.sentence_ids("The woman was not hurt.", cfg["espeak"]["voice"], cfg["phoneme_id_map"])
    assert why is None and ids == [1, 0, 41, 0, 59, 0, 3, 0, 35, 0, 120, 0, 100, 0, 25, 0, 59, 0, 26, 0, 3, 0, 35, 0,
                                   102, 0, 38, 0, 3, 0, 26, 0, 121, 0, 51, 0, 122, 0, 32, 0, 3, 0, 20, 0, 120, 0, 62, 0,
                                   122, 0, 32, 0, 10, 0, 2]  # ^ _ ð _ ə _ ␣ _ w _ ˈ … t _ . _ $
    path = str(catalog_model("piper-en-us-joe-medium"))
    feed = P.phoneme_input(np.array(ids), {}, [InputSpec(n, "", ()) for n in ("input", "input_lengths", "scales")])
    feed = {"input": feed["input"][None], "input_lengths": feed["input_lengths"][None], "scales": feed["scales"]}
    runs = [ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feed)[0] for _ in range(2)]
    # both noise scales 0: the two RandomNormalLike draws are multiplied by zero, the audio is byte-identical
    assert runs[0].tobytes() == runs[1].tobytes()
    assert runs[0].shape[:3] == (1, 1, 1) and runs[0].shape[-1] % 256 == 0 and 0.8 < runs[0].shape[-1] / 22050 < 3
    noisy = {**feed, "scales": np.array([0.667, 1.0, 0.8], np.float32)}
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert sess.run(None, noisy)[0].tobytes() != sess.run(None, noisy)[0].tobytes()  # Piper's defaults are random
