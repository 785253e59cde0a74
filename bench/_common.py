"""Shared by the benchmark scripts: where results go and what machine produced them."""

from __future__ import annotations

import json
import os
import platform
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """The machine and the versions of everything a number depends on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        mem = None
    versions = {}
    for pkg in ("quantzoo", "numpy", "onnx", "onnxruntime", "scikit-learn", "coremltools", "mkdocs",
                "mkdocs-material", "torch"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_bytes": mem,
        "platform": platform.platform(), "python": sys.version.split()[0], "versions": versions,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


class TreeCPU:
    """CPU seconds used by this process and every process below it (Ray's own processes and its
    workers, or the local pool), sampled from /proc twice a second: a figure the other work on a
    shared machine does not inflate the way it inflates wall time."""

    def __init__(self, every: float = 0.5):
        self.every, self.seen, self._stop = every, {}, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        parents: dict[int, int] = {}
        times: dict[tuple, float] = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(d)] = int(fields[1])
            times[(int(d), fields[19])] = (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
        mine = {os.getpid()}
        grew = True
        while grew:
            new = {p for p, pp in parents.items() if pp in mine and p not in mine}
            mine |= new
            grew = bool(new)
        for (pid, start), sec in times.items():
            if pid in mine and pid != os.getpid():
                self.seen[(pid, start)] = max(sec, self.seen.get((pid, start), 0.0))

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self):
        self._self0 = time.process_time()
        self._sample()
        self._before = dict(self.seen)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._sample()
        self._stop.set()
        self._thread.join()
        self.seconds = (time.process_time() - self._self0
                        + sum(v - self._before.get(k, 0.0) for k, v in self.seen.items()))


def write_result(name: str, payload: dict) -> Path:
    """Write bench/results/<name>.json with the machine block added."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    doc = {"benchmark": name, "machine": machine(), **payload}
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out)
    print(f"wrote {out}")
    return out
