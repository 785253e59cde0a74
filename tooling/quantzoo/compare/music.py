"""Music transcription: synthesised notes of known pitch, basic-pitch's note decoding and note F1
(ARCHITECTURE.md, "Music transcription").

- ``synthesised-notes`` (the dataset adapter): clips of harmonic tones with envelopes, each
  note's MIDI pitch, onset and offset known by construction. The clip's rate and length come from
  the source file, basic-pitch's ``constants.py`` (``AUDIO_SAMPLE_RATE``; ``AUDIO_N_SAMPLES =
  AUDIO_SAMPLE_RATE · AUDIO_WINDOW_LENGTH − FFT_HOP``, one window of the model); everything else
  from a seeded `random.Random`. The label is the notes, ``"60@0.25000-0.75000 64@…"``.
- ``audio-window`` (the preprocessor): a recording at ``sample_rate``, cut or zero-padded at the end
  to the input's length, in the input's per-sample shape ([43844, 1]).
- ``notes`` (the output kind of a `music-transcription` model's first output): notes decoded from
  the onset and note maps (`decode_notes`, a simplified `basic_pitch.note_creation.
  output_to_notes_polyphonic`), then note F1 against the float model's notes and the true notes
  (`note_row`: notes matched one to one with equal pitch and onsets within 50 ms, mir_eval's
  convention, offsets ignored; each clip gives [matches, reference notes, estimated notes] and F1
  is pooled over the notes of every clip, `measures.pooled_f1`).

Numpy only, deterministic.
"""

from __future__ import annotations

import ast
import math
import random
from pathlib import Path

import numpy as np

from ..errors import QuantzooError
from . import measures as M
from .samples import Sample, thin
from .speech import Audio, resample

MIDI_OFFSET = 21              # note-map column 0 is MIDI 21 (A0), basic-pitch's MIDI_OFFSET
ONSET_TOLERANCE_S = 0.05      # mir_eval.transcription's default onset tolerance
MAX_NOTES = 64                # notes a reduction keeps per clip (the earliest)
DEFAULTS = {"onset_output": 0, "note_output": 1, "onset_threshold": 0.5, "frame_threshold": 0.3,
            "min_note_frames": 11, "energy_tolerance": 11, "frame_hop": 256, "sample_rate": 22050,
            "onset_tolerance": ONSET_TOLERANCE_S}


# --- the source: basic-pitch's constants -------------------------------------------------------------

def package_constants(path: Path) -> dict[str, float]:
    """The plain numeric assignments (``NAME = 22050``) of a Python file, read without running it.

    >>> import tempfile, pathlib; f = pathlib.Path(tempfile.mkdtemp()) / "c.py"
    >>> _ = f.write_text("A = 22050\\nB = A // 256\\nC = 27.5\\n"); package_constants(f)
    {'A': 22050, 'C': 27.5}
    """
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError) as e:
        raise QuantzooError(f"cannot read the constants file {path}: {e}; the synthesised-notes dataset's source "
                            "is basic-pitch's basic_pitch/constants.py") from None
    out = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, (int, float))):
            out[node.targets[0].id] = node.value.value
    return out


def clip_format(root: Path) -> tuple[int, int]:
    """(sample rate, samples per clip) from basic-pitch's constants.py (`root`: the file or a folder)."""
    path = Path(root)
    if path.is_dir():
        found = sorted(path.rglob("constants.py"))
        if not found:
            raise QuantzooError(f"no constants.py in {path}: the synthesised-notes adapter reads basic-pitch's "
                                "basic_pitch/constants.py for the sample rate and window length")
        path = found[0]
    c = package_constants(path)
    need = ("AUDIO_SAMPLE_RATE", "AUDIO_WINDOW_LENGTH", "FFT_HOP")
    missing = [k for k in need if k not in c]
    if missing:
        raise QuantzooError(f"{path} does not set {', '.join(missing)} to a number: expected basic-pitch's "
                            "constants.py (AUDIO_SAMPLE_RATE = 22050, AUDIO_WINDOW_LENGTH = 2, FFT_HOP = 256)")
    rate = int(c["AUDIO_SAMPLE_RATE"])
    return rate, int(rate * c["AUDIO_WINDOW_LENGTH"] - c["FFT_HOP"])


# --- the generator -----------------------------------------------------------------------------------

def midi_hz(pitch: float) -> float:
    """>>> midi_hz(69), round(midi_hz(21), 3)
    (440.0, 27.5)
    """
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


