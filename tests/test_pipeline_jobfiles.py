"""pipeline.jobfiles: shipping a job's inputs to a worker that does not share the cache, and
committing the result files it sends back (no Ray needed: the worker side runs in this process)."""

from __future__ import annotations

import pytest

from quantzoo.cache import Cache, sha256_bytes
from quantzoo.errors import ChecksumError, QuantzooError
from quantzoo.pipeline import store, worker
from quantzoo.pipeline.jobfiles import (Output, Scratch, commit_outputs, folder_files, model_inputs,
                                        remove_dead_scratches, shared_results)
from quantzoo.pipeline.plan import model_jobs
from quantzoo.registry import load_registry
from tinyzoo import make_zoo


def test_a_job_run_in_a_scratch_copy_sends_back_results_that_make_the_drivers_cache_complete(tmp_path):
    zoo = make_zoo(tmp_path / "zoo")
    reg = load_registry(zoo)
    m = reg.model("tiny-mapper")
    cache = Cache(tmp_path / "cache")
    from quantzoo.fetch import fetch_source

    float_path = fetch_source(m.source, cache, base_dir=m.path.parent)
    dataset = fetch_source(reg.datasets[m.dataset].source, cache, base_dir=zoo / "datasets")
    job = model_jobs(str(reg.root), str(cache.root), m, str(float_path), m.source["sha256"],
                     reg.datasets[m.dataset])[1]
    inputs = model_inputs(cache, [float_path, dataset, tmp_path / "elsewhere"])
    assert f"blobs/{m.source['sha256']}" in inputs and f"trees/{dataset.name}.complete" in inputs

    scratch = Scratch(tmp_path / "scratch", shared=tmp_path / "node")
    local = scratch.prepare(job, folder_files(zoo), inputs)
    assert local.cache == str(scratch.cache) and local.float_path.startswith(str(scratch.root))
    worker.reset()
    before = scratch.snapshot()
    assert worker.run_job(local).failure is None
    outputs = scratch.outputs(before)
    assert outputs[-1].path.endswith(".json") and not any("float-outputs" in o.path for o in outputs)
    assert list((tmp_path / "node").glob("*.npz"))  # float outputs: in the node's shared folder, not sent back

    assert not store.is_done(cache, job)
    assert commit_outputs(cache, outputs) == len(outputs)
    assert store.is_done(cache, job)
    assert commit_outputs(cache, outputs) == 0  # already there with those bytes
    scratch.forget_results()
    assert scratch.snapshot() == {}


def test_a_result_damaged_in_transfer_or_outside_derived_is_refused(tmp_path):
    cache = Cache(tmp_path / "cache")
    with pytest.raises(ChecksumError, match="sha256 the worker computed"):
        commit_outputs(cache, [Output("derived/comparisons/k.json", sha256_bytes(b"{}"), b"{ }")])
    assert not (cache.root / "derived" / "comparisons" / "k.json").exists()
    assert list((cache.root / "derived" / "comparisons").iterdir()) == []  # no temporary left behind
    for bad in ("blobs/ab", "derived/../blobs/ab", "/etc/x"):
        with pytest.raises(QuantzooError, match="outside the cache's derived"):
            commit_outputs(cache, [Output(bad, sha256_bytes(b"x"), b"x")])


def test_a_zoo_too_large_to_ship_names_the_shared_cache_option(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 2048)
    with pytest.raises(QuantzooError, match="--shared-cache"):
        folder_files(tmp_path, limit=1024, what="the zoo folder")


def _mapper_jobs(tmp_path):
    """The tiny mapper's jobs, its fetched inputs and the driver's cache."""
    from quantzoo.fetch import fetch_source

    zoo = make_zoo(tmp_path / "zoo")
    reg = load_registry(zoo)
    m = reg.model("tiny-mapper")
    cache = Cache(tmp_path / "cache")
    float_path = fetch_source(m.source, cache, base_dir=m.path.parent)
    dataset = fetch_source(reg.datasets[m.dataset].source, cache, base_dir=zoo / "datasets")
    jobs = model_jobs(str(reg.root), str(cache.root), m, str(float_path), m.source["sha256"], reg.datasets[m.dataset])
    return zoo, cache, jobs, model_inputs(cache, [float_path, dataset])


def _run_in(scratch: Scratch, job, zoo, inputs, results=None) -> list[Output]:
    local = scratch.prepare(job, folder_files(zoo), inputs, results=results)
    worker.reset()
    before = scratch.snapshot()
    assert worker.run_job(local).failure is None
    return scratch.outputs(before)


def test_a_models_later_job_takes_the_float_results_its_first_job_made(tmp_path):
    zoo, cache, jobs, inputs = _mapper_jobs(tmp_path)
    first = _run_in(Scratch(tmp_path / "a", shared=tmp_path / "node"), jobs[0], zoo, inputs)
    shared = shared_results(first)
    assert shared and not any(p.startswith("derived/artifacts/") for p in shared)

    def float_matrix(outputs, job):
        art = next(o for o in outputs if o.path == f"derived/artifacts/{job.keys.artifact}.json")
        sha = __import__("json").loads(art.data)["sha256"]
        return store.runtimes_path(Cache("/c"), store.compat_keys(job, sha)[1]).relative_to("/c").as_posix()

    taken = Scratch(tmp_path / "b", shared=tmp_path / "node")  # another worker process
    later = _run_in(taken, jobs[1], zoo, inputs, shared)
    assert float_matrix(later, jobs[1]) in shared                    # measured once, by the first job
    assert float_matrix(later, jobs[1]) not in {o.path for o in later}  # so not measured nor sent again
    alone = _run_in(Scratch(tmp_path / "c", shared=tmp_path / "node"), jobs[1], zoo, inputs)
    assert float_matrix(alone, jobs[1]) in {o.path for o in alone}      # without them it is made again

    commit_outputs(cache, first)
    commit_outputs(cache, later)
    assert store.is_done(cache, jobs[0]) and store.is_done(cache, jobs[1])
    with pytest.raises(QuantzooError, match="derived/ folder"):
        taken.prepare(jobs[1], folder_files(zoo), inputs, results={"blobs/x": b"x"})


def test_a_dead_workers_scratch_folder_is_removed_a_live_ones_kept(tmp_path):
    import os

    (tmp_path / f"quantzoo-ray-{os.getuid()}-{os.getpid()}-live").mkdir()
    (tmp_path / f"quantzoo-ray-{os.getuid()}-{2 ** 22 + 7}-dead").mkdir()  # above the largest pid Linux gives
    (tmp_path / f"quantzoo-ray-{os.getuid()}-shared").mkdir()             # the node's float outputs: kept
    assert remove_dead_scratches(tmp_path) == 1
    assert sorted(p.name.split("-")[3] for p in tmp_path.iterdir()) == [str(os.getpid()), "shared"]
