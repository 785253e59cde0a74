"""Output kinds: how one kind of model output is kept and compared.

An output is judged by its *kind*, chosen by the model's task from the output's rank
(`tasks.output_kind`). Each kind is one `OutputKind` record in `KINDS`:

- ``reduce(batch output, ctx)`` keeps, per batch, only what the kind's metrics need (so cached
  float outputs stay small: a CTC model keeps its argmax ids and its top classes per step, not
  its [N, T, 6625] softmax); when the compressed model's output is reduced, ``ctx["reference"]``
  is the float model's reduced batch;
- ``compare(reference, test, ctx)`` turns the reduced float and quantized outputs of one batch
  into per-sample metric values (`metrics.METRICS` describes each metric);
- ``context(class names, labels, label map)`` is what ``compare`` needs besides the outputs
  (class indices of the labels, a CTC vocabulary), computed once per evaluation.

`compare_batch` runs a kind's ``compare`` plus every metric record with its own ``compute``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from . import asr as ASR
from . import audiometrics as AUD
from . import decoders as DEC
from . import imagekinds as IK
from . import metrics as M
from . import melmetrics as MEL
from . import music as MU
from . import sentences as SEN
from . import speakermetrics as SPK
from . import text as T
from . import wakeword as WW

# Bump when a reduction's output changes: the cached float outputs are keyed by it.
# 2: CTC keeps its top classes per step (for the pooled SNR), not only argmax ids.
REDUCE_REVISION = 2
CTC_TOP = 16  # classes per time step that a CTC reduction keeps exactly


@dataclass(frozen=True)
class OutputKind:
    """One kind of output: its reduction, its comparison and the context its comparison reads."""

    name: str
    reduce: Callable[[np.ndarray, dict], np.ndarray]
    compare: Callable[[np.ndarray, np.ndarray, dict], dict[str, list]]
    context: Callable[[list[str] | None, list, dict | None], dict] | None = None


def _reduce_identity(y: np.ndarray, ctx: dict) -> np.ndarray:
    return np.ascontiguousarray(y)


def reduce_ctc(y: np.ndarray, ctx: dict) -> np.ndarray:
    """[N, T, C] per-step class scores -> one record per sample: argmax ``ids`` [T], and the
    ``top_i`` [T, K] classes with their values ``top_v``. The float model keeps its own top K
    classes; a compressed model's output is read at the float model's classes
    (``ctx["reference"]``), so the two can be subtracted exactly.

    >>> y = np.zeros((1, 2, 20), np.float32); y[0, :, 3] = 1.0
    >>> r = reduce_ctc(y, {}); r["ids"].tolist(), r["top_i"][0, :, 0].tolist()
    ([[3, 3]], [3, 3])
    """
    y = np.asarray(y, dtype=np.float32)
    n, t, c = y.shape
    k = min(CTC_TOP, c)
    ref = ctx.get("reference")
    if ref is not None:
        top_i = ref["top_i"]
    else:  # the k largest per step, largest first (a partial sort: C is thousands of classes)
        part = np.argpartition(-y, k - 1, axis=-1)[..., :k]
        order = np.argsort(-np.take_along_axis(y, part, axis=-1), axis=-1, kind="stable")
        top_i = np.take_along_axis(part, order, axis=-1).astype(np.int32)
    out = np.zeros(n, dtype=[("ids", np.int32, (t,)), ("top_i", np.int32, (t, k)), ("top_v", np.float32, (t, k))])
    out["ids"] = np.argmax(y, axis=-1)
    out["top_i"] = top_i
    out["top_v"] = np.take_along_axis(y, top_i, axis=-1)
    return out


def ctc_components(ref: np.ndarray, test: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Per sample, the pooled SNR's row (`metrics.dense_components`) from two `reduce_ctc` batches,
    exact over the float model's K most probable classes at every step (where a CTC model's
    probability mass is; the remaining thousands of near-zero classes are not kept, so they count
    for neither signal nor error). Element count and peak are not kept (0: no PSNR for CTC).

    >>> y = np.zeros((1, 2, 20), np.float32); y[0, :, 3] = 1.0
    >>> r = reduce_ctc(y, {}); ctc_components(r, reduce_ctc(y * 0.5, {"reference": r}))
    [(2.0, 0.5, 0.0, 0.0)]
    """
    rows = []
    for r, t in zip(ref, test):
        rv, tv = r["top_v"].astype(np.float64).ravel(), t["top_v"].astype(np.float64).ravel()
        d = rv - tv
        rows.append((float(rv @ rv), float(d @ d), 0.0, 0.0))
    return rows


