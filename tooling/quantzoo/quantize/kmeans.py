"""One-dimensional k-means for lookup tables: near the exact optimum, without touching every
value more than a few times.

In one dimension a cluster is a run of the sorted values, so a clustering is its k+1 run edges,
and with prefix sums of counts, values and squares every cluster's mean and error cost O(1).
The values are first reduced to sorted *atoms*: the distinct values with their counts (one
sort). A tensor of more than `sample_size(k)` values is clustered on its extreme values (kept
exactly: the outer centroids depend on them) plus a fixed pseudo-random sample of the rest
(drawn with a seed, so the result is deterministic); only that partition and the final
assignment touch every value.

The search runs on atoms only:

1. Start: centroids at the quantiles of the cube root of the density (Panter and Dite's
   high-resolution optimum), estimated from equal-count bins.
2. Lloyd to convergence: a step is `searchsorted` of the k-1 midpoints, O(k log m).
3. Split-merge, once or twice: refill clusters that went empty by splitting the clusters whose
   best split gains most, paid for by the cheapest merges of neighbours.
4. Banded dynamic programming: the exact optimum over all clusterings whose boundary j lies
   on one of 2qB+1 candidate edges around the current boundary j (q sub-edges per cluster, B
   clusters either way), found with one min-plus pass over k layers; then Lloyd again. This is
   the step that moves whole groups of centroids from one side of the distribution to the
   other, which Lloyd cannot do. Repeated until it stops paying.

On real model weights this lands within ~0.5% of the exact optimum (coremltools' kmeans1d,
an O(kn) dynamic programme) at 2-8 bits. Everything is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_DENSITY_BINS = 8192
_SPLIT_STEPS = 12
_SPLIT_MERGE_ROUNDS = 2
_FIRST_LLOYD_STEPS = 20
_BAND_SUB = 8  # candidate edges per cluster in the banded DP
_BAND_REACH = 3  # clusters either way a boundary may move in one pass
_BAND_PASSES = 3
_BAND_TOL = 1e-4  # stop when a pass lowers the error by less than this fraction
# Tensors larger than sample_size(k) are clustered on a fixed pseudo-random sample of that many
# values (~4096 per cluster; the tails are kept exactly): the extra error stays below ~0.3%.
_SAMPLE_PER_CLUSTER = 4096
_SAMPLE_MIN = 1 << 14
_SAMPLE_MAX = 1 << 19
_REFILL_ONLY_UP_TO = 32  # at k this small split-merge only refills empty clusters


def sample_size(k: int) -> int:
    """How many values k-means looks at for k clusters.

    >>> sample_size(4), sample_size(256)
    (16384, 524288)
    """
    return int(min(max(_SAMPLE_PER_CLUSTER * k, _SAMPLE_MIN), _SAMPLE_MAX))


def kmeans_1d(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster `values` into at most `k` centroids; return ``(lut, codes)``.

    `lut` is float32 of length `k`, sorted (entries past the distinct values repeat the last
    centroid); `codes` has `values`' shape and indexes `lut`: every value goes to the centroid
    on its side of the float32 midpoint between neighbouring centroids (its nearest one).

    >>> lut, codes = kmeans_1d(np.array([0.0, 0.1, 1.0, 1.1], np.float32), 2)
    >>> [round(float(v), 2) for v in lut], codes.tolist()
    ([0.05, 1.05], [0, 0, 1, 1])
    """
    x = np.asarray(values, dtype=np.float32)
    if k < 1:
        raise ValueError(f"k must be at least 1, found {k}")
    if x.size == 0:
        raise ValueError("cannot cluster an empty array")
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot cluster values that are inf or nan")
    flat = x.ravel()
    atoms = Atoms.of(flat, sample_size(k))
    centroids = atoms_kmeans(atoms, k)
    codes = assign(flat, centroids)
    if atoms.sampled and len(atoms.value) <= k and not np.array_equal(centroids[codes], flat):
        # The sample showed at most k distinct values but the tensor has more: cluster it whole.
        centroids = atoms_kmeans(Atoms.of(flat), k)
        codes = assign(flat, centroids)
    lut = np.empty(k, np.float32)
    lut[: len(centroids)] = centroids
    lut[len(centroids):] = centroids[-1]
    return lut, codes.reshape(x.shape)


