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
from ..threads import ENV, build_threads
from .plan import Failure, Job, JobResult
from .raycluster import default_connect_timeout, import_ray, parse_address, reach_head, start_local

MAX_RETRIES = 3                                 # attempts after a worker process died
_MiB = 1 << 20


# an auto variant's search keeps every candidate scheme's decoded weights (sensitivity.DEFAULT_SCHEMES:
# 15) and the float weights: 16× the file more (ARCHITECTURE.md, "The build on Ray", a task's resources)
AUTO_EXTRA = 16


def job_resources(size: int, largest_node_memory: float | None = None, auto: bool = False) -> dict:
    """What one job asks Ray for, from its float model's size in bytes: one CPU (two from 1 GiB),
    and 512 MiB plus 8× the file in memory (quantize peaks at 0.9–1.6× the file; compare holds
    the float and the artifact session, whose creation peaks at ~4× the file: ARCHITECTURE.md,
    "Large models"), `AUTO_EXTRA`× the file more for an auto variant's search, capped at the
    largest node's memory so a job is never unschedulable.

    >>> job_resources(10 * _MiB)["memory"] // _MiB, job_resources(2 << 30)["num_cpus"]
    (592, 2)
    >>> job_resources(10 * _MiB, auto=True)["memory"] // _MiB
    752
    >>> job_resources(4 << 30, largest_node_memory=8 << 30)["memory"] == 8 << 30
    True
    """
    memory = 512 * _MiB + (8 + (AUTO_EXTRA if auto else 0)) * size
    if largest_node_memory:
        memory = min(memory, int(largest_node_memory))
    return {"num_cpus": 1 if size < (1 << 30) else 2, "memory": memory}


# --- in the Ray worker process ----------------------------------------------------------------

_SCRATCH = None   # jobfiles.Scratch of this worker process
_BUILD = None     # the build whose manifests this process has loaded


def attempt(job: Job, build: str, version: str, zoo: tuple | None, inputs: dict | None, hook=None,
            results: dict | None = None):
    """One attempt at a job in a Ray worker: (JobResult, [jobfiles.Output]). `zoo` is (digest,
    files) of the zoo folder, or None for a shared cache: the job then runs on the driver's paths
    and its results are already in place. `results` are result files of the model's first job
    (`jobfiles.shared_results`), laid out with the inputs and not sent back."""
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
    os.environ[ENV] = build_threads()  # one thread per session, like a local worker (quantzoo.threads)
    if build != _BUILD:  # a worker process outlives one build when the driver runs several
        worker.reset()
        if _SCRATCH is not None:
            _SCRATCH.forget_results()  # the new build's driver has none of them: make them again
        _BUILD = build
    if zoo is None:
        return worker.run_job(job), []
    _SCRATCH = _SCRATCH or Scratch()
    try:
        local = _SCRATCH.prepare(job, zoo[1], inputs or {}, zoo_digest=zoo[0], results=results)
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


def is_auto(job: Job, registry) -> bool:
    """Whether a job builds an auto variant (its quantize stage is the sensitivity search)."""
    return any(v.id == job.variant and v.auto for v in registry.model(job.model).variants)


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
    afterwards; an address connects to that cluster (left running), whose head must answer
    within `connect_timeout` seconds (default ``$QUANTZOO_RAY_CONNECT_TIMEOUT`` or 30). When Ray is already
    initialised in this process, that instance is used and left as it is. `hook(job)` runs at
    the start of every attempt in the worker (tests use it to kill a worker).

    >>> seen = []
    >>> RayExecutor().run([], seen.append)  # no jobs: Ray is not even imported
    >>> seen
    []
    """

    def __init__(self, address: str | None = None, cpus: int | None = None, shared_cache: bool = False,
                 hook: Callable[[Job], None] | None = None, connect_timeout: float | None = None):
        if address is not None:  # a malformed address or timeout is a usage error before any build work
            parse_address(address)
            connect_timeout = connect_timeout or default_connect_timeout()
        self.address = address
        self.connect_timeout = connect_timeout
        self.cpus = max(1, cpus or os.cpu_count() or 1)
        self.shared_cache = shared_cache
        self.hook = hook

    def _connect(self):
        """(ray, whether this executor started it). A cluster's head is reached first within the
        connect timeout (`reach_head`)."""
        ray = import_ray(local=self.address is None)
        if self.address is not None:
            reach_head(self.address, self.connect_timeout)
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

    def _run(self, ray, jobs: list[Job], on_result: Callable[[JobResult], None]) -> None:
        """Submit the jobs and hand back each result as it arrives. Without a shared cache a
        model's first job goes first and its other jobs follow with its results (`Submitter`)."""
        from ..cache import Cache
        from .jobfiles import commit_outputs, shared_results

        submit = Submitter(ray, self, jobs)
        pending = [submit(job) for job in submit.first()]
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                more, pending = ray.wait(pending, num_returns=len(pending), timeout=0) if pending else ([], [])
                for ref in ready + more:
                    job = submit.refs.pop(ref)
                    try:
                        result, outputs = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        result, outputs = _lost(job, e, ray), []
                    try:
                        commit_outputs(Cache(job.cache), outputs)
                    except QuantzooError as e:
                        result = JobResult(job.model, job.variant, result.did,
                                           Failure(job.model, job.variant, "transfer", str(e)), result.seconds)
                    pending += [submit(later, shared_results(outputs)) for later in submit.after(job)]
                    on_result(result)
        except BaseException:  # Ctrl-C or a failing callback: stop the tasks still queued or running
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise


