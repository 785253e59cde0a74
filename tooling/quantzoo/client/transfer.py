"""Opening a catalog and fetching its files: read index.json (a URL or a local site folder),
then bring one file entry's verified bytes into the content-addressed cache (``blobs/<sha256>``)
and put a copy where the caller wants it. Bytes that do not match index.json never reach
either place (`cache.commit_file`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

from ..catalog import CatalogIndex, CustomOpEntry, FileEntry, ModelEntry, VariantEntry, is_url
from ..errors import FetchError, QuantzooError, UsageError
from .select import find_model

ENV_CATALOG = "QUANTZOO_CATALOG"
_INDEX_HINT = "Is the catalog URL the root of a quantzoo site (the folder that holds index.json), and is it reachable?"
_TAMPERED = ("Nothing was kept. The catalog's file is damaged or was replaced: tell its maintainers, "
             "or rebuild the site.")


def resolve(base: str | Path, file: str) -> str | Path:
    """Where a `file` of index.json lives: an absolute URL as is, else joined to the site root.

    >>> resolve("http://h/zoo/", "files/m/a.onnx"), resolve("http://h/zoo/", "https://cdn/a.onnx")
    ('http://h/zoo/files/m/a.onnx', 'https://cdn/a.onnx')
    >>> resolve(Path("/srv/site"), "files/m/a.onnx").as_posix()
    '/srv/site/files/m/a.onnx'
    """
    if is_url(file):
        return file
    if isinstance(base, Path):
        target = (base / file).resolve()
        try:
            target.relative_to(base.resolve())
        except ValueError:
            raise QuantzooError(f"{file!r} points outside the catalog folder {base}; refusing to read it.") from None
        return target
    return urljoin(base, file)


@dataclass(frozen=True)
class Catalog:
    """A read catalog: where it is (`base`: a URL ending in / or a folder), where its index.json
    is (`index`) and the checked index (`doc`)."""

    base: str | Path
    index: str
    doc: CatalogIndex

    @property
    def models(self) -> tuple[ModelEntry, ...]:
        return self.doc.models

    def model(self, model_id: str) -> ModelEntry:
        return find_model(self.doc, model_id, self.index)


def catalog_location(catalog: str | os.PathLike | None) -> str | Path:
    """The catalog to read: the argument, else ``$QUANTZOO_CATALOG``; a URL (str) or a folder (Path).

    >>> catalog_location("https://zoo.example/"), catalog_location("file:///srv/site")
    ('https://zoo.example/', PosixPath('/srv/site'))
    """
    value = catalog if catalog not in (None, "") else os.environ.get(ENV_CATALOG)
    if not value:
        raise UsageError(f"no catalog given: pass --catalog URL (an http(s) address or a local site folder) "
                         f"or set {ENV_CATALOG}.")
    value = os.fspath(value)
    scheme = urlparse(value).scheme.lower()
    if scheme in ("http", "https"):
        return value
    if scheme == "file":
        return Path(unquote(urlparse(value).path))
    if scheme and len(scheme) > 1:  # one letter is a Windows drive
        raise UsageError(f"catalog {value!r}: expected an http(s) URL or a local folder, found a {scheme}: address.")
    return Path(value).expanduser()


def open_catalog(catalog: str | os.PathLike | None = None, *, timeout: float = 30.0, retries: int = 2,
                 trust_key: str | os.PathLike | None = None) -> Catalog:
    """Read and check a catalog's index.json (see `catalog_location` for what `catalog` may be).

    With `trust_key` (or ``$QUANTZOO_TRUST_KEY``), the public key of the catalog's maintainer,
    index.json must carry a valid signature (``index.json.sig``) by that key: an unsigned or
    altered catalog is refused before anything in it is read.
    """
    from ..download import get_bytes
    from ..signing import trusted_key, verify

    trust = trusted_key(trust_key)

    loc = catalog_location(catalog)
    if isinstance(loc, Path):
        index = loc if loc.is_file() else loc / "index.json"
        if not loc.exists():
            raise QuantzooError(f"catalog folder {loc} does not exist. Pass the folder of a built site "
                                f"(the one holding index.json) or its http(s) URL.")
        if not index.is_file():
            raise QuantzooError(f"{loc} has no index.json: expected {index}. Is it a quantzoo site "
                                "(built with `quantzoo build`)?")
        data = index.read_bytes()
        if trust is not None:
            sig = index.with_name(index.name + ".sig")
            verify(data, sig.read_bytes() if sig.is_file() else None, trust, str(index))
        return Catalog(base=index.parent, index=str(index), doc=CatalogIndex.from_bytes(data, str(index)))
    if urlparse(loc).path.endswith("/index.json"):
        index = loc
        base = loc[: -len("index.json")]
    else:
        base = loc if loc.endswith("/") else loc + "/"
        index = urljoin(base, "index.json")
    data = get_bytes(index, timeout=timeout, retries=retries, what="index.json", hint=_INDEX_HINT,
                     accept="application/json")
    if trust is not None:
        sig = get_bytes(index + ".sig", timeout=timeout, retries=retries, what="index.json.sig", hint=_INDEX_HINT,
                        missing_ok=True)
        verify(data, sig, trust, index)
    return Catalog(base=base, index=index, doc=CatalogIndex.from_bytes(data, index))


def fetch_entry(cat: Catalog, entry: FileEntry | VariantEntry, cache=None, *, progress: bool | None = None) -> Path:
    """The verified bytes of one index.json file entry in the cache (``blobs/<sha256>``); a cached
    blob is reused only when its bytes still hash to the entry's sha256."""
    from ..cache import Cache, commit_file, hashed
    from ..download import download

    cache = cache if isinstance(cache, Cache) else Cache(cache)
    blob = cache.blob(entry.sha256)
    where = resolve(cat.base, entry.file)
    with cache.lock(f"blob-{entry.sha256}"):
        if blob.is_file():  # re-hashed before reuse (once per process); damaged: moved aside, fetched again
            found = hashed(blob)
            if found == entry.sha256 and blob.stat().st_size == entry.size:
                return blob
            cache.quarantine(blob, entry.sha256, found, f"{entry.file} ({blob})")
        if isinstance(where, Path):
            if not where.is_file():
                raise QuantzooError(f"{where} is listed in {cat.index} but is missing from the catalog folder.")
            blob.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{blob.name}.", suffix=".part", dir=blob.parent)
            os.close(fd)
            try:
                shutil.copyfile(where, name)
            except BaseException:
                os.unlink(name)
                raise
            return commit_file(name, blob, entry.sha256, entry.size, str(where), against="index.json",
                               next_step=_TAMPERED)
        try:
            return download(where, blob, entry.sha256, entry.size, progress=progress)
        except FetchError as e:
            raise type(e)(f"{e}\n(listed in {cat.index})") from None


