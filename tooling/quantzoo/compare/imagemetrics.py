"""Pure metrics of pictures and masks: SSIM of two images, IoU of two masks, and reference
masks carried as sample labels.

- `ssim`: the structural similarity index of Wang, Bovik, Sheikh and Simoncelli (IEEE TIP
  2004) with their constants: an 11×11 Gaussian window of σ = 1.5 (normalised to sum 1),
  K1 = 0.01, K2 = 0.03, the data range L given (1.0 for images in 0..1), population
  (not sample) variances, and the mean of the SSIM map over the positions where the window fits
  entirely inside the image ("valid" filtering, as their MATLAB code's ``filter2(..., 'valid')``);
  a colour image is the mean of its channels' SSIM. It equals scikit-image's
  ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=L)`` up to float rounding (scikit-image filters with reflection, then crops the
  same border before taking the mean).
- `mask_iou`: intersection over union of two maps binarised at a threshold (0.5 for a
  salient-object mask); None where both masks are empty (undefined, like `metrics.iou`).
- `encode_mask` / `decode_mask` / `mask_at`: a reference mask (a matte binarised at 0.5) as a
  short text label (a base64 1-bit PNG), so it travels with a sample through the cached float
  outputs like any other label, and resized to a model output's height and width.

numpy and Pillow only (no onnxruntime): the records in `metrics.py` and `kinds.py` call these.
ARCHITECTURE.md, "How to add a metric".
"""

from __future__ import annotations

import base64
import io

import numpy as np

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
MASK_THRESHOLD = 0.5
MASK_PREFIX = "mask:png;base64,"


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The 1-D Gaussian of `size` taps, normalised to sum 1; its outer product with itself is
    MATLAB's ``fspecial('gaussian', size, sigma)``.

    >>> w = gaussian_window(); w.shape, round(float(w.sum()), 12), bool(w[5] == w.max())
    ((11,), 1.0, True)
    """
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """`a` [..., H, W] filtered with the separable window outer(g, g), 'valid' positions only."""
    from numpy.lib.stride_tricks import sliding_window_view

    a = sliding_window_view(a, g.size, axis=-1) @ g          # [..., H, W-k+1]
    a = np.swapaxes(a, -1, -2)
    a = sliding_window_view(a, g.size, axis=-1) @ g          # [..., W-k+1, H-k+1]
    return np.swapaxes(a, -1, -2)


def ssim_map(ref: np.ndarray, test: np.ndarray, data_range: float = 1.0, size: int = SSIM_WINDOW,
             sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The SSIM map of two [..., H, W] images (float64, valid positions: [..., H-size+1, W-size+1]).

    >>> ssim_map(np.full((12, 12), 0.5), np.full((12, 12), 0.5)).tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    x = np.asarray(ref, dtype=np.float64)
    y = np.asarray(test, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"ssim needs two images of one shape, found {x.shape} and {y.shape}")
    g = gaussian_window(size, sigma)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mx, my = _filter_valid(x, g), _filter_valid(y, g)
    vx = _filter_valid(x * x, g) - mx * mx
    vy = _filter_valid(y * y, g) - my * my
    cxy = _filter_valid(x * y, g) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def ssim(ref: np.ndarray, test: np.ndarray, data_range: float = 1.0, channel_axis: int | None = 0) -> float | None:
    """Mean SSIM of `test` against `ref`: [C, H, W] images (`channel_axis` 0, the channels'
    mean) or [H, W] (`channel_axis` None); None when the image is smaller than the window.

    >>> ssim(np.zeros((3, 16, 16)), np.zeros((3, 16, 16)))
    1.0
    >>> ssim(np.zeros((4, 4)), np.zeros((4, 4)), channel_axis=None) is None
    True
    """
    x = np.asarray(ref, dtype=np.float64)
    y = np.asarray(test, dtype=np.float64)
    if channel_axis is not None:
        x, y = np.moveaxis(x, channel_axis, 0), np.moveaxis(y, channel_axis, 0)
    if min(x.shape[-2:]) < SSIM_WINDOW:
        return None
    m = ssim_map(x, y, data_range)
    per = m.reshape(-1, m.shape[-2] * m.shape[-1]).mean(axis=1) if m.ndim > 2 else np.array([m.mean()])
    return float(f"{float(per.mean()):.10g}")


def binary(a: np.ndarray, threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """The mask of `a`: True where a value is above `threshold`."""
    return np.asarray(a) > threshold


def mask_iou(ref: np.ndarray, test: np.ndarray, threshold: float = MASK_THRESHOLD) -> float | None:
    """IoU of the two maps binarised at `threshold` (> threshold is the object); None when both
    masks are empty (nothing to overlap: undefined, left out of the mean).

    >>> mask_iou(np.array([0.9, 0.6, 0.2, 0.0]), np.array([0.9, 0.4, 0.7, 0.0]))
    0.3333333333
    >>> mask_iou(np.zeros(3), np.full(3, 0.5)) is None
    True
    """
    a, b = binary(ref, threshold), binary(test, threshold)
    if a.shape != b.shape:
        raise ValueError(f"mask_iou needs two masks of one shape, found {a.shape} and {b.shape}")
    union = int(np.count_nonzero(a | b))
    if union == 0:
        return None
    return float(f"{int(np.count_nonzero(a & b)) / union:.10g}")


def encode_mask(mask: np.ndarray) -> str:
    """A 2-D boolean mask as a text label: ``mask:png;base64,`` and a 1-bit PNG (deterministic).

    >>> m = np.array([[True, False], [False, True]])
    >>> t = encode_mask(m); t.startswith(MASK_PREFIX), decode_mask(t).tolist()
    (True, [[True, False], [False, True]])
    """
    from PIL import Image

    a = np.asarray(mask, dtype=bool)
    if a.ndim != 2:
        raise ValueError(f"a mask label is 2-D, found shape {a.shape}")
    buf = io.BytesIO()
    Image.fromarray(a.astype(np.uint8) * 255).convert("1").save(buf, format="PNG", optimize=False)
    return MASK_PREFIX + base64.b64encode(buf.getvalue()).decode("ascii")


def is_mask_label(label) -> bool:
    """Whether a sample label is an encoded mask (`encode_mask`)."""
    return isinstance(label, str) and label.startswith(MASK_PREFIX)


def decode_mask(label: str) -> np.ndarray:
    """The boolean mask of an `encode_mask` label."""
    from PIL import Image

    if not is_mask_label(label):
        raise ValueError(f"not a mask label (expected {MASK_PREFIX!r}…): {str(label)[:40]!r}")
    with Image.open(io.BytesIO(base64.b64decode(label[len(MASK_PREFIX):]))) as im:
        return np.asarray(im.convert("L")) > 127


def mask_at(label: str, height: int, width: int) -> np.ndarray:
    """The reference mask of a label resized to `height` × `width` (bilinear on 0/1, then
    binarised at 0.5): what a model output of that size is compared with. Valid when the
    preprocessing resized the whole picture to the input (no crop).

    >>> mask_at(encode_mask(np.eye(2, dtype=bool)), 4, 4).astype(int).sum(axis=1).tolist()
    [2, 2, 2, 2]
    """
    from PIL import Image

    m = decode_mask(label)
    if m.shape == (height, width):
        return m
    img = Image.fromarray(m.astype(np.float32)).resize((int(width), int(height)), Image.Resampling.BILINEAR)
    return np.asarray(img) > MASK_THRESHOLD
