"""Agreement metrics on cases small enough to check by hand."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from quantzoo.compare import metrics as M


@pytest.mark.parametrize("name", ["quantzoo.compare.metrics", "quantzoo.compare.adapters", "quantzoo.compare.core"])
def test_docstring_examples_in_compare_modules_run(name):
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


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
    assert M.cosine(z, z) == 1.0 and M.cosine(z, np.ones(4)) == 0.0


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


def test_detection_iou_counts_only_samples_where_either_map_has_text():
    text = np.array([[[0.9, 0.9], [0.0, 0.0]]])
    blank = np.zeros((1, 2, 2))
    ref = np.concatenate([text, blank, blank])
    dead = np.zeros_like(ref)  # a broken variant that finds no text anywhere
    out = M.compare_detection(ref, dead, {})
    assert out["iou"] == [0.0]  # the two text-free photos say nothing about agreement
    assert M.summarize(out["iou"]) == {"mean": 0.0, "std": 0.0, "n": 1}


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
    assert M.accuracy(np.array([1, 1, 0, 2]), [1, None, 1, 2]) == [1.0, 0.0, 1.0]


def test_classification_reports_top5_only_with_more_than_five_classes_and_accuracy_only_with_labels():
    two = np.array([[0.2, 0.8], [0.9, 0.1]])
    out = M.compare_classification(two, two[::-1], {})
    assert set(out) == {"top1_agreement"} and out["top1_agreement"] == [0.0, 0.0]
    six = np.eye(6)[:2]
    out = M.compare_classification(six, six, {"labels": [0, None]})
    assert set(out) == {"top1_agreement", "top5_agreement", "accuracy_float", "accuracy_quantized"}
    assert out["accuracy_float"] == [1.0]


def test_summary_gives_the_standard_deviation_not_the_variance():
    s = M.summarize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert s == {"mean": 5.0, "std": 2.0, "n": 8}


def test_ctc_greedy_merges_repeats_and_drops_blanks_but_keeps_a_doubled_letter_split_by_a_blank():
    vocab = ["<blank>", "l", "o", "h", "e", " "]
    ids = np.array([[3, 3, 4, 1, 1, 0, 1, 2, 5, 0]])
    assert M.ctc_greedy(ids, vocab) == ["hello"]  # trailing space stripped


def test_levenshtein_and_cer():
    assert M.levenshtein("", "abc") == 3
    assert M.levenshtein("flaw", "lawn") == 2
    assert M.cer("model zoo", "model zoo") == 0.0
    assert M.cer("modl zoo", "model zoo") == pytest.approx(1 / 9)
    assert M.cer("x", "") == 1.0


def test_ctc_comparison_scores_string_agreement_cer_and_cer_against_labels():
    vocab = ["-", "a", "b", "c"]
    ref = np.array([[1, 2, 3], [1, 1, 2]])    # "abc", "ab"
    test = np.array([[1, 2, 3], [1, 0, 1]])   # "abc", "aa"
    out = M.compare_ctc(ref, test, {"vocab": vocab, "labels": ["abc", "ab"]})
    assert out["string_agreement"] == [1.0, 0.0]
    assert out["cer"] == [0.0, 0.5]
    assert out["cer_labels"] == [0.0, 0.5]


def test_ctc_reduction_keeps_only_argmax_ids():
    reduce, _ = M.KINDS["ctc"]
    y = np.zeros((2, 3, 5), np.float32)
    y[0, :, 4] = 1
    out = reduce(y, {})
    assert out.dtype == np.int32 and out.shape == (2, 3) and out[0].tolist() == [4, 4, 4]


def test_output_kind_follows_task_and_rank():
    assert M.output_kind("classification", 2) == "classification"
    assert M.output_kind("classification", 4) == "dense"
    assert M.output_kind("text-detection", 4) == "detection"
    assert M.output_kind("text-recognition", 3) == "ctc"
    assert M.output_kind("embedding", 2) == "dense"
    assert M.output_kind("dense", 4) == "dense"
