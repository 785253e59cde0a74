"""compare/speakermetrics.py: same/different-voice decisions on pairs of utterances, on hand-made
embeddings with known answers, pooled and bootstrapped the way the summaries do it."""

from __future__ import annotations

import numpy as np
import pytest

from quantzoo.compare import speakermetrics as SM
from quantzoo.compare.intervals import wilson
from quantzoo.compare.kinds import compare_batch
from quantzoo.compare.metrics import METRICS
from quantzoo.compare.summary import summarize


def _voices():
    """Two voices, two utterances each: voice A near axis 0, voice B near axis 1 (unit-ish vectors)."""
    ref = np.array([[1.0, 0.1, 0.0], [1.0, 0.0, 0.1], [0.1, 1.0, 0.0], [0.0, 1.0, 0.1]])
    return ref, ["A", "A", "B", "B"]


def _rows(ref, test, labels, threshold=0.5):
    index = {v: i for i, v in enumerate(sorted({y for y in labels if y is not None}))}
    ctx = {"options": {"same_speaker_threshold": threshold}, "labels": labels, "voice_index": index}
    return compare_batch("speaker-embedding", ref, test, ctx)


def test_a_perfect_copy_agrees_on_every_pair_and_is_as_accurate_as_the_float_model():
    ref, labels = _voices()
    out = _rows(ref, ref.copy(), labels)
    rows = np.array(out["speaker_agreement"])
    assert out["cosine"] == [1.0] * 4
    assert SM.pooled_agreement(rows) == 1.0
    assert SM.pooled_accuracy_float(rows) == 1.0 and SM.pooled_accuracy(rows) == 1.0


def test_a_perfect_copy_gets_wilsons_interval_at_the_pairs_of_the_smaller_class():
    # 12 utterances of 4 voices: 12 same-voice pairs, 54 different-voice ones; every resample of
    # voices pools to 1.0, so the bootstrap alone would publish [1, 1]
    rng = np.random.default_rng(0)
    voices = np.repeat(np.arange(4), 3)
    emb = np.eye(4)[voices] + 0.1 * rng.random((12, 4))
    rows = SM.pair_rows(emb, emb.copy(), voices.tolist(), 0.9)
    labels = [f"v{v}" for v in voices]
    assert SM.units_agreement(np.array(rows)) == SM.units_accuracy(np.array(rows)) == 12.0
    for name in ("speaker_agreement", "speaker_accuracy", "speaker_accuracy_float"):
        s = summarize(name, rows, clusters=labels)
        assert s["mean"] == 1.0 and s["n"] == 12
        # 12 pairs of 12 utterances of 4 voices: each voice's pairs count once (12 x 4/12)
        assert s["ci95"] == [float(f"{x:.7g}") for x in wilson(4, 4)]  # [0.51, 1]
        assert summarize(name, rows)["ci95"] == [float(f"{x:.7g}") for x in wilson(12, 12)]  # unclustered: [0.7575, 1]


def test_a_model_that_merges_the_voices_is_judged_on_balanced_pairs():
    # the compressed model maps every utterance near one vector: all 6 pairs "same"
    ref, labels = _voices()
    test = np.array([[1.0, 1.0, 0.0]] * 3 + [[1.0, 1.0, 0.01]])
    rows = np.array(_rows(ref, test, labels)["speaker_agreement"])
    # float says "same" on the 2 same-voice pairs (agrees there: 1.0) and "different" on the 4
    # others (the compressed model disagrees on all: 0.0): balanced agreement 0.5
    assert SM.pooled_agreement(rows) == 0.5
    # against the voices: all 2 same-voice pairs right, none of the 4 different-voice pairs
    assert SM.pooled_accuracy(rows) == 0.5
    assert SM.pooled_accuracy_float(rows) == 1.0


def test_one_flipped_pair_out_of_four_different_ones_costs_an_eighth():
    ref, labels = _voices()
    test = ref.copy()
    test[3] = [1.0, 0.3, 0.0]  # utterance 3 (voice B) now sounds like voice A
    rows = np.array(_rows(ref, test, labels)["speaker_agreement"])
    # compressed decisions: (0,3) and (1,3) become "same" (2 of the 4 different pairs flipped),
    # (2,3) becomes "different" (1 of the 2 same pairs flipped)
    assert SM.pooled_agreement(rows) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert SM.pooled_accuracy(rows) == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_copies_of_one_utterance_in_a_resample_are_not_a_pair():
    ref, labels = _voices()
    rows = np.array(_rows(ref, ref.copy(), labels)["speaker_agreement"])
    # a resample holding utterance 0 three times and utterance 2 once: the only pairs are (0, 2),
    # a different-voice pair the models agree on; copies of 0 would be "same" pairs of one voice
    resample = rows[[0, 0, 0, 2]][None]
    assert SM.pooled_accuracy(resample)[0] == 1.0
    both = np.stack([rows, rows[[0, 0, 0, 2]]])
    assert SM.pooled_agreement(both).tolist() == [1.0, 1.0]


def test_the_summary_counts_utterances_and_resamples_voices():
    rng = np.random.default_rng(0)
    centres = np.abs(rng.standard_normal((6, 16))) + 0.5
    voices = np.repeat(np.arange(6), 4)
    ref = centres[voices] + 0.4 * rng.standard_normal((24, 16))
    test = ref + 0.05 * rng.standard_normal((24, 16))
    labels = [f"v{v}" for v in voices]
    th, eer = SM.eer_threshold(ref, labels)
    out = _rows(ref, test, labels, th)
    s = summarize("speaker_agreement", out["speaker_agreement"], clusters=labels)
    assert s["n"] == 24 and s["std"] is None
    assert s["ci95"][0] <= s["mean"] <= s["ci95"][1] <= 1.0
    assert s["ci95"][0] < s["ci95"][1]  # some pairs sit near the threshold: the resamples differ
    assert METRICS["speaker_agreement"].format(s["mean"]).endswith("%")


def test_without_a_threshold_or_labels_only_what_is_defined_is_reported():
    ref, labels = _voices()
    plain = compare_batch("speaker-embedding", ref, ref, {"options": {}})
    assert set(plain) == {"snr_db", "psnr_db", "cosine", "max_abs_error"}
    unlabelled = compare_batch("speaker-embedding", ref, ref, {"options": {"same_speaker_threshold": 0.5}})
    assert "speaker_agreement" in unlabelled and "speaker_accuracy" not in unlabelled
    part = _rows(ref, ref, ["A", None, "B", "B"])
    assert [r is None for r in part["speaker_accuracy"]] == [False, True, False, False]


def test_the_equal_error_threshold_separates_two_clean_voices():
    ref, labels = _voices()
    th, eer = SM.eer_threshold(ref, labels)
    assert eer == 0.0
    # same-voice cosines are 1 / 1.01, different-voice ones at most 0.2 / 1.01: the midpoint of the gap
    assert th == pytest.approx((1.0 + 0.2) / 1.01 / 2, abs=1e-6)
    overlapping = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]])
    th2, eer2 = SM.eer_threshold(overlapping, ["A", "A", "B", "B"])
    assert 0.0 < eer2 < 1.0
    with pytest.raises(ValueError):
        SM.eer_threshold(ref, ["A", "B", "C", "D"])
