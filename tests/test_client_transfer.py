"""client.transfer: opening a catalog (URL or folder) and fetching verified files: resume, tampering,
broken index.json, absolute artifact URLs, `quantzoo.load`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from catalogsite import D, files, pull, tampered_copy, variant
from catalogsite import served, site  # noqa: F401  (module-scoped fixtures shared by the client tests)
from httpserver import LocalServer
from quantzoo.cli import main
from quantzoo.catalog import file_name
from quantzoo.client import transfer as client
from quantzoo.errors import QuantzooError, UsageError


def test_published_files_are_found_relative_to_the_site_or_at_their_absolute_url(tmp_path):
    assert client.resolve("http://h/zoo/", "files/m/a.onnx") == "http://h/zoo/files/m/a.onnx"
    assert client.resolve("http://h/zoo/", "https://cdn.example/a.onnx") == "https://cdn.example/a.onnx"
    assert client.resolve(tmp_path, "files/m/a.onnx") == (tmp_path / "files/m/a.onnx").resolve()
    with pytest.raises(QuantzooError, match="points outside the catalog folder"):
        client.resolve(tmp_path, "../../etc/passwd")
    with pytest.raises(QuantzooError, match="does not end in a file name"):
        file_name("files/m/..")


def test_the_catalog_comes_from_the_argument_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("QUANTZOO_CATALOG", "https://zoo.example/")
    assert client.catalog_location(None) == "https://zoo.example/"
    assert client.catalog_location(str(tmp_path)) == tmp_path
    monkeypatch.delenv("QUANTZOO_CATALOG")
    with pytest.raises(UsageError, match="no catalog given: pass --catalog URL .* or set QUANTZOO_CATALOG"):
        client.catalog_location(None)
    with pytest.raises(UsageError, match="expected an http\\(s\\) URL or a local folder, found a ftp: address"):
        client.catalog_location("ftp://zoo.example/")


def test_pull_from_a_local_site_folder(site, tmp_path, capsys):
    rc, out, err = pull(capsys, "tiny-embedder", "--catalog", str(site.root), "-o", str(tmp_path / "d"),
                         "--cache", str(tmp_path / "c"))
    assert rc == 0, err
    assert hashlib.sha256(Path(out.strip()).read_bytes()).hexdigest() == variant(site, "fp16", "tiny-embedder")["sha256"]


def test_an_interrupted_transfer_resumes_where_it_stopped(site, tmp_path, capsys):
    path = "/files/tiny-classifier/tiny-classifier-fp16.onnx"
    data = (site.root / path.lstrip("/")).read_bytes()
    with LocalServer() as srv:
        srv.serve_dir(site.root)
        srv.add(path, data, cut_after=[100_000])
        rc, out, err = pull(capsys, "tiny-classifier", "--variant", "fp16", "--catalog", srv.url("/"),
                             "-o", str(tmp_path / "d"), "--cache", str(tmp_path / "c"))
        gets = [h for m, p, h in srv.requests if p == path and m == "GET"]
    assert rc == 0, err
    assert Path(out.strip()).read_bytes() == data
    assert len(gets) == 2 and "Range" not in gets[0]
    assert gets[1]["Range"].startswith("bytes=") and 0 < int(gets[1]["Range"][6:-1]) <= 100_000
    assert gets[1]["If-Range"]


@pytest.mark.parametrize("how", ["flipped", "truncated"])
def test_a_tampered_artifact_fails_clearly_and_leaves_nothing_behind(site, tmp_path, capsys, how):
    root, entry = tampered_copy(site, tmp_path, how)
    out_dir, cache = tmp_path / "d", tmp_path / "c"
    with LocalServer() as srv:
        srv.serve_dir(root)
        rc, out, err = pull(capsys, "tiny-classifier", "--variant", "linear-4", "--catalog", srv.url("/"),
                             "-o", str(out_dir), "--cache", str(cache))
        assert rc == 1 and out == ""
        assert "/files/tiny-classifier/tiny-classifier-linear-4.onnx" in err
        assert entry["sha256"] in err and "index.json" in err
        assert files(out_dir) == []
        assert [f for f in files(cache) if not f.startswith("locks/")] == []
        # the other artifacts of the same site still pull
        rc, out, err = pull(capsys, "tiny-classifier", "--catalog", srv.url("/"), "-o", str(out_dir),
                             "--cache", str(cache))
        assert rc == 0, err


def test_a_tampered_artifact_in_a_local_site_folder_fails_clearly_and_leaves_nothing_behind(site, tmp_path, capsys):
    root, entry = tampered_copy(site, tmp_path, "flipped")
    out_dir, cache = tmp_path / "d", tmp_path / "c"
    rc, out, err = pull(capsys, "tiny-classifier", "--variant", "linear-4", "--catalog", str(root),
                         "-o", str(out_dir), "--cache", str(cache))
    assert rc == 1 and out == ""
    assert f"does not match index.json: expected sha256 {entry['sha256']} ({entry['size']} bytes)" in err
    assert files(out_dir) == [] and [f for f in files(cache) if not f.startswith("locks/")] == []


def test_a_catalog_without_index_json_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with LocalServer() as srv:
        srv.serve_dir(tmp_path / "empty")
        assert main(["list", "--catalog", srv.url("/zoo")]) == 1
        assert f"no index.json at {srv.url('/zoo/index.json')} (HTTP 404)" in capsys.readouterr().err
    assert main(["list", "--catalog", str(tmp_path / "empty")]) == 1
    assert f"{tmp_path / 'empty'} has no index.json" in capsys.readouterr().err


@pytest.mark.parametrize("body, message", [
    (b"<html><body>Welcome</body></html>", "is malformed: not valid JSON"),
    (b'{"schema_version": 99, "models": []}', "has schema_version 99, but this quantzoo"),
    (b'{"schema_version": 1, "models": [{"id": "a"}]}', "models[0] (a).variants: expected a list, found nothing"),
])
def test_a_broken_index_json_is_a_clear_error_and_pulls_nothing(tmp_path, capsys, body, message):
    with LocalServer() as srv:
        srv.add("/index.json", body, content_type="application/json")
        rc, out, err = pull(capsys, "a", "--catalog", srv.url("/"), "-o", str(tmp_path / "d"),
                             "--cache", str(tmp_path / "c"))
    assert rc == 1 and message in err
    assert not (tmp_path / "d").exists() and not (tmp_path / "c").exists()


def test_load_returns_the_verified_cached_file_or_a_session_that_runs_it(served, site, tmp_path):
    import quantzoo

    cache = tmp_path / "c"
    path = quantzoo.load("tiny-classifier", catalog=served.url("/"), cache=cache)
    assert path == cache.resolve() / "blobs" / variant(site, "linear-8")["sha256"]
    sess = quantzoo.load("tiny-classifier", "fp16", catalog=served.url("/"), cache=cache, session=True)
    x = np.random.default_rng(1).standard_normal((3, D)).astype(np.float32)
    w, b = site.weights["fp16"]
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], x @ w + b, rtol=1e-5, atol=1e-5)


def test_files_published_under_an_absolute_artifact_url_are_downloaded_from_there(served, site, tmp_path, capsys):
    doc = json.loads(json.dumps(site.doc))
    for m in doc["models"]:
        for v in m["variants"]:
            v["file"] = served.url("/" + v["file"])
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.json").write_text(json.dumps(doc))   # index only: the files live on the server
    before = served.hits("/files/tiny-classifier/tiny-classifier-linear-8.onnx")
    rc, out, err = pull(capsys, "tiny-classifier", "--catalog", str(tmp_path / "site"), "-o", str(tmp_path / "d"),
                         "--cache", str(tmp_path / "c"))
    assert rc == 0, err
    assert hashlib.sha256(Path(out.strip()).read_bytes()).hexdigest() == variant(site, "linear-8")["sha256"]
    assert served.hits("/files/tiny-classifier/tiny-classifier-linear-8.onnx") == before + 1


def test_a_damaged_cached_blob_is_rehashed_moved_aside_and_fetched_again(site, tmp_path, capsys):
    cache = tmp_path / "c"
    argv = ("tiny-classifier", "--variant", "linear-4", "--catalog", str(site.root), "--cache", str(cache))
    rc, out, err = pull(capsys, *argv, "-o", str(tmp_path / "d1"))
    assert rc == 0, err
    entry = variant(site, "linear-4")
    blob = cache / "blobs" / entry["sha256"]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # right size, wrong bytes
    blob.write_bytes(bytes(data))
    rc, out, err = pull(capsys, *argv, "-o", str(tmp_path / "d2"))
    assert rc == 0, err
    assert hashlib.sha256(Path(out.strip()).read_bytes()).hexdigest() == entry["sha256"]
    assert blob.read_bytes() != bytes(data)
    [moved] = (cache / "quarantine").iterdir()
    assert moved.read_bytes() == bytes(data)
    assert entry["sha256"] in err and hashlib.sha256(bytes(data)).hexdigest() in err and str(moved) in err


def test_a_variant_whose_files_cannot_sit_side_by_side_is_refused(tmp_path):
    from quantzoo.catalog import CatalogIndex, FileEntry, VariantEntry

    cat = client.Catalog(base=tmp_path, index=str(tmp_path / "index.json"), doc=CatalogIndex(models=()))
    sha = "0" * 64
    clash = VariantEntry("v", "linear", 8, None, "files/m/a.onnx", 1, sha, files=(FileEntry("files/x/a.onnx", 1, sha),))
    with pytest.raises(QuantzooError, match="cannot sit side by side"):
        client.fetch_variant(cat, clash, tmp_path / "c")
    entry = VariantEntry("v", "linear", 8, None, "files/m/a.onnx", 1, sha, files=(FileEntry("files/m/a.data", 2, sha),))
    assert entry.to_json()["files"] == [{"file": "files/m/a.data", "size": 2, "sha256": sha}]
    assert VariantEntry.from_json(entry.to_json(), "v") == entry
    assert "files" not in VariantEntry("v", "fp16", 16, None, "files/m/b.onnx", 1, sha).to_json()


def test_load_runs_a_custom_op_with_the_catalogs_implementation_and_says_so(tmp_path):
    import quantzoo
    from quantzoo.client import CustomOpsFromCatalog
    from quantzoo.customops import CustomOpError, run
    from tinymodels import CUSTOM_OP, custom_op_catalog, custom_op_model

    src = custom_op_model(tmp_path / "m.onnx")
    catalog = custom_op_catalog(tmp_path / "site", src)
    with pytest.warns(CustomOpsFromCatalog, match=rf"running {CUSTOM_OP} with affine_impl:Affine from .*"
                                                  r"affine_impl\.py \(sha256 [0-9a-f]{12}… verified"):
        sess = quantzoo.load("tiny-custom", catalog=catalog, session=True, cache=tmp_path / "cache")
    x = np.ones((1, 64), np.float32)
    assert run(sess, None, {"x": x})[0].shape == (1, 64)
    # a catalog that publishes no implementation: the op is named, with how to give one
    bare = custom_op_catalog(tmp_path / "bare", src)
    doc = json.loads((bare / "index.json").read_text())
    doc["models"][0]["custom_ops"][0]["implementation"] = None
    (bare / "index.json").write_text(json.dumps(doc))
    with pytest.raises(CustomOpError, match=rf"custom op {CUSTOM_OP} with no implementation"):
        quantzoo.load("tiny-custom", catalog=bare, session=True, cache=tmp_path / "cache")
