"""Audio metrics: voice activity per frame and pitch in cents (the ``speech-frames`` and ``pitch``
output kinds of `kinds.KINDS`; their `metrics.METRICS` records name these figures).

Voice activity (``speech-frames``: a streamed model's speech probability per frame, [N, T, 1]):
a frame is speech where the probability is at least ``threshold`` (0.5, silero-vad's default).
Per recording: the share of frames where the compressed model's decision equals the float
model's (``vad_agreement``), and the share where each model's decision equals the known label
(``vad_accuracy_float``, ``vad_accuracy``; `speech.frame_labels` from the generated speech
extents). Frames of one recording are not independent: each recording is one sample, its share of
frames its value, and the Wilson interval takes n = recordings (every recording has the same
length, so the mean share is the share of all frames).

Pitch (``pitch``: 360 bins of 20 cents, CREPE): the pitch is decoded as torchcrepe's
``weighted_argmax`` does, without its random dither: the cents of the bins within 4 of the
argmax, weighted by the sigmoid of the model's (already sigmoid) output (`decode_cents`).
Against the known frequency of a tone: ``pitch_error_cents`` (absolute error in cents) and
``raw_pitch_accuracy`` (within 50 cents, mir_eval's raw pitch accuracy), for both models; against
the float model, on the frames where the float model is confident (its largest bin ≥
``voiced_threshold``, 0.5): ``pitch_cents_vs_float`` and ``pitch_agreement`` (within 50 cents).

Numpy only, like `metrics`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import metrics as M
from .speech import frame_labels, parse_extents

CENTS_PER_BIN = 20.0
CENTS_BIN0 = 1997.3794084376191  # torchcrepe.convert: the cents of bin 0 (10 Hz reference)
PITCH_TOLERANCE_CENTS = 50.0     # a quarter tone: mir_eval's raw pitch accuracy


def _options(ctx: dict) -> dict:
    return ctx.get("options") or {}


def _per_sample(a: np.ndarray) -> np.ndarray:
    """[N, T, 1] or [N, T] -> [N, T]."""
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(a.shape[0], -1)


def compare_vad(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Per recording: frame agreement, the probabilities' pooled SNR and, where labelled,
    each model's frame accuracy against the known speech extents.

    >>> ref = np.array([[[0.9], [0.1], [0.8], [0.2]]]); test = np.array([[[0.7], [0.6], [0.9], [0.1]]])
    >>> opts = {"frame": 4, "sample_rate": 4}
    >>> out = compare_vad(ref, test, {"options": opts, "labels": ["0.0-1.0 2.0-3.0"]})
    >>> out["vad_agreement"], out["vad_accuracy_float"], out["vad_accuracy"]
    ([0.75], [1.0], [0.75])
    """
    opts = _options(ctx)
    th = float(opts.get("threshold", 0.5))
    r, t = _per_sample(ref), _per_sample(test)
    rd, td = r >= th, t >= th
    out: dict[str, list] = {"vad_agreement": [M._sig(float(v), 10) for v in (rd == td).mean(axis=1)],
                            "snr_db": [M.dense_components(a, b) for a, b in zip(r, t)]}
    labels = ctx.get("labels")
    if labels is not None:
        frame, rate = int(opts.get("frame", 512)), int(opts.get("sample_rate", 16000))
        acc_f, acc_q = [], []
        for y, a, b in zip(labels, rd, td):
            ext = parse_extents(y) if isinstance(y, str) else None
            if ext is None:
                acc_f.append(None)
                acc_q.append(None)
                continue
            want = frame_labels(ext, len(a), frame, rate).astype(bool)
            acc_f.append(M._sig(float((a == want).mean()), 10))
            acc_q.append(M._sig(float((b == want).mean()), 10))
        out["vad_accuracy_float"], out["vad_accuracy"] = acc_f, acc_q
    return out


def labels_context(names, labels, label_map) -> dict:
    """The samples' labels as they are (speech extents, tone frequencies), or None when none is labelled."""
    return {"all_labels": list(labels) if any(y is not None for y in labels) else None}


# --- pitch ---------------------------------------------------------------------------------------

def hz_to_cents(hz: float) -> float:
    """Cents above 10 Hz (torchcrepe's scale).

    >>> hz_to_cents(20.0)
    1200.0
    """
    return 1200.0 * math.log2(hz / 10.0)


def decode_cents(probs: np.ndarray) -> np.ndarray:
    """[N, 360] bin probabilities -> [N] pitch in cents, as torchcrepe's ``weighted_argmax``
    (no dither): bins argmax−4 .. argmax+4, weighted by sigmoid(probability).

    >>> p = np.zeros((1, 360)); p[0, 100] = 1.0
    >>> abs(float(decode_cents(p)[0]) - (CENTS_BIN0 + 100 * CENTS_PER_BIN)) < 1e-9
    True
    """
    p = np.asarray(probs, dtype=np.float64).reshape(len(probs), -1)
    n, k = p.shape
    top = np.argmax(p, axis=1)
    idx = np.arange(k)[None, :]
    inside = (idx >= top[:, None] - 4) & (idx < top[:, None] + 5)
    w = np.where(inside, 1.0 / (1.0 + np.exp(-p)), 0.0)
    cents = CENTS_BIN0 + CENTS_PER_BIN * idx
    return (w * cents).sum(axis=1) / w.sum(axis=1)


def _label_cents(y: Any) -> float | None:
    try:
        return hz_to_cents(float(y)) if y is not None else None
    except (TypeError, ValueError):
        return None


def compare_pitch(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Per analysis window: agreement in cents with the float model where it is confident, the
    error against the known frequency where labelled, and the pooled SNR of the bins.

    >>> p = np.zeros((2, 360)); p[:, 100] = 0.9; q = p.copy(); q[1, 100] = 0.0; q[1, 110] = 0.9
    >>> f = 10 * 2 ** ((CENTS_BIN0 + 100 * CENTS_PER_BIN) / 1200)
    >>> out = compare_pitch(p, q, {"labels": [f"{f:.6f}", None]})
    >>> out["pitch_agreement"], out["raw_pitch_accuracy"], out["pitch_error_cents"][1]
    ([1.0, 0.0], [1.0, None], None)
    """
    th = float(_options(ctx).get("voiced_threshold", 0.5))
    r = np.asarray(ref, dtype=np.float64).reshape(len(ref), -1)
    t = np.asarray(test, dtype=np.float64).reshape(len(test), -1)
    cr, ct = decode_cents(r), decode_cents(t)
    confident = r.max(axis=1) >= th
    diff = np.abs(ct - cr)
    out: dict[str, list] = {
        "pitch_cents_vs_float": [M._sig(float(d), 10) if c else None for d, c in zip(diff, confident)],
        "pitch_agreement": [float(d <= PITCH_TOLERANCE_CENTS) if c else None for d, c in zip(diff, confident)],
        "snr_db": [M.dense_components(a, b) for a, b in zip(r, t)]}
    labels = ctx.get("labels")
    if labels is not None:
        truth = [_label_cents(y) for y in labels]
        for suffix, est in (("", ct), ("_float", cr)):
            err = [None if c is None else abs(float(e) - c) for e, c in zip(est, truth)]
            out["pitch_error_cents" + suffix] = [None if e is None else M._sig(e, 10) for e in err]
            out["raw_pitch_accuracy" + suffix] = [None if e is None else float(e <= PITCH_TOLERANCE_CENTS) for e in err]
    return out


