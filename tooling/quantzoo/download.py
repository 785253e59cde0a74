"""One file over HTTP(S): streamed, hashed while streaming, resumed, retried, verified.

The partial download lives next to its destination as ``<dest>.part`` with a small
``<dest>.part.json`` holding the validator (ETag or Last-Modified) it was started under. A
retry asks for the rest with ``Range: bytes=N-`` and ``If-Range``; a server that answers 200
instead of 206 is sending the whole file again, so the partial is dropped and the transfer
restarts from zero. A ``Content-Range`` that does not start at N is an error, never a silent
splice. Nothing reaches `dest` until the sha256 (and size, when known) match (`cache.commit_file`).
`get_bytes` reads a small document (an index.json) with the same retry policy. This module is
the only HTTP code in quantzoo; see ARCHITECTURE.md, "Downloads".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .cache import commit_file
from .errors import ChecksumError, FetchError
from .progress import transfer_reporter

CHUNK = 1 << 16
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
LFS_MAGIC = b"version https://git-lfs.github.com/spec/"


@dataclass
class Transfer:
    """State of one download across attempts."""

    url: str
    received: int = 0
    total: int | None = None
    attempts: int = 0
    restarts: int = 0
    resumed: int = 0

    def is_incomplete(self) -> bool:
        return self.total is None or self.received < self.total


def sniff_wrong_content(head: bytes, content_type: str | None) -> str | None:
    """Why the first bytes of a response are not a model file, or None when they may be.

    >>> sniff_wrong_content(b"<!DOCTYPE html><html>", "text/html")
    'an HTML page'
    >>> sniff_wrong_content(b"version https://git-lfs.github.com/spec/v1\\noid sha256:ab", None)
    'a Git LFS pointer file'
    >>> sniff_wrong_content(b"\\x08\\x07\\x12\\x07pytorch", "application/octet-stream") is None
    True
    """
    start = head.lstrip()[:64].lower()
    if head.startswith(LFS_MAGIC):
        return "a Git LFS pointer file"
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml version")) and b"html" in head[:512].lower():
        return "an HTML page"
    if content_type and content_type.split(";")[0].strip().lower() == "text/html":
        return "an HTML page"
    return None


def _wants_text(url: str) -> bool:
    return url.lower().split("?")[0].endswith((".html", ".htm", ".txt", ".md", ".json", ".yaml", ".yml"))


def _read_meta(meta: Path) -> dict:
    try:
        return json.loads(meta.read_text())
    except (OSError, ValueError):
        return {}


def download(url: str, dest: str | os.PathLike, sha256: str, size: int | None = None, *,
             mirrors: tuple[str, ...] | list[str] = (), retries: int = 4, timeout: float = 30.0,
             backoff: float = 0.5, progress: bool | None = None, session=None) -> Path:
    """Download `url` (then each mirror) to `dest`, verified against `sha256` and `size`.

    Retries connection errors, timeouts and 408/429/5xx with exponential backoff, resuming the
    partial file each time. Raises FetchError (or ChecksumError) naming the URL, what was
    expected and what was found; on a checksum mismatch the download is deleted.
    """
    import requests

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if progress is None:
        progress = sys.stderr.isatty()
    http = session or requests.Session()
    errors: list[str] = []
    for candidate in [url, *mirrors]:
        try:
            return _download_one(http, candidate, dest, sha256, size, retries=retries, timeout=timeout,
                                 backoff=backoff, progress=progress)
        except ChecksumError:
            raise
        except FetchError as e:
            errors.append(str(e))
    if len(errors) == 1:
        raise FetchError(errors[0])
    raise FetchError(f"every location failed for {dest.name}:\n" + "\n".join(f"  - {e}" for e in errors))


def get_bytes(url: str, *, timeout: float = 30.0, retries: int = 2, what: str = "file",
              hint: str = "Check the URL and your connection.", backoff: float = 0.5,
              accept: str = "*/*", missing_ok: bool = False) -> bytes | None:
    """The body of a small document at `url` (an index.json), read whole into memory.

    With `missing_ok`, a 404 returns None instead of raising (an optional file, such as a
    catalog's signature).

    Connection errors, timeouts and 408/429/5xx are retried `retries` times with exponential
    backoff, like `download`; other 4xx are not. Failures raise FetchError naming `what`, the URL
    and the status, followed by `hint` (the next step).

    >>> get_bytes("http://127.0.0.1:9/index.json", what="index.json", retries=0, timeout=2,
    ...           hint="Is the catalog URL right?")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    quantzoo.errors.FetchError: cannot reach http://127.0.0.1:9/index.json: ConnectionError: ... (after 1 attempts). Is the catalog URL right?
    """
    import requests

    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            r = requests.get(url, timeout=timeout, headers={"Accept": accept})
        except (requests.ConnectionError, requests.Timeout) as e:
            last = f"cannot reach {url}: {e.__class__.__name__}: {e}"
            continue
        except requests.RequestException as e:
            raise FetchError(f"cannot read {url}: {e}. {hint}") from None
        if r.status_code in RETRY_STATUS:
            last = f"HTTP {r.status_code} {r.reason} from {url}"
            continue
        if r.status_code == 404:
            if missing_ok:
                return None
            raise FetchError(f"no {what} at {url} (HTTP 404). {hint}")
        if r.status_code >= 400:
            raise FetchError(f"HTTP {r.status_code} {r.reason} from {url}: the {what} could not be read. {hint}")
        return r.content
    raise FetchError(f"{last} (after {retries + 1} attempts). {hint}")


def _download_one(http, url: str, dest: Path, sha256: str, size: int | None, *, retries: int, timeout: float,
                  backoff: float, progress: bool) -> Path:
    state = Transfer(url=url, total=size)
    report = transfer_reporter(dest.name[:16] if len(dest.name) < 40 else dest.name[:12] + "…", progress)
    try:
        return _transfer(http, url, dest, sha256, size, state, report, retries=retries, timeout=timeout,
                         backoff=backoff)
    finally:
        report.close()


def _transfer(http, url: str, dest: Path, sha256: str, size: int | None, state: Transfer, report, *,
              retries: int, timeout: float, backoff: float) -> Path:
    import requests

    part = dest.with_name(dest.name + ".part")
    meta = dest.with_name(dest.name + ".part.json")
    last_error = ""
    while True:
        state.attempts += 1
        have = part.stat().st_size if part.exists() else 0
        info = _read_meta(meta) if have else {}
        if have and info.get("url") != url:
            have = 0  # a partial from another location cannot be trusted to splice
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
            if info.get("validator"):
                headers["If-Range"] = info["validator"]
        try:
            with http.get(url, headers=headers, stream=True, timeout=timeout, allow_redirects=True) as r:
                if r.status_code in RETRY_STATUS:
                    raise _Retry(f"HTTP {r.status_code} {r.reason} from {url}")
                if r.status_code == 416 and have:
                    _drop(part, meta)
                    state.restarts += 1
                    continue
                if r.status_code >= 400:
                    raise FetchError(
                        f"HTTP {r.status_code} {r.reason} from {url}: the server refused the file. "
                        "Check the URL in the manifest, or add a mirror.")
                if have and r.status_code == 206:
                    start = _content_range_start(r.headers.get("Content-Range"))
                    if start != have:
                        _drop(part, meta)
                        raise FetchError(
                            f"resume of {url} went wrong: asked for bytes from {have}, server sent a "
                            f"Content-Range starting at {start!r}. The partial download was deleted; run again.")
                    mode = "ab"
                    state.resumed += 1
                    digest = _hash_of(part)  # the kept bytes, once; the rest is hashed as it streams
                else:
                    if have:
                        state.restarts += 1  # server ignored Range (or the file changed): start over
                    have = 0
                    mode = "wb"
                    digest = hashlib.sha256()
                    validator = r.headers.get("ETag") or r.headers.get("Last-Modified")
                    if validator and validator.startswith("W/"):
                        validator = None  # weak validators may not be used with If-Range
                    meta.write_text(json.dumps({"url": url, "validator": validator}))
                length = r.headers.get("Content-Length")
                if mode == "wb" and length and length.isdigit():
                    state.total = int(length)
                wrong_size = mode == "wb" and size is not None and state.total is not None and state.total != size
                state.received = have
                first = mode == "wb"
                with open(part, mode) as f:
                    for chunk in r.iter_content(CHUNK):
                        if not chunk:
                            continue
                        if first:
                            first = False
                            why = None if _wants_text(url) else sniff_wrong_content(chunk, r.headers.get("Content-Type"))
                            if why:
                                f.close()
                                _drop(part, meta)
                                raise FetchError(
                                    f"{url} served {why} instead of the file (expected sha256 {sha256}). "
                                    "The link probably points at a web page or at a Git LFS pointer rather than "
                                    "the raw file: use the direct download URL in the manifest.")
                            if wrong_size:
                                break
                        f.write(chunk)
                        digest.update(chunk)
                        state.received += len(chunk)
                        report(state.received, state.total)
                if wrong_size:
                    _drop(part, meta)
                    raise FetchError(
                        f"{url} is {state.total} bytes but the manifest expects {size} bytes "
                        f"(sha256 {sha256}): the server has a different file. Check the URL, or update the "
                        "manifest if the file changed upstream on purpose.")
                if state.total is not None and state.received < state.total:
                    raise _Retry(f"connection closed after {state.received} of {state.total} bytes from {url}")
            break
        except (_Retry, requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
            last_error = str(e)
            if state.attempts > retries:
                raise FetchError(
                    f"giving up on {url} after {state.attempts} attempts: {last_error}. "
                    f"{part.stat().st_size if part.exists() else 0} bytes are kept and the next run resumes "
                    "from there.") from None
            time.sleep(backoff * (2 ** (state.attempts - 1)))
        except requests.RequestException as e:
            raise FetchError(f"cannot download {url}: {e}") from None

    try:
        return commit_file(part, dest, sha256, size, url, got=digest.hexdigest(),
                           next_step="If the file changed upstream on purpose, update the manifest.")
    finally:
        _drop(meta)  # kept or deleted, the download is over


class _Retry(Exception):
    pass


def _content_range_start(value: str | None) -> int | None:
    m = re.match(r"bytes (\d+)-", value or "")
    return int(m.group(1)) if m else None


def _hash_of(path: Path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h


def _drop(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
