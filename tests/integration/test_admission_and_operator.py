"""Admission webhooks reach a server on 127.0.0.1, and a kopf operator runs against the cluster."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from modelreg import pki
from tests.support.cluster import Cluster

pytestmark = pytest.mark.cluster

HERE = Path(__file__).resolve().parent


class _Webhook(BaseHTTPRequestHandler):
    """Denies ConfigMaps labelled deny=yes; records every AdmissionReview request."""

    seen: list[dict[str, Any]]

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        self.server.seen.append(request)  # type: ignore[attr-defined]
        labels = request["object"]["metadata"].get("labels", {})
        allowed = labels.get("deny") != "yes"
        response: dict[str, Any] = {"uid": request["uid"], "allowed": allowed}
        if not allowed:
            response["status"] = {"code": 403, "message": "label deny=yes must not be set"}
        body = json.dumps(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook_server(tmp_path: Path) -> Iterator[tuple[str, bytes, list[dict[str, Any]]]]:
    ca = pki.new_ca("webhook-test-ca")
    serving = pki.issue(ca, "webhook", ip_addresses=("127.0.0.1",))
    (tmp_path / "tls.crt").write_bytes(serving.cert_pem)
    (tmp_path / "tls.key").write_bytes(serving.key_pem)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    server.seen = []  # type: ignore[attr-defined]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}/validate"
    yield url, ca.cert_pem, server.seen  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


@pytest.mark.local_env  # the API server calls a webhook on 127.0.0.1: not kind's
def test_validating_webhook_on_loopback_denies_with_its_message(
    cluster: Cluster, namespace: str, webhook_server: tuple[str, bytes, list[dict[str, Any]]]
) -> None:
    url, ca_pem, seen = webhook_server
    name = f"modelreg-test-{uuid.uuid4().hex[:8]}"
    admission = kubernetes.client.AdmissionregistrationV1Api(cluster.api())
    admission.create_validating_webhook_configuration(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": "deny.modelreg-tests.dev",
                    "clientConfig": {"url": url, "caBundle": base64.b64encode(ca_pem).decode()},
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ],
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": namespace}
                    },
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": 5,
                }
            ],
        }
    )
    core = kubernetes.client.CoreV1Api(cluster.api())
    try:
        # webhook configurations take effect asynchronously: retry the allowed create
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            core.create_namespaced_config_map(
                namespace, {"metadata": {"generateName": "ok-"}, "data": {"a": "b"}}
            )
            time.sleep(0.5)
        assert seen, "the API server never called the webhook"
        with pytest.raises(ApiException) as denied:
            core.create_namespaced_config_map(
                namespace, {"metadata": {"name": "no", "labels": {"deny": "yes"}}}
            )
        assert denied.value.status == 403
        assert "label deny=yes must not be set" in denied.value.body
        assert "deny.modelreg-tests.dev" in denied.value.body
        # the requesting user's identity reaches the webhook
        assert seen[-1]["userInfo"]["username"]
        assert seen[-1]["operation"] == "CREATE"
    finally:
        admission.delete_validating_webhook_configuration(name)


def test_kopf_operator_fixture_reconciles_in_the_cluster(
    cluster: Cluster, namespace: str, kopf_operator: Callable[..., AbstractContextManager[Any]]
) -> None:
    core = kubernetes.client.CoreV1Api(cluster.api())
    with kopf_operator(str(HERE.parent / "support" / "echo_operator.py"), namespace=namespace):
        core.create_namespaced_config_map(
            namespace,
            {
                "metadata": {"name": "hello", "labels": {"modelreg-tests/echo": "yes"}},
                "data": {"msg": "hi from the test"},
            },
        )
        deadline = time.monotonic() + 30
        annotations: dict[str, str] = {}
        while time.monotonic() < deadline:
            cm = core.read_namespaced_config_map("hello", namespace)
            annotations = cm.metadata.annotations or {}
            if "modelreg-tests/echo" in annotations:
                break
            time.sleep(0.2)
        assert annotations.get("modelreg-tests/echo") == "hi from the test"
