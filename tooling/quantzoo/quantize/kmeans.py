"""One-dimensional k-means for lookup tables: sort once, then work on runs of the sorted values.

In one dimension a cluster is a run of the sorted values, so a clustering is just its k+1 run
edges, and with prefix sums of the values and their squares every cluster's mean and error cost
O(1). A Lloyd step is then `searchsorted` of the k-1 midpoints: O(k log n) instead of O(n k).

Lloyd alone stops in local optima (a centroid cannot walk across its neighbours to where it is
needed), so the search alternates two moves until neither helps:

1. Lloyd to convergence from the current centroids.
2. Split-merge: split the clusters whose best two-way split gains the most and pay for each by
   merging the pair of neighbours whose merge costs the least, when the gain exceeds the cost.
   The best split of every cluster is itself found by a two-centroid Lloyd run on all clusters
   at once, so a round is O(k log n) too.

The start places centroids at the quantiles of the cube root of the value density (Panter and
Dite's high-resolution optimum), estimated from equal-count bins of the sorted values. Every
step is deterministic: no random starts. Only `np.sort` and the final assignment touch all n
values.
"""

from __future__ import annotations

import numpy as np

_DENSITY_BINS = 8192
_SPLIT_STEPS = 12


def kmeans_1d(values: np.ndarray, k: int, *, max_rounds: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Cluster `values` into at most `k` centroids; return ``(lut, codes)``.

    `lut` is float32 of length `k`, sorted (entries past the distinct values repeat the last
    centroid); `codes` has `values`' shape and indexes `lut`, every value mapped to its nearest
    entry.

    >>> lut, codes = kmeans_1d(np.array([0.0, 0.1, 1.0, 1.1], np.float32), 2)
    >>> lut.round(2).tolist(), codes.tolist()
    ([0.05, 1.05], [0, 0, 1, 1])
    """
    x = np.asarray(values, dtype=np.float32)
    if k < 1:
        raise ValueError(f"k must be at least 1, found {k}")
    if x.size == 0:
        raise ValueError("cannot cluster an empty array")
    flat = x.ravel()
    centroids = sorted_kmeans(np.sort(flat), k, max_rounds=max_rounds)
    lut = np.empty(k, np.float32)
    lut[: len(centroids)] = centroids
    lut[len(centroids):] = centroids[-1]
    return lut, assign(flat, centroids).reshape(x.shape)


def assign(flat: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted float32 `centroids` for every value (ties go down).

    >>> assign(np.array([0.2, 0.5, 0.9], np.float32), np.array([0.0, 1.0], np.float32)).tolist()
    [0, 0, 1]
    """
    c = np.asarray(centroids, np.float32)
    flat = np.asarray(flat, np.float32)
    dtype = np.uint8 if len(c) <= 256 else np.uint16
    if len(c) == 1:
        return np.zeros(flat.shape, dtype)
    mid = ((c[:-1].astype(np.float64) + c[1:]) / 2).astype(np.float32)
    codes = np.searchsorted(mid, flat, side="left")
    # A rounded midpoint can put a value next to it on the wrong side: settle those by distance.
    lo = np.maximum(codes - 1, 0)
    move_down = (codes > 0) & (np.abs(flat - c[lo]) <= np.abs(flat - c[codes]))
    codes[move_down] -= 1
    hi = np.minimum(codes + 1, len(c) - 1)
    move_up = (codes < len(c) - 1) & (np.abs(flat - c[hi]) < np.abs(flat - c[codes]))
    codes[move_up] += 1
    return codes.astype(dtype)


def sorted_kmeans(xs: np.ndarray, k: int, *, max_rounds: int = 200) -> np.ndarray:
    """Sorted float32 centroids of the sorted 1-D array `xs`: `k` of them, or one per distinct
    value when there are at most `k` distinct values (then the clustering is exact).

    >>> sorted_kmeans(np.array([1, 1, 2, 9], np.float32), 2).tolist()
    [1.3333333730697632, 9.0]
    """
    n = len(xs)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(xs)) + 1])
    if len(starts) <= k:
        return xs[starts].astype(np.float32)
    x = xs.astype(np.float64)
    shift = x[n // 2]  # centred sums keep the differences of sums of squares accurate
    x -= shift
    s1 = np.concatenate([[0.0], np.cumsum(x)])
    s2 = np.concatenate([[0.0], np.cumsum(x * x)])
    edges = _lloyd(x, s1, _cube_root_start(x, k))
    for _ in range(max_rounds):
        moved = _split_merge(x, s1, s2, edges, k)
        if moved is None:
            break
        edges = _lloyd(x, s1, _means(s1, moved))
    return (_means(s1, edges) + shift).astype(np.float32)


def sse(values: np.ndarray, lut: np.ndarray, codes: np.ndarray) -> float:
    """Sum of squared differences between `values` and their decoded ``lut[codes]`` (float64)."""
    d = np.asarray(values, np.float64).ravel() - np.asarray(lut, np.float32)[np.asarray(codes).ravel()]
    return float(d @ d)


def _cube_root_start(x: np.ndarray, k: int) -> np.ndarray:
    n = len(x)
    bins = min(_DENSITY_BINS, n - 1)
    q = x[np.linspace(0, n - 1, bins + 1).round().astype(np.intp)]
    width = np.diff(q)
    # Equal-count bins: the density is ~1/width, so a bin's cube-root mass is ~width^(2/3).
    cum = np.concatenate([[0.0], np.cumsum(np.cbrt(width * width))])
    targets = (np.arange(k) + 0.5) / k * cum[-1]
    return np.interp(targets, cum, q)


def _means(s1: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return (s1[edges[1:]] - s1[edges[:-1]]) / np.diff(edges)


def _sse(s1, s2, a, b):
    cnt = np.maximum(b - a, 1)
    sums = s1[b] - s1[a]
    return np.maximum((s2[b] - s2[a]) - sums * sums / cnt, 0.0)


def _lloyd(x: np.ndarray, s1: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Edges of the Lloyd fixed point reached from centroids `c`; empty clusters are dropped."""
    n = len(x)
    edges = None
    while True:
        mid = (c[:-1] + c[1:]) / 2
        new = np.unique(np.concatenate([[0], np.searchsorted(x, mid, side="left"), [n]]))
        if edges is not None and np.array_equal(new, edges):
            return edges
        edges = new
        c = _means(s1, edges)


def _best_splits(x, s1, s2, edges):
    """For every cluster: the gain of its best two-way split (by a 2-centroid Lloyd run on all
    clusters at once) and the split position."""
    a, b = edges[:-1], edges[1:]
    p = np.clip(np.searchsorted(x, _means(s1, edges), side="left"), a + 1, np.maximum(b - 1, a + 1))
    for _ in range(_SPLIT_STEPS):
        left = (s1[p] - s1[a]) / np.maximum(p - a, 1)
        right = (s1[b] - s1[p]) / np.maximum(b - p, 1)
        q = np.searchsorted(x, (left + right) / 2, side="left")
        q = np.clip(q, a + 1, np.maximum(b - 1, a + 1))
        if np.array_equal(q, p):
            break
        p = q
    gain = _sse(s1, s2, a, b) - _sse(s1, s2, a, p) - _sse(s1, s2, p, b)
    gain[(b - a) < 2] = 0.0
    return gain, p


def _split_merge(x, s1, s2, edges, k):
    """New edges after every profitable move, or None when no move lowers the error.

    While fewer than `k` clusters are alive, the best splits are free. After that each split
    is paired with the cheapest merge of two neighbours, taking moves while gain > cost and
    never touching a cluster twice in one round.
    """
    a, b = edges[:-1], edges[1:]
    live = len(a)
    gain, pos = _best_splits(x, s1, s2, edges)
    merge = _sse(s1, s2, a[:-1], b[1:]) - _sse(s1, s2, a[:-1], b[:-1]) - _sse(s1, s2, a[1:], b[1:])
    splits = [int(i) for i in np.argsort(-gain, kind="stable") if gain[i] > 0]
    merges = [int(i) for i in np.argsort(merge, kind="stable")]
    used = np.zeros(live, bool)
    add, drop = [], []
    free = k - live
    mi = 0
    for si in splits:
        if used[si]:
            continue
        if free > 0:
            free -= 1
            used[si] = True
            add.append(pos[si])
            continue
        while mi < len(merges) and (used[merges[mi]] or used[merges[mi] + 1]
                                    or si in (merges[mi], merges[mi] + 1)):
            mi += 1
        if mi >= len(merges) or merge[merges[mi]] >= gain[si]:
            break
        m = merges[mi]
        used[[si, m, m + 1]] = True
        add.append(pos[si])
        drop.append(m + 1)  # clusters m and m+1 meet at edges[m+1]
        mi += 1
    if not add:
        return None
    kept = np.delete(edges, drop) if drop else edges
    return np.unique(np.concatenate([kept, add]))
