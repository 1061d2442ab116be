"""Bearer-token auth (the Docker token protocol), against a small registry on 127.0.0.1.

The local distribution registries cover anonymous and basic auth; this server speaks the
token flow a registry such as Docker Hub, GHCR or Harbor uses: 401 with a Bearer
challenge, a token endpoint that checks basic credentials and the requested scope, then
the manifest with ``Docker-Content-Digest`` only for the right token.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from modelreg.api.base import ConditionStatus
from modelreg.verify.images import resolve_image

DIGEST = "sha256:" + "ab" * 32
TOKEN = "t0k3n"


class _TokenRegistry(BaseHTTPRequestHandler):
    def _send(self, code: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/token":
            q = parse_qs(url.query)
            auth = self.headers.get("Authorization", "")
            ok = auth == "Basic " + base64.b64encode(b"robot:secret").decode()
            scope_ok = q.get("scope") == ["repository:team/model:pull"]
            service_ok = q.get("service") == ["test-registry"]
            if not (ok and scope_ok and service_ok):
                self._send(401, {})
                return
            self._send(
                200, {"Content-Type": "application/json"}, json.dumps({"token": TOKEN}).encode()
            )
            return
        self._send(404, {})

    def do_HEAD(self) -> None:
        port = self.server.server_address[1]
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            challenge = (
                f'Bearer realm="http://127.0.0.1:{port}/token",'
                'service="test-registry",scope="repository:team/model:pull"'
            )
            self._send(401, {"WWW-Authenticate": challenge})
            return
        if self.path == "/v2/team/model/manifests/1.0":
            self._send(
                200,
                {
                    "Docker-Content-Digest": DIGEST,
                    "Content-Type": "application/vnd.oci.image.index.v1+json",
                },
            )
            return
        self._send(404, {})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenRegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def creds(host: str, user: str, password: str) -> list[dict[str, Any]]:
    return [{"auths": {host: {"username": user, "password": password}}}]


def test_bearer_token_flow(registry: str) -> None:
    v = resolve_image(f"{registry}/team/model:1.0", creds(registry, "robot", "secret"))
    assert v.status == ConditionStatus.TRUE
    assert v.details == {"digest": DIGEST, "resolved": f"{registry}/team/model@{DIGEST}"}


def test_bearer_token_refused_and_anonymous(registry: str) -> None:
    wrong = resolve_image(f"{registry}/team/model:1.0", creds(registry, "robot", "nope"))
    assert (wrong.status, wrong.reason) == (ConditionStatus.FALSE, "Unauthorized")
    anonymous = resolve_image(f"{registry}/team/model:1.0")
    assert (anonymous.status, anonymous.reason) == (ConditionStatus.FALSE, "Unauthorized")
    missing = resolve_image(f"{registry}/team/model:2.0", creds(registry, "robot", "secret"))
    assert missing.status == ConditionStatus.FALSE
