"""A synthetic catalog: many small real ONNX models with made-up comparison numbers.

For the publish benchmark (1,000 models × 12 variants) and for publish tests that need a
catalog without running quantize and compare. The manifests are real YAML loaded by the real
registry, the files are real ONNX models (one MatMul, weights from a seeded generator), and only
the metrics are invented — deterministically, from the seed — so page generation, MkDocs, the
viewer and index.json run exactly as for the real zoo. Never used by `quantzoo build`.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path

from ..registry import DEFAULT_VARIANTS, Registry, load_registry
from ..compare.intervals import wilson
from ..compare.metrics import metric
from ..compare.tasks import TASKS
from .data import BuiltModel, BuiltVariant

# what a synthetic model of each task reports: its output's name, each metric's best value (the
# invented numbers fall away from it with fewer bits) and its threshold bound. The threshold's
# metric is the task's own (`Task.threshold_metric`) except where a third item names another:
# text recognition thresholds on cer, so the catalog has a lower-is-better threshold too.
_FAKE: dict[str, tuple] = {
    "classification": ("logits", {"top1_agreement": 1.0, "top5_agreement": 1.0, "accuracy_quantized": 0.9,
                                  "accuracy_float": 0.9}, 0.99),
    "text-detection": ("maps", {"snr_db": 40.0, "psnr_db": 50.0, "cosine": 1.0, "max_abs_error": 0.0, "iou": 1.0},
                       0.95),
    "text-recognition": ("probs", {"string_agreement": 1.0, "cer": 0.0}, 0.01, "cer"),
    "dense": ("out", {"snr_db": 40.0, "psnr_db": 50.0, "cosine": 1.0, "max_abs_error": 0.0}, 25.0),
    "embedding": ("embedding", {"cosine": 1.0, "snr_db": 40.0}, 0.99),
}


def _fake(task: str) -> tuple[str, dict[str, float], dict]:
    """(output name, metric -> best value, threshold) of a synthetic model of `task`; a task
    without an entry in `_FAKE` reports only its threshold metric, perfect at 16 bits."""
    entry = _FAKE.get(task)
    if entry is None:
        m = metric(TASKS[task].threshold_metric)
        entry = ("out", {m.name: 1.0 if m.higher_is_better else 0.0}, 0.9 if m.higher_is_better else 0.1)
    out, base, bound = entry[:3]
    name = entry[3] if len(entry) > 3 else TASKS[task].threshold_metric
    return out, base, {"metric": name, "min" if metric(name).higher_is_better else "max": bound}


def tiny_onnx(path: Path, rows: int, cols: int, seed: int, *, output: str = "y") -> bytes:
    """A real one-MatMul ONNX model (input x [1, rows] float32 → output [1, cols]) written to `path`."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(seed).standard_normal((rows, cols)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], [output], name="matmul")], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, cols])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="quantzoo-synthetic")
    model.ir_version = 8
    data = model.SerializeToString()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    onnx.checker.check_model(model)
    return data


