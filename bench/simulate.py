"""What a build costs on a Ray cluster: a simulation driven by the measured job costs.

Reads bench/results/ray.json and writes its `simulation` block back. The calibration is the
`whole_catalog` block when it holds a local run (bench_ray.py --whole-catalog: every model of the
default registry with all its variants, per model its sizes and its jobs' worker seconds by stage,
the auto job apart; `fit_catalog`); without one, the subset runs and bench/results/site.json (the
catalog's total worker seconds; `fit`).

The cost model (every assumption is in `ASSUMPTIONS` and in the output):
- a job (one model × variant) costs `job0 × (MB / MB0)^alpha` worker seconds, its model's first
  job in a worker process `prep0 × (MB / MB0)^alpha` more (preparing the evaluation: preprocessing
  and float outputs); fitted in log space over the whole catalog's models (each model's median
  job), in CPU seconds (the worker seconds times the run's CPU seconds per worker second, which
  takes out the slowdown of a shared CPU); the current catalog uses each model's measured figures;
- an auto variant's job (the sensitivity search, inside its quantize stage) costs an ordinary job
  plus `auto_factor ×` one (the median over the measured auto jobs of their extra over their
  model's median job); a share of the synthetic models (as in the catalog) has one, as a 13th job;
- a node receives a model's inputs (float file, labels, dataset) once, the first time one of its
  jobs lands there: the first copy leaves the driver, later ones come from a node that holds one
  (Ray's object store pulls from any copy); artifacts come back to the driver, which hashes and
  writes them (`commit_bytes_per_s`); links run at `bandwidth_bytes_per_s`;
- Ray: a fixed start, each fresh worker process's first-task cost, a per-task round trip (all
  measured on this machine); tasks are handed to free slots in the plan's round-robin order;
- a cache hit rate h: that fraction of jobs is already in the cache and does not run.
- without a shared cache a model's other jobs start after its first one ends (they are sent the
  float model's runtime matrix and shape checks it made: rayexec.Submitter).
The critical path: apart from that wait jobs are independent, so the wall time is the largest of
(total work / slots), a model's first job then its longest other one, and the driver's link, plus
the start.

    python bench/simulate.py
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import random
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
MB = 1e6
ASSUMPTIONS = {
    "cores_per_node": 2,
    "bandwidth_bytes_per_s": 125e6,        # 1 Gbit/s per node and at the driver (a conservative cloud NIC)
    "commit_bytes_per_s": 400e6,           # the driver's sha256 + write of returned results (one core)
    "artifact_fraction_of_float": None,    # measured (mean artifact / float bytes over the subset)
    "evaluations_kept_per_process": 4,     # worker._KEEP_EVALUATIONS
    "synthetic_models": 1000,
    "synthetic_variants": 12,
    "synthetic_float_mb": [0.5, 100.0],    # log-uniform, fixed seed (on-device models)
    "synthetic_inputs": "each model's dataset bytes drawn from the current catalog's",
    "synthetic_auto_share": None,          # measured: the share of the catalog's models with an auto variant
    "synthetic_cost_spread": "each model's cost: the power law's × a residual drawn from the catalog's",
    "cache_hit_rates": [0.0, 0.9],
    "nodes": [1, 8, 64],
}


def fit(runs: list[dict], catalog_work_s: float, catalog: dict) -> dict:
    """The job cost model from the local runs: a model's job costs `job0 × (MB / MB0)^alpha`
    seconds and its first job in a worker process `prep0 × (MB / MB0)^alpha` more (a power law
    through the subset's two models: cost follows compute and data, not bytes, so it grows slower
    than the file); then one factor `k` scales both so the current catalog's predicted work equals
    site.json's measured work (an idle machine; its jobs had no shapes stage, so that total is
    raised by the subset's measured shapes share). `k` is the subset's slowdown from the shared CPU."""
    per_model: dict[str, list[float]] = {}
    sizes: dict[str, float] = {}
    shapes = rest = 0.0
    local_runs = [r for r in runs if r["name"].startswith("local")]
    for run in local_runs:
        for j in run["per_job"]:
            if not j["failed"]:
                per_model.setdefault(j["model"], []).append(sum(j["seconds"].values()))
                sizes[j["model"]] = j["float_bytes"] / MB
                shapes += j["seconds"].get("shapes", 0.0)
                rest += sum(v for k, v in j["seconds"].items() if k != "shapes")
    job, prep = {}, {}
    for m, secs in per_model.items():
        secs = sorted(secs)
        median = secs[len(secs) // 2]
        job[m] = median
        firsts = len(local_runs) * min(ASSUMPTIONS["cores_per_node"], len(secs) // len(local_runs))
        prep[m] = max(0.0, (sum(secs) - median * len(secs)) / max(firsts, 1))
    small, big = min(sizes, key=sizes.get), max(sizes, key=sizes.get)
    alpha = 0.0 if small == big else math.log(job[big] / job[small]) / math.log(sizes[big] / sizes[small])
    alpha = min(max(alpha, 0.0), 1.5)
    shapes_share = shapes / rest if rest else 0.0

    def raw(mb: float) -> tuple[float, float]:
        r = (mb / sizes[small]) ** alpha
        return job[small] * r, prep[small] * r

    predicted = sum(f["variants"] * raw(f["float_bytes"] / MB)[0]
                    + min(ASSUMPTIONS["cores_per_node"], f["variants"]) * raw(f["float_bytes"] / MB)[1]
                    for f in catalog.values())
    k = catalog_work_s * (1 + shapes_share) / predicted
    return {"mb0": round(sizes[small], 3), "job0_s": round(k * job[small], 3), "prep0_s": round(k * prep[small], 3),
            "alpha": round(alpha, 3), "k_load_factor": round(k, 3), "shapes_share_of_other_stages": round(shapes_share, 3),
            "subset_job_median_s_measured": {m: round(v, 2) for m, v in job.items()},
            "subset_first_job_extra_s_measured": {m: round(v, 2) for m, v in prep.items()},
            "subset_float_mb": {m: round(v, 3) for m, v in sizes.items()}}


def job_cost(cost: dict, mb: float) -> tuple[float, float]:
    """(job seconds, extra seconds of a model's first job in a worker process) at a float size in MB."""
    r = (mb / cost["mb0"]) ** cost["alpha"]
    return cost["job0_s"] * r, cost["prep0_s"] * r


def catalog_models(costs: dict, facts: dict, cpu_per_worker_s: float) -> list[dict]:
    """The current catalog as measured (`ray_catalog.model_costs` of one run): per model its bytes,
    its ordinary variants, its median job and its first job's extra, and its auto job's extra over
    an ordinary one, in CPU seconds (worker seconds × `cpu_per_worker_s`). Failed jobs count as
    run; a failed auto job's cost is unknown (`auto_unmeasured`: the cost model fills it in)."""
    out = []
    for mid in sorted(costs):
        c, f = costs[mid], facts.get(mid, {})
        if "error" in f or c["job_median_s"] is None:
            continue
        auto = c.get("auto")
        plain = c["jobs"] - (1 if auto else 0)
        measured = auto is not None and not auto["failed"]
        plain_total = sum(s["total_s"] for s in c["stages"].values())
        job = c["job_median_s"]
        prep = max(0.0, plain_total - job * plain) / min(ASSUMPTIONS["cores_per_node"], plain)
        out.append({"model": mid, "float_bytes": f["float_bytes"], "input_bytes": f["input_bytes"],
                    "variants": plain, "job_s": job * cpu_per_worker_s, "prep_s": prep * cpu_per_worker_s,
                    "auto_extra_s": None if not measured else max(0.0, auto["total_s"] - job) * cpu_per_worker_s,
                    "auto_unmeasured": auto is not None and not measured})
    return out


def fit_catalog(models: list[dict]) -> dict:
    """The cost model from the measured catalog (`catalog_models`): `alpha` and `job0` by least
    squares of log(median job) on log(MB) (MB0: the geometric mean size), `prep0` the median of
    the models' first-job extras over the power law, `auto_factor` the median auto extra over
    the model's median job; `residuals` each model's measured job over the power law's (a
    synthetic model draws one: the spread the size does not explain).

    >>> ms = [{"float_bytes": b * MB, "job_s": 2.0 * b ** 0.5, "prep_s": b ** 0.5, "auto_extra_s": None}
    ...       for b in (1.0, 4.0, 16.0)]
    >>> ms[0]["auto_extra_s"] = 6.0
    >>> c = fit_catalog(ms); c["alpha"], c["job0_s"], c["mb0"], c["prep0_s"], c["auto_factor"], c["r2_log"]
    (0.5, 4.0, 4.0, 2.0, 3.0, 1.0)
    """
    xs = [math.log(m["float_bytes"] / MB) for m in models]
    ys = [math.log(m["job_s"]) for m in models]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    alpha = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    ss = sum((y - my) ** 2 for y in ys)
    r2 = 1 - sum((y - my - alpha * (x - mx)) ** 2 for x, y in zip(xs, ys)) / ss if ss else 1.0
    mb0, job0 = math.exp(mx), math.exp(my)
    preps = sorted(m["prep_s"] / (m["float_bytes"] / MB / mb0) ** alpha for m in models)
    autos = sorted(m["auto_extra_s"] / m["job_s"] for m in models if m["auto_extra_s"] is not None)
    residuals = sorted(round(math.exp(y - my - alpha * (x - mx)), 3) for x, y in zip(xs, ys))
    return {"source": "whole_catalog", "mb0": round(mb0, 3), "job0_s": round(job0, 3), "alpha": round(alpha, 3),
            "prep0_s": round(_median(preps), 3), "auto_factor": round(_median(autos), 3) if autos else None,
            "r2_log": round(r2, 3), "models": len(models), "auto_models": len(autos), "residuals": residuals}


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2 if n else 0.0


def _auto(m: dict):
    """A model's auto job marker: its measured extra seconds, True (synthetic), or None (no auto job)."""
    return m.get("auto_extra_s", True if m.get("auto") else None)


def model_costs_of(m: dict, cost: dict) -> tuple[float, float, float | None]:
    """(job s, first-job extra s, auto job's extra s or None) of a model: measured, else the cost model's.

    >>> c = {"mb0": 1.0, "job0_s": 2.0, "prep0_s": 1.0, "alpha": 1.0, "auto_factor": 3.0}
    >>> model_costs_of({"float_bytes": 2 * MB, "variants": 12, "auto": True}, c)
    (4.0, 2.0, 12.0)
    >>> model_costs_of({"float_bytes": 2 * MB, "job_s": 5.0, "prep_s": 0.0, "auto_extra_s": None}, c)
    (5.0, 0.0, None)
    """
    if "job_s" in m:
        return m["job_s"], m["prep_s"], m.get("auto_extra_s")
    job, prep = (x * m.get("cost_factor", 1.0) for x in job_cost(cost, m["float_bytes"] / MB))
    auto = (cost.get("auto_factor") or 0.0) * job if m.get("auto") else None  # no factor: an ordinary job
    return job, prep, auto


def _interleave(models: list[dict], variants_of) -> list[tuple[int, int]]:
    """(model index, variant index) round-robin over models, as `plan.interleave` orders jobs."""
    out = []
    for v in range(max(variants_of(m) for m in models)):
        out += [(i, v) for i, m in enumerate(models) if v < variants_of(m)]
    return out


def _hit(i: int, v: int, rate: float) -> bool:
    """Whether job (i, v) is a cache hit at `rate` (deterministic: a hash of the job)."""
    h = int(hashlib.sha256(f"{i}/{v}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return h < rate


def simulate(models: list[dict], nodes: int, cost: dict, ray: dict, hit_rate: float) -> dict:
    """The wall time of one build: list scheduling of the jobs over nodes × cores slots."""
    cores = ASSUMPTIONS["cores_per_node"]
    bw, commit = ASSUMPTIONS["bandwidth_bytes_per_s"], ASSUMPTIONS["commit_bytes_per_s"]
    frac = ASSUMPTIONS["artifact_fraction_of_float"]
    keep = ASSUMPTIONS["evaluations_kept_per_process"]
    costs = [model_costs_of(m, cost) for m in models]
    jobs = [(i, v) for i, v in _interleave(models, lambda m: m["variants"] + (_auto(m) is not None))
            if not _hit(i, v, hit_rate)]
    slots = [(0.0, n * cores + c) for n in range(nodes) for c in range(cores)]
    heapq.heapify(slots)
    started: set[int] = set()
    on_node: dict[int, set] = {}
    prepared: dict[int, list] = {}
    driver_bytes = returned = 0.0
    sent: set[int] = set()
    work = longest = 0.0
    first_done: dict[int, float] = {}  # a model's other jobs wait for its first (rayexec.Submitter)
    autos = 0
    for i, v in jobs:
        m = models[i]
        free, slot = heapq.heappop(slots)
        free = max(free, first_done.get(i, 0.0))
        node = slot // cores
        job_s, prep_s, auto_s = costs[i]
        is_auto = v == m["variants"]  # the auto job comes last
        autos += is_auto
        t = ray["per_task_s"] + job_s + (auto_s if is_auto else 0.0)
        if slot not in started:
            started.add(slot)
            t += ray["first_task_in_fresh_workers_s"]
        if i not in on_node.setdefault(node, set()):
            on_node[node].add(i)
            t += m["input_bytes"] / bw
            if i not in sent:  # later nodes pull the object from a node that holds a copy
                sent.add(i)
                driver_bytes += m["input_bytes"]
        cached = prepared.setdefault(slot, [])
        if i not in cached:
            t += prep_s
            cached.append(i)
            del cached[:-keep]
        out = frac * m["float_bytes"]
        t += out / bw
        driver_bytes += out
        returned += out
        work += t
        longest = max(longest, t)
        first_done.setdefault(i, free + t)
        heapq.heappush(slots, (free + t, slot))
    span = max(s[0] for s in slots)
    driver_s = driver_bytes / bw + returned / commit
    wall = ray["start_s"] + max(span, driver_s)
    bound = max((work / len(slots), "work / slots"), (longest, "the longest job"), (driver_s, "the driver's link"))
    return {"nodes": nodes, "cores": nodes * cores, "hit_rate": hit_rate, "jobs_run": len(jobs), "auto_jobs_run": autos,
            "wall_s": round(wall, 1), "wall_h": round(wall / 3600, 2), "work_s": round(work, 1),
            "work_per_slot_s": round(work / len(slots), 1), "longest_job_s": round(longest, 1),
            "driver_link_s": round(driver_s, 1), "driver_gb": round(driver_bytes / 1e9, 2),
            "critical": bound[1]}


def synthetic_catalog(current: list[dict], auto_share: float = 0.0, residuals: list | None = None) -> list[dict]:
    """1,000 models × 12 variants, sizes log-uniform (seed 0), datasets drawn from the current
    catalog's; a share `auto_share` of them (seed 1) with an auto job besides; each model's cost
    the power law's times a factor drawn from `residuals` (seed 2; none: 1)."""
    rng, pick, spread = random.Random(0), random.Random(1), random.Random(2)
    lo, hi = ASSUMPTIONS["synthetic_float_mb"]
    datasets = [m["input_bytes"] - m["float_bytes"] for m in current]
    out = []
    for _ in range(ASSUMPTIONS["synthetic_models"]):
        size = math.exp(rng.uniform(math.log(lo), math.log(hi))) * MB
        out.append({"float_bytes": size, "input_bytes": size + rng.choice(datasets),
                    "variants": ASSUMPTIONS["synthetic_variants"], "auto": pick.random() < auto_share,
                    "cost_factor": spread.choice(residuals) if residuals else 1.0})
    return out


def calibrate_from_whole_catalog(wc: dict) -> tuple[dict, list[dict], dict]:
    """(cost model, current catalog, calibration facts) from ray.json's `whole_catalog` local run."""
    run = next(r for r in wc["runs"] if r["name"] == "local")
    costs = dict(wc["model_costs"]["local"])
    worker_s = sum(c["total_s"] for c in costs.values())
    ratio = min(1.0, run["cpu_s"] / worker_s)  # a shared CPU stretches worker seconds, not CPU seconds
    auto_from = {}
    for mid, c in costs.items():  # an auto job that failed in the local run: the Ray run's measurement
        other = wc["model_costs"].get("ray", {}).get(mid, {}).get("auto")
        if c.get("auto") and c["auto"]["failed"] and other and not other["failed"]:
            costs[mid], auto_from[mid] = {**c, "auto": other}, "ray"
    current = catalog_models(costs, wc["catalog"], ratio)
    cost = fit_catalog(current)
    cost["cpu_s_per_worker_s"] = round(ratio, 3)
    for m in current:  # an auto job measured nowhere: the cost model's (an ordinary job without a factor)
        if m.pop("auto_unmeasured"):
            m["auto_extra_s"] = (cost["auto_factor"] or 0.0) * m["job_s"]
            auto_from[m["model"]] = "cost model"
    ASSUMPTIONS["synthetic_auto_share"] = round(sum(m["auto_extra_s"] is not None for m in current) / len(current), 3)
    return cost, current, {"source": "ray.json whole_catalog (local run)", "auto_jobs_from": auto_from,
                           "catalog_models": [m["model"] for m in current],
                           "jobs": run["jobs"], "worker_s_measured": round(worker_s, 1), "cpu_s_measured": run["cpu_s"],
                           "wall_s_measured_2_cores": run["wall_s"], "load": [run["load_before"], run["load_after"]],
                           "date": wc["machine"]["date"]}


def calibrate_from_subset(doc: dict) -> tuple[dict, list[dict], dict]:
    """(cost model, current catalog, calibration facts) from the subset runs and site.json."""
    site = json.loads((RESULTS / "site.json").read_text())["default_catalog"]
    catalog_work = sum(site["cold_counts"]["worker_seconds"].values())
    facts = {m: f for m, f in doc["catalog"].items() if m in site["models"] and "error" not in f}
    ASSUMPTIONS["synthetic_auto_share"] = 0.0
    return fit(doc["runs"], catalog_work, facts), list(facts.values()), {
        "source": "subset runs + site.json", "catalog_models": sorted(facts),
        "catalog_worker_s_measured": round(catalog_work, 1), "catalog_cold_wall_s_measured_2_cores": site["cold_s"]}


def main() -> int:
    doc = json.loads((RESULTS / "ray.json").read_text())
    arts = [j.get("artifact_bytes", 0) / j["float_bytes"] for r in doc["runs"] if r["name"].startswith("local")
            for j in r["per_job"] if j.get("artifact_bytes")]
    ASSUMPTIONS["artifact_fraction_of_float"] = round(sum(arts) / len(arts), 3) if arts else 0.5
    wc = doc.get("whole_catalog") or {}
    if "local" in wc.get("model_costs", {}):
        cost, current, calibration = calibrate_from_whole_catalog(wc)
    else:
        cost, current, calibration = calibrate_from_subset(doc)
    synth = synthetic_catalog(current, ASSUMPTIONS["synthetic_auto_share"], cost.get("residuals"))
    out = {"assumptions": ASSUMPTIONS, "cost_model": cost, "calibration": calibration,
           "current_catalog": [], "synthetic_1000x12": []}
    for name, models in (("current_catalog", current), ("synthetic_1000x12", synth)):
        for rate in ASSUMPTIONS["cache_hit_rates"]:
            for n in ASSUMPTIONS["nodes"]:
                r = simulate(models, n, cost, doc["ray_overheads"], rate)
                out[name].append(r)
                print(f"{name:18s} nodes {n:3d} hit {rate:.0%}: {r['wall_h']:7.2f} h "
                      f"(work/slot {r['work_per_slot_s']:.0f} s, longest job {r['longest_job_s']:.0f} s, "
                      f"driver link {r['driver_link_s']:.0f} s; bound: {r['critical']})")
    doc["simulation"] = out
    tmp = RESULTS / "ray.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, RESULTS / "ray.json")
    print(f"wrote the simulation into {RESULTS / 'ray.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
