"""zoo/models/all-minilm-l6-v2/bert.py and st_reader.py: sentence-transformers' all-MiniLM-L6-v2
(BERT + mean pooling + L2 normalisation) written out, its weights read from safetensors without the
safetensors package, exported to ONNX with dynamic batch and sequence length."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

FOLDER = Path(__file__).resolve().parent.parent / "zoo" / "models" / "all-minilm-l6-v2"
TINY = {"vocab": 1200, "hidden": 16, "layers": 2, "heads": 4, "inner": 32, "positions": 64}


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", FOLDER / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tiny():
    torch.manual_seed(0)
    net = _module("bert").build(**TINY)
    with torch.no_grad():  # LayerNorm starts at 1/0: random affine parameters exercise them
        for name, p in net.named_parameters():
            if "LayerNorm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return net


def _inputs(lengths: list[int], width: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.zeros((len(lengths), width), np.int64)
    mask = np.zeros((len(lengths), width), np.int64)
    for i, n in enumerate(lengths):
        ids[i, :n] = rng.integers(5, TINY["vocab"], n)
        mask[i, :n] = 1
    return ids, mask


def _numpy_reference(state: dict, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """BERT + mean pooling + normalisation in float64 numpy, each text alone without its padding."""
    w = {k: v.detach().numpy().astype(np.float64) for k, v in state.items()}
    heads, hidden = TINY["heads"], TINY["hidden"]
    size = hidden // heads

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-12) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    out = []
    for row, m in zip(ids, mask):
        t = row[: int(m.sum())]
        n = len(t)
        x = ln(w["embeddings.word_embeddings.weight"][t] + w["embeddings.position_embeddings.weight"][:n]
               + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
        for i in range(TINY["layers"]):
            p = f"encoder.layer.{i}."
            q, k, v = (lin(x, p + "attention.self." + s).reshape(n, heads, size).transpose(1, 0, 2)
                       for s in ("query", "key", "value"))
            s = q @ k.transpose(0, 2, 1) / math.sqrt(size)
            s = np.exp(s - s.max(-1, keepdims=True))
            c = ((s / s.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(n, hidden)
            a = ln(lin(c, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = lin(a, p + "intermediate.dense")
            h = 0.5 * h * (1 + np.vectorize(math.erf)(h / math.sqrt(2)))
            x = ln(lin(h, p + "output.dense") + a, p + "output.LayerNorm")
        e = x.mean(0)
        out.append(e / np.linalg.norm(e))
    return np.asarray(out)


def test_the_network_has_bertmodels_parameter_names():
    state = _module("bert").build().state_dict()
    assert len(state) == 104 and state["embeddings.word_embeddings.weight"].shape == (30522, 384)
    assert {"embeddings.position_ids", "encoder.layer.5.output.LayerNorm.bias", "pooler.dense.weight",
            "encoder.layer.0.attention.self.query.weight", "encoder.layer.3.intermediate.dense.bias"} <= set(state)
    assert sum(v.numel() for k, v in state.items() if k != "embeddings.position_ids") == 22_713_216


def test_padding_changes_nothing_and_matches_a_numpy_reference():
    net = _tiny()
    ids, mask = _inputs([9, 5, 2], 12)
    with torch.no_grad():
        y = net(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        alone = net(torch.from_numpy(ids[1:2, :5]), torch.from_numpy(mask[1:2, :5])).numpy()
    np.testing.assert_allclose(y, _numpy_reference(net.state_dict(), ids, mask), atol=2e-6)
    np.testing.assert_allclose(y[1], alone[0], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-6)


def test_onnx_export_with_dynamic_batch_and_length_matches_torch():
    import onnx
    import onnxruntime as ort

    net = _tiny()
    f = io.BytesIO()
    example = tuple(torch.from_numpy(a) for a in _inputs([4, 3], 6))
    torch.onnx.export(net, example, f, dynamo=False, opset_version=17, input_names=["input_ids", "attention_mask"],
                      output_names=["embedding"], dynamic_axes={"input_ids": {0: "N", 1: "L"},
                                                                "attention_mask": {0: "N", 1: "L"},
                                                                "embedding": {0: "N"}})
    out = onnx.load_from_string(f.getvalue()).graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in out] == ["N", TINY["hidden"]]  # the width stays static
    sess = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    ids, mask = _inputs([11, 7, 1], 13, seed=3)  # another batch size and length than the export's
    got = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    with torch.no_grad():
        want = net(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def _safetensors(tensors: dict[str, np.ndarray], dtypes: dict[str, str]) -> bytes:
    header, body = {"__metadata__": {"format": "pt"}}, b""
    for name, a in tensors.items():
        raw = a.tobytes()
        header[name] = {"dtype": dtypes[name], "shape": list(a.shape), "data_offsets": [len(body), len(body) + len(raw)]}
        body += raw
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


def test_safetensors_reader_reads_each_dtype_and_refuses_a_damaged_file(tmp_path):
    read = _module("st_reader").read
    a = np.arange(6, dtype="<f4").reshape(2, 3)
    ids = np.array([[0, 1, 2]], dtype="<i8")
    bf16 = (np.array([1.5, -3.0], np.float32).view(np.uint32) >> 16).astype("<u2")
    p = tmp_path / "w.safetensors"
    p.write_bytes(_safetensors({"a": a, "ids": ids, "b": bf16}, {"a": "F32", "ids": "I64", "b": "BF16"}))
    got = read(p)
    assert list(got) == ["a", "b", "ids"]
    np.testing.assert_array_equal(got["a"], a)
    assert got["ids"].dtype == np.int64 and got["ids"].tolist() == [[0, 1, 2]]
    assert got["b"].dtype == np.float32 and got["b"].tolist() == [1.5, -3.0]
    p.write_bytes(p.read_bytes()[:-4])
    with pytest.raises(ValueError, match="damaged"):
        read(p)


@pytest.mark.slow
def test_the_catalog_model_embeds_related_texts_closer(catalog_model, registry):
    import onnxruntime as ort

    from quantzoo.compare.sentences import _vocab_of, encode

    m = registry.model("all-minilm-l6-v2")
    vocab = _vocab_of(json.dumps(m.preprocessing["params"]["vocab"], sort_keys=True))
    texts = ["The cat sat on the mat.", "A cat was sitting on a rug.", "Interest rates rose by a quarter point."]
    ids, mask = map(np.stack, zip(*(encode(t, vocab, 16) for t in texts)))
    # bert-base-uncased's ids, which all-MiniLM-L6-v2 shares: [CLS] the cat sat on the mat . [SEP]
    assert ids[0, :10].tolist() == [101, 1996, 4937, 2938, 2006, 1996, 13523, 1012, 102, 0]
    sess = ort.InferenceSession(str(catalog_model("all-minilm-l6-v2")), providers=["CPUExecutionProvider"])
    e = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    assert e.shape == (3, 384)
    assert e[0] @ e[1] > 0.5 > e[0] @ e[2]
