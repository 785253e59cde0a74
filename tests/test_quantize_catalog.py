"""Every catalog model quantizes at every variant of the default grid and runs in onnxruntime.

The real models keep their weights in initializers (magika, EfficientNet-Lite0) and in Constant
nodes (the PaddleOCR models); stn-digits has a custom op, run with the manifest's implementation.
Outputs must be finite and shaped like the float model's; how close they are is the compare
stage's business.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ZOO_MODELS = sorted(p.parent.name for p in (Path(__file__).resolve().parent.parent / "zoo" / "models").glob("*/model.yaml"))
SYMBOLS = {"N": 1, "H": 64, "W": 160, "T": None}


def _feeds(model, path) -> dict:
    """Seeded inputs: the file's own fixed sizes where it has them (centerface's [10, 3, 32, 32]),
    else the manifest's; a streamed model's constants from its manifest (silero-vad's sr)."""
    import onnx

    fixed = {i.name: [d.dim_value if d.HasField("dim_value") else None for d in i.type.tensor_type.shape.dim]
             for i in onnx.load(str(path), load_external_data=False).graph.input}
    constants = (model.preprocessing.get("params") or {}).get("stream", {}).get("constants", {})
    rng = np.random.default_rng(0)
    feeds = {}
    for t in model.inputs:
        file_dims = fixed.get(t["name"]) or [None] * len(t["shape"])
        shape = [f if f and f > 0 else (d if isinstance(d, int) else SYMBOLS.get(d, 32)) for f, d in zip(file_dims, t["shape"])]
        if t["name"] in constants:
            feeds[t["name"]] = np.full(shape, constants[t["name"]], dtype=t["dtype"])
        elif t["dtype"].startswith("int"):
            feeds[t["name"]] = rng.integers(0, 257, shape).astype(t["dtype"])
        else:
            feeds[t["name"]] = rng.uniform(-1, 1, shape).astype(t["dtype"])
    return feeds


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ZOO_MODELS)
def test_every_default_variant_of_a_catalog_model_runs_in_onnxruntime(model_id, registry, catalog_model,
                                                                       catalog_cache, tmp_path):
    import onnxruntime as ort

    from quantzoo.customops import load_classes, run, session_options
    from quantzoo.fetch import fetch_source
    from quantzoo.quantize import quantize_file
    from quantzoo.quantize.variants import DEFAULT_VARIANTS, parse_variant

    model = registry.model(model_id)
    src = catalog_model(model_id)
    feeds = _feeds(model, src)
    # the manifest's custom ops, their implementation fetched like the build fetches it
    ops = load_classes(model.custom_ops, lambda s: fetch_source(s, catalog_cache, base_dir=model.path.parent))

    def outputs(path):
        sess = ort.InferenceSession(str(path), session_options(ops, path), providers=["CPUExecutionProvider"])
        return run(sess, None, feeds)

    ref = outputs(src)
    for vid in DEFAULT_VARIANTS:
        v = parse_variant(vid)
        dst = tmp_path / f"{vid}.onnx"
        report = quantize_file(src, dst, mode=v.mode, nbits=v.nbits, granularity=v.granularity)
        assert report.tensors, f"{model_id} {vid}: nothing compressed"
        assert report.artifact_bytes < report.source_bytes
        out = outputs(dst)
        for o, r in zip(out, ref):
            assert o.shape == r.shape and o.dtype == r.dtype, f"{model_id} {vid}"
            assert np.all(np.isfinite(o)), f"{model_id} {vid}: non-finite outputs"
        dst.unlink()
