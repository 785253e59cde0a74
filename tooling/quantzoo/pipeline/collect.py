"""Collect: read one model's finished results back from the cache as a `publish.BuiltModel`."""

from __future__ import annotations

import json
from pathlib import Path

from ..cache import Cache, sha256_file
from ..errors import QuantzooError
from .grid import is_grid_task, read_grid
from .plan import Failure, Job, ModelState
from .store import (artifact_files, artifact_paths, comparison_path, preview_path, read_artifact, read_runtimes,
                    read_shapes)


def collect(state: ModelState, jobs: list[Job], reg, cache: Cache):
    """The BuiltModel of one model from its jobs' stored results (None when no variant is usable).

    Variants whose results are missing, and a failed named-samples table, are added to
    `state.failures`.
    """
    from ..publish import BuiltModel, BuiltVariant

    model = state.model
    from .flexible import shape_failure

    failed = {f.variant for f in state.failures}
    variants = []
    float_shapes = None
    for job in jobs:
        if job.variant in failed:
            continue
        meta = read_artifact(cache, job.keys.artifact)
        cpath = comparison_path(cache, job.keys.comparison(meta["sha256"])) if meta else None
        if meta is None or cpath is None or not cpath.is_file():
            state.failures.append(Failure(model.id, job.variant, "collect",
                                          "its results are missing from the cache after the build"))
            continue
        shapes, float_shapes = read_shapes(cache, job, meta["sha256"])
        if job.shapes and (shapes is None or float_shapes is None or shape_failure(shapes)):
            state.failures.append(Failure(model.id, job.variant, "shapes", shape_failure(shapes) or
                                          "its shape checks are missing from the cache after the build"))
            continue
        comparison = json.loads(cpath.read_text(encoding="utf-8"))
        pv = preview_path(cache, job.keys.preview(meta["sha256"]))
        variant = next(v for v in model.variants if v.id == job.variant)
        variants.append(BuiltVariant(variant, artifact_paths(cache, job.keys.artifact)[0], meta["sha256"],
                                     meta["size"], comparison, pv if pv.is_file() else None,
                                     runtimes=read_runtimes(cache, job, meta["sha256"])[0],
                                     files=tuple(artifact_files(cache, meta)), shapes=shapes,
                                     auto={k: meta.get(k) for k in ("recipe", "sensitivity", "report")}
                                     if meta.get("recipe") else None))
    if not variants:
        return None
    pin, pfl = preview_path(cache, jobs[0].keys.float_preview, "input"), preview_path(cache, jobs[0].keys.float_preview)
    named = None
    if model.task == "classification" and model.samples:  # top labels on the manifest's named photos
        from ..compare.named import named_predictions

        try:
            named = named_predictions(model, state.float_path, {v.variant.id: v.path for v in variants}, reg, cache)
        except Exception as e:  # the page still publishes without the table
            state.failures.append(Failure(model.id, None, "named samples",
                                          str(e) if isinstance(e, QuantzooError) else f"{type(e).__name__}: {e}"))
    return BuiltModel(model=model, float_path=state.float_path, float_sha256=state.float_sha256,
                      float_size=state.float_path.stat().st_size, info=state.info or {}, variants=variants,
                      failures=list(state.failures), preview_input=pin if pin.is_file() else None,
                      preview_float=pfl if pfl.is_file() else None, dataset=reg.datasets.get(model.dataset),
                      named=named, float_runtimes=read_runtimes(cache, jobs[0], variants[0].sha256)[1],
                      custom_ops=custom_ops(model, state.float_path, cache), float_shapes=float_shapes,
                      grid=read_grid(cache, jobs, variants) if is_grid_task(model.task) else None)


def _json_value(v):
    """An attribute value as JSON data: text for bytes, lists for repeated values, a type name
    for tensors and graphs (Python ops cannot read those anyway).

    >>> _json_value(b"bilinear"), _json_value([1, 2]), _json_value(2.5)
    ('bilinear', [1, 2], 2.5)
    """
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    return f"<{type(v).__name__}>"


def custom_ops(model, float_path: Path, cache: Cache) -> tuple:
    """The custom ops of the float model, each with the manifest's class and its implementation
    file fetched into `cache` (a folder source: the class's module file inside it)."""
    from ..customops import custom_nodes
    from ..publish import BuiltCustomOp

    nodes = custom_nodes(float_path)
    if not nodes:
        return ()
    from ..fetch import fetch_source

    out = []
    for key in dict.fromkeys(n.key for n in nodes):  # graph order, once per op
        mine = [n for n in nodes if n.key == key]
        spec = (getattr(model, "custom_ops", None) or {}).get(key) or {}
        cls = spec.get("class")
        path = fetch_source(spec["source"], cache, base_dir=model.path.parent if model.path else None) \
            if spec.get("source") else None
        if path is not None and path.is_dir():
            path = path / (cls.partition(":")[0].replace(".", "/") + ".py")
            path = path if path.is_file() else None
        out.append(BuiltCustomOp(mine[0].domain, mine[0].op_type, cls, mine[0].description,
                                 {k: _json_value(v) for k, v in sorted(mine[0].attributes.items())}, len(mine), path,
                                 sha256_file(path) if path else None, path.stat().st_size if path else None))
    return tuple(out)
