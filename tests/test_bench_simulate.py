"""bench/simulate.py: the cost model fitted on the whole catalog's measured jobs, the auto job in
it, and the schedule of a build (tiny catalogs with known answers)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "simulate", Path(__file__).resolve().parent.parent / "bench" / "simulate.py")
sim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sim)

MB = sim.MB
RAY = {"start_s": 10.0, "per_task_s": 0.0, "first_task_in_fresh_workers_s": 0.0}


def _costs(model: str, mb: float, jobs: list[float], auto: float | None = None) -> tuple[str, dict, dict]:
    """One model's `ray_catalog.model_costs` entry: ordinary jobs of these seconds (all in compare)."""
    ordered = sorted(jobs)
    entry = {"float_bytes": int(mb * MB), "input_bytes": int(2 * mb * MB), "jobs": len(jobs) + (auto is not None),
             "failed": 0, "stages": {"compare": {"median_s": ordered[len(ordered) // 2], "total_s": sum(jobs)}},
             "job_median_s": ordered[len(ordered) // 2], "total_s": sum(jobs) + (auto or 0.0),
             "auto": None if auto is None else {"variant": "auto", "failed": False, "quantize_s": auto - 1.0,
                                                 "total_s": auto, "stages": {}}}
    return model, entry, {"float_bytes": entry["float_bytes"], "input_bytes": entry["input_bytes"]}


def test_the_measured_catalog_gives_each_model_its_job_first_job_extra_and_auto_extra():
    name, entry, fact = _costs("m", 1.0, [10.0, 10.0, 10.0, 16.0], auto=40.0)  # first jobs: 6 s extra over 2 slots
    (m,) = sim.catalog_models({name: entry}, {name: fact}, cpu_per_worker_s=0.5)
    assert m["variants"] == 4
    assert m["job_s"] == pytest.approx(5.0) and m["prep_s"] == pytest.approx(1.5)
    assert m["auto_extra_s"] == pytest.approx(15.0)  # (40 − 10) × 0.5


def test_the_power_law_is_recovered_and_the_auto_factor_is_the_median_ratio():
    models = [{"float_bytes": b * MB, "job_s": 3.0 * b ** 0.75, "prep_s": 0.0, "auto_extra_s": None}
              for b in (0.5, 2.0, 8.0, 32.0)]
    models[0]["auto_extra_s"] = 2 * models[0]["job_s"]
    models[2]["auto_extra_s"] = 4 * models[2]["job_s"]
    cost = sim.fit_catalog(models)
    assert cost["alpha"] == pytest.approx(0.75) and cost["r2_log"] == pytest.approx(1.0)
    assert sim.job_cost(cost, 8.0)[0] == pytest.approx(3.0 * 8.0 ** 0.75, rel=1e-3)
    assert cost["auto_factor"] == pytest.approx(3.0) and cost["auto_models"] == 2


def test_an_auto_job_runs_last_and_its_search_is_the_critical_path_on_many_nodes():
    cost = {"mb0": 1.0, "job0_s": 10.0, "prep0_s": 0.0, "alpha": 0.0, "auto_factor": 9.0}
    plain = [{"float_bytes": MB, "input_bytes": MB, "variants": 4} for _ in range(3)]
    with_auto = [dict(plain[0], auto=True)] + plain[1:]
    sim.ASSUMPTIONS["artifact_fraction_of_float"] = 0.0
    a = sim.simulate(plain, 8, cost, RAY, 0.0)
    b = sim.simulate(with_auto, 8, cost, RAY, 0.0)
    assert (a["jobs_run"], a["auto_jobs_run"], b["jobs_run"], b["auto_jobs_run"]) == (12, 0, 13, 1)
    assert a["wall_s"] == pytest.approx(10.0 + 20.0)    # a model's first job, then its others in parallel
    assert b["wall_s"] == pytest.approx(10.0 + 110.0)  # the first job, then the auto job (10 + 9 × 10 s)
    assert b["critical"] == "the longest job" and b["longest_job_s"] == pytest.approx(100.0)


def test_the_synthetic_catalog_has_the_measured_share_of_auto_jobs_and_keeps_its_sizes():
    current = [{"float_bytes": MB, "input_bytes": 3 * MB}]
    none, some = sim.synthetic_catalog(current, 0.0), sim.synthetic_catalog(current, 0.14)
    assert [m["float_bytes"] for m in none] == [m["float_bytes"] for m in some]
    share = sum(m["auto"] for m in some) / len(some)
    assert not any(m["auto"] for m in none) and 0.11 < share < 0.17


def test_an_auto_job_that_failed_locally_is_taken_from_the_ray_run_or_else_from_the_cost_model():
    names = ("a", "b", "c")
    entries = {n: _costs(n, mb, [4.0, 4.0, 4.0], auto=1.0)[1] for n, mb in zip(names, (1.0, 2.0, 4.0))}
    for e in entries.values():
        e["auto"]["failed"] = True  # failed at once in the local run
    ray = {n: dict(e, auto=dict(e["auto"], failed=n == "c", total_s=24.0)) for n, e in entries.items()}
    facts = {n: {"float_bytes": e["float_bytes"], "input_bytes": e["input_bytes"]} for n, e in entries.items()}
    worker_s = sum(e["total_s"] for e in entries.values())
    wc = {"runs": [{"name": "local", "cpu_s": worker_s, "jobs": 12, "wall_s": 1.0, "load_before": 0, "load_after": 0}],
          "model_costs": {"local": entries, "ray": ray}, "catalog": facts, "machine": {"date": "d"}}
    cost, current, calibration = sim.calibrate_from_whole_catalog(wc)
    assert calibration["auto_jobs_from"] == {"a": "ray", "b": "ray", "c": "cost model"}
    assert cost["auto_factor"] == pytest.approx(5.0)  # (24 − 4) / 4
    assert [m["auto_extra_s"] for m in current] == pytest.approx([20.0, 20.0, 20.0])
    assert sim.ASSUMPTIONS["synthetic_auto_share"] == 1.0


def test_a_synthetic_models_cost_carries_a_measured_residual():
    cost = {"mb0": 1.0, "job0_s": 2.0, "prep0_s": 1.0, "alpha": 0.0, "auto_factor": None}
    (m,) = sim.synthetic_catalog([{"float_bytes": MB, "input_bytes": MB}], 0.0, [3.0])[:1]
    assert m["cost_factor"] == 3.0 and sim.model_costs_of(m, cost) == (6.0, 3.0, None)
