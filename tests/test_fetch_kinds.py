"""The SourceKind records: one per kind, and everything else derived from them."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from quantzoo.cache import Cache
from quantzoo.fetch import SOURCE_KINDS, SourceKind, action, describe, fetch_source, is_tree, upstream_url
from quantzoo.fetch.kinds import ARCHITECTURE_FIELDS

PYPI = {"kind": "pypi", "package": "magika", "version": "1.0.3", "member": "magika/models/m.onnx",
        "sha256": "a" * 64, "size": 1}
URL = {"kind": "url", "url": "https://x.org/m.onnx", "sha256": "b" * 64}
FILE = {"kind": "file", "path": "m.onnx", "sha256": "c" * 64}
BUNDLE = {"kind": "bundle", "parts": [{"name": "a", "source": FILE}, {"name": "b", "source": URL}], "sha256": "d" * 64}
NPM = {"kind": "npm", "package": "blazeface", "version": "1.2.0", "member": "ONNX/m.onnx", "sha256": "e" * 64,
       "size": 1}
DEBIAN = {"kind": "debian", "package": "opencv-doc", "version": "4.6.0+dfsg-12",
          "member": "usr/share/doc/opencv-doc/examples/data/messi5.jpg", "sha256": "f" * 64, "size": 1}
TORCH = {"kind": "pytorch", "weights": {**PYPI, "member": "w.pth"}, "architecture": {"builder": "m:f"},
         "input_shape": [1, 3], "opset": 13}


def test_every_kind_is_one_frozen_record_named_by_its_key():
    assert list(SOURCE_KINDS) == ["pypi", "url", "file", "pytorch", "bundle", "npm", "debian", "compose"]
    for name, kind in SOURCE_KINDS.items():
        assert isinstance(kind, SourceKind) and kind.name == name
        with pytest.raises(dataclasses.FrozenInstanceError):
            kind.name = "other"


def test_the_registry_schema_is_derived_from_the_records():
    from quantzoo import schema

    assert schema.ARCHITECTURE_FIELDS is ARCHITECTURE_FIELDS
    assert SOURCE_KINDS["pypi"].fields["sha256"] == ("sha", True)


@pytest.mark.parametrize("source, text", [
    (PYPI, "magika==1.0.3:magika/models/m.onnx"),
    ({**PYPI, "dist": "sdist"}, "magika==1.0.3 (sdist):magika/models/m.onnx"),
    ({**URL, "member": "models/**"}, "https://x.org/m.onnx#models/**"),
    (FILE, "m.onnx"),
    (TORCH, "magika==1.0.3:w.pth -> ONNX opset 13"),
    ({"kind": "pytorch"}, "pytorch source"),
    (BUNDLE, "bundle of 2 files"),
    (NPM, "npm:blazeface@1.2.0:ONNX/m.onnx"),
    (DEBIAN, "debian:opencv-doc=4.6.0+dfsg-12:usr/share/doc/opencv-doc/examples/data/messi5.jpg"),
    ({"kind": "ftp"}, "ftp source"),
])
def test_describe_names_a_source_for_messages(source, text):
    assert describe(source) == text


@pytest.mark.parametrize("source, url", [
    (PYPI, "https://pypi.org/project/magika/1.0.3/"),
    ({**PYPI, "url": "https://files.example/m.whl"}, "https://files.example/m.whl"),
    (URL, "https://x.org/m.onnx"),
    (FILE, None),
    (BUNDLE, None),
    (TORCH, "https://pypi.org/project/magika/1.0.3/"),
    ({**TORCH, "weights": URL}, "https://x.org/m.onnx"),
    ({**TORCH, "weights": FILE}, None),
    ({**TORCH, "weights": NPM}, "https://www.npmjs.com/package/blazeface/v/1.2.0"),
    ({"kind": "ftp", "url": "ftp://x"}, None),
    (NPM, "https://www.npmjs.com/package/blazeface/v/1.2.0"),
    (DEBIAN, "https://snapshot.debian.org/binary/opencv-doc/"),
])
def test_upstream_url_is_what_the_site_links_to(source, url):
    assert upstream_url(source) == url


@pytest.mark.parametrize("source, tree", [
    (PYPI, False), ({**PYPI, "member": "magika/models/**"}, True), ({**PYPI, "member": "pkg/"}, True),
    (URL, False), ({**URL, "archive": "zip"}, True), (FILE, False), (TORCH, False), (BUNDLE, True),
    (NPM, False), ({**NPM, "member": "ONNX/*.onnx"}, True), (DEBIAN, False), ({**DEBIAN, "member": "usr/share/"}, True),
])
def test_is_tree_says_whether_a_source_lands_as_a_folder(source, tree):
    assert is_tree(source) is tree


def test_nothing_is_cached_in_an_empty_cache(tmp_path):
    cache = Cache(tmp_path)
    for source in (PYPI, URL, FILE, BUNDLE, TORCH, NPM, DEBIAN):
        assert action(source, cache) == "fetch"


def test_a_blob_or_a_complete_tree_is_a_hit_while_its_bytes_are_the_recorded_ones(tmp_path):
    cache = Cache(tmp_path)
    x = hashlib.sha256(b"x").hexdigest()
    cache.blob(x).parent.mkdir(parents=True)
    cache.blob(x).write_bytes(b"x")
    assert action({**FILE, "sha256": x}, cache) == "hit"
    cache.blob(x).write_bytes(b"y")
    assert action({**FILE, "sha256": x}, cache) == "fetch"  # damaged: fetch_source moves it aside
    empty = hashlib.sha256(b"").hexdigest()  # the tree hash of an empty folder
    cache.tree(empty).mkdir(parents=True)
    assert action({**BUNDLE, "sha256": empty}, cache) == "fetch"  # no .complete marker: an interrupted landing
    (cache.root / "trees" / (empty + ".complete")).write_text(empty + "\n")
    assert action({**BUNDLE, "sha256": empty}, cache) == "hit"


def test_an_unknown_kind_lists_the_known_ones(tmp_path):
    with pytest.raises(Exception) as e:
        fetch_source({"kind": "ftp"}, Cache(tmp_path))
    assert str(e.value) == "unknown source kind 'ftp'; expected one of pypi, url, file, pytorch, bundle, npm, debian, compose"
    assert action({"kind": "ftp"}, Cache(tmp_path)) == "fetch"


def test_a_new_kind_is_one_record(tmp_path, monkeypatch):
    calls = []

    def fetch_echo(source, cache, base_dir):
        calls.append(source["text"])
        path = cache.root / "echo.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source["text"])
        return path

    echo = SourceKind(name="echo", fields={"text": ("str", True)}, fetch=fetch_echo,
                      describe=lambda s: f"echo {s['text']}", upstream_url=lambda s: None,
                      tree=lambda s: False, cached=lambda s, c: None)
    monkeypatch.setitem(SOURCE_KINDS, "echo", echo)
    source = {"kind": "echo", "text": "hi"}
    assert fetch_source(source, Cache(tmp_path)).read_text() == "hi" and calls == ["hi"]
    assert describe(source) == "echo hi" and upstream_url(source) is None
