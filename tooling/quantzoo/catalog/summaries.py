"""A metric's summary over the evaluation samples (mean, std, n, 95 % interval, excluded), as
index.json writes it: under a variant's ``metrics`` and a verified shape's ``evaluation``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .fields import Entry, number


@dataclass(frozen=True)
class MetricSummary(Entry):
    """One metric of one output over the evaluation samples; None where it was not finite.

    `ci95` is the 95 % interval (lo, hi) or None; `excluded` the samples left out (0: none).

    >>> s = MetricSummary.from_json({"mean": 0.97, "std": 0.17, "n": 100, "ci95": [0.915, 0.99]}, "m")
    >>> s.ci95, s.excluded, s.to_json()
    ((0.915, 0.99), 0, {'ci95': [0.915, 0.99], 'mean': 0.97, 'n': 100, 'std': 0.17})
    >>> MetricSummary.from_json({"mean": 0.9, "std": 0, "n": 9}, "m").ci95 is None
    True
    """

    mean: float | None
    std: float | None
    n: int | None
    ci95: tuple[float, float] | None = None
    excluded: int = 0

    def bound(self, higher_is_better: bool) -> float | None:
        """The conservative end: the interval's lower end when higher is better (else the upper
        end); the mean when there is no interval (see ARCHITECTURE.md, "Formats")."""
        if self.ci95 is None:
            return self.mean
        return self.ci95[0] if higher_is_better else self.ci95[1]

    def to_json(self) -> dict:
        doc = {"ci95": list(self.ci95) if self.ci95 is not None else None, "mean": self.mean, "n": self.n,
               "std": self.std}
        return doc | {"excluded": self.excluded} if self.excluded else doc

    @classmethod
    def _parse(cls, doc: dict, key: str, problems: list[str]) -> MetricSummary:
        n, mean = doc.get("n"), number(doc.get("mean"))
        raw, ci95 = doc.get("ci95"), None
        if raw is not None:
            bounds = [number(x) for x in raw] if isinstance(raw, list) and len(raw) == 2 else None
            if bounds is None or None in bounds:
                problems.append(f"{key}.ci95: expected [lo, hi] (two numbers) or null, found {json.dumps(raw)[:60]}")
            elif not bounds[0] <= bounds[1] or (mean is not None and not _within(mean, *bounds)):
                around = f" around mean {mean:g}" if mean is not None else ""
                problems.append(f"{key}.ci95: expected lo <= mean <= hi, found {json.dumps(raw)}{around}")
            else:
                ci95 = (bounds[0], bounds[1])
        excluded = doc.get("excluded", 0)
        if not isinstance(excluded, int) or isinstance(excluded, bool) or excluded < 0:
            problems.append(f"{key}.excluded: expected a sample count >= 0, found {excluded!r}")
            excluded = 0
        return cls(mean, number(doc.get("std")), n if isinstance(n, int) and not isinstance(n, bool) else None,
                   ci95, excluded)


def _within(x: float, lo: float, hi: float) -> bool:
    """lo <= x <= hi, forgiving the last digits the writer rounded away (7 significant digits)."""
    slack = 1e-6 * max(abs(x), abs(lo), abs(hi), 1e-12)
    return lo - slack <= x <= hi + slack


def parse_metrics(doc: Any, key: str, problems: list[str]) -> dict[str, dict[str, MetricSummary]]:
    if not isinstance(doc, dict) or not all(
            isinstance(ms, dict) and all(isinstance(x, dict) for x in ms.values()) for ms in doc.values()):
        problems.append(f"{key}: expected {{output: {{metric: {{mean, std, n}}}}}}, found {json.dumps(doc)[:80]}")
        return {}
    return {out: {m: MetricSummary._parse(x, f"{key}.{out}.{m}", problems) for m, x in ms.items()}
            for out, ms in doc.items()}
