"""quantzoo.catalog.customops: a model's custom ops in index.json, checked with every problem at once."""

from __future__ import annotations

import pytest

from quantzoo.catalog import CatalogIndex, CustomOpEntry, FileEntry
from quantzoo.errors import QuantzooError

OP = {"op": "GridSampler", "domain": "ai.quantzoo.seed", "class": "grid_sampler:GridSampler",
      "description": "resamples", "attributes": {"output_height": 16, "output_width": 16}, "nodes": 1,
      "implementation": {"file": "files/m/grid_sampler.py", "size": 2681, "sha256": "a" * 64}}


def _index(ops) -> dict:
    return {"schema_version": 1, "models": [{"id": "m", "variants": [], "custom_ops": ops}]}


def test_an_entry_reads_back_exactly_what_was_written():
    e = CustomOpEntry.from_json(OP, "op")
    assert (e.key, e.class_name, e.implementation) == (
        "ai.quantzoo.seed.GridSampler", "GridSampler", FileEntry("files/m/grid_sampler.py", 2681, "a" * 64))
    assert e.to_json() == OP
    assert CatalogIndex.from_json(_index([OP]), "index.json").models[0].custom_ops == (e,)


def test_an_op_without_a_published_implementation_is_allowed():
    e = CustomOpEntry.from_json({**OP, "implementation": None, "class": None}, "op")
    assert e.implementation is None and e.class_name is None


def test_every_problem_is_named_with_its_key():
    bad = {**OP, "domain": "", "class": "no colon", "nodes": 0, "implementation": {"file": "x.py", "size": -1}}
    with pytest.raises(QuantzooError) as e:
        CatalogIndex.from_json(_index([bad, "x"]), "index.json")
    text = str(e.value)
    for key in ("custom_ops[0].domain", "custom_ops[0].class: expected 'module:Class'", "custom_ops[0].nodes",
                "custom_ops[0].implementation.size", "custom_ops[0].implementation.sha256", "custom_ops[1]: expected"):
        assert key in text


def test_one_op_listed_twice_is_a_problem():
    with pytest.raises(QuantzooError, match=r"custom_ops: an op is listed twice"):
        CatalogIndex.from_json(_index([OP, OP]), "index.json")
