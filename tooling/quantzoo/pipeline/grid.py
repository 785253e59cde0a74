"""The picture grid in the build (tasks whose preview is ``"grid"``; the page side is
`publish.grid`): the worker's preview stage draws, per variant, its picture of each grid row and
the per-picture metrics against the float model's; the float model's column and the inputs are
drawn once. Everything is cached under ``derived/previews/`` beside the output-map previews and
keyed the same way (`keys.preview_key`), PNGs written without timestamps: a rerun gives the same
bytes. The rows are the manifest's ``samples`` found in the data, else the first `DEFAULT_ROWS`.

Files per preview key K: ``K-grid<r>.png`` (a picture per row), ``K-grid-input<r>.png`` (the
float key only: the inputs), and ``K-grid.json`` (rows and per-picture metrics), written before
``K.png`` (the row-0 picture, which is also the ordinary preview): a present ``K.png`` means a
complete grid (`store.is_done`).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ..cache import Cache, atomic_path, write_json
from .plan import JobKeys, map_output
from .previews import input_png, sample_feed, sample_reference
from .store import preview_path

DEFAULT_ROWS = 4
CELL_SIDE = 128      # the pictures' longer side in the grid, pixels (the page shows them at this size)


def is_grid_task(task: str | None) -> bool:
    """Whether a model of `task` gets the picture grid instead of the one-input previews.

    >>> is_grid_task("image-to-image"), is_grid_task("text-detection"), is_grid_task(None)
    (True, False, False)
    """
    from ..compare.tasks import TASKS

    record = TASKS.get(task) if task else None
    return record is not None and record.preview == "grid"


def grid_json_path(cache: Cache, key: str) -> Path:
    return cache.derived("previews", key + "-grid", ".json")


def grid_rows(keys: list[str], samples: list[str] | None) -> list[int]:
    """The sample indices of the grid's rows: each of `samples` found (a key equal to it or
    ending in ``/`` + it), in that order; without any, the first `DEFAULT_ROWS`.

    >>> grid_rows(["a.png#s-1", "b.png#s-1", "d/c.png"], ["c.png", "zz", "a.png#s-1"]), grid_rows(["x", "y"], None)
    ([2, 0], [0, 1])
    """
    out = []
    for name in samples or []:
        for i, k in enumerate(keys):
            if (k == name or k.endswith("/" + name)) and i not in out:
                out.append(i)
                break
    return out or list(range(min(DEFAULT_ROWS, len(keys))))


def picture_png(y: np.ndarray, side: int = CELL_SIDE) -> bytes:
    """One output picture as PNG bytes: [3, H, W] RGB or [1, H, W] grey, values 0..1 to 0..255
    (clipped), scaled so its longer side is at most `side` (bilinear). Deterministic.

    >>> len(picture_png(np.zeros((3, 4, 4)))) > 0
    True
    """
    from PIL import Image

    a = np.asarray(y, dtype=np.float64)
    a = a[0] if a.ndim == 3 and a.shape[0] == 1 else np.transpose(a, (1, 2, 0)) if a.ndim == 3 else a
    img = Image.fromarray(np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8))
    scale = side / max(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def picture_metrics(kind: str, ref: np.ndarray, y: np.ndarray) -> dict:
    """One picture's figures against the float model's: PSNR, and SSIM (images) or mask IoU (masks).

    >>> picture_metrics("image", np.full((3, 16, 16), 0.5), np.full((3, 16, 16), 0.5))["ssim"]
    1.0
    """
    from ..compare import imagemetrics as IM
    from ..compare.metrics import psnr_db

    out = {"psnr_db": psnr_db(ref, y)}
    if kind == "image":
        out["ssim"] = IM.ssim(ref, y, channel_axis=0 if np.ndim(ref) == 3 else None)
    elif kind == "mask":
        out["mask_iou"] = IM.mask_iou(ref, y)
    return out


def _write(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _picture_input(feed: dict) -> np.ndarray | None:
    """The 4-D picture among a sample's inputs (a style model's second input is a vector)."""
    pics = [v for v in feed.values() if np.ndim(v) == 4]
    return pics[0] if len(pics) == 1 else None


def _sample_of(batches: list, index: int) -> np.ndarray:
    """Sample `index` of a list of batches (one output's reduced batches)."""
    start = 0
    for batch in batches:
        if index < start + len(batch):
            return np.asarray(batch[index - start])
        start += len(batch)
    raise IndexError(index)


def draw_grid(model, ev, keys: JobKeys, artifact_path: Path, artifact_sha256: str, cache: Cache,
              outputs: list | None = None) -> None:
    """Store one variant's grid column, and the float model's column and inputs if missing.
    `outputs` are the artifact's outputs on every sample when the comparison just computed them
    (`Comparison.outputs`); otherwise the artifact runs on the grid's rows."""
    import onnxruntime as ort

    from ..customops import run, session_options

    out = map_output(model)
    j = ev.output_names.index(out["name"]) if out and out["name"] in ev.output_names else 0
    sample_keys = [s.key for s in ev.samples]
    rows = grid_rows(sample_keys, model.samples)
    fkey, vkey = keys.float_preview, keys.preview(artifact_sha256)
    refs = [sample_reference(ev, j, i) for i in rows]
    if not preview_path(cache, fkey).is_file():
        for r, i in enumerate(rows):
            x = _picture_input(sample_feed(ev, i))
            png = input_png(x, model.preprocessing) if x is not None else None
            if png is not None:
                _write(preview_path(cache, fkey, f"grid-input{r}"), png)
            _write(preview_path(cache, fkey, f"grid{r}"), picture_png(refs[r]))
        write_json(grid_json_path(cache, fkey), {"output": ev.output_names[j], "rows": [sample_keys[i] for i in rows]})
        _write(preview_path(cache, fkey), picture_png(refs[0]))
    sess = None
    if outputs is None:
        so = session_options(ev.custom_ops, artifact_path) if ev.custom_ops else None
        sess = ort.InferenceSession(str(artifact_path), so, providers=["CPUExecutionProvider"])
    figures = []
    for r, i in enumerate(rows):
        y = (_sample_of(outputs[j], i) if sess is None
             else np.asarray(run(sess, [ev.output_names[j]], sample_feed(ev, i))[0][0]))
        _write(preview_path(cache, vkey, f"grid{r}"), picture_png(y))
        figures.append(picture_metrics(ev.kinds[j], refs[r], y))
        if r == 0:
            first = y
    write_json(grid_json_path(cache, vkey), {"output": ev.output_names[j], "rows": [sample_keys[i] for i in rows],
                                             "metrics": figures})
    _write(preview_path(cache, vkey), picture_png(first))


def read_grid(cache: Cache, jobs: list, variants: list):
    """The `publish.grid.PictureGrid` of a model from the cache (None when its float column is
    missing); `variants` are the built variants (their artifact sha256 names the column)."""
    from ..publish.grid import GridColumn, PictureGrid

    if not jobs:
        return None
    fkey = jobs[0].keys.float_preview
    try:
        head = json.loads(grid_json_path(cache, fkey).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    n = len(head["rows"])
    inputs = tuple(p if p.is_file() else None for p in (preview_path(cache, fkey, f"grid-input{r}") for r in range(n)))
    floats = tuple(preview_path(cache, fkey, f"grid{r}") for r in range(n))
    by_variant = {j.variant: j for j in jobs}
    columns = []
    for v in variants:
        key = by_variant[v.variant.id].keys.preview(v.sha256)
        try:
            doc = json.loads(grid_json_path(cache, key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        pictures = tuple(preview_path(cache, key, f"grid{r}") for r in range(n))
        if doc.get("rows") == head["rows"] and all(p.is_file() for p in pictures):
            columns.append(GridColumn(v.variant.id, pictures, tuple(doc.get("metrics") or ())))
    return PictureGrid(head.get("output", ""), tuple(head["rows"]), inputs, floats, tuple(columns))
