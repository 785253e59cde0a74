"""Box geometry, suppression, matching and the agreement figures (compare/detection.py), on
hand-made boxes whose answers are worked out by hand."""

import numpy as np
import pytest

from quantzoo.compare import detection as D
from quantzoo.compare.intervals import wilson
from quantzoo.compare.measures import pooled_f1, pooled_precision, pooled_recall
from quantzoo.compare.summary import summarize


def test_iou_of_boxes_with_known_overlaps():
    iou = D.iou_matrix([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [10, 10, 20, 20], [0, 0, 5, 5]])
    # identical; half overlapping (50 / 150); touching at a corner; a quarter inside
    assert iou[0].tolist() == pytest.approx([1.0, 1 / 3, 0.0, 0.25])
    assert D.iou_matrix([], [[0, 0, 1, 1]]).shape == (0, 1)


def test_nms_keeps_the_best_of_each_overlapping_group_and_every_separate_box():
    boxes = [[0, 0, 10, 10], [1, 0, 11, 10], [30, 30, 40, 40], [2, 0, 12, 10], [31, 30, 41, 40]]
    scores = [0.6, 0.9, 0.5, 0.7, 0.8]
    assert D.nms(boxes, scores, 0.3).tolist() == [1, 4]
    # below the IoU threshold nothing is suppressed: 0 and 3 overlap by 8 / 12
    assert sorted(D.nms([[0, 0, 10, 10], [2, 0, 12, 10]], [0.5, 0.4], 0.7).tolist()) == [0, 1]
    assert D.nms([], [], 0.3).tolist() == []


def test_weighted_nms_blends_a_group_by_score_and_keeps_its_best_score():
    b, s, p = D.weighted_nms([[0, 0, 10, 10], [4, 0, 14, 10]], [0.6, 0.2], [[[0, 0]], [[4, 4]]], 0.3)
    assert b.tolist() == [[1.0, 0.0, 11.0, 10.0]]   # 0.75 * first + 0.25 * second
    assert s.tolist() == [0.6] and p.tolist() == [[[1.0, 1.0]]]


def test_matching_is_one_to_one_and_prefers_the_highest_iou():
    ref = [[0, 0, 10, 10], [0, 0, 10, 9]]
    test = [[0, 0, 10, 10]]
    # the test box overlaps both float boxes; it goes to the identical one, the other stays unmatched
    assert D.match(ref, test) == [(0, 0)]
    assert D.match(ref, []) == [] and D.match([], test) == []


def test_f1_precision_recall_on_hand_made_detections():
    ref = {"boxes": [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]]}
    test = {"boxes": [[0, 0, 10, 10], [21, 0, 31, 10], [45, 0, 55, 10], [80, 0, 90, 10], [100, 0, 110, 10]]}
    # matches: box 0 (IoU 1), box 1 (IoU 9/11); box 2 overlaps by 1/3 < 0.5: 2 matches of 4 and 5
    out = D.sample_agreement(ref, test)
    assert out["detection_precision"] == out["detection_recall"] == out["detection_f1"] == [2.0, 4.0, 5.0]
    assert pooled_precision([out["detection_precision"]]) == pytest.approx(2 / 5)
    assert pooled_recall([out["detection_recall"]]) == pytest.approx(2 / 4)
    assert pooled_f1([out["detection_f1"]]) == pytest.approx(2 * 2 / 9)
    assert "landmark_error" not in out


