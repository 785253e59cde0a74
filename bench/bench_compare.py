"""Comparison wall time vs bare onnxruntime inference on the same samples.

For each catalog model on its own evaluation dataset (float outputs already cached, as they are
for every variant after the first):

- ``bare_s``: create an onnxruntime session for the compressed model and run it over the same
  preprocessed batches, nothing else;
- ``compare_s``: one whole `compare_models` call (registry, data, preprocessing, the cached float
  outputs, the compressed model's session and inference, metrics);
- ``prepared_s``: `Evaluation.compare` on an evaluation prepared once (what the pipeline does
  for each of a model's variants);
- ``first_prepare_s``: the cold `prepare` (read and preprocess every sample, run the float model,
  write the cache entry), paid once per model and dataset.

Overheads are ``x_s / bare_s - 1``; each time is the median of REPEATS interleaved runs. The
compressed model is the float model with every float weight rounded to 4-bit per-tensor linear
codes (same graph, so inference costs what a constant-folded quantized artifact costs).

Run: ``.venv/bin/python bench/bench_compare.py`` (writes bench/results/compare.json).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODELS = ["magika-standard-v3", "ppocr-v4-det", "ppocr-v4-rec", "ppocr-mobile-v2-cls", "efficientnet-lite0"]
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def rounded_copy(src: Path, dst: Path, bits: int = 4) -> Path:
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(src))

    def q(t):
        a = numpy_helper.to_array(t)
        if a.dtype != np.float32 or a.size < 16 or a.max() == a.min():
            return
        lo, step = float(a.min()), float(a.max() - a.min()) / (2 ** bits - 1)
        t.CopyFrom(numpy_helper.from_array((np.round((a - lo) / step) * step + lo).astype(np.float32), t.name))

    for t in m.graph.initializer:
        q(t)
    for n in m.graph.node:
        for a in n.attribute:
            if n.op_type == "Constant" and a.name == "value":
                q(a.t)
    onnx.save(m, str(dst))
    return dst


def fresh_cache(root: Path, user):
    """A cache whose fetched sources (and converted models) are the user cache's, linked, but
    whose float outputs start empty, so the first `prepare` of each model is a cold one."""
    from quantzoo.cache import Cache

    cache = Cache(root)
    (cache.root / "derived").mkdir(parents=True, exist_ok=True)
    for sub in ("blobs", "trees", "downloads", "derived/convert"):
        (user.root / sub).mkdir(parents=True, exist_ok=True)
        (cache.root / sub).symlink_to(user.root / sub)
    return cache


def bare(variant: Path, batches: list[dict]) -> float:
    import onnxruntime as ort

    t = time.perf_counter()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(variant), so, providers=["CPUExecutionProvider"])
    for b in batches:
        sess.run(None, b)
    return time.perf_counter() - t


def main() -> int:
    from quantzoo.cache import Cache
    from quantzoo.compare import compare_models, prepare
    from quantzoo.fetch import fetch_source
    from quantzoo.registry import load_registry

    reg = load_registry(REPO / "zoo")
    work = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    cache = fresh_cache(work / "cache", Cache())
    rows = {}
    for mid in MODELS:
        m = reg.model(mid)
        orig = fetch_source(m.source, cache, base_dir=m.path.parent)
        variant = rounded_copy(orig, work / f"{mid}-4bit.onnx")

        t = time.perf_counter()
        ev = prepare(orig, model=m, registry=reg, cache=cache)
        first_prepare = time.perf_counter() - t
        n = ev.n
        b_times, c_times, p_times = [], [], []
        comp = None
        for _ in range(REPEATS):
            b_times.append(bare(variant, ev.batches))
            t = time.perf_counter()
            comp = compare_models(orig, variant, model=m, registry=reg, cache=cache)
            c_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            ev.compare(variant)
            p_times.append(time.perf_counter() - t)
        b, c, p = (statistics.median(x) for x in (b_times, c_times, p_times))
        rows[mid] = {
            "dataset": m.dataset, "samples": n, "batch_size": ev.batch_size,
            "first_prepare_s": round(first_prepare, 3),
            "bare_s": round(b, 3), "compare_s": round(c, 3), "prepared_s": round(p, 3),
            "compare_overhead": round(c / b - 1, 4), "prepared_overhead": round(p / b - 1, 4),
            "bare_runs_s": [round(x, 3) for x in b_times], "compare_runs_s": [round(x, 3) for x in c_times],
            "prepared_runs_s": [round(x, 3) for x in p_times],
            "compare_timings": comp.timings,
            "metrics": comp.metrics,
        }
        print(f"{mid:22s} n={n:4d}  bare {b:6.2f}s  compare {c:6.2f}s ({c / b - 1:+.1%})  "
              f"prepared {p:6.2f}s ({p / b - 1:+.1%})  first prepare {first_prepare:.2f}s", flush=True)
    total_b = sum(r["bare_s"] for r in rows.values())
    total_c = sum(r["compare_s"] for r in rows.values())
    total_p = sum(r["prepared_s"] for r in rows.values())
    catalog_s = sum(r["first_prepare_s"] + 12 * r["prepared_s"] for r in rows.values())  # 12 default variants
    summary = {"bare_s": round(total_b, 3), "compare_s": round(total_c, 3), "prepared_s": round(total_p, 3),
               "compare_overhead": round(total_c / total_b - 1, 4),
               "prepared_overhead": round(total_p / total_b - 1, 4),
               "catalog_12_variants_estimate_s": round(catalog_s, 1)}
    print(f"all models: compare overhead {summary['compare_overhead']:+.1%}, prepared "
          f"{summary['prepared_overhead']:+.1%}; {len(rows)} models x 12 variants ~ {catalog_s:.0f} s")
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    import shutil

    shutil.rmtree(work, ignore_errors=True)  # links are removed, not followed
    write_result("compare", {"repeats": REPEATS, "load_average_at_end": load, "models": rows, "summary": summary,
                             "variant": "float weights rounded to 4-bit per-tensor linear codes"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