class Submitter:
    """Jobs into Ray tasks for one build. The zoo goes into the object store once, each model's
    inputs once. Without a shared cache, a model's other jobs wait for its first (`first`,
    `after`) and are sent the results it made that they would otherwise make again in their own
    scratch cache: the float model's runtime matrix, its shape checks and the outputs kept with
    them, its graph facts (`jobfiles.shared_results`; ARCHITECTURE.md, "The build on Ray")."""

    def __init__(self, ray, executor: RayExecutor, jobs: list[Job]):
        from .. import __version__

        self.ray, self.executor, self.version = ray, executor, __version__
        self.task = ray.remote(attempt)
        self.build = uuid.uuid4().hex
        self.memory = max((n["Resources"].get("memory", 0) for n in ray.nodes() if n.get("Alive")), default=None)
        self.refs: dict = {}              # submitted task -> its job
        self._zoos: dict[str, object] = {}  # zoo root -> its files in the object store
        self._registries: dict[str, object] = {}  # zoo root -> its registry
        self._inputs: dict[tuple, object] = {}
        self._later: dict[tuple, list[Job]] = {}
        self._jobs = jobs
        if not executor.shared_cache:
            for job in jobs:
                self._later.setdefault((job.zoo, job.model), []).append(job)

    def first(self) -> list[Job]:
        """The jobs to submit now: every job with a shared cache, else each model's first."""
        if self.executor.shared_cache:
            return list(self._jobs)
        return [group.pop(0) for group in self._later.values()]

    def after(self, job: Job) -> list[Job]:
        """The jobs that waited for `job` (its model's others, once, after its first job)."""
        return self._later.pop((job.zoo, job.model), []) if not self.executor.shared_cache else []

    def _registry(self, root: str):
        """The manifests of a zoo, loaded once per build."""
        from ..registry import load_registry

        return self._registries.get(root) or self._registries.setdefault(root, load_registry(root))

    def _shipped(self, job: Job) -> tuple:
        """(zoo, inputs) object refs of a job's model, put in the object store once each."""
        from ..cache import Cache
        from .jobfiles import ZOO_LIMIT, digest, folder_files, model_inputs

        if job.zoo not in self._zoos:
            files = folder_files(Path(job.zoo), ZOO_LIMIT, f"the zoo folder {job.zoo}")
            self._zoos[job.zoo] = self.ray.put((digest(files), files))
        zoo, registry = self._zoos[job.zoo], self._registry(job.zoo)
        if (job.zoo, job.model) not in self._inputs:
            self._inputs[job.zoo, job.model] = self.ray.put(model_inputs(Cache(job.cache), model_paths(job, registry)))
        return zoo, self._inputs[job.zoo, job.model]

    def __call__(self, job: Job, results: dict | None = None):
        """Submit one job (with `results` of its model's first job laid out beside its inputs)."""
        zoo, inputs = (None, None) if self.executor.shared_cache else self._shipped(job)
        res = job_resources(Path(job.float_path).stat().st_size, self.memory, is_auto(job, self._registry(job.zoo)))
        ref = self.task.options(max_retries=MAX_RETRIES, retry_exceptions=False, **res).remote(
            job, self.build, self.version, zoo, inputs, self.executor.hook, results or None)
        self.refs[ref] = job
        return ref
