"""Speakers generated here and Resemblyzer's mel frontend (ARCHITECTURE.md, "Speaker embeddings").

- ``espeak-speakers`` (speaker embedding): every voice of ``voices`` (an espeak-ng voice, with a
  variant such as ``en-gb+f2``: each one is a "speaker") speaks ``per_voice`` phrases of the
  dataset's text. A phrase is a run of ``words`` consecutive words of the text, and no phrase is
  spoken twice in the dataset, so no two samples — in particular no calibration and evaluation
  samples — share any text. Samples are keyed ``<voice>#u<i>`` and labelled with the voice; the
  voice is the cluster (`photos.photo_of`), so the calibration split holds out whole voices and
  the intervals resample voices, not utterances.
- ``speaker-mels`` (preprocessor): Resemblyzer 0.1.4's input for one partial utterance. The
  recording is resampled to 16 kHz, its volume raised to −30 dBFS (``normalize_volume``, increase
  only), its power mel spectrogram computed as ``librosa.feature.melspectrogram(sr=16000,
  n_fft=400, hop_length=160, n_mels=40)`` does (periodic Hann window, frames centred with zero
  padding — librosa ≥ 0.10's ``pad_mode="constant"`` —, Slaney mel scale and area normalisation
  (`mel.mel_filters`), power 2, no log; `mel_spectrogram`), and the ``frames`` (160: 1.6 s) frames
  at the middle of the utterance are the sample (zero-padded at the end when shorter, as
  Resemblyzer pads the wave).
  Resemblyzer also drops long silences with webrtcvad; espeak's own leading and trailing silence
  is trimmed here instead, and pauses within a phrase are kept.

Numpy only; deterministic (numpy's FFT in float64).
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import numpy as np

from ..errors import QuantzooError
from . import mel as MEL
from .samples import Sample, thin
from .speech import ESPEAK_RATE, Audio, check_espeak, resample, source_text, speak, trimmed_extent

SAMPLE_RATE = 16000     # Resemblyzer hparams: sampling_rate
WINDOW = 400            # mel_window_length 25 ms
HOP = 160               # mel_window_step 10 ms
MELS = 40               # mel_n_channels
PARTIAL_FRAMES = 160    # partials_n_frames: 1.6 s
TARGET_DBFS = -30.0     # audio_norm_target_dBFS
INT16_MAX = 2 ** 15 - 1


# --- the mel frontend ---------------------------------------------------------------------------

def power_spectrogram(wav: np.ndarray, n_fft: int = WINDOW, hop: int = HOP) -> np.ndarray:
    """[1 + len // hop, n_fft // 2 + 1] |STFT|² with a periodic Hann window, frames centred on
    multiples of `hop` (the wave zero-padded by n_fft // 2 on both sides).

    >>> power_spectrogram(np.zeros(1600)).shape
    (11, 201)
    """
    spec = MEL.stft(wav, n_fft, hop, n_fft // 2, "constant")
    return spec.real ** 2 + spec.imag ** 2


def mel_spectrogram(wav: np.ndarray, rate: int = SAMPLE_RATE, n_fft: int = WINDOW, hop: int = HOP,
                    n_mels: int = MELS) -> np.ndarray:
    """[frames, n_mels] float32 power mel spectrogram, as Resemblyzer's ``wav_to_mel_spectrogram``."""
    # einsum, not a BLAS matmul: OpenBLAS threads fight onnxruntime's on a small machine
    filters = MEL.mel_filters(rate, n_fft, n_mels)
    return np.einsum("tf,mf->tm", power_spectrogram(wav, n_fft, hop), filters).astype(np.float32)


def normalize_volume(wav: np.ndarray, target_dbfs: float = TARGET_DBFS, increase_only: bool = True) -> np.ndarray:
    """`wav` scaled to an RMS of `target_dbfs` (of int16 full scale); with `increase_only`, a
    louder wave is left as it is (Resemblyzer's ``normalize_volume``). Silence stays silence.

    >>> w = normalize_volume(np.full(10, 0.001)); round(20 * math.log10(float(np.sqrt(np.mean(w ** 2)))), 3)
    -30.0
    """
    wav = np.asarray(wav, dtype=np.float64)
    rms = float(np.sqrt(np.mean((wav * INT16_MAX) ** 2))) if wav.size else 0.0
    if rms == 0.0:
        return wav
    change = target_dbfs - 20.0 * math.log10(rms / INT16_MAX)
    if change < 0 and increase_only:
        return wav
    return wav * 10.0 ** (change / 20.0)


def centred_partial(mel: np.ndarray, frames: int = PARTIAL_FRAMES) -> np.ndarray:
    """The `frames` frames at the middle of `mel` [T, C]; zero frames appended when T < frames.

    >>> centred_partial(np.arange(5.0)[:, None], 3)[:, 0].tolist(), centred_partial(np.ones((1, 1)), 3)[:, 0].tolist()
    ([1.0, 2.0, 3.0], [1.0, 0.0, 0.0])
    """
    t = len(mel)
    if t >= frames:
        return mel[(t - frames) // 2:(t - frames) // 2 + frames]
    return np.concatenate([mel, np.zeros((frames - t, *mel.shape[1:]), dtype=mel.dtype)])


def _smooth(k: int) -> bool:
    for p in (2, 3, 5):
        while k % p == 0:
            k //= p
    return k == 1


def resampled(wav: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """`speech.resample` of `wav` zero-padded at the end to a length whose FFTs are fast (a multiple
    of rate_in / gcd whose factor has no prime above 5), then cut to round(len · rate_out / rate_in):
    the same band-limited resampling, with the wrap-around through silence, in milliseconds.

    >>> len(resampled(np.ones(70001, np.float32), 22050, 16000)), len(resampled(np.ones(5), 16000, 16000))
    (50794, 5)
    """
    if rate_in == rate_out:
        return np.asarray(wav, dtype=np.float32)
    unit = rate_in // math.gcd(rate_in, rate_out)
    k = max(1, -(-len(wav) // unit))
    while not _smooth(k):
        k += 1
    x = np.pad(np.asarray(wav, dtype=np.float32), (0, k * unit - len(wav)))
    return resample(x, rate_in, rate_out)[:int(round(len(wav) * rate_out / rate_in))]


def speaker_mels(data, params: dict, inputs: list) -> dict:
    """A recording -> one partial utterance: [frames, 40] power mel frames (`mel_spectrogram`) of
    the recording at 16 kHz, its volume normalised, the middle ``frames`` (the input's frame
    count when fixed, else ``params.frames``, 160) kept."""
    from .inputs import np_dtype, single_input

    spec = single_input(inputs, "speaker-mels")
    if not isinstance(data, Audio):
        raise QuantzooError(f"the speaker-mels preprocessor reads recordings (an Audio), found a {type(data).__name__}; "
                            "use a dataset whose adapter is espeak-speakers or wav-files")
    rate = int(params.get("sample_rate", SAMPLE_RATE))
    frames = spec.shape[-2] if len(spec.shape) >= 2 and isinstance(spec.shape[-2], int) \
        else int(params.get("frames", PARTIAL_FRAMES))
    n_mels = spec.shape[-1] if isinstance(spec.shape[-1], int) else MELS
    wav = normalize_volume(resampled(data.samples, data.rate, rate), float(params.get("target_dbfs", TARGET_DBFS)))
    mel = mel_spectrogram(wav, rate, int(round(rate * 0.025)), int(round(rate * 0.010)), n_mels)
    return {spec.name: centred_partial(mel, frames).astype(np_dtype(spec))}


# --- the adapter ----------------------------------------------------------------------------------

def phrases(text: str, words: int) -> list[str]:
    """`text` cut into runs of `words` consecutive words (the last, shorter run dropped); runs
    with a character other than letters, digits and plain punctuation are left out.

    >>> phrases("One two three. Four five six seven £8", 3)
    ['One two three.', 'Four five six']
    """
    tokens = text.split()
    out = []
    for i in range(0, len(tokens) - words + 1, words):
        phrase = " ".join(tokens[i:i + words])
        if re.fullmatch(r"[A-Za-z0-9 .,;:'\"!?()-]+", phrase):
            out.append(phrase)
    return out


def espeak_speakers(root: Path, params: dict, skipped: list) -> list[Sample]:
    """``per_voice`` phrases of ``words`` words spoken by each voice of ``voices`` at a seeded
    speed of ``speeds``, espeak's leading and trailing silence trimmed; no phrase twice. Keys
    ``<voice>#u<i>``, labels the voice."""
    check_espeak(params.get("espeak_ng"))
    voices = list(params.get("voices") or [])
    per_voice, words = int(params.get("per_voice", 4)), int(params.get("words", 8))
    speeds = [int(s) for s in (params.get("speeds") or [175])]
    pool = phrases(source_text(root), words)
    if len(voices) < 2 or len(pool) < len(voices) * per_voice:
        raise QuantzooError(f"espeak-speakers needs at least 2 voices and one phrase per utterance: {len(voices)} "
                            f"voices x {per_voice} utterances, {len(pool)} phrases of {words} words in {root}; "
                            "lower params.per_voice or params.words, or add voices")
    rng = random.Random(int(params.get("seed", 0)))
    rng.shuffle(pool)
    out = []
    for v, voice in enumerate(voices):
        for i in range(per_voice):
            x = speak(pool[v * per_voice + i], voice, rng.choice(speeds))
            ext = trimmed_extent(x)
            if ext is None:
                skipped.append((f"{voice}#u{i:02d}", "espeak-ng produced silence"))
                continue
            out.append(Sample(f"{voice}#u{i:02d}", Audio(x[ext[0]:ext[1]], ESPEAK_RATE), voice))
    return thin(out, params.get("limit"))