def write_synthetic_zoo(root: Path, n_models: int, *, variants=DEFAULT_VARIANTS, seed: int = 0,
                        description: str | None = None, rows: int = 64, cols: int = 32) -> Registry:
    """Write `n_models` manifests (plus their tiny float models) under `root` and load them."""
    root = Path(root)
    (root / "datasets").mkdir(parents=True, exist_ok=True)
    (root / "models").mkdir(parents=True, exist_ok=True)
    files = root / "files"
    ds = {"id": "synthetic-samples", "name": "Synthetic samples", "description": "Made-up samples for benchmarks.",
          "license": {"spdx": "CC0-1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"},
          "source": {"kind": "file", "path": "files/none", "sha256": "0" * 64}, "adapter": "arrays"}
    (root / "datasets" / "synthetic-samples.yaml").write_text(json.dumps(ds, indent=1), encoding="utf-8")
    tasks = list(TASKS)
    for i in range(n_models):
        task = tasks[i % len(tasks)]
        out, _, thr = _fake(task)
        mid = f"synthetic-{i:04d}"
        data = tiny_onnx(files / f"{mid}.onnx", rows, cols, seed * 100_003 + i, output=out)
        doc = {
            "id": mid, "name": f"Synthetic model {i}", "task": task,
            "description": description if description is not None else f"Synthetic {task} model number {i}.",
            "license": {"spdx": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
            "authors": ["quantzoo benchmark"],
            "source": {"kind": "file", "path": f"../../files/{mid}.onnx",
                       "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
            "inputs": [{"name": "x", "dtype": "float32", "shape": [1, rows], "meaning": "features"}],
            "outputs": [{"name": out, "dtype": "float32", "shape": [1, cols], "meaning": "scores"}],
            "preprocessing": {"adapter": "arrays", "params": {}},
            "dataset": "synthetic-samples",
            "variants": list(variants),
            "threshold": {"output": out, **thr},
        }
        (root / "models" / mid).mkdir(exist_ok=True)
        (root / "models" / mid / "model.yaml").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return load_registry(root)


def _fake_metrics(task: str, nbits: int | None, rng: random.Random) -> dict:
    out, base, _ = _fake(task)
    bits = 16 if nbits is None else nbits
    loss = min(1.0, 2.0 ** (-(bits - 1)) * rng.uniform(0.2, 1.2))  # halves with every bit
    metrics = {}
    for name, best in base.items():
        if metric(name).unit == "db":
            v = best * bits / 8 * rng.uniform(0.8, 1.0)
        elif not metric(name).higher_is_better:
            v = loss * rng.uniform(0.5, 1.0)
        elif name == "accuracy_float":  # the float model's: the same for every variant
            v = best
        else:
            v = max(0.0, best - loss * rng.uniform(0.5, 1.0))
        metrics[name] = _summary(name, round(v, 6), round(abs(v) * 0.05, 6), 100)
    return {out: metrics}


def _summary(name: str, mean: float, std: float, n: int) -> dict:
    """A comparison's summary with a 95 % interval: Wilson for proportions, mean ± 1.96 std/√n otherwise.

    >>> _summary("top1_agreement", 0.97, 0.17, 100)
    {'mean': 0.97, 'std': 0.17, 'n': 100, 'ci95': [0.915481, 0.989745]}
    """
    if metric(name).proportion:
        lo, hi = wilson(mean * n, n)
    else:
        half = 1.96 * std / math.sqrt(n)
        lo, hi = mean - half, mean + half
    return {"mean": mean, "std": std, "n": n, "ci95": [round(min(lo, mean), 6), round(max(hi, mean), 6)]}


def synthetic_results(registry: Registry, work: Path, *, seed: int = 0, previews: bool = True) -> list[BuiltModel]:
    """One BuiltModel per manifest: real tiny artifacts (a re-seeded MatMul each) and invented metrics."""
    from PIL import Image

    work = Path(work)
    built = []
    for mid, m in sorted(registry.models.items()):
        rng = random.Random(f"{seed}:{mid}")
        src = (m.path.parent / m.source["path"]).resolve()
        data = src.read_bytes()
        rows, cols = m.inputs[0]["shape"][1], m.outputs[0]["shape"][1]
        variants = []
        map_output = TASKS[m.task].preview == "map"
        for j, var in enumerate(m.variants):
            path = work / mid / f"{var.id}.onnx"
            # a stand-in artifact whose size scales like a real one (bits / 32 of the float weights)
            bits = 16 if var.nbits is None else var.nbits
            art = tiny_onnx(path, rows, max(1, cols * bits // 32), seed * 7919 + j, output=m.outputs[0]["name"])
            comparison = {"schema_version": 1, "model": mid, "dataset": m.dataset,
                          "outputs": _fake_metrics(m.task, var.nbits, rng)}
            preview = None
            if previews and map_output:
                preview = work / mid / f"{var.id}.png"
                Image.new("L", (24, 16), color=(j * 20) % 256).save(preview)
            variants.append(BuiltVariant(var, path, hashlib.sha256(art).hexdigest(), len(art), comparison, preview))
        pin = pfl = None
        if previews and map_output:
            pin, pfl = work / mid / "input.png", work / mid / "float.png"
            Image.new("RGB", (24, 16), color=(200, 180, 90)).save(pin)
            Image.new("L", (24, 16), color=255).save(pfl)
        built.append(BuiltModel(
            model=m, float_path=src, float_sha256=hashlib.sha256(data).hexdigest(), float_size=len(data),
            info={"parameters": rows * cols, "ops": {"MatMul": 1}, "opset": 13},
            variants=variants, preview_input=pin, preview_float=pfl, dataset=registry.datasets.get(m.dataset)))
    return built
