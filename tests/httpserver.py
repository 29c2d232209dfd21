"""A real HTTP server on 127.0.0.1 for the download tests, with misbehaving modes.

URLs are ``http://127.0.0.1:PORT/<mode>/<file>``:

- ``ok``: the file, honouring ``Range`` (206 + Content-Range);
- ``404``, ``500``: that status;
- ``drop``: the first request for a file sends half the body and closes the connection, later
  ones behave as ``ok``;
- ``norange``: like ``drop``, then ignores ``Range`` (always 200 with the whole file);
- ``html``: a 200 HTML page (a captive portal, a mirror's error page);
- ``wrong``: other bytes (``Server.wrong``) under the right name;
- ``slow``: waits ``Server.delay`` seconds before answering;
- ``trickle``: sends the file in 16 KiB pieces, ``Server.delay`` seconds apart;
- ``drip``: sends the file one byte every ``Server.delay`` seconds (until the client leaves);
- ``endless``: a 200 with no Content-Length and a body of zeros that never ends (until the
  client leaves, or 256 MiB);
- answers that are not HTTP: ``banner`` (an SSH server's greeting), ``longline`` (a header line
  of 64 KiB), ``headers`` (101 headers), ``headdrip`` (a good answer whose status line and
  headers come one byte every ``Server.delay`` seconds).

``Server.hits`` counts GET requests by (mode, file); ``Server.ranges`` records Range headers.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Quiet(ThreadingHTTPServer):
    """Clients that give up on purpose (timeouts, size caps) break the connection mid-answer:
    that is the point of those modes, not an error worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class Server:
    def __init__(self, files: dict[str, bytes], wrong: dict[str, bytes] | None = None, delay: float = 2.0) -> None:
        self.files = files
        self.wrong = wrong or {}
        self.delay = delay
        self.hits: Counter[tuple[str, str]] = Counter()
        self.ranges: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        self.httpd = _Quiet(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def mirror(self, mode: str) -> str:
        return f"{self.url}/{mode}/"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                _, mode, name = self.path.split("/", 2)
                with server.lock:
                    server.hits[(mode, name)] += 1
                    first = server.hits[(mode, name)] == 1
                    rng = self.headers.get("Range")
                    if rng:
                        server.ranges.append((mode, name, rng))
                if mode in ("404", "500"):
                    self.send_error(int(mode))
                    return
                if mode in ("banner", "longline", "headers", "headdrip"):
                    self._not_http(mode, server.files.get(name, b""))
                    return
                if mode in ("ftp", "moved"):  # a redirect: to an ftp:// URL, or to the same file at /ok/
                    where = f"ftp://127.0.0.1/{name}" if mode == "ftp" else f"/ok/{name}"
                    self.send_response(302)
                    self.send_header("Location", where)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "html":
                    page = b"<!DOCTYPE html><html><body>Please log in to the network</body></html>"
                    self._send(200, page, "text/html; charset=utf-8")
                    return
                data = (server.wrong if mode == "wrong" else server.files).get(name)
                if data is None:
                    self.send_error(404)
                    return
                if mode == "slow":
                    time.sleep(server.delay)
                if mode in ("drip", "endless"):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    if mode == "drip":
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    try:
                        if mode == "drip":
                            for i in range(len(data)):
                                self.wfile.write(data[i : i + 1])
                                self.wfile.flush()
                                time.sleep(server.delay)
                        else:
                            zeros = bytes(1 << 16)
                            for _ in range(4096):
                                self.wfile.write(zeros)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client gave up, as it should
                    return
                if mode in ("drop", "norange") and first:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the connection drops mid-body
                    return
                start = 0
                if rng and mode != "norange" and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[6:-1])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if mode == "trickle":
                    for i in range(0, len(body), 16384):
                        self.wfile.write(body[i : i + 16384])
                        self.wfile.flush()
                        time.sleep(server.delay)
                else:
                    self.wfile.write(body)

            def _not_http(self, mode: str, data: bytes) -> None:
                head = f"HTTP/1.0 200 OK\r\nContent-Length: {len(data)}\r\n"
                answer = {
                    "banner": b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
                    "longline": (head + "X-Long: " + "a" * (64 << 10) + "\r\n\r\n").encode(),
                    "headers": (head + "".join(f"X-{k}: {k}\r\n" for k in range(101)) + "\r\n").encode(),
                    "headdrip": (head + "\r\n").encode(),
                }[mode]
                try:
                    if mode == "headdrip":
                        for i in range(len(answer)):
                            self.wfile.write(answer[i : i + 1])
                            self.wfile.flush()
                            time.sleep(server.delay)
                        self.wfile.write(data)
                    else:
                        self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
