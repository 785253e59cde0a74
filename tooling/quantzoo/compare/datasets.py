"""Datasets: from a dataset's files to samples.

One `DatasetAdapter` record per adapter name in `DATASET_ADAPTERS`, chosen by a dataset
manifest's ``adapter``. Its ``read(root, params, skipped) -> list[Sample]`` gets the fetched
source `root` (a folder, or one file such as a font); unreadable items are appended to `skipped`
as ``(key, reason)`` and left out. Adding an adapter is one record and its function here.

Everything here is deterministic: files are visited in sorted order and generated data depends
only on the seed.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import QuantzooError
from .augment import augment, view_tag
from .photosets import matted_rows, styled_rows
from . import labelling
from . import speech


@dataclass(frozen=True)
class Sample:
    """One item of a dataset: a stable key, the data a preprocessor reads, and an optional label.

    `data` is a `Path` (``files``), a Pillow image (``images``, ``rendered-text-lines``) or a
    mapping of arrays (``arrays``) or a `speech.Audio` (``espeak-speech``, ``pitch-frames``, ``wav-files``).
    """

    key: str
    data: Any
    label: str | None = None



# --- selection helpers -----------------------------------------------------------------------

def _globs(params: dict, key: str) -> list[str]:
    v = params.get(key) or []
    return [v] if isinstance(v, str) else list(v)


def _matches(rel: str, patterns: list[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def list_files(root: Path, params: dict) -> list[tuple[str, Path]]:
    """Every regular file under `root` as (posix relative path, path), sorted, filtered by the
    ``include``/``exclude`` glob lists in `params` (matched against the relative path or the
    file name), then thinned to ``limit`` evenly spaced files.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for n in ["a/x.py", "a/x.py.output", "b/y.c"]:
    ...     (d / n).parent.mkdir(exist_ok=True); _ = (d / n).write_text("1")
    >>> [r for r, _ in list_files(d, {"exclude": ["*.output"]})]
    ['a/x.py', 'b/y.c']
    """
    root = Path(root)
    if root.is_file():
        rows = [(root.name, root)]
    else:
        rows = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*")
                      if p.is_file() and not p.is_symlink())
    inc, exc = _globs(params, "include"), _globs(params, "exclude")
    rows = [(r, p) for r, p in rows if (not inc or _matches(r, inc)) and not _matches(r, exc)]
    return thin(rows, params.get("limit"))


def thin(items: list, limit: int | None) -> list:
    """At most `limit` items, evenly spread over the list (not just its head), order kept.

    >>> thin(list(range(10)), 4)
    [0, 2, 5, 7]
    """
    if not limit or limit >= len(items):
        return list(items)
    n = len(items)
    return [items[(i * n) // limit] for i in range(limit)]


def label_from_path(rel: str, spec: Any) -> str | None:
    """A sample's label from its relative path under a dataset's ``labels`` spec:
    ``{from: folder}`` is the top folder (None for files at the top), ``{from: filename}`` the
    name without its last suffix.

    >>> label_from_path("python/example.py", {"from": "folder"}), label_from_path("cat.png", {"from": "filename"})
    ('python', 'cat')
    >>> label_from_path("top.txt", {"from": "folder"}) is None
    True
    """
    how = spec.get("from") if isinstance(spec, dict) else None
    if how == "folder":
        return rel.split("/", 1)[0] if "/" in rel else None
    if how == "filename":
        name = rel.rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[0] if "." in name else name
    return None


# --- dataset adapters -------------------------------------------------------------------------

def files_dataset(root: Path, params: dict, skipped: list) -> list[Sample]:
    """Every file (path only; the preprocessor reads what it needs). Labels per ``params['labels']``.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "c").mkdir(); _ = (d / "c" / "m.c").write_text("int x;")
    >>> [(s.key, s.label) for s in files_dataset(d, {"labels": {"from": "folder"}}, [])]
    [('c/m.c', 'c')]
    """
    spec = params.get("labels")
    return [Sample(rel, path, label_from_path(rel, spec)) for rel, path in list_files(root, params)]


def images_dataset(root: Path, params: dict, skipped: list) -> list[Sample]:
    """Every decodable image (first frame), as a Pillow image; other files are skipped and counted.

    >>> import tempfile, pathlib; from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp()); Image.new("RGB", (4, 3)).save(d / "a.png")
    >>> _ = (d / "notes.txt").write_text("not an image"); skipped = []
    >>> [s.data.size for s in images_dataset(d, {}, skipped)], [k for k, _ in skipped]
    ([(4, 3)], ['notes.txt'])
    """
    from PIL import Image, UnidentifiedImageError

    spec = params.get("labels")
    out = []
    for rel, path in list_files(root, params):
        try:
            with Image.open(path) as im:
                im.seek(0)
                im.load()
                img = im.copy()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            skipped.append((rel, f"not a readable image ({type(e).__name__}: {str(e)[:80]})"))
            continue
        out.append(Sample(rel, img, label_from_path(rel, spec)))
    return out


def arrays_dataset(root: Path, params: dict, skipped: list) -> list[Sample]:
    """.npy files (one array: the model's single input) and .npz files (arrays named by input).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); np.save(d / "a.npy", np.zeros((2, 3), np.float32))
    >>> [(s.key, s.data[None].shape) for s in arrays_dataset(d, {}, [])]
    [('a.npy', (2, 3))]
    """
    spec = params.get("labels")
    out = []
    for rel, path in list_files(root, params):
        try:
            if path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    data = {k: z[k] for k in sorted(z.files)}
            elif path.suffix == ".npy":
                data = {None: np.load(path, allow_pickle=False)}
            else:
                skipped.append((rel, "not a .npy or .npz file"))
                continue
        except (OSError, ValueError) as e:
            skipped.append((rel, f"not a readable array file ({type(e).__name__}: {str(e)[:80]})"))
            continue
        out.append(Sample(rel, data, label_from_path(rel, spec)))
    return out


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


# --- augmented photographs ----------------------------------------------------------------------

def augmented_images(root: Path, params: dict, skipped: list) -> list[Sample]:
    """Every photo under `root` in a fixed grid of views: each of ``crops`` ([fraction, anchor]
    pairs; default [[1, center]]) × ``flips`` ([false]) × ``rotations`` (degrees; [0]). The
    unchanged view's key is the photo's path, the others' ``<path>#<view>`` (e.g.
    ``coffee.png#crop0.8-top-left+flip+rot-8``). ``classes`` maps a photo's file name to its
    label (photos not listed are unlabelled); ``max_shorter_side`` shrinks each view; ``limit``
    thins the views, evenly.

    >>> import tempfile, pathlib; from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp()); Image.new("RGB", (64, 48)).save(d / "a.png")
    >>> s = augmented_images(d, {"flips": [False, True], "rotations": [0, 5], "classes": {"a.png": "x"}}, [])
    >>> [(x.key, x.label) for x in s]
    [('a.png', 'x'), ('a.png#rot+5', 'x'), ('a.png#flip', 'x'), ('a.png#flip+rot+5', 'x')]
    """
    crops = params.get("crops") or [[1.0, "center"]]
    flips = params.get("flips") or [False]
    rotations = params.get("rotations") or [0]
    classes = params.get("classes") or {}
    views = [(float(c[0]), str(c[1]) if len(c) > 1 else "center", bool(f), float(r))
             for c in crops for f in flips for r in rotations]
    photos = images_dataset(root, {k: v for k, v in params.items() if k != "limit"}, skipped)
    out = []
    for photo in photos:
        name = photo.key.rsplit("/", 1)[-1]
        label = classes.get(photo.key, classes.get(name))
        for fraction, anchor, flip, angle in views:
            tag = view_tag(fraction, anchor, flip, angle)
            img = augment(photo.data, fraction, anchor, flip, angle, params.get("max_shorter_side"))
            out.append(Sample(f"{photo.key}#{tag}" if tag else photo.key, img,
                              None if label is None else str(label)))
    return thin(out, params.get("limit"))


def photo_of(key: str) -> str:
    """The photo a view's sample key was cut from (``<photo>#<view>``, see `augmented_images`).

    >>> photo_of("coffee.png#crop0.8-top-left+flip"), photo_of("coffee.png")
    ('coffee.png', 'coffee.png')
    """
    return key.split("#", 1)[0]


def styled_photos(root: Path, params: dict, skipped: list) -> list[Sample]:
    """Every photo (``include``/``exclude`` as for ``images``) in each style of ``styles``: keys
    ``<photo>#style-<i>`` (`photosets.styled_rows`), read by the ``styled-image`` preprocessor."""
    photos = images_dataset(root, {k: v for k, v in params.items() if k != "limit"}, skipped)
    return thin([Sample(*row) for row in styled_rows([(s.key, s.data) for s in photos], params)], params.get("limit"))


def matted_photos(root: Path, params: dict, skipped: list) -> list[Sample]:
    """Every photo, labelled with its reference matte where ``mattes`` names one
    (`photosets.matted_rows`: the label is the matte binarised at 0.5, `imagemetrics.encode_mask`)."""
    photos = images_dataset(root, {k: v for k, v in params.items() if k not in ("labels", "limit")}, skipped)
    return thin([Sample(*row) for row in matted_rows(root, [(s.key, s.data) for s in photos], params)],
                params.get("limit"))


def class_index_views(root: Path, params: dict, skipped: list) -> list[Sample]:
    """`augmented_images`, each photo labelled by the class index in its file name
    (`labelling.label_by_class_index`: ``class_pattern``, ``class_names``)."""
    return labelling.label_by_class_index(augmented_images(root, params, skipped), root, params)


def quarter_turns(root: Path, params: dict, skipped: list) -> list[Sample]:
    """Every image turned by quarter turns and labelled by the angle (`labelling.turned`)."""
    pages = images_dataset(root, {k: v for k, v in params.items() if k not in ("labels", "limit")}, skipped)
    return thin(labelling.turned(pages, params), params.get("limit"))


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
)}