def deliver(blob: Path, dest: Path) -> Path:
    """Put a copy of a cached blob at `dest` atomically (kept as is when it already matches)."""
    from ..cache import atomic_path, sha256_file

    if dest.is_file() and dest.stat().st_size == blob.stat().st_size and sha256_file(dest) == blob.name:
        return dest
    with atomic_path(dest) as tmp:
        shutil.copyfile(blob, tmp)
    return dest


def fetch_variant(cat: Catalog, entry: VariantEntry, cache=None, *, progress: bool | None = None) -> list[tuple[Path, str]]:
    """Every file of a variant verified in the cache, as ``[(blob, published name)]``, the
    ``.onnx`` first and then the files it reads beside it (external data, ``entry.files``).
    Nothing is delivered until all of them match index.json."""
    names = [entry.name] + [f.name for f in entry.files]
    bad = [n for n in names if n in (".", "..") or "/" in n or "\\" in n]
    if bad or len(set(names)) != len(names):
        raise QuantzooError(f"{cat.index}: variant {entry.id} lists files that cannot sit side by side in one "
                            f"folder ({', '.join(names)}); refusing to fetch it.")
    return [(fetch_entry(cat, e, cache, progress=progress), e.name) for e in (entry, *entry.files)]


def fetch_custom_ops(cat: Catalog, model: ModelEntry, cache=None, *,
                     progress: bool | None = None) -> list[tuple[CustomOpEntry, Path | None]]:
    """Each custom op of `model` with its implementation file verified in the cache (None when
    the catalog publishes none: the user brings the class)."""
    return [(op, fetch_entry(cat, op.implementation, cache, progress=progress) if op.implementation else None)
            for op in model.custom_ops]


def deliver_variant(blobs: list[tuple[Path, str]], folder: Path) -> Path:
    """Put a variant's verified files side by side in `folder` under their published names (the
    ``.onnx`` last, so a present ``.onnx`` has its data beside it); returns the ``.onnx``'s path."""
    for blob, name in blobs[1:]:
        deliver(blob, folder / name)
    return deliver(blobs[0][0], folder / blobs[0][1])
