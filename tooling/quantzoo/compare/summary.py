"""A metric's per-sample values → the summary the comparison JSON and index.json carry:

``{"mean": float|None, "std": float|None, "n": int, "ci95": [lo, hi] | None, "excluded": int}``

- ``n`` counts the samples where the metric is defined; ``excluded`` (present only when > 0)
  counts the samples where it is not (a per-sample value of None: cosine with an all-zero
  output, IoU of two empty maps, accuracy of an unlabelled sample).
- A plain metric: ``mean`` and ``std`` (population) of the values; ``ci95`` a fixed-seed
  percentile bootstrap of the mean (`intervals.bootstrap`).
- A proportion (`metrics.Metric.proportion`, values 0 or 1): ``ci95`` the Wilson score interval
  of ``successes / n``.
- A pooled metric (`metrics.Metric.pool`: values are component rows): ``mean`` is the pooled
  figure over every sample, ``std`` None, ``ci95`` a bootstrap that resamples samples and pools
  again.
- A count ratio (`metrics.Metric.units`: a pooled share of counted items — detection and note
  F1, precision, recall over boxes or notes, balanced speaker agreement over utterance pairs,
  word error rates over reference words while they are at most 1):
  ``ci95`` the hull of its bootstrap interval and the Wilson score interval of ``mean`` · U
  successes in U trials, U = ``units(rows)`` over every sample (the items counted, not the
  samples; when samples are views of fewer photos, U × photos / samples: a face seen in eight
  views counts once), so it never collapses to a point when every sample agrees (a bootstrap of
  three photos whose 40 boxes all match is [1, 1]; Wilson at 40 of 40 is [0.912, 1]); where the
  bootstrap is wider (samples disagree, or items are not independent) it stands. Figures that are
  not counts (pixel IoUs, cosines) keep their bootstrap alone (ARCHITECTURE.md, "Uncertainty and
  splits").
- Samples that are views of one photo (`clusters`: the photo of each sample, from the dataset
  adapter's ``cluster``) are not independent: the bootstrap resamples whole photos, and a
  proportion's Wilson interval takes the number of distinct photos as its n (with the mean as
  its p), which keeps Wilson's sound behaviour at 0 % and 100 % where a bootstrap collapses.

The interval always contains ``mean`` (a percentile bootstrap may miss it by a hair; it is then
widened to it). The same values give the same bytes: every number is rounded to 7 significant
digits and the bootstrap's seed is fixed.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .intervals import bootstrap, wilson
from .metrics import _sig, metric


def summarize(name: str, values: Sequence, clusters: Sequence[str] | None = None) -> dict:
    """The summary of metric `name` over per-sample `values` (None: undefined on that sample);
    `clusters` names each sample's photo when several samples are views of one photo.

    >>> summarize("cosine", [1.0, 0.5, None])
    {'mean': 0.75, 'std': 0.25, 'n': 2, 'ci95': [0.5, 1.0], 'excluded': 1}
    >>> summarize("top1_agreement", [1.0] * 97 + [0.0] * 3)["ci95"]
    [0.9154806, 0.9897455]
    >>> summarize("snr_db", [(2.0, 0.02, 2, 1), (8.0, 0.08, 2, 4)])
    {'mean': 20.0, 'std': None, 'n': 2, 'ci95': [20.0, 20.0]}
    >>> summarize("detection_f1", [[2.0, 2.0, 2.0]] * 10)["ci95"]  # a bootstrap says [1, 1]; Wilson at 20 of 20
    [0.8388748, 1.0]
    >>> summarize("cer", [])
    {'mean': None, 'std': None, 'n': 0, 'ci95': None}
    """
    record = metric(name)
    keep = [i for i, v in enumerate(values) if v is not None]
    excluded = len(values) - len(keep)
    groups = [clusters[i] for i in keep] if clusters is not None else None
    out: dict = {"mean": None, "std": None, "n": len(keep), "ci95": None}
    if keep:
        a = np.asarray([values[i] for i in keep], dtype=np.float64)
        value = _figure(record, a)
        if record.pool is not None:
            ci = bootstrap(a, record.pool, clusters=groups)
        else:
            out["std"] = _sig(float(a.std()))
            if record.proportion:
                ci = wilson(value * _effective_n(len(a), groups), _effective_n(len(a), groups))
            else:
                ci = bootstrap(a, clusters=groups)
        out["mean"] = _sig(value)
        if record.units is not None:
            ci = _at_least_wilson(ci, value, _distinct_units(float(record.units(a)), len(a), groups))
        # a percentile interval of a skewed or pooled statistic can miss the point value by a
        # hair; the published interval always contains it
        out["ci95"] = [min(_sig(ci[0]), out["mean"]), max(_sig(ci[1]), out["mean"])] if ci is not None else None
    if excluded:
        out["excluded"] = excluded
    return out


def figure(name: str, values: Sequence) -> float | None:
    """What `summarize` reports as the ``mean`` of metric `name`, unrounded and without an
    interval: the mean of the defined `values`, or a pooled metric's figure over their rows;
    None when no value is defined.

    >>> figure("detection_f1", [[2.0, 2.0, 2.0], None, [1.0, 4.0, 2.0]]), figure("cosine", [None])
    (0.6, None)
    """
    keep = [v for v in values if v is not None]
    return _figure(metric(name), np.asarray(keep, dtype=np.float64)) if keep else None


def _figure(record, a: np.ndarray) -> float:
    return float(record.pool(a)) if record.pool is not None else float(a.mean())


def _distinct_units(units: float, n: int, groups: Sequence[str] | None) -> float:
    """The counted items of `n` samples that are views of fewer photos (`groups`), as if each
    photo's views counted its items once: units × photos / samples (the same faces seen in eight
    views are not eight times the evidence).

    >>> _distinct_units(48.0, 48, [str(i // 8) for i in range(48)]), _distinct_units(40.0, 3, None)
    (6.0, 40.0)
    """
    return units if groups is None else units * len(set(groups)) / n


def _effective_n(n: int, groups: Sequence[str] | None) -> int:
    return n if groups is None else len(set(groups))


def _at_least_wilson(ci: tuple[float, float] | None, mean: float, n: float) -> tuple[float, float] | None:
    """The hull of `ci` and the Wilson score interval of `mean` · `n` successes in `n` trials; `ci`
    itself when the mean is not a share (not finite: a pooled figure with nothing to pool; above 1:
    a WER with more insertions than words) or there are no trials.

    >>> _at_least_wilson((1.0, 1.0), 1.0, 20)[0] == wilson(20, 20)[0], _at_least_wilson((0.2, 0.9), 0.5, 100)
    (True, (0.2, 0.9))
    >>> _at_least_wilson((2.5, 3.0), 2.9, 100)
    (2.5, 3.0)
    """
    if not 0.0 <= mean <= 1.0:
        return ci
    floor = wilson(mean * n, n)
    if ci is None or floor is None:
        return ci or floor
    return min(ci[0], floor[0]), max(ci[1], floor[1])


# --- for people -------------------------------------------------------------------------------

def format_summary(name: str, s: Any) -> str:
    """A metric for a table cell with its interval and sample count when it has an interval (or
    is a proportion): each bound is the metric's own format with the unit written once. `s` is
    anything with ``mean``, ``n``, ``ci95`` and ``excluded`` (a `catalog.MetricSummary`).

    >>> from quantzoo.catalog import MetricSummary

    >>> format_summary("string_agreement", MetricSummary(0.97, 0.17, 100, (0.9155, 0.9897)))
    '97.00 % (91.55–98.97, n=100)'
    >>> format_summary("snr_db", MetricSummary(48.04, 3.0, 26, (46.5, 49.6)))
    '48.0 dB (46.5–49.6, n=26)'
    >>> format_summary("cosine", MetricSummary(0.99991, 0.0, 14, (0.99987, 0.99994), excluded=12))
    '0.99991 (0.99987–0.99994, n=14 of 26)'
    >>> format_summary("top1_agreement", MetricSummary(1.0, 0.0, 50)), format_summary("snr_db", None)
    ('100.00 % (n=50)', '–')
    """
    m = metric(name)
    if s is None or s.mean is None:
        return m.format(None)
    text = m.format(s.mean)
    n = "" if s.n is None else f"n={s.n}" + (f" of {s.n + s.excluded}" if s.excluded else "")
    if s.ci95 is not None:
        lo, hi = m.format(s.ci95[0]), m.format(s.ci95[1])
        unit = " " + text.rsplit(" ", 1)[1] if " " in text else ""
        if unit and lo.endswith(unit) and hi.endswith(unit):
            lo, hi = lo[:-len(unit)], hi[:-len(unit)]
        return f"{text} ({lo}–{hi}" + (f", {n})" if n else ")")
    return f"{text} ({n})" if n and m.proportion else text


def excluded_note(name: str, s: Any) -> str | None:
    """What a cell's `excluded` means, for its tooltip: 'cosine over 14 of 26 samples (…)'.

    >>> from quantzoo.catalog import MetricSummary

    >>> excluded_note("cosine", MetricSummary(0.9, 0.0, 14, None, excluded=12))
    'cosine over 14 of 26 samples (12 left out where it is undefined)'
    """
    if s is None or not s.excluded or s.n is None:
        return None
    return (f"{metric(name).label} over {s.n} of {s.n + s.excluded} samples "
            f"({s.excluded} left out where it is undefined)")
