"""Scale: quantizing and opening large models in bounded memory, against the float model.

Two models, each built here (never in the unit tests) and saved as one inline .onnx at opset 21:

- ``mlp-134m``: 8 × Linear(4096, 4096) (MatMul [K, N] + bias), 134M weights, 537 MB float32;
- ``synthetic-25m``: the 5000 × 5000 MatMul of bench_quantize.py (same seed), 100 MB.

For each, variants linear-4 and linear-8 per channel, in the in-graph decode, the native one
(DequantizeLinear, `quantize/native.py`; the 25M case's K = 5000 is padded to a power-of-two
block so onnxruntime fuses it) and ``auto`` (the default: native for the large MatMul weights
onnxruntime fuses, the decode elsewhere). Measured, each in a fresh process (peak RSS is the
process's VmHWM):

- quantize: wall time and peak RSS, against the float file's size (target ≤ 2×);
- session creation: time and peak RSS against the float model's (targets ≤ 2× and ≤ 1.5×);
- latency (median of ``BENCH_RUNS``) at batch 1 and batch 64 against the float model
  (target ≤ 1.1× at batch 1), with the default session options and with
  ``session.disable_quant_qdq=1`` (onnxruntime then folds DequantizeLinear back to float at
  creation instead of running it, or its fused n-bit kernel, at every call);
- the batch-1 output's relative difference from the float model's (``output_rel_diff_vs_float``):
  the fused kernel quantizes activations to int8 by default (accuracy level 4), the decode does not.

Run: ``.venv/bin/python bench/bench_scale.py`` (writes bench/results/scale.json);
``BENCH_MODELS=synthetic-25m`` narrows a trial run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ONLY = [m for m in os.environ.get("BENCH_MODELS", "").split(",") if m]
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
RUNS = int(os.environ.get("BENCH_RUNS", "20"))
VARIANTS = [("linear", nbits, rep) for nbits in (4, 8) for rep in ("decode", "native", "auto")]
TARGETS = {"quantize_rss_vs_float_file": 2.0, "create_vs_float": 2.0, "create_rss_vs_float": 1.5,
           "latency_vs_float": 1.1}
OPSET = 21


def build(name: str, folder: Path) -> Path:
    """The float model (built in a child process, so its memory is not counted anywhere else)."""
    path = folder / f"{name}.onnx"
    code = r"""
import sys, numpy as np, onnx
from onnx import TensorProto, helper, numpy_helper
name, path, opset = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
if name == "mlp-134m":
    d, layers, nodes, inits, x = 4096, 8, [], [], "x"
    for i in range(layers):
        inits.append(numpy_helper.from_array((rng.standard_normal((d, d)) * 0.02).astype(np.float32), f"l{i}.w"))
        inits.append(numpy_helper.from_array((rng.standard_normal(d) * 0.01).astype(np.float32), f"l{i}.b"))
        nodes += [helper.make_node("MatMul", [x, f"l{i}.w"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"l{i}.b"], [f"h{i}"])]
        x = f"h{i}"
    k, n = d, d
else:
    k = n = 5000
    inits = [numpy_helper.from_array((rng.standard_normal((k, n)) * 0.02).astype(np.float32), "W")]
    nodes, x = [helper.make_node("MatMul", ["x", "W"], ["y"])], "y"
g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", k])],
                      [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", n])], inits)
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), path)
"""
    subprocess.run([sys.executable, "-c", code, name, str(path), str(OPSET)], check=True)
    return path


QUANTIZE = r"""
import json, sys, time
from quantzoo.quantize import quantize_file
def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
src, dst, mode, nbits, rep = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
before = hwm_kb()
t = time.perf_counter()
r = quantize_file(src, dst, mode=mode, nbits=nbits, representation=rep, jobs=1)
print(json.dumps({"quantize_s": time.perf_counter() - t, "rss_before_kb": before, "rss_peak_kb": hwm_kb(),
                  "bytes": r.artifact_bytes, "files": len(r.artifact_files) or 1,
                  "native_tensors": sum(t.representation == "native" for t in r.tensors)}))
"""

PROBE = r"""
import json, sys, time
import numpy as np, onnxruntime as ort
def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
path, runs, fold, keep = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
so = ort.SessionOptions()
if fold:
    so.add_session_config_entry("session.disable_quant_qdq", "1")
