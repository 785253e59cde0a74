"""Automatic mixed precision against the uniform grid, on catalog models.

For each model: every uniform variant of the default grid (and the grouped-table variants
``kmeans-{4,3,2}-g8``) is quantized and compared on the evaluation split; the smallest one that
meets the manifest threshold by the published, conservative rule (the Wilson or bootstrap
interval's conservative end) is the best uniform variant. Then the ``auto`` variant is found
the way the build finds it (`quantize.allocate.auto_quantize`: sensitivity and allocation on
the calibration split, the evaluation split as a pass/fail gate on whole artifacts) and
compared the same way. Recorded: sizes, the threshold metric with its interval and n, whether
each meets the threshold, the auto variant's saving against the best uniform one, and the
worker seconds and CPU-seconds (``time.process_time``: every thread of this process) of both (the grid: quantize + compare of every uniform variant; auto: session,
encodes, sensitivity passes, search, gate and the final artifact). Runtime-matrix and shape
checks cost the same per variant for both and are left out.

Run: ``QUANTZOO_THREADS=1 QUANTZOO_CACHE=/tmp/qzc-after .venv/bin/python bench/bench_auto.py`` (writes
bench/results/auto.json); ``BENCH_MODELS=stn-digits`` narrows a run, ``BENCH_ZOO`` names the
registry folder (default ./zoo), ``BENCH_OUT`` the results name (default auto),
``BENCH_KEEP=1`` keeps the models of an earlier results file and the grid rows measured before.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, write_result  # noqa: E402

from quantzoo.cache import Cache  # noqa: E402
from quantzoo.compare import prepare  # noqa: E402
from quantzoo.fetch import fetch_source  # noqa: E402
from quantzoo.pipeline.autovariant import AUTO_REVISION, gate_on  # noqa: E402
from quantzoo.publish.data import meets  # noqa: E402
from quantzoo.quantize import quantize_file  # noqa: E402
from quantzoo.quantize.allocate import auto_quantize  # noqa: E402
from quantzoo.quantize.requirement import independent_n  # noqa: E402
from quantzoo.quantize.variants import DEFAULT_VARIANTS, parse_variant  # noqa: E402
from quantzoo.registry import load_registry  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODELS = [m for m in os.environ.get(
    "BENCH_MODELS", "ppocr-mobile-v2-cls,magika-standard-v3,stn-digits,ppocr-v4-rec").split(",") if m]
GROUPED = ("kmeans-4-g8", "kmeans-3-g8", "kmeans-2-g8")
OUT = os.environ.get("BENCH_OUT", "auto")  # bench/results/<OUT>.json
# grid rows measured so far, kept across runs with BENCH_KEEP (the grid does not depend on auto)
GRID_FILE = Path(tempfile.gettempdir()) / "quantzoo-bench-auto-grid.json"
GRID_SEEN: dict = json.loads(GRID_FILE.read_text()) if os.environ.get("BENCH_KEEP") and GRID_FILE.is_file() else {}


def _save_grid() -> None:
    GRID_FILE.write_text(json.dumps(GRID_SEEN, indent=1, sort_keys=True))


def _summary(comparison, thr: dict) -> dict:
    s = comparison.metrics[thr["output"]][thr["metric"]]
    return {"mean": s["mean"], "ci95": s["ci95"], "n": s["n"],
            "meets": meets(thr, s["mean"], tuple(s["ci95"]) if s["ci95"] else None)}


def bench_model(reg, cache: Cache, mid: str, work: Path) -> dict:
    m = reg.model(mid)
    src = fetch_source(m.source, cache, base_dir=m.path.parent)
    thr = m.threshold
    ev = prepare(src, None, model=m, registry=reg, cache=cache)
    cal = prepare(src, None, model=m, registry=reg, cache=cache, part="calibration")
    grid = []
    known = {g["variant"]: g for g in GRID_SEEN.get(mid, [])}  # BENCH_KEEP: grid rows of an earlier run
    for vid in list(DEFAULT_VARIANTS) + list(GROUPED):
        if vid in known:
            grid.append(known[vid])
            continue
        v = parse_variant(vid)
        out = work / f"{mid}-{vid}.onnx"
        t0, c0 = time.perf_counter(), time.process_time()
        rep = quantize_file(src, out, mode=v.mode, nbits=v.nbits, granularity=v.granularity,
                            group_size=v.group_size, jobs=1)
        t1, c1 = time.perf_counter(), time.process_time()
        c = ev.compare(out)
        t2, c2 = time.perf_counter(), time.process_time()
        grid.append({"variant": vid, "bytes": rep.artifact_bytes, **_summary(c, thr), "default_grid": vid in DEFAULT_VARIANTS,
                     "quantize_s": round(t1 - t0, 3), "compare_s": round(t2 - t1, 3),
                     "quantize_cpu_s": round(c1 - c0, 3), "compare_cpu_s": round(c2 - c1, 3)})
        print(mid, grid[-1], flush=True)
        GRID_SEEN.setdefault(mid, []).append(grid[-1])
        _save_grid()
    t0, c0 = time.perf_counter(), time.process_time()
    rep, recipe, table = auto_quantize(src, work / f"{mid}-auto.onnx", cal, thr, independent_n(ev),
                                       gate=lambda p: gate_on(ev, p, thr), gate_samples=ev.n)
    auto_s, auto_cpu = time.perf_counter() - t0, time.process_time() - c0
    c = ev.compare(work / f"{mid}-auto.onnx")
    auto = {"bytes": rep.artifact_bytes, **_summary(c, thr), "worker_s": round(auto_s, 3),
            "worker_cpu_s": round(auto_cpu, 3),
            "schemes": _count(recipe.schemes), "tensors": len(recipe.schemes),
            "measured": {k: v for k, v in recipe.measured.items() if k != "attempts"},
            "attempts": len(recipe.measured.get("attempts", []))}
    uniform = [g for g in grid if g["default_grid"]]
    best = min((g for g in uniform if g["meets"]), key=lambda g: g["bytes"], default=None)
    best_any = min((g for g in grid if g["meets"]), key=lambda g: g["bytes"], default=None)
    grid_s = sum(g["quantize_s"] + g["compare_s"] for g in uniform)
    # CPU-seconds of the process (every thread): less sensitive to other jobs than wall seconds
    grid_cpu = sum(g.get("quantize_cpu_s", 0) + g.get("compare_cpu_s", 0) for g in uniform) \
        if all("quantize_cpu_s" in g for g in uniform) else None
    return {"model": mid, "auto_revision": AUTO_REVISION, "run_date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "threads": os.environ.get("QUANTZOO_THREADS") or "default",
            "threshold": thr, "float_bytes": src.stat().st_size, "n_evaluation": ev.n,
            "n_evaluation_independent": independent_n(ev), "n_calibration": cal.n, "grid": grid, "auto": auto,
            "best_uniform": best and best["variant"], "best_uniform_bytes": best and best["bytes"],
            "best_with_grouped": best_any and best_any["variant"],
            "auto_saving": round(1 - auto["bytes"] / best["bytes"], 4) if best and auto["meets"] else None,
            "grid_worker_s": round(grid_s, 3), "auto_over_grid_cost": round(auto_s / grid_s, 3) if grid_s else None,
            "grid_cpu_s": grid_cpu and round(grid_cpu, 3),
            "auto_over_grid_cpu": round(auto_cpu / grid_cpu, 3) if grid_cpu else None,
            # load-independent: model runs in samples (the grid compares every variant on the evaluation split)
            "grid_sample_inferences": len(uniform) * ev.n,
            "auto_sample_inferences": recipe.measured.get("sample_inferences")}


def _count(schemes: dict) -> dict:
    out: dict = {}
    for s in schemes.values():
        out[s] = out.get(s, 0) + 1
    return dict(sorted(out.items()))


NOTES = [
    "auto_saving: 1 - auto bytes / bytes of the smallest default-grid variant meeting the threshold by the published "
    "rule (interval's conservative end) on the evaluation split; None when auto does not meet it.",
    "worker_cpu_s / grid_cpu_s: CPU-seconds of the bench process (time.process_time, every thread) for the auto search "
    "(session, encodes, sensitivity passes, search, every gate and the final artifact) and for quantize + compare of "
    "every default-grid variant. `threads` is QUANTZOO_THREADS of the run: 1 is how build workers run every session "
    "(quantzoo.threads); 'default' lets onnxruntime start a thread per core, whose spinning is counted too (rows "
    "measured that way are not comparable with 1-thread rows). Wall seconds depend on the machine's load.",
    "auto_revision (pipeline.autovariant.AUTO_REVISION) and run_date say when and with which search each row was measured.",
]


def main() -> None:
    reg = load_registry(os.environ.get("BENCH_ZOO", str(REPO / "zoo")))
    cache = Cache()
    previous = RESULTS / f"{OUT}.json"
    done = {r["model"]: r for r in json.loads(previous.read_text())["models"]} if previous.is_file() \
        and os.environ.get("BENCH_KEEP") else {}
    with tempfile.TemporaryDirectory() as d:
        for mid in MODELS:
            done[mid] = bench_model(reg, cache, mid, Path(d))
            write_result(OUT, {"models": [done[k] for k in sorted(done)], "notes": NOTES})


if __name__ == "__main__":
    main()
