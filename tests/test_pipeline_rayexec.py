"""pipeline.rayexec: `quantzoo build --executor ray` on a real local Ray instance (2 CPUs, loopback
only, one per module: starting Ray costs seconds) and the tiny zoo. The Ray tests are skipped
where Ray is not installed; the missing-Ray message is checked everywhere."""

from __future__ import annotations

import importlib.util
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
    from quantzoo.pipeline.raycluster import start_local

    import ray  # imported before the switch is set, as a `reach_head` earlier in a process does:

    start_local(2)  # the instance must still listen on loopback only (the test below)

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


def _log_starts(log_dir: str):
    """A hook that notes when each attempt starts (CLOCK_MONOTONIC: one clock for every process)."""

    def hook(job):
        import time

        with open(Path(log_dir) / f"{job.model}-{job.variant}", "a") as f:
            f.write(f"{time.monotonic()}\n")

    return hook


@needs_ray
def test_a_models_other_jobs_start_after_its_first_job_came_back(tmp_path, ray_instance):
    from quantzoo.pipeline.rayexec import RayExecutor
    from quantzoo.pipeline.run import run_pipeline
    from quantzoo.registry import load_registry

    reg = load_registry(make_zoo(tmp_path / "zoo"))
    log = tmp_path / "starts"
    log.mkdir()
    seen: dict = {}

    class Watch(RayExecutor):  # the jobs in the order the plan gave them, and how long each one ran
        def run(self, jobs, on_result):
            seen["jobs"] = list(jobs)
            super().run(jobs, lambda r: (seen.setdefault(f"{r.model}-{r.variant}", sum(r.seconds.values())),
                                         on_result(r)))

    # one model on 2 CPUs: submitted together, its first two jobs would start at once
    result = run_pipeline(reg, [reg.model("tiny-mapper")], Cache(tmp_path / "cache"), jobs=2,
                          executor=Watch(hook=_log_starts(str(log))))
    assert not result.failures
    first, *others = [f"{j.model}-{j.variant}" for j in seen["jobs"]]
    assert others
    first_ended = float((log / first).read_text().split()[0]) + seen[first]  # its start + its stages
    for other in others:
        assert float((log / other).read_text().split()[0]) > first_ended


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


def test_an_auto_job_asks_for_its_sensitivity_searchs_memory_too(tmp_path):
    from types import SimpleNamespace

    from quantzoo.pipeline.rayexec import AUTO_EXTRA, is_auto, job_resources
    from quantzoo.quantize.sensitivity import DEFAULT_SCHEMES
    from quantzoo.registry import load_registry

    zoo = make_zoo(tmp_path / "zoo")
    model(zoo, "tiny-classifier", "classifier", variants=["fp16", "auto"])
    reg = load_registry(zoo)
    jobs = [SimpleNamespace(model="tiny-classifier", variant=v) for v in ("fp16", "auto")]
    assert [is_auto(j, reg) for j in jobs] == [False, True]
    assert AUTO_EXTRA >= len(DEFAULT_SCHEMES) + 1  # every candidate's decoded weights and the float weights
    size = 100 << 20
    assert job_resources(size, auto=True)["memory"] - job_resources(size)["memory"] == AUTO_EXTRA * size
    assert job_resources(size, largest_node_memory=1 << 30, auto=True)["memory"] == 1 << 30


def test_a_malformed_address_is_a_usage_error(tmp_path, capfd):
    zoo = make_zoo(tmp_path / "zoo")
    for address in ("ray-head", "ray-head:99999", "ray://ray-head:10001", "ray head:6379"):
        assert _build(tmp_path, zoo, "x", "--executor", "ray", "--address", address) == 2
        err = capfd.readouterr().err
        assert "HOST:PORT" in err and repr(address) in err
    assert not (tmp_path / "cache-x").exists()  # refused before any build work


def _free_loopback_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_ray
def test_an_address_where_nothing_listens_fails_at_once_and_says_what_to_do(tmp_path, monkeypatch, capfd):
    import time

    zoo = make_zoo(tmp_path / "zoo")
    address = f"127.0.0.1:{_free_loopback_port()}"
    monkeypatch.setenv("QUANTZOO_RAY_CONNECT_TIMEOUT", "3")
    start = time.monotonic()
    assert _build(tmp_path, zoo, "x", "--executor", "ray", "--address", address) == 1
    assert time.monotonic() - start < 30
    err = capfd.readouterr().err
    assert f"could not reach a Ray cluster at {address} within 3 s" in err
    assert "expected a Ray 2." in err and "ConnectionRefusedError" in err
    assert "ray start --head" in err and "leave --address out" in err
    assert "Traceback" not in err


@needs_ray
def test_a_live_head_is_reached_and_its_version_read(ray_instance):
    from quantzoo.pipeline.raycluster import reach_head

    meta = reach_head(ray_instance.get_runtime_context().gcs_address, timeout=10)
    assert meta["ray_version"] == ray_instance.__version__
