"""Speaker-embedding metrics: same/different-speaker decisions on pairs of utterances (the
``speaker-embedding`` output kind of `kinds.KINDS`; their `metrics.METRICS` records name these
figures; ARCHITECTURE.md, "Speaker embeddings").

A speaker embedding is judged by what it is used for: deciding whether two utterances come from
the same voice. Two utterances are "same voice" for a model when the cosine of their embeddings
is at least the threshold ``same_speaker_threshold`` (``preprocessing.params.metrics``), which is
fixed once on the float model's embeddings of the calibration part (`eer_threshold`: where the
float model's false accepts equal its false rejects) — never on the evaluated utterances.

Over every pair of distinct evaluated utterances:

- ``speaker_agreement``: how often the compressed model makes the float model's decision,
  balanced over the float model's two decisions (the mean of the agreement on the pairs it calls
  "same" and on the pairs it calls "different"), so the many easy different-voice pairs do not
  swamp the few same-voice ones; needs no labels;
- ``speaker_accuracy_float`` / ``speaker_accuracy``: each model's decisions against the true
  voices, balanced the same way over same-voice and different-voice pairs (balanced accuracy).

These are not means over samples: each sample contributes a row (an id, its voice, the
threshold, both models' unit embeddings) and the figure is pooled over all pairs of rows
(`Metric.pool`). The intervals bootstrap utterances and pool again — whole voices when the
dataset clusters utterances by voice (``espeak-speakers``) — so pairs are never counted as
independent; a pair of two copies of one resampled utterance is not a pair. The published n is
the number of utterances. Each figure is a count ratio (`Metric.units`): its interval is never
narrower than Wilson's at the pairs of the smaller of the two classes it balances
(`units_agreement`, `units_accuracy`), the class that bounds how well the balanced figure is known.

Numpy only, like `metrics`.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from .measures import _sig, dense_stats

HEAD = 3  # a row: [id, voice index (-1: unlabelled), threshold, float embedding…, compressed embedding…]


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).ravel()
    n = math.sqrt(float(np.einsum("i,i->", v, v)))
    return v / n if n > 0 else v


def _row_id(rest: np.ndarray) -> float:
    """A stable id from the bytes of the rest of the row (voice, threshold, both embeddings): two
    rows with one id are one utterance (48 bits: exact in a float64)."""
    return float(int.from_bytes(hashlib.sha256(np.asarray(rest, "<f8").tobytes()).digest()[:6], "big"))


def pair_rows(ref: np.ndarray, test: np.ndarray, voices: list[int], threshold: float) -> list[np.ndarray]:
    """Per sample, the row the pooled pair metrics read.

    >>> r = pair_rows(np.array([[3.0, 4.0]]), np.array([[4.0, 3.0]]), [2], 0.5)[0]; r[1:].tolist()
    [2.0, 0.5, 0.6, 0.8, 0.8, 0.6]
    """
    rows = []
    for a, b, v in zip(ref, test, voices):
        rest = np.concatenate([[float(v), float(threshold)], _unit(a), _unit(b)])
        rows.append(np.concatenate([[_row_id(rest)], rest]))
    return rows


# The bootstrap pools 2,000 resamples of the same rows, three metrics each: the cosines of every
# pair of distinct rows are computed once and looked up by the rows' ids (which hash whole rows).
_MEMO: tuple = ()


def _known(uniq: np.ndarray, ids: np.ndarray) -> bool:
    at = np.minimum(np.searchsorted(uniq, ids), len(uniq) - 1)
    return bool((uniq[at] == ids).all())


def _cosines(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both models' cosine of every pair of rows of `a` [m, n, k], each [m, n, n]."""
    global _MEMO
    ids = a[..., 0]
    if not (_MEMO and _known(_MEMO[0], ids)):
        uniq, first = np.unique(ids.ravel(), return_index=True)
        flat = a.reshape(-1, a.shape[-1])[first]
        d = (a.shape[-1] - HEAD) // 2
        ref, test = flat[:, HEAD:HEAD + d], flat[:, HEAD + d:HEAD + 2 * d]
        _MEMO = (uniq, np.einsum("id,jd->ij", ref, ref), np.einsum("id,jd->ij", test, test))
    uniq, cref, ctest = _MEMO
    at = np.searchsorted(uniq, ids)
    return cref[at[:, :, None], at[:, None, :]], ctest[at[:, :, None], at[:, None, :]]


