"""A job's files on a machine that does not share the cache: the inputs shipped to a worker, the
results shipped back and committed by the driver (ARCHITECTURE.md, "The build on Ray").

The driver ships, once per build, the zoo folder (manifests and the files they name) and, once
per model, the cache entries the model's jobs read (its float model, labels, dataset: file, folder,
marker and record). A worker lays them out in a private scratch cache with the same relative
paths, runs the ordinary `worker.run_job` there and returns every result file the job wrote under
``derived/`` as an `Output` (path relative to the cache root, sha256, bytes). The driver commits
each with `cache.commit_file`, the one way verified bytes enter the cache, so a result lands
exactly as if a local worker had written it. What a worker needs and was not shipped it fetches
itself from the source's origin, as a local build would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..cache import Cache, atomic_write_bytes, commit_file, hashed, sha256_bytes
from ..errors import QuantzooError

ZOO_LIMIT = 256 << 20             # a zoo folder larger than this is not shipped (use a shared cache)
NOT_RETURNED = ("float-outputs",)  # derived/ stage that stays on the worker's node: an intermediate
NOT_SHARED = ("artifacts",)        # derived/ stage a model's first job does not pass on to its others


@dataclass(frozen=True)
class Output:
    """One result file a worker wrote: where it goes under the cache root, its sha256, its bytes."""

    path: str
    sha256: str
    data: bytes


def folder_files(root: Path, limit: int | None = None, what: str = "") -> dict[str, bytes]:
    """Every regular file below `root` as {posix relative path: bytes}; more than `limit` bytes is an error.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a").write_bytes(b"x")
    >>> folder_files(d)
    {'a': b'x'}
    """
    out: dict[str, bytes] = {}
    total = 0
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[p.relative_to(root).as_posix()] = data = p.read_bytes()
            total += len(data)
            if limit is not None and total > limit:
                raise QuantzooError(
                    f"{what or root} holds more than {limit >> 20} MiB, too much to send to every Ray worker; "
                    "put the zoo and the cache on storage every node mounts at the same path and build "
                    "with --shared-cache")
    return out


def entry_files(root: Path, path: Path) -> dict[str, bytes]:
    """A cache entry as {path relative to the cache root: bytes}: the file (or every file of the
    folder) and the files beside it that belong to it (a folder's ``.complete`` marker, an
    ``.onnx`` file's ``.json`` record and external data).

    >>> import tempfile, pathlib
    >>> r = pathlib.Path(tempfile.mkdtemp()); (r / "trees" / "ab").mkdir(parents=True)
    >>> _ = (r / "trees" / "ab" / "x").write_bytes(b"1"); _ = (r / "trees" / "ab.complete").write_bytes(b"ab")
    >>> sorted(entry_files(r, r / "trees" / "ab"))
    ['trees/ab.complete', 'trees/ab/x']
    """
    root, path = Path(root), Path(path)
    rel = path.relative_to(root)
    if path.is_dir():
        out = {f"{rel.as_posix()}/{k}": v for k, v in folder_files(path).items()}
    else:
        out = {rel.as_posix(): path.read_bytes()}
    belong = [p for p in path.parent.glob(path.name + ".*") if p.is_file()]
    if path.suffix:
        belong.append(path.with_suffix(".json"))
    for p in belong:
        if p.is_file():
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def model_inputs(cache: Cache, paths: list[Path]) -> dict[str, bytes]:
    """The cache entries at `paths` (a model's float file, labels, dataset) to ship to a worker;
    a path outside the cache is left out (the shipped zoo or the worker's own fetch covers it)."""
    out: dict[str, bytes] = {}
    for path in paths:
        path = Path(os.path.abspath(path))  # not resolved: a cache may link its blobs/ from another
        if path.is_relative_to(cache.root) and path.exists():
            out.update(entry_files(cache.root, path))
    return out


def digest(files: dict[str, bytes]) -> str:
    """A short name for a set of shipped files: the sha256 over their paths and hashes.

    >>> digest({"a": b"x"}) == digest({"a": b"x"}) != digest({"a": b"y"})
    True
    """
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{sha256_bytes(files[name])}  {name}\n".encode())
    return h.hexdigest()[:16]


def shared_results(outputs: list[Output]) -> dict[str, bytes]:
    """What a model's first job made that its other jobs would make again: every result but the
    artifact (the float model's runtime matrix, shape checks and the outputs kept with them, its
    graph facts; the variant's own comparison and previews come along, small and never read).

    >>> o = [Output("derived/artifacts/k.onnx", "", b"big"), Output("derived/runtimes/f.json", "", b"{}")]
    >>> shared_results(o)
    {'derived/runtimes/f.json': b'{}'}
    """
    return {o.path: o.data for o in outputs if Path(o.path).parts[1] not in NOT_SHARED}


def _lay_out(root: Path, files: dict[str, bytes]) -> None:
    """Write `files` under `root`, skipping those already there with the same size (atomically)."""
    for name, data in files.items():
        dest = root / name
        if not dest.resolve().is_relative_to(root.resolve()):
            raise QuantzooError(f"a shipped file would land outside {root}: {name}")
        if not (dest.is_file() and dest.stat().st_size == len(data)):
            atomic_write_bytes(dest, data)


def _stamps(derived: Path) -> dict[Path, tuple[int, int]]:
    """The finished result files under ``derived/`` (atomic writes' temporaries start with a dot;
    the stages in NOT_RETURNED are not walked)."""
    if not derived.is_dir():
        return {}
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for stage in derived.iterdir()
            if stage.name not in NOT_RETURNED and stage.is_dir() for p in stage.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


_SCRATCH_PREFIX = f"quantzoo-ray-{os.getuid()}-"  # + the worker's pid: whose scratch it is
SCRATCH_DIR = "QUANTZOO_RAY_SCRATCH"  # where a node's scratch caches go (default: the temp folder)


def scratch_dir() -> Path:
    """The folder on this node for the workers' scratch caches and their shared float outputs:
    ``$QUANTZOO_RAY_SCRATCH`` (set where the Ray workers start), else the temp folder."""
    return Path(os.environ.get(SCRATCH_DIR) or tempfile.gettempdir())


def remove_dead_scratches(temp: str | os.PathLike | None = None) -> int:
    """Remove the scratch folders of worker processes that are gone (Ray kills its workers when
    the instance stops, so their exit handlers never run); how many were removed.

    >>> import tempfile, pathlib
    >>> t = pathlib.Path(tempfile.mkdtemp()); (t / f"{_SCRATCH_PREFIX}{2**22 + 1}-x").mkdir()
    >>> (t / f"{_SCRATCH_PREFIX}{os.getpid()}-y").mkdir(); (t / f"{_SCRATCH_PREFIX}shared").mkdir()
    >>> remove_dead_scratches(t), len(list(t.iterdir()))  # the dead pid's folder went
    (1, 2)
    """
    removed = 0
    for path in Path(temp or scratch_dir()).glob(f"{_SCRATCH_PREFIX}*-*"):
        pid = path.name[len(_SCRATCH_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


class Scratch:
    """A worker process's private copy of the zoo and the cache entries its jobs read.

    One per worker process (a process runs one job at a time), so the files a job wrote under
    ``derived/`` are exactly those that appeared or changed while it ran; results of an earlier
    build are forgotten first (`forget_results`), since that build's driver took them. Removed
    when the process exits normally; the folder of a killed worker (Ray kills its workers when it
    stops) is removed by the next worker that starts on the node (`remove_dead_scratches`).
    """

    def __init__(self, root: str | os.PathLike | None = None, shared: str | os.PathLike | None = None):
        if root is None:
            remove_dead_scratches()
            scratch_dir().mkdir(parents=True, exist_ok=True)
            root = tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-", dir=scratch_dir())
            import atexit

            atexit.register(shutil.rmtree, root, True)
        self.root = Path(root)
        self.cache = self.root / "cache"
        # the float-outputs cache (preprocessed batches and the float model's outputs, content-
        # addressed) is shared by the worker processes of a node, as local workers share the cache
        self.shared = Path(shared) if shared else scratch_dir() / f"{_SCRATCH_PREFIX}shared"

    def _link_shared(self) -> None:
        link = self.cache / "derived" / NOT_RETURNED[0]
        if not link.is_symlink():
            self.shared.mkdir(parents=True, exist_ok=True)
            link.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(link, ignore_errors=True)
            link.symlink_to(self.shared, target_is_directory=True)

    def prepare(self, job, zoo: dict[str, bytes], inputs: dict[str, bytes], zoo_digest: str | None = None,
                results: dict[str, bytes] | None = None):
        """Lay out the shipped zoo and inputs (and `results` another job of the model made:
        `shared_results`); the job with its paths pointing into this scratch. `zoo_digest` is
        `digest(zoo)` when the sender computed it once."""
        zoo_dir = self.root / f"zoo-{zoo_digest or digest(zoo)}"  # a changed zoo is a new folder: no stale manifests
        _lay_out(zoo_dir, zoo)
        _lay_out(self.cache, inputs)
        if results:
            for name in results:
                if Path(name).parts[:1] != ("derived",) or Path(name).parts[1] in NOT_RETURNED:
                    raise QuantzooError(f"a shipped result must lie under the cache's derived/ folder: {name}")
            _lay_out(self.cache, results)
        self._link_shared()
        return dataclasses.replace(job, zoo=str(zoo_dir), cache=str(self.cache),
                                   float_path=str(self._relocate(job, zoo_dir)))

    def _relocate(self, job, zoo_dir: Path) -> Path:
        path = Path(job.float_path)
        for src, dest in ((Path(job.cache), self.cache), (Path(job.zoo), zoo_dir)):
            if path.is_relative_to(src):
                return dest / path.relative_to(src)
        raise QuantzooError(f"{job.model}: its float model {path} is neither in the cache {job.cache} nor in the "
                            f"zoo {job.zoo}, so it cannot be sent to a Ray worker; build with --shared-cache")

    def forget_results(self) -> None:
        """Drop every result of earlier builds (a shipped input under ``derived/`` is laid out again;
        the node's shared float outputs stay: they are addressed by content)."""
        shutil.rmtree(self.cache / "derived", ignore_errors=True)

    def snapshot(self) -> dict[Path, tuple[int, int]]:
        return _stamps(self.cache / "derived")

    def outputs(self, before: dict[Path, tuple[int, int]]) -> list[Output]:
        """The result files written since `before`, records (``.json``) last."""
        out = []
        for path, stamp in _stamps(self.cache / "derived").items():
            rel = path.relative_to(self.cache)
            if before.get(path) == stamp or rel.parts[1] in NOT_RETURNED:
                continue
            data = path.read_bytes()
            out.append(Output(rel.as_posix(), sha256_bytes(data), data))
        return sorted(out, key=lambda o: (o.path.endswith(".json"), o.path))


def commit_outputs(cache: Cache, outputs: list[Output]) -> int:
    """Commit a worker's result files into the driver's cache through `cache.commit_file` (verified
    against the sha256 the worker computed); a file already there with those bytes is kept as it
    is. Returns how many were written.

    >>> import tempfile
    >>> c = Cache(tempfile.mkdtemp())
    >>> o = Output("derived/comparisons/k.json", sha256_bytes(b"{}"), b"{}")
    >>> commit_outputs(c, [o]), commit_outputs(c, [o]), (c.root / o.path).read_bytes()
    (1, 0, b'{}')
    """
    written = 0
    for o in outputs:
        dest = cache.root / o.path
        if Path(o.path).is_absolute() or ".." in Path(o.path).parts or Path(o.path).parts[0] != "derived":
            raise QuantzooError(f"a Ray worker returned a result outside the cache's derived/ folder: {o.path}")
        if dest.is_file() and dest.stat().st_size == len(o.data) and hashed(dest) == o.sha256:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(o.data)
        commit_file(tmp, dest, o.sha256, len(o.data), f"{o.path} from a Ray worker",
                    against="the sha256 the worker computed",
                    next_step="The bytes changed in transfer; run the build again.")
        written += 1
    return written
