"""The build on Ray: `RayExecutor` runs each model × variant job as a Ray task, on a local Ray
instance (loopback only) or on an existing cluster (ARCHITECTURE.md, "The build on Ray").

A task asks for CPUs and memory by its float model's size (`job_resources`) and is retried when
its worker process dies (``max_retries``); a job that fails for a model-level reason comes back
as a failed `JobResult` from `worker.run_job`, which never raises, so it is reported once and
never retried (``retry_exceptions=False`` covers anything else a task raises). Without
``shared_cache`` the driver ships each job's inputs and commits the result files the worker
sends back (`jobfiles`); with it every node reads and writes the cache and the zoo at the
driver's paths, as local workers do. Ray is imported only when a build uses it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import uuid
from pathlib import Path
from typing import Callable, Sequence

from ..errors import QuantzooError
from .plan import Failure, Job, JobResult

INSTALL = "pip install 'quantzoo[ray]'"
LOOPBACK = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0" before `import ray`: a local instance uses 127.0.0.1 only
MAX_RETRIES = 3                                 # attempts after a worker process died
_MiB = 1 << 20


def import_ray(local: bool = False):
    """The `ray` module. For a local instance the variable that keeps every Ray socket on the
    loopback interface is set first (Ray reads it once, at import); a missing Ray is a
    QuantzooError that says how to install it."""
    if local:
        os.environ.setdefault(LOOPBACK, "0")
    try:
        import ray
    except ImportError as e:
        raise QuantzooError(f"quantzoo build --executor ray needs Ray, which is not installed here ({e}); "
                            f"install it with: {INSTALL}") from None
    return ray


def local_threads() -> str:
    """The OpenMP/BLAS thread count a local worker process gets: ``$OMP_NUM_THREADS``, else every
    core this process may use. Ray would set it to the task's CPUs, and numpy's BLAS then sums
    in another order, changing onnx.reference's figures in the last digits (ARCHITECTURE.md,
    "The build on Ray"); a local Ray instance passes this on so its index.json is the local one."""
    return os.environ.get("OMP_NUM_THREADS") or str(len(os.sched_getaffinity(0)))


def start_local(cpus: int) -> None:
    """Start a Ray instance on this machine: `cpus` CPUs, no dashboard, every socket on 127.0.0.1,
    workers with the thread count of a local worker (`local_threads`)."""
    ray = import_ray(local=True)
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = local_threads()  # the Ray processes started here inherit it
    try:                                             # (a runtime_env would cost seconds per worker)
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    finally:
        if before is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = before


def job_resources(size: int, largest_node_memory: float | None = None) -> dict:
    """What one job asks Ray for, from its float model's size in bytes: one CPU (two from 1 GiB),
    and 512 MiB plus 8× the file in memory (quantize peaks at 0.9–1.6× the file; compare holds
    the float and the artifact session, whose creation peaks at ~4× the file: ARCHITECTURE.md,
    "Large models"), capped at the largest node's memory so a job is never unschedulable.

    >>> job_resources(10 * _MiB)["memory"] // _MiB, job_resources(2 << 30)["num_cpus"]
    (592, 2)
    >>> job_resources(4 << 30, largest_node_memory=8 << 30)["memory"] == 8 << 30
    True
    """
    memory = 512 * _MiB + 8 * size
    if largest_node_memory:
        memory = min(memory, int(largest_node_memory))
    return {"num_cpus": 1 if size < (1 << 30) else 2, "memory": memory}


# --- in the Ray worker process ----------------------------------------------------------------

_SCRATCH = None   # jobfiles.Scratch of this worker process
_BUILD = None     # the build whose manifests this process has loaded


def attempt(job: Job, build: str, version: str, zoo: tuple | None, inputs: dict | None, hook=None):
    """One attempt at a job in a Ray worker: (JobResult, [jobfiles.Output]). `zoo` is (digest,
    files) of the zoo folder, or None for a shared cache: the job then runs on the driver's paths
    and its results are already in place."""
    global _SCRATCH, _BUILD
    from .. import __version__
    from . import worker
    from .jobfiles import Scratch

    if hook is not None:
        hook(job)  # tests: make this attempt's process die
    if version != __version__:
        return JobResult(job.model, job.variant, failure=Failure(
            job.model, job.variant, "worker", f"this Ray worker runs quantzoo {__version__} but the driver runs "
            f"{version}; install the same quantzoo on every node (or pass a runtime_env)")), []
    if build != _BUILD:  # a worker process outlives one build when the driver runs several
        worker.reset()
        if _SCRATCH is not None:
            _SCRATCH.forget_results()  # the new build's driver has none of them: make them again
        _BUILD = build
    if zoo is None:
        return worker.run_job(job), []
    _SCRATCH = _SCRATCH or Scratch()
    try:
        local = _SCRATCH.prepare(job, zoo[1], inputs or {}, zoo_digest=zoo[0])
    except (QuantzooError, OSError) as e:
        return JobResult(job.model, job.variant, failure=Failure(job.model, job.variant, "transfer", str(e))), []
    before = _SCRATCH.snapshot()
    result = worker.run_job(local)
    if result.failure is not None:  # name the driver's files, as a local worker would
        error = result.failure.error.replace(local.cache, job.cache).replace(local.zoo, job.zoo)
        result = dataclasses.replace(result, failure=dataclasses.replace(result.failure, error=error))
    return result, _SCRATCH.outputs(before)


# --- in the driver ----------------------------------------------------------------------------

def model_paths(job: Job, registry) -> list[Path]:
    """The cache entries a model's jobs read: its float file and its fetched sources (label file,
    dataset), found again in the cache (a cache hit: the build fetched them already)."""
    from ..fetch import fetch_source, registry_sources

    paths = [Path(job.float_path)]
    for _, src, base in registry_sources(registry, [registry.model(job.model)], []):
        try:
            paths.append(fetch_source(src, job.cache, base_dir=base))
        except Exception:  # noqa: BLE001 - not shipped: the worker fetches it itself or reports why not
            pass
    return paths


def _lost(job: Job, error: BaseException, ray) -> JobResult:
    """The result of a job Ray could not finish: a task that raised, or a worker that kept dying."""
    if isinstance(error, ray.exceptions.RayTaskError):
        cause = error.cause if isinstance(error.cause, BaseException) else error
        return JobResult(job.model, job.variant, failure=Failure(
            job.model, job.variant, "worker", f"{type(cause).__name__}: {cause}"))
    lost = JobResult.lost(job, error)
    return JobResult(job.model, job.variant, failure=Failure(
        job.model, job.variant, "worker", f"{lost.failure.error} (tried {1 + MAX_RETRIES} times)"))


class RayExecutor:
    """Jobs as Ray tasks. `address` None starts a local instance with `cpus` CPUs and stops it
    afterwards; an address connects to that cluster (left running). When Ray is already
    initialised in this process, that instance is used and left as it is. `hook(job)` runs at
    the start of every attempt in the worker (tests use it to kill a worker).

    >>> seen = []
    >>> RayExecutor().run([], seen.append)  # no jobs: Ray is not even imported
    >>> seen
    []
    """

    def __init__(self, address: str | None = None, cpus: int | None = None, shared_cache: bool = False,
                 hook: Callable[[Job], None] | None = None):
        self.address = address
        self.cpus = max(1, cpus or os.cpu_count() or 1)
        self.shared_cache = shared_cache
        self.hook = hook

    def _connect(self):
        """(ray, whether this executor started it)."""
        ray = import_ray(local=self.address is None)
        if ray.is_initialized():
            return ray, False
        if self.address is None:
            start_local(self.cpus)
        else:
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level=logging.ERROR)
            except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
                raise QuantzooError(f"could not connect to the Ray cluster at {self.address}: {type(e).__name__}: "
                                    f"{e}; check the address (ray status on the head node prints it)") from None
        return ray, True

    def run(self, jobs: Sequence[Job], on_result: Callable[[JobResult], None]) -> None:
        if not jobs:
            return
        ray, started = self._connect()
        try:
            self._run(ray, list(jobs), on_result)
        finally:
            if started:
                ray.shutdown()

    def _submit(self, ray, jobs: list[Job]) -> dict:
        """Every job as a task; the zoo is put in the object store once, each model's inputs once."""
        from .. import __version__
        from ..cache import Cache
        from ..registry import load_registry
        from .jobfiles import ZOO_LIMIT, digest, folder_files, model_inputs

        memory = max((n["Resources"].get("memory", 0) for n in ray.nodes() if n.get("Alive")), default=None)
        task = ray.remote(attempt)
        build = uuid.uuid4().hex
        zoo_refs: dict[str, tuple] = {}   # zoo root -> (its files in the object store, its registry)
        input_refs: dict[tuple, object] = {}
        refs = {}
        for job in jobs:
            zoo = inputs = None
            if not self.shared_cache:
                if job.zoo not in zoo_refs:
                    files = folder_files(Path(job.zoo), ZOO_LIMIT, f"the zoo folder {job.zoo}")
                    zoo_refs[job.zoo] = ray.put((digest(files), files)), load_registry(job.zoo)
                zoo, registry = zoo_refs[job.zoo]
                if (job.zoo, job.model) not in input_refs:
                    input_refs[job.zoo, job.model] = ray.put(model_inputs(Cache(job.cache), model_paths(job, registry)))
                inputs = input_refs[job.zoo, job.model]
            res = job_resources(Path(job.float_path).stat().st_size, memory)
            ref = task.options(max_retries=MAX_RETRIES, retry_exceptions=False, **res).remote(
                job, build, __version__, zoo, inputs, self.hook)
            refs[ref] = job
        return refs

    def _run(self, ray, jobs: list[Job], on_result: Callable[[JobResult], None]) -> None:
        from ..cache import Cache
        from .jobfiles import commit_outputs

        refs = self._submit(ray, jobs)
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                more, pending = ray.wait(pending, num_returns=len(pending), timeout=0) if pending else ([], [])
                for ref in ready + more:
                    job = refs.pop(ref)
                    try:
                        result, outputs = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        result, outputs = _lost(job, e, ray), []
                    try:
                        commit_outputs(Cache(job.cache), outputs)
                    except QuantzooError as e:
                        result = JobResult(job.model, job.variant, result.did,
                                           Failure(job.model, job.variant, "transfer", str(e)), result.seconds)
                    on_result(result)
        except BaseException:  # Ctrl-C or a failing callback: stop the tasks still queued or running
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
