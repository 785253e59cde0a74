"""Text to Piper phoneme ids with espeak-ng, as Piper does (ARCHITECTURE.md, "Speech synthesis").

Piper (piper-phonemize, piper-tts) phonemizes a text with espeak-ng's ``espeak_TextToPhonemes``
in IPA mode, one clause per call, and then:

- removes language-switch flags ``(en)`` … ``(fr)`` from the clause's phonemes;
- appends the clause's terminator (``. , ? ! : ;``), and a space after ``, : ;``;
- decomposes the string to Unicode NFD and takes every code point as one phoneme;
- maps the phonemes through the voice's ``phoneme_id_map``: BOS ``^``, then the pad ``_`` after
  every phoneme, then EOS ``$`` (``^ _ p1 _ p2 _ … pn _ $``).

Here the same call runs in Debian's libespeak-ng (the pinned 1.51 of `speech.check_espeak`,
through ctypes: the library of the ``espeak-ng`` package). Differences from Piper, all known:
Piper ships its own espeak-ng fork (1.52-dev, its own espeak-ng-data) whose
``espeak_TextToPhonemesWithTerminator`` returns the clause terminator; 1.51 has no such call, so the
terminator is read from the text the call consumed (`terminator_of`). Piper synthesises each
sentence separately; a dataset sample is one sentence, and a text that espeak ends early (an
abbreviation's full stop) is skipped with its reason. A phoneme missing from the map is dropped
with a warning by Piper; here the sentence is skipped with the phoneme named.

The ``piper-sentences`` dataset adapter reads sentences from a text file and the voice's config
(both in the dataset's bundle), and gives each sample its phoneme ids (int64 [L]) with the sentence
as the label; the ``phoneme-ids`` preprocessor adds the length and the three scales.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import random
import re
import threading
import unicodedata
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import QuantzooError
from .samples import Sample, thin
from .speech import check_espeak, sentences

BOS, EOS, PAD = "^", "$", "_"
TERMINATORS = ".,?!:;"          # espeak's clause terminators that Piper keeps as phonemes
SENTENCE_END = ".?!"            # ... of which these end a sentence
_IPA = 0x02                     # espeakPHONEMES_IPA: Piper's phoneme mode
_SYNCHRONOUS = 0x02             # AUDIO_OUTPUT_SYNCHRONOUS, as piper-phonemize initialises
_LIB = "libespeak-ng.so.1"


# --- Piper's rules (pure) ---------------------------------------------------------------------

def terminator_of(consumed: str, last: bool) -> str:
    """The clause terminator in the text one ``espeak_TextToPhonemes`` call consumed: espeak reads
    one character of the next clause ahead (not for the `last` clause), so that character is
    dropped; then the last character left, past spaces and closing quotes or brackets, if it is
    one of `TERMINATORS`, else "".

    >>> terminator_of("Hello world, t", False), terminator_of("went home.", True), terminator_of("so 'yes!' A", False)
    (',', '.', '!')
    >>> terminator_of("no end", True)
    ''
    """
    text = consumed if last else consumed[:-1]
    text = text.rstrip().rstrip("\"')]}\u2019\u201d").rstrip()
    return text[-1] if text and text[-1] in TERMINATORS else ""


def piper_phonemes(clauses: Sequence[tuple[str, str]]) -> list[str]:
    """Piper's phonemes of one sentence from its clauses' (IPA phonemes, terminator): language
    flags removed, the terminator appended (and a space after ``, : ;``), NFD code points.

    >>> piper_phonemes([("həlˈoʊ", ","), ("(fr)bɔ̃(en)ʒˈuːɹ", ".")])
    ['h', 'ə', 'l', 'ˈ', 'o', 'ʊ', ',', ' ', 'b', 'ɔ', '̃', 'ʒ', 'ˈ', 'u', 'ː', 'ɹ', '.']
    """
    out: list[str] = []
    for phonemes, term in clauses:
        s = re.sub(r"\([^)]+\)", "", phonemes) + term
        if term in (",", ":", ";"):
            s += " "
        out.extend(unicodedata.normalize("NFD", s))
    return out


def phoneme_ids(phonemes: Sequence[str], id_map: Mapping[str, Sequence[int]]) -> tuple[list[int], list[str]]:
    """Piper's ids: BOS, pad, then each phoneme's ids followed by the pad, then EOS; and the
    phonemes the map does not have (left out, as Piper does).

    >>> phoneme_ids(["a", "b", "?"], {"^": [1], "$": [2], "_": [0], "a": [5], "b": [6, 7]})
    ([1, 0, 5, 0, 6, 7, 0, 2], ['?'])
    """
    for s in (BOS, EOS, PAD):
        if s not in id_map:
            raise QuantzooError(f"the phoneme_id_map has no {s!r} (Piper's BOS ^, EOS $ and pad _ are required)")
    ids = [*id_map[BOS], *id_map[PAD]]
    missing = []
    for p in phonemes:
        if p not in id_map:
            missing.append(p)
            continue
        ids.extend(id_map[p])
        ids.extend(id_map[PAD])
    ids.extend(id_map[EOS])
    return [int(i) for i in ids], missing


# --- espeak-ng through its library ------------------------------------------------------------------

_lock = threading.Lock()
_state: dict = {}


def _library():
    if "lib" not in _state:
        name = ctypes.util.find_library("espeak-ng") or _LIB
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            raise QuantzooError(f"cannot load libespeak-ng ({name}: {e}); install Debian's espeak-ng (which "
                                "brings libespeak-ng1): apt-get install espeak-ng, as make test and make site do") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        if lib.espeak_Initialize(_SYNCHRONOUS, 0, None, 0) <= 0:
            raise QuantzooError("espeak_Initialize failed: check that espeak-ng-data is installed (apt-get install espeak-ng)")
        _state["lib"], _state["voice"] = lib, None
    return _state["lib"]


def espeak_clauses(text: str, voice: str) -> list[tuple[str, str]]:
    """`text`'s clauses as espeak-ng phonemizes them for Piper: (IPA phonemes, terminator) per
    ``espeak_TextToPhonemes`` call (`terminator_of`)."""
    raw = text.encode("utf-8")
    with _lock:
        lib = _library()
        if _state["voice"] != voice:
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise QuantzooError(f"espeak-ng has no voice {voice!r}; list them with espeak-ng --voices")
            _state["voice"] = voice
        buf = ctypes.create_string_buffer(raw)
        base = ctypes.addressof(buf)
        ptr = ctypes.c_char_p(base)
        out = []
        while ptr.value is not None:
            start = ctypes.cast(ptr, ctypes.c_void_p).value - base
            phonemes = lib.espeak_TextToPhonemes(ctypes.byref(ptr), 0, _IPA)  # 0: espeakCHARS_AUTO
            end = ctypes.cast(ptr, ctypes.c_void_p).value
            last = end is None
            consumed = raw[start:len(raw) if last else end - base].decode("utf-8", errors="replace")
            out.append(((phonemes or b"").decode("utf-8"), terminator_of(consumed, last)))
    return out


def sentence_ids(text: str, voice: str, id_map: Mapping[str, Sequence[int]]) -> tuple[list[int] | None, str | None]:
    """Piper's phoneme ids of one sentence, or (None, why it cannot be one sample)."""
    clauses = espeak_clauses(text, voice)
    early = [t for _, t in clauses[:-1] if t in SENTENCE_END]
    if early:
        return None, f"espeak-ng ends a sentence inside it (at {early[0]!r}: an abbreviation?)"
    ids, missing = phoneme_ids(piper_phonemes(clauses), id_map)
    if missing:
        return None, f"phonemes not in the voice's phoneme_id_map: {' '.join(sorted(set(missing)))}"
    return ids, None


