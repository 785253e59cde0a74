"""A cached entry is re-hashed before fetch hands it out: the defect of issue 11 as found (one
flipped byte in ``blobs/<sha256>``) is detected, the entry is quarantined, and the source is
fetched again; a refetch that is wrong too fails with the usual checksum error."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from httpserver import LocalServer
from quantzoo import cache as cache_mod
from quantzoo.cache import Cache, tree_listing, tree_sha256
from quantzoo.errors import ChecksumError
from quantzoo.fetch import fetch_source
from quantzoo.fetch.land import marker, recorded_sha256, verified

PAYLOAD = bytes(range(256)) * 1024
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def flip(path: Path, at: int | None = None) -> bytes:
    """Flip one byte of `path` in place (same size); return the new bytes."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if at is None else at] ^= 0xFF
    path.write_bytes(bytes(data))
    return bytes(data)


def quarantined(cache: Cache) -> list[Path]:
    folder = cache.root / "quarantine"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def cache(tmp_path):
    return Cache(tmp_path / "cache")


@pytest.fixture
def file_source(tmp_path):
    (tmp_path / "model.onnx").write_bytes(PAYLOAD)
    return {"kind": "file", "path": "model.onnx", "sha256": SHA, "size": len(PAYLOAD)}


def test_a_flipped_byte_in_a_cached_blob_is_quarantined_and_the_source_fetched_again(tmp_path, cache, file_source,
                                                                                         capsys):
    blob = fetch_source(file_source, cache, base_dir=tmp_path)
    bad = flip(blob)
    bad_sha = hashlib.sha256(bad).hexdigest()
    again = fetch_source(file_source, cache, base_dir=tmp_path)
    assert again == blob and again.read_bytes() == PAYLOAD
    [moved] = quarantined(cache)
    assert moved.read_bytes() == bad and moved.name.startswith(SHA)
    err = capsys.readouterr().err
    assert SHA in err and bad_sha in err and str(moved) in err and "model.onnx" in err


def test_a_cache_hit_is_hashed_once_per_process(tmp_path, cache, file_source, monkeypatch):
    fetch_source(file_source, cache, base_dir=tmp_path)
    calls = []
    real = cache_mod.sha256_file
    monkeypatch.setattr(cache_mod, "sha256_file", lambda p: calls.append(p) or real(p))
    for _ in range(5):
        fetch_source(file_source, cache, base_dir=tmp_path)
    assert len(calls) == 1


def test_a_refetch_that_is_wrong_too_fails_with_the_checksum_error_and_keeps_the_bad_entry(tmp_path, cache,
                                                                                            file_source):
    blob = fetch_source(file_source, cache, base_dir=tmp_path)
    flip(blob)
    flip(tmp_path / "model.onnx", at=3)  # the origin changed as well
    with pytest.raises(ChecksumError, match=f"expected sha256 {SHA}"):
        fetch_source(file_source, cache, base_dir=tmp_path)
    assert not blob.exists() and len(quarantined(cache)) == 1


def test_a_changed_file_in_a_cached_tree_is_quarantined_and_the_tree_built_again(tmp_path, cache, capsys):
    (tmp_path / "a.bin").write_bytes(PAYLOAD)
    parts = [{"name": "x/a.bin", "source": {"kind": "file", "path": "a.bin", "sha256": SHA}}]
    bundle = {"kind": "bundle", "parts": parts, "sha256": tree_sha256([("x/a.bin", SHA, len(PAYLOAD))])}
    tree = fetch_source(bundle, cache, base_dir=tmp_path)
    flip(tree / "x" / "a.bin")
    again = fetch_source(bundle, cache, base_dir=tmp_path)
    assert again == tree and (tree / "x" / "a.bin").read_bytes() == PAYLOAD and marker(tree).is_file()
    assert [p.name.startswith(bundle["sha256"]) for p in quarantined(cache)] == [True]
    assert bundle["sha256"] in capsys.readouterr().err


def test_an_archive_tree_records_its_own_tree_hash_and_is_checked_against_it(cache, capsys):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in {"pkg/a.txt": b"alpha", "pkg/b.txt": b"beta"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    with LocalServer() as srv:
        source = {"kind": "url", "url": srv.add("/d.tar.gz", data), "sha256": hashlib.sha256(data).hexdigest(),
                  "archive": "tar.gz"}
        tree = fetch_source(source, cache)
        assert recorded_sha256(tree) == tree_sha256(tree_listing(tree)) != source["sha256"]
        assert fetch_source(source, cache) == tree and quarantined(cache) == []  # a clean hit stays a hit
        flip(tree / "pkg" / "a.txt", at=0)
        flip(cache.downloads / "url" / source["sha256"])  # the kept archive is damaged too
        assert (fetch_source(source, cache) / "pkg" / "a.txt").read_bytes() == b"alpha"
        assert srv.hits("/d.tar.gz") == 2  # the damaged archive was not trusted
    assert len(quarantined(cache)) == 2


def test_a_converted_model_is_checked_against_the_sha256_in_its_record(tmp_path, capsys):
    cache = Cache(tmp_path / "cache")
    onnx_path = cache.derived("convert", "k" * 64, ".onnx")
    onnx_path.parent.mkdir(parents=True)
    onnx_path.write_bytes(PAYLOAD)
    onnx_path.with_suffix(".json").write_text(json.dumps({"onnx": {"sha256": SHA, "size": len(PAYLOAD)}}))
    assert recorded_sha256(onnx_path) == SHA and verified(onnx_path, cache, "conversion") == onnx_path
    flip(onnx_path)
    assert verified(onnx_path, cache, "conversion") is None and not onnx_path.exists()
    assert "conversion does not match" in capsys.readouterr().err
