"""The fetch stage against a real HTTP server on 127.0.0.1, real archives and real pip (resolving
against a package index served from 127.0.0.1: no test here needs the network).

The downloader's own behaviour (resume, retries, refusing web pages) is in test_download.py."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from httpserver import LocalServer, wheel
from quantzoo.cache import Cache, tree_listing, tree_sha256
from quantzoo.errors import ChecksumError, FetchError
from quantzoo.fetch import action, fetch_source

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB of model-ish bytes
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def url_source(url: str, data: bytes = PAYLOAD, **extra) -> dict:
    return {"kind": "url", "url": url, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), **extra}


def leftovers(cache: Cache) -> list[str]:
    """Every file in the cache other than locks: what a failed fetch must not leave behind."""
    if not cache.root.exists():
        return []
    return sorted(str(p.relative_to(cache.root)) for p in cache.root.rglob("*")
                  if p.is_file() and "locks" not in p.parts)


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


@pytest.fixture
def cache(tmp_path):
    return Cache(tmp_path / "cache")


def test_a_plain_download_lands_under_its_sha256(server, cache):
    url = server.add("/m.onnx", PAYLOAD)
    path = fetch_source(url_source(url), cache)
    assert path == cache.blob(PAYLOAD_SHA)
    assert path.read_bytes() == PAYLOAD
    assert leftovers(cache) == [f"blobs/{PAYLOAD_SHA}"]


def test_wrong_bytes_from_a_url_name_both_hashes_and_leave_nothing_in_the_cache(server, cache):
    wrong = PAYLOAD[:-1] + b"\x00"
    url = server.add("/m.onnx", wrong)
    with pytest.raises(ChecksumError) as e:
        fetch_source(url_source(url), cache)
    msg = str(e.value)
    assert PAYLOAD_SHA in msg and hashlib.sha256(wrong).hexdigest() in msg and url in msg
    assert "Deleted" in msg
    assert leftovers(cache) == []


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_a_zip_with_a_dotdot_member_is_refused_and_nothing_is_extracted(server, cache, tmp_path):
    evil = _zip_bytes({"models/ok.onnx": b"fine", "../../escaped.txt": b"gotcha"})
    url = server.add("/evil.zip", evil)
    with pytest.raises(FetchError) as e:
        fetch_source(url_source(url, evil, archive="zip"), cache)
    assert "../../escaped.txt" in str(e.value) and "outside" in str(e.value)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not cache.tree(hashlib.sha256(evil).hexdigest()).exists()


def test_a_tar_gz_archive_unpacks_into_a_tree_keyed_by_its_hash(server, cache):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in {"pkg/a.txt": b"alpha", "pkg/sub/b.txt": b"beta"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    url = server.add("/data.tar.gz", data)
    tree = fetch_source(url_source(url, data, archive="tar.gz"), cache)
    assert (tree / "pkg" / "sub" / "b.txt").read_bytes() == b"beta"


def _fetch_in_child(url: str, cache_root: str, queue) -> None:
    try:
        path = fetch_source(url_source(url), Cache(cache_root))
        queue.put(hashlib.sha256(Path(path).read_bytes()).hexdigest())
    except Exception as e:  # reported to the parent
        queue.put(f"error: {e}")


def test_two_processes_fetching_one_blob_download_it_once_and_both_get_it(server, cache):
    url = server.add("/m.onnx", PAYLOAD, delay=0.5)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_fetch_in_child, args=(url, str(cache.root), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    results = [queue.get(timeout=5) for _ in procs]
    assert results == [PAYLOAD_SHA, PAYLOAD_SHA]
    assert server.hits("/m.onnx") == 1
    assert leftovers(cache) == [f"blobs/{PAYLOAD_SHA}"]


def test_a_file_source_is_verified_and_copied_into_the_cache(tmp_path, cache):
    src = tmp_path / "model.onnx"
    src.write_bytes(PAYLOAD)
    source = {"kind": "file", "path": "model.onnx", "sha256": PAYLOAD_SHA}
    path = fetch_source(source, cache, base_dir=tmp_path)
    assert path.read_bytes() == PAYLOAD and path != src
    src.write_bytes(b"changed")
    with pytest.raises(ChecksumError) as e:
        fetch_source({**source, "sha256": "1" * 64}, cache, base_dir=tmp_path)
    assert "1" * 64 in str(e.value) and hashlib.sha256(b"changed").hexdigest() in str(e.value)
    assert str(src) in str(e.value)


def test_a_missing_file_source_says_where_it_looked(tmp_path, cache):
    with pytest.raises(FetchError, match=str(tmp_path / "nope.onnx")):
        fetch_source({"kind": "file", "path": "nope.onnx", "sha256": PAYLOAD_SHA}, cache, base_dir=tmp_path)


def test_a_bundle_gathers_verified_parts_into_one_tree_and_refuses_a_wrong_tree_hash(tmp_path, cache):
    (tmp_path / "a.bin").write_bytes(PAYLOAD)
    (tmp_path / "b.txt").write_bytes(b"second part")
    parts = [{"name": "x/a.bin", "source": {"kind": "file", "path": "a.bin", "sha256": PAYLOAD_SHA}},
             {"name": "b.txt", "source": {"kind": "file", "path": "b.txt",
                                          "sha256": hashlib.sha256(b"second part").hexdigest()}}]
    want = tree_sha256([("b.txt", hashlib.sha256(b"second part").hexdigest(), 11),
                        ("x/a.bin", PAYLOAD_SHA, len(PAYLOAD))])
    bundle = {"kind": "bundle", "parts": parts, "sha256": want}
    assert action(bundle, cache) == "fetch"
    tree = fetch_source(bundle, cache, base_dir=tmp_path)
    assert (tree / "x" / "a.bin").read_bytes() == PAYLOAD and (tree / "b.txt").read_bytes() == b"second part"
    assert action(bundle, cache) == "hit"
    with pytest.raises(ChecksumError, match=f"expected tree sha256 {'2' * 64}.* but got {want}"):
        fetch_source({**bundle, "sha256": "2" * 64}, cache, base_dir=tmp_path)
    assert not cache.tree("2" * 64).exists()


# --- pypi: real pip against a package index on 127.0.0.1 ----------------------------------------

TINY_FILES = {"qztiny.py": b"ANSWER = 42\n" * 100, "qztiny_data/a.txt": b"alpha", "qztiny_data/b/c.txt": b"gamma"}
WHEEL_NAME, WHEEL = wheel("qztiny", "1.0.0", TINY_FILES)
TINY = {"kind": "pypi", "package": "qztiny", "version": "1.0.0", "member": "qztiny.py",
        "sha256": hashlib.sha256(TINY_FILES["qztiny.py"]).hexdigest(), "size": len(TINY_FILES["qztiny.py"])}


@pytest.fixture
def pypi(local_pypi):
    return local_pypi({WHEEL_NAME: WHEEL})


def test_a_pypi_member_is_fetched_through_pip_and_then_is_a_pure_cache_hit(pypi, cache, monkeypatch):
    path = fetch_source(TINY, cache)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == TINY["sha256"]
    assert action(TINY, cache) == "hit"

    def no_subprocess(*a, **k):
        raise AssertionError("a cache hit must not run pip")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    assert fetch_source(TINY, cache) == path


def test_a_pypi_member_with_a_wrong_hash_names_the_member_and_wheel(pypi, cache):
    bad = {**TINY, "sha256": "0" * 64}
    with pytest.raises(ChecksumError) as e:
        fetch_source(bad, cache)
    assert "'qztiny.py'" in str(e.value) and "qztiny-1.0.0" in str(e.value) and TINY["sha256"] in str(e.value)
    assert not cache.blob("0" * 64).exists()


def test_a_pypi_glob_member_lands_as_a_tree_with_a_checkable_hash(pypi, cache):
    fetch_source(TINY, cache)  # downloads the wheel once
    wheel_file = next((cache.downloads / "pypi").glob("qztiny-1.0.0/*.whl"))
    # the hash of a folder is `sha256sum` over its sorted files: compute it independently
    with zipfile.ZipFile(wheel_file) as z:
        names = sorted(n for n in z.namelist() if n.startswith("qztiny-1.0.0.dist-info/"))
        lines = "".join(f"{hashlib.sha256(z.read(n)).hexdigest()}  {n.split('/', 1)[1]}\n" for n in names)
    tree_hash = hashlib.sha256(lines.encode()).hexdigest()
    src = {k: v for k, v in TINY.items() if k != "size"} | {"member": "qztiny-1.0.0.dist-info/*", "sha256": tree_hash}
    tree = fetch_source(src, cache)
    assert (tree / "METADATA").is_file()
    assert tree_sha256(tree_listing(tree)) == tree_hash


def test_a_pypi_folder_glob_keeps_the_paths_below_its_root(pypi, cache):
    listing = [("a.txt", hashlib.sha256(b"alpha").hexdigest(), 5), ("b/c.txt", hashlib.sha256(b"gamma").hexdigest(), 5)]
    src = {**TINY, "member": "qztiny_data/**", "sha256": tree_sha256(listing), "size": 10}
    tree = fetch_source(src, cache)
    assert (tree / "b" / "c.txt").read_bytes() == b"gamma"


def test_an_unknown_pypi_version_is_a_clear_error(pypi, cache):
    with pytest.raises(FetchError) as e:
        fetch_source({**TINY, "version": "999.0.0"}, cache)
    assert "qztiny==999.0.0" in str(e.value) and "pip download" in str(e.value)
    assert leftovers(cache) == []


# --- the command ------------------------------------------------------------------------------

def _write_zoo(root: Path, model_url: str, data_url: str, data: bytes) -> None:
    (root / "models" / "tiny").mkdir(parents=True)
    (root / "datasets").mkdir(parents=True)
    (root / "models" / "tiny" / "model.yaml").write_text(f"""
