"""The build on Ray against the local executor on one machine, and each job's cost by model size.

For a subset of the catalog (default: two small models, the first 3 variants of each: the CPU
is shared while this runs, and a run must stay short), each run builds into a fresh cache whose fetched sources are linked from a warm cache
(so "cold" means: nothing quantized, compared or checked yet, and no network), timing
fetch → plan → execute → collect (`run_pipeline`; publishing is the same for every executor and
is left out). Runs, in order: local, Ray (results sent to the driver), Ray with --shared-cache,
local again; the overhead ratio is each Ray run over the mean of the two local runs, which
bracket the Ray runs in time (the CPU may be shared). Ray's time includes starting and stopping
its local instance. Every job's worker seconds per stage are kept with its model's size: they
drive bench/simulate.py. The machine's load average is recorded before and after.

    python bench/bench_ray.py [--models ID ...] [--variants N] [--cache DIR] [--jobs N] [--runs NAME ...]
    python bench/bench_ray.py --whole-catalog [--keep-index DIR] [--runs local ray]

`--whole-catalog` builds every model of the default registry with all its variants (auto ones
included), local then Ray, into ray.json's `whole_catalog` block: per run wall and CPU seconds,
load, counts, failures, and per model its bytes and its jobs' worker seconds by stage
(`ray_catalog.model_costs`, which bench/simulate.py calibrates from), and how the two runs'
index.json differ (`ray_catalog.index_differences`).

Each run's Ray workers get a fresh scratch folder ($QUANTZOO_RAY_SCRATCH), so the node's shared
float outputs start empty like the cache. `--runs ray` (say) measures only those runs and keeps
the full run's figures (a `partial` block and a `history` entry).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TreeCPU, write_result  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = ["ppocr-mobile-v2-cls", "magika-standard-v3"]
TARGET_RATIO = 1.1
RUNS = ("local", "ray", "ray-shared-cache", "local-again")  # the order: the local runs bracket the Ray runs
# the catalog measured cold in bench/results/site.json (its worker seconds calibrate bench/simulate.py)
CATALOG = ["efficientnet-lite0", "magika-standard-v3", "ppocr-mobile-v2-cls", "ppocr-v4-det", "ppocr-v4-rec",
           "stn-digits"]


class Recording:
    """An executor that runs another and keeps every job and `JobResult` (the pipeline's Executor interface)."""

    def __init__(self, inner):
        self.inner, self.jobs, self.results = inner, [], []

    def run(self, jobs, on_result):
        self.jobs = list(jobs)

        def keep(result):
            self.results.append(result)
            on_result(result)

        self.inner.run(jobs, keep)


def _link_sources(warm: Path, fresh: Path) -> None:
    """`fresh` sees the warm cache's fetched sources and PyTorch conversions, nothing derived else."""
    fresh.mkdir(parents=True)
    for name in ("blobs", "trees", "downloads"):
        if (warm / name).exists():
            os.symlink(warm / name, fresh / name)
    if (warm / "derived" / "convert").exists():
        (fresh / "derived").mkdir()
        os.symlink(warm / "derived" / "convert", fresh / "derived" / "convert")


def snapshot_zoo(ids: list[str], variants: int, dest: Path) -> Path:
    """A copy of the zoo in which the subset's models keep their first `variants` variants (the
    build reads this copy: the working tree may change while the benchmark runs)."""
    import shutil

    import yaml

    from quantzoo.registry import load_registry

    for attempt in range(6):  # another process may be half-way through editing a manifest: copy again
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(REPO / "zoo", dest)
        try:
            reg = load_registry(dest)
            break
        except Exception:  # noqa: BLE001
            if attempt == 5:
                raise
            time.sleep(10)
    for mid in ids:
        m = reg.model(mid)
        doc = yaml.safe_load(m.path.read_text(encoding="utf-8"))
        doc["variants"] = [v.id for v in m.variants][:variants]
        m.path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    load_registry(dest)  # still valid
    return dest


def one_run(name: str, executor, zoo: Path, ids: list[str], warm: Path, tmp: Path, jobs: int) -> dict:
    from quantzoo.cache import Cache
    from quantzoo.pipeline.jobfiles import SCRATCH_DIR
    from quantzoo.pipeline.run import run_pipeline
    from quantzoo.pipeline.store import read_artifact
    from quantzoo.publish.index import catalog_index
    from quantzoo.registry import load_registry

    reg = load_registry(zoo)
    models = [reg.model(i) for i in ids]
    cache = tmp / f"cache-{name}"
    _link_sources(warm, cache)
    os.environ[SCRATCH_DIR] = str(tmp / f"scratch-{name}")  # the Ray workers' node folder starts empty too
    rec = Recording(executor)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with TreeCPU() as cpu:
        result = run_pipeline(reg, models, Cache(cache), jobs=jobs, executor=rec)
    wall = time.perf_counter() - t0
    sizes = {j.model: Path(j.float_path).stat().st_size for j in rec.jobs}
    arts = {(j.model, j.variant): (read_artifact(Cache(cache), j.keys.artifact) or {}).get("size") for j in rec.jobs}
    auto = {(m.id, v.id) for m in models for v in m.variants if v.auto}
    per_job = [{"model": r.model, "variant": r.variant, "float_bytes": sizes.get(r.model),
                "artifact_bytes": arts.get((r.model, r.variant)), "seconds": r.seconds,
                "failed": r.failure is not None, "auto": (r.model, r.variant) in auto} for r in rec.results]
    (tmp / f"index-{name}.json").write_bytes(catalog_index(result.built).to_bytes())  # what `quantzoo build` publishes
    c = result.counts
    print(f"{name}: {wall:.1f} s, {cpu.seconds:.1f} CPU s, {c.quantized} quantized, {c.compared} compared, "
          f"{len(result.failures)} failures, load {load:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)
    return {"name": name, "wall_s": round(wall, 2), "cpu_s": round(cpu.seconds, 1), "jobs": c.jobs, "quantized": c.quantized,
            "compared": c.compared, "reused": c.reused, "previews": c.previews,
            "failures": [f"{f.what} ({f.stage}): {f.error[:200]}" for f in result.failures],
            "stage_seconds": result.stage_seconds, "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2), "per_job": per_job}


def _warm_up() -> int:
    """What a fresh worker process pays before its first job: importing the worker's libraries."""
    import onnxruntime  # noqa: F401
    import openvino  # noqa: F401

    from quantzoo.pipeline import worker  # noqa: F401
    return os.getpid()


def _noop() -> None:
    return None


def ray_overheads(cpus: int, tasks: int = 200) -> dict:
    """Ray's fixed costs on this machine: starting and stopping a local instance, a fresh worker
    process's first task (imports included), and the round trip of one more (empty) task."""
    from quantzoo.pipeline.raycluster import import_ray, start_local

    ray = import_ray(local=True)
    t0 = time.perf_counter()
    start_local(cpus)
    started = time.perf_counter() - t0
    t1 = time.perf_counter()
    ray.get([ray.remote(_warm_up).options(num_cpus=1).remote() for _ in range(cpus)])
    first = time.perf_counter() - t1
    noop = ray.remote(_noop).options(num_cpus=1)
    ray.get([noop.remote() for _ in range(cpus)])
    t2 = time.perf_counter()
    ray.get([noop.remote() for _ in range(tasks)])
    per_task = (time.perf_counter() - t2) / tasks
    t3 = time.perf_counter()
    ray.shutdown()
    stopped = time.perf_counter() - t3
    out = {"start_s": round(started, 2), "stop_s": round(stopped, 2),
           "first_task_in_fresh_workers_s": round(first, 2), "per_task_s": round(per_task, 5),
           "tasks_timed": tasks}
    print(f"ray overheads: {out}", flush=True)
    return out


def catalog_facts(ids: list[str], zoo: Path, warm: Path) -> dict:
    """Per model: its float file's bytes and the bytes a Ray worker is sent for it (float file,
    labels, dataset: `rayexec.model_paths`), read from the warm cache (no fetching)."""
    from quantzoo.cache import Cache
    from quantzoo.fetch import fetch_source, registry_sources
    from quantzoo.registry import load_registry

    reg = load_registry(zoo)
    cache = Cache(warm)
    out = {}
    for mid in ids:
        try:
            m = reg.model(mid)
            paths = [fetch_source(src, cache, base_dir=base) for _, src, base in registry_sources(reg, [m], [])]
        except Exception as e:  # noqa: BLE001 - not in the warm cache: say so, measure the rest
            out[mid] = {"error": f"{type(e).__name__}: {e}"[:200]}
            continue
        sizes = [sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
                 for p in paths]
        out[mid] = {"float_bytes": sizes[0], "input_bytes": sum(sizes), "variants": len(m.variants)}
    return out


def history() -> list[dict]:
    """The earlier runs' headline figures, newest first, from the ray.json this run replaces."""
    import json

    from _common import RESULTS

    try:
        old = json.loads((RESULTS / "ray.json").read_text())
    except (OSError, ValueError):
        return []
    runs = {r["name"]: r for r in old.get("runs", [])}
    ship = old.get("shipping_cpu_s_per_job")
    if ship is None and "ray" in runs and "ray-shared-cache" in runs:
        ship = round((runs["ray"]["cpu_s"] - runs["ray-shared-cache"]["cpu_s"]) / max(1, runs["ray"]["jobs"]), 2)
    entry = {"date": old.get("machine", {}).get("date"), "quantzoo_commit": old.get("quantzoo_commit"),
             "subset": old.get("subset"), "variants_per_model": old.get("variants_per_model"),
             "cpu_s": {k: r["cpu_s"] for k, r in runs.items()}, "cpu_ratio": old.get("cpu_ratio"),
             "shipping_cpu_s_per_job": ship, "load": {k: [r["load_before"], r["load_after"]] for k, r in runs.items()}}
    return [entry] + old.get("history", [])


def commit() -> str | None:
    """The repository's HEAD commit, with ``+changes`` when the working tree differs (None outside git)."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO), "status", "--porcelain", "--",
                                "tooling", "bench"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def write_partial(runs: list[dict], args) -> None:
    """Some runs only: their figures (and the machine, commit and load they ran at) become ray.json's
    `partial` block and a `history` entry; the full run's figures and the simulation stay as they were."""
    import json

    from _common import RESULTS, machine

    path = RESULTS / "ray.json"
    doc = json.loads(path.read_text()) if path.is_file() else {"benchmark": "ray"}
    block = {"machine": machine(), "quantzoo_commit": commit(), "subset": args.models,
             "variants_per_model": args.variants, "jobs": args.jobs, "runs": runs}
    doc["partial"] = block
    doc["history"] = [{"date": block["machine"]["date"], "quantzoo_commit": block["quantzoo_commit"],
                       "subset": args.models, "variants_per_model": args.variants, "partial": True,
                       "cpu_s": {r["name"]: r["cpu_s"] for r in runs},
                       "load": {r["name"]: [r["load_before"], r["load_after"]] for r in runs}}] + doc.get("history", [])
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    print(f"wrote the partial runs into {path}")


def whole_catalog(args, warm: Path, executors: dict) -> int:
    """Every model of the default registry with all its variants, built by the local executor then
    by Ray; ray.json's `whole_catalog` block is (re)written after each run, the rest is kept. With
    `--runs ray` (say) the block's other run is kept and its index.json read from --keep-index."""
    import json

    import ray
    from _common import RESULTS, machine
    from ray_catalog import EARLIER_IDLE, index_differences, model_costs, ratios

    from quantzoo.registry import load_registry

    path = RESULTS / "ray.json"
    names = [n for n in ("local", "ray") if n in args.runs]
    old = (json.loads(path.read_text()) if path.is_file() else {}).get("whole_catalog") or {}
    kept = [r for r in old.get("runs", []) if r["name"] not in names]
    if args.keep_index:
        Path(args.keep_index).mkdir(parents=True, exist_ok=True)  # checked before an hour of building, not after
    with tempfile.TemporaryDirectory(prefix="qz-bench-ray-all-") as t:
        tmp = Path(t)
        zoo = snapshot_zoo([], 0, tmp / "zoo")
        ids = sorted(load_registry(zoo).models)
        facts = catalog_facts(ids, zoo, warm)
        block = {"command": "QUANTZOO_CACHE=<warm cache> python bench/bench_ray.py --whole-catalog",
                 "machine": machine(), "quantzoo_commit": commit(), "ray": ray.__version__, "jobs": args.jobs,
                 "models": len(ids), "catalog": facts, "earlier_idle_measurement": EARLIER_IDLE, "runs": kept,
                 "model_costs": {r["name"]: old["model_costs"][r["name"]] for r in kept}, "notes": "each run: a "
                 "fresh cache with the fetched sources linked in, run_pipeline timed (fetch, plan, execute, collect; "
                 "publishing left out), then the index.json `quantzoo build` would publish. Normal priority; other "
                 "work may share the CPU: load averages per run, and cpu_s (the process tree's CPU seconds) is the "
                 "figure that load does not inflate."}
        for name in names:
            run = one_run(name, executors[name](), zoo, ids, warm, tmp, args.jobs)
            run["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            block["model_costs"][name] = model_costs(run.pop("per_job"), facts)
            block["runs"] = sorted(block["runs"] + [run], key=lambda r: r["name"] != "local")
            block["ratio_ray_over_local"] = ratios(block["runs"], block["model_costs"])
            if args.keep_index:
                Path(args.keep_index, f"index-{name}.json").write_bytes((tmp / f"index-{name}.json").read_bytes())
            where = Path(args.keep_index) if args.keep_index else tmp
            indexes = [where / f"index-{n}.json" for n in ("local", "ray")]
            block["index_json"] = (index_differences(indexes[0].read_bytes(), indexes[1].read_bytes())
                                   if all(f.is_file() for f in indexes) else None)
            block["complete"] = len(block["runs"]) == 2
            doc = json.loads(path.read_text()) if path.is_file() else {"benchmark": "ray"}
            doc["whole_catalog"] = block
            out = path.with_suffix(".json.tmp")
            out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
            os.replace(out, path)
            print(f"wrote the whole-catalog block ({name}) into {path}; ratios {block['ratio_ray_over_local']}",
                  flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    from quantzoo.cache import cache_root
    from quantzoo.pipeline.execute import LocalExecutor
    from quantzoo.pipeline.rayexec import RayExecutor

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--cache", default=None, help="warm cache with the fetched sources (default: $QUANTZOO_CACHE)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--variants", type=int, default=3, help="the first N variants of each subset model")
    ap.add_argument("--catalog", nargs="+", default=CATALOG,
                    help="models whose sizes the simulation takes as the current catalog")
    ap.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS),
                    help="only these runs: their figures go into ray.json's `partial` block, the rest is kept")
    ap.add_argument("--whole-catalog", action="store_true",
                    help="every model and variant of the default registry, local then Ray: the `whole_catalog` block")
    ap.add_argument("--keep-index", default=None, help="with --whole-catalog: copy each run's index.json here")
    args = ap.parse_args(argv)
    warm = cache_root(args.cache)
    runs = []
    executors = {"local": lambda: LocalExecutor(args.jobs), "ray": lambda: RayExecutor(cpus=args.jobs),
                 "ray-shared-cache": lambda: RayExecutor(cpus=args.jobs, shared_cache=True),
                 "local-again": lambda: LocalExecutor(args.jobs)}
    if args.whole_catalog:
        return whole_catalog(args, warm, executors)
    with tempfile.TemporaryDirectory(prefix="qz-bench-ray-") as t:
        tmp = Path(t)
        zoo = snapshot_zoo(args.models, args.variants, tmp / "zoo")
        if args.runs != list(RUNS):
            for name in args.runs:
                runs.append(one_run(name, executors[name](), zoo, args.models, warm, tmp, args.jobs))
            write_partial(runs, args)
            return 0
        facts = catalog_facts(sorted(set(args.catalog) | set(args.models)),
                              snapshot_zoo([], 0, tmp / "zoo-full"), warm)
        overheads = ray_overheads(args.jobs)
        for name in RUNS:
            runs.append(one_run(name, executors[name](), zoo, args.models, warm, tmp, args.jobs))
    local = (runs[0]["wall_s"] + runs[3]["wall_s"]) / 2
    ratios = {r["name"]: round(r["wall_s"] / local, 3) for r in runs[1:3]}
    local_cpu = (runs[0]["cpu_s"] + runs[3]["cpu_s"]) / 2
    cpu_ratios = {r["name"]: round(r["cpu_s"] / local_cpu, 3) for r in runs[1:3]}
    fixed = overheads["start_s"] + overheads["stop_s"]
    ratios_after_start = {r["name"]: round((r["wall_s"] - fixed) / local, 3) for r in runs[1:3]}
    print(f"overhead ratio (Ray / mean local): {ratios}, without Ray's start and stop {ratios_after_start}, "
          f"in CPU seconds {cpu_ratios}; "
          f"target <= {TARGET_RATIO}")
    import ray

    shipping = (runs[1]["cpu_s"] - runs[2]["cpu_s"]) / max(1, runs[1]["jobs"])
    print(f"shipping files costs {shipping:.2f} CPU s per job (Ray without a shared cache over Ray with one)")
    write_result("ray", {
        "history": history(), "shipping_cpu_s_per_job": round(shipping, 2),
        "quantzoo_commit": commit(), "subset": args.models, "variants_per_model": args.variants, "jobs": args.jobs,
        "ray": ray.__version__,
        "ray_overheads": overheads, "catalog": facts,
        "runs": runs, "local_mean_s": round(local, 2), "overhead_ratio": ratios, "target_ratio": TARGET_RATIO,
        "meets_target": {k: v <= TARGET_RATIO for k, v in ratios.items()},
        "overhead_ratio_without_ray_start_stop": ratios_after_start,
        "cpu_ratio": cpu_ratios, "local_mean_cpu_s": round(local_cpu, 1),
        "notes": "each run: a fresh cache with the fetched sources linked in (nothing quantized, compared or "
                 "checked), run_pipeline timed (fetch, plan, execute, collect; publishing left out). Ray: a "
                 "local instance started and stopped inside the timed run. The CPU is shared with other work: "
                 "load averages are recorded per run.",
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
