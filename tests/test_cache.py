"""The content-addressed cache: committing verified bytes, atomic writes, tree hashes, keys."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from quantzoo.cache import (
    Cache, atomic_path, commit_file, key_of, sha256_file, tree_listing, tree_sha256, write_json,
)
from quantzoo.errors import ChecksumError, QuantzooError

DATA = b"model bytes" * 1000
SHA = hashlib.sha256(DATA).hexdigest()


def test_commit_file_moves_matching_bytes_into_place(tmp_path):
    tmp = tmp_path / ".tmp"
    tmp.write_bytes(DATA)
    dest = commit_file(tmp, tmp_path / "blobs" / SHA, SHA, len(DATA), "m.onnx")
    assert dest.read_bytes() == DATA and not tmp.exists()
    assert dest.stat().st_mode & 0o777 == 0o644


def test_commit_file_trusts_a_hash_computed_while_writing(tmp_path):
    tmp = tmp_path / ".tmp"
    tmp.write_bytes(DATA)
    assert commit_file(tmp, tmp_path / "d", SHA, None, "x", got=SHA).read_bytes() == DATA


def test_commit_file_refuses_other_bytes_names_both_hashes_and_deletes_the_temp(tmp_path):
    tmp = tmp_path / ".tmp"
    tmp.write_bytes(b"other")
    with pytest.raises(ChecksumError) as e:
        commit_file(tmp, tmp_path / "blobs" / SHA, SHA, len(DATA), "https://x.org/m.onnx",
                    against="index.json", next_step="Tell the catalog's maintainers.")
    msg = str(e.value)
    assert msg.startswith(f"https://x.org/m.onnx does not match index.json: expected sha256 {SHA} "
                          f"({len(DATA)} bytes) but got {hashlib.sha256(b'other').hexdigest()} (5 bytes).")
    assert msg.endswith("Tell the catalog's maintainers.") and "Deleted" in msg
    assert isinstance(e.value, QuantzooError)
    assert not tmp.exists() and not (tmp_path / "blobs" / SHA).exists()


def test_commit_file_refuses_the_right_hash_with_the_wrong_size(tmp_path):
    tmp = tmp_path / ".tmp"
    tmp.write_bytes(DATA)
    with pytest.raises(ChecksumError, match=f"expected sha256 {SHA} \\(7 bytes\\)"):
        commit_file(tmp, tmp_path / "d", SHA, 7, "x")
    assert not tmp.exists()


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_write_json_is_deterministic(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    assert (tmp_path / "a.json").read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'


def test_the_tree_hash_is_what_sha256sum_prints_for_the_sorted_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_bytes(b"beta")
    (tmp_path / "sub" / "a.txt").write_bytes(b"alpha")
    listing = tree_listing(tmp_path)
    assert [p for p, _, _ in listing] == ["b.txt", "sub/a.txt"]
    by_hand = subprocess.run(
        "find . -type f | sed 's|^./||' | LC_ALL=C sort | xargs sha256sum | sha256sum",
        shell=True, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()[0]
    assert tree_sha256(listing) == by_hand


def test_key_of_ignores_dict_order_and_sees_every_value():
    assert key_of("q", {"a": 1, "b": 2}) == key_of("q", {"b": 2, "a": 1})
    assert key_of("q", {"a": 1}) != key_of("q", {"a": 2})


def test_cache_paths_follow_the_layout(tmp_path):
    c = Cache(tmp_path)
    assert c.blob(SHA) == tmp_path.resolve() / "blobs" / SHA
    assert c.tree(SHA) == tmp_path.resolve() / "trees" / SHA
    assert c.derived("convert", "k", ".onnx") == tmp_path.resolve() / "derived" / "convert" / "k.onnx"
    assert not (tmp_path / "blobs").exists()  # making paths creates nothing


def test_the_cache_root_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTZOO_CACHE", str(tmp_path / "env"))
    assert Cache().root == (tmp_path / "env").resolve()
    assert Cache(tmp_path / "arg").root == (tmp_path / "arg").resolve()


def test_sha256_file_reads_in_chunks(tmp_path):
    (tmp_path / "big").write_bytes(DATA * 200)
    assert sha256_file(tmp_path / "big") == hashlib.sha256(DATA * 200).hexdigest()


def test_hashed_remembers_a_file_until_it_changes(tmp_path, monkeypatch):
    from quantzoo import cache as cache_mod

    calls = []
    real = cache_mod.sha256_file
    monkeypatch.setattr(cache_mod, "sha256_file", lambda p: calls.append(p) or real(p))
    f = tmp_path / "f"
    f.write_bytes(DATA)
    assert cache_mod.hashed(f) == SHA and cache_mod.hashed(f) == SHA
    assert len(calls) == 1
    data = bytearray(DATA)
    data[10] ^= 0xFF  # same size, other bytes
    f.write_bytes(bytes(data))
    assert cache_mod.hashed(f) == hashlib.sha256(bytes(data)).hexdigest() and len(calls) == 2


def test_hashed_tree_is_the_tree_hash_and_sees_a_changed_file(tmp_path):
    from quantzoo.cache import hashed_tree

    (tmp_path / "t" / "sub").mkdir(parents=True)
    (tmp_path / "t" / "a").write_bytes(b"alpha")
    (tmp_path / "t" / "sub" / "b").write_bytes(b"beta")
    assert hashed_tree(tmp_path / "t") == tree_sha256(tree_listing(tmp_path / "t"))
    (tmp_path / "t" / "sub" / "b").write_bytes(b"bEta")
    assert hashed_tree(tmp_path / "t") == tree_sha256(tree_listing(tmp_path / "t"))


def test_quarantine_moves_an_entry_aside_and_says_where_with_both_hashes(tmp_path, capsys):
    c = Cache(tmp_path / "c")
    tree = c.tree("ab" * 32)
    tree.mkdir(parents=True)
    (tree / "x").write_bytes(b"x")
    tree.with_name(tree.name + ".complete").write_text("ab" * 32 + "\n")
    first = c.quarantine(tree, "ab" * 32, "cd" * 32, "the dataset")
    err = capsys.readouterr().err
    assert f"the dataset does not match its recorded sha256: expected {'ab' * 32} but found {'cd' * 32}" in err
    assert str(first) in err and first.parent == c.root / "quarantine"
    assert (first / "x").read_bytes() == b"x"
    assert not tree.exists() and not tree.with_name(tree.name + ".complete").exists()
    tree.mkdir()
    second = c.quarantine(tree, "ab" * 32, "cd" * 32)
    assert second != first and second.is_dir()  # never overwrites an earlier one
