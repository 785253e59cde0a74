"""debian sources: a member of a pinned Debian package (.deb).

``apt-get download NAME=VERSION`` fetches the .deb once into
``downloads/debian/<name>_<version>/``: apt, not our downloader, talks to the archive, so the
machine's apt sources, proxy and keys apply (``APT_CONFIG`` too), and apt checks the .deb against
the signed package lists. A .deb is an ``ar`` archive whose ``data.tar.{xz,gz,bz2,zst}`` holds the
installed files; the manifest's ``member`` is a path as installed, without the leading slash
(``usr/share/doc/opencv-doc/examples/data/messi5.jpg``), or a glob that lands as a folder.
xz, gz and bz2 are read in Python; zst needs the ``zstandard`` module or ``dpkg-deb``.
See ARCHITECTURE.md, "Fetch".
"""

from __future__ import annotations

import atexit
import bz2
import gzip
import lzma
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Iterator

from .. import archive
from ..cache import Cache
from ..errors import FetchError
from .land import land_from_archive, staging
from .tools import first_member, kept_download, require, run, tail

INSTALL = "apt (a Debian or Ubuntu system: apt-get comes with it)"
AR_MAGIC = b"!<arch>\n"


def folder_name(package: str, version: str) -> str:
    """The download folder's name for one pinned package (an epoch's colon written as apt does).

    >>> folder_name("opencv-doc", "4.6.0+dfsg-12"), folder_name("x", "1:2.0-1")
    ('opencv-doc_4.6.0+dfsg-12', 'x_1%3a2.0-1')
    """
    return f"{package}_{version.replace(':', '%3a')}"


def _download(package: str, version: str, staging_dir: Path) -> None:
    apt_get = require("apt-get", "debian sources", INSTALL)
    spec = f"{package}={version}"
    proc = run([apt_get, "download", "-q", spec], staging_dir)
    if proc.returncode != 0:
        raise FetchError(f"apt-get could not download {spec}: {tail(proc.stderr, drop=('W: ',))}. Check the "
                         f"package name and version in the manifest (`apt-cache policy {package}` lists the "
                         "versions apt knows), and run `apt-get update` if the lists are stale.")


def apt_download(package: str, version: str, cache: Cache) -> Path:
    """The .deb of ``package=version``, downloaded by apt-get on first use and kept in the cache."""
    return kept_download(cache, "debian", folder_name(package, version), ".deb",
                         lambda staging_dir: _download(package, version, staging_dir))


def ar_members(deb: Path) -> Iterator[tuple[str, int, int]]:
    """(name, offset, size) of every member of an ``ar`` archive (the format of a .deb)."""
    with open(deb, "rb") as f:
        if f.read(len(AR_MAGIC)) != AR_MAGIC:
            raise FetchError(f"{deb.name} is not a Debian package: it does not start with the ar magic "
                             f"{AR_MAGIC!r}. Delete it and fetch again.")
        while True:
            header = f.read(60)
            if not header:
                return
            if len(header) < 60 or header[58:60] != b"`\n":
                raise FetchError(f"{deb.name} is a damaged ar archive (bad member header at byte "
                                 f"{f.tell() - len(header)}). Delete it and fetch again.")
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip())
            offset = f.tell()
            yield name, offset, size
            f.seek(offset + size + (size & 1))  # members are padded to an even length


def _copy_range(src: Path, offset: int, size: int, dest: Path) -> None:
    with open(src, "rb") as f, open(dest, "wb") as out:
        f.seek(offset)
        left = size
        while left:
            chunk = f.read(min(left, 1 << 20))
            if not chunk:
                raise FetchError(f"{src.name} ends inside its member {dest.name}. Delete it and fetch again.")
            out.write(chunk)
            left -= len(chunk)