def test_f1_is_pooled_over_the_boxes_of_every_sample():
    # photo 1: 2 float boxes, both found; photo 2: 8 float boxes, the compressed model finds 2 and
    # adds 2 of its own. Per photo F1 1 and 2·2/(8+4) = 1/3 would average 2/3; over the boxes it is
    # 2·4 / (10 + 6) = 1/2, precision 4/6, recall 4/10
    one = D.sample_agreement({"boxes": [[0, 0, 10, 10], [20, 0, 30, 10]]}, {"boxes": [[0, 0, 10, 10], [20, 0, 30, 10]]})
    ref = [[20 * i, 0, 20 * i + 10, 10] for i in range(8)]
    two = D.sample_agreement({"boxes": ref}, {"boxes": ref[:2] + [[0, 50, 10, 60], [20, 50, 30, 60]]})
    none = D.sample_agreement({"boxes": []}, {"boxes": []})  # says nothing: left out, counted
    values = {k: [one[k], two[k], none[k]] for k in one}
    s = {k: summarize(k, v) for k, v in values.items()}
    assert (s["detection_f1"]["mean"], s["detection_precision"]["mean"], s["detection_recall"]["mean"]) == (
        0.5, pytest.approx(4 / 6, abs=1e-6), 0.4)
    assert s["detection_f1"]["n"] == 2 and s["detection_f1"]["excluded"] == 1
    # each interval is at least Wilson's at its own counted boxes: (10 + 6) / 2, 6 compressed, 10 float
    counted = {"detection_f1": (4, 8), "detection_precision": (4, 6), "detection_recall": (4, 10)}
    for k, (hits, trials) in counted.items():
        lo, hi = wilson(hits, trials)
        assert s[k]["ci95"][0] <= lo + 1e-6 and s[k]["ci95"][1] >= hi - 1e-6


def test_figures_that_are_undefined_on_a_sample_are_none():
    assert D.sample_agreement({"boxes": []}, {"boxes": []}) == {
        "detection_precision": None, "detection_recall": None, "detection_f1": None}
    missed = D.sample_agreement({"boxes": [[0, 0, 1, 1]]}, {"boxes": []})
    assert missed["detection_f1"] == missed["detection_recall"] == [0.0, 1.0, 0.0]
    assert missed["detection_precision"] is None


def test_landmark_error_is_the_mean_distance_over_the_float_box_size():
    ref = {"boxes": [[0, 0, 20, 5], [50, 50, 60, 60]], "points": [[[0, 0], [10, 0]], [[55, 55], [55, 58]]]}
    test = {"boxes": [[0, 0, 20, 5], [50, 50, 60, 60]], "points": [[[3, 4], [10, 0]], [[55, 55], [55, 55]]]}
    # box 0: size √(20·5) = 10, distances 5 and 0 -> 0.25; box 1: size 10, distances 0 and 3 -> 0.15
    out = D.sample_agreement(ref, test)
    assert out["landmark_error"] == pytest.approx((0.25 + 0.15) / 2)
    assert out["detection_f1"] == [2.0, 2.0, 2.0]
    # no match: no landmark error
    far = {"boxes": [[100, 100, 110, 110]], "points": [[[0, 0], [0, 0]]]}
    assert D.sample_agreement(ref, far)["landmark_error"] is None


def test_connected_components_and_their_boxes():
    mask = np.zeros((6, 8), bool)
    mask[1:3, 1:4] = True      # a 2x3 block
    mask[4, 0:8] = True        # a full row
    mask[0, 7] = True          # a single pixel
    mask[5, 2] = True          # touches the row: same component
    labels = D.components(mask)
    assert len(np.unique(labels[mask])) == 3 and (labels[~mask] == 0).all()
    boxes, _ = D.component_boxes(labels)
    assert sorted(boxes.tolist()) == [[0.0, 4.0, 8.0, 6.0], [1.0, 1.0, 4.0, 3.0], [7.0, 0.0, 8.0, 1.0]]
    big, _ = D.component_boxes(labels, min_size=2)
    assert len(big) == 2


def test_a_long_winding_component_is_one_label():
    mask = np.zeros((9, 9), bool)
    mask[0, :] = mask[:, 8] = mask[8, :] = mask[2:, 0] = mask[2, :7] = True   # a spiral-ish path
    labels = D.components(mask)
    assert len(np.unique(labels[mask])) == 1
