"""Summaries of per-sample values (mean, n, interval, excluded) and how they read in tables."""

from __future__ import annotations

import numpy as np
import pytest

from quantzoo.catalog import MetricSummary
from quantzoo.compare.intervals import bootstrap, wilson
from quantzoo.compare.metrics import METRICS
from quantzoo.compare.summary import excluded_note, format_summary, summarize


@pytest.mark.parametrize("name, summary, text", [
    ("string_agreement", (0.97, 0.17, 100, (0.915481, 0.989745), 0), "97.00 % (91.55–98.97, n=100)"),
    ("snr_db", (48.04, 2.0, 26, (46.51, 49.62), 0), "48.0 dB (46.5–49.6, n=26)"),
    ("cosine", (0.99991, 0.0001, 14, (0.99987, 0.99994), 12), "0.99991 (0.99987–0.99994, n=14 of 26)"),
    ("max_abs_error", (0.0123, 0.001, 26, (0.0111, 0.0135), 0), "0.0123 (0.0111–0.0135, n=26)"),
    ("top1_agreement", (1.0, 0.0, 50, None, 0), "100.00 % (n=50)"),   # an older comparison: n, no interval
    ("snr_db", (31.2, 1.0, 9, None, 0), "31.2 dB"),
])
def test_a_figure_is_shown_with_its_interval_and_n(name, summary, text):
    assert format_summary(name, MetricSummary(*summary)) == text


def test_the_interval_matches_a_hand_computed_wilson_bound():
    # 97 of 100: p = 0.97, z = 1.96; centre (p + z²/2n) / (1 + z²/n),
    # half-width z/(1 + z²/n) · √(p(1−p)/n + z²/4n²)
    z, n, p = 1.959963984540054, 100, 0.97
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    assert (round(centre - half, 4), round(centre + half, 4)) == (0.9155, 0.9897)
    from quantzoo.compare.intervals import wilson

    summary = MetricSummary(p, 0.17, n, wilson(97, n))
    assert format_summary("string_agreement", summary) == "97.00 % (91.55–98.97, n=100)"


def test_excluded_samples_are_named_in_the_cell_note():
    s = MetricSummary.from_json({"mean": 0.999, "std": 0.0, "n": 14, "ci95": [0.998, 0.9995], "excluded": 12}, "test")
    assert excluded_note("cosine", s) == "cosine over 14 of 26 samples (12 left out where it is undefined)"
    assert excluded_note("cosine", MetricSummary.from_json({"mean": 0.999, "std": 0.0, "n": 26}, "test")) is None


def _sig(pair) -> list[float]:
    return [float(f"{x:.7g}") for x in pair]


def test_perfect_pooled_detections_get_wilsons_interval_at_their_boxes_not_a_point():
    # 3 photos, 40 float boxes, every one matched: the bootstrap over photos is [1, 1]; the
    # interval is Wilson's at 40 of 40 boxes (not at 3 photos: [0.44, 1])
    rows = [[10.0, 10.0, 10.0], [12.0, 12.0, 12.0], [18.0, 18.0, 18.0]]
    assert bootstrap(np.array(rows), METRICS["detection_f1"].pool) == (1.0, 1.0)
    for name in ("detection_f1", "detection_precision", "detection_recall"):
        s = summarize(name, rows)
        assert s["mean"] == 1.0 and s["n"] == 3 and s["ci95"] == _sig(wilson(40, 40))
    assert summarize("detection_f1", rows)["ci95"][0] == pytest.approx(0.9124, abs=1e-4)
    # views of fewer photos: each photo's boxes count once (3 samples of 2 photos: 40 x 2/3)
    assert summarize("detection_f1", rows, clusters=["a", "a", "b"])["ci95"] == _sig(wilson(80 / 3, 80 / 3))


def test_a_bootstrap_wider_than_wilson_is_kept():
    # photos that disagree: 0 of 5 boxes on two photos, 5 of 5 on two; pooled F1 0.5 over 20 boxes
    rows = [[0.0, 5.0, 5.0]] * 2 + [[5.0, 5.0, 5.0]] * 2
    boot, floor = bootstrap(np.array(rows), METRICS["detection_f1"].pool), wilson(10, 20)
    assert boot[0] < floor[0] and floor[1] < boot[1]
    assert summarize("detection_f1", rows)["ci95"] == _sig(boot)


@pytest.mark.parametrize("name", ["wer", "wer_labels", "wer_labels_float", "asr_wer", "asr_wer_float", "asr_wer_vs_float"])
def test_a_word_error_rate_is_a_count_ratio_over_its_reference_words_up_to_one(name):
    # rows (word errors, reference words): 9 sentences of 10 words
    none_wrong, all_wrong = [[0.0, 10.0]] * 9, [[10.0, 10.0]] * 9
    assert bootstrap(np.array(none_wrong), METRICS[name].pool) == (0.0, 0.0)  # a point, without the floor
    assert summarize(name, none_wrong)["ci95"] == _sig(wilson(0, 90))      # 0 of 90 words: up to 4.1 %
    assert summarize(name, all_wrong)["ci95"] == _sig(wilson(90, 90))
    # more insertions than words (2.9): not a share; the bootstrap stands, not a hull down to Wilson's 1
    babble = [[29.0, 10.0]] * 8 + [[25.0, 10.0]]
    s = summarize(name, babble)
    assert s["mean"] > 1 and s["ci95"] == _sig(bootstrap(np.array(babble), METRICS[name].pool))


def test_pixel_ious_and_other_figures_that_are_not_counts_keep_the_bootstrap_alone():
    ious = [0.995, 0.993, 0.996, 0.994, 0.9955]
    assert METRICS["iou"].units is None and METRICS["mask_iou"].units is None and METRICS["matte_iou"].units is None
    assert summarize("iou", ious)["ci95"] == _sig(bootstrap(ious))
    assert summarize("matte_iou", [0.9])["ci95"] is None  # one value: no interval
    assert summarize("cosine", [1.0] * 20)["ci95"] == [1.0, 1.0]
