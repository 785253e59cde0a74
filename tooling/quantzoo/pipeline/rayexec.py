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
import platform
import re
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Sequence

from ..errors import QuantzooError, UsageError
from ..threads import ENV, build_threads
from .plan import Failure, Job, JobResult

INSTALL = "pip install 'quantzoo[ray]'"
LOOPBACK = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0" before `import ray`: a local instance uses 127.0.0.1 only
MAX_RETRIES = 3                                 # attempts after a worker process died
CONNECT_TIMEOUT = "QUANTZOO_RAY_CONNECT_TIMEOUT"  # seconds to reach a cluster's head (default 30)
_MiB = 1 << 20
_ADDRESS = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*)):(?P<port>[0-9]{1,5})$")


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


def parse_address(address: str) -> tuple[str, int]:
    """(host, port) of a cluster's head given as ``HOST:PORT`` (``[IPv6]:PORT``); anything else is
    a UsageError that shows the form.

    >>> parse_address("ray-head:6379"), parse_address("[::1]:6379")
    (('ray-head', 6379), ('::1', 6379))
    >>> parse_address("ray://ray-head:10001")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    quantzoo.errors.UsageError: --address must be the head's HOST:PORT ...; Ray Client (ray://) addresses are not supported...
    """
    m = _ADDRESS.match(address or "")
    port = int(m["port"]) if m else 0
    if not 1 <= port <= 65535:
        client = "; Ray Client (ray://) addresses are not supported: run the build on a machine of the cluster" \
            if str(address).startswith("ray://") else ""
        raise UsageError(f"--address must be the head's HOST:PORT (as `ray start --head` prints it, e.g. "
                         f"ray-head:6379), found {address!r}{client}")
    return m["v6"] or m["host"], port


def default_connect_timeout() -> float:
    """Seconds `reach_head` waits for a cluster's head: ``$QUANTZOO_RAY_CONNECT_TIMEOUT``, else 30."""
    raw = os.environ.get(CONNECT_TIMEOUT, "30")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise UsageError(f"${CONNECT_TIMEOUT} must be a number of seconds above 0, found {raw!r}")
    return seconds


def _head_metadata(address: str, timeout: float) -> dict:
    """What the head's GCS says about itself (its Ray and Python versions), read with Ray's own
    client in a thread so a server that never answers costs `timeout` seconds, no more."""
    import json

    from ray._raylet import InnerGcsClient

    found: list = []

    def ask() -> None:
        try:
            client = InnerGcsClient.standalone(address, None, int(timeout * 1000))
            found.append(client.internal_kv_get(b"CLUSTER_METADATA", b"cluster", timeout=timeout))
        except Exception as e:  # noqa: BLE001 - reported below with Ray's words
            found.append(e)

    thread = threading.Thread(target=ask, daemon=True, name="quantzoo-ray-probe")
    thread.start()
    thread.join(timeout)
    if not found:
        raise TimeoutError("it accepted the connection but gave no answer as a Ray head")
    if isinstance(found[0], BaseException):
        raise found[0]
    return json.loads(found[0]) if found[0] else {}


def reach_head(address: str, timeout: float | None = None) -> dict:
    """Check, within `timeout` seconds (`default_connect_timeout`), that a Ray head of this Ray version
    answers at `address` before `ray.init` (which waits minutes and prints a long trace for an
    address where nothing answers); its cluster metadata. Anything else is a QuantzooError that
    names the address, what was expected and found, and what to do."""
    import ray

    host, port = parse_address(address)
    timeout = default_connect_timeout() if timeout is None else timeout
    expected = f"expected a Ray {ray.__version__} head (`ray start --head --port {port}`) there"
    next_step = ("start one on that machine with `ray start --head`, check the address (`ray status` on the "
                 "head prints it), or leave --address out to start a local Ray instance")
    start = time.monotonic()
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        meta = _head_metadata(address, max(1.0, timeout - (time.monotonic() - start)))
    except Exception as e:  # noqa: BLE001 - refused, unreachable, unknown host, no answer, Ray's own errors
        why = str(e) or "no answer"
        raise QuantzooError(f"could not reach a Ray cluster at {address} within {timeout:g} s: {expected}, "
                            f"found {type(e).__name__}: {why}; {next_step} "
                            f"(${CONNECT_TIMEOUT} sets the wait)") from None
    theirs = (meta.get("ray_version"), meta.get("python_version"))
    ours = (ray.__version__, platform.python_version())
    level = 2 if os.environ.get("RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL") == "minor" else 3  # as Ray checks
    if theirs[0] and theirs[0] != ours[0] or theirs[1] and theirs[1].split(".")[:level] != ours[1].split(".")[:level]:
        raise QuantzooError(f"the Ray cluster at {address} runs Ray {theirs[0]} on Python {theirs[1]}, but this "
                            f"driver runs Ray {ours[0]} on Python {ours[1]}; Ray needs the same Ray and Python "
                            f"versions on the driver and the cluster: install ray=={theirs[0]} here "
                            f"(pip install 'ray=={theirs[0]}') or connect to a cluster of Ray {ours[0]}")
    return meta


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
