"""What every index.json entry shares: the problem-collecting parser, the checks of file, size
and sha256 fields, and `FileEntry`, a published file. See `quantzoo.catalog` for the document."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from ..errors import QuantzooError

_SHA = re.compile(r"^[0-9a-f]{64}$")
_FIX = ("The site's index.json does not follow the quantzoo catalog contract; rebuild the site with "
        "`quantzoo build` or report it to the catalog's maintainers.")


def is_url(s: str) -> bool:
    """Whether `s` is an http(s) URL (else a path relative to the site root).

    >>> is_url("https://cdn.example/a.onnx"), is_url("files/m/a.onnx")
    (True, False)
    """
    return urlparse(str(s)).scheme.lower() in ("http", "https")


def file_name(file: str) -> str:
    """The published file name: the last path segment of `file` (a site path or a URL).

    >>> file_name("files/m/m-kmeans-4.onnx"), file_name("https://cdn.example/zoo/m/m%20x.onnx?sig=1")
    ('m-kmeans-4.onnx', 'm x.onnx')
    >>> file_name("files/m/")
    Traceback (most recent call last):
    ...
    quantzoo.errors.QuantzooError: 'files/m/' does not end in a file name
    """
    path = urlparse(file).path if is_url(file) else file
    name = unquote(path.rsplit("/", 1)[-1])
    if not name or name in (".", "..") or any(c in name for c in "/\\\x00"):
        raise QuantzooError(f"{file!r} does not end in a file name")
    return name


def kind_of(x: Any) -> str:
    if x is None:
        return "nothing"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(x), type(x).__name__) + (f" {x!r}" if isinstance(x, (str, int, float)) else "")


def malformed(where: str, problems: list[str]) -> QuantzooError:
    n = len(problems)
    return QuantzooError(f"{where} is malformed ({n} problem{'s' if n != 1 else ''}):\n"
                         + "\n".join(f"  {p}" for p in problems) + "\n" + _FIX)


def number(x: Any) -> float | None:
    """A JSON number as a float; None for null, booleans, strings and NaN."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x:
        return None
    return float(x)


class Entry:
    """`from_json` for every entry: parse, collecting problems under the key `where`, then raise."""

    @classmethod
    def from_json(cls, doc: Any, where: str):
        problems: list[str] = []
        entry = cls._parse(doc, where, problems)
        if problems:
            raise malformed(where, problems)
        return entry


def check_file(doc: dict, key: str, problems: list[str]) -> bool:
    """Problems of the file, size and sha256 fields; whether there were none."""
    before = len(problems)
    if not isinstance(doc.get("file"), str) or not doc.get("file"):
        problems.append(f"{key}.file: expected a path or URL, found {kind_of(doc.get('file'))}")
    else:
        try:
            file_name(doc["file"])
        except QuantzooError as e:
            problems.append(f"{key}.file: {e}")
    size = doc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        problems.append(f"{key}.size: expected a byte count, found {size!r}")
    sha = doc.get("sha256")
    if not isinstance(sha, str) or not _SHA.match(sha):
        problems.append(f"{key}.sha256: expected 64 lowercase hex digits, found {sha!r}")
    return len(problems) == before


@dataclass(frozen=True)
class FileEntry(Entry):
    """A published file: where it is (site path or URL), its size and its sha256.

    >>> FileEntry.from_json({"file": "files/m/m-float.onnx", "size": 3, "sha256": "a" * 64}, "float").name
    'm-float.onnx'
    """

    file: str
    size: int
    sha256: str

    @property
    def name(self) -> str:
        return file_name(self.file)

    def to_json(self) -> dict:
        return {"file": self.file, "size": self.size, "sha256": self.sha256}

    @classmethod
    def _parse(cls, doc: Any, key: str, problems: list[str]) -> FileEntry | None:
        if not isinstance(doc, dict):
            problems.append(f"{key}: expected an object with file, size and sha256, found {kind_of(doc)}")
            return None
        return cls(doc["file"], doc["size"], doc["sha256"]) if check_file(doc, key, problems) else None


def parse_unique(doc: Any, key: str, problems: list[str], parse, ident, expected: str, twice: str) -> tuple:
    """A list of entries read by `parse(item, key, problems)`, none of them twice by `ident`.

    >>> problems = []
    >>> parse_unique([1, 2, 2], "k", problems, lambda d, k, p: d, str, "a list", "a number is listed twice")
    (1, 2, 2)
    >>> problems
    ['k: a number is listed twice (1, 2, 2)']
    """
    if not isinstance(doc, list):
        problems.append(f"{key}: expected {expected}, found {kind_of(doc)}")
        return ()
    items = [x for x in (parse(d, f"{key}[{i}]", problems) for i, d in enumerate(doc)) if x is not None]
    ids = [ident(x) for x in items]
    if len(set(ids)) != len(ids):
        problems.append(f"{key}: {twice} ({', '.join(sorted(ids))})")
    return tuple(items)


def parse_files(doc: Any, key: str, problems: list[str]) -> tuple[FileEntry, ...]:
    """A variant's extra files: each a FileEntry whose name differs from the others'."""
    return parse_unique(doc, key, problems, FileEntry._parse, lambda f: f.name,
                        "a list of {file, size, sha256}", "two files have the same name")
