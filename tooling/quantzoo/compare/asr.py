"""Speech recognition: Whisper's log-mel input, its tokens as text, and word error rates
(ARCHITECTURE.md, "Sequence-to-sequence models").

- `log_mel`: Whisper's front end (whisper/audio.py) in numpy: 16 kHz audio zero-padded (or cut) to
  ``frames`` hops of 160 samples, a 400-point STFT with a periodic Hann window (centred, reflect
  padding, the last frame dropped; `mel.stft`), power spectrum, 80 Slaney mel filters (`mel_filters`,
  librosa's formula, which Whisper's mel_filters.npz holds), log10 clamped at 1e-10, floored 8 below its
  maximum, then (x + 4) / 4. Whisper pads to 30 s; here the padding is to the ``frames`` the manifest
  names and the encoder's positional embedding is cut to match.
- `token_text`: token ids -> text through a byte-level BPE vocabulary (GPT-2's: each character of a
  token string stands for one byte, `byte_decoder`); ids at or past ``special_from`` are dropped.
- `normalise`, `word_errors`, `wer`: word error rate = (substitutions + deletions + insertions) /
  reference words, on lower-cased words with punctuation removed.
- ``transcript`` outputs (`compare_transcript`): exact agreement and WER against the float model's
  transcript and against the spoken text.
- ``espeak-sentences``: one spoken phrase per sample, labelled with its text (`espeak_sentences`).

Numpy only.
"""

from __future__ import annotations

import random
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import QuantzooError
from . import mel as MEL
from .samples import Sample, thin

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80


# --- the front end ----------------------------------------------------------------------------

@lru_cache(maxsize=4)
def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, rate: int = SAMPLE_RATE) -> np.ndarray:
    """[n_mels, n_fft/2 + 1] float32 Slaney filters (`mel.mel_filters`, librosa.filters.mel), as
    Whisper's mel_filters.npz holds them.

    >>> f = mel_filters(); f.shape, round(float(f.sum()), 4)
    ((80, 201), 1.999)
    """
    return MEL.mel_filters(rate, n_fft, n_mels).astype(np.float32)


