"""What a build costs on a Ray cluster: a simulation driven by the measured job costs.

Reads bench/results/ray.json (bench_ray.py: every job's worker seconds with its model's size, the
bytes each model ships, Ray's fixed costs) and bench/results/site.json (the whole current catalog
built cold: its total worker seconds), and writes the `simulation` block back into ray.json.

The cost model (every assumption is in `ASSUMPTIONS` and in the output):
- a job (one model × variant) costs `job0 × (MB / MB0)^alpha` worker seconds, its model's first
  job in a worker process `prep0 × (MB / MB0)^alpha` more (preparing the evaluation: preprocessing
  and float outputs); the shape comes from the measured subset, the level from site.json's
  measured total for the current catalog (`fit`);
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
    jobs = [(i, v) for i, v in _interleave(models, lambda m: m["variants"]) if not _hit(i, v, hit_rate)]
    slots = [(0.0, n * cores + c) for n in range(nodes) for c in range(cores)]
    heapq.heapify(slots)
    started: set[int] = set()
    on_node: dict[int, set] = {}
    prepared: dict[int, list] = {}
    driver_bytes = returned = 0.0
    sent: set[int] = set()
    work = longest = 0.0
    first_done: dict[int, float] = {}  # a model's other jobs wait for its first (rayexec.Submitter)
    for i, _v in jobs:
        m = models[i]
        free, slot = heapq.heappop(slots)
        free = max(free, first_done.get(i, 0.0))
        node = slot // cores
        job_s, prep_s = job_cost(cost, m["float_bytes"] / MB)
        t = ray["per_task_s"] + job_s
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
    return {"nodes": nodes, "cores": nodes * cores, "hit_rate": hit_rate, "jobs_run": len(jobs),
            "wall_s": round(wall, 1), "wall_h": round(wall / 3600, 2), "work_s": round(work, 1),
            "work_per_slot_s": round(work / len(slots), 1), "longest_job_s": round(longest, 1),
            "driver_link_s": round(driver_s, 1), "driver_gb": round(driver_bytes / 1e9, 2),
            "critical": bound[1]}


def synthetic_catalog(current: list[dict]) -> list[dict]:
    rng = random.Random(0)
    lo, hi = ASSUMPTIONS["synthetic_float_mb"]
    datasets = [m["input_bytes"] - m["float_bytes"] for m in current]
    out = []
    for _ in range(ASSUMPTIONS["synthetic_models"]):
        size = math.exp(rng.uniform(math.log(lo), math.log(hi))) * MB
        out.append({"float_bytes": size, "input_bytes": size + rng.choice(datasets),
                    "variants": ASSUMPTIONS["synthetic_variants"]})
    return out


def main() -> int:
    doc = json.loads((RESULTS / "ray.json").read_text())
    site = json.loads((RESULTS / "site.json").read_text())["default_catalog"]
    catalog_work = sum(site["cold_counts"]["worker_seconds"].values())
    facts = {m: f for m, f in doc["catalog"].items() if m in site["models"] and "error" not in f}
    arts = [j.get("artifact_bytes", 0) / j["float_bytes"] for r in doc["runs"] if r["name"].startswith("local")
            for j in r["per_job"] if j.get("artifact_bytes")]
    ASSUMPTIONS["artifact_fraction_of_float"] = round(sum(arts) / len(arts), 3) if arts else 0.5
    cost = fit(doc["runs"], catalog_work, facts)
    current = list(facts.values())
    synth = synthetic_catalog(current)
    out = {"assumptions": ASSUMPTIONS, "cost_model": cost,
           "calibration": {"catalog_models": sorted(facts), "catalog_worker_s_measured": round(catalog_work, 1),
                           "catalog_cold_wall_s_measured_2_cores": site["cold_s"]},
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
