"""Write the site: Markdown pages → MkDocs build → files, viewer, index.json → swap into place.

The same inputs give the same bytes: nothing in the site carries the build date (the sitemap's
dates are taken out after MkDocs writes them, `undate_sitemap`). Everything happens in a
temporary folder next to the target site dir; the previous site is replaced (two renames) only
after the MkDocs build and every copy succeeded, so a failed publish leaves the old site exactly
as it was.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import sha256_bytes
from ..catalog import CatalogIndex
from ..errors import QuantzooError
from .autotables import write_recipe_file
from .data import BuiltModel, float_file_name, variant_file_name
from .grid import grid_files
from .index import catalog_index

MARKER = ".quantzoo-site"


@dataclass
class PublishReport:
    site_dir: Path
    pages: int
    files: int
    index_sha256: str
    seconds: dict = field(default_factory=dict)


def project_root() -> Path:
    """The folder holding mkdocs.yml and site_src/: ``$QUANTZOO_SITE_SRC``'s parent, else the checkout."""
    env = os.environ.get("QUANTZOO_SITE_SRC")
    if env:
        return Path(env).resolve().parent
    return Path(__file__).resolve().parents[3]


def _site_src(src: Path | None) -> Path:
    src = Path(src) if src else Path(os.environ.get("QUANTZOO_SITE_SRC") or project_root() / "site_src")
    if not (src / "templates").is_dir():
        raise QuantzooError(f"no site templates at {src / 'templates'}: expected the site_src/ folder of a quantzoo "
                            "checkout; run from the repository or set QUANTZOO_SITE_SRC to its site_src/")
    return src


