"""kmeans: 1-D k-means lands within 1% of the exact optimum, found here by a plain dynamic
programme over the sorted distinct values (O(k m^2), fine for a few thousand values)."""

from __future__ import annotations

import numpy as np
import pytest

from quantzoo.quantize.kmeans import assign, kmeans_1d, sample_size, sorted_kmeans, sse


def exact_sse(values: np.ndarray, k: int) -> float:
    """The optimal k-means error of `values` by dynamic programming over distinct values."""
    v, c = np.unique(np.asarray(values, np.float64), return_counts=True)
    m = len(v)
    if m <= k:
        return 0.0
    n = np.concatenate([[0.0], np.cumsum(c)])
    s1 = np.concatenate([[0.0], np.cumsum(v * c)])
    s2 = np.concatenate([[0.0], np.cumsum(v * v * c)])
    lo, hi = np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij")
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = (s2[hi] - s2[lo]) - (s1[hi] - s1[lo]) ** 2 / (n[hi] - n[lo])
    cost[hi <= lo] = np.inf
    best = cost[0].copy()  # one cluster covering [0, i)
    for _ in range(k - 1):
        best = np.min(best[:, None] + cost, axis=0)
    return float(best[m])


def _data(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal(n).astype(np.float32)
    if kind == "laplace":
        return rng.laplace(size=n).astype(np.float32)
    if kind == "bimodal":
        return np.concatenate([rng.normal(-2, 0.3, n // 3), rng.normal(1, 1, n - n // 3)]).astype(np.float32)
    if kind == "spiky":  # a third exact zeros, the rest heavy-tailed: a pruned layer
        x = rng.standard_t(3, n) * 0.1
        x[rng.random(n) < 0.33] = 0
        return x.astype(np.float32)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["normal", "laplace", "bimodal", "spiky"])
@pytest.mark.parametrize("k", [2, 4, 8, 16, 32])
def test_error_is_within_one_percent_of_the_exact_optimum(kind, k):
    x = _data(kind, 1500, seed=k)
    lut, codes = kmeans_1d(x, k)
    assert sse(x, lut, codes) <= 1.01 * exact_sse(x, k) + 1e-12


def test_a_sampled_large_tensor_is_still_within_one_percent_of_the_optimum():
    # 2M values rounded to a 1/100 grid: few distinct values, so the exact optimum is cheap.
    x = np.round(np.random.default_rng(0).standard_normal(2_000_000) * 100) / 100
    x = x.astype(np.float32)
    assert x.size > sample_size(8)
    lut, codes = kmeans_1d(x, 8)
    assert sse(x, lut, codes) <= 1.01 * exact_sse(x, 8)


def test_at_most_k_distinct_values_are_kept_exactly():
    x = np.random.default_rng(1).choice(np.array([-1.5, 0.0, 0.25, 3.0], np.float32), 5000)
    lut, codes = kmeans_1d(x, 4)
    assert np.array_equal(lut[codes], x)
    lut, codes = kmeans_1d(x, 8)
    assert np.array_equal(lut[codes], x) and len(lut) == 8


def test_a_rare_value_missed_by_the_sample_is_still_kept_exactly():
    x = np.zeros(3_000_000, np.float32)
    x[::2] = 1.0
    x[1234567] = 5.0  # one value in three million: the sample of 65536 will not see it
    lut, codes = kmeans_1d(x, 4)
    assert np.array_equal(lut[codes], x)


def test_every_value_gets_its_nearest_centroid():
    x = _data("laplace", 4000, 3)
    lut, codes = kmeans_1d(x, 16)
    dist = np.abs(x[:, None] - lut[None, :])
    assert np.all(dist[np.arange(len(x)), codes] <= dist.min(axis=1) + 1e-7)


def test_the_table_is_sorted_and_the_same_every_time():
    x = _data("bimodal", 20000, 4)
    a, ca = kmeans_1d(x, 64)
    b, cb = kmeans_1d(x.copy(), 64)
    assert np.array_equal(a, b) and np.array_equal(ca, cb)
    assert np.all(np.diff(a) >= 0) and ca.dtype == np.uint8


def test_centroids_are_the_means_of_their_clusters():
    x = _data("normal", 3000, 5)
    c = sorted_kmeans(x, 8)
    codes = assign(x, c)
    for i in range(8):
        assert abs(x[codes == i].astype(np.float64).mean() - c[i]) < 1e-6


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="k must be at least 1"):
        kmeans_1d(np.ones(4, np.float32), 0)
    with pytest.raises(ValueError, match="empty"):
        kmeans_1d(np.ones(0, np.float32), 2)
    with pytest.raises(ValueError, match="inf or nan"):
        kmeans_1d(np.array([1.0, np.nan], np.float32), 2)
