"""A signed catalog: keygen, build --sign-key, and list/info/pull/load with a trusted key refusing
an unsigned or altered catalog (local folder and HTTP on loopback)."""

from __future__ import annotations

import os
import stat

import pytest

from httpserver import LocalServer
from quantzoo.cli import main
from tinyzoo import dataset, model


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """A real tiny build signed with a fresh key; returns (site, private key, public key)."""
    root = tmp_path_factory.mktemp("signed")
    key = root / "keys" / "zoo"
    assert main(["keygen", str(key)]) == 0
    zoo = root / "zoo"
    (zoo / "datasets").mkdir(parents=True)
    dataset(zoo, "vectors", (64,), 8, seed=1)
    model(zoo, "tiny-classifier", "classifier", variants=["linear-8"])
    site = root / "site"
    assert main(["build", "--zoo", str(zoo), "--cache", str(root / "cache"), "--site-dir", str(site),
                 "--jobs", "1", "--sign-key", str(key)]) == 0
    return site, key, key.with_name("zoo.pub")


def copy_site(site, dest):
    import shutil

    shutil.copytree(site, dest)
    return dest


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path, capsys):
    key = tmp_path / "k"
    assert main(["keygen", str(key)]) == 0
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert (tmp_path / "k.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = key.read_bytes()
    assert main(["keygen", str(key)]) == 1
    assert "never overwrites" in capsys.readouterr().err and key.read_bytes() == before


def test_a_signed_build_verifies_with_its_public_key(signed, capsys):
    site, _, pub = signed
    assert (site / "index.json.sig").is_file()
    assert main(["list", "--catalog", str(site), "--trust-key", str(pub)]) == 0
    assert "tiny-classifier" in capsys.readouterr().out
    assert main(["info", "tiny-classifier", "--catalog", str(site), "--trust-key", str(pub)]) == 0


def test_an_altered_index_is_refused_before_anything_is_read(signed, tmp_path, capsys):
    site, _, pub = signed
    bad = copy_site(site, tmp_path / "bad")
    index = bad / "index.json"
    index.write_bytes(index.read_bytes().replace(b'"tiny-classifier"', b'"tiny-classifieR"', 1))
    out = tmp_path / "out"
    assert main(["pull", "tiny-classifier", "--catalog", str(bad), "--trust-key", str(pub), "-o", str(out),
                 "--cache", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err
    assert "does not match its signature" in err and str(pub) in err
    assert not out.exists() and not (tmp_path / "c").exists()


def test_an_unsigned_catalog_is_refused_with_a_trusted_key_and_read_without_one(signed, tmp_path, capsys):
    site, _, pub = signed
    unsigned = copy_site(site, tmp_path / "unsigned")
    (unsigned / "index.json.sig").unlink()
    assert main(["list", "--catalog", str(unsigned), "--trust-key", str(pub)]) == 1
    assert "unsigned" in capsys.readouterr().err
    assert main(["list", "--catalog", str(unsigned)]) == 0


def test_another_maintainers_key_does_not_verify(signed, tmp_path, capsys):
    site, _, _ = signed
    other = tmp_path / "other"
    assert main(["keygen", str(other)]) == 0
    assert main(["list", "--catalog", str(site), "--trust-key", str(tmp_path / "other.pub")]) == 1
    assert "does not match its signature" in capsys.readouterr().err


def test_the_trusted_key_comes_from_the_environment_too_over_http(signed, tmp_path, monkeypatch, capsys):
    import quantzoo

    site, _, pub = signed
    monkeypatch.setenv("QUANTZOO_TRUST_KEY", str(pub))
    with LocalServer() as srv:
        srv.serve_dir(site)
        path = quantzoo.load("tiny-classifier", "linear-8", catalog=srv.url("/"), cache=tmp_path / "c")
        assert path.is_file()
        bad = copy_site(site, tmp_path / "bad")
        (bad / "index.json.sig").unlink()
    with LocalServer() as srv:
        srv.serve_dir(bad)
        with pytest.raises(quantzoo.QuantzooError, match="unsigned"):
            quantzoo.load("tiny-classifier", "linear-8", catalog=srv.url("/"), cache=tmp_path / "c2")


def test_a_bad_signing_key_is_a_usage_error_before_any_build_work(tmp_path, capsys):
    not_a_key = tmp_path / "k"
    not_a_key.write_text("hello\n")
    assert main(["build", "--zoo", str(tmp_path / "nozoo"), "--site-dir", str(tmp_path / "s"),
                 "--sign-key", str(not_a_key)]) == 2
    assert "is not a PEM private key" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
