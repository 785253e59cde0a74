"""Speech and tones generated here, labelled by construction (ARCHITECTURE.md, "Generated audio").

Debian's ``espeak-ng`` speaks real sentences taken from a text file of a pinned package (the Lee
corpus in gensim's test data), with several voices and speeds. espeak-ng has no randomness: the
same text, voice and speed give the same bytes; the dataset manifest pins the Debian version it
was made with (``params.espeak_ng``) and the adapter refuses another one, so the dataset's identity
says which synthesiser produced it. Everything else is chosen from a seeded `random.Random`.

- ``espeak-speech`` (voice activity): each sample is a fixed-length recording: silence, a
  sentence, silence, a second sentence, silence, with every silence of a known length. Its label
  is the speech extents in seconds (``"0.51234-1.90000 2.40000-3.12000"``): where espeak's own
  output is not silent (its leading and trailing silence trimmed).
- ``pitch-frames`` (pitch estimation): sine tones of known frequency, one analysis window each,
  labelled with the frequency in Hz; and windows cut from spoken sentences (unlabelled: compared
  with the float model only), keyed ``<utterance>#f<index>`` so the windows of one utterance form
  one cluster for the intervals (`photos.photo_of`).

Samples carry an `Audio` (float32 samples in [-1, 1] and their rate); the ``audio`` and
``audio-frame`` preprocessors resample to the rate a model needs (`resample`).
"""

from __future__ import annotations

import math
import random
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import QuantzooError
from .samples import Sample, label_from_path, list_files, thin

ESPEAK = "espeak-ng"
ESPEAK_RATE = 22050  # espeak-ng's output rate
TRIM_LEVEL = 1e-3    # |sample| above this (full scale 1) counts as espeak's speech


@dataclass(frozen=True)
class Audio:
    """A mono recording: float32 samples in [-1, 1] at `rate` Hz."""

    samples: np.ndarray
    rate: int


# --- espeak-ng ----------------------------------------------------------------------------------

def espeak_version() -> str | None:
    """The installed espeak-ng's Debian package version (``1.51+dfsg-10+deb12u2``), else the
    version it prints (``1.51``), or None when it is not installed."""
    if shutil.which(ESPEAK) is None:
        return None
    if shutil.which("dpkg-query"):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", ESPEAK], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip()
    r = subprocess.run([ESPEAK, "--version"], capture_output=True, text=True)
    m = re.search(r"text-to-speech:\s*(\S+)", r.stdout)
    return m.group(1) if m else None


def check_espeak(wanted: str | None) -> None:
    """Raise unless espeak-ng is installed at the version a dataset was made with."""
    found = espeak_version()
    if found is None:
        raise QuantzooError(f"{ESPEAK} is not installed: the generated speech datasets need it; install "
                            f"Debian's {ESPEAK}{'=' + wanted if wanted else ''} (make test and make site do: "
                            f"apt-get install {ESPEAK})")
    if wanted and found != str(wanted) and not str(wanted).startswith(found + "+"):
        raise QuantzooError(f"{ESPEAK} {found} is installed, but the dataset was made with {wanted} "
                            f"(params.espeak_ng); install that version (apt-get install {ESPEAK}={wanted}) "
                            "or change the manifest's espeak_ng after checking the new output")


