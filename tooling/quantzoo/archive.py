"""Reading members out of wheels, sdists and archives, safely.

A member pattern is a posix path inside the archive, or a glob: ``*`` and ``?`` stay inside one
path segment, ``**`` crosses segments, and a trailing ``/`` or ``/**`` means everything below a
folder. No member may land outside its destination: absolute names, ``..`` segments, links and
device files are refused with the archive and member named.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import zipfile
from functools import lru_cache
from pathlib import Path, PurePosixPath

from .errors import FetchError

GLOB_CHARS = set("*?[")


def is_glob(pattern: str) -> bool:
    """True when a member pattern names a set of files rather than one file.

    >>> is_glob("magika/models/standard_v3_3/model.onnx"), is_glob("pkg/data/*.png"), is_glob("tests/x/")
    (False, True, True)
    """
    return bool(GLOB_CHARS & set(pattern)) or pattern.endswith("/")


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern:
    if pattern.endswith("/"):
        pattern += "**"
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c)))
        i += 1
    return re.compile("".join(out) + r"\Z")


def match(pattern: str, name: str) -> bool:
    """Whether archive member `name` is selected by `pattern`.

    >>> match("a/**", "a/b/c.txt"), match("a/*.txt", "a/b/c.txt"), match("a/", "a/b"), match("a/**/c.txt", "a/c.txt")
    (True, False, True, True)
    """
    return bool(_glob_regex(pattern).match(name)) if is_glob(pattern) else name == pattern


def glob_root(pattern: str) -> str:
    """The folder part of a glob before its first wildcard segment: the prefix stripped on extract.

    >>> glob_root("pygments-2.21.0/tests/examplefiles/**"), glob_root("skimage/data/*.png")
    ('pygments-2.21.0/tests/examplefiles', 'skimage/data')
    """
    parts = []
    for seg in PurePosixPath(pattern).parts:
        if GLOB_CHARS & set(seg):
            break
        parts.append(seg)
    return "/".join(parts)


def _safe_relpath(name: str, archive: Path) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise FetchError(
            f"refusing to unpack {archive.name}: member {name!r} would land outside the destination "
            "(absolute path or '..'). The archive is unsafe or corrupt; nothing was extracted.")
    return p


class _Archive:
    """One interface over zip (wheels) and tar (sdists): names, and reading a member's bytes."""

    def __init__(self, path: Path):
        self.path = path
        name = path.name.lower()
        try:
            if name.endswith((".whl", ".zip")) or zipfile.is_zipfile(path):
                self._zip = zipfile.ZipFile(path)
                self._tar = None
            else:
                self._tar = tarfile.open(path, "r:*")
                self._zip = None
        except (zipfile.BadZipFile, tarfile.TarError, OSError) as e:
            raise FetchError(f"cannot open archive {path}: {e}. Delete it and fetch again.") from e

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        (self._zip or self._tar).close()

    def members(self) -> list[tuple[str, object, str | None]]:
        """(name, handle, why it cannot be extracted or None) for every member, names checked for
        safety; directories left out. A link or device file is refused only if a pattern selects it
        (a Debian package holds links beside the files a manifest takes)."""
        out = []
        if self._zip is not None:
            for info in self._zip.infolist():
                _safe_relpath(info.filename, self.path)
                mode = info.external_attr >> 16
                if (mode & 0o170000) == 0o120000:
                    out.append((info.filename, info, "is a symbolic link; links are not extracted"))
                elif not info.is_dir():
                    out.append((info.filename, info, None))
        else:
            for info in self._tar.getmembers():
                _safe_relpath(info.name, self.path)
                if info.issym() or info.islnk() or info.isdev():
                    out.append((info.name, info, "is a link or device file"))
                elif info.isfile():
                    out.append((info.name, info, None))
        return out

    def open(self, handle):
        if self._zip is not None:
            return self._zip.open(handle)
        return self._tar.extractfile(handle)


def extract(archive: str | Path, pattern: str, dest: Path) -> list[Path]:
    """Extract the members selected by `pattern` into folder `dest`; return the files written.

    A single-file pattern lands as ``dest/<basename>``; a glob keeps paths relative to its
    `glob_root`. Raises FetchError naming the archive and pattern when nothing matches.
    """
    archive = Path(archive)
    dest = Path(dest)
    root = glob_root(pattern) if is_glob(pattern) else str(PurePosixPath(pattern).parent)
    written = []
    with _Archive(archive) as arc:
        members = arc.members()
        chosen = [(n, h) for n, h, _ in members if match(pattern, n)]
        for name, _, why in members:
            if why and match(pattern, name):
                raise FetchError(f"refusing to unpack {archive.name}: member {name!r} {why}. Nothing was extracted.")
        if not chosen:
            near = sorted(n for n, _, _ in members if root and str(PurePosixPath(n)).startswith(root))[:5]
            hint = f" Members under {root!r}: {near}" if near else ""
            raise FetchError(f"no member of {archive.name} matches {pattern!r}.{hint} "
                             "Check the manifest's member path.")
        for name, handle in chosen:
            rel = PurePosixPath(name)
            if root and root != ".":
                rel = rel.relative_to(root) if str(rel).startswith(root + "/") else rel
            target = dest.joinpath(*rel.parts)
            if dest.resolve() not in target.resolve().parents:
                raise FetchError(f"refusing to unpack {archive.name}: member {name!r} would land outside "
                                 f"{dest}. Nothing usable was extracted.")
            target.parent.mkdir(parents=True, exist_ok=True)
            with arc.open(handle) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            written.append(target)
    return written
