"""A real HTTP server on 127.0.0.1 that answers as a test scripts it: for failure modes
the real S3 server and registries cannot be made to produce (429, 503, 405, a broken
token service, a body without Content-Length)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    #: the body; an iterable is sent in chunks without Content-Length (closing the
    #: connection ends it)
    body: bytes | Iterable[bytes] = b""


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


Script = Callable[[Request], Reply]


@contextmanager
def serve(script: Script) -> Iterator[tuple[str, list[Request]]]:
    """Serve ``script`` on a free port; yield ``host:port`` and the requests seen."""
    seen: list[Request] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            request = Request(self.command, self.path, dict(self.headers.items()))
            seen.append(request)
            reply = script(request)
            self.send_response(reply.status)
            for k, v in reply.headers.items():
                self.send_header(k, v)
            if isinstance(reply.body, bytes):
                if "Content-Length" not in reply.headers:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)
                return
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if self.command != "HEAD":
                for chunk in reply.body:
                    self.wfile.write(chunk)

        do_GET = do_HEAD = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def trickling(delay: float = 0.3) -> Iterator[str]:
    """A server that answers every connection one byte of its status line at a time."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                if stop.wait(delay):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        server.close()
