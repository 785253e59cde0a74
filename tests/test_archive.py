"""Members out of wheels, sdists and archives: selection by glob, and refusing unsafe members."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from quantzoo.archive import extract, glob_root, match
from quantzoo.errors import FetchError


def _zip(path, members: dict[str, bytes], links: dict[str, str] | None = None):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16  # a symbolic link
            z.writestr(info, target)
    return path


def _tar(path, members: dict[str, bytes], symlink: tuple[str, str] | None = None):
    with tarfile.open(path, "w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink[0])
            info.type, info.linkname = tarfile.SYMTYPE, symlink[1]
            t.addfile(info)
    return path


def test_a_single_member_lands_under_its_base_name(tmp_path):
    arc = _zip(tmp_path / "p.whl", {"pkg/models/m.onnx": b"model", "pkg/other.py": b"x"})
    written = extract(arc, "pkg/models/m.onnx", tmp_path / "out")
    assert written == [tmp_path / "out" / "m.onnx"] and written[0].read_bytes() == b"model"


def test_a_glob_keeps_paths_below_its_root(tmp_path):
    arc = _tar(tmp_path / "p.tar.gz", {"p-1/tests/a.txt": b"a", "p-1/tests/sub/b.txt": b"b", "p-1/setup.py": b""})
    extract(arc, "p-1/tests/**", tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.txt")) == \
        ["a.txt", "sub/b.txt"]


def test_star_stays_inside_one_segment_and_double_star_crosses_them():
    assert match("a/*.txt", "a/x.txt") and not match("a/*.txt", "a/b/x.txt")
    assert match("a/**/x.txt", "a/b/c/x.txt") and match("a/**/x.txt", "a/x.txt")
    assert glob_root("a/b/*.png") == "a/b"


def test_a_zip_member_with_dotdot_is_refused_and_nothing_is_extracted(tmp_path):
    arc = _zip(tmp_path / "evil.zip", {"ok.txt": b"fine", "../../escaped.txt": b"gotcha"})
    with pytest.raises(FetchError) as e:
        extract(arc, "**", tmp_path / "out")
    assert "'../../escaped.txt'" in str(e.value) and "outside" in str(e.value) and "evil.zip" in str(e.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.rglob("escaped.txt"))


def test_an_absolute_tar_member_is_refused(tmp_path):
    arc = _tar(tmp_path / "evil.tar.gz", {"/etc/evil": b"x"})
    with pytest.raises(FetchError, match="would land outside the destination"):
        extract(arc, "**", tmp_path / "out")


def test_links_are_refused_in_zips_and_tars(tmp_path):
    z = _zip(tmp_path / "l.zip", {"a.txt": b"a"}, links={"link": "/etc/passwd"})
    with pytest.raises(FetchError, match="'link' is a symbolic link"):
        extract(z, "**", tmp_path / "out")
    t = _tar(tmp_path / "l.tar.gz", {"a.txt": b"a"}, symlink=("link", "/etc/passwd"))
    with pytest.raises(FetchError, match="'link' is a link or device file"):
        extract(t, "**", tmp_path / "out2")


def test_a_link_the_pattern_does_not_select_is_left_alone(tmp_path):
    t = _tar(tmp_path / "l.tar.gz", {"pkg/a.txt": b"a"}, symlink=("pkg/doc/link", "/etc/passwd"))
    assert [p.read_bytes() for p in extract(t, "pkg/a.txt", tmp_path / "out")] == [b"a"]
    assert [p.name for p in extract(t, "pkg/*.txt", tmp_path / "out2")] == ["a.txt"]
    with pytest.raises(FetchError, match="'pkg/doc/link' is a link or device file"):
        extract(t, "pkg/**", tmp_path / "out3")
    assert not (tmp_path / "out3").exists()


def test_a_pattern_that_matches_nothing_lists_members_near_it(tmp_path):
    arc = _zip(tmp_path / "p.whl", {"pkg/models/a.onnx": b"a"})
    with pytest.raises(FetchError) as e:
        extract(arc, "pkg/models/b.onnx", tmp_path / "out")
    assert "no member of p.whl matches 'pkg/models/b.onnx'" in str(e.value)
    assert "pkg/models/a.onnx" in str(e.value)


def test_a_file_that_is_no_archive_says_so(tmp_path):
    (tmp_path / "x.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(FetchError, match="cannot open archive .*x.tar.gz"):
        extract(tmp_path / "x.tar.gz", "**", tmp_path / "out")
