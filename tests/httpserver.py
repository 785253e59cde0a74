"""A real HTTP server on 127.0.0.1 for download tests, with scripted misbehaviour.

    with LocalServer() as srv:
        srv.add("/model.onnx", data, cut_after=[1000])   # first response dies after 1000 bytes
        url = srv.url("/model.onnx")

Per-path behaviour:
- ``cut_after``: a list; each entry is consumed by one full-body response, which sends that many
  bytes and then drops the connection (the declared Content-Length promised more).
- ``fail_with``: a list of status codes answered (one per request) before serving normally.
- ``ignore_range``: always answer 200 with the whole body, whatever Range says.
- ``content_type``: the Content-Type header (default application/octet-stream).
- ``delay``: seconds to wait before sending the body (to make two clients overlap).
It can also serve a folder (`serve_dir`) for whole-site tests, and a PEP 503 package index
(`add_simple_index`, with wheels made by `wheel`) so pip runs against loopback, not PyPI. Every
request is logged in `requests` as (method, path, headers) so tests can see what the client asked for.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Route:
    data: bytes
    cut_after: list[int] = field(default_factory=list)
    fail_with: list[int] = field(default_factory=list)
    ignore_range: bool = False
    content_type: str = "application/octet-stream"
    delay: float = 0.0

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.data).hexdigest()[:16] + '"'


class LocalServer:
    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.root: Path | None = None
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self._serve(head=True)

            def do_GET(self):
                self._serve(head=False)

            def _serve(self, head: bool):
                path = self.path.split("?")[0]
                with server._lock:
                    server.requests.append((self.command, path, dict(self.headers)))
                    route = server.routes.get(path)
                    if route is None and server.root is not None:
                        route = server._file_route(path)
                    if route is None:
                        self._plain(404, b"not found")
                        return
                    if route.fail_with:
                        self._plain(route.fail_with.pop(0), b"try again later")
                        return
                    cut = None
                data = route.data
                start = 0
                rng = self.headers.get("Range")
                if_range = self.headers.get("If-Range")
                partial = bool(rng) and not route.ignore_range and (if_range is None or if_range == route.etag)
                if partial:
                    m = re.match(r"bytes=(\d+)-$", rng)
                    start = int(m.group(1)) if m else 0
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                    with server._lock:
                        if route.cut_after:
                            cut = route.cut_after.pop(0)
                body = data[start:]
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", route.etag)
                self.send_header("Accept-Ranges", "none" if route.ignore_range else "bytes")
                self.end_headers()
                if head:
                    return
                if route.delay:
                    import time

                    time.sleep(route.delay)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        import socket

                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                self.wfile.write(body)

            def _plain(self, code: int, body: bytes):
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _file_route(self, path: str) -> Route | None:
        rel = path.lstrip("/")
        target = (self.root / rel) if rel else self.root
        if target.is_dir():
            target = target / "index.html"
        try:
            target.resolve().relative_to(self.root.resolve())
        except ValueError:
            return None
        if not target.is_file():
            return None
        ctype = {".html": "text/html", ".json": "application/json", ".js": "text/javascript",
                 ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}.get(target.suffix,
                                                                                       "application/octet-stream")
        return Route(target.read_bytes(), content_type=ctype)

    def add(self, path: str, data: bytes, **behaviour) -> str:
        self.routes[path] = Route(data, **behaviour)
        return self.url(path)

    def add_simple_index(self, dists: dict[str, bytes]) -> str:
        """Serve distribution files {file name: bytes} as a PEP 503 simple index; its URL for
        PIP_INDEX_URL. Project names are read from the file names (``name-version-…``)."""
        projects: dict[str, list[str]] = {}
        for name, data in dists.items():
            self.add(f"/files/{name}", data)
            project = re.sub(r"[-_.]+", "-", name.split("-")[0]).lower()
            sha = hashlib.sha256(data).hexdigest()
            projects.setdefault(project, []).append(f'<a href="/files/{name}#sha256={sha}">{name}</a><br>')
        for project, links in projects.items():
            page = f"<!DOCTYPE html><html><body>{''.join(links)}</body></html>"
            self.add(f"/simple/{project}/", page.encode(), content_type="text/html")
        index = "".join(f'<a href="/simple/{p}/">{p}</a><br>' for p in sorted(projects))
        self.add("/simple/", f"<!DOCTYPE html><html><body>{index}</body></html>".encode(), content_type="text/html")
        return self.url("/simple/")

    def serve_dir(self, root: str | Path) -> None:
        self.root = Path(root)

    def url(self, path: str = "/") -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for _, p, _ in self.requests if p == path)

    def __enter__(self) -> "LocalServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def wheel(name: str, version: str, files: dict[str, bytes], metadata: str = "") -> tuple[str, bytes]:
    """A minimal valid pure-Python wheel holding `files`: (its file name, its bytes). `metadata`:
    more METADATA header lines (``License-Expression: MIT\n``...).

    The bytes are the same on every call (fixed timestamps), so a test can pin their sha256.
    """
    dist = re.sub(r"[-_.]+", "_", name)
    info = f"{dist}-{version}.dist-info"
    members = dict(files)
    members[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{metadata}".encode()
    members[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: quantzoo-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}\n")
    members[f"{info}/RECORD"] = ("".join(record) + f"{info}/RECORD,,\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in members.items():
            z.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return f"{dist}-{version}-py3-none-any.whl", buf.getvalue()
