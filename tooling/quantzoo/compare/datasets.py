"""Datasets: from a dataset's files to samples.

One `DatasetAdapter` record per adapter name in `DATASET_ADAPTERS`, chosen by a dataset
manifest's ``adapter``. Its ``read(root, params, skipped) -> list[Sample]`` gets the fetched
source `root` (a folder, or one file such as a font); unreadable items are appended to `skipped`
as ``(key, reason)`` and left out. Adding an adapter is one record here and its function in the
module of its kind (`samples` for plain folders, `photos`, `speech`, or a new module); `Sample`
and the selection helpers live in `samples`, so adapter modules never import this registry.

Everything here is deterministic: files are visited in sorted order and generated data depends
only on the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import QuantzooError
from .photos import (augmented_images, class_index_views, matted_photos, photo_of, quarter_turns,
                     styled_photos)
from .samples import (Sample, arrays_dataset, files_dataset, images_dataset, label_from_path, list_files,
                      thin)
from . import music, sentences, speech, wakeword
from . import phonemes
from . import asr
from . import speaker

__all__ = ["DATASET_ADAPTERS", "DatasetAdapter", "Sample", "label_from_path", "list_files", "photo_of", "thin"]


# A fixed word list: the generated lines are the same on every machine and Python version.
WORDS = tuple("""
the of and to in is it that for on with as was at by from this be or are an have not which
one all were when there can more if will up out so about what other into than then them these
its only new some time could two first way may down also after over most well very year back
model zoo weight table lookup linear kmeans bits bytes float error rate agree size speed test
sample image photo text line page word letter number value layer graph node tensor input output
quick brown fox jumps lazy dog river stone cloud paper window garden yellow purple orange green
north south east west winter summer autumn spring morning evening market station village bridge
copper silver marble castle harbor island forest desert valley canyon meadow thunder rainbow
""".split())


def _line_text(rng: random.Random, params: dict) -> str:
    lo, hi = int(params.get("min_words", 1)), int(params.get("max_words", 4))
    words = []
    for _ in range(rng.randint(lo, hi)):
        r = rng.random()
        if r < 0.12:
            words.append(str(rng.randint(0, 9999)))
        elif r < 0.22:
            w = rng.choice(WORDS)
            words.append(w.capitalize())
        else:
            words.append(rng.choice(WORDS))
    return " ".join(words)


def render_line(text: str, font, height: int = 48, margin: int = 8, max_width: int | None = None):
    """`text` in black on a white `height`-pixel-high greyscale image, vertically centred."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = font.getbbox(text)
    width = right - left + 2 * margin
    if max_width:
        width = min(width, max_width)
    img = Image.new("L", (max(width, 1), height), 255)
    ImageDraw.Draw(img).text((margin - left, (height - (bottom - top)) // 2 - top), text, fill=0, font=font)
    return img


def rendered_text_lines(root: Path, params: dict, skipped: list) -> list[Sample]:
    """`count` English-like lines rendered with the font file `root`, labelled by their text.

    Deterministic by ``seed``. Params: ``count`` (64), ``seed`` (0), ``font_size`` (32),
    ``height`` (48), ``max_width`` (320: words are dropped from the end until the line fits),
    ``min_words``/``max_words`` (1/4), ``limit`` (at most that many of the first lines). With ``rotate180: true`` every other line is turned
    upside down and the labels are the angles ``'0'``/``'180'`` instead of the text.
    """
    from PIL import Image, ImageFont

    font_file = Path(root)
    if font_file.is_dir():
        fonts = sorted(p for p in font_file.rglob("*") if p.suffix.lower() in (".ttf", ".otf"))
        if not fonts:
            raise QuantzooError(f"no .ttf/.otf font in {font_file}: the rendered-text-lines adapter needs a "
                                "font file as its source")
        font_file = fonts[0]
    try:
        font = ImageFont.truetype(str(font_file), int(params.get("font_size", 32)))
    except OSError as e:
        raise QuantzooError(f"cannot load the font {font_file} for rendered-text-lines: {e}; "
                            "the dataset source must be a TrueType/OpenType font file") from None
    rng = random.Random(int(params.get("seed", 0)))
    height, max_width = int(params.get("height", 48)), params.get("max_width", 320)
    rotate = bool(params.get("rotate180", False))
    out = []
    count = int(params.get("count", 64))
    if params.get("limit"):
        count = min(count, int(params["limit"]))
    for i in range(count):
        text = _line_text(rng, params)
        while max_width and " " in text and font.getbbox(text)[2] - font.getbbox(text)[0] + 16 > max_width:
            text = text.rsplit(" ", 1)[0]
        img = render_line(text, font, height)
        label = text
        if rotate:
            angle = 180 if i % 2 else 0
            if angle:
                img = img.transpose(Image.Transpose.ROTATE_180)
            label = str(angle)
        out.append(Sample(f"line-{i:05d}", img, label))
    return out


# --- handwritten digits ---------------------------------------------------------------------------

def uci_digits(root: Path, params: dict, skipped: list) -> list[Sample]:
    """The UCI handwritten digits as scikit-learn ships them (``digits.csv.gz``: one row per
    image, 64 pixel values 0..16 row by row, then the digit): each an 8×8 greyscale Pillow image
    whose pixel values are the raw counts 0..16 (the preprocessing scales them), labelled
    ``'0'``…``'9'``, keyed ``digit-<row>``; ``limit`` thins the rows, evenly.

    >>> import gzip, tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "d.csv.gz"
    >>> _ = f.write_bytes(gzip.compress(b",".join([b"16"] * 64 + [b"7"]) + b"\\n"))
    >>> [(s.key, s.label, s.data.size, s.data.getpixel((0, 0))) for s in uci_digits(f, {}, [])]
    [('digit-0000', '7', (8, 8), 16)]
    """
    import gzip

    from PIL import Image

    path = Path(root)
    if path.is_dir():
        found = sorted(path.rglob("digits.csv*"))
        if not found:
            raise QuantzooError(f"no digits.csv.gz in {path}: the uci-digits adapter reads scikit-learn's "
                                "sklearn/datasets/data/digits.csv.gz")
        path = found[0]
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("ascii")
    out = []
    for i, line in enumerate(text.splitlines()):
        values = line.strip().split(",")
        if len(values) != 65:
            if line.strip():
                skipped.append((f"digit-{i:04d}", f"{len(values)} values, expected 64 pixels and a digit"))
            continue
        px = np.asarray([int(float(v)) for v in values[:64]], dtype=np.uint8).reshape(8, 8)
        out.append(Sample(f"digit-{i:04d}", Image.fromarray(px, "L"), str(int(float(values[64])))))
    return thin(out, params.get("limit"))


@dataclass(frozen=True)
class DatasetAdapter:
    """One way to read a dataset: ``read(root, params, skipped) -> list[Sample]``. `cluster`,
    when given, maps a sample key to the source item it was derived from (several views of one
    photo): the summaries' intervals then count those items, not the samples."""

    name: str
    read: Callable[[Path, dict, list], list[Sample]]
    description: str
    cluster: Callable[[str], str] | None = None


DATASET_ADAPTERS: dict[str, DatasetAdapter] = {a.name: a for a in (
    DatasetAdapter("files", files_dataset, "every file, as its path; the preprocessor reads the bytes"),
    DatasetAdapter("images", images_dataset, "every decodable image, as a Pillow image"),
    DatasetAdapter("arrays", arrays_dataset, ".npy and .npz files, as arrays named by model input"),
    DatasetAdapter("rendered-text-lines", rendered_text_lines,
                   "English-like lines rendered with a font file, labelled by their text"),
    DatasetAdapter("uci-digits", uci_digits, "scikit-learn's copy of the UCI handwritten digits (8×8, 0..16)"),
    DatasetAdapter("augmented-images", augmented_images,
                   "every photograph in a fixed grid of crops, flips and rotations", photo_of),
    DatasetAdapter("styled-photos", styled_photos, "every photograph in each of a list of styles (style transfer)",
                   photo_of),
    DatasetAdapter("matted-photos", matted_photos,
                   "every photograph, labelled with its reference matte where one is named (salient objects)"),
    DatasetAdapter("class-index-views", class_index_views,
                   "augmented-images, each photo labelled by the class index in its file name", photo_of),
    DatasetAdapter("quarter-turns", quarter_turns,
                   "every page turned by 0/90/180/270 degrees, labelled by the angle (orientation)", photo_of),
    DatasetAdapter("espeak-speech", speech.espeak_speech, "sentences spoken by espeak-ng between silences, labelled with the speech extents"),
    DatasetAdapter("pitch-frames", speech.pitch_frames, "sine tones labelled with their frequency, and spoken windows", photo_of),
    DatasetAdapter("wav-files", speech.wav_files, "every 16-bit PCM .wav file, as a mono recording"),
    DatasetAdapter("synthesised-notes", music.synthesised_notes,
                   "harmonic notes of known MIDI pitch, onset and offset, one model window per clip"),
    DatasetAdapter("wake-phrases", wakeword.wake_phrases,
                   "windows holding a wake phrase or other speech spoken by espeak-ng, labelled wake / other"),
    DatasetAdapter("lee-documents", sentences.lee_documents,
                   "the 50 Lee news documents, each labelled with its human similarity ratings", sentences.document_of),
    DatasetAdapter("piper-sentences", phonemes.piper_sentences,
                   "sentences of a text file as Piper phoneme ids (espeak-ng IPA, the voice's map), labelled with the text"),
    DatasetAdapter("espeak-speakers", speaker.espeak_speakers,
                   "phrases spoken by several espeak-ng voices, labelled with the voice (speaker embedding)", photo_of),
    DatasetAdapter("espeak-sentences", asr.espeak_sentences,
                   "one sentence spoken by espeak-ng per recording, labelled with the sentence (speech recognition)"),
)}
