"""`quantzoo verify`: re-hash the cache and a built site and report every file whose bytes are not
the recorded ones (ARCHITECTURE.md, "The cache").

In the cache each entry is checked against the sha256 it is stored under or recorded with
(`fetch.land.recorded_sha256`): ``blobs/<sha256>``, ``trees/<sha256>/`` (the tree hash in its
marker), ``downloads/url/<sha256>``, and the ``.onnx`` files of ``derived/convert`` and
``derived/artifacts`` (the ``sha256`` in the ``.json`` record beside them). In a site every file
``index.json`` lists (each model's float file and its variants) is checked for its sha256 and
size. Nothing is moved or deleted: this only reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .cache import Cache, cache_root, hashed
from .errors import UsageError
from .fetch.land import marker, recorded_sha256, rehash


@dataclass(frozen=True)
class Mismatch:
    """One file whose bytes are not the recorded ones (`found` may be "missing" or a size note)."""

    path: str
    expected: str
    found: str

    def line(self) -> str:
        """
        >>> Mismatch("blobs/ab", "ab", "cd").line()
        'MISMATCH blobs/ab: expected ab, found cd'
        """
        return f"MISMATCH {self.path}: expected {self.expected}, found {self.found}"


def cache_entries(cache: Cache) -> Iterator[Path]:
    """Every finished entry of the cache that records its own sha256 (temp files, incomplete
    folders and records without a hash are left out)."""
    root = cache.root
    for folder in (root / "blobs", root / "downloads" / "url"):
        if folder.is_dir():
            yield from sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    trees = root / "trees"
    if trees.is_dir():
        yield from sorted(p for p in trees.iterdir() if p.is_dir() and marker(p).is_file())
    for stage in ("convert", "artifacts"):
        folder = root / "derived" / stage
        if folder.is_dir():
            yield from sorted(p for p in folder.glob("*.onnx") if recorded_sha256(p) is not None)


def verify_cache(cache: Cache) -> tuple[int, list[Mismatch]]:
    """(entries checked, mismatches) of a cache.

    >>> import tempfile
    >>> c = Cache(tempfile.mkdtemp())
    >>> c.blob("0" * 64).parent.mkdir()
    >>> _ = c.blob("0" * 64).write_bytes(b"x")
    >>> n, bad = verify_cache(c)
    >>> n, bad[0].path[:12], bad[0].found[:12]
    (1, 'blobs/000000', '2d711642b726')
    """
    checked, bad = 0, []
    for path in cache_entries(cache):
        checked += 1
        expected, found = recorded_sha256(path), rehash(path)
        if found != expected:
            bad.append(Mismatch(path.relative_to(cache.root).as_posix(), str(expected), found))
    return checked, bad


def verify_site(site: Path) -> tuple[int, list[Mismatch]]:
    """(files checked, mismatches) of a built site: every file its index.json lists, by sha256 and
    size. Files published at an absolute URL (``--artifact-base-url``) are not in the folder and
    are left out."""
    from .catalog import CatalogIndex, is_url
    from .client.transfer import resolve

    index = site / "index.json"
    if not index.is_file():
        raise UsageError(f"{site} has no index.json: is it a site built with `quantzoo build`?")
    doc = CatalogIndex.from_bytes(index.read_bytes(), str(index))
    checked, bad = 0, []
    for model in doc.models:
        for entry in ([model.float] if model.float else []) + list(model.variants):
            if is_url(entry.file):
                continue
            checked += 1
            path = resolve(site, entry.file)
            if not path.is_file():
                bad.append(Mismatch(entry.file, entry.sha256, "missing"))
                continue
            found = hashed(path)
            size = path.stat().st_size
            if found != entry.sha256 or size != entry.size:
                bad.append(Mismatch(entry.file, f"{entry.sha256} ({entry.size} bytes)", f"{found} ({size} bytes)"))
    return checked, bad


def _folder(value: str, what: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_dir():
        raise UsageError(f"{what} {path} is not a folder.")
    return path


def run_verify(cache: str | None, site: str | None, echo: Callable[[str], None] = print) -> int:
    """Verify the cache (`cache`, else the default one when it exists) and `site`; 0 clean, 1 on
    any mismatch. Usage errors (nothing to verify, a missing folder) raise UsageError (exit 2)."""
    cache_dir = _folder(cache, "cache") if cache else None
    if cache_dir is None and site is None:
        default = cache_root()
        if not default.is_dir():
            raise UsageError(f"nothing to verify: pass --cache DIR or --site DIR (the default cache {default} "
                             "does not exist).")
        cache_dir = default
    site_dir = _folder(site, "site") if site else None
    summary, bad = [], []
    if cache_dir is not None:
        n, found = verify_cache(Cache(cache_dir))
        summary.append(f"{n} cache entries in {cache_dir}")
        bad += [Mismatch(str(Path(cache_dir) / m.path), m.expected, m.found) for m in found]
    if site_dir is not None:
        n, found = verify_site(site_dir)
        summary.append(f"{n} site files in {site_dir}")
        bad += [Mismatch(str(site_dir / m.path), m.expected, m.found) for m in found]
    for m in bad:
        echo(m.line())
    status = f"{len(bad)} mismatch{'es' if len(bad) != 1 else ''}" if bad else "ok"
    echo(f"{status}: checked {' and '.join(summary)}")
    return 1 if bad else 0


def cli_verify(args) -> int:
    return run_verify(args.cache, args.site)
