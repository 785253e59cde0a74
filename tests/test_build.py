"""quantzoo build: the real pipeline (fetch → quantize → compare → publish) on a tiny zoo made here.

Two small real ONNX models (a classifier and a conv net with a map output), a dataset of .npy
samples bundled from local files, real quantization, real onnxruntime comparisons, the real
MkDocs build. Incrementality, failure isolation and determinism are checked on it.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from quantzoo import build as B
from quantzoo.cache import Cache
from quantzoo.cli import main
from tinyzoo import VARIANTS, make_zoo, model, sha


@pytest.fixture
def zoo(tmp_path):
    return make_zoo(tmp_path / "zoo")


def _build(tmp_path, zoo, *extra, jobs="1"):
    return main(["build", "--zoo", str(zoo), "--cache", str(tmp_path / "cache"), "--site-dir",
                 str(tmp_path / "site"), "--jobs", jobs, *extra])


# --- keys and small pure parts ------------------------------------------------------------------

def test_artifact_key_changes_with_source_spec_and_version_only():
    spec = {"mode": "kmeans_lut", "nbits": 4, "granularity": "per_tensor"}
    k = B.artifact_key("a" * 64, spec, "1.0")
    assert k == B.artifact_key("a" * 64, dict(reversed(list(spec.items()))), "1.0")
    assert k != B.artifact_key("b" * 64, spec, "1.0")
    assert k != B.artifact_key("a" * 64, {**spec, "nbits": 3}, "1.0")
    assert k != B.artifact_key("a" * 64, spec, "1.1")


def test_comparison_key_changes_with_the_evaluation_data(zoo):
    from quantzoo.registry import load_registry

    reg = load_registry(zoo)
    m = reg.model("tiny-classifier")
    ident = B.evaluation_identity(m, reg.dataset("vectors"))
    other = B.evaluation_identity(m, reg.dataset("volumes"))
    assert B.comparison_key("c" * 64, "f" * 64, ident) == B.comparison_key("c" * 64, "f" * 64, ident)
    assert B.comparison_key("c" * 64, "f" * 64, ident) != B.comparison_key("c" * 64, "f" * 64, other)
    assert B.comparison_key("c" * 64, "f" * 64, ident) != B.comparison_key("d" * 64, "f" * 64, ident)


def test_graph_info_counts_weights_in_initializers_constants_and_subgraphs(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    const = helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.ones((3, 4), np.float32)))
    then_g = helper.make_graph([helper.make_node("Constant", [], ["t"], value=numpy_helper.from_array(
        np.ones(5, np.float32)))], "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [5])])
    else_g = helper.make_graph([helper.make_node("Constant", [], ["e"], value=numpy_helper.from_array(
        np.ones(5, np.float32)))], "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [5])])
    g = helper.make_graph(
        [const, helper.make_node("MatMul", ["x", "w"], ["y"]),
         helper.make_node("If", ["c"], ["z"], then_branch=then_g, else_branch=else_g)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2]),
         helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 7]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [5])],
        [numpy_helper.from_array(np.ones((2, 7), np.float32), "w"),
         numpy_helper.from_array(np.array([1, 2], np.int64), "shape")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "m.onnx")
    info = B.graph_info(tmp_path / "m.onnx")
    assert info["parameters"] == 2 * 7 + 3 * 4 + 5 + 5  # the int64 shape tensor is not a parameter
    assert info["ops"] == {"Constant": 3, "If": 1, "MatMul": 1} and info["opset"] == 13


def test_output_maps_become_the_same_png_bytes_every_time():
    y = np.linspace(0, 1, 16 * 20, dtype=np.float32).reshape(1, 16, 20)
    png = B.map_png(y, 0.0, 1.0)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == B.map_png(y.copy(), 0.0, 1.0)
    from io import BytesIO

    from PIL import Image

    im = Image.open(BytesIO(png))
    assert im.size == (20, 16) and im.mode == "L"
    assert im.getpixel((0, 0)) == 0 and im.getpixel((19, 15)) == 255


# --- the whole pipeline ---------------------------------------------------------------------------

def test_build_publishes_every_model_and_variant_and_a_rerun_does_no_work(tmp_path, zoo, capfd):
    assert _build(tmp_path, zoo, jobs="2") == 0
    err = capfd.readouterr().err
    assert "6 model × variant results: 0 reused from the cache, 6 quantized, 6 compared" in err
    site = tmp_path / "site"
    index = json.loads((site / "index.json").read_text())
    assert [m["id"] for m in index["models"]] == ["tiny-classifier", "tiny-mapper"]
    for m in index["models"]:
        assert [v["id"] for v in m["variants"]] == VARIANTS
        for entry in [m["float"], *m["variants"]]:
            assert sha(site / entry["file"]) == entry["sha256"]
        assert m["recommended"] in VARIANTS
    cls = index["models"][0]["variants"][1]["metrics"]["logits"]
    assert cls["top1_agreement"]["n"] == 24 and 0.9 <= cls["top1_agreement"]["mean"] <= 1.0
    mapper_page = (site / "models" / "tiny-mapper.html").read_text()
    assert mapper_page.count('class="qz-grid"') == 1
    for vid in VARIANTS:
        assert (site / "files" / "tiny-mapper" / "preview" / f"{vid}.png").is_file()
    artifacts = sorted((tmp_path / "cache" / "derived" / "artifacts").glob("*.onnx"))
    stamps = [(p, p.stat().st_mtime_ns) for p in artifacts]
    first_index = (site / "index.json").read_bytes()

    assert _build(tmp_path, zoo, jobs="2") == 0
    err = capfd.readouterr().err
    assert "nothing changed" in err
    assert "6 model × variant results: 6 reused from the cache, 0 quantized, 0 compared" in err
    assert [(p, p.stat().st_mtime_ns) for p in artifacts] == stamps
    assert (site / "index.json").read_bytes() == first_index


def test_changing_one_variant_requantizes_only_that_variant(tmp_path, zoo, capfd):
    assert _build(tmp_path, zoo) == 0
    capfd.readouterr()
    model(zoo, "tiny-classifier", "classifier", variants=["fp16", "linear-8", {"id": "kmeans-4", "granularity":
                                                                               "per_grouped_channel",
                                                                               "group_size": 16}])
    assert _build(tmp_path, zoo) == 0
    assert "6 model × variant results: 5 reused from the cache, 1 quantized, 1 compared" in capfd.readouterr().err


def test_a_failing_model_is_reported_and_the_others_still_publish(tmp_path, zoo, capfd):
    model(zoo, "tiny-broken", "classifier", source_sha256="0" * 64)
    assert _build(tmp_path, zoo) == 1
    err = capfd.readouterr().err
    assert "tiny-broken (fetch):" in err and "0" * 64 in err
    index = json.loads((tmp_path / "site" / "index.json").read_text())
    assert [m["id"] for m in index["models"]] == ["tiny-classifier", "tiny-mapper"]
    catalog = (tmp_path / "site" / "index.html").read_text()
    assert "Not published" in catalog and "tiny-broken" in catalog


def test_a_failing_variant_is_listed_on_its_model_page_and_the_rest_publish(tmp_path, zoo, capfd):
    model(zoo, "tiny-classifier", "classifier", variants=["fp16", "unique-2"])  # 4096 distinct weights
    assert _build(tmp_path, zoo, "tiny-classifier") == 1
    err = capfd.readouterr().err
    assert "tiny-classifier unique-2 (quantize):" in err
    index = json.loads((tmp_path / "site" / "index.json").read_text())
    assert [v["id"] for v in index["models"][0]["variants"]] == ["fp16"]
    page = (tmp_path / "site" / "models" / "tiny-classifier.html").read_text()
    assert "Some variants did not build" in page and "unique-2" in page


def test_build_rejects_a_dataset_id_and_a_bad_base_url(tmp_path, zoo, capfd):
    assert _build(tmp_path, zoo, "vectors") == 2
    assert "vectors is a dataset" in capfd.readouterr().err
    assert _build(tmp_path, zoo, "--artifact-base-url", "ftp://x") == 2
    assert not (tmp_path / "site").exists()


def test_artifact_base_url_makes_files_absolute_in_index_json(tmp_path, zoo):
    assert _build(tmp_path, zoo, "tiny-classifier", "--artifact-base-url", "https://cdn.example.org/z") == 0
    m = json.loads((tmp_path / "site" / "index.json").read_text())["models"][0]
    assert m["float"]["file"] == "https://cdn.example.org/z/tiny-classifier/tiny-classifier-float.onnx"
    assert (tmp_path / "site" / "files" / "tiny-classifier" / "tiny-classifier-float.onnx").is_file()
    page = (tmp_path / "site" / "models" / "tiny-classifier.html").read_text()
    assert 'href="https://cdn.example.org/z/tiny-classifier/tiny-classifier-kmeans-4.onnx"' in page
    assert "../netron/index.html?url=../files/tiny-classifier/tiny-classifier-kmeans-4.onnx" in page


def test_cached_results_are_found_by_key_after_a_build(tmp_path, zoo):
    from quantzoo.registry import load_registry

    assert _build(tmp_path, zoo, "tiny-classifier") == 0
    reg, cache = load_registry(zoo), Cache(tmp_path / "cache")
    m = reg.model("tiny-classifier")
    float_sha = m.source["sha256"]
    ident = B.evaluation_identity(m, reg.dataset("vectors"))
    for var in m.variants:
        assert B.job_is_done(cache, m, var, float_sha, ident)
    os.remove(B.artifact_paths(cache, B.artifact_key(float_sha, m.variants[0].spec()))[0])
    assert not B.job_is_done(cache, m, m.variants[0], float_sha, ident)


def test_the_preview_input_image_is_the_photo_before_preprocessing():
    from io import BytesIO

    from PIL import Image

    photo = np.random.default_rng(0).integers(0, 256, (20, 30, 3)).astype(np.float32)
    pre = {"adapter": "image", "params": {"mean": [0.5, 0.4, 0.3], "std": [0.5, 0.2, 0.25], "channel_order": "BGR",
                                          "layout": "NCHW"}}
    x = ((photo / 255 - [0.5, 0.4, 0.3]) / [0.5, 0.2, 0.25])[..., ::-1].transpose(2, 0, 1)[None]
    back = np.asarray(Image.open(BytesIO(B.input_png(x.astype(np.float32), pre))))
    assert back.shape == (20, 30, 3) and np.abs(back.astype(int) - photo.astype(int)).max() <= 1
    assert B.input_png(np.zeros((1, 64), np.float32), {"adapter": "arrays"}) is None


def test_the_usage_snippet_on_a_model_page_runs_against_the_published_file(tmp_path, zoo, monkeypatch):
    import html
    import re

    assert _build(tmp_path, zoo, "tiny-mapper") == 0
    page = (tmp_path / "site" / "models" / "tiny-mapper.html").read_text()
    block = re.search(r'<div class="language-python highlight"><pre>(.*?)</pre></div>', page, re.S).group(1)
    code = html.unescape(re.sub(r"<[^>]+>", "", block))
    assert "ort.InferenceSession('tiny-mapper-" in code
    monkeypatch.chdir(tmp_path / "site" / "files" / "tiny-mapper")
    scope: dict = {}
    exec(compile(code, "usage-snippet", "exec"), scope)
    assert scope["outputs"][0].shape == (1, 1, 16, 16)
