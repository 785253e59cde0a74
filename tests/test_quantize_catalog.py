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
SYMBOLS = {"N": 1, "H": 64, "W": 160, "T": 160, "L": 4, "S": 80, "phonemes": 24}
# inputs a random tensor cannot stand for: sizes the model needs, ids it can look up, masks of 0/1
OVERRIDES = {
    "wakehubert-hey-mycroft": {"waveform": lambda rng: rng.uniform(-0.3, 0.3, (1, 24000)).astype(np.float32)},
    "wakehubert-hey-mycroft-upstream-int8": {"waveform": lambda rng: rng.uniform(-0.3, 0.3, (1, 24000)).astype(np.float32)},
    "all-minilm-l6-v2": {"input_ids": lambda rng: np.array([[101, 7592, 2088, 102]], np.int64),
                         "attention_mask": lambda rng: np.ones((1, 4), np.int64)},
    "piper-en-us-joe-medium": {"input": lambda rng: rng.integers(1, 60, (1, 24)).astype(np.int64),
                               "input_lengths": lambda rng: np.array([24], np.int64),
                               "scales": lambda rng: np.array([0.0, 1.0, 0.0], np.float32)},
    "whisper-tiny-en": {"tokens": lambda rng: np.array([[50257, 50362, 464, 262]], np.int64)},
}


def _feeds(model, path) -> dict:
    """Seeded inputs: the file's own fixed sizes where it has them (centerface's [10, 3, 32, 32]),
    else the manifest's; a streamed model's constants from its manifest (silero-vad's sr)."""
    import onnx

    fixed = {i.name: [d.dim_value if d.HasField("dim_value") else None for d in i.type.tensor_type.shape.dim]
             for i in onnx.load(str(path), load_external_data=False).graph.input}
    constants = (model.preprocessing.get("params") or {}).get("stream", {}).get("constants", {})
    rng = np.random.default_rng(0)
    feeds = {}
    own = OVERRIDES.get(model.id, {})
    for t in model.inputs:
        if t["name"] in own:
            feeds[t["name"]] = own[t["name"]](rng)
            continue
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
            if model.task == "speech-synthesis":  # the audio's length follows the predicted durations
                assert o.shape[:-1] == r.shape[:-1] and o.dtype == r.dtype, f"{model_id} {vid}"
            else:
                assert o.shape == r.shape and o.dtype == r.dtype, f"{model_id} {vid}"
            assert np.all(np.isfinite(o)), f"{model_id} {vid}: non-finite outputs"
        dst.unlink()
