"""Weight compression: k-means speed and error against the anchors, and what the artifacts cost.

Part 1, k-means over a whole model (every tensor the default selector compresses, one table per
tensor) at 2/4/6/8 bits, on PP-OCRv4 rec, magika and one synthetic 25M-value tensor:

- ``ours``: `quantzoo.quantize.kmeans.kmeans_1d`;
- ``coreml_fp32``: coremltools 9 ``_get_kmeans_lookup_table_and_weight`` on the float32
  weights (scikit-learn KMeans, k-means++, n_init=1, tol=1e-2: what it runs for fp32 models);
- ``coreml_fp16``: the same function on the weights cast to float16 (for tensors of >= 10k
  values it runs the bundled kmeans1d, an exact dynamic programme over the distinct values);
- ``sklearn``: scikit-learn KMeans with its defaults (k-means++, tol=1e-4, n_init="auto");
- ``exact``: the exact 1-D optimum, kmeans1d over the distinct float32 values with their
  counts (for the 25M tensor, where that does not fit in memory, over the distinct float16
  values: the best reference available, marked ``exact_reference``).

Every error is the sum of squared differences to the float32 weights (a table from a float16
path is applied to the float32 values it was fitted on). Anchors run in a child process with
a time limit (``BENCH_ANCHOR_LIMIT`` seconds, default 240); a run that hits it is recorded as
a lower bound, and higher bit depths of that method and tensor set are not tried.

Part 2, artifacts (fp16, linear and kmeans at 2/4/6/8 bits) of the same models: file size
against the ideal (params × bits / 8 + tables, for the compressed tensors), session creation
time, peak RSS during creation and latency against the float model, each measured in a fresh
process (median of ``BENCH_REPEATS``, default 3).

Run: ``.venv/bin/python bench/bench_quantize.py`` (writes bench/results/quantize.json);
``BENCH_MODELS=magika-standard-v3 BENCH_BITS=2,8`` narrows a trial run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BITS = tuple(int(b) for b in os.environ.get("BENCH_BITS", "2,4,6,8").split(","))
SYNTH = "synthetic-25m"
ONLY = [m for m in os.environ.get("BENCH_MODELS", "").split(",") if m]  # default: all three
MODELS = [m for m in ("ppocr-v4-rec", "magika-standard-v3") if not ONLY or m in ONLY]
SYNTH_SHAPE = (5000, 5000)
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
ANCHOR_LIMIT = float(os.environ.get("BENCH_ANCHOR_LIMIT", "240"))
TARGETS = {"speedup_vs_coreml_fp32": 10.0, "speedup_vs_coreml_fp16": 3.0, "mse_vs_exact": 1.01,
           "size_vs_ideal": 1.02, "latency_vs_float": 1.1, "create_vs_float": 3.0, "rss_vs_float": 2.0}


# --- the tensors -------------------------------------------------------------------------------

def model_paths() -> dict[str, Path]:
    from quantzoo.cache import Cache
    from quantzoo.fetch import fetch_source
    from quantzoo.registry import load_registry

    reg = load_registry(REPO / "zoo")
    cache = Cache()
    out = {}
    for mid in MODELS:
        m = reg.model(mid)
        out[mid] = fetch_source(m.source, cache, base_dir=m.path.parent)
    return out


def synthetic_model(folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    path = folder / "synthetic-25m.onnx"
    if not path.exists():
        w = (np.random.default_rng(0).standard_normal(SYNTH_SHAPE) * 0.02).astype(np.float32)
        g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "synthetic",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, SYNTH_SHAPE[0]])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, SYNTH_SHAPE[1]])],
                              [numpy_helper.from_array(w, "W")])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def tensors_of(path: str) -> list[np.ndarray]:
    import onnx

    from quantzoo.quantize.weights import select

    chosen, _ = select(onnx.load(path))
    return [s.tensor.array() for s in chosen]


# --- k-means methods: (values float32, nbits) -> (lut float, codes) ----------------------------

def m_ours(w, nbits):
    from quantzoo.quantize.kmeans import kmeans_1d

    return kmeans_1d(w, 1 << nbits)


def m_coreml_fp32(w, nbits):
    from coremltools.models.neural_network.quantization_utils import _get_kmeans_lookup_table_and_weight

    return _get_kmeans_lookup_table_and_weight(nbits, w.astype(np.float32))


def m_coreml_fp16(w, nbits):
    from coremltools.models.neural_network.quantization_utils import _get_kmeans_lookup_table_and_weight

    return _get_kmeans_lookup_table_and_weight(nbits, w.astype(np.float16))


def m_sklearn(w, nbits):
    from sklearn.cluster import KMeans

    km = KMeans(1 << nbits, init="k-means++", random_state=0).fit(w.reshape(-1, 1))
    return km.cluster_centers_.ravel(), km.labels_


METHODS = {"ours": m_ours, "coreml_fp32": m_coreml_fp32, "coreml_fp16": m_coreml_fp16, "sklearn": m_sklearn}


def _sse(w, lut, codes) -> float:
    d = w.ravel().astype(np.float64) - np.asarray(lut, np.float64).ravel()[np.asarray(codes).ravel()]
    return float(d @ d)


def exact_sse(w: np.ndarray, nbits: int, reference_fp16: bool) -> float:
    from coremltools._deps.kmeans1d import core as k1d
    import ctypes

    x = w.ravel()
    vals, inverse, counts = np.unique(x.astype(np.float16) if reference_fp16 else x, return_inverse=True,
                                      return_counts=True)
    k = min(1 << nbits, len(vals))
    v = np.ascontiguousarray(vals, np.float64)
    c = np.ascontiguousarray(counts, np.float64)
    clusters = np.zeros(len(v), np.uint64)
    centroids = np.zeros(k, np.float64)
    dptr = ctypes.POINTER(ctypes.c_double)
    k1d._DLL.cluster_with_weights(v.ctypes.data_as(dptr), c.ctypes.data_as(dptr), ctypes.c_ulong(len(v)),
                                  ctypes.c_ulong(k), clusters.ctypes.data_as(ctypes.POINTER(ctypes.c_ulong)),
                                  centroids.ctypes.data_as(dptr))
    lut = centroids[clusters.astype(np.intp)]  # per distinct value
    return _sse(x, lut, inverse.ravel())


def _run_method(args):
    """Child process: time one method over every tensor of one model; report (seconds, sse)."""
    method, source, nbits, queue = args
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    import warnings

    warnings.filterwarnings("ignore")
    tensors = tensors_of(source)
    fn = METHODS[method]
    fn(tensors[-1].ravel()[:4096].copy(), nbits)  # imports and first-call costs stay out of the timing
    total, err = 0.0, 0.0
    for w in tensors:
        t = time.perf_counter()
        lut, codes = fn(w, nbits)
        total += time.perf_counter() - t
        err += _sse(w, lut, codes)
    queue.put((total, err))


def time_method(method: str, source: str, nbits: int, limit: float) -> dict:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_run_method, args=((method, source, nbits, q),))
    start = time.perf_counter()
    p.start()
    p.join(limit + 120)  # loading the tensors is not timed, so leave room for it
    if p.is_alive():
        p.terminate()
        p.join()
        return {"seconds": None, "timed_out_after_s": round(time.perf_counter() - start, 1)}
    if q.empty():
        return {"seconds": None, "error": f"exit code {p.exitcode}"}
    seconds, err = q.get()
    return {"seconds": round(seconds, 4), "sse": err}


def kmeans_part(sources: dict[str, str]) -> list[dict]:
    rows = []
    for name, source in sources.items():
        tensors = tensors_of(source)
        params = int(sum(w.size for w in tensors))
        ref16 = name == SYNTH
        stop = set()
        for nbits in BITS:
            row = {"model": name, "nbits": nbits, "tensors": len(tensors), "params": params}
            t = time.perf_counter()
            row["exact_sse"] = sum(exact_sse(w, nbits, ref16) for w in tensors)
            row["exact_reference"] = "kmeans1d over distinct float16 values" if ref16 else \
                "kmeans1d over distinct float32 values (exact)"
            row["exact_seconds"] = round(time.perf_counter() - t, 2)
            for method in METHODS:
                if method in stop:
                    row[method] = {"seconds": None, "skipped": "a lower bit depth already hit the time limit"}
                    continue
                r = time_method(method, source, nbits, ANCHOR_LIMIT)
                if r.get("seconds") is None and "timed_out_after_s" in r:
                    stop.add(method)
                if r.get("sse") is not None:
                    r["mse_vs_exact"] = round(r["sse"] / row["exact_sse"], 5) if row["exact_sse"] else None
                row[method] = r
            ours = row["ours"]["seconds"]
            for anchor in ("coreml_fp32", "coreml_fp16", "sklearn"):
                a = row[anchor]
                if a.get("seconds"):
                    row[f"speedup_vs_{anchor}"] = round(a["seconds"] / ours, 2)
                elif a.get("timed_out_after_s"):
                    row[f"speedup_vs_{anchor}"] = f">= {round(ANCHOR_LIMIT / ours, 1)} (anchor timed out)"
            print(json.dumps({k: row[k] for k in row if k.startswith(("model", "nbits", "speedup"))}
                             | {"mse_vs_exact": row["ours"].get("mse_vs_exact")}), flush=True)
            rows.append(row)
    return rows


# --- artifacts -----------------------------------------------------------------------------------

PROBE = r"""
import json, sys, time
import numpy as np, onnxruntime as ort
def hwm_kb():  # this process's peak RSS (VmHWM starts afresh at exec, unlike ru_maxrss)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
path, feeds_path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
feeds = dict(np.load(feeds_path))
before = hwm_kb()
t = time.perf_counter()
s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
create = time.perf_counter() - t
peak = hwm_kb()
s.run(None, feeds)
lat = []
for _ in range(runs):
    t = time.perf_counter(); s.run(None, feeds); lat.append(time.perf_counter() - t)
