"""The model page's "Shapes" block: each promised shape → whether every file runs there and its
top-1 agreement with the float model, and throughput by batch size (ARCHITECTURE.md,
"Flexible shapes"). Pure; absent for a model without `shapes`."""

from __future__ import annotations

from .data import BuiltModel


def _promise(accepted: dict) -> str:
    """The promise in the grammar of `quantzoo shapes --input`."""
    from ..catalog import ShapesEntry

    return ShapesEntry(accepted).describe()


def _cell(row: dict | None) -> dict:
    """One shape × file: ✓ with the top-1 agreement (or the largest difference), ✗ with why.

    >>> _cell({"runs": True, "top1_agreement": 0.984375, "max_abs_diff": 0.01})["text"]
    '✓ 98.44 %'
    >>> _cell({"runs": False, "error": "bad"})["title"], _cell(None)["text"]
    ('bad', '–')
    """
    if row is None:
        return {"text": "–", "title": "not checked", "ok": None}
    if not row.get("runs"):
        return {"text": "✗", "title": row.get("error") or "does not run", "ok": False}
    top, diff = row.get("top1_agreement"), row.get("max_abs_diff")
    text = "✓" + (f" {top * 100:.2f} %" if top is not None else "")
    return {"text": text, "title": f"max |difference| from the float model {diff:.3g}" if diff is not None
            else "runs", "ok": True}


def shapes_context(bm: BuiltModel) -> dict | None:
    """The shapes table (rows: promised shapes; columns: the float model, then each variant) and
    the throughput table (rows: files; columns: batch sizes), or None without shape results."""
    files = [("float", bm.float_shapes)] + [(v.variant.id, v.shapes) for v in bm.variants]
    files = [(fid, s) for fid, s in files if s]
    if not files:
        return None
    shapes = list(dict.fromkeys(r["shape"] for _, s in files for r in s.get("verified", [])))
    by_file = {fid: {r["shape"]: r for r in s.get("verified", [])} for fid, s in files}
    batches = sorted({b for _, s in files for b in (s.get("throughput") or {})}, key=int)
    return {
        "accepted": _promise(files[0][1].get("accepted") or {}),
        "columns": [fid for fid, _ in files],
        "rows": [{"shape": shape, "cells": [_cell(by_file[fid].get(shape)) for fid, _ in files]} for shape in shapes],
        "batches": batches,
        "throughput": [{"id": fid, "cells": [f"{(s.get('throughput') or {})[b]:,.0f}"
                                             if b in (s.get("throughput") or {}) else "–" for b in batches]}
                       for fid, s in files],
    }