def harmonic_note(pitch: int, n: int, rate: int, amplitude: float, rolloff: float, phases: list[float],
                  attack: float = 0.01, decay: float = 0.8, release: float = 0.03) -> np.ndarray:
    """`n` samples of a note of MIDI `pitch`: harmonics k = 1.. (below 0.45 · rate) of amplitude
    rolloff^(k−1), a linear attack of `attack` s, an exponential decay of time constant `decay` s,
    and a linear release over the last `release` s; peak `amplitude`."""
    t = np.arange(n) / rate
    f0 = midi_hz(pitch)
    x = np.zeros(n)
    for k, ph in enumerate(phases, start=1):
        if k * f0 >= 0.45 * rate:
            break
        x += rolloff ** (k - 1) * np.sin(2 * np.pi * k * f0 * t + ph)
    env = np.minimum(1.0, t / attack) * np.exp(-t / decay)
    tail = min(n, max(1, int(round(release * rate))))
    env[n - tail:] *= np.linspace(1.0, 0.0, tail)
    x *= env
    peak = float(np.abs(x).max())
    return x * (amplitude / peak) if peak > 0 else x


def note_label(notes: list[tuple[int, float, float]]) -> str:
    """``[(60, 0.25, 0.75)]`` -> ``"60@0.25000-0.75000"`` (`parse_notes` reads it back)."""
    return " ".join(f"{p}@{a:.5f}-{b:.5f}" for p, a, b in notes)


def parse_notes(label) -> list[tuple[int, float, float]] | None:
    """A `note_label` back to (pitch, onset s, offset s) notes; None for no label or another kind.

    >>> parse_notes("60@0.25000-0.75000 64@0.5-1"), parse_notes(None), parse_notes("440.0")
    ([(60, 0.25, 0.75), (64, 0.5, 1.0)], None, None)
    """
    if not isinstance(label, str) or "@" not in label:
        return None
    out = []
    for part in label.split():
        p, span = part.split("@")
        a, b = span.split("-")
        out.append((int(p), float(a), float(b)))
    return out


def _clip_notes(rng: random.Random, params: dict, seconds: float) -> list[tuple[int, float, float]]:
    """1..max_notes notes with onsets in [0.1 s, seconds − 0.5 s], durations min..max_duration s,
    ending 0.1 s before the clip does; notes that overlap in time are ≥ 3 semitones apart."""
    lo, hi = int(params.get("min_midi", 40)), int(params.get("max_midi", 84))
    dmin, dmax = float(params.get("min_duration", 0.2)), float(params.get("max_duration", 0.6))
    notes: list[tuple[int, float, float]] = []
    for _ in range(rng.randint(1, int(params.get("max_notes", 4)))):
        onset = rng.uniform(0.1, seconds - 0.5)
        offset = min(onset + rng.uniform(dmin, dmax), seconds - 0.1)
        for _try in range(20):
            pitch = rng.randint(lo, hi)
            if all(abs(pitch - p) >= 3 or b <= onset or offset <= a for p, a, b in notes):
                notes.append((pitch, round(onset, 5), round(offset, 5)))
                break
    return sorted(notes, key=lambda n: (n[1], n[0]))


def synthesised_notes(root: Path, params: dict, skipped: list) -> list:
    """``clips`` clips (key ``clip-0000``) of one model window at basic-pitch's rate and length
    (`clip_format` of the source), each 1..``max_notes`` harmonic notes (`harmonic_note`: MIDI
    ``min_midi``..``max_midi``, peak 0.1–0.3, harmonic roll-off ``min_rolloff``..``max_rolloff``
    (0.1..0.3), decay 0.3–1.5 s) labelled with their pitches, onsets and offsets (`note_label`).
    Deterministic by ``seed``."""
    rate, length = clip_format(root)
    if int(params.get("rate", rate)) != rate:
        raise QuantzooError(f"the synthesised-notes params say rate {params['rate']}, but {root} says "
                            f"AUDIO_SAMPLE_RATE = {rate}; set params.rate to {rate}")
    rng = random.Random(int(params.get("seed", 0)))
    rolloff = (float(params.get("min_rolloff", 0.1)), float(params.get("max_rolloff", 0.3)))
    out = []
    for i in range(int(params.get("clips", 32))):
        notes = _clip_notes(rng, params, length / rate)
        wave = np.zeros(length)
        for p, a, b in notes:
            start, stop = int(round(a * rate)), int(round(b * rate))
            phases = [rng.uniform(0, 2 * math.pi) for _ in range(int(params.get("harmonics", 6)))]
            wave[start:stop] += harmonic_note(p, stop - start, rate, rng.uniform(0.1, 0.3), rng.uniform(*rolloff),
                                              phases, decay=rng.uniform(0.3, 1.5))
        out.append(Sample(f"clip-{i:04d}", Audio(wave.astype(np.float32), rate), note_label(notes)))
    return thin(out, params.get("limit"))


# --- the preprocessor --------------------------------------------------------------------------------

