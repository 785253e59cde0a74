"""Reaching Ray: importing it (loopback-only for a local instance), starting a local instance,
and checking an existing cluster's head in bounded time before `ray.init` (ARCHITECTURE.md,
"The build on Ray"). `rayexec.RayExecutor` uses these; nothing here runs a job.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import socket
import threading
import time

from ..errors import QuantzooError, UsageError

INSTALL = "pip install 'quantzoo[ray]'"
LOOPBACK = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0" before `import ray`: a local instance uses 127.0.0.1 only
CONNECT_TIMEOUT = "QUANTZOO_RAY_CONNECT_TIMEOUT"  # seconds to reach a cluster's head (default 30)
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
    if local:
        _keep_on_loopback(ray)
    return ray


def _keep_on_loopback(ray) -> None:
    """Ray reads the loopback switch once, when `ray._private.ray_constants` is first imported; if
    something imported Ray before us (a `reach_head` earlier in the process), that reading missed
    it. Ray's address lookup reads the constant at each call, so it is set on the module too."""
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if constants is not None and os.environ.get(LOOPBACK) == "0":
        constants.ENABLE_RAY_CLUSTER = False


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
    where = sorted({n["NodeManagerAddress"] for n in ray.nodes()})
    if os.environ.get(LOOPBACK) == "0" and where != ["127.0.0.1"]:  # a user's own value is theirs
        ray.shutdown()
        raise QuantzooError(f"the local Ray instance should listen on 127.0.0.1 only, found it on {where}; "
                            "start Ray yourself (`ray start --head`) and pass its head with --address")


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
