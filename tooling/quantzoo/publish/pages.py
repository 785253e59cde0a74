"""The page contexts: everything the catalog, model and methodology templates show, already
formatted (strings are not escaped here: the templates do that, see `render`). Pure."""

from __future__ import annotations

import math
from typing import Any

from ..compare.metrics import METRICS, format_metric, metric, metric_label
from ..units import human_count, human_size
from ..compare.summary import excluded_note, format_summary
from .data import (BuiltModel, float_file_name, metric_mean, metric_summary, public_file, recommend, safe_href,
                   short_of_evidence, site_file, source_sha256, source_url, variant_file_name, variant_meets)
from .grid import model_grid_context
from .shapetables import shapes_context
from .autotables import auto_context


def metric_columns(bm: BuiltModel) -> list[tuple[str, str]]:
    """(output, metric) pairs any variant reports, in a stable order: threshold metric first.

    `accuracy_float` is left out: it is the same for every variant and shown once above the table.
    """
    thr = bm.model.threshold
    order = {name: i for i, name in enumerate(METRICS)}
    outputs = [o["name"] for o in bm.model.outputs]
    seen: set[tuple[str, str]] = set()
    for v in bm.variants:
        for out, metrics in (v.comparison.get("outputs") or {}).items():
            for met in metrics:
                if met != "accuracy_float":
                    seen.add((out, met))

    def key(c):
        first = 0 if c == (thr["output"], thr["metric"]) else 1
        oi = outputs.index(c[0]) if c[0] in outputs else len(outputs)
        return (first, oi, c[0], order.get(c[1], len(order)), c[1])

    return sorted(seen, key=key)


