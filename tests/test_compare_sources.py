"""Where samples come from: a registry dataset, a folder, or arrays given in the call."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from quantzoo.cache import Cache
from quantzoo.compare.sources import find_source, list_source
from quantzoo.errors import UsageError


class StubRegistry:
    """What compare reads of a loaded registry: `datasets`, `dataset(id)`, `model(id)`."""

    def __init__(self, datasets: dict):
        self.datasets = datasets

    def dataset(self, dataset_id):
        return self.datasets[dataset_id]


def _dataset(tmp_path: Path) -> SimpleNamespace:
    return SimpleNamespace(id="tiny-arrays", adapter="arrays", params={}, labels=None, path=None,
                           source={"kind": "file", "path": str(tmp_path), "sha256": "0" * 64})


def test_a_dataset_id_is_looked_up_in_the_registry_the_caller_passes(tmp_path):
    reg = StubRegistry({"tiny-arrays": _dataset(tmp_path)})
    src = find_source("tiny-arrays", model=None, registry=reg, folder_adapter="arrays", cache=Cache(tmp_path),
                      limit=3)
    assert src.describe == {"id": "tiny-arrays"}
    assert src.identity["adapter"] == "arrays" and src.identity["params"] == {"labels": None, "limit": 3}


def test_an_unknown_name_says_it_is_neither_a_path_nor_a_dataset_and_lists_the_datasets(tmp_path):
    reg = StubRegistry({"tiny-arrays": _dataset(tmp_path)})
    with pytest.raises(UsageError, match=r"no such file or folder: nope \(and it is not a dataset of the "
                                         r"registry \(tiny-arrays\)\)"):
        find_source("nope", model=None, registry=reg, folder_adapter="arrays", cache=Cache(tmp_path), limit=None)
    with pytest.raises(UsageError, match="not a dataset id .pass registry= to use one"):
        find_source("nope", model=None, registry=None, folder_adapter="arrays", cache=Cache(tmp_path), limit=None)


def test_a_folder_source_is_keyed_by_its_content_and_labelled_from_the_model_s_dataset(tmp_path):
    d = tmp_path / "arrays"
    d.mkdir()
    np.save(d / "a.npy", np.zeros(3, np.float32))
    model = SimpleNamespace(id="m", dataset="tiny-arrays")
    ds = SimpleNamespace(labels={"from": "filename"})
    src = find_source(d, model=model, registry=StubRegistry({"tiny-arrays": ds}), folder_adapter="arrays",
                      cache=Cache(tmp_path), limit=None)
    samples, skipped = src.load()
    assert [(s.key, s.label) for s in samples] == [("a.npy", "a")] and skipped == []
    np.save(d / "b.npy", np.ones(3, np.float32))
    again = find_source(d, model=None, registry=None, folder_adapter="arrays", cache=Cache(tmp_path), limit=None)
    assert again.identity["folder"] != src.identity["folder"]


def test_arrays_given_in_the_call_are_keyed_by_their_bytes():
    one = list_source([{"x": np.zeros(2, np.float32)}])
    two = list_source([{"x": np.ones(2, np.float32)}])
    assert one.identity != two.identity and one.identity == list_source([{"x": np.zeros(2, np.float32)}]).identity
