"""A published variant: its metric summaries, its runtime compatibility results, its files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .fields import Entry, FileEntry, check_file, file_name, kind_of, number, parse_files
from .shapes import ShapesEntry, parse_shapes_fields, shapes_json
from .summaries import MetricSummary
from .summaries import parse_metrics as _parse_metrics


@dataclass(frozen=True)
class RuntimeResult(Entry):
    """Whether one runtime runs a published file, and how far its outputs are from onnxruntime's.

    >>> RuntimeResult.from_json({"runs": False, "max_abs_diff": None, "error": "float model does not run either"},
    ...                         "r").to_json()
    {'error': 'float model does not run either', 'max_abs_diff': None, 'runs': False}
    """

    runs: bool
    max_abs_diff: float | None = None
    error: str | None = None

    def to_json(self) -> dict:
        doc = {"max_abs_diff": self.max_abs_diff, "runs": self.runs}
        return {"error": self.error} | doc if self.error else doc

    @classmethod
    def _parse(cls, doc: Any, key: str, problems: list[str]) -> RuntimeResult | None:
        if not isinstance(doc, dict) or not isinstance(doc.get("runs"), bool):
            problems.append(f"{key}: expected {{runs: true|false, max_abs_diff, error?}}, found {json.dumps(doc)[:60]}")
            return None
        error = doc.get("error")
        return cls(doc["runs"], number(doc.get("max_abs_diff")), error if isinstance(error, str) else None)


def parse_runtimes(doc: Any, key: str, problems: list[str]) -> dict[str, RuntimeResult]:
    if not isinstance(doc, dict):
        problems.append(f"{key}: expected {{runtime: {{runs, max_abs_diff}}}}, found {kind_of(doc)}")
        return {}
    parsed = {name: RuntimeResult._parse(r, f"{key}.{name}", problems) for name, r in doc.items()}
    return {name: r for name, r in parsed.items() if r is not None}


def runtimes_json(runtimes: dict[str, RuntimeResult]) -> dict:
    """``{"runtimes": ...}`` to merge into an entry's JSON; nothing when not measured."""
    return {"runtimes": {n: r.to_json() for n, r in sorted(runtimes.items())}} if runtimes else {}


@dataclass(frozen=True)
class VariantEntry(Entry):
    """One published variant: its settings, its file and its measured metrics."""

    id: str
    mode: Any
    nbits: Any
    granularity: Any
    file: str
    size: int
    sha256: str
    metrics: dict[str, dict[str, MetricSummary]] = field(default_factory=dict)
    runtimes: dict[str, RuntimeResult] = field(default_factory=dict)
    files: tuple[FileEntry, ...] = ()  # files the variant reads beside its .onnx (external data), same folder
    shapes: ShapesEntry | None = None  # accepted and verified input shapes (a model with `shapes`)
    throughput: dict[str, float] = field(default_factory=dict)  # {"batch": samples/s} on the build machine

    def metric(self, output: str, metric: str) -> float | None:
        """The mean of one metric of one output, or None when it was not measured.

        >>> v = VariantEntry("a", "fp16", 16, "per_tensor", "a.onnx", 1, "0" * 64, {"y": {"iou": MetricSummary(0.9, 0, 3)}})
        >>> v.metric("y", "iou"), v.metric("y", "cosine")
        (0.9, None)
        """
        s = self.summary(output, metric)
        return s.mean if s else None

    def summary(self, output: str, metric: str) -> MetricSummary | None:
        """The whole summary (mean, std, n, ci95, excluded) of one metric of one output, or None."""
        return self.metrics.get(output, {}).get(metric)

    @property
    def name(self) -> str:
        return file_name(self.file)

    def to_json(self) -> dict:
        return {"id": self.id, "mode": self.mode, "nbits": self.nbits, "granularity": self.granularity,
                "file": self.file, "size": self.size, "sha256": self.sha256,
                "metrics": {out: {m: s.to_json() for m, s in ms.items()} for out, ms in self.metrics.items()}
                } | runtimes_json(self.runtimes) | ({"files": [f.to_json() for f in self.files]} if self.files else {}) \
            | shapes_json(self.shapes, self.throughput)

    @classmethod
    def _parse(cls, doc: Any, key: str, problems: list[str]) -> VariantEntry | None:
        if not isinstance(doc, dict):
            problems.append(f"{key}: expected an object, found {kind_of(doc)}")
            return None
        vid = doc.get("id")
        if not isinstance(vid, str) or not vid:
            problems.append(f"{key}.id: expected a non-empty string, found {kind_of(vid)}")
        file_ok = check_file(doc, key, problems)
        metrics = _parse_metrics(doc.get("metrics", {}), f"{key}.metrics", problems)
        runtimes = parse_runtimes(doc.get("runtimes", {}), f"{key}.runtimes", problems)
        files = parse_files(doc.get("files", []), f"{key}.files", problems)
        shapes, throughput = parse_shapes_fields(doc, key, problems)
        if not (isinstance(vid, str) and vid and file_ok):
            return None
        return cls(vid, doc.get("mode"), doc.get("nbits"), doc.get("granularity"), doc["file"], doc["size"],
                   doc["sha256"], metrics, runtimes, files, shapes, throughput)
