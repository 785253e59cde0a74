"""The shapes a published file accepts and where it was verified, and its throughput.

On a variant and on ``float``, only for a model whose manifest promises `shapes`::

    "shapes": {"accepted": {"<input>": {"ranges": [[lo, hi|null], ...] | "shapes": [[...]], "original": [...]}},
               "verified": [{"shape": "1x3x224x224", "runs": true, "max_abs_diff": 0.01 | null,
                             "top1_agreement": 1.0 | null, "error"?: "...",
                             "evaluation"?: {"n": 32, "batch": 32, "resized": true,
                                             "metrics": {"<output>": {"<metric>": {"mean", "std", "n", "ci95"}}}}}]},
    "throughput": {"1": samples/s, "8": ..., "32": ...}

``accepted`` is the file's ``quantzoo.shapes`` promise; ``verified`` the shapes it was run at on
random inputs (against the float model: null for the float itself); ``throughput`` samples per
second in onnxruntime on the machine that built the catalog (ARCHITECTURE.md, "Flexible shapes").
``evaluation`` (a variant's, absent when not measured) is its agreement with the float model on
the evaluation data at that shape: re-preprocessed at that size (``resized``: at most a few dozen
samples, ``n``), or, at the size the preprocessing gives anyway, the variant's own ``metrics``;
``batch`` is the batch size it ran at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .fields import Entry, kind_of, number
from .summaries import MetricSummary, parse_metrics


@dataclass(frozen=True)
class ShapeEvaluation(Entry):
    """A variant's agreement with the float model on the evaluation data at one verified shape.

    >>> e = ShapeEvaluation.from_json({"n": 2, "batch": 2, "resized": True,
    ...                                "metrics": {"y": {"iou": {"mean": 0.9, "std": 0.1, "n": 2}}}}, "e")
    >>> e.metrics["y"]["iou"].mean, e.to_json()["resized"]
    (0.9, True)
    >>> ShapeEvaluation.from_json({"n": -1, "metrics": {}}, "e")
    Traceback (most recent call last):
    ...
    quantzoo.errors.QuantzooError: e is malformed (1 problem):
      e: expected {n: samples, batch, resized: true|false, metrics: {output: {metric: summary}}}, found {"n": -1, "metrics": {}}
    ...
    """

    n: int
    batch: int
    resized: bool
    metrics: dict[str, dict[str, MetricSummary]]

    def to_json(self) -> dict:
        return {"batch": self.batch, "metrics": {o: {m: s.to_json() for m, s in ms.items()} for o, ms in self.metrics.items()},
                "n": self.n, "resized": self.resized}

    @classmethod
    def _parse(cls, doc: Any, key: str, problems: list[str]) -> ShapeEvaluation | None:
        def count(x):
            return isinstance(x, int) and not isinstance(x, bool) and x >= 0

        if not isinstance(doc, dict) or not count(doc.get("n")) or not count(doc.get("batch")) \
                or not isinstance(doc.get("resized"), bool):
            problems.append(f"{key}: expected {{n: samples, batch, resized: true|false, metrics: {{output: "
                            f"{{metric: summary}}}}}}, found {json.dumps(doc)[:60]}")
            return None
        return cls(doc["n"], doc["batch"], doc["resized"], parse_metrics(doc.get("metrics"), f"{key}.metrics", problems))


@dataclass(frozen=True)
class ShapeCheck(Entry):
    """One promised shape a file was run at.

    >>> ShapeCheck.from_json({"shape": "1x64", "runs": True, "max_abs_diff": 0.5, "top1_agreement": 1}, "s").to_json()
    {'max_abs_diff': 0.5, 'runs': True, 'shape': '1x64', 'top1_agreement': 1.0}
    """

    shape: str
    runs: bool
    max_abs_diff: float | None = None
    top1_agreement: float | None = None
    error: str | None = None
    evaluation: ShapeEvaluation | None = None  # on the evaluation data at this shape (variants only)

    def to_json(self) -> dict:
        doc = {"max_abs_diff": self.max_abs_diff, "runs": self.runs, "shape": self.shape,
               "top1_agreement": self.top1_agreement}
        return doc | ({"error": self.error} if self.error else {}) \
            | ({"evaluation": self.evaluation.to_json()} if self.evaluation is not None else {})

    @classmethod
    def _parse(cls, doc: Any, key: str, problems: list[str]) -> ShapeCheck | None:
        if not isinstance(doc, dict) or not isinstance(doc.get("shape"), str) or not isinstance(doc.get("runs"), bool):
            problems.append(f"{key}: expected {{shape: text, runs: true|false, max_abs_diff, top1_agreement}}, "
                            f"found {json.dumps(doc)[:60]}")
            return None
        error = doc.get("error")
        evaluation = ShapeEvaluation._parse(doc["evaluation"], f"{key}.evaluation", problems) \
            if "evaluation" in doc else None
        return cls(doc["shape"], doc["runs"], number(doc.get("max_abs_diff")), number(doc.get("top1_agreement")),
                   error if isinstance(error, str) else None, evaluation)


@dataclass(frozen=True)
class ShapesEntry(Entry):
    """What a file accepts (`accepted`, the promise) and the shapes it was verified at."""

    accepted: dict
    verified: tuple[ShapeCheck, ...] = ()

    def to_json(self) -> dict:
        return {"accepted": self.accepted, "verified": [c.to_json() for c in self.verified]}

    def accepts(self, name: str, dims: list[int]) -> bool:
        """Whether input `name` at `dims` is within the promise and every verified shape runs.

        >>> e = ShapesEntry({"x": {"ranges": [[1, 32], [64, 64]], "original": [1, 64]}}, (ShapeCheck("1x64", True),))
        >>> e.accepts("x", [32, 64]), e.accepts("x", [64, 64]), e.accepts("y", [1])
        (True, False, False)
        """
        spec = self.accepted.get(name)
        if not isinstance(spec, dict) or not all(c.runs for c in self.verified):
            return False
        if "shapes" in spec:
            return list(dims) in [list(s) for s in spec["shapes"]]
        ranges = spec.get("ranges") or []
        return len(ranges) == len(dims) and all(lo <= d and (hi is None or d <= hi) for (lo, hi), d in zip(ranges, dims))

    def describe(self) -> str:
        """The promise in the grammar of `quantzoo shapes --input`.

        >>> ShapesEntry({"x": {"ranges": [[1, 32], [64, 64]], "original": [1, 64]}}).describe()
        'x=1..32,64'
        >>> ShapesEntry({"x": {"shapes": [[1, 3], [2, 3]], "original": [1, 3]}}).describe()
        'x=1x3,2x3'
        """
        def dim(lo, hi):
            return str(lo) if lo == hi else f"{lo}..{hi if hi is not None else ''}"

        parts = []
        for name, spec in sorted(self.accepted.items()):
            if isinstance(spec, dict) and "shapes" in spec:
                parts.append(f"{name}={','.join('x'.join(map(str, s)) for s in spec['shapes'])}")
            elif isinstance(spec, dict):
                parts.append(f"{name}={','.join(dim(lo, hi) for lo, hi in spec.get('ranges') or [])}")
        return " ".join(parts)

    @classmethod
    def _parse(cls, doc: Any, key: str, problems: list[str]) -> ShapesEntry | None:
        if not isinstance(doc, dict) or not isinstance(doc.get("accepted"), dict) \
                or not isinstance(doc.get("verified"), list):
            problems.append(f"{key}: expected {{accepted: {{input: promise}}, verified: [...]}}, found {kind_of(doc)}")
            return None
        for name, spec in doc["accepted"].items():
            ok = isinstance(spec, dict) and ("ranges" in spec) != ("shapes" in spec) and all(
                isinstance(r, list) for r in spec.get("ranges", spec.get("shapes")) or [None])
            if not ok:
                problems.append(f"{key}.accepted.{name}: expected {{ranges: [[lo, hi], ...]}} or {{shapes: [[...]]}}, "
                                f"found {json.dumps(spec)[:60]}")
        checks = [ShapeCheck._parse(c, f"{key}.verified[{i}]", problems) for i, c in enumerate(doc["verified"])]
        return cls(doc["accepted"], tuple(c for c in checks if c is not None))


def parse_throughput(doc: Any, key: str, problems: list[str]) -> dict[str, float]:
    """``{"<batch>": samples/s}`` with positive integer batch sizes and numbers ≥ 0."""
    if not isinstance(doc, dict) or not all(isinstance(b, str) and b.isdigit() and int(b) > 0 and
                                            number(v) is not None and v >= 0 for b, v in doc.items()):
        problems.append(f"{key}: expected {{batch size: samples per second}}, found {json.dumps(doc)[:60]}")
        return {}
    return {b: v for b, v in doc.items()}


def shapes_json(shapes: ShapesEntry | None, throughput: dict[str, float]) -> dict:
    """``{"shapes": ..., "throughput": ...}`` to merge into an entry's JSON; nothing without them."""
    return ({"shapes": shapes.to_json()} if shapes is not None else {}) | \
        ({"throughput": dict(throughput)} if throughput else {})


def parse_shapes_fields(doc: dict, key: str, problems: list[str]) -> tuple[ShapesEntry | None, dict[str, float]]:
    """The optional ``shapes`` and ``throughput`` of a variant or ``float`` entry."""
    shapes = ShapesEntry._parse(doc["shapes"], f"{key}.shapes", problems) if "shapes" in doc else None
    throughput = parse_throughput(doc["throughput"], f"{key}.throughput", problems) if "throughput" in doc else {}
    return shapes, throughput