print(json.dumps({"create_s": create, "rss_before_kb": before, "rss_peak_kb": peak,
                  "latency_s": float(np.median(lat))}))
"""


def probe(path: Path, feeds_path: Path, runs: int) -> dict:
    samples = []
    for _ in range(REPEATS):
        out = subprocess.run([sys.executable, "-c", PROBE, str(path), str(feeds_path), str(runs)],
                             capture_output=True, text=True, check=True)
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    med["rss_delta_kb"] = statistics.median(s["rss_peak_kb"] - s["rss_before_kb"] for s in samples)
    return med


def feeds_for(name: str, path: Path, folder: Path) -> Path:
    """Random inputs shaped as the manifest says (N=1, H=64, W=320), else as the ONNX says."""
    import onnx

    from quantzoo.registry import load_registry

    rng = np.random.default_rng(0)
    m = onnx.load(str(path), load_external_data=False)
    declared = {}
    reg = load_registry(REPO / "zoo")
    if name in reg.models:
        symbols = {"N": 1, "H": 64, "W": 320}
        declared = {t["name"]: [d if isinstance(d, int) else symbols.get(d, 32) for d in t["shape"]]
                    for t in reg.model(name).inputs}
    init = {t.name for t in m.graph.initializer}
    feeds = {}
    for inp in m.graph.input:
        if inp.name in init:
            continue
        dims = declared.get(inp.name) or [d.dim_value if d.dim_value > 0 else 1 for d in
                                          inp.type.tensor_type.shape.dim]
        elem = inp.type.tensor_type.elem_type
        if elem == onnx.TensorProto.INT32:
            feeds[inp.name] = rng.integers(0, 257, dims).astype(np.int32)
        else:
            feeds[inp.name] = rng.uniform(-1, 1, dims).astype(np.float32)
    out = folder / f"{name}.feeds.npz"
    np.savez(out, **feeds)
    return out


def artifacts_part(sources: dict[str, str], folder: Path) -> list[dict]:
    from quantzoo.quantize import quantize_file

    rows = []
    variants = [("fp16", None)] + [(m, b) for m in ("linear", "kmeans_lut") for b in BITS]
    for name, source in sources.items():
        src = Path(source)
        feeds = feeds_for(name, src, folder)
        runs = 10 if name == SYNTH else 50
        base = probe(src, feeds, runs)
        print(f"{name} float: {json.dumps(base)}", flush=True)
        rows.append({"model": name, "variant": "float", **base, "bytes": src.stat().st_size})
        for mode, nbits in variants:
            dst = folder / f"{name}-{mode}-{nbits}.onnx"
            t = time.perf_counter()
            rep = quantize_file(src, dst, mode=mode, nbits=nbits)
            q_s = time.perf_counter() - t
            p = probe(dst, feeds, runs)
            rest = rep.source_bytes - rep.compressed_float_bytes  # the model without the compressed tensors
            row = {
                "model": name, "variant": f"{mode}-{nbits}" if nbits else mode, **p,
                "bytes": rep.artifact_bytes, "quantize_s": round(q_s, 3),
                "compressed_params": rep.compressed_elements, "ideal_bytes": rep.ideal_bytes,
                "size_vs_ideal": round((rep.artifact_bytes - rest) / rep.ideal_bytes, 5),
                "latency_vs_float": round(p["latency_s"] / base["latency_s"], 3),
                "create_vs_float": round(p["create_s"] / base["create_s"], 3),
                "rss_delta_vs_float": round(p["rss_delta_kb"] / base["rss_delta_kb"], 3),
                "rss_peak_vs_float": round(p["rss_peak_kb"] / base["rss_peak_kb"], 3),
            }
            print(json.dumps({k: row[k] for k in ("model", "variant", "size_vs_ideal", "latency_vs_float",
                                                   "create_vs_float", "rss_delta_vs_float", "rss_peak_vs_float")}),
                  flush=True)
            rows.append(row)
            dst.unlink()
    return rows


def summarise(kmeans_rows: list[dict], art_rows: list[dict]) -> dict:
    def worst(values, higher_is_worse=True):
        vals = [v for v in values if isinstance(v, (int, float))]
        return (max(vals) if higher_is_worse else min(vals)) if vals else None

    s = {}
    for anchor, key in (("coreml_fp32", "speedup_vs_coreml_fp32"), ("coreml_fp16", "speedup_vs_coreml_fp16")):
        s[key] = {"target": TARGETS[key], "worst": worst([r.get(key) for r in kmeans_rows], False),
                  "by_model_bits": {f"{r['model']}@{r['nbits']}": r.get(key) for r in kmeans_rows}}
    s["mse_vs_exact"] = {"target": TARGETS["mse_vs_exact"],
                         "worst": worst([r["ours"].get("mse_vs_exact") for r in kmeans_rows]),
                         "by_model_bits": {f"{r['model']}@{r['nbits']}": r["ours"].get("mse_vs_exact")
                                           for r in kmeans_rows}}
    arts = [r for r in art_rows if r["variant"] != "float"]
    for key, field in (("size_vs_ideal", "size_vs_ideal"), ("latency_vs_float", "latency_vs_float"),
                       ("create_vs_float", "create_vs_float"), ("rss_vs_float", "rss_delta_vs_float")):
        s[key] = {"target": TARGETS[key], "worst": worst([r[field] for r in arts]),
                  "by_model_variant": {f"{r['model']}@{r['variant']}": r[field] for r in arts}}
    s["rss_peak_vs_float"] = {"worst": worst([r["rss_peak_vs_float"] for r in arts]),
                              "note": "whole-process peak RSS (includes Python and onnxruntime, ~50 MB)"}
    for key, v in s.items():
        if "target" in v and v["worst"] is not None:
            better_high = key.startswith("speedup")
            v["met"] = v["worst"] >= v["target"] if better_high else v["worst"] <= v["target"]
    return s


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="bench-quantize-"))
    sources = {k: str(v) for k, v in model_paths().items()}
    if not ONLY or SYNTH in ONLY:
        sources[SYNTH] = str(synthetic_model(folder))
    kmeans_rows = kmeans_part(sources)
    # keep the slow half if the second one fails
    (folder / "kmeans.json").write_text(json.dumps(kmeans_rows, indent=1))
    print(f"k-means rows saved to {folder / 'kmeans.json'}", flush=True)
    art_rows = artifacts_part(sources, folder)
    payload = {
        "description": __doc__.split("\n\n")[0],
        "settings": {"bits": list(BITS), "anchor_limit_s": ANCHOR_LIMIT, "repeats": REPEATS,
                     "synthetic": {"shape": list(SYNTH_SHAPE), "distribution": "normal(0, 0.02), seed 0"},
                     "load_average_at_start": os.getloadavg()},
        "targets": TARGETS,
        "summary": summarise(kmeans_rows, art_rows),
        "kmeans": kmeans_rows,
        "artifacts": art_rows,
    }
    payload["settings"]["load_average_at_end"] = os.getloadavg()
    write_result("quantize", payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
