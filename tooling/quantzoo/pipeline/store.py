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


def artifact_data_name(job) -> str:
    """The name of an artifact's external data file, should it need one: beside the ``.onnx`` in
    the cache and beside the published file, so it names the model and variant (readable where
    it is published) and the key (unique in the cache).

    >>> from types import SimpleNamespace as N
    >>> artifact_data_name(N(model="m", variant="linear-4", keys=N(artifact="0123456789abcdef" * 4)))
    'm-linear-4-0123456789ab.onnx.data'
    """
    return f"{job.model}-{job.variant}-{job.keys.artifact[:12]}.onnx.data"


def artifact_files(cache: Cache, meta: dict) -> list[tuple[Path, dict]]:
    """The files an artifact keeps beside its ``.onnx`` (external data), with their records."""
    return [(cache.derived("artifacts", f["file"], ""), f) for f in meta.get("files", [])]


def read_artifact(cache: Cache, key: str) -> dict | None:
    """The stored artifact's record ({"sha256", "size", ...}) when the artifact is complete:
    its ``.onnx`` and every file of its ``files`` (external data) with the recorded size and sha256.

    >>> import tempfile
    >>> read_artifact(Cache(tempfile.mkdtemp()), "0" * 64) is None
    True
    """
    onnx_path, meta_path = artifact_paths(cache, key)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for path, want in [(onnx_path, meta), *artifact_files(cache, meta)]:
        if not path.is_file() or path.stat().st_size != want.get("size"):
            return None
        found = hashed(path)
        if found != want.get("sha256"):
            with contextlib.suppress(FileNotFoundError):  # another process moved it first
                cache.quarantine(path, want.get("sha256"), found, f"artifact {key}", then="building it again")
            return None
    return meta


def comparison_path(cache: Cache, key: str) -> Path:
    return cache.derived("comparisons", key, ".json")


def preview_path(cache: Cache, key: str, part: str = "") -> Path:
    """A preview PNG; `part` "input" is the input image shown next to the float model's output."""
    return cache.derived("previews", key + (f"-{part}" if part else ""), ".png")


def graph_info_path(cache: Cache, key: str) -> Path:
    return cache.derived("graph-info", key, ".json")


def runtimes_path(cache: Cache, key: str) -> Path:
    """A model file's runtime compatibility matrix (``runtimes.compatibility``) as JSON."""
    return cache.derived("runtimes", key, ".json")


def compat_keys(job, artifact_sha256: str) -> tuple[str, str]:
    """The matrix keys of a job's artifact and of its float model, for the installed runtimes."""
    from ..runtimes import runtime_identity
    from .keys import compat_key

    rt = runtime_identity()
    return (compat_key(artifact_sha256, job.float_sha256, job.keys.identity, rt),
            compat_key(job.float_sha256, job.float_sha256, job.keys.identity, rt))


def read_runtimes(cache: Cache, job, artifact_sha256: str) -> tuple[dict, dict]:
    """The stored runtime matrices of a job's artifact and of its float model ({} when missing)."""
    out = []
    for key in compat_keys(job, artifact_sha256):
        try:
            out.append(json.loads(runtimes_path(cache, key).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            out.append({})
    return out[0], out[1]


def flexible_path(cache: Cache, key: str) -> Path:
    """A float model made flexible (`shapes.make_flexible`) for a manifest's `shapes`."""
    return cache.derived("flexible", key, ".onnx")


def shapes_keys(job, artifact_sha256: str) -> tuple[str, str]:
    """The shape-check keys of a job's artifact and of its float model, for this onnxruntime."""
    import onnxruntime

    from .keys import shapes_key

    return (shapes_key(artifact_sha256, job.float_sha256, job.shapes, onnxruntime.__version__, job.keys.identity),
            shapes_key(job.float_sha256, job.float_sha256, job.shapes, onnxruntime.__version__, job.keys.identity))


def shapes_path(cache: Cache, key: str) -> Path:
    """One model file's shape checks and throughput (`pipeline.flexible.measure`) as JSON."""
    return cache.derived("shapes", key, ".json")


def read_shapes(cache: Cache, job, artifact_sha256: str) -> tuple[dict | None, dict | None]:
    """The stored shape results of a job's artifact and of its float model (None: none; always
    None for a model without `shapes`)."""
    if not job.shapes:
        return None, None
    out = []
    for key in shapes_keys(job, artifact_sha256):
        try:
            out.append(json.loads(shapes_path(cache, key).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            out.append(None)
    return out[0], out[1]


def is_done(cache: Cache, job) -> bool:
    """Whether every stored result of one `plan.Job` is already in the cache."""
    meta = read_artifact(cache, job.keys.artifact)
    if meta is None:
        return False
    if not comparison_path(cache, job.keys.comparison(meta["sha256"])).is_file():
        return False
    if not all(runtimes_path(cache, k).is_file() for k in compat_keys(job, meta["sha256"])):
        return False
    if job.shapes and not all(shapes_path(cache, k).is_file() for k in shapes_keys(job, meta["sha256"])):
        return False
    if job.previews:
        if not preview_path(cache, job.keys.preview(meta["sha256"])).is_file():
            return False
        if not preview_path(cache, job.keys.float_preview).is_file():
            return False
    return True
