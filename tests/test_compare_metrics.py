"""Metric records and the agreement metrics, on cases small enough to check by hand."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from quantzoo.compare import metrics as M
from quantzoo.compare.metrics import METRICS, UNITS, Metric, format_metric, higher_is_better, metric_label


# --- the records ------------------------------------------------------------------------------

def test_metrics_import_without_onnxruntime():
    code = "import sys, quantzoo.compare.metrics; assert 'onnxruntime' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_metric_has_a_known_unit_a_label_and_a_meaning():
    # the first twelve in this order; metrics added later by other records follow them
    assert list(METRICS)[:12] == ["top1_agreement", "top5_agreement", "accuracy_float", "accuracy_quantized", "snr_db",
                                  "psnr_db", "cosine", "max_abs_error", "iou", "string_agreement", "cer", "cer_labels"]
    assert {"detection_f1", "detection_precision", "detection_recall", "landmark_error"} <= set(METRICS)
    for name, m in METRICS.items():
        assert m.name == name and m.unit in UNITS and m.label and m.meaning


def test_formatting_gives_the_site_its_cell_strings():
    assert format_metric("top1_agreement", 0.99531) == "99.53 %"
    assert format_metric("top1_agreement", 0.987654) == "98.77 %"
    assert format_metric("iou", 1.0) == "100.00 %"
    assert format_metric("snr_db", 31.234) == "31.2 dB" and format_metric("psnr_db", 48.04) == "48.0 dB"
    assert format_metric("snr_db", float("inf")) == "∞ dB" and format_metric("snr_db", float("-inf")) == "−∞ dB"
    assert format_metric("cosine", 0.9999871) == "0.99999"
    assert format_metric("max_abs_error", 0.000123) == "0.000123"
    assert format_metric("cer", None) == "–" and format_metric("cer", "n/a") == "–"
    assert format_metric("cosine", float("nan")) == "nan" and format_metric("cosine", float("inf")) == "∞"


def test_unknown_metrics_are_their_own_label_higher_is_better_and_plain_numbers():
    assert metric_label("made_up") == "made_up" and higher_is_better("made_up") is True
    assert format_metric("made_up", 0.123456) == "0.123"
    assert metric_label("cer") == "CER vs float" and higher_is_better("cer") is False


def test_proportions_are_the_shares_of_samples():
    assert {"top1_agreement", "top5_agreement", "accuracy_float", "accuracy_quantized", "string_agreement"} <= {
        n for n, m in METRICS.items() if m.proportion}
    # per-sample F1 and landmark error are means of continuous values, not shares of samples
    assert not any(METRICS[n].proportion for n in ("detection_f1", "detection_precision", "detection_recall",
                                                  "landmark_error", "iou", "cosine"))


def test_primary_metrics_follow_the_records_and_see_a_metric_added_later(monkeypatch):
    ranked = M.PRIMARY_METRICS
    # the first ones, in this order (records added later by other tasks fall in between by rank)
    assert [m for m in ranked if m in ("top1_agreement", "string_agreement", "detection_f1", "iou", "cosine")] == [
        "top1_agreement", "string_agreement", "detection_f1", "iou", "cosine"]
    monkeypatch.setitem(METRICS, "toy", Metric("toy", "toy", "ratio", True, False, "a toy", primary=15))
    assert M.PRIMARY_METRICS[:3] == ("top1_agreement", "toy", "string_agreement")


# --- the functions ------------------------------------------------------------------------------

def test_snr_of_a_ten_percent_error_is_twenty_db():
    ref = np.array([3.0, -4.0, 5.0])
    assert M.snr_db(ref, ref * 1.1) == pytest.approx(20.0)


def test_psnr_uses_the_peak_of_the_reference():
    ref = np.array([0.0, 2.0])
    test = np.array([0.0, 1.8])  # mse 0.02, peak 4
    assert M.psnr_db(ref, test) == pytest.approx(10 * math.log10(4 / 0.02))


def test_identical_outputs_score_the_float32_ceiling_not_infinity():
    ref = np.array([1.0, -2.0, 0.5])
    assert M.snr_db(ref, ref) == M.SNR_CEILING_DB == M.psnr_db(ref, ref)
    assert 138 < M.SNR_CEILING_DB < 139


def test_all_zero_outputs_agree_and_a_zero_reference_against_noise_scores_the_negative_ceiling():
    z = np.zeros(4)
    assert M.snr_db(z, z) == M.SNR_CEILING_DB
    assert M.snr_db(z, np.ones(4)) == -M.SNR_CEILING_DB
    # cosine is undefined when either output is all zero: None, and the summary leaves it out
    assert M.cosine(z, z) is None and M.cosine(z, np.ones(4)) is None and M.cosine(np.ones(4), z) is None


def test_cosine_and_max_abs_error():
    assert M.cosine(np.array([1.0, 0.0]), np.array([0.0, 3.0])) == 0.0
    assert M.cosine(np.array([1.0, 2.0]), np.array([2.0, 4.0])) == pytest.approx(1.0)
    assert M.cosine(np.array([1.0, 2.0]), np.array([-1.0, -2.0])) == pytest.approx(-1.0)
    assert M.max_abs_error(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.5], [2.0, 4.0]])) == 1.0


def test_iou_binarizes_above_the_threshold_and_two_empty_maps_are_not_counted():
    ref = np.array([[0.9, 0.31], [0.3, 0.0]])
    test = np.array([[0.9, 0.0], [0.9, 0.0]])
    # ref on: (0,0), (0,1) ; test on: (0,0), (1,0) -> 1 shared of 3
    assert M.iou(ref, test) == pytest.approx(1 / 3)
    assert M.iou(np.zeros((2, 2)), np.full((2, 2), 0.3)) is None
    assert M.iou(ref, test, threshold=0.95) is None


def test_top1_agreement_compares_argmax_per_sample():
    ref = np.array([[0.1, 0.9], [0.8, 0.2], [0.5, 0.4]])
    test = np.array([[0.3, 0.7], [0.4, 0.6], [0.6, 0.1]])
    assert M.top1_agreement(ref, test).tolist() == [1.0, 0.0, 1.0]


def test_top5_agreement_asks_whether_the_float_answer_is_in_the_quantized_top_five():
    ref = np.zeros((3, 8))
    ref[:, 7] = 1.0  # the float model answers class 7 each time
    test = np.array([
        [8, 7, 6, 5, 4, 3, 2, 1.0],   # class 7 ranks 8th
        [8, 7, 6, 5, 0, 0, 0, 4.5],   # class 7 ranks 5th
        [0, 0, 0, 0, 0, 0, 0, 9.0],   # class 7 ranks 1st
    ])
    assert M.top5_agreement(ref, test).tolist() == [0.0, 1.0, 1.0]


def test_accuracy_leaves_out_unlabelled_samples():
    assert M.accuracy(np.array([1, 1, 0, 2]), [1, None, 1, 2]) == [1.0, None, 0.0, 1.0]


def test_snr_and_psnr_are_pooled_records_and_every_output_kind_reports_snr():
    assert METRICS["snr_db"].pool is not None and METRICS["psnr_db"].pool is not None
    from quantzoo.compare.kinds import KINDS

    assert set(METRICS["snr_db"].kinds) == set(KINDS)
    assert METRICS["cosine"].pool is None


def _maps():
    """The issue's ppocr-v4-det case: 14 photos with text, 12 whose probability map is all zero,
    and an fp16-like error (relative 1e-3 on the real maps; ~1e-7 where the float map is zero)."""
    rng = np.random.default_rng(7)
    real = rng.random((14, 32, 32))
    ref = np.concatenate([real, np.zeros((12, 32, 32))])
    test = ref * (1 + 1e-3 * rng.standard_normal(ref.shape))
    test[14:] = 1e-7 * rng.random((12, 32, 32))
    return ref, test


def test_pooled_snr_is_not_dragged_down_by_all_zero_maps_as_the_per_sample_mean_was():
    from quantzoo.compare.kinds import compare_dense
    from quantzoo.compare.summary import summarize

    ref, test = _maps()
    per_sample = [M.snr_db(r, t) for r, t in zip(ref, test)]
    # the defect: each all-zero map scores −138.5 dB, and the per-photo mean drags a lossless variant down
    assert per_sample[14:] == [-M.SNR_CEILING_DB] * 12 and np.mean(per_sample) < 0
    out = compare_dense(ref, test, {})
    snr = summarize("snr_db", out["snr_db"])
    by_hand = 10 * math.log10((ref ** 2).sum() / ((ref - test) ** 2).sum())
    assert snr["mean"] == pytest.approx(by_hand, abs=1e-4) and 59 < snr["mean"] < 61
    assert snr["n"] == 26 and snr["std"] is None and "excluded" not in snr
    assert snr["ci95"][0] <= snr["mean"] <= snr["ci95"][1] and snr["ci95"][1] - snr["ci95"][0] < 1
    psnr = summarize("psnr_db", out["psnr_db"])
    peak = (ref ** 2).max()
    assert psnr["mean"] == pytest.approx(10 * math.log10(peak / ((ref - test) ** 2).mean()), abs=1e-4)
    # cosine: the 12 zero maps are undefined, counted, and left out
    cos = summarize("cosine", out["cosine"])
    assert cos["n"] == 14 and cos["excluded"] == 12 and cos["mean"] > 0.999


def test_pooled_snr_of_identical_outputs_stays_at_the_float32_ceiling():
    ref, _ = _maps()
    rows = [M.dense_components(r, r) for r in ref]
    assert M.pooled_snr_db(np.array(rows)) == M.SNR_CEILING_DB == M.pooled_psnr_db(np.array(rows))
    zero = [M.dense_components(np.zeros(3), np.zeros(3))] * 2
    assert M.pooled_snr_db(np.array(zero)) == M.SNR_CEILING_DB


def test_metric_formatting_by_unit():
    from quantzoo.compare.metrics import format_metric

    assert format_metric("top1_agreement", 0.987654) == "98.77 %"
    assert format_metric("iou", 1.0) == "100.00 %"
    assert format_metric("psnr_db", 48.04) == "48.0 dB"
    assert format_metric("cer", None) == "–"
