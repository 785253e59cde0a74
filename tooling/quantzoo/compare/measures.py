"""The pure metric functions over one sample's outputs (float model's `ref`, compressed `test`):
pooled SNR/PSNR components, cosine, max abs error, map IoU, matched counts (F1, precision, recall
pooled over boxes or notes), top-k agreement, accuracy. The
`Metric` records that name them, their units and directions live in `metrics.py`
(ARCHITECTURE.md, "How to add a metric")."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def _sig(x: float, digits: int = 7) -> float:
    """Round to `digits` significant digits, so JSON stays readable and stable."""
    return float(f"{x:.{digits}g}")


FLOAT32_EPS = float(np.finfo(np.float32).eps)
SNR_CEILING_DB = _sig(-20.0 * math.log10(FLOAT32_EPS), 10)
DET_THRESHOLD = 0.3


# --- dense: pooled over the dataset ------------------------------------------------------------
# A pooled metric's per-sample values are component rows; its record's ``pool`` turns the rows of
# the whole dataset (shape [n, k], or [resamples, n, k] for a bootstrap) into the figure.

DENSE_COMPONENTS = ("signal_energy", "error_energy", "elements", "peak_power")


def dense_components(ref: np.ndarray, test: np.ndarray) -> tuple[float, float, float, float]:
    """One sample's row for the pooled SNR and PSNR: (Σref², Σ(ref−test)², element count, max ref²).

    >>> dense_components(np.array([1.0, -2.0]), np.array([1.5, -2.0]))
    (5.0, 0.25, 2.0, 4.0)
    """
    return dense_stats(ref, test)["snr_db"]


def _ratio_db(power, noise):
    """10·log10(power / noise), noise floored at FLOAT32_EPS²·power (float32 cannot resolve less);
    a zero power scores the ceiling when the noise is zero too, else its negative."""
    power, noise = np.asarray(power, dtype=np.float64), np.asarray(noise, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10.0 * np.log10(power / np.maximum(noise, FLOAT32_EPS ** 2 * power))
    db = np.where(power == 0.0, np.where(noise == 0.0, SNR_CEILING_DB, -SNR_CEILING_DB), db)
    return _sig(float(db), 10) if db.ndim == 0 else db


def pooled_snr_db(rows: np.ndarray):
    """SNR over the whole dataset: 10·log10(Σ signal energy / Σ error energy), every element of
    every sample counted once, so a sample whose output is all zero adds its (tiny) error and no
    signal instead of scoring −138 dB on its own.

    >>> pooled_snr_db(np.array([[2.0, 0.02, 2, 1], [0.0, 0.0, 2, 0]]))
    20.0
    """
    rows = np.asarray(rows, dtype=np.float64)
    return _ratio_db(rows[..., 0].sum(axis=-1), rows[..., 1].sum(axis=-1))


def pooled_psnr_db(rows: np.ndarray):
    """PSNR over the whole dataset: the float output's peak power over all samples (max ref²)
    over the pooled mean squared error (Σ error energy / Σ element count), in dB.

    >>> pooled_psnr_db(np.array([[4.0, 0.02, 2, 4], [0.0, 0.0, 2, 0]]))
    29.03089987
    """
    rows = np.asarray(rows, dtype=np.float64)
    count = rows[..., 2].sum(axis=-1)
    mse = rows[..., 1].sum(axis=-1) / np.maximum(count, 1.0)
    return _ratio_db(rows[..., 3].max(axis=-1), mse)


def dense_stats(ref: np.ndarray, test: np.ndarray) -> dict:
    """One sample's dense values in one pass (float64): the pooled metrics' component row
    (`dense_components`) under ``snr_db`` and ``psnr_db``, ``cosine`` (None where either output
    is all zero: undefined) and ``max_abs_error``.

    >>> dense_stats(np.array([1.0, 1.0]), np.array([1.1, 0.9]))["cosine"]
    0.9950371902
    """
    r = np.asarray(ref, dtype=np.float64).ravel()
    t = np.asarray(test, dtype=np.float64).ravel()
    if r.size == 0:
        return {"snr_db": (0.0, 0.0, 0.0, 0.0), "psnr_db": (0.0, 0.0, 0.0, 0.0), "cosine": None, "max_abs_error": 0.0}
    d = r - t
    # einsum dot products and extremes instead of r*r, abs(d): no output-sized temporaries, and
    # no BLAS call (OpenBLAS threads fight onnxruntime's spinning threads on a small machine)
    rr, tt, dd = (float(np.einsum("i,i->", a, a)) for a in (r, t, d))
    row = (rr, dd, float(r.size), max(float(r.max()) ** 2, float(r.min()) ** 2))
    cos = None if rr == 0.0 or tt == 0.0 else _sig(float(np.einsum("i,i->", r, t)) / math.sqrt(rr * tt), 10)
    return {"snr_db": row, "psnr_db": row, "cosine": cos, "max_abs_error": _sig(max(float(d.max()), -float(d.min())), 10)}


def snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-noise ratio of `test` against `ref` in dB: 10·log10(Σref² / Σ(ref−test)²).

    >>> snr_db(np.array([1.0, 1.0]), np.array([1.1, 0.9]))
    20.0
    >>> snr_db(np.ones(3), np.ones(3)) == SNR_CEILING_DB
    True
    """
    return pooled_snr_db(np.array([dense_components(ref, test)]))


def psnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB: 10·log10(max(ref²) / mean((ref−test)²)).

    >>> psnr_db(np.array([0.0, 2.0]), np.array([0.0, 1.8]))
    23.01029996
    """
    return pooled_psnr_db(np.array([dense_components(ref, test)]))


def cosine(ref: np.ndarray, test: np.ndarray) -> float | None:
    """Cosine similarity of the flattened outputs; None (undefined) when either is all zero.

    >>> cosine(np.array([1.0, 0.0]), np.array([1.0, 1.0])), cosine(np.zeros(2), np.zeros(2))
    (0.7071067812, None)
    """
    return dense_stats(ref, test)["cosine"]


def max_abs_error(ref: np.ndarray, test: np.ndarray) -> float:
    """Largest absolute difference.

    >>> max_abs_error(np.array([1.0, 2.0]), np.array([1.5, 1.0]))
    1.0
    """
    return dense_stats(ref, test)["max_abs_error"]


def iou(ref: np.ndarray, test: np.ndarray, threshold: float = DET_THRESHOLD) -> float | None:
    """Intersection over union of the two maps binarized at `threshold` (> threshold is on).

    None when both masks are empty: there is nothing to overlap, and counting such a pair as a
    perfect 1.0 let a model that finds no text anywhere score well on photos without text.

    >>> iou(np.array([0.9, 0.9, 0.1, 0.0]), np.array([0.9, 0.1, 0.9, 0.0]))
    0.3333333333
    >>> iou(np.zeros(4), np.zeros(4)) is None
    True
    """
    a = np.asarray(ref) > threshold
    b = np.asarray(test) > threshold
    union = int(np.count_nonzero(a | b))
    if union == 0:
        return None
    return _sig(int(np.count_nonzero(a & b)) / union, 10)


# --- matched counts: F1, precision, recall pooled over the counted items --------------------------
# Detections (boxes) and notes: a sample's row is [matches, reference items, test items] (the
# reference: the float model's items, or the true ones), and each figure is a micro-average over
# every item of the dataset. Its `*_units` is the number of counted trials the figure is a share of:
# the n of the Wilson interval its summary is never narrower than (`summary.summarize`;
# ARCHITECTURE.md, "Uncertainty and splits"). Rows of a resample: [resamples, n, 3].

def match_row(matches: int, n_ref: int, n_test: int) -> list[float]:
    """A sample's row of matched counts, for `pooled_f1`, `pooled_precision`, `pooled_recall`."""
    return [float(matches), float(n_ref), float(n_test)]


