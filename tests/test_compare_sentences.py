"""compare/sentences.py: BERT's WordPiece tokenizer, the Lee documents and the Spearman correlation of
cosine similarities with human ratings, on hand-made inputs with known answers."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from quantzoo.compare import sentences as S
from quantzoo.compare.preprocess import PREPROCESSORS, InputSpec
from quantzoo.compare.summary import summarize
from quantzoo.errors import QuantzooError

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "un", "##aff", "##able", "##s", ",", ".", "!",
         "cafe", "a"]
IDS = {t: i for i, t in enumerate(VOCAB)}


def test_basic_tokenization_lowers_strips_accents_and_splits_punctuation():
    assert S.basic_tokenize("The CAFÉ,\tcats\u00a0sat!") == ["the", "cafe", ",", "cats", "sat", "!"]
    assert S.basic_tokenize("a\x00b\u200bc") == ["abc"]  # control and format characters are dropped
    assert S.basic_tokenize("数学ok") == ["数", "学", "ok"]  # CJK characters stand alone
    assert S.basic_tokenize("Café", lower=False) == ["Café"]


def test_wordpiece_takes_the_longest_match_first_and_unk_for_a_word_it_cannot_cover():
    assert S.wordpiece("unaffable", IDS) == ["un", "##aff", "##able"]
    assert S.wordpiece("cats", IDS) == ["cat", "##s"]
    assert S.wordpiece("dogs", IDS) == ["[UNK]"]
    assert S.wordpiece("a" * 101, IDS) == ["[UNK]"]


def test_encode_gives_known_ids_padding_and_truncation():
    ids, mask = S.encode("The cats sat, unaffable!", IDS, 12)
    assert ids.tolist() == [2, 4, 5, 10, 6, 11, 7, 8, 9, 13, 3, 0]
    assert mask.tolist() == [1] * 11 + [0]
    assert ids.dtype == np.int64 and mask.dtype == np.int64
    ids, mask = S.encode("The cats sat, unaffable!", IDS, 5)  # [CLS] + 3 tokens + [SEP]
    assert ids.tolist() == [2, 4, 5, 10, 3] and mask.tolist() == [1] * 5
    with pytest.raises(QuantzooError, match="at least 2"):
        S.encode("the", IDS, 1)


def test_read_vocab_numbers_tokens_by_line_and_needs_the_special_tokens(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    assert S.read_vocab(p) == IDS
    p.write_text("the\ncat\n", encoding="utf-8")
    with pytest.raises(QuantzooError, match=r"\[UNK\], \[CLS\], \[SEP\], \[PAD\]"):
        S.read_vocab(p)


def _file_source(path) -> dict:
    raw = path.read_bytes()
    return {"kind": "file", "path": str(path), "sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}


def test_wordpiece_preprocessor_feeds_the_models_inputs_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTZOO_CACHE", str(tmp_path / "cache"))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    params = {"vocab": _file_source(vocab), "max_length": 6}
    specs = [InputSpec("attention_mask", "tensor(int64)", (None, None)),
             InputSpec("input_ids", "tensor(int64)", (None, None)),
             InputSpec("token_type_ids", "tensor(int64)", (None, None))]
    feed = PREPROCESSORS["wordpiece"].preprocess("The cat sat.", params, specs)
    assert list(feed) == ["attention_mask", "input_ids", "token_type_ids"]
    assert feed["input_ids"].tolist() == [2, 4, 5, 6, 12, 3]
    assert feed["attention_mask"].tolist() == [1] * 6 and feed["token_type_ids"].tolist() == [0] * 6
    with pytest.raises(QuantzooError, match="also has pixels"):
        PREPROCESSORS["wordpiece"].preprocess("x", params, [InputSpec("pixels", "tensor(float)", (None, 3))])
    with pytest.raises(QuantzooError, match="params.vocab"):
        PREPROCESSORS["wordpiece"].preprocess("x", {}, specs)


def test_lee_documents_reads_latin1_text_and_labels_each_document_with_its_ratings(tmp_path):
    (tmp_path / "lee.cor").write_bytes("A \xa3400 plan.\nSecond one.\n\nThird.".encode("latin-1"))
    (tmp_path / "similarities0-1.txt").write_text("1\t0.5\t0.25\n0\t1\t0.75\n0\t0\t1\n")
    samples = S.lee_documents(tmp_path, {}, [])
    assert [s.key for s in samples] == ["lee-00", "lee-01", "lee-02"]
    assert samples[0].data == "A £400 plan." and samples[2].data == "Third."
    assert json.loads(samples[1].label) == {"doc": 1, "ratings": [0.5, None, 0.75]}
    (tmp_path / "similarities0-1.txt").write_text("1\t0.5\n0\t1\n")
    with pytest.raises(QuantzooError, match="3×3"):
        S.lee_documents(tmp_path, {}, [])


def test_spearman_uses_average_ranks_for_ties():
    # y's ranks are 1, 2, 3.5, 5, 3.5: rho = 8 / sqrt(10 · 9.5) (what scipy.stats.spearmanr gives)
    rho = S.spearman(np.array([1.0, 2, 3, 4, 5]), np.array([5.0, 6, 7, 8, 7]))
    assert rho == pytest.approx(8 / math.sqrt(95), abs=1e-12)
    assert S.spearman(np.array([1.0, 2.0]), np.array([3.0, 3.0])) is None


def _angles(degrees) -> np.ndarray:
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1)


# four documents; the pairs' ratings, and embeddings at 0°, 20°, 50°, 90°
RATINGS = [[None, 0.9, 0.2, 0.4], [0.9, None, 0.6, 0.1], [0.2, 0.6, None, 0.5], [0.4, 0.1, 0.5, None]]
EMB = _angles([0, 20, 50, 90])


def test_pooled_spearman_correlates_every_pair_of_documents_with_its_rating():
    rows = np.asarray(S.spearman_rows([0, 1, 2, 3], RATINGS, EMB))
    # cosines of pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3): cos of 20, 50, 90, 30, 70, 40 degrees
    cos = np.cos(np.radians([20, 50, 90, 30, 70, 40]))
    human = np.array([0.9, 0.2, 0.4, 0.6, 0.1, 0.5])
    assert S.pool_spearman(rows) == pytest.approx(S.spearman(cos, human), abs=1e-12)
    # a resample that draws document 0 twice: the pair of a document with itself has no rating
    # (the bootstrap's draw): it is left out, the pairs with the other documents count twice
    dup = S.pool_spearman(rows[[0, 0, 1, 2]])
    assert dup == pytest.approx(S.spearman(np.cos(np.radians([20, 50, 20, 50, 30])),
                                           np.array([0.9, 0.2, 0.9, 0.2, 0.6])), abs=1e-12)
    assert math.isnan(S.pool_spearman(rows[[0, 0, 1]]))  # one distinct pair: no correlation
    # leading axes are resamples
    assert S.pool_spearman(np.stack([rows, rows[::-1]])).tolist() == pytest.approx([S.pool_spearman(rows)] * 2)


def test_spearman_delta_is_zero_for_the_same_embeddings_and_negative_when_they_get_worse():
    same = np.asarray(S.spearman_rows([0, 1, 2, 3], RATINGS, EMB, EMB))
    assert S.pool_spearman(same, 2) == pytest.approx(0.0, abs=1e-12)
    shuffled = EMB[[3, 2, 1, 0]]  # the embeddings of other documents: the order of the pairs is lost
    worse = np.asarray(S.spearman_rows([0, 1, 2, 3], RATINGS, EMB, shuffled))
    want = S.pool_spearman(np.asarray(S.spearman_rows([0, 1, 2, 3], RATINGS, shuffled))) - \
        S.pool_spearman(np.asarray(S.spearman_rows([0, 1, 2, 3], RATINGS, EMB)))
    assert S.pool_spearman(worse, 2) == pytest.approx(want, abs=1e-12) and want < 0


def test_the_output_kind_reports_cosine_and_spearman_with_document_intervals():
    labels = [json.dumps({"doc": i, "ratings": r}) for i, r in enumerate(RATINGS)]
    test = EMB + np.array([[0.0, 0.01]])
    out = S.compare_sentence_embedding(EMB, test, {"labels": labels})
    assert {"cosine", "snr_db", "spearman", "spearman_float", "spearman_delta"} <= set(out)
    assert out["cosine"][0] == pytest.approx(1 / math.sqrt(1 + 0.01 ** 2), abs=1e-9)
    clusters = [S.document_of(f"lee-{i:02d}") for i in range(4)]
    s = summarize("spearman_float", out["spearman_float"], clusters)
    assert s["n"] == 4 and s["mean"] == pytest.approx(S.pool_spearman(np.asarray(out["spearman_float"])), abs=1e-6)
    assert s["ci95"][0] <= s["mean"] <= s["ci95"][1]
    with pytest.raises(QuantzooError, match="batch_size to at least 8"):
        S.compare_sentence_embedding(EMB, test, {"labels": labels, "all_labels": labels * 2})
    unlabelled = S.compare_sentence_embedding(EMB, test, {"labels": [None] * 4})
    assert unlabelled["spearman"] == [None] * 4 and summarize("spearman", unlabelled["spearman"])["n"] == 0


def _bag_of_words_model(path, dim: int = 4, vocab: int = len(VOCAB), seed: int = 0) -> None:
    """A tiny sentence-embedding ONNX model: the mean of per-token vectors over the mask."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    table = np.random.default_rng(seed).standard_normal((vocab, dim)).astype(np.float32)
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["vectors"]),
             helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
             helper.make_node("Mul", ["vectors", "mask3"], ["masked"]),
             helper.make_node("ReduceSum", ["masked", "axis1"], ["embedding"], keepdims=0)]
    g = helper.make_graph(nodes, "bag", [helper.make_tensor_value_info(n, TensorProto.INT64, ["N", "L"])
                                         for n in ("input_ids", "attention_mask")],
                          [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dim])],
                          [numpy_helper.from_array(table, "table"),
                           numpy_helper.from_array(np.array([2], np.int64), "axis2"),
                           numpy_helper.from_array(np.array([1], np.int64), "axis1")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def test_a_sentence_embedding_model_is_compared_on_rated_documents_through_the_registry(tmp_path):
    import yaml

    from quantzoo.cache import tree_sha256
    from quantzoo.compare.core import prepare
    from quantzoo.registry import load_registry

    zoo, data = tmp_path / "zoo", tmp_path / "zoo" / "data"
    (zoo / "models" / "bag").mkdir(parents=True)
    (zoo / "datasets").mkdir()
    data.mkdir()
    texts = ["the cat sat", "a cat", "the cafe", "unaffable cats", "the sat cafe", "a a a", "cats sat", "the"]
    (data / "lee.cor").write_text("\n".join(texts) + "\n")
    rng = np.random.default_rng(0)
    (data / "similarities0-1.txt").write_text("\n".join("\t".join(f"{v:.2f}" for v in row)
                                                        for row in rng.random((len(texts), len(texts)))))
    (data / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    _bag_of_words_model(data / "bag.onnx")
    src = {n: {**_file_source(data / n), "path": f"../../data/{n}"} for n in ("vocab.txt", "bag.onnx")}
    parts = [{"name": n, "source": {**_file_source(data / n), "path": f"../data/{n}"}}
             for n in ("lee.cor", "similarities0-1.txt")]
    listing = [(p["name"], p["source"]["sha256"], p["source"]["size"]) for p in parts]
    (zoo / "datasets" / "docs.yaml").write_text(yaml.safe_dump({
        "id": "docs", "description": "Eight rated documents.", "adapter": "lee-documents", "calibration": 0.3,
        "license": {"spdx": "CC0-1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"},
        "source": {"kind": "bundle", "parts": parts, "sha256": tree_sha256(listing)}}, sort_keys=False))
    (zoo / "models" / "bag" / "model.yaml").write_text(yaml.safe_dump({
        "id": "bag", "name": "Bag of words", "task": "sentence-embedding", "description": "A mean of word vectors.",
        "license": {"spdx": "MIT", "url": "https://opensource.org/license/mit"}, "authors": ["the test"],
        "source": src["bag.onnx"],
        "inputs": [{"name": n, "dtype": "int64", "shape": ["N", None]} for n in ("input_ids", "attention_mask")],
        "outputs": [{"name": "embedding", "dtype": "float32", "shape": ["N", 4]}],
        "preprocessing": {"adapter": "wordpiece", "params": {"vocab": src["vocab.txt"], "max_length": 8,
                                                             "batch_size": 16}},
        "dataset": "docs", "threshold": {"output": "embedding", "metric": "cosine", "min": 0.99}}, sort_keys=False))
    reg = load_registry(zoo)
    ev = prepare(data / "bag.onnx", model="bag", registry=reg, cache=tmp_path / "cache")
    keys = ev.prepared.keys
    assert keys == ["lee-00", "lee-01", "lee-02", "lee-03", "lee-06", "lee-07"]  # lee-04, lee-05: calibration
    m = ev.compare(data / "bag.onnx").metrics["embedding"]
    assert m["cosine"]["mean"] == pytest.approx(1.0) and m["spearman_delta"]["mean"] == 0.0
    assert m["spearman"]["n"] == len(keys) and m["spearman"]["mean"] == m["spearman_float"]["mean"]
    assert m["spearman"]["ci95"][0] <= m["spearman"]["mean"] <= m["spearman"]["ci95"][1]
