"""The downloader against a real HTTP server on 127.0.0.1 that cuts, refuses and misbehaves."""

from __future__ import annotations

import hashlib

import pytest

from httpserver import LocalServer
from quantzoo.download import download, get_bytes
from quantzoo.errors import ChecksumError, FetchError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB of model-ish bytes
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "dl" / PAYLOAD_SHA


def leftovers(dest) -> list[str]:
    """Every file next to `dest`: what a failed download must not leave behind."""
    folder = dest.parent
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_transfer_cut_in_the_middle_resumes_with_range(server, dest):
    url = server.add("/m.onnx", PAYLOAD, cut_after=[5 * 65536])
    path = download(url, dest, PAYLOAD_SHA, len(PAYLOAD), backoff=0.01)
    assert path.read_bytes() == PAYLOAD
    ranges = [h.get("Range") for _, p, h in server.requests if p == "/m.onnx"]
    assert ranges == [None, f"bytes={5 * 65536}-"]
    etag = server.routes["/m.onnx"].etag
    assert [h.get("If-Range") for _, _, h in server.requests][1] == etag
    assert leftovers(dest) == [PAYLOAD_SHA]  # no .part, no .part.json


def test_a_server_that_ignores_range_restarts_the_transfer_cleanly(server, dest):
    url = server.add("/m.onnx", PAYLOAD, cut_after=[200_000], ignore_range=True)
    path = download(url, dest, PAYLOAD_SHA, len(PAYLOAD), backoff=0.01)
    assert path.read_bytes() == PAYLOAD
    assert server.hits("/m.onnx") == 2


def test_a_503_is_retried_and_then_succeeds(server, dest):
    url = server.add("/m.onnx", PAYLOAD, fail_with=[503, 503])
    assert download(url, dest, PAYLOAD_SHA, len(PAYLOAD), backoff=0.01).read_bytes() == PAYLOAD
    assert server.hits("/m.onnx") == 3


def test_retries_give_up_with_a_message_naming_the_url(server, dest):
    url = server.add("/m.onnx", PAYLOAD, fail_with=[503] * 10)
    with pytest.raises(FetchError) as e:
        download(url, dest, PAYLOAD_SHA, retries=2, backoff=0.01)
    assert url in str(e.value) and "503" in str(e.value) and "3 attempts" in str(e.value)


def test_a_404_is_not_retried_and_a_mirror_is_tried_next(server, dest):
    good = server.add("/mirror/m.onnx", PAYLOAD)
    path = download(server.url("/gone.onnx"), dest, PAYLOAD_SHA, len(PAYLOAD), mirrors=[good])
    assert path.read_bytes() == PAYLOAD
    assert server.hits("/gone.onnx") == 1


def test_when_every_location_fails_each_one_is_named(server, dest):
    with pytest.raises(FetchError) as e:
        download(server.url("/a.onnx"), dest, PAYLOAD_SHA, mirrors=[server.url("/b.onnx")])
    msg = str(e.value)
    assert "every location failed" in msg and "/a.onnx" in msg and "/b.onnx" in msg and "HTTP 404" in msg


def test_wrong_bytes_name_both_hashes_and_leave_nothing_behind(server, dest):
    wrong = PAYLOAD[:-1] + b"\x00"
    url = server.add("/m.onnx", wrong)
    with pytest.raises(ChecksumError) as e:
        download(url, dest, PAYLOAD_SHA, len(PAYLOAD))
    msg = str(e.value)
    assert PAYLOAD_SHA in msg and hashlib.sha256(wrong).hexdigest() in msg and url in msg
    assert "Deleted" in msg and "update the manifest" in msg
    assert leftovers(dest) == []


def test_a_size_other_than_the_manifests_is_refused_before_the_body_is_read(server, dest):
    url = server.add("/m.onnx", PAYLOAD)
    with pytest.raises(FetchError, match=f"is {len(PAYLOAD)} bytes but the manifest expects 5 bytes"):
        download(url, dest, PAYLOAD_SHA, 5)
    assert leftovers(dest) == []


def test_an_html_page_served_instead_of_the_model_is_refused(server, dest):
    page = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>...</body></html>"
    url = server.add("/m.onnx", page, content_type="text/html; charset=utf-8")
    with pytest.raises(FetchError) as e:
        download(url, dest, PAYLOAD_SHA)
    assert "HTML page" in str(e.value) and url in str(e.value)
    assert leftovers(dest) == []


def test_a_git_lfs_pointer_served_instead_of_the_model_is_refused(server, dest):
    pointer = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:" + PAYLOAD_SHA.encode() + b"\nsize 1048576\n")
    url = server.add("/m.onnx", pointer, content_type="text/plain")
    with pytest.raises(FetchError, match="Git LFS pointer"):
        download(url, dest, PAYLOAD_SHA)
    assert leftovers(dest) == []


def test_a_download_with_progress_on_completes_and_closes_its_bar(server, dest, capsys):
    url = server.add("/m.onnx", PAYLOAD)
    assert download(url, dest, PAYLOAD_SHA, len(PAYLOAD), progress=True).read_bytes() == PAYLOAD
    from quantzoo import progress

    assert progress._shared["display"] is None and progress._shared["users"] == 0


# --- get_bytes: small documents ---------------------------------------------------------------

def test_get_bytes_returns_the_body(server):
    assert get_bytes(server.add("/index.json", b'{"a": 1}', content_type="application/json")) == b'{"a": 1}'


def test_get_bytes_retries_a_503_and_a_429(server):
    url = server.add("/index.json", b"{}", fail_with=[503, 429])
    assert get_bytes(url, backoff=0.01) == b"{}"
    assert server.hits("/index.json") == 3


def test_get_bytes_does_not_retry_a_404_and_says_what_was_missing_and_what_to_do(server):
    url = server.url("/zoo/index.json")
    with pytest.raises(FetchError) as e:
        get_bytes(url, what="index.json", hint="Is the catalog URL the root of a quantzoo site?")
    assert str(e.value) == f"no index.json at {url} (HTTP 404). Is the catalog URL the root of a quantzoo site?"
    assert server.hits("/zoo/index.json") == 1


def test_get_bytes_does_not_retry_a_403(server):
    url = server.add("/index.json", b"{}", fail_with=[403, 403])
    with pytest.raises(FetchError, match=f"HTTP 403 .* from {url}: the file could not be read"):
        get_bytes(url)
    assert server.hits("/index.json") == 1


def test_get_bytes_gives_up_after_its_retries_naming_the_attempts(server):
    url = server.add("/index.json", b"{}", fail_with=[502] * 5)
    with pytest.raises(FetchError) as e:
        get_bytes(url, retries=2, backoff=0.01)
    assert str(e.value).startswith(f"HTTP 502 Bad Gateway from {url} (after 3 attempts).")
    assert server.hits("/index.json") == 3


def test_get_bytes_of_an_unreachable_host_names_it():
    with pytest.raises(FetchError, match=r"cannot reach http://127.0.0.1:9/index.json: ConnectionError"):
        get_bytes("http://127.0.0.1:9/index.json", retries=1, backoff=0.01, timeout=2)