def speak(text: str, voice: str, speed: int) -> np.ndarray:
    """`text` spoken by espeak-ng with `voice` at `speed` words per minute: float32 samples at
    `ESPEAK_RATE` (the text goes through stdin, never the command line)."""
    r = subprocess.run([ESPEAK, "-v", voice, "-s", str(int(speed)), "--stdin", "--stdout"],
                       input=text.encode("utf-8"), capture_output=True)
    data = r.stdout
    at = data.find(b"data")
    if r.returncode != 0 or at < 0:
        raise QuantzooError(f"{ESPEAK} -v {voice} -s {speed} failed (exit {r.returncode}): "
                            f"{r.stderr.decode(errors='replace')[:200]}; check that the voice exists "
                            f"({ESPEAK} --voices=en)")
    pcm = data[at + 8:]
    pcm = pcm[:len(pcm) // 2 * 2]
    return (np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0)


def trimmed_extent(x: np.ndarray, level: float = TRIM_LEVEL) -> tuple[int, int] | None:
    """[first, last + 1) of the samples louder than `level`, or None for silence.

    >>> trimmed_extent(np.array([0, 0, 0.5, 0, -0.2, 0, 0], np.float32))
    (2, 5)
    """
    loud = np.flatnonzero(np.abs(x) > level)
    return (int(loud[0]), int(loud[-1]) + 1) if loud.size else None


# --- text ---------------------------------------------------------------------------------------

def sentences(text: str, min_words: int = 4, max_words: int = 12) -> list[str]:
    """The sentences of `text` with `min_words` to `max_words` words, in order.

    >>> sentences("Mr Smith went home. He was tired, very tired. Ok. It rained all night long!", 5, 6)
    ['He was tired, very tired.', 'It rained all night long!']
    """
    out = []
    for line in text.splitlines():
        for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])", line.strip()):
            s = s.strip()
            if s and min_words <= len(s.split()) <= max_words and s[-1] in ".!?":
                out.append(s)
    return out


def source_text(root: Path) -> str:
    """The text of the dataset's source: the file, or the sorted text files of a folder."""
    root = Path(root)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        raise QuantzooError(f"no text in {root}: the generated speech datasets need a text file as their source")
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in files)


# --- signal helpers ---------------------------------------------------------------------------------

