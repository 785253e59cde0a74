"""Keyword spotting: wake phrases spoken by espeak-ng, and the wake/no-wake decision
(ARCHITECTURE.md, "Keyword spotting").

- ``wake-phrases`` (dataset adapter): recordings of one scoring window (``duration`` seconds, 1.5 s
  for the wakeforge heads) at espeak's rate. ``wake_count`` hold the wake phrase (one of the
  ``wake`` texts, which may be espeak phoneme strings ``[[...]]``) in a seeded voice and speed,
  starting at a seeded point of the free room (``position`` = [min, max] fractions of it: the
  plugin scores the window that has just heard the phrase); ``other_count`` hold a sentence of the
  source text (the Lee corpus), placed the same way or, when longer than the window, a seeded
  window-long piece of it; ``near_count`` hold one of the ``near`` phrases, near misses that share
  sounds with the wake phrase ("hey Microsoft"), placed like the wake phrase. Labels by
  construction: ``wake``, and ``other`` for both kinds of non-wake speech (keys ``wake-``,
  ``other-``, ``near-``).
- ``wake-score`` (output kind, `compare_wake`): the model's score per recording ([N] or [N, 1]), a
  logit by default (``score: logit``; ``probability`` when the model ends in a sigmoid). A recording
  is a detection when sigmoid(logit) ≥ ``threshold`` (the plugin's trigger; 0.5 by default). Per
  recording: ``wake_agreement`` (the compressed model's decision equals the float model's),
  against the labels ``wake_accuracy`` / ``wake_accuracy_float`` (every labelled recording),
  ``wake_recall`` / ``wake_recall_float`` (wake recordings only) and ``false_wake`` /
  ``false_wake_float`` (other recordings only), and the scores' pooled ``snr_db``. Each is 0 or 1
  per recording: Wilson intervals with n = recordings.

Numpy only (plus espeak-ng through `speech` when the dataset is generated).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from . import metrics as M
from .samples import Sample, thin
from .speech import ESPEAK_RATE, Audio, _pick, _pool, speak, trimmed_extent

WAKE, OTHER = "wake", "other"


def _placed(x: np.ndarray, n: int, rng: random.Random, position) -> np.ndarray:
    """`x` inside `n` samples of silence: starting at a seeded fraction (`position` = [lo, hi]) of
    the free room, or a seeded `n`-sample piece of it when it is longer.

    >>> _placed(np.ones(2, np.float32), 4, random.Random(0), [1.0, 1.0]).tolist()
    [0.0, 0.0, 1.0, 1.0]
    >>> len(_placed(np.ones(9, np.float32), 4, random.Random(0), [0, 1]))
    4
    """
    out = np.zeros(n, dtype=np.float32)
    if len(x) >= n:
        at = rng.randrange(len(x) - n + 1)
        return np.ascontiguousarray(x[at:at + n], dtype=np.float32)
    lo, hi = (float(v) for v in position)
    at = int(round(rng.uniform(lo, hi) * (n - len(x))))
    out[at:at + len(x)] = x
    return out


def _trimmed(text: str, voice: str, speed: int) -> np.ndarray:
    x = speak(text, voice, speed)
    ext = trimmed_extent(x)
    return x[ext[0]:ext[1]] if ext else x[:0]


def wake_phrases(root: Path, params: dict, skipped: list) -> list:
    """``wake_count`` windows holding a wake phrase, ``other_count`` holding a sentence and
    ``near_count`` holding a near miss, each ``duration`` seconds at espeak's rate, labelled
    ``wake`` / ``other`` (see the module docstring)."""

    others = _pool(root, params)  # checks the espeak-ng version too
    wakes = [str(t) for t in (params.get("wake") or ["hey mycroft"])]
    rng = random.Random(int(params.get("seed", 0)))
    n = int(round(float(params.get("duration", 1.5)) * ESPEAK_RATE))
    position = params.get("position", [0.0, 1.0])
    near = [str(t) for t in (params.get("near") or [])]
    out = []
    for prefix, label, count, texts in (("wake", WAKE, int(params.get("wake_count", 32)), wakes),
                                        ("other", OTHER, int(params.get("other_count", 32)), others),
                                        ("near", OTHER, int(params.get("near_count", 0)) if near else 0, near)):
        for i in range(count):
            voice, speed = _pick(rng, params)
            text = rng.choice(texts)
            x = _trimmed(text, voice, speed)
            if not len(x):
                skipped.append((f"{prefix}-{i:04d}", f"espeak-ng gave silence for {text!r} ({voice}, {speed} wpm)"))
                continue
            out.append(Sample(f"{prefix}-{i:04d}", Audio(_placed(x, n, rng, position), ESPEAK_RATE), label))
    return thin(out, params.get("limit"))


# --- the wake-score output kind -------------------------------------------------------------------

def decisions(scores: np.ndarray, threshold: float, score: str = "logit") -> np.ndarray:
    """Per recording: True where the model fires, sigmoid(logit) ≥ threshold (or the probability
    itself when ``score`` is ``probability``).

    >>> decisions(np.array([3.0, 3.5, -1.0]), 0.965).tolist()
    [False, True, False]
    >>> decisions(np.array([[0.97], [0.2]]), 0.965, "probability").tolist()
    [True, False]
    """
    s = np.asarray(scores, dtype=np.float64).reshape(len(scores), -1)[:, 0]
    p = s if score == "probability" else 1.0 / (1.0 + np.exp(-np.clip(s, -500, 500)))
    return p >= threshold


def _truth(label) -> bool | None:
    return {WAKE: True, OTHER: False}.get(label) if isinstance(label, str) else None


def compare_wake(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Per recording: decision agreement with the float model, the scores' pooled SNR and, where
    labelled, each model's accuracy, recall (wake recordings) and false wakes (other recordings).

    >>> ref, test = np.array([5.0, 5.0, -5.0, 4.0]), np.array([5.0, -5.0, -5.0, 4.0])
    >>> out = compare_wake(ref, test, {"options": {"threshold": 0.9}, "labels": ["wake", "wake", "other", "other"]})
    >>> out["wake_agreement"], out["wake_accuracy_float"], out["wake_accuracy"]
    ([1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0])
    >>> out["wake_recall"], out["false_wake_float"]
    ([1.0, 0.0, None, None], [None, None, 0.0, 1.0])
    """
    opts = ctx.get("options") or {}
    th, kind = float(opts.get("threshold", 0.5)), str(opts.get("score", "logit"))
    r = np.asarray(ref, dtype=np.float64).reshape(len(ref), -1)
    t = np.asarray(test, dtype=np.float64).reshape(len(test), -1)
    rd, td = decisions(r, th, kind), decisions(t, th, kind)
    out: dict[str, list] = {"wake_agreement": [float(a == b) for a, b in zip(rd, td)],
                            "snr_db": [M.dense_components(a, b) for a, b in zip(r, t)]}
    labels = ctx.get("labels")
    if labels is not None:
        truth = [_truth(y) for y in labels]
        for suffix, d in (("_float", rd), ("", td)):
            out["wake_accuracy" + suffix] = [None if y is None else float(bool(v) == y) for v, y in zip(d, truth)]
            out["wake_recall" + suffix] = [float(v) if y is True else None for v, y in zip(d, truth)]
            out["false_wake" + suffix] = [float(v) if y is False else None for v, y in zip(d, truth)]
    return out
