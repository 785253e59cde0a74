"""Intervals (compare/intervals.py) and the summaries that carry them (compare/summary.py)."""

from __future__ import annotations

import json

import pytest

from quantzoo.compare.intervals import bootstrap, wilson
from quantzoo.compare.summary import summarize


def test_wilson_matches_the_hand_computed_bound_for_97_of_100():
    # p = .97, z = 1.96: centre (p + z²/2n)/(1 + z²/n) = .95250, half-width .03713
    lo, hi = wilson(97, 100)
    assert lo == pytest.approx(0.9155, abs=5e-5) and hi == pytest.approx(0.9897, abs=5e-5)
    s = summarize("string_agreement", [1.0] * 97 + [0.0] * 3)
    assert s["n"] == 100 and s["mean"] == 0.97 and s["ci95"] == pytest.approx([0.9155, 0.9897], abs=5e-5)


def test_wilson_is_honest_at_zero_and_one_hundred_percent():
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0
    assert wilson(20, 20)[0] == pytest.approx(0.8389, abs=5e-5)
    assert wilson(0, 0) is None


def test_means_get_a_bootstrap_interval_around_the_mean():
    s = summarize("cer", [0.0, 0.1, 0.2, 0.0, 0.05, 0.3, 0.0, 0.1])
    assert s["ci95"][0] < s["mean"] < s["ci95"][1]
    assert 0.0 <= s["ci95"][0] and s["ci95"][1] <= 0.3


def test_intervals_are_deterministic_to_the_byte():
    values = [0.1 * (i % 7) for i in range(50)]
    rows = [(float(i + 1), 0.01 * (i % 3 + 1), 4.0, 1.0) for i in range(30)]
    photos = [f"p{i // 5}.png" for i in range(30)]

    def doc():
        return json.dumps({"cer": summarize("cer", values), "snr": summarize("snr_db", rows),
                           "views": summarize("snr_db", rows, photos),
                           "agree": summarize("top1_agreement", [float(i % 4 > 0) for i in range(30)], photos)},
                          sort_keys=True, allow_nan=False)

    assert doc() == doc()
    assert bootstrap(values) == bootstrap(list(values))


def test_views_of_one_photo_count_as_one_photo():
    # 6 photos × 5 views; views of a photo agree or disagree together
    photos = [f"p{i // 5}.png#v{i % 5}" .split("#")[0] for i in range(30)]
    agree = [float(i // 5 != 0) for i in range(30)]
    flat, clustered = summarize("top1_agreement", agree), summarize("top1_agreement", agree, photos)
    assert flat["mean"] == clustered["mean"] and flat["n"] == clustered["n"] == 30
    assert clustered["ci95"] == pytest.approx(list(wilson(5 / 6 * 6, 6)), abs=1e-6)  # Wilson with n = 6 photos
    assert clustered["ci95"][0] < flat["ci95"][0]
    cer = [0.5 * (i // 5 == 0) for i in range(30)]
    wide, narrow = summarize("cer", cer, photos)["ci95"], summarize("cer", cer)["ci95"]
    assert wide[1] - wide[0] > narrow[1] - narrow[0]


def test_a_pooled_interval_resamples_samples_and_pools_again():
    rows = [(1.0, 0.01, 1.0, 1.0), (1.0, 0.0001, 1.0, 1.0)] * 10
    s = summarize("snr_db", rows)
    # pooled: 10·log10(20 / 0.101) = 22.967 dB; each resample mixes noisy and clean samples
    assert s["mean"] == pytest.approx(22.9671, abs=1e-4) and s["std"] is None and s["n"] == 20
    assert s["ci95"][0] < s["mean"] < s["ci95"][1] < 30
