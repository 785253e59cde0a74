"""Agreement metrics: pure functions from the two models' outputs to per-sample values.

An output is judged by its *kind*, chosen from the model's task and the output's rank
(`output_kind`). Each kind is one entry of `KINDS`: a ``reduce`` that keeps, per batch, only what
its metrics need (so cached float outputs stay small: a CTC model keeps its argmax ids, not its
[N, T, 6625] softmax), and a ``compare`` that turns the reduced float and quantized outputs of one
batch into per-sample metric values. `summarize` folds those into ``{"mean", "std", "n"}``.

Metric keys (exactly these):

- classification: ``top1_agreement``, ``top5_agreement`` (the float model's top-1 class is
  among the quantized model's top 5; only for more than 5 classes), ``accuracy_float`` and
  ``accuracy_quantized`` (against labels, over labelled samples only);
- dense (maps, images, embeddings): ``snr_db``, ``psnr_db``, ``cosine``, ``max_abs_error``;
- text detection: the dense metrics plus ``iou`` of the maps binarized at 0.3 (DB's threshold),
  over the samples where either map has text;
- CTC text recognition: ``string_agreement``, ``cer`` (quantized against float strings) and
  ``cer_labels`` (quantized against the labels).

SNR and PSNR cannot exceed what float32 can resolve: the noise power is floored at
``(FLOAT32_EPS * rms(reference))**2``, so identical outputs score `SNR_CEILING_DB` (138.5 dB)
instead of infinity (and a zero reference against a non-zero output scores its negative), so
JSON stays finite.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import numpy as np

# Bump when a metric's definition changes: cached comparisons are keyed by it.
# 2: iou leaves out samples where both maps are empty.
REVISION = 2


def _sig(x: float, digits: int = 7) -> float:
    """Round to `digits` significant digits, so JSON stays readable and stable."""
    return float(f"{x:.{digits}g}")


FLOAT32_EPS = float(np.finfo(np.float32).eps)
SNR_CEILING_DB = _sig(-20.0 * math.log10(FLOAT32_EPS), 10)
DET_THRESHOLD = 0.3


# --- summaries ------------------------------------------------------------------------------


def summarize(values: Iterable[float]) -> dict:
    """Mean, standard deviation (population, not variance) and count of per-sample values.

    >>> summarize([1.0, 0.0, 1.0, 1.0])
    {'mean': 0.75, 'std': 0.4330127, 'n': 4}
    >>> summarize([])
    {'mean': None, 'std': None, 'n': 0}
    """
    a = np.asarray(list(values), dtype=np.float64)
    if a.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": _sig(float(a.mean())), "std": _sig(float(a.std())), "n": int(a.size)}


# --- dense ---------------------------------------------------------------------------------

def dense_stats(ref: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """All four dense metrics of one sample in one pass (float64 arithmetic).

    >>> dense_stats(np.array([1.0, 1.0]), np.array([1.1, 0.9]))
    {'snr_db': 20.0, 'psnr_db': 20.0, 'cosine': 0.9950371902, 'max_abs_error': 0.1}
    """
    r = np.asarray(ref, dtype=np.float64).ravel()
    t = np.asarray(test, dtype=np.float64).ravel()
    if r.size == 0:
        return {"snr_db": SNR_CEILING_DB, "psnr_db": SNR_CEILING_DB, "cosine": 1.0, "max_abs_error": 0.0}
    d = r - t
    # einsum dot products and extremes instead of r*r, abs(d): no output-sized temporaries, and
    # no BLAS call (OpenBLAS threads fight onnxruntime's spinning threads on a small machine)
    rr, tt, dd = (float(np.einsum("i,i->", a, a)) for a in (r, t, d))
    mse = dd / r.size
    signal, peak = rr / r.size, max(float(r.max()) ** 2, float(r.min()) ** 2)

    def ratio_db(power: float) -> float:
        if power == 0.0:
            return SNR_CEILING_DB if mse == 0.0 else -SNR_CEILING_DB
        return _sig(10.0 * math.log10(power / max(mse, FLOAT32_EPS ** 2 * power)), 10)

    if rr == 0.0 or tt == 0.0:
        cos = 1.0 if rr == tt else 0.0
    else:
        cos = _sig(float(np.einsum("i,i->", r, t)) / math.sqrt(rr * tt), 10)
    return {"snr_db": ratio_db(signal), "psnr_db": ratio_db(peak), "cosine": cos,
            "max_abs_error": _sig(max(float(d.max()), -float(d.min())), 10)}


def snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-noise ratio of `test` against `ref` in dB: 10·log10(Σref² / Σ(ref−test)²).

    >>> snr_db(np.array([1.0, 1.0]), np.array([1.1, 0.9]))
    20.0
    >>> snr_db(np.ones(3), np.ones(3)) == SNR_CEILING_DB
    True
    """
    return dense_stats(ref, test)["snr_db"]


def psnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB: 10·log10(max(ref²) / mean((ref−test)²)).

    >>> psnr_db(np.array([0.0, 2.0]), np.array([0.0, 1.8]))
    23.01029996
    """
    return dense_stats(ref, test)["psnr_db"]


def cosine(ref: np.ndarray, test: np.ndarray) -> float:
    """Cosine similarity of the flattened outputs; two all-zero outputs agree (1.0).

    >>> cosine(np.array([1.0, 0.0]), np.array([1.0, 1.0]))
    0.7071067812
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


