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


def test_keep_float_leaves_the_named_tensors_float_in_every_variant_and_keys_the_artifact(tmp_path):
    import hashlib

    import numpy as np
    import onnx
    import yaml
    from onnx import TensorProto, helper, numpy_helper

    make_zoo(tmp_path / "zoo")
    worker.reset()
    # two 64×64 weights, so one can stay float while the other is quantized
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("w1", (64, 64)), ("w3", (64, 64)), ("w2", (64, 10)))]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("MatMul", ["h", "w3"], ["g"]),
         helper.make_node("MatMul", ["g", "w2"], ["logits"])], "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    path = tmp_path / "zoo" / "files" / "tiny-classifier.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    manifest = tmp_path / "zoo" / "models" / "tiny-classifier" / "model.yaml"
    doc = yaml.safe_load(manifest.read_text())
    doc["source"] |= {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "size": path.stat().st_size}
    manifest.write_text(yaml.safe_dump(doc, sort_keys=False))
    plain = _jobs(tmp_path, "tiny-classifier")[1]  # linear-8
    manifest.write_text(yaml.safe_dump({**doc, "keep_float": ["w1"]}, sort_keys=False))
    job = _jobs(tmp_path, "tiny-classifier")[1]
    assert job.keys.artifact != plain.keys.artifact  # a different artifact, so a different cache entry
    assert worker.run_job(job).failure is None
    art = onnx.load(str(store.artifact_paths(Cache(job.cache), job.keys.artifact)[0]))
    names = {t.name for t in art.graph.initializer}
    kept = next(t for t in art.graph.initializer if t.name == "w1")
    assert (numpy_helper.to_array(kept) == numpy_helper.to_array(inits[0])).all()  # w1 untouched
    assert "w3" not in names  # w3 was quantized (its float initializer replaced by its encoding)
