"""Augmentation: deterministic views of a photograph (rotate, crop, mirror, shrink).

The ``augmented-images`` dataset adapter (`photos.augmented_images`) applies a fixed grid of
these views to every photo, so a few photographs give many samples.
"""

from __future__ import annotations

from ..errors import QuantzooError


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


def view_tag(fraction: float, anchor: str, flip: bool, angle: float) -> str:
    """The part of a sample key that names a view ('' for the unchanged photo).

    >>> view_tag(0.8, "top-left", True, -8), view_tag(1.0, "center", False, 0)
    ('crop0.8-top-left+flip+rot-8', '')
    """
    parts = []
    if float(fraction) != 1.0:
        parts.append(f"crop{float(fraction):g}-{anchor}")
    if flip:
        parts.append("flip")
    if angle:
        parts.append(f"rot{float(angle):+g}")
    return "+".join(parts)

