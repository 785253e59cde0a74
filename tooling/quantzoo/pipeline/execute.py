"""Running jobs: the `Executor` interface and the local process pool behind it.

An executor takes `plan.Job` values and hands back one `plan.JobResult` per job through
`on_result`, in any order, in the calling thread. Both are plain frozen dataclasses, so an
executor may run them in other processes or on other machines (ARCHITECTURE.md,
"The pipeline"). A job whose worker dies still gets a result: a failure at stage ``worker``.
"""

from __future__ import annotations

import os
from typing import Callable, Protocol, Sequence

from ..errors import UsageError
from ..threads import ENV, build_threads
from .plan import Job, JobResult

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    def run(self, jobs: Sequence[Job], on_result: Callable[[JobResult], None]) -> None:
        """Run every job; call `on_result` once per job as its result arrives."""


def _worker_init(threads: str) -> None:
    """Workers leave Ctrl-C to the main process, which stops them (a terminal sends SIGINT to all),
    and run each session on `threads` threads (`quantzoo.threads`)."""
    import signal

    from ..threads import ENV

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ[ENV] = threads


class LocalExecutor:
    """`workers` spawned processes on this machine; with one worker, jobs run in this process.

    >>> seen = []
    >>> LocalExecutor(1).run([], seen.append)
    >>> seen
    []
    """

    def __init__(self, workers: int):
        self.workers = max(1, workers)

    def run(self, jobs: Sequence[Job], on_result: Callable[[JobResult], None]) -> None:
        from . import worker

        if not jobs:
            return
        if self.workers == 1:
            worker.reset()  # this build's manifests, not an earlier in-process build's
            before = os.environ.get(ENV)
            os.environ[ENV] = build_threads()  # the same thread count as a worker process
            try:
                for job in jobs:
                    on_result(worker.run_job(job))
            finally:
                if before is None:
                    del os.environ[ENV]
                else:
                    os.environ[ENV] = before
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = multiprocessing.get_context("spawn")  # workers import onnxruntime fresh; no forked threads
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(jobs)), mp_context=ctx,
                                   initializer=_worker_init,
                                   initargs=(build_threads(),))
        try:
            futures = {pool.submit(worker.run_job, job): job for job in jobs}
            for fut in as_completed(futures):
                try:
                    result = fut.result()
                except Exception as e:  # the worker died (out of memory, killed): report, go on
                    result = JobResult.lost(futures[fut], e)
                on_result(result)
        except BaseException:  # Ctrl-C: stop the workers now instead of letting them drain the queue
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


def make_executor(name: str = "local", jobs: int = 1, *, address: str | None = None,
                  shared_cache: bool = False) -> Executor:
    """The executor `quantzoo build --executor NAME` runs jobs with (`rayexec.RayExecutor` for
    ``ray``: ARCHITECTURE.md, "The build on Ray"); options that only Ray takes are refused elsewhere.

    >>> make_executor("local", 2).workers
    2
    >>> make_executor("local", 2, address="10.0.0.1:6379")
    Traceback (most recent call last):
    quantzoo.errors.UsageError: --address and --shared-cache go with --executor ray
    """
    if name not in EXECUTORS:
        raise UsageError(f"--executor must be one of {', '.join(EXECUTORS)}, found {name!r}")
    if name == "local":
        if address or shared_cache:
            raise UsageError("--address and --shared-cache go with --executor ray")
        return LocalExecutor(jobs)
    from .raycluster import import_ray
    from .rayexec import RayExecutor

    executor = RayExecutor(address=address, cpus=jobs, shared_cache=shared_cache)  # checks the address's form
    import_ray(local=address is None)  # a missing Ray is reported before any build work
    return executor