def log_mel(audio: np.ndarray, frames: int) -> np.ndarray:
    """[80, frames] Whisper log-mel of 16 kHz `audio`, zero-padded (or cut) to ``frames · 160`` samples.

    >>> m = log_mel(np.zeros(1600, np.float32), 100); m.shape, float(m.max())
    ((80, 100), -1.5)
    """
    x = np.zeros(frames * HOP, dtype=np.float64)
    a = np.asarray(audio, dtype=np.float64)[:len(x)]
    x[:len(a)] = a
    # [frames, 201]: centred frames (reflect padding), the last STFT frame dropped
    power = np.abs(MEL.stft(x, N_FFT, HOP, N_FFT // 2, "reflect")[:frames]) ** 2
    mel = mel_filters().astype(np.float64) @ power.T
    spec = np.log10(np.maximum(mel, 1e-10))
    spec = np.maximum(spec, spec.max() - 8.0)
    return ((spec + 4.0) / 4.0).astype(np.float32)


def whisper_mel(data, params: dict, inputs: list) -> dict:
    """A recording -> the ``mel`` input: `log_mel` of the audio at 16 kHz over ``frames`` hops."""
    from .inputs import np_dtype
    from .speech import _audio_of, resample

    name = params.get("input", "mel")
    spec = next((s for s in inputs if s.name == name), None)
    if spec is None:
        raise QuantzooError(f"the whisper-mel preprocessor feeds the input {name!r}, which the model does not have; "
                            f"its sample-fed inputs are {', '.join(s.name for s in inputs)} (params.input)")
    a = _audio_of(data)
    x = resample(a.samples, a.rate, SAMPLE_RATE)
    frames = int(params.get("frames", 3000))
    if len(x) > frames * HOP:
        raise QuantzooError(f"a recording of {len(x) / SAMPLE_RATE:.2f} s does not fit the {frames} mel frames "
                            f"({frames * HOP / SAMPLE_RATE:.2f} s) of params.frames; raise it or shorten the data")
    return {spec.name: log_mel(x, frames).astype(np_dtype(spec))}


# --- tokens -> text ---------------------------------------------------------------------------

@lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet, inverted: the character that stands for each byte -> the byte.

    >>> d = byte_decoder(); d["Ġ"], d["a"], len(d)
    (32, 97, 256)
    """
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(keep, chars)}


def token_text(ids, vocab: list[str], special_from: int) -> str:
    """The text of token `ids` (stopping at the first negative id, the runner's padding); ids at or
    past `special_from` and ids outside the vocabulary are dropped.

    >>> token_text([0, 1, 2, 5, -1, 3], ["H", "i", "Ġthere", "x", "y", "<|endoftext|>"], 5)
    'Hi there'
    """
    dec = byte_decoder()
    out = bytearray()
    for i in ids:
        i = int(i)
        if i < 0:
            break
        if i >= special_from or i >= len(vocab):
            continue
        out.extend(dec.get(ch, ord("?")) for ch in vocab[i])
    return out.decode("utf-8", errors="replace").strip()


# --- word error rate --------------------------------------------------------------------------

def normalise(text: str | None) -> list[str]:
    """Lower-cased words without punctuation: points are dropped ("U.S." is "us", "1.5" is "15"),
    a comma between digits too ("1,000" is "1000"), apostrophes inside words kept, any other
    punctuation separates words.

    >>> normalise("The U.S. paid $1,000 -- isn't it?")
    ['the', 'us', 'paid', '1000', "isn't", 'it']
    """
    t = unicodedata.normalize("NFKC", text or "").lower()
    t = re.sub(r"(?<=\d),(?=\d)|\.", "", t)
    t = re.sub(r"[^\w\s']|(?<!\w)'|'(?!\w)", " ", t)
    return t.split()


def word_errors(hyp: list[str], ref: list[str]) -> int:
    """The Levenshtein distance between two word lists (substitutions + deletions + insertions).

    >>> word_errors("a b c".split(), "a x c d".split())
    2
    """
    prev = list(range(len(ref) + 1))
    for i, h in enumerate(hyp, 1):
        cur = [i] + [0] * len(ref)
        for j, r in enumerate(ref, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (h != r))
        prev = cur
    return prev[-1]


def wer_row(hyp: str, ref: str) -> tuple[float, float] | None:
    """One utterance's (errors, reference words): the row a pooled WER sums (None: no reference words).

    >>> wer_row("the cat sat", "The cat sat down."), wer_row("x", "")
    ((1.0, 4.0), None)
    """
    r = normalise(ref)
    if not r:
        return None
    return float(word_errors(normalise(hyp), r)), float(len(r))


def pooled_wer(rows) -> np.ndarray | float:
    """Total errors over total reference words of `rows` [..., n, 2] (the corpus WER).

    >>> float(pooled_wer(np.array([[1.0, 4.0], [0.0, 6.0]])))
    0.1
    """
    a = np.asarray(rows, dtype=np.float64)
    return a[..., 0].sum(axis=-1) / np.maximum(a[..., 1].sum(axis=-1), 1.0)


# --- the ``transcript`` output kind (a `seq2seq.Decode` model's generated ids) ----------------------

def transcript_context(names, labels, label_map) -> dict:
    """The vocabulary (the manifest's ``labels``: one token string per id) and the spoken texts."""
    return {"vocab": names, "all_labels": list(labels) if any(y is not None for y in labels) else None}


def compare_transcript(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Per utterance: exact agreement of the two transcripts, the WER row of the compressed
    transcript against the float one (``wer``) and, where labelled, of both against the spoken text
    (``wer_labels``, ``wer_labels_float``); with the first step's scores (`seq2seq.Decode`
    ``first_scores``), their pooled SNR row. Ids at or past ``special_from`` (metric options) are
    not text. `ref` and `test`: records with ``ids`` (and ``first``), or plain id arrays.

    >>> vocab = ["the", "Ġcat", "Ġsat", "Ġdog", "<|endoftext|>"]
    >>> ref = np.array([[0, 1, 2, -1]]); test = np.array([[0, 3, 2, -1]])
    >>> out = compare_transcript(ref, test, {"vocab": vocab, "options": {"special_from": 4}, "labels": ["The cat sat."]})
    >>> out["transcript_agreement"], out["wer"], out["wer_labels"], out["wer_labels_float"]
    ([0.0], [(1.0, 3.0)], [(1.0, 3.0)], [(0.0, 3.0)])
    """
    vocab = ctx.get("vocab")
    if not vocab:
        raise QuantzooError("a transcript output needs the model's vocabulary: give the manifest's labels (a file "
                            "with one token string per id)")
    special = int((ctx.get("options") or {}).get("special_from", len(vocab)))
    ref, test = np.asarray(ref), np.asarray(test)
    names = ref.dtype.names or ()
    rs = [token_text(r, vocab, special) for r in (ref["ids"] if names else ref)]
    ts = [token_text(t, vocab, special) for t in (test["ids"] if names else test)]
    out: dict[str, list] = {"transcript_agreement": [float(a == b) for a, b in zip(rs, ts)],
                            "wer": [wer_row(t, r) for r, t in zip(rs, ts)]}
    if "first" in names:
        from .measures import dense_components

        out["snr_db"] = [dense_components(r, t) for r, t in zip(ref["first"], test["first"])]
    labels = ctx.get("labels")
    if labels is not None:
        out["wer_labels"] = [wer_row(t, y) if isinstance(y, str) else None for t, y in zip(ts, labels)]
        out["wer_labels_float"] = [wer_row(r, y) if isinstance(y, str) else None for r, y in zip(rs, labels)]
    return out


# --- the dataset adapter ------------------------------------------------------------------------

def phrases(text: str, min_words: int, max_words: int) -> list[str]:
    """Every sentence of `text` cut into consecutive phrases of `min_words` to `max_words` words,
    as even as possible (a sentence of 13 words with at most 8 a phrase: 6 + 7), in order.

    >>> phrases("One two three four five six seven. Eight nine. Ten eleven twelve!", 3, 4)
    ['One two three four', 'five six seven.', 'Ten eleven twelve!']
    """
    from .speech import sentences

    out = []
    for sent in sentences(text, 1, 10 ** 6):
        words = sent.split()
        parts = -(-len(words) // max_words)
        bounds = [round(i * len(words) / parts) for i in range(parts + 1)]
        out.extend(" ".join(words[a:b]) for a, b in zip(bounds, bounds[1:]) if b - a >= min_words)
    return out


def espeak_sentences(root: Path, params: dict, skipped: list) -> list:
    """``count`` distinct phrases of the source text (`phrases`: sentences cut into ``min_words``
    to ``max_words`` words), chosen with a seeded generator, each spoken by espeak-ng in a seeded
    voice and speed (espeak's own leading and trailing silence trimmed, ``pad`` seconds of silence
    either side), labelled with the phrase. Recordings longer than ``max_seconds`` are skipped and
    counted."""
    from .speech import ESPEAK_RATE, Audio, _pick, check_espeak, source_text, speak, trimmed_extent

    check_espeak(params.get("espeak_ng"))
    pool = phrases(source_text(root), int(params.get("min_words", 4)), int(params.get("max_words", 8)))
    count = int(params.get("count", 16))
    if len(pool) < count:
        raise QuantzooError(f"{root} has {len(pool)} phrases of {params.get('min_words', 4)}-{params.get('max_words', 8)} "
                            f"words, fewer than count {count}; lower count or widen min_words/max_words")
    rng = random.Random(int(params.get("seed", 0)))
    pad = np.zeros(int(round(float(params.get("pad", 0.2)) * ESPEAK_RATE)), np.float32)
    longest = float(params.get("max_seconds", 30.0))
    out = []
    for i, text in enumerate(rng.sample(pool, count)):
        voice, speed = _pick(rng, params)
        x = speak(text, voice, speed)
        ext = trimmed_extent(x)
        wave = np.concatenate([pad, x[ext[0]:ext[1]] if ext else x[:0], pad])
        key = f"phrase-{i:04d}"
        if len(wave) > longest * ESPEAK_RATE:
            skipped.append((key, f"{len(wave) / ESPEAK_RATE:.2f} s spoken, longer than max_seconds {longest}"))
            continue
        out.append(Sample(key, Audio(wave, ESPEAK_RATE), text))
    return thin(out, params.get("limit"))
