"""bench/ray_catalog.py: per-model job costs with the auto job apart, and how two index.json differ."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "ray_catalog", Path(__file__).resolve().parent.parent / "bench" / "ray_catalog.py")
rc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rc)


def _job(variant: str, quantize: float, compare: float, failed: bool = False) -> dict:
    return {"model": "m", "variant": variant, "auto": variant.startswith("auto"), "failed": failed,
            "seconds": {"load": 0.5, "quantize": quantize, "compare": compare}}


def test_an_auto_jobs_search_is_its_own_column_and_not_in_the_quantize_median():
    jobs = [_job("fp16", 1.0, 4.0), _job("linear-8", 2.0, 6.0), _job("kmeans-4", 9.0, 5.0, failed=True),
            _job("auto", 60.0, 5.0)]
    c = rc.model_costs(jobs, {"m": {"float_bytes": 100, "input_bytes": 300}})["m"]
    assert (c["jobs"], c["failed"], c["float_bytes"], c["input_bytes"]) == (4, 1, 100, 300)
    assert c["stages"]["quantize"] == {"median_s": 2.0, "total_s": 12.0}
    assert c["stages"]["compare"] == {"median_s": 5.0, "total_s": 15.0}
    assert c["job_median_s"] == 8.5 and c["total_s"] == 94.0
    assert c["auto"]["quantize_s"] == 60.0 and c["auto"]["total_s"] == 65.5
    assert rc.model_costs(jobs[:2], {})["m"]["auto"] is None


def test_index_differences_name_every_differing_leaf_and_its_field():
    a = {"models": [{"id": "m", "throughput": {"1": 10.0}, "bytes": 5}, {"id": "n", "throughput": {"1": 3.0}}]}
    b = json.loads(json.dumps(a))
    assert rc.index_differences(json.dumps(a).encode(), json.dumps(b).encode())["identical"]
    b["models"][0]["throughput"]["1"] = 11.0
    b["models"][1]["throughput"]["1"] = 4.0
    d = rc.index_differences(json.dumps(a).encode(), json.dumps(b).encode())
    assert not d["identical"] and d["leaves_differing"] == 2 and d["fields"] == {"throughput": 2}
    assert d["paths"][0] == {"path": "models[0].throughput.1", "a": 10.0, "b": 11.0}


def test_ratios_wait_for_both_runs():
    local = {"name": "local", "wall_s": 100.0, "cpu_s": 180.0}
    assert rc.ratios([local]) == {"wall": None, "cpu": None}
    assert rc.ratios([local, {"name": "ray", "wall_s": 110.0, "cpu_s": 189.0}]) == {"wall": 1.1, "cpu": 1.05}


def test_the_cpu_ratio_without_auto_jobs_takes_out_a_search_only_one_run_made():
    runs = [{"name": "local", "wall_s": 100.0, "cpu_s": 90.0}, {"name": "ray", "wall_s": 100.0, "cpu_s": 150.0}]
    costs = {"local": {"m": {"total_s": 180.0, "auto": {"total_s": 0.0}}},   # failed at once
             "ray": {"m": {"total_s": 200.0, "auto": {"total_s": 50.0}}}}     # searched: a quarter of the work
    r = rc.ratios(runs, costs)
    assert r["cpu"] == 1.667 and r["cpu_without_auto_jobs"] == 1.25          # (150 × 3/4) / 90
