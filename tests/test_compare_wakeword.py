"""Keyword spotting: the wake-phrases adapter's labels and the wake-score metrics."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from quantzoo.compare import speech as SP
from quantzoo.compare import wakeword as WW
from quantzoo.compare.kinds import compare_batch
from quantzoo.compare.summary import summarize
from quantzoo.compare.tasks import output_kind

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (make test installs Debian's espeak-ng)")

TEXT = "The river rose all night long. Nobody in the village slept very well."
WAKE = "[[h'eI m'aIkr0ft]]"


@needs_espeak
def test_wake_phrases_are_labelled_by_construction_and_deterministic(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    params = {"seed": 1, "wake": [WAKE], "wake_count": 2, "other_count": 2, "near": ["hey Mike"], "near_count": 1,
              "duration": 1.5,
              "position": [1.0, 1.0], "min_words": 4, "max_words": 8, "voices": ["en-us"], "speeds": [175]}
    s1 = WW.wake_phrases(tmp_path / "t.txt", params, [])
    s2 = WW.wake_phrases(tmp_path / "t.txt", params, [])
    assert [(s.key, s.label) for s in s1] == [("wake-0000", "wake"), ("wake-0001", "wake"),
                                               ("other-0000", "other"), ("other-0001", "other"),
                                               ("near-0000", "other")]
    assert [s.data.samples.tobytes() for s in s1] == [s.data.samples.tobytes() for s in s2]
    n = round(1.5 * SP.ESPEAK_RATE)
    assert all(len(s.data.samples) == n and s.data.rate == SP.ESPEAK_RATE for s in s1)
    # the wake phrase is espeak's output for the phoneme string, trimmed, ending at the window's end
    phrase = SP.speak(WAKE, "en-us", 175)
    a, b = SP.trimmed_extent(phrase)
    np.testing.assert_array_equal(s1[0].data.samples[n - (b - a):], phrase[a:b])
    assert not np.any(s1[0].data.samples[:n - (b - a)])


def test_the_decision_is_the_sigmoid_of_the_logit_at_the_threshold():
    th = 0.965
    edge = np.log(th / (1 - th))  # sigmoid(edge) == th
    d = WW.decisions(np.array([edge - 1e-6, edge + 1e-6, 10.0, -10.0]), th)
    assert d.tolist() == [False, True, True, False]


def test_wake_metrics_on_hand_made_scores_with_known_answers():
    labels = ["wake", "wake", "wake", "other", "other", None]
    ref = np.array([5.0, 5.0, -5.0, -5.0, 5.0, 5.0], np.float32)   # float: hit, hit, miss, ok, false wake
    test = np.array([5.0, -5.0, -5.0, -5.0, -5.0, 5.0], np.float32)  # compressed: hit, miss, miss, ok, ok
    out = compare_batch("wake-score", ref, test, {"options": {"threshold": 0.965}, "labels": labels})
    assert out["wake_agreement"] == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    assert out["wake_accuracy_float"] == [1.0, 1.0, 0.0, 1.0, 0.0, None]
    assert out["wake_accuracy"] == [1.0, 0.0, 0.0, 1.0, 1.0, None]
    assert out["wake_recall_float"] == [1.0, 1.0, 0.0, None, None, None]
    assert out["false_wake_float"] == [None, None, None, 0.0, 1.0, None]
    assert out["false_wake"] == [None, None, None, 0.0, 0.0, None]
    s = summarize("wake_agreement", out["wake_agreement"])
    assert s["mean"] == pytest.approx(4 / 6) and s["n"] == 6
    assert 0 < s["ci95"][0] < 4 / 6 < s["ci95"][1] < 1  # a Wilson interval over recordings
    assert summarize("wake_recall", out["wake_recall"])["excluded"] == 3
    # the scores' pooled SNR: signal 6·25, error 2·100 -> 10·log10(150 / 200)
    assert summarize("snr_db", out["snr_db"])["mean"] == pytest.approx(10 * np.log10(150 / 200), abs=1e-6)


def test_keyword_spotting_outputs_of_rank_one_and_two_are_wake_scores():
    assert output_kind("keyword-spotting", 1) == output_kind("keyword-spotting", 2) == "wake-score"