def model_context(bm: BuiltModel, artifact_base_url: str | None = None) -> dict:
    """Everything the model page template shows, already formatted (strings are not escaped here)."""
    m = bm.model
    thr = m.threshold
    rec = recommend(bm)
    cols = metric_columns(bm)
    multi_output = len({c[0] for c in cols}) > 1
    float_rel = site_file(m.id, float_file_name(m.id))
    acc_float = None
    for v in bm.variants:
        a = metric_mean(v.comparison, thr["output"], "accuracy_float")
        if a is None:
            for out in (v.comparison.get("outputs") or {}):
                a = a if a is not None else metric_mean(v.comparison, out, "accuracy_float")
        if a is not None:
            acc_float = a
            break
    rows = []
    for v in bm.variants:
        vid = v.variant.id
        rel = site_file(m.id, variant_file_name(m.id, vid))
        cells = []
        for out, met in cols:
            x = metric_mean(v.comparison, out, met)
            s = metric_summary(v.comparison, out, met)
            cells.append({"text": format_summary(met, s) if x is None or math.isfinite(x) else format_metric(met, x),
                          "title": excluded_note(met, s),
                          "sort": "" if x is None else repr(float(x)) if math.isfinite(x)
                          else ("1e308" if x > 0 else "-1e308")})
        rows.append({
            "id": vid, "mode": v.variant.mode,
            "nbits": v.variant.nbits if v.variant.nbits is not None else "mixed" if v.variant.auto else 16,
            "granularity": v.variant.granularity.replace("_", " "),
            "size": v.size, "size_text": human_size(v.size),
            "ratio": v.size / bm.float_size if bm.float_size else None,
            "cells": cells, "meets": variant_meets(thr, v), "recommended": rec is not None and rec is v,
            "href": _page_href(m.id, variant_file_name(m.id, vid), artifact_base_url),
            "file": variant_file_name(m.id, vid), "sha256": v.sha256,
            "graph": f"../netron/index.html?url=../{rel}",
            "preview": f"../files/{m.id}/preview/{vid}.png" if v.preview else None,
        })
    info = bm.info or {}
    ops = sorted((info.get("ops") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "id": m.id, "name": m.name, "task": m.task, "description": m.description,
        "card": m.card, "authors": m.authors, "citation": m.citation,
        "homepage": safe_href(m.homepage), "homepage_text": m.homepage,
        "license": m.license.get("spdx"), "license_url": safe_href(m.license.get("url")),
        "source_kind": m.source.get("kind"), "source_url": safe_href(source_url(m)),
        "source_text": source_url(m) or _source_text(m.source),
        "source_sha256": source_sha256(m), "source_fields": _source_fields(m.source),
        "inputs": m.inputs, "outputs": m.outputs,
        "preprocessing": m.preprocessing,
        "dataset": _dataset_context(bm.dataset, m.dataset),
        "parameters": info.get("parameters"), "parameters_text": human_count(info.get("parameters")),
        "opset": info.get("opset"), "ops": ops, "node_count": sum(c for _, c in ops),
        "float_size": bm.float_size, "float_size_text": human_size(bm.float_size),
        "float_sha256": bm.float_sha256, "float_file": float_file_name(m.id),
        "float_href": _page_href(m.id, float_file_name(m.id), artifact_base_url),
        "float_graph": f"../netron/index.html?url=../{float_rel}",
        "threshold": {"output": thr["output"], "metric": thr["metric"], "label": metric_label(thr["metric"]),
                      "op": "≥" if "min" in thr and thr.get("min") is not None else "≤",
                      "value": format_metric(thr["metric"], thr.get("min", thr.get("max"))),
                      "end": "lower" if "min" in thr and thr.get("min") is not None else "upper"},
        "recommended": rec.variant.id if rec else None,
        "recommended_size_text": human_size(rec.size) if rec else None,
        "short_of_evidence": [v.variant.id for v in short_of_evidence(bm)] if rec is None else [],
        "accuracy_float": format_metric("accuracy_float", acc_float) if acc_float is not None else None,
        "columns": [{"output": out, "metric": met,
                     "label": metric_label(met) + (f" ({out})" if multi_output else ""),
                     "title": metric(met).meaning} for out, met in cols],
        "variants": rows,
        "failures": bm.failures,
        "preview": ({"input": f"../files/{m.id}/preview/input.png" if bm.preview_input else None,
                     "float": f"../files/{m.id}/preview/float.png" if bm.preview_float else None}
                    if any(v.preview for v in bm.variants) and bm.grid is None else None),
        "grid": model_grid_context(bm),  # the seed's picture grid (publish/grid.py)
        "tags": m.tags,
        "public_float_file": public_file(m.id, float_file_name(m.id), artifact_base_url),
        "named": named_context(bm),
        "graph": graph_context(info.get("graph")),
        "runtimes": runtimes_context(bm),
        "shapes": shapes_context(bm),
        "auto": auto_context(bm),
        "custom_ops": custom_ops_context(bm),
    }


def custom_ops_context(bm: BuiltModel) -> list[dict]:
    """The Custom layers section: one block per custom op (class, description, parameters, the
    implementation file); the source code and the snippet are added by `render` (they read files)."""
    out = []
    for op in bm.custom_ops:
        out.append({
            "key": op.key, "op": op.op_type, "domain": op.domain, "cls": op.cls,
            "class_name": op.cls.rpartition(":")[2] if op.cls else op.op_type,
            "description": op.description, "nodes": op.nodes,
            "attributes": [(k, _plain(v)) for k, v in op.attributes.items()],
            "file": op.file, "href": "../" + site_file(bm.model.id, op.file) if op.file else None,
            "sha256": op.sha256, "size_text": human_size(op.size) if op.size is not None else None,
        })
    return out


def graph_context(summary: dict | None) -> dict | None:
    """The model page's Graph block: `inspect.graph_summary` of the float model, formatted."""
    from ..inspect import count_text, shape_text, where_text

    if not summary:
        return None

    def amounts(d: dict) -> dict:
        return {"tensors": d["tensors"], "tensors_text": count_text(d["tensors"], "tensor"),
                "elements_text": human_count(d["elements"]),
                "bytes_text": human_size(d["bytes"])}

    return {
        "ir_version": summary["ir_version"], "producer": summary["producer"],
        "opsets": ", ".join(f"{d} {v}" for d, v in summary["opsets"].items()),
        "io": [{"kind": kind, "name": v["name"], "dtype": v["dtype"], "shape": shape_text(v["shape"])}
               for kind, rows in (("input", summary["inputs"]), ("output", summary["outputs"])) for v in rows],
        "initializer_inputs": summary["initializer_inputs"],
        "locations": [{**amounts(loc), "where": where_text(loc),
                       "dtypes": ", ".join(f"{d} ×{n}" for d, n in sorted(loc["dtypes"].items()))}
                      for loc in summary["locations"]],
        "external_files": [{"file": f["file"], "tensors": f["tensors"], "bytes_text": human_size(f["bytes"])}
                           for f in summary["external_files"]],
        "selected": amounts(summary["selected"]),
        "skipped": {**amounts(summary["skipped"]),
                    "reasons": [{**amounts(r), "reason": r["reason"], "examples": ", ".join(r["examples"])}
                                for r in summary["skipped"]["reasons"]]},
        "custom_ops": summary["custom_ops"],
    }


def runtimes_context(bm: BuiltModel) -> dict | None:
    """The runtime compatibility table: one column per runtime (`runtimes.RUNTIMES` order), one
    row for the float model, then one per variant; None when nothing was measured.

    A cell is ✓ with the largest difference from onnxruntime's outputs, or ✗ with the reason.
    """
    from ..runtimes import REFERENCE, RUNTIMES

    matrices = [("float", bm.float_runtimes)] + [(v.variant.id, v.runtimes) for v in bm.variants]
    names = sorted({n for _, mx in matrices for n in mx},
                   key=lambda n: (list(RUNTIMES).index(n) if n in RUNTIMES else len(RUNTIMES), n))
    if not names:
        return None

    def cell(row: dict | None, float_row: dict | None = None) -> dict:
        if row is None:
            return {"ok": None, "text": "–", "title": "not measured"}
        if not row.get("runs"):
            reason = row.get("error") or "does not run"
            if float_row is not None and not float_row.get("runs") and float_row.get("error") == row.get("error"):
                return {"ok": False, "text": "✗ as the float model", "title": reason}  # said once, in the first row
            return {"ok": False, "text": "✗ " + reason, "title": ""}
        diff = row.get("max_abs_diff")
        text = "✓" if diff is None else f"✓ {diff:.2g}"
        return {"ok": True, "text": text + (f" ({row['error']})" if row.get("error") else ""),
                "title": "the reference" if diff is None and not row.get("error") else f"max |Δ| = {diff}"}

    return {"reference": RUNTIMES[REFERENCE].label,
            "columns": [RUNTIMES[n].label if n in RUNTIMES else n for n in names],
            "rows": [{"id": vid, "cells": [cell(mx.get(n), None if vid == "float" else bm.float_runtimes.get(n))
                                           for n in names]} for vid, mx in matrices]}


def named_context(bm: BuiltModel) -> dict | None:
    """The named-samples table: one column per photograph, one row for the float model's top label
    and probability, then one per variant (``changed`` where its top class differs from the float's)."""
    named = bm.named or {}
    models = named.get("models") or {}
    ref = models.get("float") or {}
    samples = [n for n in named.get("samples") or [] if n in ref]
    if not samples:
        return None

    def cell(p: dict | None, base: dict | None) -> dict | None:
        if p is None:
            return None
        return {"label": p["label"], "probability": f"{100 * p['probability']:.0f}%",
                "changed": base is not None and p["index"] != base["index"]}

    rows = [{"id": "float", "cells": [cell(ref[n], None) for n in samples]}]
    for v in bm.variants:
        got = models.get(v.variant.id)
        if got is not None:
            rows.append({"id": v.variant.id, "cells": [cell(got.get(n), ref[n]) for n in samples]})
    return {"output": named.get("output"), "samples": samples, "rows": rows}


def _page_href(model_id: str, name: str, artifact_base_url: str | None) -> str:
    """A download link on a model page (pages live in models/): the same file index.json names.

    >>> _page_href("m", "m-fp16.onnx", None), _page_href("m", "m-fp16.onnx", "https://cdn.example/z")
    ('../files/m/m-fp16.onnx', 'https://cdn.example/z/m/m-fp16.onnx')
    """
    if artifact_base_url:
        return public_file(model_id, name, artifact_base_url)
    return "../" + site_file(model_id, name)


def _source_text(src: dict) -> str:
    kind = src.get("kind")
    if kind == "file":
        return f"local file {src.get('path')}"
    if kind == "pypi":
        return f"{src.get('package')}=={src.get('version')}"
    return str(kind)


def _source_fields(src: dict) -> list[tuple[str, str]]:
    skip = {"kind", "sha256"}
    return [(k, v if isinstance(v, str) else _plain(v)) for k, v in src.items() if k not in skip]


def _plain(v: Any) -> str:
    import json

    return json.dumps(v, sort_keys=True, ensure_ascii=False)


def _dataset_context(ds: Any, dataset_id: str) -> dict:
    if ds is None:
        return {"id": dataset_id, "name": None, "description": None, "license": None, "license_url": None}
    return {"id": ds.id, "name": ds.name, "description": ds.description,
            "license": (ds.license or {}).get("spdx"), "license_url": safe_href((ds.license or {}).get("url"))}


# The catalog table's columns, in order: (key, header, sort type or None for a column not sorted).
# The template writes one cell per key; on a phone each row becomes a card whose cells are
# labelled with these headers (see ARCHITECTURE.md, "The catalog page").
CATALOG_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("model", "model", "text"), ("task", "task", "text"), ("float_size", "float size", "num"),
    ("parameters", "parameters", "num"), ("recommended", "recommended", "text"),
    ("recommended_size", "its size", "num"), ("ratio", "vs float", "num"),
    ("agreement", "agreement", None), ("license", "license", "text"),
)


