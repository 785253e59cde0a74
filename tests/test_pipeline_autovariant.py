"""pipeline.autovariant: an auto variant in a build chooses on the calibration split, keeps its
recipe and sensitivity table in the artifact's record, and is keyed by its calibration data."""

from __future__ import annotations

import json

from quantzoo.cache import Cache
from quantzoo.pipeline import store, worker
from quantzoo.pipeline.plan import model_jobs
from quantzoo.quantize import quantize_file
from quantzoo.quantize.recipe import Recipe
from quantzoo.registry import load_registry
from tinyzoo import make_zoo, model


def _jobs(tmp_path, mid="tiny-classifier"):
    reg = load_registry(tmp_path / "zoo")
    m = reg.model(mid)
    path = tmp_path / "zoo" / "files" / f"{mid}.onnx"
    return model_jobs(str(reg.root), str(tmp_path / "cache"), m, str(path), m.source["sha256"],
                      reg.datasets.get(m.dataset))


def _zoo(tmp_path, calibration: float | None = 0.5):
    make_zoo(tmp_path / "zoo")
    model(tmp_path / "zoo", "tiny-classifier", "classifier", variants=["kmeans-4", "auto", "auto-0.5"])
    if calibration is not None:
        ds = tmp_path / "zoo" / "datasets" / "vectors.yaml"
        ds.write_text(ds.read_text() + f"calibration: {calibration}\n")


def test_an_auto_job_builds_and_records_its_recipe(tmp_path):
    _zoo(tmp_path)
    worker.reset()
    jobs = _jobs(tmp_path)
    assert [j.variant for j in jobs] == ["kmeans-4", "auto", "auto-0.5"]
    result = worker.run_job(jobs[1])
    assert result.failure is None, result.failure
    meta = store.read_artifact(Cache(jobs[1].cache), jobs[1].keys.artifact)
    recipe = Recipe.from_dict(meta["recipe"])
    assert recipe.target == {"output": "logits", "metric": "top1_agreement", "min": 0.8}
    assert meta["sensitivity"]["tensors"][0]["key"] == "w1" and meta["spec"]["mode"] == "auto"
    # the recorded recipe reproduces the cached artifact byte for byte
    art = store.artifact_paths(Cache(jobs[1].cache), jobs[1].keys.artifact)[0]
    again = tmp_path / "again.onnx"
    quantize_file(jobs[1].float_path, again, recipe=recipe, source_sha256=jobs[1].float_sha256)
    assert again.read_bytes() == art.read_bytes()
    comparison = json.loads(store.comparison_path(Cache(jobs[1].cache), jobs[1].keys.comparison(meta["sha256"]))
                            .read_text())
    assert comparison["dataset"]["split"]["part"] == "evaluation"


def test_auto_keys_follow_the_calibration_data_and_need_it(tmp_path):
    _zoo(tmp_path / "a", 0.5)
    _zoo(tmp_path / "b", 0.25)
    ka, kb = (_jobs(tmp_path / x)[1].keys.artifact for x in ("a", "b"))
    assert ka != kb
    assert _jobs(tmp_path / "a")[0].keys.artifact == _jobs(tmp_path / "b")[0].keys.artifact
    _zoo(tmp_path / "c", None)  # no calibration split: no auto job
    assert [j.variant for j in _jobs(tmp_path / "c")] == ["kmeans-4"]


def test_calibration_and_evaluation_samples_never_overlap(tmp_path):
    from quantzoo.compare import prepare

    _zoo(tmp_path)
    reg = load_registry(tmp_path / "zoo")
    m = reg.model("tiny-classifier")
    path = tmp_path / "zoo" / "files" / "tiny-classifier.onnx"
    cal = prepare(path, None, model=m, registry=reg, cache=tmp_path / "cache", part="calibration")
    ev = prepare(path, None, model=m, registry=reg, cache=tmp_path / "cache")
    assert cal.n > 0 and ev.n > 0 and cal.n + ev.n == 24
    assert not set(cal.prepared.keys) & set(ev.prepared.keys)
    assert cal.describe["split"]["part"] == "calibration" and ev.describe["split"]["part"] == "evaluation"
