"""Mel spectrogram pieces shared by the audio front ends and metrics (ARCHITECTURE.md, "Mel
spectrograms"): Whisper's log-mel (`asr`), Resemblyzer's mels (`speaker`) and VITS's mel for the
waveform metrics (`melmetrics`) each keep their own rates, frame sizes, padding, magnitude and
log; the scale, the filterbank and the framed FFT are computed here, once.

- `hz_to_mel`, `mel_to_hz`: Slaney's mel scale (librosa's default, ``htk=False``): linear below
  1 kHz (3 mels per 200 Hz), logarithmic above (27 mels per factor 6.4). The break is at exactly
  15 mels, as Whisper's and VITS's numpy ports have it; librosa's 1000 / (200 / 3) is 2e-15 less,
  which moves a filter weight by at most 3e-13 of itself.
- `mel_filters`: ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney")``:
  triangles whose corners are evenly spaced on the mel scale, at the FFT bins' frequencies
  (``np.fft.rfftfreq``, librosa's ``fft_frequencies``), each scaled to 2 / its width in Hz.
- `hann`: the periodic Hann window (``torch.hann_window``, ``scipy.signal.get_window("hann")``).
- `stft`: the signal padded (``np.pad`` mode, both sides), frames of ``n_fft`` samples every
  ``hop``, Hann-windowed, their real FFTs.

Numpy only; float64 throughout, deterministic.
"""

from __future__ import annotations

import math

import numpy as np

F_SP = 200.0 / 3          # Hz per mel below MIN_LOG_HZ
MIN_LOG_HZ = 1000.0       # where the scale turns logarithmic
MIN_LOG_MEL = 15.0        # MIN_LOG_HZ / F_SP exactly (librosa's float division gives 15 − 2e-15)
LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz):
    """Slaney's mel scale of frequencies in Hz (librosa.hz_to_mel, htk=False).

    >>> [round(float(m), 9) for m in hz_to_mel([0.0, 200.0, 1000.0, 6400.0])]
    [0.0, 3.0, 15.0, 42.0]
    """
    hz = np.asarray(hz, dtype=np.float64)
    lin = hz / F_SP
    return np.where(hz >= MIN_LOG_HZ, MIN_LOG_MEL + np.log(np.maximum(hz, 1e-10) / MIN_LOG_HZ) / LOGSTEP, lin)


def mel_to_hz(mel):
    """The inverse of `hz_to_mel` (librosa.mel_to_hz, htk=False).

    >>> [round(float(f), 9) for f in mel_to_hz(hz_to_mel([300.0, 3000.0]))]
    [300.0, 3000.0]
    """
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= MIN_LOG_MEL, MIN_LOG_HZ * np.exp(LOGSTEP * (mel - MIN_LOG_MEL)), F_SP * mel)


def mel_filters(rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] float64 Slaney filterbank from `fmin` to `fmax` (default rate / 2).

    >>> (mel_filters(2000, 8, 1) + 0.0).round(6).tolist()  # one triangle 0–500–1000 Hz, times 2/1000
    [[0.0, 0.001, 0.002, 0.001, 0.0]]
    """
    fmax = rate / 2.0 if fmax is None else float(fmax)
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def hann(n: int) -> np.ndarray:
    """The periodic Hann window of `n` samples.

    >>> hann(4).round(12).tolist()
    [0.0, 0.5, 1.0, 0.5]
    """
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def stft(x: np.ndarray, n_fft: int, hop: int, pad: int = 0, mode: str = "constant") -> np.ndarray:
    """[1 + (len(x) + 2·pad − n_fft) // hop, n_fft // 2 + 1] complex spectra: `x` padded by `pad`
    samples on both sides (``np.pad`` `mode`: ``"constant"`` zeros, ``"reflect"``), frames of
    `n_fft` samples starting every `hop`, each times `hann` (n_fft), through ``np.fft.rfft``; no
    frame when the padded signal is shorter than `n_fft`.

    >>> s = stft(np.ones(8), 4, 2); s.shape, s[:, 0].real.tolist()  # DC of a Hann frame: n_fft / 2
    ((3, 3), [2.0, 2.0, 2.0])
    """
    x = np.asarray(x, dtype=np.float64)
    if pad:
        x = np.pad(x, (pad, pad), mode=mode)
    if len(x) < n_fft:  # not one whole frame
        return np.zeros((0, n_fft // 2 + 1), dtype=np.complex128)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    return np.fft.rfft(frames * hann(n_fft), axis=-1)
