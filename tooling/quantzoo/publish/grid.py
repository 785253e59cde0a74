"""The seed's picture grid on a model page (tasks whose preview is ``"grid"``, `compare.tasks`):
a few evaluation samples in rows, the input, the float model's picture and each variant's in
columns, each picture with its own PSNR and SSIM (or mask IoU) against the float model's, each
column headed by its variant, file size and dataset-wide PSNR.

`PictureGrid` is what the pipeline hands over (`pipeline.grid.read_grid` builds it from the
cache); `grid_files` says where its PNGs go in the site and `grid_context` what the template
lays out. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..compare.metrics import format_metric, metric_label
from ..compare.summary import format_summary
from .data import metric_summary
from ..units import human_size

# per-picture figures, in the order a cell shows them (those a grid has)
CELL_METRICS = ("psnr_db", "ssim", "mask_iou")


@dataclass(frozen=True)
class GridColumn:
    """One variant's pictures, one per row, with their per-picture metrics."""

    variant: str
    pictures: tuple[Path, ...]
    metrics: tuple[dict, ...]     # per row: {"psnr_db": …, "ssim": …} against the float picture


@dataclass(frozen=True)
class PictureGrid:
    """The grid of one model: row keys, the input and float pictures, and a column per variant."""

    output: str
    rows: tuple[str, ...]                 # sample keys
    inputs: tuple[Path | None, ...]
    floats: tuple[Path, ...]
    columns: tuple[GridColumn, ...]


def grid_files(model_id: str, grid: PictureGrid) -> list[tuple[str, Path]]:
    """(site path, file) of every picture of `grid`, under ``files/<id>/grid/``.

    >>> g = PictureGrid("y", ("a",), (Path("i.png"),), (Path("f.png"),), (GridColumn("fp16", (Path("v.png"),), ({},)),))
    >>> [name for name, _ in grid_files("m", g)]
    ['files/m/grid/input-0.png', 'files/m/grid/float-0.png', 'files/m/grid/fp16-0.png']
    """
    out = []
    for r in range(len(grid.rows)):
        if grid.inputs[r] is not None:
            out.append((f"files/{model_id}/grid/input-{r}.png", grid.inputs[r]))
        out.append((f"files/{model_id}/grid/float-{r}.png", grid.floats[r]))
    for col in grid.columns:
        out += [(f"files/{model_id}/grid/{col.variant}-{r}.png", p) for r, p in enumerate(col.pictures)]
    return out


def row_label(key: str) -> str:
    """A row's sample key for people: ``astronaut.png#style-19`` → ``astronaut.png, style 19``.

    >>> row_label("astronaut.png#style-19"), row_label("photos/plant.jpg")
    ('astronaut.png, style 19', 'plant.jpg')
    """
    photo, _, view = key.partition("#")
    name = photo.rsplit("/", 1)[-1]
    return f"{name}, {view.replace('-', ' ')}" if view else name


def model_grid_context(bm) -> dict | None:
    """`grid_context` of a `data.BuiltModel` (None without a grid): sizes and the dataset-wide
    PSNR with its interval from its variants' comparisons."""
    if getattr(bm, "grid", None) is None:
        return None
    sizes = {"float": bm.float_size, **{v.variant.id: v.size for v in bm.variants}}
    psnr = {v.variant.id: format_summary("psnr_db", s) for v in bm.variants
            if (s := metric_summary(v.comparison, bm.grid.output, "psnr_db")) is not None}
    return grid_context(bm.model.id, bm.grid, sizes, psnr)


def grid_context(model_id: str, grid: PictureGrid | None, sizes: dict[str, int], psnr: dict[str, str]) -> dict | None:
    """The template's view of `grid`: header cells (variant, size, dataset-wide PSNR as
    formatted in `psnr`) and rows of pictures with their captions; the float column's size is
    ``sizes["float"]``.

    >>> g = PictureGrid("y", ("a.png#style-1",), (None,), (Path("f.png"),),
    ...                 (GridColumn("linear-8", (Path("v.png"),), ({"psnr_db": 41.23, "ssim": 0.99871},)),))
    >>> c = grid_context("m", g, {"float": 2048, "linear-8": 1024}, {"linear-8": "40.0 dB (39.0–41.0, n=8)"})
    >>> [h["label"] for h in c["columns"]], c["columns"][1]["size"], c["rows"][0]["cells"][1]["caption"]
    (['float', 'linear-8'], '1.02 kB', 'PSNR 41.2 dB, SSIM 0.99871')
    """
    if grid is None or not grid.rows:
        return None
    base = f"../files/{model_id}/grid"
    has_input = any(p is not None for p in grid.inputs)
    columns = ([{"label": "input", "size": None, "psnr": None}] if has_input else [])
    columns.append({"label": "float", "size": human_size(sizes.get("float")), "psnr": None})
    for col in grid.columns:
        columns.append({"label": col.variant, "size": human_size(sizes.get(col.variant)), "psnr": psnr.get(col.variant)})
    rows = []
    for r, key in enumerate(grid.rows):
        cells = ([{"src": f"{base}/input-{r}.png", "alt": f"input {key}", "caption": ""}] if has_input else [])
        cells.append({"src": f"{base}/float-{r}.png", "alt": f"float output on {key}", "caption": "reference"})
        for col in grid.columns:
            vals = col.metrics[r] if r < len(col.metrics) else {}
            caption = ", ".join(f"{metric_label(k)} {format_metric(k, vals[k])}" for k in CELL_METRICS if k in vals)
            cells.append({"src": f"{base}/{col.variant}-{r}.png", "alt": f"{col.variant} output on {key}",
                          "caption": caption})
        rows.append({"label": row_label(key), "cells": cells})
    return {"output": grid.output, "columns": columns, "rows": rows}
