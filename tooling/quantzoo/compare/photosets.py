"""Photographs paired with something else: a style index (style-transfer models) or a reference
matte (salient-object models). The dataset adapters ``styled-photos`` and ``matted-photos`` in
`datasets.DATASET_ADAPTERS` read the photos and hand them here; these functions return plain
``(key, data, label)`` rows (deterministic: photos in the given order, styles in manifest order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import QuantzooError
from .imagemetrics import MASK_THRESHOLD, encode_mask


def style_key(photo: str, style: int) -> str:
    """The sample key of one photo in one style: ``<photo>#style-<i>``.

    >>> style_key("astronaut.png", 19)
    'astronaut.png#style-19'
    """
    return f"{photo}#style-{int(style)}"


def styled_rows(photos: list[tuple[str, Any]], params: dict) -> list[tuple[str, dict, None]]:
    """Every photo in each style of ``styles`` (style indices; default [0]): the data is
    ``{"image": photo, "style": i}``, read by the ``styled-image`` preprocessor.

    >>> [k for k, _, _ in styled_rows([("a.png", None), ("b.png", None)], {"styles": [3, 7]})]
    ['a.png#style-3', 'a.png#style-7', 'b.png#style-3', 'b.png#style-7']
    """
    styles = params.get("styles")
    styles = [0] if styles is None else list(styles)
    if not styles or not all(isinstance(s, int) and s >= 0 for s in styles):
        raise QuantzooError(f"styled-photos: params.styles must be a list of style indices (integers >= 0), "
                            f"found {params.get('styles')!r}")
    return [(style_key(key, s), {"image": img, "style": int(s)}, None) for key, img in photos for s in styles]


def matte_label(path: Path) -> str:
    """A matte file (8-bit alpha, or any picture read as grey) binarised at 0.5, as a label."""
    from PIL import Image

    with Image.open(path) as im:
        alpha = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
    return encode_mask(alpha > MASK_THRESHOLD)


def matted_rows(root: Path, photos: list[tuple[str, Any]], params: dict) -> list[tuple[str, Any, str | None]]:
    """Every photo, labelled with its reference matte where ``mattes`` ({photo: matte file},
    both relative to the dataset root) names one; the others are unlabelled.

    >>> import tempfile, pathlib; from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp()); Image.new("L", (4, 2), 255).save(d / "m.png")
    >>> rows = matted_rows(d, [("p.jpg", None), ("q.jpg", None)], {"mattes": {"p.jpg": "m.png"}})
    >>> [(k, y is not None) for k, _, y in rows]
    [('p.jpg', True), ('q.jpg', False)]
    """
    mattes = params.get("mattes") or {}
    keys = {k for k, _ in photos}
    for photo, matte in mattes.items():
        if photo not in keys:
            raise QuantzooError(f"matted-photos: params.mattes names photo {photo!r}, which is not among the "
                                f"dataset's photos ({', '.join(sorted(keys))}); check include and the path")
        if not (Path(root) / matte).is_file():
            raise QuantzooError(f"matted-photos: the matte {matte!r} of {photo!r} is not in the dataset folder "
                                f"{root}; give its path relative to the dataset root")
    return [(key, img, matte_label(Path(root) / mattes[key]) if key in mattes else None) for key, img in photos]
