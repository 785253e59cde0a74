"""Samples: the record every dataset adapter returns, and the readers of plain folders.

`Sample` is one item of a dataset; `list_files`, `thin` and `label_from_path` are the selection
helpers every adapter shares; ``files``, ``images`` and ``arrays`` read a plain folder. The
registry of adapters (`datasets.DATASET_ADAPTERS`) imports from here, as do the adapters in
their own modules (`photos`, `speech`), so none of them imports the registry
(ARCHITECTURE.md, "How to add a dataset adapter or a preprocessor").

Everything here is deterministic: files are visited in sorted order.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import QuantzooError


@dataclass(frozen=True)
class Sample:
    """One item of a dataset: a stable key, the data a preprocessor reads, and an optional label.

    `data` is a `Path` (``files``), a Pillow image (``images``, ``rendered-text-lines``) or a
    mapping of arrays (``arrays``) or a `speech.Audio` (``espeak-speech``, ``pitch-frames``, ``wav-files``).
    """

    key: str
    data: Any
    label: str | None = None



# --- selection helpers -----------------------------------------------------------------------

def globs(params: dict, key: str) -> list[str]:
    """The glob list under `key` in `params` (one string is a list of one)."""
    v = params.get(key) or []
    return [v] if isinstance(v, str) else list(v)


def _matches(rel: str, patterns: list[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def list_files(root: Path, params: dict) -> list[tuple[str, Path]]:
    """Every regular file under `root` as (posix relative path, path), sorted, filtered by the
    ``include``/``exclude`` glob lists in `params` (matched against the relative path or the
    file name), then thinned to ``limit`` evenly spaced files.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for n in ["a/x.py", "a/x.py.output", "b/y.c"]:
    ...     (d / n).parent.mkdir(exist_ok=True); _ = (d / n).write_text("1")
    >>> [r for r, _ in list_files(d, {"exclude": ["*.output"]})]
    ['a/x.py', 'b/y.c']
    """
    root = Path(root)
    if root.is_file():
        rows = [(root.name, root)]
    else:
        rows = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*")
                      if p.is_file() and not p.is_symlink())
    inc, exc = globs(params, "include"), globs(params, "exclude")
    rows = [(r, p) for r, p in rows if (not inc or _matches(r, inc)) and not _matches(r, exc)]
    return thin(rows, params.get("limit"))


def thin(items: list, limit: int | None) -> list:
    """At most `limit` items, evenly spread over the list (not just its head), order kept.

    >>> thin(list(range(10)), 4)
    [0, 2, 5, 7]
    """
    if not limit or limit >= len(items):
        return list(items)
    n = len(items)
    return [items[(i * n) // limit] for i in range(limit)]


def label_from_path(rel: str, spec: Any) -> str | None:
    """A sample's label from its relative path under a dataset's ``labels`` spec:
    ``{from: folder}`` is the top folder (None for files at the top), ``{from: filename}`` the
    name without its last suffix.

    >>> label_from_path("python/example.py", {"from": "folder"}), label_from_path("cat.png", {"from": "filename"})
    ('python', 'cat')
    >>> label_from_path("top.txt", {"from": "folder"}) is None
    True
    """
    how = spec.get("from") if isinstance(spec, dict) else None
    if how == "folder":
        return rel.split("/", 1)[0] if "/" in rel else None
    if how == "filename":
        name = rel.rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[0] if "." in name else name
    return None


# --- dataset adapters -------------------------------------------------------------------------

def files_dataset(root: Path, params: dict, skipped: list) -> list[Sample]:
    """Every file (path only; the preprocessor reads what it needs). Labels per ``params['labels']``.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "c").mkdir(); _ = (d / "c" / "m.c").write_text("int x;")
    >>> [(s.key, s.label) for s in files_dataset(d, {"labels": {"from": "folder"}}, [])]
    [('c/m.c', 'c')]
    """
    spec = params.get("labels")
    return [Sample(rel, path, label_from_path(rel, spec)) for rel, path in list_files(root, params)]


def images_dataset(root: Path, params: dict, skipped: list) -> list[Sample]:
    """Every decodable image (first frame), as a Pillow image; other files are skipped and counted.

    >>> import tempfile, pathlib; from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp()); Image.new("RGB", (4, 3)).save(d / "a.png")
    >>> _ = (d / "notes.txt").write_text("not an image"); skipped = []
    >>> [s.data.size for s in images_dataset(d, {}, skipped)], [k for k, _ in skipped]
    ([(4, 3)], ['notes.txt'])
    """
    from PIL import Image, UnidentifiedImageError

    spec = params.get("labels")
    out = []
    for rel, path in list_files(root, params):
        try:
            with Image.open(path) as im:
                im.seek(0)
                im.load()
                img = im.copy()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            skipped.append((rel, f"not a readable image ({type(e).__name__}: {str(e)[:80]})"))
            continue
        out.append(Sample(rel, img, label_from_path(rel, spec)))
    return out


def arrays_dataset(root: Path, params: dict, skipped: list) -> list[Sample]:
    """.npy files (one array: the model's single input) and .npz files (arrays named by input).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); np.save(d / "a.npy", np.zeros((2, 3), np.float32))
    >>> [(s.key, s.data[None].shape) for s in arrays_dataset(d, {}, [])]
    [('a.npy', (2, 3))]
    """
    spec = params.get("labels")
    out = []
    for rel, path in list_files(root, params):
        try:
            if path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    data = {k: z[k] for k in sorted(z.files)}
            elif path.suffix == ".npy":
                data = {None: np.load(path, allow_pickle=False)}
            else:
                skipped.append((rel, "not a .npy or .npz file"))
                continue
        except (OSError, ValueError) as e:
            skipped.append((rel, f"not a readable array file ({type(e).__name__}: {str(e)[:80]})"))
            continue
        out.append(Sample(rel, data, label_from_path(rel, spec)))
    return out