def threshold_text(thr: dict) -> str:
    """A manifest threshold for people: the bound with its direction.

    >>> threshold_text({"output": "y", "metric": "top1_agreement", "min": 0.99})
    '≥ 99.00 %'
    >>> threshold_text({"output": "y", "metric": "cer", "max": 0.01})
    '≤ 1.00 %'
    """
    if thr.get("min") is not None:
        return "≥ " + format_metric(thr["metric"], thr["min"])
    return "≤ " + format_metric(thr["metric"], thr.get("max"))


def catalog_row(bm: BuiltModel) -> dict:
    """One row of the catalog table (one card on a phone)."""
    m = bm.model
    rec = recommend(bm)
    thr = m.threshold
    value = metric_summary(rec.comparison, thr["output"], thr["metric"]) if rec else None
    summary = format_summary(thr["metric"], value) if rec else None
    shown, _, interval = (summary or "").partition(" (")
    return {
        "id": m.id, "name": m.name, "task": m.task, "href": f"models/{m.id}.html",
        "parameters": bm.info.get("parameters"), "parameters_text": human_count(bm.info.get("parameters")),
        "float_size": bm.float_size, "float_size_text": human_size(bm.float_size),
        "recommended": rec.variant.id if rec else None,
        "recommended_size": rec.size if rec else None,
        "recommended_size_text": human_size(rec.size) if rec else None,
        "ratio": (rec.size / bm.float_size) if rec and bm.float_size else None,
        "ratio_text": f"{rec.size / bm.float_size:.3f}×" if rec and bm.float_size else None,
        # what a download costs: the recommended variant, else the float model (the size filter)
        "download_size": rec.size if rec else bm.float_size,
        "agreement_label": metric_label(thr["metric"]),
        "agreement_value": shown or None, "agreement_interval": f"({interval}" if interval else None,
        "threshold_text": threshold_text(thr),
        "license": m.license.get("spdx"), "license_url": safe_href(m.license.get("url")),
        "variants": len(bm.variants), "failed": len(bm.failures),
    }


def catalog_context(models: list[BuiltModel], failed: list | None = None) -> dict:
    """The catalog page: its rows sorted by id, the filter choices (tasks, licenses) and columns."""
    rows = [catalog_row(bm) for bm in sorted(models, key=lambda b: b.model.id)]
    tasks = sorted({r["task"] for r in rows})
    licenses = sorted({r["license"] for r in rows if r["license"]}, key=lambda x: (x.lower(), x))
    sizes = [r["float_size"] for r in rows if r["float_size"]]
    return {"rows": rows, "tasks": tasks, "licenses": licenses, "n_models": len(rows),
            "n_variants": sum(r["variants"] for r in rows),
            "columns": [{"key": k, "label": label, "type": t} for k, label, t in CATALOG_COLUMNS],
            "labels": {k: label for k, label, _ in CATALOG_COLUMNS},
            "max_size_mb": math.ceil(max(sizes) / 1e6) if sizes else 1,
            "failed": failed or []}
