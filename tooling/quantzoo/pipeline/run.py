"""The build, stage by stage: fetch → inspect → plan → execute → collect.

Every result is content-addressed in the cache (see `keys`), so a rerun with nothing changed
does no quantize or compare work, and says so. Jobs run behind an `execute.Executor`; a job
that fails is recorded with its stage and message, and the other models still build.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import Cache, sha256_file
from ..errors import QuantzooError
from .collect import collect
from .execute import Executor, LocalExecutor
from .graphinfo import cached_graph_info
from .plan import Failure, JobResult, ModelState, Plan, interleave, model_jobs
from .store import is_done

_DONE = {"quantize": "quantized", "compare": "compared", "runtimes": "runtimes checked", "shapes": "shapes checked",
         "preview": "preview drawn"}


@dataclass
class Counts:
    jobs: int = 0          # model × variant results wanted
    reused: int = 0        # already complete in the cache
    quantized: int = 0
    compared: int = 0
    previews: int = 0


@dataclass
class BuildResult:
    built: list                      # publish.BuiltModel, one per model that has a usable variant
    failed_models: list[Failure]     # models that are not published (variant None)
    failures: list[Failure]          # every failure, model by model
    counts: Counts
    seconds: float
    stage_seconds: dict = field(default_factory=dict)  # worker seconds per stage (load, quantize, ...)
    model_seconds: dict = field(default_factory=dict)  # {model: {stage: worker seconds}}, costliest model first


def _message(e: Exception) -> str:
    return str(e) if isinstance(e, QuantzooError) else f"{type(e).__name__}: {e}"


def fetch_all(reg, models, cache: Cache, jobs: int, progress, states: dict[str, ModelState]) -> None:
    """Fetch every model's float file, labels and dataset (a few threads); failures go to the model."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from ..fetch import fetch_source, registry_sources

    items = registry_sources(reg, models, [])
    task = progress.task("fetch", total=len(items))
    errors: dict[str, str] = {}
    paths: dict[str, Path] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, 4))) as pool:
        futs = {pool.submit(fetch_source, src, cache, base_dir=base): ident for ident, src, base in items}
        for fut in as_completed(futs):
            ident = futs[fut]
            try:
                paths[ident] = fut.result()
            except Exception as e:
                errors[ident] = _message(e)
            task.advance()
    for m in models:
        st = states[m.id]
        for ident, what in ((m.id, "the model"), (f"{m.id} labels", "its labels"), (m.dataset, "its dataset")):
            if ident in errors and st.error is None:
                st.error = Failure(m.id, None, "fetch", f"{what} ({ident}): {errors[ident]}")
        if st.error is None:
            st.float_path = paths[m.id]


def inspect(st: ModelState, cache: Cache) -> None:
    """Hash the float model and read its graph facts; an unreadable file fails that model only."""
    try:
        st.float_sha256 = sha256_file(st.float_path)
        st.info = cached_graph_info(cache, st.float_path, st.float_sha256)
    except Exception as e:
        st.error = Failure(st.model.id, None, "inspect", _message(e))


def make_flexible_float(st: ModelState, cache: Cache) -> None:
    """A model with `shapes`: its float file becomes the flexible one every variant is quantized
    from and that is published; a graph that cannot follow fails that model only."""
    from .flexible import flexible_float

    try:
        st.float_path = flexible_float(st.model, st.float_path, st.float_sha256, cache)
        st.float_sha256 = sha256_file(st.float_path)
        st.info = cached_graph_info(cache, st.float_path, st.float_sha256)
    except Exception as e:
        st.error = Failure(st.model.id, None, "shapes", _message(e))


def judged(st: ModelState, reg, cache: Cache) -> dict | None:
    """The identity of the model's judge (its float file fetched with the other sources: a cache
    hit, hashed here); a judge that cannot be resolved fails that model only."""
    from ..compare.judge import judge_identity

    try:
        return judge_identity(st.model, reg, cache)
    except Exception as e:
        st.error = Failure(st.model.id, None, "judge", _message(e))
        return None


def run_pipeline(reg, models: list, cache: Cache, *, jobs: int | None = None, console=None,
                 executor: Executor | None = None) -> BuildResult:
    """Fetch, quantize and compare every model × variant (incrementally, in parallel)."""
    from rich.markup import escape

    from ..progress import Progress

    t0 = time.perf_counter()
    jobs = max(1, jobs or os.cpu_count() or 1)
    executor = executor or LocalExecutor(jobs)
    states = {m.id: ModelState(m) for m in models}
    counts = Counts()
    seconds: dict[str, float] = {}  # worker time per stage, summed over jobs
    per_model: dict[str, dict[str, float]] = {}  # and per model
    with Progress(console) as progress:
        fetch_all(reg, models, cache, jobs, progress, states)
        planned = []
        for m in models:
            st = states[m.id]
            if st.error is None:
                inspect(st, cache)
            if st.error is None and getattr(m, "shapes", None):
                make_flexible_float(st, cache)
            judge = judged(st, reg, cache) if st.error is None else None
            if st.error is None:
                planned += model_jobs(str(reg.root), str(cache.root), m, str(st.float_path), st.float_sha256,
                                      reg.datasets.get(m.dataset), judge)
        plan = Plan(tuple(planned))
        todo = interleave([j for j in plan.jobs if not is_done(cache, j)])
        counts.jobs, counts.reused = len(plan.jobs), len(plan.jobs) - len(todo)

        task = progress.task("quantize + compare", total=counts.jobs, completed=counts.reused)
        if not todo:
            progress.print(f"nothing changed: all {counts.jobs} artifacts and comparisons reused "
                           "from the cache (no quantize or compare work)")

        def record(r: JobResult) -> None:
            f = r.failure
            if f:
                states[r.model].failures.append(f)
                first = f.error.splitlines()[0][:300] if f.error.strip() else f.error
                progress.print(f"[red]FAILED[/] {escape(r.model)} {escape(r.variant)} ({f.stage}): {escape(first)}",
                               markup=True)
            elif r.did:
                progress.print(f"  {r.model} {r.variant}: {', '.join(_DONE[d] for d in r.did)}")
            for name, sec in r.seconds.items():
                seconds[name] = seconds.get(name, 0.0) + sec
                per_model.setdefault(r.model, {})[name] = per_model.get(r.model, {}).get(name, 0.0) + sec
            counts.quantized += "quantize" in r.did
            counts.compared += "compare" in r.did
            counts.previews += "preview" in r.did
            task.advance()

        executor.run(todo, record)

    built, failed_models, failures = [], [], []
    for m in models:
        st = states[m.id]
        bm = None if st.error else collect(st, plan.of(m.id), reg, cache)
        failures += st.failures
        if st.error:
            failures.append(st.error)
            failed_models.append(st.error)
        elif bm is None:
            failed_models.append(Failure(m.id, None, "variants", "no variant could be built"))
        else:
            built.append(bm)
    return BuildResult(built=built, failed_models=failed_models, failures=failures, counts=counts,
                       seconds=time.perf_counter() - t0, stage_seconds={k: round(v, 1) for k, v in seconds.items()},
                       model_seconds={m: {k: round(v, 1) for k, v in st.items()}
                                      for m, st in sorted(per_model.items(), key=lambda kv: -sum(kv[1].values()))})
