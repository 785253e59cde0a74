"""How many threads one model run may use, so parallel build workers do not fight over the cores.

A build runs W worker processes on C cores. An onnxruntime or OpenVINO session left at its
defaults starts a pool of C threads that spin while they wait for work, so W × C threads share C
cores and much of the CPU goes to spinning (measured on 2 cores, two processes running PP-OCRv4
rec: 5.4 s each with default sessions, 2.9 s with one thread each). The local executor sets
`ENV` to max(1, C // W) in its workers (`worker_threads`); every session quantzoo makes reads it
here (`ort_options`, `openvino_config`). Unset, the runtimes keep their own defaults (one process
alone on the machine: every core). See ARCHITECTURE.md, "The pipeline".
"""

from __future__ import annotations

import os

ENV = "QUANTZOO_THREADS"


def threads() -> int | None:
    """The thread count `ENV` asks for, or None (unset or not a positive integer).

    >>> os.environ[ENV] = "1"; threads()
    1
    >>> os.environ[ENV] = "x"; threads() is None
    True
    >>> del os.environ[ENV]
    """
    try:
        n = int(os.environ.get(ENV, ""))
    except ValueError:
        return None
    return n if n > 0 else None


def worker_threads(workers: int) -> int:
    """The threads each of `workers` processes gets: the cores this process may use, shared."""
    return max(1, len(os.sched_getaffinity(0)) // max(1, workers))


def ort_options():
    """onnxruntime session options with `threads()` intra-op threads (and one inter-op thread)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    n = threads()
    if n is not None:
        so.intra_op_num_threads = n
        so.inter_op_num_threads = 1
    return so


def openvino_config() -> dict:
    """OpenVINO compile options for `threads()` (empty: its default)."""
    n = threads()
    return {} if n is None else {"INFERENCE_NUM_THREADS": n}