id: tiny
name: Tiny
task: classification
description: a test model
license: {{spdx: MIT, url: https://opensource.org/license/mit}}
authors: [quantzoo tests]
source: {{kind: url, url: "{model_url}", sha256: {PAYLOAD_SHA}, size: {len(PAYLOAD)}}}
inputs: [{{name: x, dtype: float32, shape: [N, 4]}}]
outputs: [{{name: y, dtype: float32, shape: [N, 2]}}]
preprocessing: {{adapter: arrays}}
dataset: tiny-data
threshold: {{output: y, metric: top1_agreement, min: 0.9}}
""")
    (root / "datasets" / "tiny-data.yaml").write_text(f"""
id: tiny-data
description: some arrays
license: {{spdx: CC0-1.0, url: https://creativecommons.org/publicdomain/zero/1.0/}}
source: {{kind: url, url: "{data_url}", sha256: {hashlib.sha256(data).hexdigest()}}}
adapter: arrays
""")


def run_cli(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quantzoo", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_quantzoo_fetch_fetches_everything_then_needs_no_network(tmp_path):
    data = b"\x93NUMPY fake but verified"
    with LocalServer() as srv:
        _write_zoo(tmp_path / "zoo", srv.add("/tiny.onnx", PAYLOAD), srv.add("/d.npy", data), data)
        first = run_cli("fetch", "--zoo", str(tmp_path / "zoo"), "--cache", str(tmp_path / "c"))
        assert first.returncode == 0, first.stderr
        assert "fetched tiny" in first.stdout and "fetched tiny-data" in first.stdout
    # the server is gone: a second fetch must be a pure cache hit
    second = run_cli("fetch", "--zoo", str(tmp_path / "zoo"), "--cache", str(tmp_path / "c"))
    assert second.returncode == 0, second.stderr
    assert "cached  tiny" in second.stdout and "ok: 2 sources" in second.stdout


def test_quantzoo_fetch_of_an_unknown_id_lists_the_known_ones(tmp_path):
    _write_zoo(tmp_path / "zoo", "http://127.0.0.1:9/x", "http://127.0.0.1:9/y", b"")
    r = run_cli("fetch", "nope", "--zoo", str(tmp_path / "zoo"), "--cache", str(tmp_path / "c"))
    assert r.returncode == 1
    assert "unknown id 'nope'" in r.stderr and "tiny, tiny-data" in r.stderr


def test_quantzoo_fetch_reports_a_failed_source_and_exits_1(tmp_path):
    with LocalServer() as srv:
        _write_zoo(tmp_path / "zoo", srv.add("/tiny.onnx", b"not the model"), srv.add("/d.npy", b"x"), b"x")
        r = run_cli("fetch", "--zoo", str(tmp_path / "zoo"), "--cache", str(tmp_path / "c"))
    assert r.returncode == 1
    assert "FAILED  tiny" in r.stdout and PAYLOAD_SHA in r.stdout
    assert "1 of 2 sources failed" in r.stderr


def test_a_models_judge_is_fetched_with_its_sources():
    """A model's judge (compare/judge.py) is fetched with it: its float source and its labels file."""
    from types import SimpleNamespace as N

    from quantzoo.fetch.cli import registry_sources

    asr = N(id="asr", task="speech-recognition", path=None,
            source={"kind": "file", "path": "a.onnx", "sha256": "a" * 64},
            labels={"file": {"kind": "file", "path": "v.txt", "sha256": "b" * 64}}, dataset=None, preprocessing={})
    tts = N(id="tts", task="speech-synthesis", path=None, source={"kind": "file", "path": "t.onnx", "sha256": "c" * 64},
            labels=None, dataset=None, preprocessing={"params": {"metrics": {"judge": {"model": "asr"}}}})
    reg = N(models={"asr": asr, "tts": tts}, datasets={})
    assert [i for i, _, _ in registry_sources(reg, [tts], [])] == ["tts", "tts judge asr", "tts judge asr labels"]
    # built together (the judge listed after the judged model): the judge keeps its own ids, which the
    # build looks its float file up by, and each source is fetched once
    assert [i for i, _, _ in registry_sources(reg, [tts, asr], [])] == ["tts", "asr", "asr labels"]
    # a judge that cannot judge is not fetched here: the build reports it for that model (pipeline.run.judged)
    reg.models["asr"] = N(**{**vars(asr), "task": "classification"})
    assert [i for i, _, _ in registry_sources(reg, [tts], [])] == ["tts"]


def test_the_default_catalog_lists_every_models_own_source_under_its_id():
    """The build finds each model's float file by its id (pipeline.run.fetch_all): a source shared
    with another model's judge must still be listed under the model's own id."""
    from quantzoo.fetch.cli import registry_sources
    from quantzoo.registry import load_registry, zoo_root

    reg = load_registry(zoo_root())
    models = [reg.model(i) for i in sorted(reg.models)]
    items = registry_sources(reg, models, [])
    assert {m.id for m in models} <= {i for i, _, _ in items}
    # a labels file two models share (ImageNet's) is fetched once, under the first one's id
    shas = {s.get("sha256") for _, s, _ in items}
    assert all(m.labels["file"]["sha256"] in shas for m in models if isinstance(m.labels, dict) and "file" in m.labels)
