"""Output kinds: how each kind of output is reduced, compared, and given its context."""

from __future__ import annotations

import numpy as np

from quantzoo.compare import kinds as K
from quantzoo.compare import metrics as M
from quantzoo.compare.metrics import METRICS, Metric


def test_every_metric_names_kinds_that_exist():
    for m in METRICS.values():
        assert m.kinds and set(m.kinds) <= set(K.KINDS), m.name


def test_detection_iou_counts_only_samples_where_either_map_has_text():
    text = np.array([[[0.9, 0.9], [0.0, 0.0]]])
    blank = np.zeros((1, 2, 2))
    ref = np.concatenate([text, blank, blank])
    dead = np.zeros_like(ref)  # a broken variant that finds no text anywhere
    out = K.compare_detection(ref, dead, {})
    assert out["iou"] == [0.0]  # the two text-free photos say nothing about agreement
    assert M.summarize(out["iou"]) == {"mean": 0.0, "std": 0.0, "n": 1}



def test_classification_reports_top5_only_with_more_than_five_classes_and_accuracy_only_with_labels():
    two = np.array([[0.2, 0.8], [0.9, 0.1]])
    out = K.compare_classification(two, two[::-1], {})
    assert set(out) == {"top1_agreement"} and out["top1_agreement"] == [0.0, 0.0]
    six = np.eye(6)[:2]
    out = K.compare_classification(six, six, {"labels": [0, None]})
    assert set(out) == {"top1_agreement", "top5_agreement", "accuracy_float", "accuracy_quantized"}
    assert out["accuracy_float"] == [1.0]



def test_ctc_comparison_scores_string_agreement_cer_and_cer_against_labels():
    vocab = ["-", "a", "b", "c"]
    ref = np.array([[1, 2, 3], [1, 1, 2]])    # "abc", "ab"
    test = np.array([[1, 2, 3], [1, 0, 1]])   # "abc", "aa"
    out = K.compare_ctc(ref, test, {"vocab": vocab, "labels": ["abc", "ab"]})
    assert out["string_agreement"] == [1.0, 0.0]
    assert out["cer"] == [0.0, 0.5]
    assert out["cer_labels"] == [0.0, 0.5]



def test_ctc_reduction_keeps_only_argmax_ids():
    reduce = K.KINDS["ctc"].reduce
    y = np.zeros((2, 3, 5), np.float32)
    y[0, :, 4] = 1
    out = reduce(y, {})
    assert out.dtype == np.int32 and out.shape == (2, 3) and out[0].tolist() == [4, 4, 4]


def test_classification_context_maps_labels_to_class_indices_and_ctc_keeps_the_text():
    cls = K.KINDS["classification"].context(["cat", "dog"], ["dog", None, "fox"], {"fox": "cat"})
    assert cls == {"all_labels": [1, None, 0]}
    ctc = K.KINDS["ctc"].context(["-", "a"], ["a", None], None)
    assert ctc == {"vocab": ["-", "a"], "all_labels": ["a", None]}
    assert K.KINDS["ctc"].context(None, [None, None], None)["all_labels"] is None
    assert K.KINDS["dense"].context is None


def test_a_metric_record_with_its_own_function_is_computed_for_the_kinds_it_names(monkeypatch):
    def sign_agreement(ref, test, ctx):
        return [float(np.array_equal(np.sign(r), np.sign(t))) for r, t in zip(ref, test)]

    toy = Metric("sign_agreement", "sign agreement", "fraction", True, True, "same signs everywhere",
                 kinds=("dense",), compute=sign_agreement)
    monkeypatch.setitem(METRICS, "sign_agreement", toy)
    ref, test = np.array([[1.0, -1.0], [1.0, 1.0]]), np.array([[0.5, -2.0], [1.0, -1.0]])
    assert K.compare_batch("dense", ref, test, {})["sign_agreement"] == [1.0, 0.0]
    assert "sign_agreement" not in K.compare_batch("classification", ref, test, {})