def _pairs(rows):
    """From rows [n, k] or resampled [m, n, k]: the valid-pair mask, true same-voice pairs and
    both models' "same" decisions, each [m, n, n]."""
    a = np.asarray(rows, dtype=np.float64)
    a = a[None] if a.ndim == 2 else a
    ids, voice, th = a[..., 0], a[..., 1], a[..., 2][:, :1, None]
    n = a.shape[1]
    valid = np.triu(np.ones((n, n), dtype=bool), 1)[None] & (ids[:, :, None] != ids[:, None, :])
    same = voice[:, :, None] == voice[:, None, :]
    cref, ctest = _cosines(a)
    return valid, same, cref >= th, ctest >= th


def _balanced(hit: np.ndarray, valid: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Per resample: the mean over the two classes (cls, not cls) of the share of valid pairs
    that hit; a class with no pair is left out; NaN when there is no pair at all."""
    shares, counts = [], []
    for c in (cls, ~cls):
        m = valid & c
        k = m.sum(axis=(1, 2))
        counts.append(k)
        shares.append(np.where(k > 0, (hit & m).sum(axis=(1, 2)) / np.maximum(k, 1), 0.0))
    present = sum((k > 0).astype(np.float64) for k in counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(present > 0, (shares[0] + shares[1]) / present, np.nan)


def _scalar(x: np.ndarray, rows):
    return float(x[0]) if np.asarray(rows).ndim == 2 else x


def pooled_agreement(rows):
    """Balanced agreement of the compressed model's same/different decisions with the float model's.

    Utterances 0 and 1 share a voice. The float model calls pair (0, 1) "same" and the others
    "different"; the compressed model calls only (1, 2) "same": it agrees on none of the float
    model's "same" pairs and on one of its two "different" pairs.

    >>> e = np.eye(3); rows = np.array(pair_rows(e[[0, 0, 1]], e[[0, 1, 1]], [0, 0, 1], 0.5))
    >>> pooled_agreement(rows)
    0.25
    """
    valid, same, dr, dt = _pairs(rows)
    return _scalar(_balanced(dr == dt, valid, dr), rows)


def _accuracy(rows, which: int):
    valid, same, dr, dt = _pairs(rows)
    return _scalar(_balanced((dr if which == 0 else dt) == same, valid, same), rows)


def pooled_accuracy_float(rows):
    """Balanced accuracy of the float model's decisions against the true voices."""
    return _accuracy(rows, 0)


def pooled_accuracy(rows):
    """Balanced accuracy of the compressed model's decisions against the true voices.

    >>> e = np.eye(3); rows = np.array(pair_rows(e[[0, 0, 1]], e[[0, 1, 1]], [0, 0, 1], 0.5))
    >>> pooled_accuracy_float(rows), pooled_accuracy(rows)
    (1.0, 0.25)
    """
    return _accuracy(rows, 1)


def _smaller_class(valid: np.ndarray, cls: np.ndarray) -> float:
    """Pairs in the smaller of the classes (cls, not cls) that have a pair; 0 when neither has."""
    counts = [int((valid & c).sum()) for c in (cls, ~cls)]
    return float(min((k for k in counts if k > 0), default=0))


def units_agreement(rows) -> float:
    """The counted trials of `pooled_agreement`: the pairs of the float model's rarer decision.

    >>> e = np.eye(3); rows = np.array(pair_rows(e[[0, 0, 1]], e[[0, 1, 1]], [0, 0, 1], 0.5))
    >>> units_agreement(rows), units_accuracy(rows)
    (1.0, 1.0)
    """
    valid, same, dr, dt = _pairs(rows)
    return _smaller_class(valid, dr)


def units_accuracy(rows) -> float:
    """The counted trials of `pooled_accuracy` and `pooled_accuracy_float`: the pairs of the rarer
    true class (same voice or different voices)."""
    valid, same, dr, dt = _pairs(rows)
    return _smaller_class(valid, same)


# --- the output kind ------------------------------------------------------------------------------

def speaker_context(names, labels, label_map) -> dict:
    """The labels and each voice's index (sorted voice names), or no labels when none is labelled."""
    voices = sorted({str(y) for y in labels if y is not None})
    return {"all_labels": list(labels) if voices else None, "voice_index": {v: i for i, v in enumerate(voices)}}


def compare_speaker(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Per sample: the dense metrics of the embedding (cosine, SNR, …) and, when the options give a
    ``same_speaker_threshold``, the rows of the pooled pair metrics (accuracy rows only for
    labelled samples).

    >>> e = np.eye(2); ctx = {"options": {"same_speaker_threshold": 0.5}, "labels": ["a", "b"], "voice_index": {"a": 0, "b": 1}}
    >>> out = compare_speaker(e, e, ctx); out["cosine"], len(out["speaker_agreement"]), float(out["speaker_accuracy"][1][1])
    ([1.0, 1.0], 2, 1.0)
    """
    r = np.asarray(ref, dtype=np.float64).reshape(len(ref), -1)
    t = np.asarray(test, dtype=np.float64).reshape(len(test), -1)
    stats = [dense_stats(a, b) for a, b in zip(r, t)]
    out: dict[str, list] = {k: [s[k] for s in stats] for k in ("snr_db", "psnr_db", "cosine", "max_abs_error")}
    th = (ctx.get("options") or {}).get("same_speaker_threshold")
    if th is None:
        return out
    labels = ctx.get("labels") or [None] * len(r)
    index = ctx.get("voice_index") or {}
    voices = [index.get(str(y), -1) if y is not None else -1 for y in labels]
    rows = pair_rows(r, t, voices, float(th))
    out["speaker_agreement"] = rows
    if any(v >= 0 for v in voices):
        labelled = [row if v >= 0 else None for row, v in zip(rows, voices)]
        out["speaker_accuracy_float"] = labelled
        out["speaker_accuracy"] = labelled
    return out


# --- fixing the threshold on the float model ------------------------------------------------------

def eer_threshold(embeddings: np.ndarray, voices: list) -> tuple[float, float]:
    """(threshold, equal error rate) of same-voice decisions by cosine over every pair of the
    `embeddings` [n, d] with their `voices`: the midpoint between two consecutive pair scores where
    the false-accept rate (different-voice pairs at or above it) is closest to the false-reject
    rate (same-voice pairs below it); the lowest such threshold on a tie.

    >>> e = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> t, eer = eer_threshold(e, ["a", "a", "b", "b"]); round(t, 4), eer
    (0.6067, 0.0)
    """
    u = np.stack([_unit(v) for v in np.asarray(embeddings)])
    cos = np.einsum("id,jd->ij", u, u)
    i, j = np.triu_indices(len(u), 1)
    scores, same = cos[i, j], np.array([voices[a] == voices[b] for a, b in zip(i, j)])
    if not same.any() or same.all():
        raise ValueError("eer_threshold needs both same-voice and different-voice pairs")
    s = np.unique(scores)
    cands = np.concatenate([[s[0] - 1e-6], (s[1:] + s[:-1]) / 2, [s[-1] + 1e-6]])
    far = (scores[~same][None, :] >= cands[:, None]).mean(axis=1)
    frr = (scores[same][None, :] < cands[:, None]).mean(axis=1)
    k = int(np.argmin(np.abs(far - frr)))
    return _sig(float(cands[k]), 6), _sig(float((far[k] + frr[k]) / 2), 6)


def float_threshold(evaluation, output: int = 0) -> tuple[float, float]:
    """`eer_threshold` of a prepared evaluation's float outputs (`core.prepare(..., part="calibration")`)."""
    emb = np.concatenate([np.asarray(b).reshape(len(b), -1) for b in evaluation.reference[output]])
    return eer_threshold(emb, list(evaluation.prepared.labels))