def accuracy(predicted: np.ndarray, labels: Sequence[int | None]) -> list[float]:
    """Per labelled sample: 1.0 where the predicted class index equals the label's index.
    Samples whose label is None (no label, or one the model does not know) are left out.

    >>> accuracy(np.array([2, 0, 1]), [2, None, 0])
    [1.0, 0.0]
    """
    return [float(int(p) == int(y)) for p, y in zip(predicted, labels) if y is not None]


# --- CTC text recognition --------------------------------------------------------------------

def ctc_greedy(ids: np.ndarray, vocab: Sequence[str] | None = None, blank: int = 0) -> list:
    """Greedy CTC decode of [N, T] argmax ids: merge repeats, drop the blank.

    With `vocab` the result is a list of strings (stray leading/trailing spaces stripped);
    without, a list of tuples of class ids.

    >>> ctc_greedy(np.array([[0, 1, 1, 0, 1, 2, 2]]), ["-", "a", "b"])
    ['aab']
    >>> ctc_greedy(np.array([[3, 3, 0, 3]]))
    [(3, 3)]
    """
    out = []
    for row in np.asarray(ids):
        keep = row[(row != blank) & np.concatenate(([True], row[1:] != row[:-1]))]
        if vocab is None:
            out.append(tuple(int(i) for i in keep))
        else:
            out.append("".join(vocab[i] if i < len(vocab) else "" for i in keep).strip())
    return out


def levenshtein(a: Sequence, b: Sequence) -> int:
    """Edit distance (insertions, deletions, substitutions cost 1).

    >>> levenshtein("kitten", "sitting")
    3
    """
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(hypothesis: Sequence, reference: Sequence) -> float:
    """Character error rate: edit distance / reference length (an empty reference counts as 1).

    >>> cer("helo", "hello")
    0.2
    >>> cer("", "")
    0.0
    """
    return levenshtein(hypothesis, reference) / max(len(reference), 1)


# --- output kinds: reduce a batch, compare a batch ------------------------------------------

def _reduce_identity(y: np.ndarray, ctx: dict) -> np.ndarray:
    return np.ascontiguousarray(y)


def _reduce_argmax(y: np.ndarray, ctx: dict) -> np.ndarray:
    return np.argmax(y, axis=-1).astype(np.int32)


def compare_dense(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list[float]]:
    """Per-sample dense metrics of one batch (the leading axis is the sample)."""
    rows = [dense_stats(r, t) for r, t in zip(ref, test)]
    return {k: [row[k] for row in rows] for k in ("snr_db", "psnr_db", "cosine", "max_abs_error")}


def compare_detection(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list[float]]:
    """Dense metrics plus the IoU of the binarized maps."""
    th = float(ctx.get("options", {}).get("iou_threshold", DET_THRESHOLD))
    out = compare_dense(ref, test, ctx)
    # n counts only the samples where either map has text (see `iou`)
    out["iou"] = [v for v in (iou(r, t, th) for r, t in zip(ref, test)) if v is not None]
    return out


def compare_classification(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list[float]]:
    """Top-1/top-5 agreement, and accuracy of both models where `ctx["labels"]` has class indices."""
    ref2 = ref.reshape(ref.shape[0], -1)
    test2 = test.reshape(test.shape[0], -1)
    out = {"top1_agreement": top1_agreement(ref2, test2).tolist()}
    if ref2.shape[1] > 5:
        out["top5_agreement"] = top5_agreement(ref2, test2).tolist()
    labels = ctx.get("labels")
    if labels is not None:
        out["accuracy_float"] = accuracy(np.argmax(ref2, axis=1), labels)
        out["accuracy_quantized"] = accuracy(np.argmax(test2, axis=1), labels)
    return out


def compare_ctc(ref_ids: np.ndarray, test_ids: np.ndarray, ctx: dict) -> dict[str, list[float]]:
    """String agreement and CER of greedy-decoded [N, T] ids; `cer_labels` where labels are text."""
    vocab = ctx.get("vocab")
    ref_s = ctc_greedy(ref_ids, vocab)
    test_s = ctc_greedy(test_ids, vocab)
    out = {"string_agreement": [float(a == b) for a, b in zip(ref_s, test_s)],
           "cer": [cer(t, r) for r, t in zip(ref_s, test_s)]}
    labels = ctx.get("labels")
    if labels is not None and vocab is not None:
        out["cer_labels"] = [cer(t, y.strip()) for t, y in zip(test_s, labels) if isinstance(y, str)]
    return out


# kind: (reduce(batch_output, ctx) -> array kept/cached, compare(ref, test, ctx) -> {metric: values})
KINDS: dict[str, tuple[Callable, Callable]] = {
    "classification": (_reduce_identity, compare_classification),
    "dense": (_reduce_identity, compare_dense),
    "detection": (_reduce_identity, compare_detection),
    "ctc": (_reduce_argmax, compare_ctc),
}


def output_kind(task: str | None, rank: int) -> str:
    """Which metrics an output of `rank` dimensions (batch included) gets under `task`.

    >>> output_kind("classification", 2), output_kind("text-recognition", 3), output_kind("text-detection", 4)
    ('classification', 'ctc', 'detection')
    >>> output_kind(None, 2), output_kind(None, 4), output_kind("embedding", 2)
    ('classification', 'dense', 'dense')
    """
    if task in (None, "classification") and rank == 2:
        return "classification"
    if task == "text-recognition" and rank == 3:
        return "ctc"
    if task == "text-detection" and rank == 4:
        return "detection"
    return "dense"
