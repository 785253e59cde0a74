"""The client for people who use a published catalog: `quantzoo list`, `info`, `pull` and
`quantzoo.load`.

A catalog is a quantzoo site (an http(s) URL or a local folder) whose root holds ``index.json``
(the contract: `quantzoo.catalog`). Choosing a variant is pure (`select`), fetching its verified
bytes is `transfer`, the commands are `cli`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..catalog import file_name
from .select import check_constraints, check_shape, find_model, primary_metric, select_variant
from .transfer import (Catalog, catalog_location, deliver, deliver_variant, fetch_custom_ops, fetch_entry, fetch_variant,
                       open_catalog, resolve)

__all__ = ["Catalog", "CustomOpsFromCatalog", "catalog_location", "deliver", "deliver_variant", "fetch_custom_ops",
           "fetch_entry", "fetch_variant", "file_name", "find_model", "load", "open_catalog", "primary_metric", "pull", "resolve", "select_variant"]


def pull(model: str, variant: str | None = None, *, max_size: int | None = None,
         min_agreement: float | None = None, catalog: str | os.PathLike | None = None,
         output_dir: str | os.PathLike | None = None, cache=None, progress: bool | None = None,
         trust_key: str | os.PathLike | None = None, shape: str | None = None) -> Path:
    """Fetch one variant of `model` (chosen by `select_variant`) and return its local path.

    With `output_dir` the file lands there under its published name; without, the path is the
    verified blob in the cache. A variant of several files (an ``.onnx`` with external data) is
    fetched and verified whole and its files put side by side, in `output_dir` or in the cache's
    ``derived/variants/<sha256>/``, so ``onnxruntime.InferenceSession(path)`` finds its data.
    A model with custom ops also gets their implementation files, verified, beside it in
    `output_dir`. `trust_key`: see `open_catalog` (a signed catalog). `shape` (``NAME=AxBxC``):
    refuse the chosen variant unless the catalog verified it at that input shape.

    >>> pull("magika-standard-v3", max_size=500_000, catalog="https://example.org/zoo/", output_dir=".")  # doctest: +SKIP
    PosixPath('magika-standard-v3-kmeans-4.onnx')
    """
    check_constraints(max_size, min_agreement)
    cat = open_catalog(catalog, trust_key=trust_key)
    return _pull(cat, cat.model(model), variant, max_size, min_agreement, output_dir, cache, progress, shape)


def _pull(cat: Catalog, m, variant, max_size, min_agreement, output_dir, cache, progress, shape=None) -> Path:
    entry = select_variant(m, variant=variant, max_size=max_size, min_agreement=min_agreement)
    if shape:
        check_shape(m, entry, shape)
    blobs = fetch_variant(cat, entry, cache, progress=progress)
    if output_dir is not None:
        for op, blob in fetch_custom_ops(cat, m, cache, progress=progress):
            if blob is not None:
                deliver(blob, Path(output_dir) / op.implementation.name)
        return deliver_variant(blobs, Path(output_dir))
    if len(blobs) == 1:
        return blobs[0][0]
    from ..cache import Cache

    cache = cache if isinstance(cache, Cache) else Cache(cache)
    return deliver_variant(blobs, cache.derived("variants", entry.sha256, ""))


def load(model: str, variant: str | None = None, *, catalog: str | os.PathLike | None = None,
         session: bool = False, max_size: int | None = None, min_agreement: float | None = None,
         cache=None, output_dir: str | os.PathLike | None = None, trust_key: str | os.PathLike | None = None,
         custom_ops: dict | None = None, shape: str | None = None):
    """A verified variant of `model` from a catalog: its local path, or an onnxruntime session.

    Without `variant` (or a constraint) it is the recommended one; `catalog` defaults to
    ``$QUANTZOO_CATALOG``. The path is the content-addressed file in the cache unless
    `output_dir` is given. With `trust_key` (or ``$QUANTZOO_TRUST_KEY``) the catalog must be
    signed by that key. With `shape` (``NAME=AxBxC``) the variant must have been verified at
    that input shape (see `pull`).

    A model with custom ops gets a session with their classes registered
    (`quantzoo.customops.session_options`): `custom_ops` ``{"domain.OpType": class or
    "module:Class"}``, and for an op not given, the implementation the catalog publishes
    (fetched, verified against index.json, imported, and said in a `CustomOpsFromCatalog`
    warning, since it is code from the catalog). Run such a session through
    ``quantzoo.customops.run(session, names, feed)``, which raises a class's own error.

    >>> import quantzoo
    >>> sess = quantzoo.load("magika-standard-v3", "kmeans-4", catalog="https://example.org/zoo/",
    ...                      session=True)  # doctest: +SKIP
    >>> sess.run(None, {"bytes": x})  # doctest: +SKIP
    """
    check_constraints(max_size, min_agreement)
    cat = open_catalog(catalog, trust_key=trust_key)
    m = cat.model(model)
    path = _pull(cat, m, variant, max_size, min_agreement, output_dir, cache, False, shape)
    if not session:
        return path
    import onnxruntime as ort

    options = _custom_ops_options(cat, m, path, custom_ops, cache) if (m.custom_ops or custom_ops) else None
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class CustomOpsFromCatalog(UserWarning):
    """`quantzoo.load` runs a custom op with the implementation the catalog publishes."""


def _custom_ops_options(cat: Catalog, m, path: Path, custom_ops: dict | None, cache):
    """Session options with the given classes, and the catalog's for the ops not given."""
    import warnings

    from ..customops import import_class, load_classes, session_options

    classes = load_classes(custom_ops)
    used = []
    for op in m.custom_ops:
        if op.key in classes or op.implementation is None or not op.cls:
            continue  # given, or nothing published: session_options names an op left without a class
        classes[op.key] = import_class(op.cls, fetch_entry(cat, op.implementation, cache, progress=False))
        used.append(f"{op.key} with {op.cls} from {resolve(cat.base, op.implementation.file)} "
                    f"(sha256 {op.implementation.sha256[:12]}… verified against index.json)")
    if used:
        warnings.warn(f"{m.id} needs custom ops; running {'; '.join(used)}. This runs Python code the catalog "
                      "publishes: pass custom_ops={'domain.OpType': YourClass} to use your own.",
                      CustomOpsFromCatalog, stacklevel=3)
    return session_options(classes, path)
