"""debian sources against real apt-get and a local apt repository: a .deb built in the test with
`dpkg-deb --build`, listed by `dpkg-scanpackages` in a flat file:// repository that apt reads
through its own configuration (APT_CONFIG). No test here needs the network."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from quantzoo import archive
from quantzoo.cache import Cache, tree_listing, tree_sha256
from quantzoo.errors import ChecksumError, FetchError
from quantzoo.fetch import action, describe, fetch_source, upstream_url
from quantzoo.fetch.debian import about_debian, ar_members, data_tar, plain_data_tar, probe_debian

TOOLS = ("apt-get", "dpkg-deb", "dpkg-scanpackages")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                reason=f"needs {', '.join(TOOLS)} (a Debian system with dpkg-dev)")

DOC = "usr/share/doc/qztiny/examples"
FILES = {f"{DOC}/data/photo.jpg": bytes(range(256)) * 40, f"{DOC}/data/b/mask.png": b"mask",
         f"{DOC}/text/word.txt": b"word",
         "usr/share/doc/qztiny/copyright": b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
                                           b"Upstream-Name: qztiny\n\nFiles: *\nCopyright: 2024 Ada\nLicense: BSD-3-Clause\n"
                                           b"\nFiles: debian/*\nLicense: GPL-2+\n"}
PHOTO = FILES[f"{DOC}/data/photo.jpg"]
SOURCE = {"kind": "debian", "package": "qztiny", "version": "1:1.0-1", "member": f"{DOC}/data/photo.jpg",
          "sha256": hashlib.sha256(PHOTO).hexdigest(), "size": len(PHOTO)}


def build_deb(root: Path, compression: str = "xz", version: str = "1:1.0-1") -> Path:
    pkg = root / f"pkg-{compression}"
    for rel, data in FILES.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_bytes(data)
    (pkg / "usr/share/doc/qztiny/changelog").symlink_to("examples/text/word.txt")  # debs hold links
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN" / "control").write_text(
        f"Package: qztiny\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        "Homepage: https://example.org/qztiny\nDescription: a tiny test package\n more text\n")
    out = root / f"qztiny-{compression}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(pkg), str(out)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def apt_repo(tmp_path_factory):
    """A flat apt repository holding the test .deb, and an apt configuration that reads only it."""
    root = tmp_path_factory.mktemp("apt")
    repo = root / "repo"
    repo.mkdir()
    shutil.copy(build_deb(root), repo / "qztiny_1.0-1_all.deb")
    packages = subprocess.run(["dpkg-scanpackages", ".", "/dev/null"], cwd=repo, check=True,
                              capture_output=True, text=True).stdout
    (repo / "Packages").write_text(packages)
    for d in ("lists/partial", "cache/archives/partial"):
        (root / d).mkdir(parents=True)
    (root / "sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
    conf = root / "apt.conf"
    conf.write_text("\n".join([
        f'Dir::Etc::SourceList "{root / "sources.list"}";', f'Dir::Etc::SourceParts "{root / "no-parts"}";',
        f'Dir::State::Lists "{root / "lists"}";', f'Dir::Cache "{root / "cache"}";',
        'Dir::Cache::pkgcache "";', 'Dir::Cache::srcpkgcache "";', 'Acquire::Languages "none";',
        'Debug::NoLocking "true";', ""]))
    env = {"APT_CONFIG": str(conf), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    proc = subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"apt-get update of a local repository failed: {proc.stderr[-300:]}"
    return conf


@pytest.fixture
def apt_env(apt_repo, monkeypatch):
    monkeypatch.setenv("APT_CONFIG", str(apt_repo))
    return apt_repo


@pytest.fixture
def cache(tmp_path):
    return Cache(tmp_path / "cache")


def test_a_member_is_downloaded_by_apt_once_and_then_is_a_pure_cache_hit(apt_env, cache, monkeypatch):
    path = fetch_source(SOURCE, cache)
    assert path == cache.blob(SOURCE["sha256"]) and path.read_bytes() == PHOTO
    kept = [p.relative_to(cache.downloads).as_posix() for p in (cache.downloads / "debian").glob("*/*.deb")]
    assert kept == ["debian/qztiny_1%3a1.0-1/qztiny_1%3a1.0-1_all.deb"]  # apt writes an epoch's colon as %3a

    def no_subprocess(*a, **k):
        raise AssertionError("a kept .deb or a cache hit must not run apt-get")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    word = {**SOURCE, "member": f"{DOC}/text/word.txt", "sha256": hashlib.sha256(b"word").hexdigest(), "size": 4}
    assert fetch_source(word, cache).read_bytes() == b"word"  # from the kept .deb
    assert action(SOURCE, cache) == "hit" and fetch_source(SOURCE, cache) == path


def test_a_glob_member_lands_as_a_tree_below_its_root(apt_env, cache):
    listing = [(rel.removeprefix(f"{DOC}/data/"), hashlib.sha256(d).hexdigest(), len(d))
               for rel, d in FILES.items() if rel.startswith(f"{DOC}/data/")]
    src = {**SOURCE, "member": f"{DOC}/data/**", "sha256": tree_sha256(listing), "size": sum(x[2] for x in listing)}
    tree = fetch_source(src, cache)
    assert (tree / "b" / "mask.png").read_bytes() == b"mask" and tree_sha256(tree_listing(tree)) == src["sha256"]


def test_a_glob_that_takes_in_a_link_is_refused_and_names_it(apt_env, cache):
    with pytest.raises(FetchError, match="'./usr/share/doc/qztiny/changelog' is a link or device file"):
        fetch_source({**SOURCE, "member": "usr/share/doc/qztiny/**"}, cache)


def test_a_member_that_is_not_there_lists_members_near_it(apt_env, cache):
    with pytest.raises(FetchError, match=r"matches './usr/share/doc/qztiny/examples/data/nope.jpg'.* Members under "
                                         r"'usr/share/doc/qztiny/examples/data': \['./usr/share/doc/qztiny/examples/data/b/mask.png'"):
        fetch_source({**SOURCE, "member": f"{DOC}/data/nope.jpg"}, cache)


def test_a_wrong_hash_names_the_member_and_the_package_and_writes_nothing(apt_env, cache):
    with pytest.raises(ChecksumError) as e:
        fetch_source({**SOURCE, "sha256": "0" * 64}, cache)
    assert f"'{DOC}/data/photo.jpg'" in str(e.value) and "qztiny_1%3a1.0-1_all.deb" in str(e.value)
    assert SOURCE["sha256"] in str(e.value) and not cache.blob("0" * 64).exists()


def test_an_unknown_version_is_a_clear_error_and_leaves_no_download(apt_env, cache):
    with pytest.raises(FetchError) as e:
        fetch_source({**SOURCE, "version": "9.9"}, cache)
    assert "apt-get could not download qztiny=9.9" in str(e.value) and "apt-cache policy qztiny" in str(e.value)
    assert "Version '9.9' for 'qztiny' was not found" in str(e.value)
    assert list((cache.downloads / "debian").iterdir()) == []


def test_a_machine_without_apt_is_told_what_to_install(cache, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    with pytest.raises(FetchError, match="apt-get is not installed .* debian sources need it"):
        fetch_source(SOURCE, cache)


@pytest.mark.parametrize("compression", ["xz", "gzip", "none", "zstd"])
def test_the_data_archive_is_read_out_of_the_deb_whatever_its_compression(tmp_path, compression):
    deb = build_deb(tmp_path, compression)
    names = [name for name, _, _ in ar_members(deb)]
    assert names[0] == "debian-binary" and names[1].startswith("control.tar") and names[2].startswith("data.tar")
    out = tmp_path / "out"
    out.mkdir()
    written = archive.extract(data_tar(deb, out), f"./{DOC}/text/word.txt", tmp_path / "x")
    assert [p.read_bytes() for p in written] == [b"word"]


@pytest.mark.parametrize("compression", ["xz", "gzip", "none", "zstd"])
def test_a_package_s_data_archive_is_decompressed_once_per_process_for_all_its_members(tmp_path, compression):
    deb = build_deb(tmp_path, compression)
    cache = Cache(tmp_path / "cache")
    plain = plain_data_tar(deb, cache)
    assert plain.name == "data.tar" and plain.read_bytes()[257:262] == b"ustar"  # a tar, not compressed
    assert plain_data_tar(deb, cache) == plain  # the next member of this package reads the same file
    seen = [archive.extract(plain, f"./{name}", tmp_path / "x" / str(i))[0].read_bytes()
            for i, name in enumerate(FILES)]
    assert seen == list(FILES.values())
    plain.unlink()  # gone (a cleaned cache): made again, not a dangling path
    assert plain_data_tar(deb, cache).is_file()


def test_a_file_that_is_not_a_deb_says_so(tmp_path):
    bad = tmp_path / "x.deb"
    bad.write_bytes(b"PK\x03\x04 not an ar archive")
    with pytest.raises(FetchError, match="x.deb is not a Debian package"):
        list(ar_members(bad))


def test_quantzoo_add_reads_one_member_and_what_the_package_says(apt_env, cache, tmp_path):
    got = probe_debian({k: v for k, v in SOURCE.items() if k not in ("sha256", "size")}, cache, None, tmp_path)
    assert tmp_path in got.parents and got.read_bytes() == PHOTO
    assert about_debian(SOURCE, cache) == {"license": "BSD-3-Clause", "homepage": "https://example.org/qztiny",
                                           "license_text": "see /usr/share/doc/qztiny/copyright", "authors": [],
                                           "summary": "a tiny test package"}


def test_describe_and_upstream_url():
    assert describe(SOURCE) == f"debian:qztiny=1:1.0-1:{DOC}/data/photo.jpg"
    assert upstream_url(SOURCE) == "https://snapshot.debian.org/binary/qztiny/"


@pytest.mark.network
def test_messi_from_the_debian_archive(catalog_cache):
    """Into the catalog's cache (the user cache): the 96 MB .deb is downloaded once per machine."""
    src = {"kind": "debian", "package": "opencv-doc", "version": "4.6.0+dfsg-12",
           "member": "usr/share/doc/opencv-doc/examples/data/messi5.jpg",
           "sha256": "1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9", "size": 72937}
    assert fetch_source(src, catalog_cache).stat().st_size == 72937
