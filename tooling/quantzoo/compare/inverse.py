"""Back to a picture: the inverses of the image preprocessors, for previews.

A `preprocess.Preprocessor` record names its inverse here: ``inverse(x, params)`` turns a
preprocessed [1, C, H, W] or [1, H, W, C] input back into uint8 [H, W] or [H, W, 3], or None when
it is not an image (`preprocess.input_image`; ARCHITECTURE.md, "Layout: one module per job").
"""

from __future__ import annotations

from typing import Any

import numpy as np

# text-line models (PaddleOCR's) take pixels scaled to [-1, 1]
TEXT_LINE_DEFAULTS = {"mean": 0.5, "std": 0.5}


def hwc(x: Any, params: dict) -> np.ndarray | None:
    """A [1, C, H, W] or [1, H, W, C] tensor as float64 [H, W, C] with 1 or 3 channels, or None."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 4:
        return None
    a = a[0]
    layout = str(params.get("layout") or ("NCHW" if a.shape[0] in (1, 3) else "NHWC")).upper()
    if layout == "NCHW":
        a = np.transpose(a, (1, 2, 0))
    return a if a.shape[2] in (1, 3) else None


def _to_uint8(a: np.ndarray) -> np.ndarray:
    a = np.clip(a + 0.5, 0, 255).astype(np.uint8)
    return a[:, :, 0] if a.shape[2] == 1 else a


def min_max(x: Any, params: dict) -> np.ndarray | None:
    """Any 1- or 3-channel image tensor scaled min..max to 0..255 (what an unknown input shows)."""
    a = hwc(x, params)
    if a is None:
        return None
    lo, hi = float(a.min()), float(a.max())
    return _to_uint8((a - lo) / (hi - lo if hi > lo else 1.0) * 255.0)


def unnormalise(x: Any, params: dict) -> np.ndarray | None:
    """Undo `preprocess._normalise` and the colour order: ``pixel = (x · std + mean) / scale``."""
    a = hwc(x, params)
    if a is None:
        return None
    if a.shape[2] == 3 and str(params.get("channel_order", "RGB")).upper() == "BGR":
        a = a[..., ::-1]
    scale = float(params.get("scale", 1.0 / 255.0))
    return _to_uint8((a * np.asarray(params.get("std", 1.0), dtype=np.float64)
                      + np.asarray(params.get("mean", 0.0), dtype=np.float64)) / scale)


def text_line_inverse(x: Any, params: dict) -> np.ndarray | None:
    return unnormalise(x, {**TEXT_LINE_DEFAULTS, **params})
