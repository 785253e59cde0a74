"""95 % intervals for the figures quantzoo publishes (see ARCHITECTURE.md, "Uncertainty and splits").

Proportions (agreement, accuracy: a share of samples) get the Wilson score interval, which stays
inside [0, 1] and is honest at 0 % and 100 %, where the normal approximation collapses to a
point. Other figures get a percentile bootstrap with a fixed seed, so the same values always
give the same interval (published bytes stay reproducible). A statistic that is not a plain mean
(the pooled SNR: total signal energy over total noise energy) is bootstrapped by resampling the
samples and recomputing the statistic on each resample.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

Z95 = 1.959963984540054          # the standard normal's 97.5 % quantile
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20180605         # fixed: same values, same interval


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion `successes / n`; None when n is 0.

    >>> [round(x, 4) for x in wilson(97, 100)]
    [0.9155, 0.9897]
    >>> wilson(0, 20)[0], round(wilson(20, 20)[0], 4), wilson(20, 20)[1]
    (0.0, 0.8389, 1.0)
    >>> wilson(0, 0) is None
    True
    """
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0))
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(values: Sequence | np.ndarray, statistic: Callable[[np.ndarray], np.ndarray] | None = None,
              *, clusters: Sequence[str] | None = None, resamples: int = BOOTSTRAP_RESAMPLES,
              seed: int = BOOTSTRAP_SEED, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of `statistic` over the rows of `values` (default: the mean).

    `statistic` takes an array of shape [resamples, n, ...] (resampled rows) and returns one value
    per resample. With `clusters` (one label per row, e.g. the photo a view was cut from) whole
    clusters are resampled, so rows that are not independent are not counted as if they were.
    None when there are fewer than two values (or clusters): one value shows no spread, and a
    zero-width interval around it would claim a certainty it does not have.

    >>> lo, hi = bootstrap([1.0, 2.0, 3.0, 4.0, 5.0])
    >>> 1.0 <= lo < 3.0 < hi <= 5.0
    True
    >>> bootstrap([2.5, 2.5, 2.5]), bootstrap([]) is None, bootstrap([0.9]) is None, bootstrap([1.0, 2.0], clusters="aa")
    ((2.5, 2.5), True, True, None)
    >>> a, b = bootstrap([0.0, 0.0, 1.0, 1.0], clusters="aabb"), bootstrap([0.0, 0.0, 1.0, 1.0])
    >>> a[0] <= b[0] and b[1] <= a[1]
    True
    """
    a = np.asarray(values, dtype=np.float64)
    n = a.shape[0] if a.ndim else 0
    if n < 2 or (clusters is not None and len(set(clusters)) < 2):
        return None
    rng = np.random.default_rng(seed)
    stat = statistic if statistic is not None else (lambda s: s.mean(axis=1))
    if clusters is None:
        # in blocks of resamples, so a long dataset of component rows stays small in memory
        draws = np.concatenate([np.asarray(stat(a[rng.integers(0, n, size=(m, n))]), dtype=np.float64)
                                for m in _blocks(resamples, n)])
    else:
        labels, members = np.unique(np.asarray(list(clusters)), return_inverse=True)
        groups = [np.flatnonzero(members == g) for g in range(len(labels))]
        picks = rng.integers(0, len(groups), size=(resamples, len(groups)))
        draws = np.array([float(np.asarray(stat(a[np.concatenate([groups[g] for g in row])][None]))[0])
                          for row in picks])
    draws = draws[np.isfinite(draws)] if np.isfinite(draws).any() else draws
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(draws, [tail, 1.0 - tail])
    return float(lo), float(hi)


def _blocks(resamples: int, n: int, cells: int = 1 << 20) -> list[int]:
    step = max(1, cells // max(n, 1))
    return [min(step, resamples - i) for i in range(0, resamples, step)]
