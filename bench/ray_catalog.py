"""The whole-catalog measurement of bench_ray.py (`--whole-catalog`): what each model's jobs cost
by size, and how the two executors' index.json differ. Pure functions of the runs' records.

A job's worker seconds are `JobResult.seconds` (stages load, quantize, compare, runtimes, shapes,
preview). An `auto` variant's sensitivity search runs inside its quantize stage
(`worker._quantize` → `autovariant.quantize_auto`), so the search is reported as that job's
quantize seconds, in its own column, and kept out of the model's ordinary quantize median.
"""

from __future__ import annotations

import json
import statistics

STAGES = ("load", "quantize", "compare", "runtimes", "shapes", "preview")


def model_costs(per_job: list[dict], facts: dict) -> dict:
    """Per model: its float and input bytes (`facts`), its number of jobs, and per stage the median
    and total worker seconds of its ordinary jobs; its `auto` job's seconds apart (None without one).

    >>> jobs = [{"model": "m", "variant": v, "auto": v == "auto", "failed": False,
    ...          "seconds": {"quantize": q, "compare": 1.0}} for v, q in (("a", 2.0), ("b", 4.0), ("auto", 30.0))]
    >>> c = model_costs(jobs, {"m": {"float_bytes": 10, "input_bytes": 20}})["m"]
    >>> c["jobs"], c["stages"]["quantize"], c["auto"]["quantize_s"], c["total_s"]
    (3, {'median_s': 3.0, 'total_s': 6.0}, 30.0, 39.0)
    """
    out: dict[str, dict] = {}
    for model in sorted({j["model"] for j in per_job}):
        mine = [j for j in per_job if j["model"] == model]
        plain = [j for j in mine if not j.get("auto")]
        auto = [j for j in mine if j.get("auto")]
        stages = {}
        for s in STAGES:
            secs = [j["seconds"][s] for j in plain if s in j["seconds"]]
            if secs:
                stages[s] = {"median_s": round(statistics.median(secs), 3), "total_s": round(sum(secs), 3)}
        fact = facts.get(model, {})
        out[model] = {
            "float_bytes": fact.get("float_bytes"), "input_bytes": fact.get("input_bytes"),
            "jobs": len(mine), "failed": sum(j["failed"] for j in mine), "stages": stages,
            "job_median_s": round(statistics.median(sum(j["seconds"].values()) for j in plain), 3) if plain else None,
            "total_s": round(sum(sum(j["seconds"].values()) for j in mine), 3),
            "auto": None if not auto else {
                "variant": auto[0]["variant"], "failed": auto[0]["failed"],
                "quantize_s": round(auto[0]["seconds"].get("quantize", 0.0), 3),  # the sensitivity search included
                "total_s": round(sum(auto[0]["seconds"].values()), 3),
                "stages": {s: round(v, 3) for s, v in auto[0]["seconds"].items()}},
        }
    return out


def _leaves(doc, path: str = ""):
    """(path, value) of every leaf of a JSON document, lists by position, dicts by key."""
    if isinstance(doc, dict):
        for k in sorted(doc):
            yield from _leaves(doc[k], f"{path}.{k}" if path else k)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, doc


def index_differences(a: bytes, b: bytes, keep: int = 40) -> dict:
    """How two index.json differ: byte-identical or not, every leaf path whose value differs
    (the first `keep` with both values), and the differing fields by their last key.

    >>> d = index_differences(b'{"m": [{"ms": 1, "id": "x"}]}', b'{"m": [{"ms": 2, "id": "x"}]}')
    >>> d["identical"], d["leaves_differing"], d["fields"], d["paths"][0]["path"]
    (False, 1, {'ms': 1}, 'm[0].ms')
    """
    if a == b:
        return {"identical": True, "leaves_differing": 0, "fields": {}, "paths": []}
    la, lb = dict(_leaves(json.loads(a))), dict(_leaves(json.loads(b)))
    differ = [p for p in sorted(set(la) | set(lb)) if la.get(p, "<absent>") != lb.get(p, "<absent>")]
    fields: dict[str, int] = {}
    for p in differ:  # the last key that names a field (not a list position or a number such as a batch size)
        names = [k for k in p.replace("[", ".[").split(".") if k and not k.startswith("[") and not k.isdigit()]
        last = names[-1] if names else p
        fields[last] = fields.get(last, 0) + 1
    return {"identical": False, "leaves_differing": len(differ), "leaves_total": len(la),
            "fields": dict(sorted(fields.items(), key=lambda kv: -kv[1])),
            "paths": [{"path": p, "a": la.get(p, "<absent>"), "b": lb.get(p, "<absent>")} for p in differ[:keep]]}


def ratios(runs: list[dict], costs: dict | None = None) -> dict:
    """Ray over local: wall seconds and the process tree's CPU seconds (None until both ran). With
    `costs` (`model_costs` per run) also the CPU ratio without the auto jobs: each run's CPU seconds
    less its auto jobs' worker seconds × that run's CPU seconds per worker second (an auto job that
    failed at once in one run and searched in the other would otherwise be counted as overhead).

    >>> runs = [{"name": "local", "wall_s": 100.0, "cpu_s": 100.0}, {"name": "ray", "wall_s": 120.0, "cpu_s": 150.0}]
    >>> costs = {"local": {"m": {"total_s": 200.0, "auto": None}},
    ...          "ray": {"m": {"total_s": 300.0, "auto": {"total_s": 80.0}}}}
    >>> ratios(runs, costs)
    {'wall': 1.2, 'cpu': 1.5, 'cpu_without_auto_jobs': 1.1}
    """
    by = {r["name"]: r for r in runs}
    if "local" not in by or "ray" not in by:
        return {"wall": None, "cpu": None}
    out = {"wall": round(by["ray"]["wall_s"] / by["local"]["wall_s"], 3),
           "cpu": round(by["ray"]["cpu_s"] / by["local"]["cpu_s"], 3)}
    if costs:
        rest = {}
        for name in ("local", "ray"):
            worker = sum(c["total_s"] for c in costs[name].values())
            auto = sum(c["auto"]["total_s"] for c in costs[name].values() if c.get("auto"))
            rest[name] = by[name]["cpu_s"] * (1 - auto / worker) if worker else by[name]["cpu_s"]
        out["cpu_without_auto_jobs"] = round(rest["ray"] / rest["local"], 3)
    return out


EARLIER_IDLE = {
    "date": "2026-11-29 (earlier session, idle machine, 2 cores)",
    "local": {"command": "QUANTZOO_CACHE=<fresh> make site", "quantize_compare_wall": "21:38",
              "total_wall": "24:21 (incl. 1:05 fetch and venv install, cold cache)"},
    "ray": {"command": "quantzoo build --executor ray (fetch cache warm)", "quantize_compare_wall": "21:33",
            "total_wall": "21:52"},
    "ratio_quantize_compare": 1.0,
    "note": "`time` of the whole build; the quantize + compare bar's elapsed time from the build's progress",
}