def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """`x` at `rate_out`: band-limited (FFT) resampling, exact for content below both Nyquist
    frequencies; length round(len · rate_out / rate_in). Deterministic (numpy's FFT).

    >>> t = np.arange(2205) / 22050; y = resample(np.sin(2 * np.pi * 441 * t).astype(np.float32), 22050, 16000)
    >>> len(y), bool(np.abs(y[100:-100] - np.sin(2 * np.pi * 441 * np.arange(1600) / 16000)[100:-100]).max() < 1e-3)
    (1600, True)
    """
    x = np.asarray(x, dtype=np.float64)
    if rate_in == rate_out:
        return x.astype(np.float32)
    n = len(x)
    m = int(round(n * rate_out / rate_in))
    spec = np.fft.rfft(x)
    keep = min(len(spec), m // 2 + 1)
    out = np.zeros(m // 2 + 1, dtype=np.complex128)
    out[:keep] = spec[:keep]
    if m % 2 == 0 and keep == m // 2 + 1:
        out[-1] = out[-1].real  # the new Nyquist bin is real
    return (np.fft.irfft(out, m) * (m / n)).astype(np.float32)


def frame_labels(extents: list[tuple[float, float]], n_frames: int, frame: int, rate: int) -> np.ndarray:
    """Per frame of `frame` samples at `rate`: 1 where more than half of the frame lies inside a
    speech extent (seconds), else 0.

    >>> frame_labels([(0.5, 1.0)], 6, 4, 16).tolist()
    [0, 0, 1, 1, 0, 0]
    """
    inside = np.zeros(n_frames * frame, dtype=np.int32)
    for a, b in extents:
        inside[max(0, int(round(a * rate))):max(0, int(round(b * rate)))] = 1
    return (inside.reshape(n_frames, frame).sum(axis=1) * 2 > frame).astype(np.int8)


def parse_extents(label: str | None) -> list[tuple[float, float]] | None:
    """``"0.5-1.0 2.0-2.5"`` -> [(0.5, 1.0), (2.0, 2.5)]; None for no label (`extent_label`).

    >>> parse_extents(extent_label([(0.5, 1.0), (2.0, 2.5)]))
    [(0.5, 1.0), (2.0, 2.5)]
    """
    if not label:
        return None
    return [(float(a), float(b)) for a, b in (part.split("-") for part in label.split())]


def extent_label(extents: list[tuple[float, float]]) -> str:
    return " ".join(f"{a:.5f}-{b:.5f}" for a, b in extents)


# --- the adapters ---------------------------------------------------------------------------------

def _pick(rng: random.Random, params: dict):
    voices = list(params.get("voices") or ["en-us"])
    speeds = [int(s) for s in (params.get("speeds") or [175])]
    return rng.choice(voices), rng.choice(speeds)


def _spoken(rng: random.Random, pool: list[str], params: dict) -> np.ndarray:
    """One sentence of `pool` in a seeded voice and speed, espeak's silence trimmed off."""
    voice, speed = _pick(rng, params)
    x = speak(rng.choice(pool), voice, speed)
    ext = trimmed_extent(x)
    return x[ext[0]:ext[1]] if ext else x[:0]


def _pool(root: Path, params: dict) -> list[str]:
    check_espeak(params.get("espeak_ng"))
    pool = sentences(source_text(root), int(params.get("min_words", 4)), int(params.get("max_words", 12)))
    if not pool:
        raise QuantzooError(f"no sentence of {params.get('min_words', 4)}-{params.get('max_words', 12)} words in "
                            f"{root}; widen params.min_words/max_words")
    return pool


def espeak_speech(root: Path, params: dict, skipped: list) -> list:
    """``count`` recordings of ``duration`` seconds at espeak's rate, each two sentences with
    silences of ``silence`` = [min, max] seconds before, between and after (the speech is cut at
    the end of the recording where it does not fit), labelled with the speech extents."""

    pool = _pool(root, params)
    rng = random.Random(int(params.get("seed", 0)))
    rate, n = ESPEAK_RATE, int(round(float(params.get("duration", 6.0)) * ESPEAK_RATE))
    lo, hi = (float(v) for v in params.get("silence", [0.2, 1.0]))
    out = []
    for i in range(int(params.get("count", 32))):
        wave = np.zeros(n, dtype=np.float32)
        extents, at = [], 0
        for _ in range(int(params.get("segments", 2))):
            at += int(round(rng.uniform(lo, hi) * rate))
            speech = _spoken(rng, pool, params)[:max(0, n - at)]
            if len(speech):
                wave[at:at + len(speech)] = speech
                extents.append((at / rate, (at + len(speech)) / rate))
            at += len(speech)
        out.append(Sample(f"utt-{i:04d}", Audio(wave, rate), extent_label(extents)))
    return thin(out, params.get("limit"))


def tone(freq: float, n: int, rate: int, amplitude: float, phase: float) -> np.ndarray:
    """A sine of `freq` Hz, `n` samples at `rate`.

    >>> float(tone(1000.0, 16, 16000, 0.5, 0.0)[4])
    0.5
    """
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(n) / rate + phase)).astype(np.float32)


def pitch_frames(root: Path, params: dict, skipped: list) -> list:
    """``tones`` sine windows (``window`` samples at ``rate``) of log-uniform frequencies in
    ``min_hz``..``max_hz`` with a random amplitude and phase, labelled with the frequency; then
    ``utterances`` spoken sentences resampled to ``rate``, each cut into ``frames_per_utterance``
    windows spread evenly over its speech (unlabelled)."""

    rng = random.Random(int(params.get("seed", 0)))
    rate, window = int(params.get("rate", 16000)), int(params.get("window", 1024))
    lo, hi = math.log(float(params.get("min_hz", 60.0))), math.log(float(params.get("max_hz", 1000.0)))
    out = []
    for i in range(int(params.get("tones", 64))):
        f = math.exp(rng.uniform(lo, hi))
        x = tone(f, window, rate, rng.uniform(0.1, 0.9), rng.uniform(0, 2 * math.pi))
        out.append(Sample(f"tone-{i:04d}", Audio(x, rate), f"{f:.4f}"))
    utterances = int(params.get("utterances", 0))
    if utterances:
        pool = _pool(root, params)
        per = int(params.get("frames_per_utterance", 16))
        for u in range(utterances):
            x = resample(_spoken(rng, pool, params), ESPEAK_RATE, rate)
            if len(x) < window:
                skipped.append((f"utt-{u:04d}", f"shorter than one window ({len(x)} samples)"))
                continue
            starts = np.linspace(0, len(x) - window, per).round().astype(int)
            out.extend(Sample(f"utt-{u:04d}#f{j:03d}", Audio(x[s:s + window], rate))
                       for j, s in enumerate(starts))
    return thin(out, params.get("limit"))


