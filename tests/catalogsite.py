"""A small real catalog site for the client tests: a tiny real ONNX classifier and embedder, their
variants written as real ONNX files (fp16 + Cast, int8 and int4 DequantizeLinear), agreement
measured with onnxruntime against the float model, and an index.json in the catalog contract.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from httpserver import LocalServer
from quantzoo.cli import main

D, C = 256, 256  # inputs, classes: the fp16 file (~131 kB) spans a few download chunks, so a cut resumes


@dataclass
class Site:
    root: Path
    doc: dict
    weights: dict  # variant id -> (dequantized W, b) of the classifier


def onnx_model(weight_nodes, initializers, out_name="scores", opset=21):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", D])
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", C])
    nodes = [*weight_nodes, helper.make_node("MatMul", ["x", "W"], ["xw"]),
             helper.make_node("Add", ["xw", "b"], [out_name])]
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="test_client")
    model.ir_version = 10
    return model.SerializeToString()


def variants_of(w: np.ndarray, b: np.ndarray, out_name: str) -> dict[str, tuple[bytes, np.ndarray]]:
    """Real ONNX files of one classifier: float, fp16, per-channel int8 and int4 -> (bytes, W used)."""
    import ml_dtypes
    from onnx import TensorProto, helper, numpy_helper as nh

    bias = nh.from_array(b, "b")
    files = {"float": (onnx_model([], [nh.from_array(w, "W"), bias], out_name), w)}
    w16 = w.astype(np.float16)
    files["fp16"] = (onnx_model([helper.make_node("Cast", ["W16"], ["W"], to=TensorProto.FLOAT)],
                                 [nh.from_array(w16, "W16"), bias], out_name), w16.astype(np.float32))
    for bits, dtype in ((8, np.int8), (4, ml_dtypes.int4)):
        qmax = 2 ** (bits - 1) - 1
        scale = (np.abs(w).max(axis=0) / qmax).astype(np.float32)
        q = np.clip(np.round(w / scale), -qmax - 1, qmax)
        node = helper.make_node("DequantizeLinear", ["Wq", "Wscale"], ["W"], axis=1)
        data = onnx_model([node], [nh.from_array(q.astype(dtype), "Wq"), nh.from_array(scale, "Wscale"), bias],
                           out_name)
        files[f"linear-{bits}"] = (data, (q * scale).astype(np.float32))
    return files


def measure(float_file: bytes, variant_file: bytes, out_name: str) -> dict:
    import onnxruntime as ort

    x = np.random.default_rng(7).standard_normal((256, D)).astype(np.float32)
    ref, got = (ort.InferenceSession(f, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
                for f in (float_file, variant_file))
    same = (ref.argmax(1) == got.argmax(1)).astype(np.float64)
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    stats = {"top1_agreement": same, "cosine": cos} if out_name == "scores" else {"cosine": cos}
    return {out_name: {k: {"mean": float(v.mean()), "std": float(v.std()), "n": len(v)} for k, v in stats.items()}}


def entry(root: Path, model_id: str, name: str, data: bytes) -> dict:
    rel = f"files/{model_id}/{model_id}-{name}.onnx"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)
    return {"file": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def make_site(root: Path) -> Site:
    """Two tiny classifiers (one reporting top-1 and cosine, one cosine only) with their variants."""
    rng = np.random.default_rng(0)
    models, weights = [], {}
    for model_id, task, out_name, recommended in (("tiny-classifier", "classification", "scores", "linear-8"),
                                                  ("tiny-embedder", "embedding", "embedding", "fp16")):
        w = rng.standard_normal((D, C)).astype(np.float32)
        b = rng.standard_normal(C).astype(np.float32)
        made = variants_of(w, b, out_name)
        float_bytes = made["float"][0]
        variants = []
        for vid, (data, wq) in made.items():
            if vid == "float":
                continue
            mode, nbits = ("fp16", 16) if vid == "fp16" else ("linear", int(vid.split("-")[1]))
            variants.append({"id": vid, "mode": mode, "nbits": nbits, "granularity": "per_channel",
                             **entry(root, model_id, vid, data), "metrics": measure(float_bytes, data, out_name)})
            if model_id == "tiny-classifier":
                weights[vid] = (wq, b)
        models.append({"id": model_id, "name": f"Tiny {task} model", "task": task, "license": "Apache-2.0",
                       "parameters": D * C + C,
                       "source": {"sha256": hashlib.sha256(float_bytes).hexdigest(), "url": None},
                       "float": entry(root, model_id, "float", float_bytes),
                       "recommended": recommended, "variants": variants})
    doc = {"schema_version": 1, "models": models}
    (root / "index.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return Site(root, doc, weights)


def variant(site: Site, vid: str, model_id: str = "tiny-classifier") -> dict:
    m = next(m for m in site.doc["models"] if m["id"] == model_id)
    return next(v for v in m["variants"] if v["id"] == vid)


def top1(site: Site, vid: str) -> float:
    return variant(site, vid)["metrics"]["scores"]["top1_agreement"]["mean"]


def pull(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["pull", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def tampered_copy(site: Site, tmp_path: Path, how: str) -> tuple[Path, dict]:
    root = tmp_path / "tampered"
    shutil.copytree(site.root, root)
    target = variant(site, "linear-4")
    f = root / target["file"]
    data = bytearray(f.read_bytes())
    if how == "flipped":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[:-10]
    f.write_bytes(bytes(data))
    return root, target


# Fixtures for the client test modules (imported by name there): one site and one server per module.

@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    return make_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def served(site):
    """One server for the module (a server costs half a second to stop); hit counts are compared
    before and after, never absolute."""
    with LocalServer() as srv:
        srv.serve_dir(site.root)
        yield srv
