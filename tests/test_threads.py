"""quantzoo.threads: each parallel worker runs its models on its share of the cores, and the
numbers do not depend on it."""

from __future__ import annotations

import os

from quantzoo import threads
from quantzoo.cli import main
from tinyzoo import make_zoo


def test_sessions_take_the_thread_count_from_the_environment(monkeypatch):
    monkeypatch.setenv(threads.ENV, "1")
    so = threads.ort_options()
    assert (so.intra_op_num_threads, so.inter_op_num_threads) == (1, 1)
    assert threads.openvino_config() == {"INFERENCE_NUM_THREADS": 1}
    monkeypatch.delenv(threads.ENV)
    assert threads.ort_options().intra_op_num_threads == 0 and threads.openvino_config() == {}  # the runtime's default
    assert threads.build_threads() == "1"  # a build worker's default, whatever the machine
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.build_threads() == "3"


def test_a_build_with_parallel_single_threaded_workers_publishes_the_same_bytes(tmp_path, monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    zoo = make_zoo(tmp_path / "zoo")
    sites = []
    for jobs in ("1", "2"):  # one worker in this process with every core; two workers with a share each
        site = tmp_path / f"site-{jobs}"
        assert main(["build", "--zoo", str(zoo), "--cache", str(tmp_path / f"cache-{jobs}"), "--site-dir", str(site),
                     "--jobs", jobs, "tiny-classifier"]) == 0
        sites.append(site)
    one, two = ((s / "index.json").read_bytes() for s in sites)
    assert one == two and b"tiny-classifier" in one
    assert threads.ENV not in os.environ  # the in-process build put the environment back
