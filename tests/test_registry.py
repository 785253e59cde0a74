"""The registry: manifests validate against the schema, with every problem reported at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from quantzoo.errors import ManifestError
from quantzoo.registry import DEFAULT_VARIANTS, load_registry, parse_variant

REPO = Path(__file__).resolve().parent.parent

GOOD_MODEL = """
id: tiny
name: Tiny
task: classification
description: a test model
license: {spdx: MIT, url: https://opensource.org/license/mit}
authors: [quantzoo tests]
source: {kind: file, path: tiny.onnx, sha256: %s}
inputs: [{name: x, dtype: float32, shape: [N, 4], meaning: features}]
outputs: [{name: y, dtype: float32, shape: [N, 2]}]
preprocessing: {adapter: arrays}
labels: [a, b]
dataset: tiny-data
threshold: {output: y, metric: top1_agreement, min: 0.9}
""" % ("ab" * 32)

GOOD_DATASET = """
id: tiny-data
description: arrays
license: {spdx: CC0-1.0, url: https://creativecommons.org/publicdomain/zero/1.0/}
source: {kind: file, path: d.npz, sha256: %s}
adapter: arrays
""" % ("cd" * 32)


def make_zoo(root: Path, model: str = GOOD_MODEL, dataset: str = GOOD_DATASET, model_dir: str = "tiny") -> Path:
    (root / "models" / model_dir).mkdir(parents=True)
    (root / "datasets").mkdir(parents=True)
    (root / "models" / model_dir / "model.yaml").write_text(model)
    (root / "datasets" / "tiny-data.yaml").write_text(dataset)
    return root


def test_the_default_catalog_validates(registry):
    assert {"magika-standard-v3", "ppocr-mobile-v2-cls", "ppocr-v4-det", "ppocr-v4-rec"} <= set(registry.models)
    assert {"pygments-examplefiles", "skimage-photos", "rendered-text-lines"} <= set(registry.datasets)
    for m in registry.models.values():
        assert m.dataset in registry.datasets
        pinned = m.source["weights"] if m.source["kind"] == "pytorch" else m.source  # converted: its weights
        assert pinned["sha256"] and len(pinned["sha256"]) == 64


def test_a_good_manifest_loads_with_the_default_variant_grid(tmp_path):
    reg = load_registry(make_zoo(tmp_path))
    m = reg.model("tiny")
    assert [v.id for v in m.variants] == list(DEFAULT_VARIANTS)
    assert m.inputs[0]["meaning"] == "features"
    assert reg.dataset("tiny-data").adapter == "arrays"


def test_a_manifest_with_several_mistakes_reports_them_all_with_file_and_key(tmp_path):
    bad = (GOOD_MODEL
           .replace("task: classification", "task: clasification")
           .replace("sha256: " + "ab" * 32, "sha256: deadbeef")
           .replace("dtype: float32, shape: [N, 4]", "dtype: float33, shape: [N, 4]")
           .replace("min: 0.9", "min: high")
           .replace("dataset: tiny-data", "dataset: nowhere")
           .replace("preprocessing: {adapter: arrays}", "preprocessing: {adapter: jpeg-magic}")
           + "colour: blue\n"
           + "variants: [kmeans-4, kmeans-9, {id: linear-4, granularity: per_block, bogus: 1}]\n")
    bad = bad.replace("name: Tiny\n", "")
    with pytest.raises(ManifestError) as e:
        load_registry(make_zoo(tmp_path, bad))
    problems = e.value.problems
    where = "models/tiny/model.yaml"
    expected = [
        ("name", "missing (required)"),
        ("task", "found 'clasification'"),
        ("source.sha256", "found 'deadbeef'"),
        ("inputs[0].dtype", "found 'float33'"),
        ("threshold.min", "expected a number"),
        ("dataset", "no dataset 'nowhere'"),
        ("colour", "unknown key"),
        ("preprocessing.adapter", "unknown adapter 'jpeg-magic'; expected one of"),
        ("variants[1]", "unknown variant id 'kmeans-9'"),
        ("variants[2]", "unknown keys ['bogus']"),
    ]
    for key, text in expected:
        assert any(where in p and f": {key}: " in p and text in p for p in problems), (key, problems)
    assert len(problems) == len(expected)
    assert str(e.value).startswith(f"{len(expected)} problems in the registry:")


def test_unreadable_yaml_and_a_folder_without_manifest_are_both_reported(tmp_path):
    make_zoo(tmp_path, "id: [unclosed\n")
    (tmp_path / "models" / "empty").mkdir()
    with pytest.raises(ManifestError) as e:
        load_registry(tmp_path)
    text = str(e.value)
    assert "models/tiny/model.yaml: not valid YAML" in text
    assert "models/empty/model.yaml: missing" in text


def test_an_id_must_match_its_folder(tmp_path):
    with pytest.raises(ManifestError, match=r"models/other/model.yaml: id: must match the folder name 'other'"):
        load_registry(make_zoo(tmp_path, model_dir="other"))


def test_threshold_needs_exactly_one_bound_and_a_real_output(tmp_path):
    bad = GOOD_MODEL.replace("threshold: {output: y, metric: top1_agreement, min: 0.9}",
                             "threshold: {output: z, metric: cer, min: 0.9, max: 0.1}")
    with pytest.raises(ManifestError) as e:
        load_registry(make_zoo(tmp_path, bad))
    assert "threshold: give exactly one of 'min'" in str(e.value)
    assert "threshold.output: expected one of the model's outputs ['y'], found 'z'" in str(e.value)


def test_a_judge_must_name_a_model_of_the_registry(tmp_path):
    judged = GOOD_MODEL.replace("preprocessing: {adapter: arrays}",
                                "preprocessing: {adapter: arrays, params: {metrics: {judge: {model: %s}}}}")
    assert load_registry(make_zoo(tmp_path / "a", judged % "tiny")).model("tiny")  # the folder exists
    with pytest.raises(ManifestError, match=r"metrics.judge.model: no model 'asr' in .*; known: tiny"):
        load_registry(make_zoo(tmp_path / "b", judged % "asr"))
    with pytest.raises(ManifestError, match=r"preprocessing.params.metrics.judge: the judge must be a mapping"):
        load_registry(make_zoo(tmp_path / "c", judged.replace("{model: %s}", "asr")))


def test_variant_ids_map_to_modes():
    assert parse_variant("fp16").mode == "fp16" and parse_variant("fp16").nbits is None
    assert parse_variant("linear-sym-3").mode == "linear_symmetric"
    assert parse_variant("lut-2").mode == "linear_lut"
    assert parse_variant("unique-8").mode == "unique_lut"
    assert parse_variant({"id": "custom-4", "lut_function": "m:f"}).lut_function == "m:f"
    with pytest.raises(ValueError, match="needs lut_function"):
        parse_variant("custom-4")
    with pytest.raises(ValueError, match="unknown variant id 'kmeans-0'"):
        parse_variant("kmeans-0")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "quantzoo", *args], capture_output=True, text=True, cwd=REPO)


def test_quantzoo_check_passes_on_the_default_catalog_with_a_one_line_summary():
    r = run_cli("check")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok: ") and len(r.stdout.strip().splitlines()) == 1


def test_quantzoo_check_exits_1_listing_every_problem(tmp_path):
    make_zoo(tmp_path, GOOD_MODEL.replace("task: classification", "task: nope") + "extra: 1\n")
    r = run_cli("check", "--zoo", str(tmp_path))
    assert r.returncode == 1
    assert "2 problems" in r.stderr and ": task: " in r.stderr and ": extra: unknown key" in r.stderr


def test_a_missing_zoo_folder_is_a_clear_error(tmp_path):
    r = run_cli("check", "--zoo", str(tmp_path / "nope"))
    assert r.returncode == 1 and "no registry folder" in r.stderr


def test_a_usage_error_exits_2():
    r = run_cli("fetch", "--jobs", "many")
    assert r.returncode == 2 and "invalid int value" in r.stderr
