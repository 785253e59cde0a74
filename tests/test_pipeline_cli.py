"""quantzoo build: the real pipeline (fetch → quantize → compare → publish) on a tiny zoo made here.

Two small real ONNX models (a classifier and a conv net with a map output), a dataset of .npy
samples bundled from local files, real quantization, real onnxruntime comparisons, the real
MkDocs build. Incrementality, failure isolation and determinism are checked on it.
"""

from __future__ import annotations

import json

import pytest

from quantzoo.cli import main
from tinyzoo import VARIANTS, make_zoo, model, sha


@pytest.fixture
def zoo(tmp_path):
    return make_zoo(tmp_path / "zoo")


def _build(tmp_path, zoo, *extra, jobs="1"):
    return main(["build", "--zoo", str(zoo), "--cache", str(tmp_path / "cache"), "--site-dir",
                 str(tmp_path / "site"), "--jobs", jobs, *extra])


# --- the whole pipeline ---------------------------------------------------------------------------

def test_build_publishes_every_model_and_variant_and_a_rerun_does_no_work(tmp_path, zoo, capfd):
    assert _build(tmp_path, zoo, jobs="2") == 0
    err = capfd.readouterr().err
    assert "6 model × variant results: 0 reused from the cache, 6 quantized, 6 compared" in err
    # where the build's time went, per model (costliest first), beside the per-stage totals
    per_model = [line.strip().split(":")[0] for line in err.splitlines() if line.startswith("  tiny-") and " s (" in line]
    assert sorted(per_model) == ["tiny-classifier", "tiny-mapper"] and "compare" in err.split("worker time by stage")[1]
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


def test_build_publishes_the_runtime_matrix_in_index_json_and_on_the_model_page(tmp_path, zoo):
    assert _build(tmp_path, zoo, "tiny-classifier") == 0
    site = tmp_path / "site"
    (m,) = json.loads((site / "index.json").read_text())["models"]
    for entry in [m["float"], *m["variants"]]:
        assert set(entry["runtimes"]) == {"onnxruntime", "openvino", "onnx-reference"}
        assert entry["runtimes"]["onnxruntime"] == {"runs": True, "max_abs_diff": None}
        for name in ("openvino", "onnx-reference"):
            assert entry["runtimes"][name]["runs"] and 0 <= entry["runtimes"][name]["max_abs_diff"] < 1e-3
    page = (site / "models" / "tiny-classifier.html").read_text()
    assert 'id="runtimes"' in page and "<th>OpenVINO</th>" in page and page.count("✓ ") >= 2 * (1 + len(VARIANTS))
