"""pipeline.rayexec: `quantzoo build --executor ray` on a real local Ray instance (2 CPUs, loopback
only, one per module: starting Ray costs seconds) and the tiny zoo. The Ray tests are skipped
where Ray is not installed; the missing-Ray message is checked everywhere."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from quantzoo.cache import Cache
from quantzoo.cli import main
from tinyzoo import VARIANTS, make_zoo, model

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed (pip install 'quantzoo[ray]')")


@pytest.fixture(scope="module")
def ray_instance():
    from quantzoo.pipeline.rayexec import start_local

    start_local(2)  # imports Ray with the loopback switch set: nothing imports it before this
    import ray

    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny zoo and the index.json bytes of its local build (one in-process worker)."""
    root = tmp_path_factory.mktemp("reference")
    zoo = make_zoo(root / "zoo")
    assert _build(root, zoo, "local", "--jobs", "1") == 0
    return zoo, (root / "site-local" / "index.json").read_bytes()


def _build(root: Path, zoo: Path, name: str, *extra: str) -> int:
    return main(["build", "--zoo", str(zoo), "--cache", str(root / f"cache-{name}"),
                 "--site-dir", str(root / f"site-{name}"), *extra])


@needs_ray
def test_the_local_instance_listens_on_loopback_only(ray_instance):
    nodes = ray_instance.nodes()
    assert [n["NodeManagerAddress"] for n in nodes] == ["127.0.0.1"]
    assert nodes[0]["Resources"]["CPU"] == 2


@needs_ray
def test_a_ray_build_publishes_the_local_builds_index_json_and_a_rerun_does_no_work(
        tmp_path, ray_instance, reference, capfd):
    zoo, local_index = reference
    capfd.readouterr()
    assert _build(tmp_path, zoo, "ray", "--executor", "ray") == 0
    err = capfd.readouterr().err
    assert "6 model × variant results: 0 reused from the cache, 6 quantized, 6 compared, 3 previews drawn" in err
    assert (tmp_path / "site-ray" / "index.json").read_bytes() == local_index
    # the driver committed what the workers sent: the results are in this cache, not a worker's
    assert len(list((tmp_path / "cache-ray" / "derived" / "artifacts").glob("*.onnx"))) == 6

    assert _build(tmp_path, zoo, "ray", "--executor", "ray") == 0
    err = capfd.readouterr().err
    assert "nothing changed" in err and "6 reused from the cache, 0 quantized, 0 compared" in err


@needs_ray
def test_with_a_shared_cache_workers_write_the_cache_and_the_index_is_the_same(tmp_path, ray_instance, reference,
                                                                                 capfd):
    zoo, local_index = reference
    assert _build(tmp_path, zoo, "shared", "--executor", "ray", "--shared-cache") == 0
    assert "6 quantized, 6 compared" in capfd.readouterr().err
    assert (tmp_path / "site-shared" / "index.json").read_bytes() == local_index


def _crash_first_attempt(log_dir: str, model_id: str, variant: str):
    """A hook for the worker: log every attempt (pid), and kill the process on the first attempt
    at `model_id` `variant` (SIGKILL: a real death, no Python cleanup). Nested, so Ray pickles it
    by value."""

    def hook(job):
        log = Path(log_dir) / f"{job.model}-{job.variant}"
        first = not log.exists()
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        if first and (job.model, job.variant) == (model_id, variant):
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


@needs_ray
def test_a_killed_worker_is_retried_and_a_bad_model_is_reported_once(tmp_path, ray_instance):
    from quantzoo.pipeline.rayexec import RayExecutor
    from quantzoo.pipeline.run import run_pipeline
    from quantzoo.registry import load_registry

    zoo = make_zoo(tmp_path / "zoo")
    model(zoo, "tiny-bad", "classifier", variants=["unique-2"])  # 4096 distinct weights: cannot be unique-2
    reg = load_registry(zoo)
    models = [reg.model("tiny-bad"), reg.model("tiny-classifier")]
    log = tmp_path / "attempts"
    log.mkdir()
    hook = _crash_first_attempt(str(log), "tiny-classifier", "linear-8")
    result = run_pipeline(reg, models, Cache(tmp_path / "cache"), jobs=2,
                          executor=RayExecutor(hook=hook))

    killed = (log / "tiny-classifier-linear-8").read_text().split()
    assert len(killed) == 2 and killed[0] != killed[1]  # retried, in another process
    assert not Path(f"/proc/{killed[0]}").exists()      # the first one is dead
    assert [f.what for f in result.failures] == ["tiny-bad unique-2"]
    assert result.failures[0].stage == "quantize" and "unique" in result.failures[0].error
    assert result.failures[0].error.startswith(str(tmp_path / "cache"))  # the driver's file, not the worker's copy
    assert len((log / "tiny-bad-unique-2").read_text().split()) == 1  # not retried
    assert [b.model.id for b in result.built] == ["tiny-classifier"]
    assert [v.variant.id for v in result.built[0].variants] == VARIANTS
    assert result.counts.quantized == 3


def test_without_ray_the_build_says_how_to_install_it(tmp_path, monkeypatch, capfd):
    zoo = make_zoo(tmp_path / "zoo")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    assert _build(tmp_path, zoo, "x", "--executor", "ray") == 1
    err = capfd.readouterr().err
    assert "pip install 'quantzoo[ray]'" in err
    assert not (tmp_path / "cache-x").exists()  # refused before any build work


def test_ray_options_need_the_ray_executor(tmp_path, capfd):
    zoo = make_zoo(tmp_path / "zoo")
    assert _build(tmp_path, zoo, "x", "--address", "10.0.0.1:6379") == 2
    assert "--executor ray" in capfd.readouterr().err


def test_a_job_asks_ray_for_resources_by_model_size():
    from quantzoo.pipeline.rayexec import job_resources

    small, big = job_resources(1 << 20), job_resources(3 << 30)
    assert small["num_cpus"] == 1 and big["num_cpus"] == 2
    assert small["memory"] < big["memory"] == 512 * (1 << 20) + 8 * (3 << 30)
    assert job_resources(3 << 30, largest_node_memory=4 << 30)["memory"] == 4 << 30