def audio_window(data, params: dict, inputs: list) -> dict:
    """A recording -> the model's one input: samples at ``sample_rate``, cut or zero-padded at the
    end to the input's fixed per-sample size, in its per-sample shape ([43844, 1]).

    >>> from .inputs import InputSpec
    >>> y = audio_window(Audio(np.ones(3, np.float32), 8), {}, [InputSpec("x", "tensor(float)", (None, 4, 1))])
    >>> y["x"].shape, y["x"].ravel().tolist()
    ((4, 1), [1.0, 1.0, 1.0, 0.0])
    """
    from .inputs import np_dtype, single_input

    spec = single_input(inputs, "audio-window")
    if not isinstance(data, Audio):
        raise QuantzooError(f"the audio-window preprocessor reads a generated recording (an Audio), found a "
                            f"{type(data).__name__}; use a dataset whose adapter is synthesised-notes or wav-files")
    shape = tuple(spec.shape[1:])
    if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        raise QuantzooError(f"audio-window needs the input {spec.name}'s size after the batch axis fixed, found "
                            f"{list(spec.shape)}; the window length is read from the model")
    n = int(np.prod(shape))
    x = resample(data.samples, data.rate, int(params.get("sample_rate", data.rate)))[:n]
    x = np.pad(x, (0, n - len(x)))
    return {spec.name: x.reshape(shape).astype(np_dtype(spec))}


# --- note decoding -----------------------------------------------------------------------------------

def decode_notes(note: np.ndarray, onset: np.ndarray, onset_threshold: float = 0.5, frame_threshold: float = 0.3,
                 min_note_frames: int = 11, energy_tolerance: int = 11) -> list[tuple[int, int, int]]:
    """basic-pitch's note decoding of one clip's [T, 88] note and onset maps, simplified: onsets are
    local maxima in time of the onset map at least `onset_threshold`; from each (latest first) a
    note runs forward until the note map stays below `frame_threshold` for `energy_tolerance`
    frames; it is kept when longer than `min_note_frames`, and its frames (± one semitone) are used
    up. Not done: onsets inferred from the note map, the "melodia trick" (notes without an onset),
    pitch bends. Returns (MIDI pitch, start frame, end frame), sorted.

    >>> note = np.zeros((40, 88)); onset = np.zeros((40, 88))
    >>> note[5:25, 39] = 0.9; onset[5, 39] = 0.8
    >>> decode_notes(note, onset)
    [(60, 5, 25)]
    """
    note = np.asarray(note, dtype=np.float64)
    onset = np.asarray(onset, dtype=np.float64)
    n = note.shape[0]
    peak = np.zeros(onset.shape, dtype=bool)
    peak[1:-1] = (onset[1:-1] > onset[:-2]) & (onset[1:-1] > onset[2:])
    starts, freqs = np.nonzero(peak & (onset >= onset_threshold))
    remaining = note.copy()
    out = []
    for t0, f in zip(starts[::-1], freqs[::-1]):
        if t0 >= n - 1:
            continue
        i, k = t0 + 1, 0
        while i < n - 1 and k < energy_tolerance:
            k = k + 1 if remaining[i, f] < frame_threshold else 0
            i += 1
        i -= k
        if i - t0 <= min_note_frames:
            continue
        remaining[t0:i, max(0, f - 1):f + 2] = 0
        out.append((int(f) + MIDI_OFFSET, int(t0), int(i)))
    return sorted(out, key=lambda x: (x[1], x[0]))


# --- note F1 -----------------------------------------------------------------------------------------

def matched_notes(ref: list[tuple[int, float]], est: list[tuple[int, float]], tolerance: float) -> int:
    """The most one-to-one matches between (pitch, onset s) notes with equal pitch and onsets at
    most `tolerance` apart (per pitch, both sorted, a two-pointer walk: optimal on a line).

    >>> matched_notes([(60, 0.1), (60, 0.2), (62, 0.5)], [(60, 0.14), (62, 0.56), (60, 0.9)], 0.05)
    1
    """
    total = 0
    for pitch in sorted({p for p, _ in ref} & {p for p, _ in est}):
        a = sorted(t for p, t in ref if p == pitch)
        b = sorted(t for p, t in est if p == pitch)
        i = j = 0
        while i < len(a) and j < len(b):
            if abs(a[i] - b[j]) <= tolerance + 1e-9:
                total, i, j = total + 1, i + 1, j + 1
            elif a[i] < b[j]:
                i += 1
            else:
                j += 1
    return total


def note_row(ref: list[tuple[int, float]], est: list[tuple[int, float]], tolerance: float = ONSET_TOLERANCE_S):
    """The clip's row [matches, |ref|, |est|] of `est` notes against `ref`, which the note F1
    metrics pool over every clip (2 · Σ matches / (Σ |ref| + Σ |est|)); None when both are empty.

    >>> note_row([(60, 0.1), (64, 0.5)], [(60, 0.12)]), note_row([], []), note_row([(60, 0.1)], [])
    ([1.0, 2.0, 1.0], None, [0.0, 1.0, 0.0])
    """
    if not ref and not est:
        return None
    return M.match_row(matched_notes(ref, est, tolerance), len(ref), len(est))


