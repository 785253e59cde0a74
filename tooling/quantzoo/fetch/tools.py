"""The outside programs some source kinds run (npm, apt-get, dpkg-deb): found on PATH or one
clear error naming what to install, run with their output captured, and the downloaded package
kept once under ``downloads/<kind>/<name>/`` (see ARCHITECTURE.md, "Fetch").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

from ..cache import Cache
from ..errors import FetchError


def require(program: str, needed_for: str, install: str) -> str:
    """The full path of `program`, or FetchError saying what needs it and how to install it.

    >>> require("sh", "tests", "a shell").endswith("/sh")
    True
    >>> require("no-such-program-qz", "npm sources", "apt-get install npm")
    Traceback (most recent call last):
    quantzoo.errors.FetchError: no-such-program-qz is not installed (not found on PATH), and npm sources need it. Install it: apt-get install npm; then fetch again.
    """
    found = shutil.which(program)
    if not found:
        raise FetchError(f"{program} is not installed (not found on PATH), and {needed_for} need it. "
                         f"Install it: {install}; then fetch again.")
    return found


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `cmd` in `cwd` with captured text output (the caller reads the return code)."""
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def tail(text: str, drop: tuple[str, ...] = (), limit: int = 1500) -> str:
    """The end of a program's output for an error message, without lines containing `drop`.

    >>> tail("W: noise\\nE: Version '9' for 'x' was not found\\n", drop=("W: ",))
    "E: Version '9' for 'x' was not found"
    """
    lines = [line for line in text.strip().splitlines() if not any(d in line for d in drop)]
    return "\n".join(lines)[-limit:] or "no output"


def kept_download(cache: Cache, kind: str, name: str, suffix: str,
                  download: Callable[[Path], None]) -> Path:
    """The one file ending in `suffix` under ``downloads/<kind>/<name>/``, made on first use by
    ``download(staging_folder)`` (which must leave exactly one such file there). The folder is
    moved into place only when complete, under a file lock, so two processes download it once."""
    folder = cache.downloads / kind / name
    with cache.lock(f"{kind}-{name}"):
        found = sorted(folder.glob(f"*{suffix}")) if folder.is_dir() else []
        if found:
            return found[0]
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=folder.parent))
        try:
            download(staging)
            made = sorted(staging.glob(f"*{suffix}"))
            if len(made) != 1:
                raise FetchError(f"{kind} download of {name} left {len(made)} *{suffix} files in {staging} "
                                 f"({[p.name for p in made]}), expected exactly one.")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder / made[0].name


def first_member(tar_path: Path) -> str:
    """The name of the first member of a tar archive (compressed or not): reads one header only."""
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            info = tar.next()
    except (tarfile.TarError, OSError) as e:
        raise FetchError(f"cannot read {tar_path.name} as a tar archive: {e}. Delete it and fetch again.") from e
    if info is None:
        raise FetchError(f"{tar_path.name} is an empty archive: there is no member to take.")
    return info.name
