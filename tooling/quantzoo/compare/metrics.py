"""Metrics: one `Metric` record per metric name, and the pure functions that compute them.

`METRICS` is the one table of metrics: the registry's threshold check, the site's columns and
legend, and the client's formatting and ranking are all read from it. The per-sample functions
below are what the output kinds (`kinds.KINDS`) call; which kind an output gets is its task's
business (`tasks.TASKS`).

Metric keys (exactly these):

- every output: ``snr_db``, pooled over the dataset (classification logits and CTC
  probabilities included), so every variant says how far it is from the float model;
- classification: ``top1_agreement``, ``top5_agreement`` (the float model's top-1 class is
  among the quantized model's top 5; only for more than 5 classes), ``accuracy_float`` and
  ``accuracy_quantized`` (against labels, over labelled samples only);
- dense (maps, images, embeddings): ``psnr_db`` (pooled), ``cosine``, ``max_abs_error``;
- text detection: the dense metrics plus ``iou`` of the maps binarized at 0.3 (DB's threshold),
  over the samples where either map has text;
- CTC text recognition: ``string_agreement``, ``cer`` (quantized against float strings) and
  ``cer_labels`` (quantized against the labels).

A per-sample value is None where the figure is undefined on that sample (cosine with an all-zero
output, IoU of two empty maps, accuracy of an unlabelled sample); the summary leaves such samples
out and counts them (``excluded``, `summary.summarize`).

SNR and PSNR are pooled (`pooled_snr_db`, `pooled_psnr_db`): energies are summed over every
element of every sample before the ratio is taken. They cannot exceed what float32 can resolve:
the noise power is floored at ``FLOAT32_EPS**2 * signal power``, so identical outputs score
`SNR_CEILING_DB` (138.5 dB) instead of infinity (and a zero reference against a non-zero output
scores its negative), so JSON stays finite.

This module needs numpy only (no onnxruntime): the publisher and the client import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

# Bump when a metric's definition changes: cached comparisons are keyed by it.
# 2: iou leaves out samples where both maps are empty.
# 3: SNR and PSNR pooled over the dataset, snr_db on every output (logits, CTC probabilities),
#    cosine/iou/accuracy count undefined samples as `excluded`, every summary has `ci95`.
REVISION = 3


def _sig(x: float, digits: int = 7) -> float:
    """Round to `digits` significant digits, so JSON stays readable and stable."""
    return float(f"{x:.{digits}g}")


FLOAT32_EPS = float(np.finfo(np.float32).eps)
SNR_CEILING_DB = _sig(-20.0 * math.log10(FLOAT32_EPS), 10)
DET_THRESHOLD = 0.3


# --- the records ----------------------------------------------------------------------------

# unit -> how a finite value is written in a table cell
UNITS: dict[str, Callable[[float], str]] = {
    "fraction": lambda v: f"{v * 100:.2f} %",
    "db": lambda v: f"{v:.1f} dB",
    "ratio": lambda v: f"{v:.5f}",
    "abs": lambda v: f"{v:.3g}",
}


@dataclass(frozen=True)
class Metric:
    """Everything the program knows about one metric.

    `unit` picks the formatting (`UNITS`); `proportion` marks a share of samples (each sample
    scores 0 or 1); `primary` ranks the metrics a client orders a model's variants by (lower
    first; None: never primary). `kinds` are the output kinds (`kinds.KINDS`) that report it.
    `compute`, when given, is ``fn(reference batch, test batch, context) -> per-sample values``,
    run on every output of those kinds; when None the kind's own ``compare`` computes it
    (several metrics in one pass over the outputs). A per-sample value is None where the metric
    is undefined on that sample. `pool`, when given, makes the metric pooled: its per-sample
    values are component rows and ``pool(rows [..., n, k]) -> value(s)`` computes the figure over
    the whole dataset (the summary's mean; the bootstrap resamples rows and pools again).
    """

    name: str
    label: str
    unit: str
    higher_is_better: bool
    proportion: bool
    meaning: str
    primary: int | None = None
    kinds: tuple[str, ...] = ()
    compute: Callable[[np.ndarray, np.ndarray, dict], list] | None = None
    pool: Callable[[np.ndarray], Any] | None = None

    def format(self, value: Any) -> str:
        """`value` for a table cell: '99.53 %', '31.2 dB', '∞ dB', '–' for None.

        >>> METRICS["iou"].format(1.0), METRICS["snr_db"].format(float("-inf")), METRICS["cer"].format(None)
        ('100.00 %', '−∞ dB', '–')
        """
        if value is None:
            return "–"
        try:
            v = float(value)
        except (TypeError, ValueError):
            return "–"
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return ("∞" if v > 0 else "−∞") + (" dB" if self.unit == "db" else "")
        return UNITS.get(self.unit, UNITS["abs"])(v)


_CLS, _DENSE, _DET, _CTC = ("classification",), ("dense", "detection"), ("detection",), ("ctc",)
_ALL = ("classification", "dense", "detection", "ctc")

METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("top1_agreement", "top-1 agreement", "fraction", True, True,
           "share of samples where the compressed model's top class equals the float model's", 10, _CLS),
    Metric("top5_agreement", "top-5 agreement", "fraction", True, True,
           "share of samples where the float model's top class is among the compressed model's top 5", None, _CLS),
    Metric("accuracy_float", "float accuracy", "fraction", True, True,
           "top-1 accuracy of the float model against the labels, over the labelled samples", None, _CLS),
    Metric("accuracy_quantized", "accuracy", "fraction", True, True,
           "top-1 accuracy of the compressed model against the labels, over the labelled samples", None, _CLS),
    Metric("snr_db", "SNR", "db", True, False,
           "signal-to-noise ratio pooled over the dataset: 10·log10 of the float outputs' total energy "
           "over the total energy of the difference, summed over every element of every sample "
           "(CTC probabilities: over the float model's 16 most probable classes at each step)",
           None, _ALL, pool=lambda rows: pooled_snr_db(rows)),
    Metric("psnr_db", "PSNR", "db", True, False,
           "peak signal-to-noise ratio pooled over the dataset: the float output's largest squared value "
           "over the mean squared difference of every element of every sample, in dB",
           None, _DENSE, pool=lambda rows: pooled_psnr_db(rows)),
    Metric("cosine", "cosine", "ratio", True, False,
           "cosine similarity of the flattened outputs, averaged over the samples where neither output "
           "is all zero", 40, _DENSE),
    Metric("max_abs_error", "max abs error", "abs", False, False,
           "largest absolute difference of any output element of a sample, averaged over the samples", None, _DENSE),
    Metric("iou", "IoU", "fraction", True, False,
           "intersection over union of the binarized maps (text detection threshold), averaged over the "
           "samples where either map has text", 30, _DET),
    Metric("string_agreement", "string agreement", "fraction", True, True,
           "share of samples whose decoded strings are identical", 20, _CTC),
    Metric("cer", "CER vs float", "fraction", False, False,
           "character error rate of the compressed model's strings against the float model's strings", None, _CTC),
    Metric("cer_labels", "CER vs labels", "fraction", False, False,
           "character error rate of the compressed model's strings against the labels", None, _CTC),
)}


def metric(name: str) -> Metric:
    """The record of `name`; an unknown name gets a plain one (its own label, higher is better).

    >>> metric("cer").higher_is_better, metric("made_up").label, metric("made_up").format(0.5)
    (False, 'made_up', '0.5')
    """
    return METRICS.get(name) or Metric(name, name, "abs", True, False, name)


def format_metric(name: str, value: Any) -> str:
    """A metric value for a table cell, by the metric's unit.

    >>> format_metric("top1_agreement", 0.99531), format_metric("snr_db", 31.234), format_metric("snr_db", float("inf"))
    ('99.53 %', '31.2 dB', '∞ dB')
    >>> format_metric("max_abs_error", 0.000123), format_metric("cosine", 0.9999871)
    ('0.000123', '0.99999')
    """
    return metric(name).format(value)


def metric_label(name: str) -> str:
    """The column label of `name` ('top-1 agreement'); an unknown name is its own label."""
    return metric(name).label


def higher_is_better(name: str) -> bool:
    """Whether a larger value of `name` means closer agreement (unknown names: True)."""
    return metric(name).higher_is_better


def primary_metrics() -> tuple[str, ...]:
    """The metrics that rank a model's variants, best first, from the records' `primary`.

    >>> primary_metrics()
    ('top1_agreement', 'string_agreement', 'iou', 'cosine')
    """
    ranked = sorted((m.primary, m.name) for m in METRICS.values() if m.primary is not None)
    return tuple(name for _, name in ranked)


def __getattr__(name: str):
    # PRIMARY_METRICS is read from METRICS on each access, so a metric added later counts too
    if name == "PRIMARY_METRICS":
        return primary_metrics()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
