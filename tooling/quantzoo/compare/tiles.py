"""Pictures tiled from an image stack: a dataset that ships its images as one array (scikit-image's
LFW subset: 200 face crops of 25×25 in one .npy) becomes photographs a detector can read — each
picture a grid of the stack's images, enlarged, on a grey ground (ARCHITECTURE.md, "Count ratios").

The ``augmented-images`` adapter (`photos.augmented_images`) reads its ``tiles`` list here; each
picture is then one photo to it (its own cluster, in the same views as the other photos). Keys are
``<stack>/<first>-<last>`` (the stack's image indices, 0-based, inclusive).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import QuantzooError

GROUND = 128  # the grey between the tiles


def tiled_pictures(root: Path, specs: list | None) -> list[tuple[str, object]]:
    """(key, RGB Pillow image) for every picture of every stack in `specs` (the adapter's
    ``tiles``: ``{stack, take, grid: [rows, cols], scale, gap}``), in manifest then stack order."""
    out = []
    for spec in specs or []:
        stack = _read_stack(Path(root), spec)
        rows, cols = _grid(spec)
        per = rows * cols
        for first in range(0, len(stack), per):
            part = stack[first:first + per]
            out.append((f"{spec['stack']}/{first:03d}-{first + len(part) - 1:03d}",
                        tile(part, cols, int(spec.get("scale", 1)), int(spec.get("gap", 0)))))
    return out


def stack_files(specs: list | None) -> list[str]:
    """The stack files `specs` read (the adapter leaves them out of its photos)."""
    return [str(s["stack"]) for s in specs or []]


def tile(images: np.ndarray, cols: int, scale: int = 1, gap: int = 0):
    """One RGB picture of `images` ([n, h, w] grey or [n, h, w, 3], uint8) in rows of `cols`, each
    enlarged `scale` times (bicubic), `gap` px of grey around and between them.

    >>> import numpy as np
    >>> pic = tile(np.full((3, 2, 2), 255, np.uint8), cols=2, scale=2, gap=1)
    >>> pic.size, pic.mode, pic.getpixel((0, 0)), pic.getpixel((1, 1)), pic.getpixel((6, 6))
    ((11, 11), 'RGB', (128, 128, 128), (255, 255, 255), (128, 128, 128))
    """
    from PIL import Image

    n, h, w = images.shape[:3]
    rows = -(-n // cols)
    th, tw = h * scale, w * scale
    canvas = Image.new("RGB", (cols * tw + (cols + 1) * gap, rows * th + (rows + 1) * gap), (GROUND,) * 3)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        tile_img = Image.fromarray(img).convert("RGB").resize((tw, th), Image.BICUBIC)
        canvas.paste(tile_img, (gap + c * (tw + gap), gap + r * (th + gap)))
    return canvas


def _read_stack(root: Path, spec: dict) -> np.ndarray:
    """The first ``take`` images of ``stack`` (a .npy under `root`) as uint8; floats are read as
    values in [0, 1]. A missing file or another shape is a QuantzooError naming what was found."""
    path = root / str(spec.get("stack", ""))
    if not spec.get("stack") or not path.is_file():
        found = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        raise QuantzooError(f"tiles: stack {spec.get('stack')!r} is not a file of the dataset at {root} "
                            f"(found {found[:8]}); name an .npy file of the dataset's source")
    a = np.load(path, allow_pickle=False)
    if a.ndim not in (3, 4) or (a.ndim == 4 and a.shape[-1] != 3):
        raise QuantzooError(f"tiles: {path} must hold images [N, H, W] (grey) or [N, H, W, 3] (RGB), "
                            f"found shape {list(a.shape)}")
    take = int(spec.get("take", len(a)))
    a = a[:take]
    if a.dtype.kind == "f":
        a = np.clip(np.rint(a * 255.0), 0, 255)
    return a.astype(np.uint8)


def _grid(spec: dict) -> tuple[int, int]:
    grid = spec.get("grid") or [1, 1]
    try:
        rows, cols = (int(x) for x in grid)
    except (TypeError, ValueError):
        rows = cols = 0
    if rows < 1 or cols < 1:
        raise QuantzooError(f"tiles: grid must be [rows, cols] of positive integers, found {grid!r}")
    return rows, cols
