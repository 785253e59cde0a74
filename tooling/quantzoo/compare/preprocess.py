"""Preprocessing: from one sample to a model's input tensors, and back to a picture.

One `Preprocessor` record per name in `PREPROCESSORS`, chosen by a model manifest's
``preprocessing.adapter``:

- ``preprocess(data, params, inputs) -> {input name: array}``: one sample's feed *without* the
  batch axis. `inputs` describes the model's inputs (`InputSpec`), so a preprocessor can take
  sizes and dtypes from the model;
- ``read``: the dataset adapter (`datasets.DATASET_ADAPTERS`) that reads a plain folder of
  samples for it (``quantzoo compare --data DIR``);
- ``inverse(x, params)``: the picture a preprocessed [1, C, H, W] or [1, H, W, C] input came
  from, as uint8 [H, W] or [H, W, 3], or None (previews show it; see `input_image`).

Adding a preprocessor is one record here and its functions (here, or in the module of its kind:
`speech` for audio; inverses for previews in `inverse`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import QuantzooError
from . import asr as _asr
from . import music as _music
from . import phonemes as _phonemes
from . import sentences as _sentences
from . import speaker as _speaker
from . import speech as _speech
from .inputs import InputSpec, np_dtype, single_input
from .inverse import TEXT_LINE_DEFAULTS, min_max, text_line_inverse, unnormalise



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
    spec = single_input(inputs, "magika-bytes")
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

    spec = single_input(inputs, "image")
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
    (255: white) to ``width``, then normalised like `image` (``mean``/``std``, default `TEXT_LINE_DEFAULTS`: 0.5/0.5).
    """
    from PIL import Image

    spec = single_input(inputs, "text-line-image")
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
    p = {**TEXT_LINE_DEFAULTS, **params}
    return {spec.name: _to_layout(_normalise(a, p), layout, channels, p).astype(np_dtype(spec))}


def styled_image(data: Any, params: dict, inputs: list[InputSpec]) -> dict[str, np.ndarray]:
    """A photo in one style (``{"image": photo, "style": i}``, the ``styled-photos`` adapter) ->
    the 4-D picture input, preprocessed like `image` (same params), and a one-hot float vector
    with 1 at index i on the model's 1-D input (the style weights; list it in ``unbatched``)."""
    pics, vecs = [s for s in inputs if s.rank == 4], [s for s in inputs if s.rank == 1]
    if len(pics) != 1 or len(vecs) != 1:
        raise QuantzooError("preprocessing adapter 'styled-image' feeds a model with one 4-D picture input and one "
                            f"1-D style input; found {', '.join(f'{i.name} {list(i.shape)}' for i in inputs)}")
    if not isinstance(data, dict) or "image" not in data or "style" not in data:
        raise QuantzooError("preprocessing adapter 'styled-image' reads samples of the 'styled-photos' dataset "
                            f"adapter ({{image, style}}), found a {type(data).__name__}")
    n, i = vecs[0].shape[0], int(data["style"])
    if not isinstance(n, int) or not 0 <= i < n:
        raise QuantzooError(f"style {i} is out of range for input {vecs[0].name!r} of shape {list(vecs[0].shape)}; "
                            "check the dataset's params.styles")
    weights = np.zeros(n, dtype=np_dtype(vecs[0]))
    weights[i] = 1
    return {**image(data["image"], params, pics), vecs[0].name: weights}


def arrays(data: Any, params: dict, inputs: list[InputSpec]) -> dict[str, np.ndarray]:
    """A mapping of arrays -> the feed, cast to each input's dtype. A None key (a bare .npy)
    names the model's only input; a leading batch axis of 1 is dropped."""
    if not isinstance(data, dict):
        data = {None: np.asarray(data)}
    by_name = {i.name: i for i in inputs}
    feed = {}
    for k, v in data.items():
        spec = single_input(inputs, "arrays") if k is None else by_name.get(k)
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


# --- the records ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Preprocessor:
    """One preprocessing adapter: the forward function, the folder reader and the inverse."""

    name: str
    preprocess: Callable[[Any, dict, list[InputSpec]], dict[str, np.ndarray]]
    read: str
    inverse: Callable[[Any, dict], np.ndarray | None] | None = None


PREPROCESSORS: dict[str, Preprocessor] = {p.name: p for p in (
    Preprocessor("magika-bytes", magika_bytes, "files"),
    Preprocessor("image", image, "images", unnormalise),
    Preprocessor("text-line-image", text_line_image, "images", text_line_inverse),
    Preprocessor("arrays", arrays, "arrays"),
    Preprocessor("styled-image", styled_image, "styled-photos", unnormalise),
    # generated recordings (speech.py): the whole recording (streamed models), one normalised window
    Preprocessor("audio", _speech.audio_input, "wav-files"),
    Preprocessor("audio-frame", _speech.audio_frame, "wav-files"),
    # one fixed-length window in the input's per-sample shape (basic-pitch's [43844, 1]; music.py)
    Preprocessor("audio-window", _music.audio_window, "wav-files"),
    # a text -> BERT WordPiece ids and attention mask (sentences.py)
    Preprocessor("wordpiece", _sentences.wordpiece_input, "files"),
    # Piper's phoneme ids -> ids, length, scales (phonemes.py)
    Preprocessor("phoneme-ids", _phonemes.phoneme_input, "piper-sentences"),
    # a recording -> Resemblyzer's [160, 40] mel frames of one partial utterance (speaker.py)
    Preprocessor("speaker-mels", _speaker.speaker_mels, "wav-files"),
    # a recording -> Whisper's log-mel [80, frames] (asr.py)
    Preprocessor("whisper-mel", _asr.whisper_mel, "wav-files"),
)}


def input_image(x: Any, preprocessing: dict) -> np.ndarray | None:
    """The picture a preprocessed input tensor ([1, C, H, W] or [1, H, W, C]) came from: uint8
    [H, W] or [H, W, 3]. The preprocessor's own `inverse` undoes its normalisation (with its own
    defaults); any other 1- or 3-channel input is scaled min..max; None when it is not an image.

    >>> x = np.zeros((1, 3, 2, 2), np.float32)
    >>> input_image(x, {"adapter": "text-line-image"})[0, 0].tolist(), input_image(x, {"adapter": "image"})[0, 0].tolist()
    ([128, 128, 128], [0, 0, 0])
    >>> input_image(np.arange(4.0).reshape(1, 1, 2, 2), {"adapter": "arrays"}).tolist()
    [[0, 85], [170, 255]]
    >>> input_image(np.zeros((1, 5)), {"adapter": "arrays"}) is None
    True
    """
    params = preprocessing.get("params") or {}
    record = PREPROCESSORS.get(preprocessing.get("adapter"))
    inverse = record.inverse if record is not None and record.inverse is not None else min_max
    return inverse(x, params)


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