@dataclass
class Atoms:
    """Sorted distinct values (centred by `shift`) with prefix sums of count, value and square."""

    value: np.ndarray  # float64, sorted
    count: np.ndarray  # prefix sums, length m + 1
    s1: np.ndarray
    s2: np.ndarray
    shift: float
    sampled: bool = False

    @classmethod
    def of(cls, flat: np.ndarray, sample: int | None = None) -> "Atoms":
        """Atoms of all of `flat`, or of its sample/16 smallest and largest values plus a fixed
        pseudo-random sample of `sample` of the others."""
        sampled = sample is not None and flat.size > sample
        weights = None
        if sampled:
            # The tails decide where the few outer centroids go, and a sample would miss their
            # rare values: keep the `tail` smallest and largest values exactly (one partition)
            # and sample the body, each sampled value standing for len(body)/sample values.
            n, tail = flat.size, sample // 16
            part = np.partition(flat, (tail, n - tail - 1))
            low, body, high = part[:tail], part[tail:n - tail], part[n - tail:]
            # Fixed seed: the same tensor always gives the same sample.
            picked = body[np.random.default_rng(n).integers(0, len(body), sample)]
            xs = np.concatenate([np.sort(low), np.sort(picked), np.sort(high)])
            weights = np.concatenate([np.ones(tail), np.full(sample, len(body) / sample), np.ones(tail)])
        else:
            xs = np.sort(flat)
        starts = np.concatenate([[0], np.flatnonzero(xs[1:] != xs[:-1]) + 1])
        shift = float(xs[len(xs) // 2])
        uniq = xs[starts].astype(np.float64) - shift
        if weights is None:
            counts = np.diff(np.append(starts, len(xs))).astype(np.float64)
        else:
            counts = np.add.reduceat(weights, starts)
        return cls(uniq, _prefix(counts), _prefix(uniq * counts), _prefix(uniq * uniq * counts), shift, sampled)


def _prefix(a: np.ndarray) -> np.ndarray:
    out = np.empty(len(a) + 1)
    out[0] = 0.0
    np.cumsum(a, out=out[1:])
    return out


def assign(flat: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Code of every value: the index of the sorted float32 `centroids` on its side of each
    float32 midpoint (a value equal to a midpoint goes down).

    >>> assign(np.array([0.2, 0.5, 0.9], np.float32), np.array([0.0, 1.0], np.float32)).tolist()
    [0, 0, 1]
    """
    c = np.asarray(centroids, np.float32)
    flat = np.asarray(flat, np.float32)
    dtype = np.uint8 if len(c) <= 256 else np.uint16
    if len(c) == 1:
        return np.zeros(flat.shape, dtype)
    mid = ((c[:-1].astype(np.float64) + c[1:]) / 2).astype(np.float32)
    # Counting the midpoints below each value is searchsorted(mid, flat, "left"), and one
    # vectorised comparison per midpoint beats a binary search per value (3-20x at k <= 64).
    codes = np.zeros(flat.shape, dtype)
    for m in mid:
        codes += flat > m
    return codes


def sorted_kmeans(xs: np.ndarray, k: int) -> np.ndarray:
    """Sorted float32 centroids of the 1-D array `xs` (need not be sorted): `k` of them, or one
    per distinct value when there are at most `k` (then the clustering is exact).

    >>> sorted_kmeans(np.array([1, 1, 2, 9], np.float32), 2).tolist()
    [1.3333333730697632, 9.0]
    """
    return atoms_kmeans(Atoms.of(np.asarray(xs, np.float32).ravel()), k)


def atoms_kmeans(atoms: Atoms, k: int) -> np.ndarray:
    m = len(atoms.value)
    if m <= k:
        return (atoms.value + atoms.shift).astype(np.float32)
    a = atoms
    # The start is close; Lloyd's long slow tail is left to the banded DP, which moves faster.
    edges = _lloyd(a, _cube_root_start(a, k), _FIRST_LLOYD_STEPS)
    for _ in range(_SPLIT_MERGE_ROUNDS):
        if len(edges) - 1 == k and k <= _REFILL_ONLY_UP_TO:
            break  # no cluster to refill; at small k the banded DP makes the other moves
        moved = _split_merge(a, edges, k)
        if moved is None:
            break
        edges = _lloyd(a, _means(a, edges=moved))
    err = _total(a, edges)
    for _ in range(_BAND_PASSES):
        if len(edges) - 1 < k:
            break
        new = _lloyd(a, _means(a, edges=_band_dp(a, edges)))
        new_err = _total(a, new)
        if new_err < err:
            edges, gain, err = new, (err - new_err) / max(err, 1e-300), new_err
            if gain < _BAND_TOL:
                break
        else:
            break
    return (_means(a, edges) + a.shift).astype(np.float32)


def sse(values: np.ndarray, lut: np.ndarray, codes: np.ndarray) -> float:
    """Sum of squared differences between `values` and their decoded ``lut[codes]`` (float64)."""
    d = np.asarray(values, np.float64).ravel() - np.asarray(lut, np.float32)[np.asarray(codes).ravel()]
    return float(d @ d)


def _cube_root_start(a: Atoms, k: int) -> np.ndarray:
    total = a.count[-1]
    bins = int(min(_DENSITY_BINS, total - 1))
    # equal-count bins: the bin edges are values at evenly spaced ranks
    ranks = np.linspace(0, total - 1, bins + 1)
    q = a.value[np.minimum(np.searchsorted(a.count, ranks, side="right") - 1, len(a.value) - 1)]
    width = np.diff(q)
    # density ~ 1/width, so a bin's cube-root mass is ~ width^(2/3)
    cum = np.concatenate([[0.0], np.cumsum(np.cbrt(width * width))])
    targets = (np.arange(k) + 0.5) / k * cum[-1]
    return np.interp(targets, cum, q)


def _means(a: Atoms, edges: np.ndarray) -> np.ndarray:
    return (a.s1[edges[1:]] - a.s1[edges[:-1]]) / (a.count[edges[1:]] - a.count[edges[:-1]])


def _sse(a: Atoms, lo, hi):
    cnt = np.maximum(a.count[hi] - a.count[lo], 1.0)
    sums = a.s1[hi] - a.s1[lo]
    return np.maximum((a.s2[hi] - a.s2[lo]) - sums * sums / cnt, 0.0)


def _total(a: Atoms, edges: np.ndarray) -> float:
    return float(_sse(a, edges[:-1], edges[1:]).sum())


def _lloyd(a: Atoms, c: np.ndarray, max_steps: int = 1_000_000) -> np.ndarray:
    """Edges of the Lloyd fixed point reached from centroids `c` (or after `max_steps`);
    empty clusters are dropped."""
    m = len(a.value)
    edges = None
    for _ in range(max_steps):
        mid = (c[:-1] + c[1:]) / 2
        new = np.concatenate([[0], np.searchsorted(a.value, mid, side="left"), [m]])
        new = new[np.concatenate([[True], new[1:] != new[:-1]])]
        if edges is not None and np.array_equal(new, edges):
            return edges
        edges = new
        c = _means(a, edges)
    return edges


def _best_splits(a: Atoms, edges: np.ndarray):
    """Per cluster: the gain of its best two-way split (a 2-centroid Lloyd run on all clusters
    at once) and where it splits."""
    lo, hi = edges[:-1], edges[1:]
    top = np.maximum(hi - 1, lo + 1)
    p = np.clip(np.searchsorted(a.value, _means(a, edges), side="left"), lo + 1, top)
    for _ in range(_SPLIT_STEPS):
        left = (a.s1[p] - a.s1[lo]) / np.maximum(a.count[p] - a.count[lo], 1.0)
        right = (a.s1[hi] - a.s1[p]) / np.maximum(a.count[hi] - a.count[p], 1.0)
        q = np.clip(np.searchsorted(a.value, (left + right) / 2, side="left"), lo + 1, top)
        if np.array_equal(q, p):
            break
        p = q
    gain = _sse(a, lo, hi) - _sse(a, lo, p) - _sse(a, p, hi)
    gain[(hi - lo) < 2] = 0.0
    return gain, p


def _split_merge(a: Atoms, edges: np.ndarray, k: int):
    """Edges after every profitable (split, merge) move, or None when none lowers the error.

    While fewer than `k` clusters are alive the best splits are free; after that each split is
    paid for by the cheapest merge of two neighbours, moves taken while gain > cost, and no
    cluster touched twice in one round.
    """
    lo, hi = edges[:-1], edges[1:]
    live = len(lo)
    gain, pos = _best_splits(a, edges)
    merge = _sse(a, lo[:-1], hi[1:]) - _sse(a, lo[:-1], hi[:-1]) - _sse(a, lo[1:], hi[1:])
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
        while mi < len(merges) and (used[merges[mi]] or used[merges[mi] + 1] or si in (merges[mi], merges[mi] + 1)):
            mi += 1
        if mi >= len(merges) or merge[merges[mi]] >= gain[si]:
            break
        mm = merges[mi]
        used[[si, mm, mm + 1]] = True
        add.append(pos[si])
        drop.append(mm + 1)  # clusters mm and mm+1 meet at edges[mm+1]
        mi += 1
    if not add:
        return None
    kept = np.delete(edges, drop) if drop else edges
    return np.unique(np.concatenate([kept, add]))


def _band_dp(a: Atoms, edges: np.ndarray) -> np.ndarray:
    """The best edges such that edge j lies on a sub-edge within `_BAND_REACH` clusters of the
    current edge j: exact within that band, by dynamic programming over the k clusters."""
    k = len(edges) - 1
    m = len(a.value)
    q, reach = _BAND_SUB, _BAND_REACH
    lo, hi = edges[:-1], edges[1:]
    # q sub-edges per cluster, at equal counts
    c_lo, c_hi = a.count[lo], a.count[hi]
    targets = c_lo[:, None] + (c_hi - c_lo)[:, None] * (np.arange(q) / q)[None, :]
    sub = np.searchsorted(a.count, targets.ravel(), side="left")
    sub = np.unique(np.concatenate([sub, edges]))
    at = np.searchsorted(sub, edges)
    width = 2 * q * reach + 1
    cand = np.clip(at[:, None] + np.arange(-q * reach, q * reach + 1)[None, :], 0, len(sub) - 1)
    pos = sub[cand]  # [k+1, width] candidate atom indices for every edge
    pos[0] = 0
    pos[-1] = m
    cnt, s1, s2 = a.count[pos], a.s1[pos], a.s2[pos]
    # cost[j, u, v]: error of cluster j from candidate u of edge j to candidate v of edge j+1
    n = cnt[1:, None, :] - cnt[:-1, :, None]
    sums = s1[1:, None, :] - s1[:-1, :, None]
    cost = s2[1:, None, :] - s2[:-1, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        cost -= sums * sums / n
    cost[n <= 0] = np.inf
    best = np.full(width, np.inf)
    best[0] = 0.0
    back = np.empty((k, width), np.intp)
    cols = np.arange(width)
    for j in range(k):
        total = best[:, None] + cost[j]
        back[j] = np.argmin(total, axis=0)
        best = total[back[j], cols]
    path = np.empty(k + 1, np.intp)
    path[k] = int(np.argmin(best))
    for j in range(k - 1, -1, -1):
        path[j] = back[j][path[j + 1]]
    return pos[np.arange(k + 1), path]