before = hwm_kb()
t = time.perf_counter()
s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
create = time.perf_counter() - t
peak = hwm_kb()
k = s.get_inputs()[0].shape[1]
out = {"create_s": create, "rss_before_kb": before, "rss_peak_kb": peak}
for batch in (1, 64):
    x = np.random.default_rng(0).uniform(-1, 1, (batch, k)).astype(np.float32)
    y = s.run(None, {"x": x})[0]
    if batch == 1:
        np.save(keep, y)
    lat = []
    for _ in range(runs):
        t = time.perf_counter(); s.run(None, {"x": x}); lat.append(time.perf_counter() - t)
    out[f"latency_b{batch}_s"] = float(np.median(lat))
print(json.dumps(out))
"""


def child(code: str, *args) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=REPO)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def probe(path: Path, fold: bool) -> dict:
    keep = path.with_suffix(".fold.npy" if fold else ".npy")
    samples = [child(PROBE, path, RUNS, int(fold), keep) for _ in range(REPEATS)]
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def rel_diff(path: Path, src: Path, fold: bool) -> float:
    """||y - y_float|| / ||y_float|| of the batch-1 outputs the probes kept."""
    import numpy as np

    y, ref = np.load(path.with_suffix(".fold.npy" if fold else ".npy")), np.load(src.with_suffix(".npy"))
    return round(float(np.linalg.norm(y - ref) / np.linalg.norm(ref)), 5)


def ratios(p: dict, base: dict) -> dict:
    return {"create_vs_float": round(p["create_s"] / base["create_s"], 3),
            "create_rss_vs_float": round(p["rss_peak_kb"] / base["rss_peak_kb"], 3),
            "latency_vs_float": round(p["latency_b1_s"] / base["latency_b1_s"], 3),
            "latency_b64_vs_float": round(p["latency_b64_s"] / base["latency_b64_s"], 3)}


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory(prefix="qz-bench-scale-") as tmp:
        folder = Path(tmp)
        for name in [m for m in ("synthetic-25m", "mlp-134m") if not ONLY or m in ONLY]:
            src = build(name, folder)
            size = src.stat().st_size
            base = probe(src, False)
            base_fold = probe(src, True)
            print(f"{name} float ({size / 1e6:.0f} MB): {json.dumps(base)}", flush=True)
            rows.append({"model": name, "variant": "float", "bytes": size, **base,
                         "with_disable_quant_qdq": base_fold})
            for mode, nbits, rep in VARIANTS:
                dst = folder / f"{name}-{mode}-{nbits}-{rep}.onnx"
                q = child(QUANTIZE, src, dst, mode, nbits, rep)
                p, pf = probe(dst, False), probe(dst, True)
                row = {"model": name, "variant": f"{mode}-{nbits}", "representation": rep, **q, **p,
                       "quantize_rss_vs_float_file": round(q["rss_peak_kb"] * 1024 / size, 3),
                       "bytes_vs_float": round(q["bytes"] / size, 4), **ratios(p, base),
                       "output_rel_diff_vs_float": rel_diff(dst, src, False),
                       "with_disable_quant_qdq": {**pf, **ratios(pf, base),
                                                  "output_rel_diff_vs_float": rel_diff(dst, src, True)}}
                print(json.dumps({k: row[k] for k in ("model", "variant", "representation", "native_tensors",
                                                       "quantize_rss_vs_float_file", "create_vs_float",
                                                       "create_rss_vs_float", "latency_vs_float",
                                                       "latency_b64_vs_float", "output_rel_diff_vs_float")}
                                 | {"fold_latency_vs_float": row["with_disable_quant_qdq"]["latency_vs_float"]}),
                      flush=True)
                rows.append(row)
                dst.unlink()
            src.unlink()
    write_result("scale", {"targets": TARGETS, "repeats": REPEATS, "runs": RUNS, "opset": OPSET, "rows": rows,
                           "notes": "ratios against the float model in the same run; latency_vs_float is batch 1; "
                                    "with_disable_quant_qdq: the same artifact with session.disable_quant_qdq=1, "
                                    "ratios still against the float model with default options; measured on 2 cores "
                                    "shared with other sessions, so timings carry their noise"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
