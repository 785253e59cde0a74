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
from .select import check_constraints, find_model, primary_metric, select_variant
from .transfer import (Catalog, catalog_location, deliver, deliver_variant, fetch_entry, fetch_variant, open_catalog,
                       resolve)

__all__ = ["Catalog", "catalog_location", "deliver", "deliver_variant", "fetch_entry", "fetch_variant", "file_name", "find_model", "load",
           "open_catalog", "primary_metric", "pull", "resolve", "select_variant"]


def pull(model: str, variant: str | None = None, *, max_size: int | None = None,
         min_agreement: float | None = None, catalog: str | os.PathLike | None = None,
         output_dir: str | os.PathLike | None = None, cache=None, progress: bool | None = None,
         trust_key: str | os.PathLike | None = None) -> Path:
    """Fetch one variant of `model` (chosen by `select_variant`) and return its local path.

    With `output_dir` the file lands there under its published name; without, the path is the
    verified blob in the cache. A variant of several files (an ``.onnx`` with external data) is
    fetched and verified whole and its files put side by side, in `output_dir` or in the cache's
    ``derived/variants/<sha256>/``, so ``onnxruntime.InferenceSession(path)`` finds its data.
    `trust_key`: see `open_catalog` (a signed catalog).

    >>> pull("magika-standard-v3", max_size=500_000, catalog="https://example.org/zoo/", output_dir=".")  # doctest: +SKIP
    PosixPath('magika-standard-v3-kmeans-4.onnx')
    """
    check_constraints(max_size, min_agreement)
    cat = open_catalog(catalog, trust_key=trust_key)
    entry = select_variant(cat.model(model), variant=variant, max_size=max_size, min_agreement=min_agreement)
    blobs = fetch_variant(cat, entry, cache, progress=progress)
    if output_dir is not None:
        return deliver_variant(blobs, Path(output_dir))
    if len(blobs) == 1:
        return blobs[0][0]
    from ..cache import Cache

    cache = cache if isinstance(cache, Cache) else Cache(cache)
    return deliver_variant(blobs, cache.derived("variants", entry.sha256, ""))


def load(model: str, variant: str | None = None, *, catalog: str | os.PathLike | None = None,
         session: bool = False, max_size: int | None = None, min_agreement: float | None = None,
         cache=None, output_dir: str | os.PathLike | None = None, trust_key: str | os.PathLike | None = None):
    """A verified variant of `model` from a catalog: its local path, or an onnxruntime session.

    Without `variant` (or a constraint) it is the recommended one; `catalog` defaults to
    ``$QUANTZOO_CATALOG``. The path is the content-addressed file in the cache unless
    `output_dir` is given. With `trust_key` (or ``$QUANTZOO_TRUST_KEY``) the catalog must be
    signed by that key.

    >>> import quantzoo
    >>> sess = quantzoo.load("magika-standard-v3", "kmeans-4", catalog="https://example.org/zoo/",
    ...                      session=True)  # doctest: +SKIP
    >>> sess.run(None, {"bytes": x})  # doctest: +SKIP
    """
    path = pull(model, variant, max_size=max_size, min_agreement=min_agreement, catalog=catalog,
                output_dir=output_dir, cache=cache, progress=False, trust_key=trust_key)
    if not session:
        return path
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