def _sums(rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.asarray(rows, dtype=np.float64)
    s = a.sum(axis=-2)
    return s[..., 0], s[..., 1], s[..., 2]


def _one(x: np.ndarray, rows):
    return float(x) if np.asarray(rows).ndim == 2 else x


def pooled_f1(rows):
    """2 · Σ matches / (Σ reference items + Σ test items): F1 over every item of every sample.

    >>> pooled_f1([match_row(2, 2, 2), match_row(1, 4, 2)])  # per-sample F1s 1 and 1/3 average 2/3
    0.6
    """
    m, r, t = _sums(rows)
    return _one(2.0 * m / np.maximum(r + t, 1.0), rows)


def pooled_precision(rows):
    """Σ matches / Σ test items. Rows with no test item add nothing (the output kinds leave them out).

    >>> pooled_precision([match_row(2, 2, 2), match_row(1, 4, 2)])
    0.75
    """
    m, _, t = _sums(rows)
    return _one(m / np.maximum(t, 1.0), rows)


def pooled_recall(rows):
    """Σ matches / Σ reference items.

    >>> pooled_recall([match_row(2, 2, 2), match_row(1, 4, 2)])
    0.5
    """
    m, r, _ = _sums(rows)
    return _one(m / np.maximum(r, 1.0), rows)


def f1_units(rows) -> float:
    """F1's counted trials: (Σ reference + Σ test items) / 2, so that F1 · units = Σ matches.

    >>> f1_units([match_row(2, 2, 2), match_row(1, 4, 2)])
    5.0
    """
    _, r, t = _sums(rows)
    return float((r + t) / 2.0)


def precision_units(rows) -> float:
    """Precision's counted trials: the test items."""
    return float(_sums(rows)[2])


def recall_units(rows) -> float:
    """Recall's counted trials: the reference items."""
    return float(_sums(rows)[1])


# --- classification -------------------------------------------------------------------------

def top1_agreement(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per sample: 1.0 where both [N, C] outputs have the same argmax.

    >>> top1_agreement(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([[0.2, 0.8], [0.4, 0.6]])).tolist()
    [1.0, 0.0]
    """
    return (np.argmax(ref, axis=1) == np.argmax(test, axis=1)).astype(np.float64)


def top5_agreement(ref: np.ndarray, test: np.ndarray, k: int = 5) -> np.ndarray:
    """Per sample: 1.0 where the reference's top-1 class is among the test's top `k` classes.

    >>> top5_agreement(np.array([[0, 0, 0, 0, 0, 0, 1.0]]), np.array([[6, 5, 4, 3, 2, 1, 0.0]]), k=5).tolist()
    [0.0]
    >>> top5_agreement(np.array([[0, 0, 0, 0, 0, 0, 1.0]]), np.array([[6, 5, 4, 3, 0, 0, 1.0]]), k=5).tolist()
    [1.0]
    """
    top1 = np.argmax(ref, axis=1)
    # the reference class is in test's top k iff fewer than k classes score strictly higher
    # (ties resolved in favour of the lower index, like argsort would)
    score = np.take_along_axis(test, top1[:, None], axis=1)
    idx = np.arange(test.shape[1])[None, :]
    higher = (test > score) | ((test == score) & (idx < top1[:, None]))
    return (higher.sum(axis=1) < k).astype(np.float64)


def accuracy(predicted: np.ndarray, labels: Sequence[int | None]) -> list[float | None]:
    """Per sample: 1.0 where the predicted class index equals the label's index; None where the
    label is None (no label, or one the model does not know): the summary leaves it out.

    >>> accuracy(np.array([2, 0, 1]), [2, None, 0])
    [1.0, None, 0.0]
    """
    return [None if y is None else float(int(p) == int(y)) for p, y in zip(predicted, labels)]