# --- the dataset adapter and the preprocessor --------------------------------------------------------

def _one(root: Path, name: str | None, pattern: str, what: str) -> Path:
    if root.is_file():
        return root
    found = [root / name] if name else sorted(root.glob(pattern))
    if len(found) != 1 or not found[0].is_file():
        raise QuantzooError(f"{root}: expected one {what} ({name or pattern}), found "
                            f"{', '.join(p.name for p in found) or 'none'}; name it in params")
    return found[0]


def voice_config(path: Path) -> dict:
    """A Piper voice's ``.onnx.json``: its phoneme_id_map, espeak voice and sample rate."""
    try:
        cfg = json.loads(Path(path).read_text(encoding="utf-8"))
        id_map = cfg["phoneme_id_map"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise QuantzooError(f"{path}: not a Piper voice config ({type(e).__name__}: {e}); expected the "
                            "voice's .onnx.json with a phoneme_id_map") from None
    if cfg.get("phoneme_type", "espeak") != "espeak":
        raise QuantzooError(f"{path}: phoneme_type {cfg.get('phoneme_type')!r}; only espeak voices are supported")
    return cfg


def piper_sentences(root: Path, params: dict, skipped: list) -> list:
    """``count`` sentences of ``min_words``..``max_words`` words from the text file (``text``, in
    the dataset's folder) chosen by a seeded `random.Random`, each as Piper's phoneme ids for the
    voice config ``config`` (its ``espeak.voice`` unless ``voice`` is given), labelled with the
    sentence. Keys are the sentence's index in the text (``lee-0042``), stable when ``count`` changes."""

    check_espeak(params.get("espeak_ng"))
    root = Path(root)
    cfg = voice_config(_one(root, params.get("config"), "*.onnx.json", "Piper voice config"))
    text_file = _one(root, params.get("text"), "*.cor", "text file")
    voice = str(params.get("voice") or (cfg.get("espeak") or {}).get("voice") or "en-us")
    pool = list(dict.fromkeys(sentences(text_file.read_text(encoding="utf-8", errors="replace"),
                                        int(params.get("min_words", 4)), int(params.get("max_words", 10)))))
    if not pool:
        raise QuantzooError(f"no sentence of {params.get('min_words', 4)}-{params.get('max_words', 10)} words in "
                            f"{text_file}; widen params.min_words/max_words")
    order = random.Random(int(params.get("seed", 0))).sample(range(len(pool)), min(len(pool), int(params.get("count", 16))))
    prefix = str(params.get("prefix", "lee"))
    out = []
    for i in order:
        key = f"{prefix}-{i:04d}"
        ids, why = sentence_ids(pool[i], voice, cfg["phoneme_id_map"])
        if ids is None:
            skipped.append((key, why))
            continue
        out.append(Sample(key, np.asarray(ids, dtype=np.int64), pool[i]))
    return thin(out, params.get("limit"))


def phoneme_input(data, params: dict, inputs: list) -> dict:
    """A sample's phoneme ids -> Piper's three inputs: ``input`` (the ids), ``input_lengths``
    (their count) and ``scales`` = [``noise_scale``, ``length_scale``, ``noise_w``] (defaults 0, 1,
    0: no noise, so the output is deterministic). Name the manifest's ``unbatched: [scales]``.

    >>> from .inputs import InputSpec
    >>> specs = [InputSpec("input", "tensor(int64)", (None, None)), InputSpec("input_lengths", "tensor(int64)", (None,)),
    ...          InputSpec("scales", "tensor(float)", (3,))]
    >>> f = phoneme_input(np.array([1, 0, 5, 0, 2]), {}, specs); f["input"].tolist(), int(f["input_lengths"]), f["scales"].tolist()
    ([1, 0, 5, 0, 2], 5, [0.0, 1.0, 0.0])
    """
    names = {s.name for s in inputs}
    want = ("input", "input_lengths", "scales")
    if not set(want) <= names:
        raise QuantzooError(f"the phoneme-ids preprocessor feeds Piper's inputs {', '.join(want)}; the model has "
                            f"{', '.join(sorted(names))}")
    ids = np.asarray(data)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise QuantzooError(f"the phoneme-ids preprocessor reads a sample's phoneme ids (int [L]), found "
                            f"{ids.dtype} {list(ids.shape)}; use a dataset whose adapter is piper-sentences")
    scales = [float(params.get("noise_scale", 0.0)), float(params.get("length_scale", 1.0)), float(params.get("noise_w", 0.0))]
    return {"input": ids.astype(np.int64), "input_lengths": np.array(len(ids), dtype=np.int64),
            "scales": np.array(scales, dtype=np.float32)}