# --- the ``notes`` output kind -----------------------------------------------------------------------

def _options(ctx: dict) -> dict:
    return {**DEFAULTS, **(ctx.get("options") or {})}


def reduce_notes(y: np.ndarray, ctx: dict) -> np.ndarray:
    """A batch of the model's first output -> one record per clip: the output itself (``raw``) and
    the notes decoded from the onset and note maps (``ctx["outputs"]`` at the options'
    ``onset_output`` and ``note_output`` indices), ``count`` and ``notes`` [K, 3] (pitch, start
    frame, end frame; the earliest `MAX_NOTES`).

    >>> on = np.zeros((1, 40, 88), np.float32); nt = on.copy(); on[0, 5, 39] = 0.8; nt[0, 5:25, 39] = 0.9
    >>> r = reduce_notes(on, {"outputs": [on, nt]}); r["count"].tolist(), r["notes"][0, 0].tolist()
    ([1], [60, 5, 25])
    """
    o = _options(ctx)
    outs = ctx.get("outputs")
    if outs is None:
        raise QuantzooError("the notes output kind reads the onset and note maps, but only one output was run; "
                            "run the model with all its outputs (compare.core passes them as ctx['outputs'])")
    onset, note = np.asarray(outs[int(o["onset_output"])]), np.asarray(outs[int(o["note_output"])])
    if onset.shape != note.shape or onset.ndim != 3:
        raise QuantzooError(f"the notes kind needs onset and note maps of one shape [N, T, 88], found "
                            f"{list(onset.shape)} and {list(note.shape)}; check preprocessing.params.metrics "
                            "onset_output and note_output (indices of the model's outputs)")
    y = np.asarray(y, dtype=np.float32)
    rec = np.zeros(len(y), dtype=[("raw", np.float32, y.shape[1:]), ("count", np.int32),
                                  ("notes", np.int32, (MAX_NOTES, 3))])
    rec["raw"] = y
    for i in range(len(y)):
        found = decode_notes(note[i], onset[i], float(o["onset_threshold"]), float(o["frame_threshold"]),
                             int(o["min_note_frames"]), int(o["energy_tolerance"]))[:MAX_NOTES]
        rec["count"][i] = len(found)
        if found:
            rec["notes"][i, :len(found)] = found
    return rec


def _onsets(record, seconds_per_frame: float) -> list[tuple[int, float]]:
    return [(int(p), float(s) * seconds_per_frame) for p, s, _ in record["notes"][:int(record["count"])]]


def compare_notes(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Dense metrics of the output itself, the ``note_f1`` rows of the compressed model's notes
    against the float model's, and, where a clip is labelled with its notes, the rows of
    ``note_f1_truth_float`` and ``note_f1_truth`` (each model's notes against the true ones).

    >>> on = np.zeros((1, 40, 88), np.float32); nt = on.copy(); on[0, 5, 39] = 0.8; nt[0, 5:25, 39] = 0.9
    >>> r = reduce_notes(on, {"outputs": [on, nt]}); e = reduce_notes(on * 0, {"outputs": [on * 0, nt]})
    >>> out = compare_notes(r, e, {"labels": ["60@0.06-0.3"]})
    >>> out["note_f1"], out["note_f1_truth_float"], out["note_f1_truth"]
    ([[0.0, 1.0, 0.0]], [[1.0, 1.0, 1.0]], [[0.0, 1.0, 0.0]])
    """
    o = _options(ctx)
    spf, tol = float(o["frame_hop"]) / float(o["sample_rate"]), float(o["onset_tolerance"])
    dense = [M.dense_stats(r["raw"], t["raw"]) for r, t in zip(ref, test)]
    out = {k: [row[k] for row in dense] for k in ("snr_db", "psnr_db", "cosine", "max_abs_error")}
    out["note_f1"] = [note_row(_onsets(r, spf), _onsets(t, spf), tol) for r, t in zip(ref, test)]
    labels = ctx.get("labels")
    if labels is not None:
        truth = [parse_notes(y) for y in labels]
        for name, batch in (("note_f1_truth_float", ref), ("note_f1_truth", test)):
            out[name] = [None if want is None else note_row([(p, a) for p, a, _ in want], _onsets(r, spf), tol)
                         for want, r in zip(truth, batch)]
    return out


def notes_context(names, labels, label_map) -> dict:
    """The clips' labels as they are (their notes), or None when none is labelled."""
    return {"all_labels": list(labels) if any(y is not None for y in labels) else None}
