"""How many threads one model run may use in a build: one per session, so parallel workers do
not fight over the cores and the published figures do not depend on the machine.

A build runs W worker processes on C cores (W = C by default). An onnxruntime or OpenVINO session
left at its defaults starts a pool of C threads that spin while they wait for work, so W × C
threads share C cores and much of the CPU goes to spinning (measured on 2 cores, two processes
running PP-OCRv4 rec: 5.4 s each with default sessions, 2.9 s with one thread each). And the
thread count changes how some kernels split their sums: centerface's float outputs moved in the
7th digit between 1 and 2 threads. So every build worker (`BUILD_THREADS`, set by the executors
in `ENV` unless the environment already sets it) runs each session on one thread, whatever the
machine and `--jobs`; every session quantzoo makes reads it here (`ort_options`,
`openvino_config`). Outside a build (`quantzoo compare` at a prompt) it is unset and the runtimes
use every core. See ARCHITECTURE.md, "The pipeline".
"""

from __future__ import annotations

import os

ENV = "QUANTZOO_THREADS"
BUILD_THREADS = 1  # each build worker's sessions, unless ENV says otherwise


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


def build_threads() -> str:
    """The thread count a build worker runs with: `ENV` when set, else `BUILD_THREADS`."""
    return os.environ.get(ENV) or str(BUILD_THREADS)


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
