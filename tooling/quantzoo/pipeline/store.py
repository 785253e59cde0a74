"""Where each stage keeps its results in the cache, and reading them back.

Every stored result is written atomically, so a file that exists is complete; an artifact also
has its record (``.json``) and counts only when the ``.onnx`` next to it has the recorded size and
sha256 (re-hashed once per process; a damaged one is moved to ``quarantine/`` and built again).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from ..cache import Cache, hashed


def artifact_paths(cache: Cache, key: str) -> tuple[Path, Path]:
    """The artifact (``.onnx``) and its record (``.json``) under one artifact key."""
    return cache.derived("artifacts", key, ".onnx"), cache.derived("artifacts", key, ".json")


def read_artifact(cache: Cache, key: str) -> dict | None:
    """The stored artifact's record ({"sha256", "size", ...}) when the artifact is complete.

    >>> import tempfile
    >>> read_artifact(Cache(tempfile.mkdtemp()), "0" * 64) is None
    True
    """
    onnx_path, meta_path = artifact_paths(cache, key)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not onnx_path.is_file() or onnx_path.stat().st_size != meta.get("size"):
        return None
    found = hashed(onnx_path)
    if found != meta.get("sha256"):
        with contextlib.suppress(FileNotFoundError):  # another process moved it first
            cache.quarantine(onnx_path, meta.get("sha256"), found, f"artifact {key}", then="building it again")
        return None
    return meta


def comparison_path(cache: Cache, key: str) -> Path:
    return cache.derived("comparisons", key, ".json")


def preview_path(cache: Cache, key: str, part: str = "") -> Path:
    """A preview PNG; `part` "input" is the input image shown next to the float model's output."""
    return cache.derived("previews", key + (f"-{part}" if part else ""), ".png")


def graph_info_path(cache: Cache, key: str) -> Path:
    return cache.derived("graph-info", key, ".json")


def is_done(cache: Cache, job) -> bool:
    """Whether every stored result of one `plan.Job` is already in the cache."""
    meta = read_artifact(cache, job.keys.artifact)
    if meta is None:
        return False
    if not comparison_path(cache, job.keys.comparison(meta["sha256"])).is_file():
        return False
    if job.previews:
        if not preview_path(cache, job.keys.preview(meta["sha256"])).is_file():
            return False
        if not preview_path(cache, job.keys.float_preview).is_file():
            return False
    return True
