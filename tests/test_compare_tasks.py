"""Task records: the task names, how a task picks each output's kind, its threshold metric and preview."""

from __future__ import annotations

from quantzoo.compare import tasks as T
from quantzoo.compare.kinds import KINDS
from quantzoo.compare.metrics import METRICS


def test_the_tasks_are_the_registry_s_task_names():
    # the first five in this order; tasks added later by other records follow them
    assert list(T.TASKS)[:5] == ["classification", "text-detection", "text-recognition", "dense", "embedding"]
    assert "face-detection" in T.TASKS


def test_a_detector_s_first_output_gets_its_decoded_boxes_whatever_its_rank():
    assert T.output_kind("face-detection", 4, 0) == "boxes" and T.output_kind("face-detection", 3, 0) == "boxes"
    assert T.output_kind("face-detection", 4, 1) == "dense" and T.output_kind("face-detection", 4) == "dense"
    assert T.output_kind("text-detection", 4, 0) == "detection"


def test_output_kind_follows_task_and_rank():
    assert T.output_kind("classification", 2) == "classification"
    assert T.output_kind("classification", 4) == "dense"
    assert T.output_kind("text-detection", 4) == "detection"
    assert T.output_kind("text-recognition", 3) == "ctc"
    assert T.output_kind("embedding", 2) == "dense"
    assert T.output_kind("dense", 4) == "dense"
    assert T.output_kind(None, 2) == "classification" and T.output_kind(None, 4) == "dense"
    assert T.output_kind("not-a-task", 2) == "dense"


def test_every_task_names_a_known_threshold_metric_known_kinds_and_a_known_preview():
    for t in T.TASKS.values():
        assert t.threshold_metric in METRICS, t.name
        assert set(t.kinds.values()) <= set(KINDS), t.name
        assert t.first is None or t.first in KINDS, t.name
        assert t.preview in ("map", "named", "grid", None), t.name


def test_map_previews_belong_to_map_tasks_and_named_photographs_to_classification():
    assert {n for n, t in T.TASKS.items() if t.preview == "map"} == {"text-detection", "dense"}
    assert {n for n, t in T.TASKS.items() if t.preview == "named"} == {"classification"}


def test_a_task_added_later_is_seen_by_output_kind(monkeypatch):
    monkeypatch.setitem(T.TASKS, "toy", T.Task("toy", "cosine", None, {3: "ctc"}))
    assert T.output_kind("toy", 3) == "ctc" and T.output_kind("toy", 2) == "dense"
