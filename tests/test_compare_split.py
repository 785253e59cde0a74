"""Calibration and evaluation splits: deterministic, disjoint, whole photos, recorded."""

from __future__ import annotations

import pytest

from quantzoo.compare import split


def test_the_two_parts_are_disjoint_and_cover_the_dataset():
    keys = [f"line-{i:05d}" for i in range(2000)]
    cal, ev = split.select(keys, 0.2, "calibration"), split.select(keys, 0.2, "evaluation")
    assert not set(cal) & set(ev) and sorted(cal + ev) == list(range(2000))
    assert 0.17 < len(cal) / 2000 < 0.23


def test_the_split_is_the_same_every_time_and_adding_items_moves_none():
    keys = [f"f{i}.py" for i in range(300)]
    first = [keys[i] for i in split.select(keys, 0.25, "calibration")]
    grown = keys + [f"new{i}.py" for i in range(100)]
    again = [grown[i] for i in split.select(grown, 0.25, "calibration")]
    assert first == [k for k in again if k in set(keys)]


def test_views_of_one_photo_stay_on_one_side():
    keys = [f"p{p}.jpg#view{v}" for p in range(40) for v in range(7)]
    cal = split.select(keys, 0.3, "calibration", cluster=lambda k: k.split("#")[0])
    photos = {keys[i].split("#")[0] for i in cal}
    assert cal == [i for i, k in enumerate(keys) if k.split("#")[0] in photos]
    assert 0 < len(photos) < 40


def test_without_a_fraction_everything_is_evaluation():
    assert split.select(["a", "b"], 0.0, "evaluation") == [0, 1]
    assert split.select(["a", "b"], 0.0, "calibration") == []
    with pytest.raises(ValueError, match="part must be one of"):
        split.select(["a"], 0.5, "training")


def test_a_dataset_with_a_calibration_fraction_is_evaluated_on_its_evaluation_part_only(tmp_path):
    import yaml
    from tinyzoo import dataset

    from quantzoo.cache import Cache
    from quantzoo.compare.sources import dataset_source
    from quantzoo.registry import load_registry

    zoo = tmp_path / "zoo"
    (zoo / "datasets").mkdir(parents=True)
    (zoo / "models").mkdir()
    dataset(zoo, "vectors", (4,), 30, seed=3)
    doc = yaml.safe_load((zoo / "datasets" / "vectors.yaml").read_text())
    doc["calibration"] = 0.3
    (zoo / "datasets" / "vectors.yaml").write_text(yaml.safe_dump(doc))
    ds = load_registry(zoo).dataset("vectors")
    cache = Cache(tmp_path / "cache")
    ev, cal = dataset_source(ds, cache, None, "evaluation"), dataset_source(ds, cache, None, "calibration")
    ev_keys = {s.key for s in ev.load()[0]}
    cal_keys = {s.key for s in cal.load()[0]}
    assert len(ev_keys) + len(cal_keys) == 30 and not ev_keys & cal_keys and cal_keys
    assert ev.identity != cal.identity
    assert ev.describe["split"]["part"] == "evaluation" and ev.describe["split"]["calibration_fraction"] == 0.3

    doc["calibration"] = 1.5
    (zoo / "datasets" / "vectors.yaml").write_text(yaml.safe_dump(doc))
    from quantzoo.errors import ManifestError

    with pytest.raises(ManifestError, match="calibration: expected a fraction"):
        load_registry(zoo)
