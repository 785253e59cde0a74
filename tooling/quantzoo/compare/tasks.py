"""Tasks: what a model does, and so how its outputs are compared and shown.

One `Task` record per task name in `TASKS`; the registry accepts exactly these names in a
manifest's ``task``. A task decides each output's kind from its rank (`output_kind`; outputs of
other ranks are compared as ``dense``), names the metric a manifest's threshold usually takes,
and says which preview the site draws:

- ``"map"``: the output map of one sample as a picture, for the float model and each variant
  (for models with an [N, C, H, W] output);
- ``"named"``: the top class on the photographs the manifest names (``samples``);
- None: no preview.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Task:
    """One task. `kinds` maps an output's rank (batch axis included) to its output kind
    (`kinds.KINDS`); any other rank is ``dense``."""

    name: str
    threshold_metric: str
    preview: str | None = None
    kinds: Mapping[int, str] = field(default_factory=dict)

    def output_kind(self, rank: int) -> str:
        """The kind of an output of `rank` dimensions.

        >>> TASKS["text-detection"].output_kind(4), TASKS["text-detection"].output_kind(2)
        ('detection', 'dense')
        """
        return self.kinds.get(rank, "dense")


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("classification", "top1_agreement", "named", {2: "classification"}),
    Task("text-detection", "iou", "map", {4: "detection"}),
    Task("text-recognition", "string_agreement", None, {3: "ctc"}),
    Task("dense", "snr_db", "map"),
    Task("embedding", "cosine"),
)}

# a model compared without a task: [N, classes] outputs are scores of classes
GENERIC = Task("generic", "top1_agreement", None, {2: "classification"})


def output_kind(task: str | None, rank: int) -> str:
    """Which metrics an output of `rank` dimensions (batch included) gets under `task`
    (None: no task known; a name not in `TASKS` compares every output as dense).

    >>> output_kind("classification", 2), output_kind("text-recognition", 3), output_kind("text-detection", 4)
    ('classification', 'ctc', 'detection')
    >>> output_kind(None, 2), output_kind(None, 4), output_kind("embedding", 2)
    ('classification', 'dense', 'dense')
    """
    record = GENERIC if task is None else TASKS.get(task)
    return record.output_kind(rank) if record is not None else "dense"
