"""Adapters: from a dataset's files to samples, and from a sample to a model's input tensors.

Two small registries of fixed-signature callables, chosen by name in the manifests:

- `DATASET_ADAPTERS[name](root, params, skipped) -> list[Sample]` — a dataset manifest's
  ``adapter``. `root` is the fetched source (a folder, or one file such as a font); unreadable
  items are appended to `skipped` as ``(key, reason)`` and left out.
- `PREPROCESSORS[name](data, params, inputs) -> {input name: array}` — a model manifest's
  ``preprocessing.adapter``: one sample's feed *without* the batch axis. `inputs` describes the
  model's inputs (`InputSpec`), so a preprocessor can take sizes and dtypes from the model.

Adding an adapter is adding one function and one dict entry. Everything here is deterministic:
files are visited in sorted order and generated data depends only on the seed.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import QuantzooError


@dataclass(frozen=True)
class Sample:
    """One item of a dataset: a stable key, the data a preprocessor reads, and an optional label.

    `data` is a `Path` (``files``), a Pillow image (``images``, ``rendered-text-lines``) or a
    mapping of arrays (``arrays``).
    """

    key: str
    data: Any
    label: str | None = None


@dataclass(frozen=True)
class InputSpec:
    """One model input as onnxruntime reports it: dims are ints, or None where dynamic."""

    name: str
    dtype: str
    shape: tuple

    @property
    def rank(self) -> int:
        return len(self.shape)


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


# --- augmented photographs ----------------------------------------------------------------------

def inscribed_box(w: int, h: int, angle: float) -> tuple[int, int, int, int]:
    """The largest centred axis-aligned box inside a w×h image turned by `angle` degrees
    (Pillow's ``rotate(expand=False)``), so a rotated photo is cropped free of blank corners.

    >>> inscribed_box(400, 300, 0)
    (0, 0, 400, 300)
    >>> inscribed_box(400, 300, 8)
    (16, 24, 384, 275)
    """
    import math

    a = math.radians(angle)
    sin_a, cos_a = abs(math.sin(a)), abs(math.cos(a))
    long_side, short_side = max(w, h), min(w, h)
    if short_side <= 2.0 * sin_a * cos_a * long_side or abs(sin_a - cos_a) < 1e-10:
        x = 0.5 * short_side
        wr, hr = (x / sin_a, x / cos_a) if w >= h else (x / cos_a, x / sin_a)
    else:
        cos_2a = cos_a * cos_a - sin_a * sin_a
        wr, hr = (w * cos_a - h * sin_a) / cos_2a, (h * cos_a - w * sin_a) / cos_2a
    wr, hr = min(w, int(math.floor(wr + 1e-9))), min(h, int(math.floor(hr + 1e-9)))
    left, top = (w - wr) // 2, (h - hr) // 2
    return left, top, left + wr, top + hr


_ANCHORS = {"center": (0.5, 0.5), "top-left": (0, 0), "top-right": (1, 0), "bottom-left": (0, 1),
            "bottom-right": (1, 1)}


def crop_box(w: int, h: int, fraction: float, anchor: str) -> tuple[int, int, int, int]:
    """The box of a crop keeping `fraction` of each side, placed at `anchor` (see `_ANCHORS`).

    >>> crop_box(100, 80, 0.8, "center"), crop_box(100, 80, 0.8, "bottom-right")
    ((10, 8, 90, 72), (20, 16, 100, 80))
    """
    if anchor not in _ANCHORS:
        raise QuantzooError(f"unknown crop anchor {anchor!r}; expected one of {', '.join(_ANCHORS)}")
    if not 0 < float(fraction) <= 1:
        raise QuantzooError(f"crop fraction must be in (0, 1], found {fraction!r}")
    cw, ch = max(1, int(round(w * float(fraction)))), max(1, int(round(h * float(fraction))))
    fx, fy = _ANCHORS[anchor]
    left, top = int((w - cw) * fx), int((h - ch) * fy)
    return left, top, left + cw, top + ch


def augment(img, fraction: float = 1.0, anchor: str = "center", flip: bool = False, angle: float = 0.0,
            max_shorter_side: int | None = None):
    """One deterministic view of a photo: rotate by `angle` (cropped free of blank corners), keep
    `fraction` of each side at `anchor`, mirror when `flip`, then shrink so the shorter side is at
    most `max_shorter_side`.

    >>> from PIL import Image
    >>> augment(Image.new("RGB", (400, 300)), 0.8, "top-left", True, 8, 128).size
    (187, 128)
    """
    from PIL import Image, ImageOps

    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    if angle:
        img = img.rotate(float(angle), resample=Image.Resampling.BILINEAR, expand=False)
        img = img.crop(inscribed_box(img.width, img.height, float(angle)))
    if float(fraction) != 1.0:
        img = img.crop(crop_box(img.width, img.height, fraction, anchor))
    if flip:
        img = ImageOps.mirror(img)
    if max_shorter_side and min(img.size) > int(max_shorter_side):
        r = int(max_shorter_side) / min(img.size)
        img = img.resize((max(1, round(img.width * r)), max(1, round(img.height * r))), Image.Resampling.BILINEAR)
    return img


def _view_tag(fraction: float, anchor: str, flip: bool, angle: float) -> str:
    parts = []
    if float(fraction) != 1.0:
        parts.append(f"crop{float(fraction):g}-{anchor}")
    if flip:
        parts.append("flip")
    if angle:
        parts.append(f"rot{float(angle):+g}")
    return "+".join(parts)


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
            tag = _view_tag(fraction, anchor, flip, angle)
            img = augment(photo.data, fraction, anchor, flip, angle, params.get("max_shorter_side"))
            out.append(Sample(f"{photo.key}#{tag}" if tag else photo.key, img,
                              None if label is None else str(label)))
    return thin(out, params.get("limit"))


# name -> (root, params, skipped) -> list[Sample]
DATASET_ADAPTERS: dict[str, Callable[[Path, dict, list], list[Sample]]] = {
    "files": files_dataset,
    "images": images_dataset,
    "arrays": arrays_dataset,
    "rendered-text-lines": rendered_text_lines,
    "augmented-images": augmented_images,
}

# which folder adapter reads a folder of raw files for a preprocessor (for `--data DIR`)
FOLDER_ADAPTER = {
    "magika-bytes": "files",
    "image": "images",
    "text-line-image": "images",
    "arrays": "arrays",
}


# --- preprocessors ----------------------------------------------------------------------------

_NP_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(int8)": np.int8,
              "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


def np_dtype(spec: InputSpec):
    try:
        return _NP_DTYPES[spec.dtype]
    except KeyError:
        raise QuantzooError(f"model input {spec.name!r} has type {spec.dtype}, which compare cannot feed; "
                            f"supported: {', '.join(_NP_DTYPES)}") from None


def _single(inputs: list[InputSpec], adapter: str) -> InputSpec:
    if len(inputs) != 1:
        raise QuantzooError(f"preprocessing adapter {adapter!r} feeds one input, but the model has "
                            f"{len(inputs)}: {', '.join(i.name for i in inputs)}; use the 'arrays' adapter "
                            "with .npz files naming each input")
    return inputs[0]


def magika_features(data: bytes, beg_size: int = 1024, end_size: int = 1024, block_size: int = 4096,
                    padding_token: int = 256) -> np.ndarray:
    """Magika v3 features of a file's bytes: the first `beg_size` bytes after stripping leading
    whitespace (padded at the end) and the last `end_size` after stripping trailing whitespace
    (padded at the start), each taken from at most `block_size` bytes at that end.

    >>> magika_features(b" ab\\n", beg_size=4, end_size=4, block_size=8).tolist()
    [97, 98, 10, 256, 256, 32, 97, 98]
    """
    n = min(block_size, len(data))
    beg = data[:n].lstrip()[:beg_size]
    end = data[len(data) - n:].rstrip()
    end = end[max(len(end) - end_size, 0):]
    out = np.full(beg_size + end_size, padding_token, dtype=np.int32)
    out[:len(beg)] = np.frombuffer(beg, dtype=np.uint8)
    out[beg_size + end_size - len(end):] = np.frombuffer(end, dtype=np.uint8)
    return out


def _read_ends(path: Path, block_size: int) -> bytes:
    """The first and last `block_size` bytes of a file (the whole file when it is short)."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(0)
        if size <= 2 * block_size:
            return f.read()
        head = f.read(block_size)
        f.seek(size - block_size)
        return head + f.read(block_size)


def magika_bytes(data: Any, params: dict, inputs: list[InputSpec]) -> dict[str, np.ndarray]:
    """File bytes -> magika's int32 [beg_size + end_size] feature vector (see `magika_features`)."""
    spec = _single(inputs, "magika-bytes")
    p = {k: int(params[k]) for k in ("beg_size", "end_size", "block_size", "padding_token") if k in params}
    block = p.get("block_size", 4096)
    raw = data if isinstance(data, (bytes, bytearray)) else _read_ends(Path(data), block)
    return {spec.name: magika_features(bytes(raw), **p).astype(np_dtype(spec))}


def _layout(spec: InputSpec, params: dict) -> str:
    if params.get("layout"):
        return str(params["layout"]).upper()
    if spec.rank == 4 and spec.shape[-1] in (1, 3) and spec.shape[1] not in (1, 3):
        return "NHWC"
    return "NCHW"


def _channels(spec: InputSpec, layout: str) -> int:
    c = spec.shape[1] if layout == "NCHW" else spec.shape[-1]
    return c if isinstance(c, int) else 3


def _hw(spec: InputSpec, layout: str) -> tuple[int | None, int | None]:
    h, w = (spec.shape[2], spec.shape[3]) if layout == "NCHW" else (spec.shape[1], spec.shape[2])
    return (h if isinstance(h, int) else None, w if isinstance(w, int) else None)


def resized_size(w: int, h: int, params: dict, fixed: tuple[int | None, int | None] = (None, None)) -> tuple[int, int]:
    """The (width, height) an image is resized to, by ``params['resize']``:

    - ``exact``: to ``size: [H, W]`` (default: the model's static input size);
    - ``limit`` (PaddleOCR's det rule): scale so the ``limit_type`` ``max`` (or ``min``) side
      is ``limit_side_len`` — only down for max, only up for min — then round each side to a
      multiple of ``multiple_of`` (32);
    - ``shorter``: scale so the shorter side is ``shorter_side`` (then ``crop: [H, W]`` takes
      the centre, see `center_crop_box`);
    - ``none``: keep the size, rounded to ``multiple_of`` when given.

    >>> resized_size(1000, 500, {"resize": "limit", "limit_type": "max", "limit_side_len": 640})
    (640, 320)
    >>> resized_size(300, 451, {"resize": "limit", "limit_type": "min", "limit_side_len": 736})
    (736, 1120)
    >>> resized_size(600, 400, {"resize": "shorter", "shorter_side": 256})
    (384, 256)
    """
    mode = params.get("resize", "exact" if all(fixed) else "limit")
    if mode == "exact":
        size = params.get("size") or [fixed[0], fixed[1]]
        if not size or None in size:
            raise QuantzooError("image preprocessing with resize: exact needs size: [H, W] (the model's "
                                "input size is dynamic)")
        return int(size[1]), int(size[0])
    if mode == "shorter":
        side = float(params.get("shorter_side", 256))
        ratio = side / min(w, h)
        return max(1, int(round(w * ratio))), max(1, int(round(h * ratio)))
    mult = int(params.get("multiple_of", 32 if mode == "limit" else 1))
    ratio = 1.0
    if mode == "limit":
        limit = float(params.get("limit_side_len", 640))
        if params.get("limit_type", "max") == "max":
            ratio = min(1.0, limit / max(w, h))
        else:
            ratio = max(1.0, limit / min(w, h))
    elif mode != "none":
        raise QuantzooError(f"unknown image resize mode {mode!r}; expected exact, limit, shorter or none")

    def rnd(x: float) -> int:
        return max(mult, int(round(x / mult) * mult))

    return rnd(w * ratio), rnd(h * ratio)


def center_crop_box(w: int, h: int, crop: list | tuple) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of a centred ``crop: [H, W]`` in a w×h image.

    >>> center_crop_box(384, 256, [224, 224])
    (80, 16, 304, 240)
    """
    ch, cw = int(crop[0]), int(crop[1])
    if ch > h or cw > w:
        raise QuantzooError(f"image preprocessing: crop {ch}x{cw} (HxW) is larger than the resized image "
                            f"{h}x{w}; resize to at least the crop size first")
    left, top = (w - cw) // 2, (h - ch) // 2
    return left, top, left + cw, top + ch


def _normalise(a: np.ndarray, params: dict) -> np.ndarray:
    """(a · scale − mean) / std, per channel (last axis), with `scale` 1/255 by default."""
    scale = float(params.get("scale", 1.0 / 255.0))
    mean = np.asarray(params.get("mean", 0.0), dtype=np.float32)
    std = np.asarray(params.get("std", 1.0), dtype=np.float32)
    return (a.astype(np.float32) * np.float32(scale) - mean) / std


def _to_layout(a: np.ndarray, layout: str, channels: int, params: dict) -> np.ndarray:
    """HWC (RGB) array -> the model's colour order and layout, without the batch axis."""
    if channels == 3 and str(params.get("channel_order", "RGB")).upper() == "BGR":
        a = a[..., ::-1]
    if layout == "NCHW":
        a = np.transpose(a, (2, 0, 1))
    return np.ascontiguousarray(a)


def _pil_mode(channels: int) -> str:
    return "L" if channels == 1 else "RGB"


def image(data: Any, params: dict, inputs: list[InputSpec]) -> dict[str, np.ndarray]:
    """A Pillow image -> one normalised image tensor (see `resized_size` for the resize rules).

    Params: ``resize``/``size``/``limit_side_len``/``limit_type``/``multiple_of``/``shorter_side``,
    ``crop`` ([H, W], centred, after the resize), ``mean`` and
    ``std`` (after scaling by ``scale``, 1/255 by default; scalars or per channel),
    ``channel_order`` (RGB | BGR), ``layout`` (NCHW | NHWC, default from the input shape).
    """
    from PIL import Image

    spec = _single(inputs, "image")
    layout = _layout(spec, params)
    channels = _channels(spec, layout)
    img = data if isinstance(data, Image.Image) else Image.open(data)
    img = img.convert(_pil_mode(channels))
    w, h = resized_size(img.width, img.height, params, _hw(spec, layout))
    if (w, h) != img.size:
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    if params.get("crop"):
        img = img.crop(center_crop_box(w, h, params["crop"]))
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[..., None]
    return {spec.name: _to_layout(_normalise(a, params), layout, channels, params).astype(np_dtype(spec))}


def text_line_image(data: Any, params: dict, inputs: list[InputSpec]) -> dict[str, np.ndarray]:
    """A text-line image -> [C, height, width]: resized to ``height`` keeping its aspect ratio
    (squeezed to ``width`` if wider, as PaddleOCR does), padded on the right with ``pad_value``
    (255: white) to ``width``, then normalised like `image` (``mean``/``std``, default 0.5/0.5).
    """
    from PIL import Image

    spec = _single(inputs, "text-line-image")
    layout = _layout(spec, params)
    channels = _channels(spec, layout)
    fh, fw = _hw(spec, layout)
    height = int(params.get("height") or fh or 48)
    width = int(params.get("width") or fw or 320)
    img = data if isinstance(data, Image.Image) else Image.open(data)
    img = img.convert(_pil_mode(channels))
    w = min(width, max(1, int(np.ceil(img.width * height / img.height))))
    img = img.resize((w, height), Image.Resampling.BILINEAR)
    a = np.full((height, width, channels), float(params.get("pad_value", 255)), dtype=np.float32)
    px = np.asarray(img, dtype=np.float32)
    a[:, :w, :] = px[..., None] if px.ndim == 2 else px
    p = {"mean": 0.5, "std": 0.5, **params}
    return {spec.name: _to_layout(_normalise(a, p), layout, channels, p).astype(np_dtype(spec))}


def arrays(data: Any, params: dict, inputs: list[InputSpec]) -> dict[str, np.ndarray]:
    """A mapping of arrays -> the feed, cast to each input's dtype. A None key (a bare .npy)
    names the model's only input; a leading batch axis of 1 is dropped."""
    if not isinstance(data, dict):
        data = {None: np.asarray(data)}
    by_name = {i.name: i for i in inputs}
    feed = {}
    for k, v in data.items():
        spec = _single(inputs, "arrays") if k is None else by_name.get(k)
        if spec is None:
            raise QuantzooError(f"array {k!r} does not name a model input; the model's inputs are "
                                f"{', '.join(by_name)}")
        v = np.asarray(v)
        if v.ndim == spec.rank and v.shape[0] == 1:
            v = v[0]
        feed[spec.name] = v.astype(np_dtype(spec), copy=False)
    missing = [n for n in by_name if n not in feed]
    if missing:
        raise QuantzooError(f"no array for model input{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                            f"found arrays {', '.join(map(str, data))}")
    return feed


# name -> (data, params, inputs) -> {input name: array without the batch axis}
PREPROCESSORS: dict[str, Callable[[Any, dict, list[InputSpec]], dict[str, np.ndarray]]] = {
    "magika-bytes": magika_bytes,
    "image": image,
    "text-line-image": text_line_image,
    "arrays": arrays,
}


def default_preprocessing(inputs: list[InputSpec]) -> dict:
    """The preprocessing for a model without a manifest: one 4-D float input with 1 or 3
    channels gets ``image`` (static sizes resized exactly, dynamic ones limited to 640 px,
    pixels scaled to [0, 1]); anything else reads arrays.

    >>> default_preprocessing([InputSpec("x", "tensor(float)", (None, 3, 224, 224))])
    {'adapter': 'image', 'params': {}}
    >>> default_preprocessing([InputSpec("ids", "tensor(int64)", (None, 16))])
    {'adapter': 'arrays', 'params': {}}
    """
    if len(inputs) == 1 and inputs[0].rank == 4 and inputs[0].dtype in ("tensor(float)", "tensor(float16)"):
        spec = inputs[0]
        if _channels(spec, _layout(spec, {})) in (1, 3):
            return {"adapter": "image", "params": {}}
    return {"adapter": "arrays", "params": {}}
