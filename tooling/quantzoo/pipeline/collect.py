"""Collect: read one model's finished results back from the cache as a `publish.BuiltModel`."""

from __future__ import annotations

import json

from ..cache import Cache
from ..errors import QuantzooError
from .plan import Failure, Job, ModelState
from .store import artifact_files, artifact_paths, comparison_path, preview_path, read_artifact, read_runtimes


def collect(state: ModelState, jobs: list[Job], reg, cache: Cache):
    """The BuiltModel of one model from its jobs' stored results (None when no variant is usable).

    Variants whose results are missing, and a failed named-samples table, are added to
    `state.failures`.
    """
    from ..publish import BuiltModel, BuiltVariant

    model = state.model
    failed = {f.variant for f in state.failures}
    variants = []
    for job in jobs:
        if job.variant in failed:
            continue
        meta = read_artifact(cache, job.keys.artifact)
        cpath = comparison_path(cache, job.keys.comparison(meta["sha256"])) if meta else None
        if meta is None or cpath is None or not cpath.is_file():
            state.failures.append(Failure(model.id, job.variant, "collect",
                                          "its results are missing from the cache after the build"))
            continue
        comparison = json.loads(cpath.read_text(encoding="utf-8"))
        pv = preview_path(cache, job.keys.preview(meta["sha256"]))
        variant = next(v for v in model.variants if v.id == job.variant)
        variants.append(BuiltVariant(variant, artifact_paths(cache, job.keys.artifact)[0], meta["sha256"],
                                     meta["size"], comparison, pv if pv.is_file() else None,
                                     runtimes=read_runtimes(cache, job, meta["sha256"])[0],
                                     files=tuple(artifact_files(cache, meta))))
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
                      named=named, float_runtimes=read_runtimes(cache, jobs[0], variants[0].sha256)[1])