def render_docs(models: list[BuiltModel], docs: Path, *, src: Path, registry=None,
                artifact_base_url: str | None = None, failed: list | None = None) -> int:
    """Render every page into the Markdown folder `docs` and copy the static assets; returns pages written."""
    from .. import __version__
    from . import render

    env = render.environment(src / "templates")
    pages = {"index.md": render.catalog_page(env, models, failed or [], __version__),
             "methodology.md": render.methodology_page(env, models, registry, __version__)}
    for bm in models:
        pages[f"models/{bm.model.id}.md"] = render.model_page(env, bm, artifact_base_url, __version__)
    (docs / "models").mkdir(parents=True, exist_ok=True)
    for rel, text in pages.items():
        (docs / rel).write_text(text, encoding="utf-8")
    if (src / "assets").is_dir():
        shutil.copytree(src / "assets", docs / "assets", dirs_exist_ok=True)
    return len(pages)


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def run_mkdocs(config_file: Path, docs: Path, site: Path) -> None:
    """MkDocs build of `docs` into `site` with the project's mkdocs.yml, strict: any warning fails it."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    if not config_file.is_file():
        raise QuantzooError(f"no MkDocs config at {config_file}: expected the mkdocs.yml of a quantzoo checkout")
    logger = logging.getLogger("mkdocs")
    handler = _Collect()
    logger.addHandler(handler)
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            cfg = load_config(config_file=str(config_file), docs_dir=str(docs), site_dir=str(site), strict=True)
            build(cfg)
    except MkDocsException as e:
        details = "".join(f"\n  {m}" for m in handler.messages[:20])
        raise QuantzooError(f"the MkDocs build failed ({e}); the previous site was left as it was{details}") from None
    finally:
        logger.removeHandler(handler)


def undate_sitemap(site: Path) -> None:
    """Take the build date out of MkDocs' sitemap: drop every ``<lastmod>`` from sitemap.xml and
    write sitemap.xml.gz again with a zero gzip mtime, so two builds of the same inputs give the
    same bytes (MkDocs stamps both with the day of the build).

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> _ = (d / "sitemap.xml").write_text("<url><loc>a</loc>\\n  <lastmod>2026-11-29</lastmod>\\n</url>")
    >>> undate_sitemap(d); (d / "sitemap.xml").read_text(), gzip.decompress((d / "sitemap.xml.gz").read_bytes())[:5]
    ('<url><loc>a</loc>\\n</url>', b'<url>')
    """
    xml = site / "sitemap.xml"
    if not xml.is_file():
        return
    text = re.sub(r"[ \t]*<lastmod>[^<]*</lastmod>[ \t]*\n?", "", xml.read_text(encoding="utf-8"))
    xml.write_text(text, encoding="utf-8")
    with open(site / "sitemap.xml.gz", "wb") as f, gzip.GzipFile("sitemap.xml", "wb", fileobj=f, mtime=0) as gz:
        gz.write(text.encode("utf-8"))


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # cache files are never modified in place, so sharing the inode is safe
    except OSError:
        shutil.copyfile(src, dst)


def add_files(models: list[BuiltModel], site: Path) -> int:
    """Put every float model, artifact, custom op implementation and preview image under
    ``site/files/<id>/``; returns files added."""
    n = 0
    for bm in models:
        base = site / "files" / bm.model.id
        _link_or_copy(bm.float_path, base / float_file_name(bm.model.id))
        n += 1
        for v in bm.variants:
            _link_or_copy(v.path, base / variant_file_name(bm.model.id, v.variant.id))
            n += 1
            for path, f in v.files:  # external data: beside the .onnx, under the name the .onnx reads
                _link_or_copy(path, base / f["file"])
                n += 1
            if v.preview:
                _link_or_copy(v.preview, base / "preview" / f"{v.variant.id}.png")
                n += 1
            if v.auto:  # an auto variant's recipe: `quantzoo quantize --recipe` rebuilds the file from it
                n += write_recipe_file(bm.model.id, v, base)
        for op in bm.custom_ops:
            if op.file:
                _link_or_copy(op.source, base / op.file)
                n += 1
        for name, p in (("input", bm.preview_input), ("float", bm.preview_float)):
            if p and any(v.preview for v in bm.variants):
                _link_or_copy(p, base / "preview" / f"{name}.png")
                n += 1
        for name, p in grid_files(bm.model.id, bm.grid) if bm.grid else ():  # the picture grid
            _link_or_copy(p, site / name)
            n += 1
    return n


def _check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise QuantzooError(f"--site-dir {target} is a file; expected a folder (or a path that does not exist yet)")
    if target.is_dir() and any(target.iterdir()) and not (target / MARKER).exists():
        raise QuantzooError(
            f"--site-dir {target} exists and is not a site quantzoo built (no {MARKER} file in it), so it will not "
            "be replaced; choose another --site-dir or empty that folder first")


def swap_in(new: Path, target: Path, work: Path) -> None:
    """Replace `target` by `new` with two renames; the old site ends in `work` (deleted by the caller)."""
    old = work / "previous"
    moved = False
    if target.exists():
        os.replace(target, old)
        moved = True
    try:
        os.replace(new, target)
    except OSError:
        if moved:
            os.replace(old, target)
        raise


def publish_site(models: list[BuiltModel], site_dir: str | os.PathLike, *, registry=None,
                 artifact_base_url: str | None = None, src: Path | None = None, config_file: Path | None = None,
                 failed: list | None = None, sign_key: str | os.PathLike | None = None) -> PublishReport:
    """Build the whole site for `models` into `site_dir`, replacing it only when everything succeeded.

    `failed` lists models that could not be built (`pipeline.Failure`: .model, .stage, .error); the
    catalog page names them. With `sign_key` (an Ed25519 private key) the site also gets
    ``index.json.sig``, the detached signature of index.json's exact bytes.

    >>> publish_site([], "/tmp/qz-doc-site")  # doctest: +SKIP
    PublishReport(site_dir=PosixPath('/tmp/qz-doc-site'), pages=2, ...)
    """
    from .. import __version__
    from .netron import bundle_netron

    src = _site_src(src)
    config_file = Path(config_file) if config_file else project_root() / "mkdocs.yml"
    target = Path(site_dir).resolve()
    _check_target(target)
    models = sorted(models, key=lambda b: b.model.id)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
    seconds: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        index_bytes = catalog_index(models, artifact_base_url).to_bytes()
        CatalogIndex.from_bytes(index_bytes, "the index.json being published")  # what a client will check
        docs, site = work / "docs", work / "site"
        pages = render_docs(models, docs, src=src, registry=registry, artifact_base_url=artifact_base_url,
                            failed=failed)
        t1 = time.perf_counter()
        run_mkdocs(config_file, docs, site)
        undate_sitemap(site)
        t2 = time.perf_counter()
        n_files = add_files(models, site)
        bundle_netron(site / "netron", src / "netron" / "consent.js")
        (site / "index.json").write_bytes(index_bytes)
        if sign_key:
            from ..signing import SIGNATURE_SUFFIX, sign

            (site / f"index.json{SIGNATURE_SUFFIX}").write_bytes(sign(index_bytes, sign_key))
        (site / MARKER).write_text(f"built by quantzoo {__version__}\n", encoding="utf-8")
        t3 = time.perf_counter()
        swap_in(site, target, work)
        seconds = {"render": t1 - t0, "mkdocs": t2 - t1, "files": t3 - t2, "total": time.perf_counter() - t0}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return PublishReport(site_dir=target, pages=pages, files=n_files, index_sha256=sha256_bytes(index_bytes),
                         seconds=seconds)
