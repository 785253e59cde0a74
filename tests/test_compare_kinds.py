"""Output kinds: how each kind of output is reduced, compared, and given its context."""

from __future__ import annotations

import numpy as np
import pytest

from quantzoo.compare import kinds as K
from quantzoo.compare import metrics as M
from quantzoo.compare.metrics import METRICS, Metric
from quantzoo.compare.summary import summarize


def test_every_metric_names_kinds_that_exist():
    for m in METRICS.values():
        assert m.kinds and set(m.kinds) <= set(K.KINDS), m.name


def test_detection_iou_counts_only_samples_where_either_map_has_text():
    text = np.array([[[0.9, 0.9], [0.0, 0.0]]])
    blank = np.zeros((1, 2, 2))
    ref = np.concatenate([text, blank, blank])
    dead = np.zeros_like(ref)  # a broken variant that finds no text anywhere
    out = K.compare_detection(ref, dead, {})
    assert out["iou"] == [0.0, None, None]  # the two text-free photos say nothing about agreement
    assert summarize("iou", out["iou"]) == {"mean": 0.0, "std": 0.0, "n": 1, "ci95": None, "excluded": 2}


def test_cosine_leaves_out_samples_where_either_output_is_all_zero_and_counts_them():
    ref = np.array([[1.0, 0.0], [0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    test = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1e-4, 0.0]])
    out = K.compare_dense(ref, test, {})
    assert out["cosine"] == [1.0, None, None, None]
    assert summarize("cosine", out["cosine"]) == {"mean": 1.0, "std": 0.0, "n": 1, "ci95": None, "excluded": 3}
    assert "excluded" not in summarize("cosine", [1.0, 0.5])



def test_classification_reports_top5_only_with_more_than_five_classes_and_accuracy_only_with_labels():
    two = np.array([[0.2, 0.8], [0.9, 0.1]])
    out = K.compare_classification(two, two[::-1], {})
    assert set(out) == {"top1_agreement", "snr_db"} and out["top1_agreement"] == [0.0, 0.0]
    six = np.eye(6)[:2]
    out = K.compare_classification(six, six, {"labels": [0, None]})
    assert set(out) == {"top1_agreement", "top5_agreement", "accuracy_float", "accuracy_quantized", "snr_db"}
    assert out["accuracy_float"] == [1.0, None]
    assert summarize("accuracy_float", out["accuracy_float"])["excluded"] == 1


def test_classification_reports_the_pooled_snr_of_its_logits():
    logits = np.array([[3.0, -4.0], [6.0, 8.0]])
    out = K.compare_classification(logits, logits * 1.1, {})
    assert summarize("snr_db", out["snr_db"])["mean"] == 20.0
    same = summarize("snr_db", K.compare_classification(logits, logits, {})["snr_db"])
    assert same["mean"] == same["ci95"][0] == same["ci95"][1] == pytest.approx(M.SNR_CEILING_DB)



def test_ctc_comparison_scores_string_agreement_cer_and_cer_against_labels():
    vocab = ["-", "a", "b", "c"]
    reduce = K.KINDS["ctc"].reduce
    ref = reduce(np.eye(4)[[[1, 2, 3], [1, 1, 2]]], {})                      # "abc", "ab"
    test = reduce(np.eye(4)[[[1, 2, 3], [1, 0, 1]]], {"reference": ref})     # "abc", "aa"
    out = K.compare_ctc(ref, test, {"vocab": vocab, "labels": ["abc", None]})
    assert out["string_agreement"] == [1.0, 0.0]
    assert out["cer"] == [0.0, 0.5]
    assert out["cer_labels"] == [0.0, None]
    # one-hot steps: 3 of energy per line; line 2 has two wrong steps, each off by 2
    assert out["snr_db"] == [(3.0, 0.0, 0.0, 0.0), (3.0, 4.0, 0.0, 0.0)]



def test_ctc_reduction_keeps_argmax_ids_and_top_classes_not_the_softmax():
    reduce = K.KINDS["ctc"].reduce
    y = np.random.default_rng(0).random((2, 7, 100)).astype(np.float32)
    y[0, :, 4] = 2.0
    out = reduce(y, {})
    assert out.shape == (2,) and out["ids"][0].tolist() == [4] * 7
    assert out["top_i"].shape == (2, 7, K.CTC_TOP) and (out["top_i"][0, :, 0] == 4).all()
    assert out.nbytes < y.nbytes / 2
    assert (out["top_v"][1] == np.sort(y[1], axis=-1)[:, ::-1][:, :K.CTC_TOP]).all()
    # the compressed model's output is read at the float model's top classes
    other = reduce(y[::-1].copy(), {"reference": out})
    assert (other["top_i"] == out["top_i"]).all()


def test_ctc_snr_is_exact_over_the_float_models_top_classes():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.full(40, 0.05), size=(3, 6)).astype(np.float32)  # peaked, like CTC softmax
    q = (p * (1 + rng.normal(0, 1e-3, p.shape))).astype(np.float32)
    ref = K.reduce_ctc(p, {})
    rows = K.ctc_components(ref, K.reduce_ctc(q, {"reference": ref}))
    top = np.take_along_axis(p, ref["top_i"], axis=-1), np.take_along_axis(q, ref["top_i"], axis=-1)
    assert summarize("snr_db", rows)["mean"] == pytest.approx(M.snr_db(*top), abs=1e-4)
    # the float model against itself is perfect (the float32 ceiling), not a bound below it
    same = K.ctc_components(ref, K.reduce_ctc(p, {"reference": ref}))
    assert summarize("snr_db", same)["mean"] == pytest.approx(M.SNR_CEILING_DB)


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
