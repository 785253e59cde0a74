"""The model page's "Shapes" block: each promised shape → whether every file runs there and each
variant's agreement with the float model on the evaluation data at that shape (the model's
threshold metric, with n and its 95 % interval; `pipeline.shapeeval`), and throughput by batch
size (ARCHITECTURE.md, "Flexible shapes"). Pure; absent for a model without `shapes`."""

from __future__ import annotations

from .data import BuiltModel


def _promise(accepted: dict) -> str:
    """The promise in the grammar of `quantzoo shapes --input`."""
    from ..catalog import ShapesEntry

    return ShapesEntry(accepted).describe()


def _figure(evaluation: dict, output: str | None, metric: str | None) -> tuple[str, str] | None:
    """(output, metric) shown for an evaluation: the threshold's when measured, else the first
    output's most primary metric.

    >>> _figure({"metrics": {"y": {"snr_db": {}, "iou": {}}}}, "z", "cosine")
    ('y', 'iou')
    """
    from ..compare.metrics import metric as metric_record

    ms = evaluation.get("metrics") or {}
    if output in ms and metric in ms[output]:
        return output, metric
    for out, found in ms.items():
        ranked = sorted(found, key=lambda m: (metric_record(m).primary is None, metric_record(m).primary or 0, m))
        if ranked:
            return out, ranked[0]
    return None


def _evaluated(evaluation: dict, output: str | None, metric: str | None) -> tuple[str, str, str] | None:
    """(figure, 'n=…, 95 % …–…', title) of a shape's evaluation, or None without one.

    >>> s = {"mean": 0.96875, "std": 0.17, "n": 32, "ci95": [0.8428, 0.9945]}
    >>> _evaluated({"n": 32, "batch": 32, "resized": True, "metrics": {"y": {"top1_agreement": s}}}, "y", "top1_agreement")[:2]
    ('96.88 %', 'n=32, 95 % 84.28–99.45 %')
    """
    from ..compare.metrics import metric as metric_record

    picked = _figure(evaluation, output, metric)
    if picked is None:
        return None
    out, name = picked
    s, record = evaluation["metrics"][out][name], metric_record(name)
    ci = s.get("ci95")
    detail = f"n={s.get('n')}" + (f", 95 % {record.format(ci[0]).split(' ')[0]}–{record.format(ci[1])}" if ci else "")
    where = ("the evaluation data preprocessed at this size" if evaluation.get("resized")
             else "the evaluation data at the preprocessing's own size (the variant's figures above)")
    others = ", ".join(f"{metric_record(m).label} {metric_record(m).format(x.get('mean'))}"
                       for o, ms in evaluation["metrics"].items() for m, x in ms.items() if (o, m) != (out, name))
    title = f"{record.label} on {where}, batch {evaluation.get('batch')}" + (f"; {others}" if others else "")
    return record.format(s.get("mean")), detail, title


def _cell(row: dict | None, output: str | None = None, metric: str | None = None) -> dict:
    """One shape × file: ✓ with the agreement on the evaluation data at that shape (else the
    top-1 agreement on random inputs), ✗ with why.

    >>> _cell({"runs": True, "top1_agreement": 0.984375, "max_abs_diff": 0.01})["text"]
    '✓ 98.44 %'
    >>> _cell({"runs": False, "error": "bad"})["title"], _cell(None)["text"]
    ('bad', '–')
    """
    if row is None:
        return {"text": "–", "title": "not checked", "ok": None, "detail": None}
    if not row.get("runs"):
        return {"text": "✗", "title": row.get("error") or "does not run", "ok": False, "detail": None}
    found = _evaluated(row["evaluation"], output, metric) if row.get("evaluation") else None
    if found is not None:
        text, detail, title = found
        return {"text": f"✓ {text}", "title": title, "ok": True, "detail": detail}
    top, diff = row.get("top1_agreement"), row.get("max_abs_diff")
    text = "✓" + (f" {top * 100:.2f} %" if top is not None else "")
    return {"text": text, "title": f"on random inputs: max |difference| from the float model {diff:.3g}"
            if diff is not None else "runs", "ok": True, "detail": None}


def _threshold(bm: BuiltModel) -> tuple[str | None, str | None]:
    thr = getattr(bm.model, "threshold", None) or {}
    return thr.get("output"), thr.get("metric")


def shapes_context(bm: BuiltModel) -> dict | None:
    """The shapes table (rows: promised shapes; columns: the float model, then each variant) and
    the throughput table (rows: files; columns: batch sizes), or None without shape results."""
    from ..compare.metrics import metric_label

    files = [("float", bm.float_shapes)] + [(v.variant.id, v.shapes) for v in bm.variants]
    files = [(fid, s) for fid, s in files if s]
    if not files:
        return None
    output, metric = _threshold(bm)
    shapes = list(dict.fromkeys(r["shape"] for _, s in files for r in s.get("verified", [])))
    by_file = {fid: {r["shape"]: r for r in s.get("verified", [])} for fid, s in files}
    batches = sorted({b for _, s in files for b in (s.get("throughput") or {})}, key=int)
    evaluated = [r["evaluation"] for _, s in files for r in s.get("verified", []) if r.get("evaluation")]
    picked = _figure(evaluated[0], output, metric) if evaluated else None
    return {
        "accepted": _promise(files[0][1].get("accepted") or {}),
        "columns": [fid for fid, _ in files],
        "rows": [{"shape": shape, "cells": [_cell(by_file[fid].get(shape), output, metric) for fid, _ in files]}
                 for shape in shapes],
        "metric": metric_label(picked[1]) if picked else None,
        "resized": any(e.get("resized") for e in evaluated),
        "batches": batches,
        "throughput": [{"id": fid, "cells": [f"{(s.get('throughput') or {})[b]:,.0f}"
                                             if b in (s.get("throughput") or {}) else "–" for b in batches]}
                       for fid, s in files],
    }
