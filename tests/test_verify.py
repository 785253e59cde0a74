"""`quantzoo verify` and verified bytes through `quantzoo build`, on a tiny zoo built once here.

The defect of issue 11 as found: one flipped byte in the cached float blob used to be quantized
and published as the float file. Now the build quarantines it, fetches the source again and
publishes the manifest's bytes; a damaged artifact is rebuilt; `verify` names every mismatch.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from quantzoo.cli import main
from tinyzoo import make_zoo, sha


def flip(path: Path) -> str:
    """Flip the middle byte of `path` in place; return the sha256 of the damaged bytes."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return hashlib.sha256(bytes(data)).hexdigest()


def build(zoo: Path, cache: Path, site: Path) -> int:
    return main(["build", "tiny-classifier", "--zoo", str(zoo), "--cache", str(cache), "--site-dir", str(site),
                 "--jobs", "1"])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify")
    zoo = make_zoo(root / "zoo")
    assert build(zoo, root / "cache", root / "site") == 0
    return zoo, root / "cache", root / "site"


@pytest.fixture
def copy(built, tmp_path):
    """A private copy of the built cache and site, free to damage."""
    zoo, cache, site = built
    shutil.copytree(cache, tmp_path / "cache")
    shutil.copytree(site, tmp_path / "site")
    return zoo, tmp_path / "cache", tmp_path / "site"


def manifest_sha(zoo: Path) -> str:
    return yaml.safe_load((zoo / "models" / "tiny-classifier" / "model.yaml").read_text())["source"]["sha256"]


def float_entry(site: Path) -> dict:
    return json.loads((site / "index.json").read_text())["models"][0]["float"]


def test_a_clean_cache_and_site_verify(built, capsys):
    _, cache, site = built
    assert main(["verify", "--cache", str(cache), "--site", str(site)]) == 0
    out = capsys.readouterr().out
    assert "MISMATCH" not in out and out.startswith("ok: checked ")
    assert "4 site files" in out  # the float file and three variants


def test_verify_names_a_damaged_site_file_and_cache_blob_and_exits_1(copy, capsys):
    zoo, cache, site = copy
    entry = float_entry(site)
    site_found = flip(site / entry["file"])
    blob = cache / "blobs" / manifest_sha(zoo)
    blob_found = flip(blob)
    assert main(["verify", "--cache", str(cache), "--site", str(site)]) == 1
    out = capsys.readouterr().out
    assert f"MISMATCH {blob}: expected {blob.name}, found {blob_found}" in out
    assert (f"MISMATCH {site / entry['file']}: expected {entry['sha256']} ({entry['size']} bytes), "
            f"found {site_found} ({entry['size']} bytes)") in out
    assert out.splitlines()[-1].startswith("2 mismatches: checked ")
    assert blob.is_file()  # verify only reports


def test_verify_checks_artifacts_and_trees_against_their_records(copy, capsys):
    _, cache, _ = copy
    artifact = sorted((cache / "derived" / "artifacts").glob("*.onnx"))[0]
    tree_file = next(p for p in sorted((cache / "trees").rglob("*")) if p.is_file() and ".complete" not in p.name)
    flip(artifact)
    flip(tree_file)
    assert main(["verify", "--cache", str(cache)]) == 1
    out = capsys.readouterr().out
    assert f"MISMATCH {artifact}:" in out and f"MISMATCH {tree_file.parent}:" in out


@pytest.mark.parametrize("argv, message", [
    (["--site", "{tmp}/nope"], "site {tmp}/nope is not a folder"),
    (["--cache", "{tmp}/nope"], "cache {tmp}/nope is not a folder"),
    ([], "nothing to verify"),
])
def test_usage_errors_exit_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.setenv("QUANTZOO_CACHE", str(tmp_path / "no-cache"))
    assert main(["verify", *[a.format(tmp=tmp_path) for a in argv]]) == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err


def test_a_flipped_cached_float_blob_is_quarantined_and_the_build_publishes_the_manifest_bytes(copy, tmp_path,
                                                                                                capfd):
    zoo, cache, _ = copy
    want = manifest_sha(zoo)
    bad_blob = flip(cache / "blobs" / want)
    artifact = sorted((cache / "derived" / "artifacts").glob("*.onnx"))[0]
    record = json.loads(artifact.with_suffix(".json").read_text())
    bad_artifact = flip(artifact)
    site = tmp_path / "site2"
    assert build(zoo, cache, site) == 0
    err = capfd.readouterr().err
    assert f"expected {want} but found {bad_blob}" in err
    assert f"expected {record['sha256']} but found {bad_artifact}" in err and "building it again" in err
    entry = float_entry(site)
    assert entry["sha256"] == want == sha(site / entry["file"])
    published = {v["sha256"] for v in json.loads((site / "index.json").read_text())["models"][0]["variants"]}
    assert record["sha256"] in published and sha(artifact) == record["sha256"]
    moved = sorted((cache / "quarantine").iterdir())
    assert len(moved) == 2 and {sha(p) for p in moved} == {bad_blob, bad_artifact}
    assert main(["verify", "--cache", str(cache), "--site", str(site)]) == 0
