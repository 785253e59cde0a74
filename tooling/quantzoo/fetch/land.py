"""Landing verified content in the cache: ``blobs/<sha256>`` for a file, ``trees/<sha256>/`` for a
folder (complete once its ``<sha256>.complete`` marker exists). Every source kind ends here.
See ARCHITECTURE.md, "The cache".
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .. import archive
from ..cache import Cache, commit_file, hashed, hashed_tree, tree_listing, tree_sha256
from ..errors import ChecksumError

MANIFEST_STEP = "If the upstream file changed on purpose, update sha256 and size in the manifest."


def marker(tree: Path) -> Path:
    """The file whose presence says `tree` is complete.

    It sits beside the tree, not in it, so the tree's content (and hash) is exactly the source's.

    >>> marker(Path("/c/trees/ab")).name
    'ab.complete'
    """
    return tree.with_name(tree.name + ".complete")


def by_sha256(source: dict, cache: Cache, tree: bool) -> Path | None:
    """The cached path of a source addressed by its sha256, or None when it is not cached (yet).

    >>> by_sha256({"sha256": "0" * 64}, Cache("/nonexistent"), tree=False) is None
    True
    """
    sha = source.get("sha256")
    if not sha:
        return None
    if tree:
        path = cache.tree(sha)
        return path if marker(path).is_file() else None
    path = cache.blob(sha)
    return path if path.is_file() else None


def recorded_sha256(path: Path) -> str | None:
    """The sha256 the cache recorded for an entry: a blob's name, a folder's tree hash (written in
    its marker: a folder unpacked from an archive is named by the archive's hash), a converted or
    derived ``.onnx`` file's ``sha256`` in the ``.json`` record beside it (None without one).

    >>> recorded_sha256(Path("/c/blobs/ab12"))
    'ab12'
    """
    if path.suffix == ".onnx":
        try:
            record = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            return (record.get("onnx") or {}).get("sha256") or record.get("sha256")
        except (OSError, ValueError, AttributeError):
            return None
    if path.is_dir():
        try:
            words = marker(path).read_text().split()
        except OSError:
            words = []
        return words[0] if words else path.name
    return path.name


def rehash(path: Path) -> str:
    """The sha256 of a cached file or folder as it is on disk now (once per process, see `cache.hashed`)."""
    return hashed_tree(path) if path.is_dir() else hashed(path)


def intact(path: Path) -> bool:
    """Whether a cached entry still hashes to what the cache recorded for it (no record: trusted)."""
    expected = recorded_sha256(path)
    return expected is None or rehash(path) == expected


def verified(path: Path | None, cache: Cache, what: str) -> Path | None:
    """`path` if its bytes are the recorded ones; otherwise moved to ``quarantine/`` (both hashes
    reported) and None, so that the caller fetches it again. Call it holding the entry's lock."""
    if path is None or intact(path):
        return path
    cache.quarantine(path, recorded_sha256(path), rehash(path), what)
    return None


def staging(cache: Cache, prefix: str = ".staging-") -> Path:
    """A fresh temp folder under the cache root (the same file system as blobs/ and trees/)."""
    tmp = cache.root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=tmp))


def temp_file(cache: Cache, prefix: str = ".copy-") -> Path:
    tmp = cache.root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=prefix, dir=tmp)
    os.close(fd)
    return Path(name)


def land_file(tmp_file: Path, source: dict, cache: Cache, where: str) -> Path:
    """Move `tmp_file` to ``blobs/<sha256>`` if it matches the source's sha256 and size."""
    return commit_file(tmp_file, cache.blob(source["sha256"]), source["sha256"], source.get("size"), where,
                       against="the manifest", next_step=MANIFEST_STEP)


def install_tree(tmp_dir: Path, dest: Path, sha256: str) -> Path:
    """Move a finished folder to `dest` and mark it complete (a leftover incomplete one is replaced);
    the marker records `sha256`, the tree hash of the folder's content (`recorded_sha256`)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)  # an incomplete earlier attempt (no .complete marker)
    os.replace(tmp_dir, dest)
    marker(dest).write_text(f"{sha256}\n")
    return dest


def land_tree(tmp_dir: Path, source: dict, cache: Cache, where: str) -> Path:
    """Move folder `tmp_dir` to ``trees/<sha256>/`` if its tree hash and size match the source's."""
    listing = tree_listing(tmp_dir)
    got = tree_sha256(listing)
    size = sum(s for _, _, s in listing)
    expected = source["sha256"]
    if got != expected or (source.get("size") is not None and size != source["size"]):
        shutil.rmtree(tmp_dir, ignore_errors=True)
        size_note = f" ({source['size']} bytes)" if source.get("size") is not None else ""
        raise ChecksumError(
            f"{where} does not match the manifest: expected tree sha256 {expected}{size_note} but got {got} "
            f"({len(listing)} files, {size} bytes). Nothing was written to the cache. If the upstream files "
            "changed on purpose, update sha256 and size in the manifest.")
    return install_tree(tmp_dir, cache.tree(expected), got)


def land_from_archive(arc: Path, source: dict, cache: Cache, where: str, tree: bool) -> Path:
    """Extract the source's member(s) from archive `arc` and land them as a file or a tree."""
    folder = staging(cache)
    try:
        written = archive.extract(arc, source.get("member") or "**", folder)
        if tree:
            return land_tree(folder, source, cache, where)
        return land_file(written[0], source, cache, where)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