def _zst_to_tar(deb: Path, zst: Path, dest: Path) -> None:
    try:
        import zstandard
    except ImportError:
        dpkg_deb = require("dpkg-deb", f"{deb.name}'s {zst.name}", "`pip install zstandard` or dpkg")
        flag = "--fsys-tarfile" if zst.name.startswith("data.") else "--ctrl-tarfile"
        with open(dest, "wb") as out:
            proc = subprocess.run([dpkg_deb, flag, str(deb)], stdout=out, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise FetchError(f"dpkg-deb {flag} {deb.name} failed: {proc.stderr.decode(errors='replace')}")
        return
    with open(zst, "rb") as f, open(dest, "wb") as out:
        zstandard.ZstdDecompressor().copy_stream(f, out)


def inner_tar(deb: Path, folder: Path, which: str = "data") -> Path:
    """The .deb's ``data`` (installed files) or ``control`` archive, copied out into `folder` as a
    tar file Python's tarfile reads."""
    for name, offset, size in ar_members(deb):
        if name.startswith(f"{which}.tar"):
            out = folder / name
            _copy_range(deb, offset, size, out)
            if name.endswith(".zst"):
                plain = folder / f"{which}.tar"
                _zst_to_tar(deb, out, plain)
                out.unlink()
                return plain
            return out
    raise FetchError(f"{deb.name} has no {which}.tar member: it is not a Debian binary package.")


def data_tar(deb: Path, folder: Path) -> Path:
    return inner_tar(deb, folder, "data")


_OPEN = {".xz": lzma.open, ".gz": gzip.open, ".bz2": bz2.open}
_PLAIN: dict[str, Path] = {}
_PLAIN_LOCK = threading.Lock()


def plain_data_tar(deb: Path, cache: Cache) -> Path:
    """The .deb's data archive as an uncompressed tar, made once per process and package file and
    removed when the process exits. Members are then found by seeking, not by decompressing the
    archive again for each: opencv-doc's 91 MiB data.tar.xz takes ~5 s to decompress (twice per
    member: a listing, then the read), and the catalog's datasets read 41 members of it."""
    key = str(Path(deb).resolve())
    with _PLAIN_LOCK:  # fetch threads asking for one package wait for one decompression
        if key in _PLAIN and _PLAIN[key].is_file():
            return _PLAIN[key]
        folder = staging(cache, ".deb-data-")
        atexit.register(shutil.rmtree, folder, True)
        tar = data_tar(deb, folder)
        if tar.suffix in _OPEN:
            plain = folder / "data.tar"
            with _OPEN[tar.suffix](tar) as src, open(plain, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            tar.unlink()
            tar = plain
        _PLAIN[key] = tar
        return tar


def _installed(deb: Path, cache: Cache, member: str) -> tuple[Path, str]:
    """The data archive and `member` as it is named there: dpkg-deb writes ./usr/..., the manifest usr/..."""
    tar = plain_data_tar(deb, cache)
    first = first_member(tar)
    prefix = "./" if first == "." or first.startswith("./") else ""
    return tar, prefix + member.lstrip("/")


def fetch_debian(source: dict, cache: Cache, base_dir: Path | None = None) -> Path:
    deb = apt_download(source["package"], source["version"], cache)
    member = source["member"].lstrip("/")
    tar, inside = _installed(deb, cache, member)
    return land_from_archive(tar, {**source, "member": inside}, cache, f"member {member!r} of {deb.name}",
                             archive.is_glob(member))


def probe_debian(source: dict, cache: Cache, base_dir: Path | None, folder: Path) -> Path:
    """One member's unverified bytes, written inside `folder` (quantzoo add)."""
    deb = apt_download(source["package"], source["version"], cache)
    tar, inside = _installed(deb, cache, source["member"])
    return archive.extract(tar, inside, folder / "member")[0]


def _control(deb: Path, folder: Path) -> dict[str, str]:
    import email.parser
    import tarfile

    with tarfile.open(inner_tar(deb, folder, "control"), "r:*") as t:
        info = next((m for m in t.getmembers() if m.name.lstrip("./") == "control"), None)
        text = t.extractfile(info).read().decode("utf-8", "replace") if info else ""
    return dict(email.parser.Parser().parsestr(text, headersonly=True).items())


def copyright_license(text: str) -> str | None:
    r"""The license of ``Files: *`` in a machine-readable debian/copyright (DEP-5), else None.

    >>> copyright_license("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
    ...                   "Files: *\nCopyright: 2000 Intel\nLicense: Apache-2.0\n\nFiles: debian/*\nLicense: GPL-2+\n")
    'Apache-2.0'
    """
    for paragraph in re.split(r"\n[ \t]*\n", text):
        fields = {}
        for line in paragraph.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
        if fields.get("files", "").split()[:1] == ["*"] and fields.get("license"):
            return fields["license"].splitlines()[0].strip()
    return None


def about_debian(source: dict, cache: Cache) -> dict:
    """What the package says about itself: its control fields and its copyright file's license."""
    deb = apt_download(source["package"], source["version"], cache)
    folder = staging(cache, ".deb-")
    try:
        control = _control(deb, folder)
        tar, inside = _installed(deb, cache, f"usr/share/doc/{source['package']}/copyright")
        try:
            text = archive.extract(tar, inside, folder / "copyright")[0].read_text("utf-8", "replace")
        except FetchError:
            text = ""
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"license": copyright_license(text), "homepage": control.get("Homepage"),
            "license_text": f"see /usr/share/doc/{source['package']}/copyright" if text else None,
            "authors": [],  # the Maintainer packs it for Debian: not the author
            "summary": (control.get("Description") or "").splitlines()[0] if control.get("Description") else None}


def describe_debian(source: dict) -> str:
    """>>> describe_debian({"package": "opencv-doc", "version": "4.6.0+dfsg-12", "member": "usr/a.jpg"})
    'debian:opencv-doc=4.6.0+dfsg-12:usr/a.jpg'
    """
    return f"debian:{source['package']}={source['version']}:{source['member']}"


def upstream_debian(source: dict) -> str | None:
    """The package's page in the Debian snapshot archive (every version it ever had).

    >>> upstream_debian({"package": "opencv-doc", "version": "4.6.0+dfsg-12"})
    'https://snapshot.debian.org/binary/opencv-doc/'
    """
    if source.get("url"):
        return source["url"]
    return f"https://snapshot.debian.org/binary/{source['package']}/" if source.get("package") else None