def wav_files(root: Path, params: dict, skipped: list) -> list:
    """Every 16-bit PCM .wav file under `root` as an `Audio` (channels averaged), labelled per
    ``params['labels']``; other files are skipped and counted (``quantzoo compare --data DIR``)."""
    import wave


    out = []
    for rel, path in list_files(root, params):
        try:
            with wave.open(str(path), "rb") as w:
                if w.getsampwidth() != 2:
                    raise ValueError(f"{8 * w.getsampwidth()}-bit samples, expected 16-bit PCM")
                x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
                x = x.reshape(-1, w.getnchannels()).mean(axis=1).astype(np.float32)
                rate = w.getframerate()
        except (wave.Error, EOFError, ValueError, OSError) as e:
            skipped.append((rel, f"not a readable 16-bit .wav file ({type(e).__name__}: {str(e)[:80]})"))
            continue
        out.append(Sample(rel, Audio(x, rate), label_from_path(rel, params.get("labels"))))
    return out


# --- preprocessing: a recording -> a model's input (records in preprocess.PREPROCESSORS) -----------

def _audio_of(data) -> Audio:
    if not isinstance(data, Audio):
        raise QuantzooError(f"the audio preprocessors read generated recordings (an Audio), found a "
                            f"{type(data).__name__}; use a dataset whose adapter is espeak-speech or pitch-frames")
    return data


def audio_input(data, params: dict, inputs: list) -> dict:
    """A recording -> the model's one sample-fed input: float32 samples at ``sample_rate``
    (resampled when the recording's rate differs). A streamed model cuts it into windows
    (`stream`)."""
    from .inputs import np_dtype, single_input

    spec = single_input(inputs, "audio")
    a = _audio_of(data)
    x = resample(a.samples, a.rate, int(params.get("sample_rate", a.rate)))
    return {spec.name: x.astype(np_dtype(spec))}


def audio_frame(data, params: dict, inputs: list) -> dict:
    """A recording -> one analysis window of the input's length (or ``window``) at ``sample_rate``,
    centred (cut or zero-padded), normalised as torchcrepe does: minus its mean, divided by its
    standard deviation (n − 1; at least 1e-10).

    >>> from .inputs import InputSpec
    >>> y = audio_frame(Audio(np.array([1, 2, 3, 4], np.float32), 4), {}, [InputSpec("f", "tensor(float)", (None, 4))])
    >>> [round(float(v), 4) for v in y["f"]]
    [-1.1619, -0.3873, 0.3873, 1.1619]
    """
    from .inputs import np_dtype, single_input

    spec = single_input(inputs, "audio-frame")
    a = _audio_of(data)
    x = resample(a.samples, a.rate, int(params.get("sample_rate", a.rate))).astype(np.float64)
    n = spec.shape[-1] if isinstance(spec.shape[-1], int) else int(params.get("window", 1024))
    if len(x) >= n:
        x = x[(len(x) - n) // 2:(len(x) - n) // 2 + n]
    else:
        x = np.pad(x, ((n - len(x)) // 2, n - len(x) - (n - len(x)) // 2))
    if params.get("normalise", True):
        x = x - x.mean()
        x = x / max(1e-10, float(x.std(ddof=1)))
    return {spec.name: x.astype(np_dtype(spec))}