def compare_dense(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Per-sample dense metrics of one batch (the leading axis is the sample)."""
    rows = [M.dense_stats(r, t) for r, t in zip(ref, test)]
    return {k: [row[k] for row in rows] for k in ("snr_db", "psnr_db", "cosine", "max_abs_error")}


def compare_detection(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Dense metrics plus the IoU of the binarized maps; with a ``decoder`` option (CRAFT's word
    grouping, `decoders.DECODERS`) also the agreement of the boxes decoded from the maps."""
    th = float(ctx.get("options", {}).get("iou_threshold", M.DET_THRESHOLD))
    out = compare_dense(ref, test, ctx)
    # None (excluded) where neither map has text (see `metrics.iou`)
    out["iou"] = [M.iou(r, t, th) for r, t in zip(ref, test)]
    if ctx.get("options", {}).get("decoder"):
        out.update(DEC.map_agreement(ref, test, ctx["options"]))
    return out


def compare_classification(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Top-1/top-5 agreement, the logits' pooled SNR, and accuracy of both models where
    `ctx["labels"]` has class indices."""
    ref2 = ref.reshape(ref.shape[0], -1)
    test2 = test.reshape(test.shape[0], -1)
    out = {"top1_agreement": M.top1_agreement(ref2, test2).tolist(),
           "snr_db": [M.dense_components(r, t) for r, t in zip(ref2, test2)]}
    if ref2.shape[1] > 5:
        out["top5_agreement"] = M.top5_agreement(ref2, test2).tolist()
    labels = ctx.get("labels")
    if labels is not None:
        out["accuracy_float"] = M.accuracy(np.argmax(ref2, axis=1), labels)
        out["accuracy_quantized"] = M.accuracy(np.argmax(test2, axis=1), labels)
    return out


def compare_ctc(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """String agreement and CER of the greedy-decoded `reduce_ctc` batches, the probabilities'
    pooled SNR (`ctc_components`), and `cer_labels` where labels are text."""
    vocab = ctx.get("vocab")
    ref_s = T.ctc_greedy(ref["ids"], vocab)
    test_s = T.ctc_greedy(test["ids"], vocab)
    out = {"string_agreement": [float(a == b) for a, b in zip(ref_s, test_s)],
           "cer": [T.cer(t, r) for r, t in zip(ref_s, test_s)],
           "snr_db": ctc_components(ref, test)}
    labels = ctx.get("labels")
    if labels is not None and vocab is not None:
        out["cer_labels"] = [T.cer(t, y.strip()) if isinstance(y, str) else None for t, y in zip(test_s, labels)]
    return out


def label_indices(labels: Sequence[Any], names: list[str] | None, label_map: dict | None) -> list[int | None] | None:
    """Each sample's label as a class index (through `label_map`), None where it has none or the
    model does not know it; None overall when nothing is labelled.

    >>> label_indices(["py", "c", "abnf", None], ["c", "python"], {"py": "python"})
    [1, 0, None, None]
    >>> label_indices(["3", "x"], None, None), label_indices([None], ["a"], None)
    ([3, None], None)
    """
    if not any(y is not None for y in labels):
        return None
    label_map = label_map or {}
    index = {n: i for i, n in enumerate(names)} if names else None
    out: list[int | None] = []
    for y in labels:
        if y is not None and y in label_map:
            y = label_map[y]
        if y is None:
            out.append(None)
        elif index is not None:
            out.append(index.get(str(y)))
        else:
            out.append(int(y) if str(y).isdigit() else None)
    return out


def _classification_context(names, labels, label_map) -> dict:
    return {"all_labels": label_indices(labels, names, label_map)}


def _ctc_context(names, labels, label_map) -> dict:
    return {"vocab": names, "all_labels": list(labels) if any(y is not None for y in labels) else None}


KINDS: dict[str, OutputKind] = {k.name: k for k in (
    OutputKind("classification", _reduce_identity, compare_classification, _classification_context),
    OutputKind("dense", _reduce_identity, compare_dense),
    OutputKind("detection", _reduce_identity, compare_detection),
    OutputKind("ctc", reduce_ctc, compare_ctc, _ctc_context),
    OutputKind("image", _reduce_identity, IK.compare_image),
    OutputKind("mask", _reduce_identity, IK.compare_mask, IK.mask_context),
    # a detector's first output plus the detections decoded from all its outputs (decoders.py)
    OutputKind("boxes", DEC.reduce_boxes, DEC.compare_boxes),
    # voice activity per frame of a streamed model, and CREPE's pitch bins (audiometrics.py)
    OutputKind("speech-frames", _reduce_identity, AUD.compare_vad, AUD.labels_context),
    OutputKind("pitch", _reduce_identity, AUD.compare_pitch, AUD.labels_context),
    # a transcriber's first output plus the notes decoded from its onset and note maps (music.py)
    OutputKind("notes", MU.reduce_notes, MU.compare_notes, MU.notes_context),
    # a keyword spotter's score per recording: the wake/no-wake decision at a threshold (wakeword.py)
    OutputKind("wake-score", _reduce_identity, WW.compare_wake, AUD.labels_context),
    # a speech synthesiser's audio, compared as mel spectrograms over the common frames (melmetrics.py)
    OutputKind("waveform", _reduce_identity, MEL.compare_waveform),
    # a sentence embedding per document: dense metrics, Spearman against human ratings (sentences.py)
    OutputKind("sentence-embedding", _reduce_identity, SEN.compare_sentence_embedding, SEN.labels_context),
    # speaker embeddings: same/different-voice decisions on utterance pairs (speakermetrics.py)
    OutputKind("speaker-embedding", _reduce_identity, SPK.compare_speaker, SPK.speaker_context),
    # a decoded model's generated token ids (seq2seq.py): transcripts, WER against float and the text (asr.py)
    OutputKind("transcript", _reduce_identity, ASR.compare_transcript, ASR.transcript_context),
)}


def compare_batch(kind: str, ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Per-sample values of every metric an output of `kind` gets, for one batch: the kind's own
    ``compare``, then each `metrics.METRICS` record that has a ``compute`` and lists this kind.

    >>> compare_batch("classification", np.eye(2), np.eye(2)[::-1], {})["top1_agreement"]
    [0.0, 0.0]
    """
    out = KINDS[kind].compare(ref, test, ctx)
    for m in M.METRICS.values():
        if m.compute is not None and kind in m.kinds:
            out[m.name] = list(m.compute(ref, test, ctx))
    return out
