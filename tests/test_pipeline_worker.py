"""pipeline.worker and pipeline.store: one job brings its results into the cache, once."""

from __future__ import annotations

import os

from quantzoo.cache import Cache
from quantzoo.pipeline import store, worker
from quantzoo.pipeline.execute import LocalExecutor
from quantzoo.pipeline.plan import model_jobs
from quantzoo.registry import load_registry
from tinyzoo import make_zoo, model


def _jobs(tmp_path, mid):
    reg = load_registry(tmp_path / "zoo")
    m = reg.model(mid)
    path = tmp_path / "zoo" / "files" / f"{mid}.onnx"
    return model_jobs(str(reg.root), str(tmp_path / "cache"), m, str(path), m.source["sha256"],
                      reg.datasets.get(m.dataset))


def test_a_job_quantizes_compares_and_draws_once_then_finds_everything_in_the_cache(tmp_path):
    make_zoo(tmp_path / "zoo")
    worker.reset()
    job = _jobs(tmp_path, "tiny-mapper")[1]
    first = worker.run_job(job)
    assert first.failure is None and first.did == ("quantize", "compare", "runtimes", "preview")
    assert store.is_done(Cache(job.cache), job)
    assert worker.run_job(job).did == ()


def test_cached_results_are_found_by_key_after_a_build(tmp_path):
    make_zoo(tmp_path / "zoo")
    jobs = _jobs(tmp_path, "tiny-classifier")
    results = []
    LocalExecutor(1).run(jobs, results.append)
    assert [r.variant for r in results] == [j.variant for j in jobs]
    cache = Cache(tmp_path / "cache")
    assert all(store.is_done(cache, j) for j in jobs)
    os.remove(store.artifact_paths(cache, jobs[0].keys.artifact)[0])
    assert not store.is_done(cache, jobs[0])


def test_a_failing_variant_comes_back_as_a_failure_with_its_stage(tmp_path):
    make_zoo(tmp_path / "zoo")
    model(tmp_path / "zoo", "tiny-classifier", "classifier", variants=["fp16", "unique-2"])  # 4096 distinct weights
    worker.reset()
    r = worker.run_job(_jobs(tmp_path, "tiny-classifier")[1])
    assert r.failure is not None and (r.failure.variant, r.failure.stage) == ("unique-2", "quantize")
    assert r.did == ()


def test_a_job_stores_the_runtime_matrices_of_its_artifact_and_of_its_float_model(tmp_path):
    make_zoo(tmp_path / "zoo")
    worker.reset()
    job = _jobs(tmp_path, "tiny-classifier")[2]
    assert worker.run_job(job).failure is None
    cache = Cache(job.cache)
    sha = store.read_artifact(cache, job.keys.artifact)["sha256"]
    artifact, float_matrix = store.read_runtimes(cache, job, sha)
    assert artifact["openvino"]["runs"] and float_matrix["openvino"]["runs"]
    assert artifact["onnxruntime"] == float_matrix["onnxruntime"] == {"runs": True, "max_abs_diff": None, "error": None}
    os.remove(store.runtimes_path(cache, store.compat_keys(job, sha)[0]))
    assert not store.is_done(cache, job)
    assert worker.run_job(job).did == ("runtimes",)
