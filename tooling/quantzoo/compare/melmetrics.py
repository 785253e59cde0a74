"""Generated speech compared as mel spectrograms (the ``waveform`` output kind of `kinds.KINDS`;
ARCHITECTURE.md, "Speech synthesis").

A speech synthesiser (Piper's VITS) predicts each phoneme's duration, so a compressed model's
audio can be longer or shorter than the float model's, and a waveform difference says little once
one phoneme moved by a frame. Each recording is compared as its mel spectrogram — VITS's own
analysis: reflect-padded STFT of 1024 samples (Hann window) every 256 samples, magnitude, 80
mel bands of librosa's Slaney scale and area normalisation from 0 Hz to half the rate
(`mel.mel_filters`) — over the frames both have (the longer one truncated to the shorter):

- ``mel_snr_db``: 10·log10(Σ float mel² / Σ (float mel − compressed mel)²), pooled over every
  frame and band of every recording (like `measures.pooled_snr_db`; identical audio scores the
  float32 ceiling, 138.5 dB);
- ``mel_snr_aligned_db``: the same ratio after aligning the frames with dynamic time warping on
  the log mels (`dtw_path`; the standard alignment of TTS measures such as MCD-DTW): a phoneme that
  lasts one frame longer shifts every later frame, which the truncated figure counts as error
  and this one does not;
- ``duration_diff_s``: |compressed length − float length| in seconds, per recording;
- ``snr_db``: the waveforms' pooled SNR over the common samples (phase-sensitive: low as soon as a
  duration moves, shown for comparison with every other model).

Numpy only, like `metrics`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import mel as MEL
from . import metrics as M

N_FFT, HOP, N_MELS = 1024, 256, 80  # VITS/Piper's mel analysis at 22.05 kHz


@lru_cache(maxsize=8)
def _filters(rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """`mel.mel_filters` from 0 Hz to rate / 2, computed once per analysis (read only)."""
    return MEL.mel_filters(rate, n_fft, n_mels)


def mel_spectrogram(x: np.ndarray, rate: int, n_fft: int = N_FFT, hop: int = HOP, n_mels: int = N_MELS) -> np.ndarray:
    """[frames, n_mels] mel magnitudes of a mono recording, as VITS computes them: the signal
    reflect-padded by (n_fft − hop) / 2 on each side, frames of n_fft every hop (no centring), a
    periodic Hann window, |rFFT| (`mel.stft`), the Slaney filters (`mel.mel_filters`). len(x) / hop
    frames when hop divides the length (Piper's audio always is a multiple of 256 samples).

    >>> mel_spectrogram(np.zeros(2048, np.float32), 22050).shape
    (8, 80)
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    pad = (n_fft - hop) // 2
    if len(x) <= pad:  # too short to reflect: no frame
        return np.zeros((0, n_mels))
    return np.abs(MEL.stft(x, n_fft, hop, pad, "reflect")) @ _filters(int(rate), n_fft, n_mels).T


def mel_components(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """One recording's row for the pooled mel SNR from the float (`a`) and compressed (`b`) mel
    spectrograms: `measures.dense_components` over the frames both have (the longer truncated).

    >>> m = mel_spectrogram(np.sin(np.arange(4096) * 0.3), 22050)
    >>> round(float(M.pooled_snr_db(np.array([mel_components(m, 0.9 * m[:-2])]))), 6)
    20.0
    """
    n = min(len(a), len(b))
    return M.dense_components(a[:n], b[:n])


def log_mel(mel: np.ndarray) -> np.ndarray:
    """VITS's dynamic range compression: log(max(mel, 1e-5))."""
    return np.log(np.maximum(mel, 1e-5))


def dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dynamic time warping path between frame sequences `a` [n, d] and `b` [m, d] (Euclidean
    frame distance; steps (1, 1), (1, 0), (0, 1); from the first frames to the last): the matched
    frame indices (i, j), in order. Anti-diagonals are filled in one numpy step each; ties go to
    the diagonal, then to advancing `a`, so the path is deterministic.

    >>> i, j = dtw_path(np.array([[0.], [1.], [2.]]), np.array([[0.], [1.], [1.], [2.]]))
    >>> i.tolist(), j.tolist()
    ([0, 1, 1, 2], [0, 1, 2, 3])
    """
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cost = np.sqrt(np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * np.einsum("id,jd->ij", a, b), 0.0))
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for k in range(2, n + m + 1):
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        acc[i, j] = cost[i - 1, j - 1] + np.minimum(acc[i - 1, j - 1], np.minimum(acc[i - 1, j], acc[i, j - 1]))
    i, j, path = n, m, []
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        steps = (acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
        s = int(np.argmin(steps))
        i, j = (i - 1, j - 1) if s == 0 else (i - 1, j) if s == 1 else (i, j - 1)
    path.reverse()
    idx = np.array(path, dtype=np.int64)
    return idx[:, 0], idx[:, 1]


def aligned_mel_components(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """One recording's row for the aligned mel SNR: the frames of the float (`a`) and compressed
    (`b`) mel spectrograms matched by `dtw_path` on their log mels, then
    `measures.dense_components` of the matched (linear) mel frames.

    >>> m = mel_spectrogram(np.sin(np.arange(4096) * 0.3), 22050)
    >>> round(float(M.pooled_snr_db(np.array([aligned_mel_components(m, 0.9 * m)]))), 6)
    20.0
    """
    i, j = dtw_path(log_mel(a), log_mel(b))
    return M.dense_components(a[i], b[j])


def _waves(batch: np.ndarray) -> list[np.ndarray]:
    """A batch of generated audio ([N, ..., S]) as N mono recordings."""
    a = np.asarray(batch)
    return [a[i].reshape(-1) for i in range(a.shape[0])]


def compare_waveform(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Per recording of one batch: the mel SNR's row, the duration difference in seconds and the
    waveforms' SNR row over the common samples (``options.sample_rate``, default 22050).

    >>> t = np.sin(np.arange(4096) * 0.3)[None, None]; out = compare_waveform(t, 0.5 * t, {})
    >>> round(float(M.pooled_snr_db(np.array(out["mel_snr_db"]))), 4), out["duration_diff_s"]
    (6.0206, [0.0])
    """
    rate = int((ctx.get("options") or {}).get("sample_rate", 22050))
    out: dict[str, list] = {"mel_snr_db": [], "mel_snr_aligned_db": [], "duration_diff_s": [], "snr_db": []}
    for r, t in zip(_waves(ref), _waves(test)):
        n = min(len(r), len(t))
        a, b = mel_spectrogram(r, rate), mel_spectrogram(t, rate)
        out["mel_snr_db"].append(mel_components(a, b))
        out["mel_snr_aligned_db"].append(aligned_mel_components(a, b))
        out["duration_diff_s"].append(M._sig(abs(len(t) - len(r)) / rate, 10))
        out["snr_db"].append(M.dense_components(r[:n], t[:n]))
    return out
