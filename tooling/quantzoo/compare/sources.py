"""Where a comparison's samples come from, and the model's class names.

A `Source` is known before any sample is read: an identity for the cache key, a description
for the result, and ``load`` to read the samples (only on a cache miss). Sample data is a
dataset of the registry, a folder (or file), or a list of ``{input name: array}`` dicts.

Nothing here imports the registry: the caller hands over a loaded one (anything with
``model(id)``, ``dataset(id)`` and ``datasets``) when ids are to be resolved.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..cache import Cache, sha256_bytes, sha256_file, tree_listing, tree_sha256
from ..errors import QuantzooError, UsageError
from . import split
from .datasets import DATASET_ADAPTERS, Sample, thin


@dataclass
class Source:
    """Where the samples come from: `identity` keys the cache, `describe` goes into the result,
    `load()` reads ``(samples, skipped)``."""

    identity: dict
    describe: dict
    load: Callable[[], tuple[list[Sample], list[tuple[str, str]]]]


def need_registry(registry: Any, what: str):
    """`registry` when it is a loaded registry; else a usage error saying what needed it."""
    if registry is None or not hasattr(registry, "dataset"):
        raise UsageError(f"{what} needs the registry: pass registry=quantzoo.load_registry(...) "
                         f"(found {registry!r})")
    return registry


def dataset_source(ds, cache: Cache, limit: int | None, part: str = "evaluation") -> Source:
    """The samples of one `part` of a registry dataset `ds` (fetched on load): its evaluation
    samples, or its calibration samples (`split`; the manifest's ``calibration`` fraction)."""
    if ds.adapter not in DATASET_ADAPTERS:
        raise QuantzooError(f"{ds.path}: adapter: unknown dataset adapter {ds.adapter!r}; "
                            f"known: {', '.join(DATASET_ADAPTERS)}")
    fraction = float(getattr(ds, "calibration", None) or 0.0)
    params = {**(ds.params or {}), "labels": ds.labels}
    if limit:
        params["limit"] = min(limit, params.get("limit") or limit)
    # with a split, `limit` counts samples of the part: the adapter reads everything, then the part is thinned
    read_params = {k: v for k, v in params.items() if k != "limit"} if fraction and limit else params

    def load():
        from ..fetch import fetch_source

        root = fetch_source(ds.source, cache, base_dir=ds.path.parent if ds.path else None)
        skipped: list = []
        samples = DATASET_ADAPTERS[ds.adapter].read(root, read_params, skipped)
        keep = split.select([s.key for s in samples], fraction, part, DATASET_ADAPTERS[ds.adapter].cluster)
        return thin([samples[i] for i in keep], limit), skipped

    if part == "calibration" and fraction <= 0:
        raise QuantzooError(f"dataset {ds.id!r} has no calibration part: its manifest sets no 'calibration' "
                            "fraction; add e.g. 'calibration: 0.2' to hold out a fifth of it for calibration")
    identity = {"dataset": ds.id, "source": ds.source, "adapter": ds.adapter, "params": params}
    if fraction or part != "evaluation":
        identity["split"] = {"part": part, "calibration": fraction, "salt": split.SALT}
    describe = {"id": ds.id, "split": split.record(fraction, part)} if fraction else {"id": ds.id}
    return Source(identity, describe, load)


def folder_source(folder: Path, adapter: str, labels: Any, limit: int | None) -> Source:
    """The samples of a local folder (or one file), read by the dataset adapter `adapter`."""
    if not folder.exists():
        raise UsageError(f"no such file or folder: {folder}; --data takes a folder of samples")
    params = {"labels": labels}
    if limit:
        params["limit"] = limit

    def load():
        skipped: list = []
        return thin(DATASET_ADAPTERS[adapter].read(folder, params, skipped), limit), skipped

    listing = tree_listing(folder) if folder.is_dir() else [(folder.name, sha256_file(folder), 0)]
    identity = {"folder": tree_sha256(listing), "adapter": adapter, "params": params}
    return Source(identity, {"path": str(folder)}, load)


def list_source(items: list) -> Source:
    """Samples given as a list of ``{input name: array}`` dicts, keyed by their bytes.

    >>> list_source([{"x": np.zeros(2)}]).describe
    {'inputs': 1}
    """
    samples, h = [], []
    for i, d in enumerate(items):
        if not isinstance(d, dict):
            raise QuantzooError(f"sample_data[{i}] is a {type(d).__name__}; a list of samples must hold "
                                "dicts of input name -> array")
        arrays = {k: np.asarray(v) for k, v in d.items()}
        samples.append(Sample(f"input-{i:05d}", arrays))
        for k in sorted(arrays, key=str):
            a = np.ascontiguousarray(arrays[k])
            h.append(f"{k}:{a.dtype.str}:{a.shape}:{sha256_bytes(a.tobytes())}")
    return Source({"inputs": sha256_bytes("\n".join(h).encode())}, {"inputs": len(items)}, lambda: (samples, []))


def find_source(sample_data: Any, *, model: Any, registry: Any, folder_adapter: str, cache: Cache,
                limit: int | None, part: str = "evaluation") -> Source:
    """The `Source` of `sample_data`: None (`model`'s own dataset), a dataset id of `registry`, a
    folder or file path (read by `folder_adapter`), or a list of input dicts."""
    if sample_data is None:
        if model is None:
            raise UsageError("no sample data: pass a dataset id, a folder, or a model whose manifest names a dataset")
        reg = need_registry(registry, f"the dataset of model {model.id!r}")
        return dataset_source(reg.dataset(model.dataset), cache, limit, part)
    if isinstance(sample_data, list):
        return list_source(sample_data[:limit] if limit else sample_data)
    if isinstance(sample_data, os.PathLike) or (isinstance(sample_data, str) and Path(sample_data).exists()):
        ds = getattr(registry, "datasets", {}).get(model.dataset) if model is not None else None
        labels = ds.labels if ds is not None else None
        return folder_source(Path(sample_data), folder_adapter, labels, limit)
    if isinstance(sample_data, str):
        known = getattr(registry, "datasets", None)
        if known is not None and sample_data in known:
            return dataset_source(registry.dataset(sample_data), cache, limit, part)
        ids = f"a dataset of the registry ({', '.join(sorted(known)) or 'none'})" if known is not None else \
            "a dataset id (pass registry= to use one)"
        raise UsageError(f"no such file or folder: {sample_data} (and it is not {ids}); "
                         "pass an existing folder of samples or a dataset id from the registry")
    raise UsageError(f"sample_data must be a dataset id, a path or a list of input dicts, "
                     f"found {type(sample_data).__name__}")


def model_labels(model, sess, cache: Cache) -> list[str] | None:
    """A manifest's ``labels`` as the model's class names (index -> name), or None."""
    spec = getattr(model, "labels", None) if model is not None else None
    if spec is None:
        return None
    if isinstance(spec, list):
        return [str(x) for x in spec]
    if "metadata" in spec:
        meta = sess.get_modelmeta().custom_metadata_map
        if spec["metadata"] not in meta:
            raise QuantzooError(f"{model.path}: labels.metadata: the model has no metadata_props key "
                                f"{spec['metadata']!r}; found: {', '.join(sorted(meta)) or 'none'}")
        names = meta[spec["metadata"]].splitlines()
        return list(spec.get("prepend") or []) + names + list(spec.get("append") or [])
    if "file" in spec:
        from ..fetch import fetch_source

        path = fetch_source(spec["file"], cache, base_dir=model.path.parent if model.path else None)
        text = path.read_text(encoding="utf-8")
        if spec.get("key"):
            try:
                value = json.loads(text)
                for part in spec["key"].split("."):
                    value = value[part]
            except (ValueError, KeyError, TypeError) as e:
                raise QuantzooError(f"{model.path}: labels: cannot read key {spec['key']!r} from the labels file "
                                    f"({type(e).__name__}: {e}); expected a JSON object holding a list") from None
            return [str(x) for x in value]
        try:
            value = json.loads(text)
        except ValueError:
            return [line for line in text.splitlines() if line.strip()]
        if isinstance(value, dict):  # {"0": "tench", ...}: index -> name
            value = [value[k] for k in sorted(value, key=lambda k: int(k) if str(k).isdigit() else k)]
        if not isinstance(value, list):
            raise QuantzooError(f"{model.path}: labels.file: expected a JSON list of class names (or give "
                                f"labels.key), found a {type(value).__name__}")
        return [str(x) for x in value]
    return None


def fetched_params(params: dict, cache: Cache, base_dir: Path | None) -> dict:
    """`params` with every top-level value that is a source (``{kind, sha256, …}``: a tokenizer's
    vocabulary) fetched into `cache` and replaced by its path; the cache key keeps the spec.

    >>> fetched_params({"max_length": 8}, None, None)
    {'max_length': 8}
    """
    out = dict(params)
    for k, v in params.items():
        if isinstance(v, dict) and "kind" in v and "sha256" in v:
            from ..fetch import fetch_source  # here, as elsewhere in this module: fetch sits beside compare

            out[k] = str(fetch_source(v, cache, base_dir=base_dir))
    return out
