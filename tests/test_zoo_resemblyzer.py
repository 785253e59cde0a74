"""zoo/models/resemblyzer/voice_encoder.py: Resemblyzer's voice encoder written out, so that the
model_state of resemblyzer/pretrained.pt loads into it key for key, and its export through the
pytorch source kind (a checkpoint entry, a dynamic number of frames, the ONNX LSTM op)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from quantzoo.cache import Cache, sha256_file, tree_sha256  # noqa: E402
from quantzoo.errors import QuantzooError  # noqa: E402
from quantzoo.fetch import fetch_source  # noqa: E402

ARCH = Path(__file__).resolve().parent.parent / "zoo" / "models" / "resemblyzer" / "voice_encoder.py"
# sha256 of the sorted "key:[shape]" lines of model_state in Resemblyzer 0.1.4's pretrained.pt:
# 16 tensors, 1,423,618 values (the LSTM, the linear layer, similarity_weight and _bias)
WEIGHT_KEYS_SHA256 = "94113377a7c3865da0acaa5bde7ef11a7d51e1c6af1f356328434e14ec024a50"


def _module():
    spec = importlib.util.spec_from_file_location("voice_encoder_under_test", ARCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_network_has_exactly_the_checkpoints_keys_and_shapes():
    state = _module().build().state_dict()
    lines = "\n".join(f"{k}:{list(v.shape)}" for k, v in sorted(state.items()))
    assert hashlib.sha256(lines.encode()).hexdigest() == WEIGHT_KEYS_SHA256
    assert sum(v.numel() for v in state.values()) == 1_423_618


def _file_source(path: Path) -> dict:
    return {"kind": "file", "path": str(path), "sha256": sha256_file(path), "size": path.stat().st_size}


@pytest.fixture
def tiny(tmp_path):
    """A random 2-layer LSTM encoder (5 mel channels, hidden 8, embedding 6) saved as a training
    checkpoint, as a pytorch source exported with a dynamic number of frames: (source, cache, net)."""
    torch.manual_seed(7)
    net = _module().build(mel_n_channels=5, hidden=8, embedding=6, layers=2)
    weights = tmp_path / "tiny.pt"
    torch.save({"step": 3, "model_state": net.state_dict(), "optimizer_state": {"lr": 0.1}}, weights)
    source = {
        "kind": "pytorch",
        "weights": _file_source(weights),
        "state_dict_key": "model_state",
        "architecture": {"source": {"kind": "bundle", "parts": [{"name": "voice_encoder.py", "source": _file_source(ARCH)}],
                                    "sha256": tree_sha256([("voice_encoder.py", sha256_file(ARCH), ARCH.stat().st_size)])},
                         "builder": "voice_encoder:build",
                         "kwargs": {"mel_n_channels": 5, "hidden": 8, "embedding": 6, "layers": 2}},
        "input_shape": [1, 12, 5],
        "opset": 17,
        "input_names": ["mels"],
        "output_names": ["embedding"],
        "dynamic_axes": {"mels": {1: "T"}},
    }
    return source, Cache(tmp_path / "cache"), net


def test_a_tiny_encoder_exports_as_lstm_ops_that_reproduce_pytorch_at_any_length(tiny):
    import onnx
    import onnxruntime as ort

    source, cache, net = tiny
    path = fetch_source(source, cache)
    model = onnx.load(str(path))
    assert [n.op_type for n in model.graph.node].count("LSTM") == 2
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", "T", 5]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for n, t in ((1, 12), (3, 7), (2, 31)):
        x = rng.random((n, t, 5), dtype=np.float32)
        got = sess.run(None, {"mels": x})[0]
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        assert got.shape == (n, 6)
        assert np.abs(got - want).max() < 1e-5
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_quantize_selects_the_lstm_input_and_recurrent_weights(tiny):
    import onnx

    from quantzoo.quantize.weights import select

    source, cache, _ = tiny
    model = onnx.load(str(fetch_source(source, cache)))
    chosen, _ = select(model, min_elements=1)
    by_name = {s.tensor.name: s for s in chosen}
    lstms = [n for n in model.graph.node if n.op_type == "LSTM"]
    for node in lstms:  # W [1, 4H, in] and R [1, 4H, H], per output row (axis 1); the bias B stays
        assert by_name[node.input[1]].op == "LSTM" and by_name[node.input[1]].channel_axis == 1
        assert by_name[node.input[2]].op == "LSTM" and by_name[node.input[2]].channel_axis == 1
        assert node.input[3] not in by_name
    assert [s.op for s in chosen].count("Gemm") == 1


def test_a_checkpoint_entry_that_is_not_there_is_named(tiny):
    source, cache, _ = tiny
    with pytest.raises(QuantzooError, match="no entry 'state'.*found: step, model_state, optimizer_state"):
        fetch_source({**source, "state_dict_key": "state"}, cache)


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None,
                    reason="espeak-ng is not installed (make test installs Debian's espeak-ng)")
def test_the_manifests_threshold_is_the_float_models_equal_error_threshold_on_the_calibration_voices(
        catalog_model, registry):
    from quantzoo.compare.core import prepare
    from quantzoo.compare.speakermetrics import float_threshold

    model = registry.model("resemblyzer")
    ev = prepare(catalog_model("resemblyzer"), model=model, registry=registry, cache=False, part="calibration")
    assert ev.n == 25 and len(set(ev.prepared.labels)) == 5
    threshold, eer = float_threshold(ev)
    assert threshold == model.preprocessing["params"]["metrics"]["same_speaker_threshold"]
    assert 0.0 < eer < 0.3  # espeak-ng's voices are close for Resemblyzer, but far from chance
