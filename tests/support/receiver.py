"""A real HTTP receiver of modelreg's notifications, on 127.0.0.1 (for tests).

A stdlib ``ThreadingHTTPServer`` that checks signatures with ``verify_signature``, records
every request, and can be told to answer a status, hang, or go down (close its listening
socket) and come back on the same port.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from modelreg.notify import verify_signature


@dataclass
class Received:
    id: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None  # None: the receiver has no key
    answered: int | str


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a hung-up client after "hang"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as most receivers

    def setup(self) -> None:
        super().setup()
        with self.server.receiver.lock:
            self.server.receiver.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.receiver.lock:
            self.server.receiver.connections.discard(self.connection)
        super().finish()

    def do_POST(self) -> None:
        r = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        sig = self.headers.get("X-Modelreg-Signature")
        with r.lock:
            answer = r.script.popleft() if r.script else r.mode
            r.requests.append(
                Received(
                    id=self.headers.get("X-Modelreg-Delivery", ""),
                    headers=dict(self.headers.items()),
                    body=body,
                    signature_ok=None if r.key is None else verify_signature(r.key, body, sig),
                    answered=answer,
                )
            )
        if answer == "hang":
            r.release.wait(r.hang_for)
            answer = 200
        assert isinstance(answer, int)
        reply = b"slow down" if answer == 429 else b"no such hook" if answer == 404 else b""
        self.send_response(answer)
        if answer == 429:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Receiver:
    key: bytes | None = None
    mode: int | str = 200  # a status, or "hang"
    hang_for: float = 20.0  # how long "hang" holds a request unless released
    script: deque[int | str] = field(default_factory=deque)  # answers before `mode`
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)
    connections: set[socket.socket] = field(default_factory=set)
    port: int = 0
    _server: _Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?token=s3cret"

    def start(self) -> None:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.receiver = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Go down: the port refuses connections until start()."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            with self.lock:  # and kept-alive connections end
                for conn in self.connections:
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)
            assert self._thread is not None
            self._thread.join()
            self._server = None

    def got(self) -> list[Received]:
        with self.lock:
            return list(self.requests)

    def ids(self) -> list[str]:
        return [r.id for r in self.got()]
