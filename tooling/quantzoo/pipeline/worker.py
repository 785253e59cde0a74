"""One job in a worker: make sure one model × variant has its artifact, comparison, runtime
compatibility matrices (the artifact's and its float model's), shape checks (a model with
`shapes`) and previews in the cache. Runs in a worker process (or in-process with ``--jobs 1``); everything it needs
comes in the `Job`, everything it did goes back in the `JobResult`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .. import __version__
from ..cache import Cache, atomic_path, key_of, sha256_file, write_json
from ..errors import QuantzooError
from .plan import Failure, Job, JobResult
from .grid import draw_grid, is_grid_task
from .previews import draw_previews
from .store import (artifact_data_name, artifact_paths, comparison_path, compat_keys, preview_path, read_artifact,
                    runtimes_path, shapes_keys, shapes_path)

# per worker process: loaded registries, and the prepared evaluations of the last few models
_REGISTRIES: dict[str, object] = {}
_EVALUATIONS: dict[tuple, object] = {}
_KEEP_EVALUATIONS = 4


def reset() -> None:
    """Forget loaded manifests and evaluations (an in-process build must see its own manifests)."""
    _REGISTRIES.clear()
    _EVALUATIONS.clear()


def _registry(root: str):
    from ..registry import load_registry

    reg = _REGISTRIES.get(root)
    if reg is None:
        reg = _REGISTRIES[root] = load_registry(root)
    return reg


def _evaluation(model, job: Job, reg, cache: Cache):
    """The prepared comparison data of a model, kept for the life of the worker process."""
    from ..compare import prepare

    key = (model.id, job.float_sha256, key_of(job.keys.identity))
    ev = _EVALUATIONS.pop(key, None)
    if ev is None:
        ev = prepare(Path(job.float_path), None, model=model, registry=reg, cache=cache)
    _EVALUATIONS[key] = ev  # most recently used last
    while len(_EVALUATIONS) > _KEEP_EVALUATIONS:  # evaluations hold preprocessed batches: keep a few
        _EVALUATIONS.pop(next(iter(_EVALUATIONS)))
    return ev


def _quantize(model, variant, job: Job, cache: Cache, reg=None, evaluation=None) -> dict:
    from ..quantize import quantize_file

    key = job.keys.artifact
    onnx_path, meta_path = artifact_paths(cache, key)
    with cache.lock(f"artifact-{key[:24]}"):
        meta = read_artifact(cache, key)
        if meta is not None:
            return meta
        with atomic_path(onnx_path) as tmp:
            extra = {}
            if variant.auto:  # a scheme per tensor, chosen on the calibration split
                from .autovariant import quantize_auto

                report, extra = quantize_auto(model, variant, job, cache, tmp, reg, evaluation,
                                              artifact_data_name(job))
            else:
                report = quantize_file(Path(job.float_path), tmp, mode=variant.mode, nbits=variant.nbits,
                                       granularity=variant.granularity, block_size=variant.block_size,
                                       group_size=variant.group_size, lut_function=variant.lut_function,
                                       source_sha256=job.float_sha256, jobs=1, data_name=artifact_data_name(job),
                                       representation=variant.representation, exclude=tuple(model.keep_float))
            sha, size = sha256_file(tmp), tmp.stat().st_size
        meta = {"sha256": sha, "size": size, "model": model.id, "variant": variant.id, "spec": variant.spec(),
                "source_sha256": job.float_sha256, "quantzoo": __version__,
                "report": report.to_dict() if hasattr(report, "to_dict") else None, **extra}
        if report.artifact_files:  # an artifact with external data: its data file, beside it
            meta["files"] = report.artifact_files[1:]
        write_json(meta_path, meta)
    return meta


def _runtimes(job: Job, cache: Cache, art_path: Path, artifact_sha256: str, evaluation) -> bool:
    """Measure the runtime matrices that are not cached yet (the float model's first: the
    artifact's is held to it); whether anything was measured. `evaluation()` gives the
    prepared data, whose first samples are the feeds."""
    from ..runtimes import RUNTIMES, compatibility
    from .graphinfo import cached_graph_info

    art_key, float_key = compat_keys(job, artifact_sha256)
    art_out, float_out = runtimes_path(cache, art_key), runtimes_path(cache, float_key)
    if art_out.is_file() and float_out.is_file():
        return False
    need = max(r.samples for r in RUNTIMES.values())
    ev = evaluation()
    feeds = [ev.feed({k: v[i:i + 1] for k, v in batch.items()})
             for batch in ev.batches for i in range(len(next(iter(batch.values()))))][:need]
    ops = ev.custom_ops  # the model's custom ops run where a runtime can register them
    params = cached_graph_info(cache, Path(job.float_path), job.float_sha256).get("parameters")
    with cache.lock(f"runtimes-{float_key[:24]}"):  # every variant's job needs the float matrix: measure it once
        if not float_out.is_file():
            write_json(float_out, compatibility(job.float_path, feeds, parameters=params, custom_ops=ops))
    float_matrix = json.loads(float_out.read_text(encoding="utf-8"))
    write_json(art_out, compatibility(art_path, feeds, parameters=params, float_matrix=float_matrix, custom_ops=ops))
    return True


def _shapes(model, job: Job, cache: Cache, art_path: Path, artifact_sha256: str, reg, evaluation) -> bool:
    """Check the artifact and its float model at the promised shapes and time them (the float
    model's once, under a lock), and the artifact's agreement on the evaluation data at each
    (`shapeeval`; `evaluation()` gives the prepared data); whether anything was measured. A
    promised shape the artifact does not run at fails the job, after its measurement is stored
    (`collect` reads it back)."""
    from .flexible import float_outputs, measure, save_outputs, shape_failure
    from .shapeeval import add_evaluations

    art_key, float_key = shapes_keys(job, artifact_sha256)
    art_out, float_out = shapes_path(cache, art_key), shapes_path(cache, float_key)
    did = not (art_out.is_file() and float_out.is_file())
    ops = None
    if did and model.custom_ops:
        from ..compare.core import model_custom_ops

        ops = model_custom_ops(model, cache)
    kept = float_out.with_suffix(".npz")  # the float's outputs at the checked shapes, for every variant
    with cache.lock(f"shapes-{float_key[:24]}"):  # every variant's job needs the float's: measure it once
        if not float_out.is_file():
            outputs: dict = {}
            result = measure(Path(job.float_path), Path(job.float_path), ops, keep=outputs)
            save_outputs(kept, outputs)
            write_json(float_out, result)
    if not art_out.is_file():
        comparison = json.loads(comparison_path(cache, job.keys.comparison(artifact_sha256)).read_text(encoding="utf-8"))
        checked = measure(art_path, Path(job.float_path), ops, reference=float_outputs(kept))
        write_json(art_out, add_evaluations(checked, model, reg, cache, Path(job.float_path), art_path,
                                            evaluation, comparison))
    why = shape_failure(json.loads(art_out.read_text(encoding="utf-8")))
    if why:
        raise QuantzooError(why)
    return did


def run_job(job: Job) -> JobResult:
    """Bring one model × variant into the cache; failures come back in the result, never raised."""
    did: list[str] = []
    seconds: dict[str, float] = {}
    stage = "load"
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(seconds.get(name, 0.0) + now - clock, 3)
        clock = now

    try:
        reg = _registry(job.zoo)
        model = reg.model(job.model)
        variant = next(v for v in model.variants if v.id == job.variant)
        cache = Cache(job.cache)
        lap("load")

        stage = "quantize"
        meta = read_artifact(cache, job.keys.artifact)
        if meta is None:
            meta = _quantize(model, variant, job, cache, reg, lambda: _evaluation(model, job, reg, cache))
            did.append("quantize")
        art_path = artifact_paths(cache, job.keys.artifact)[0]
        lap("quantize")

        stage = "compare"
        cpath = comparison_path(cache, job.keys.comparison(meta["sha256"]))
        ev = None
        outputs = None  # the artifact's outputs when compared here: the picture grid reuses them
        if not cpath.is_file():
            ev = _evaluation(model, job, reg, cache)
            comparison = ev.compare(art_path)
            write_json(cpath, comparison.to_dict())
            outputs = comparison.outputs
            did.append("compare")
        lap("compare")

        stage = "runtimes"
        if _runtimes(job, cache, art_path, meta["sha256"], lambda: ev or _evaluation(model, job, reg, cache)):
            did.append("runtimes")
        lap("runtimes")

        if job.shapes:
            stage = "shapes"
            if _shapes(model, job, cache, art_path, meta["sha256"], reg,
                       lambda: ev or _evaluation(model, job, reg, cache)):
                did.append("shapes")
            lap("shapes")

        if job.previews:
            stage = "preview"
            if not (preview_path(cache, job.keys.preview(meta["sha256"])).is_file()
                    and preview_path(cache, job.keys.float_preview).is_file()):
                ev = ev or _evaluation(model, job, reg, cache)
                if is_grid_task(model.task):  # the seed's picture grid
                    draw_grid(model, ev, job.keys, art_path, meta["sha256"], cache, outputs)
                else:
                    draw_previews(model, ev, job.keys, art_path, meta["sha256"], cache)
                did.append("preview")
            lap("preview")
    except QuantzooError as e:
        return JobResult(job.model, job.variant, tuple(did), Failure(job.model, job.variant, stage, str(e)), seconds)
    except Exception as e:  # a bug or an unexpected library error: report it, keep building the rest
        return JobResult(job.model, job.variant, tuple(did),
                         Failure(job.model, job.variant, stage, f"{type(e).__name__}: {e}"), seconds)
    return JobResult(job.model, job.variant, tuple(did), None, seconds)
