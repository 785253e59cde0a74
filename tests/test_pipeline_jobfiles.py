"""pipeline.jobfiles: shipping a job's inputs to a worker that does not share the cache, and
committing the result files it sends back (no Ray needed: the worker side runs in this process)."""

from __future__ import annotations

import pytest

from quantzoo.cache import Cache, sha256_bytes
from quantzoo.errors import ChecksumError, QuantzooError
from quantzoo.pipeline import store, worker
from quantzoo.pipeline.jobfiles import Output, Scratch, commit_outputs, folder_files, model_inputs
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
