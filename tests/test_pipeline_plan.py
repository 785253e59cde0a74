"""pipeline.plan: jobs carry their keys, computed once, and cross a process boundary as they are."""

from __future__ import annotations

import pickle

from quantzoo.pipeline import keys as K
from quantzoo.pipeline.plan import Failure, JobResult, interleave, model_jobs
from quantzoo.registry import load_registry
from tinyzoo import VARIANTS, make_zoo


def _jobs(tmp_path):
    reg = load_registry(make_zoo(tmp_path / "zoo"))
    jobs = []
    for mid in ("tiny-classifier", "tiny-mapper"):
        m = reg.model(mid)
        jobs += model_jobs(str(reg.root), str(tmp_path / "cache"), m, "f.onnx", m.source["sha256"],
                           reg.datasets.get(m.dataset))
    return reg, jobs


def test_a_job_holds_the_same_keys_the_key_functions_give(tmp_path):
    reg, jobs = _jobs(tmp_path)
    m = reg.model("tiny-mapper")
    job = next(j for j in jobs if j.model == "tiny-mapper" and j.variant == "kmeans-4")
    ident = K.evaluation_identity(m, reg.dataset("volumes"))
    sha = m.source["sha256"]
    assert job.keys.artifact == K.artifact_key(sha, m.variants[2].spec())
    assert job.keys.comparison("a" * 64) == K.comparison_key("a" * 64, sha, ident)
    assert job.keys.preview("a" * 64) == K.preview_key("a" * 64, sha, ident, samples=m.samples)
    assert job.keys.float_preview == K.preview_key(sha, sha, ident, samples=m.samples)
    assert job.previews and not next(j for j in jobs if j.model == "tiny-classifier").previews


def test_jobs_are_interleaved_across_models_keeping_each_models_order(tmp_path):
    _, jobs = _jobs(tmp_path)
    order = [(j.model, j.variant) for j in interleave(jobs)]
    assert order[:2] == [("tiny-classifier", "fp16"), ("tiny-mapper", "fp16")]
    assert [v for m, v in order if m == "tiny-mapper"] == VARIANTS


def test_jobs_and_results_survive_pickling_unchanged(tmp_path):
    _, jobs = _jobs(tmp_path)
    assert pickle.loads(pickle.dumps(jobs)) == jobs
    result = JobResult("m", "fp16", ("quantize",), Failure("m", "fp16", "compare", "boom"), {"quantize": 0.1})
    assert pickle.loads(pickle.dumps(result)) == result


def test_a_lost_worker_is_a_failure_at_stage_worker(tmp_path):
    _, jobs = _jobs(tmp_path)
    r = JobResult.lost(jobs[0], MemoryError("out of memory"))
    assert r.failure == Failure("tiny-classifier", "fp16", "worker", "the worker process died: MemoryError: out of memory")
