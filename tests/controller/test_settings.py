"""The operator's webhook settings: the three certificate modes and their mistakes."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import kopf
import pytest

from modelreg.controller.settings import WebhookSettings, accepts_connections, tune


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> WebhookSettings:
    for key in list(os.environ):
        if key.startswith("MODELREG_WEBHOOK_") or key == "MODELREG_NAMESPACE":
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return WebhookSettings.from_env()


def test_no_certificate_means_no_webhooks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not settings(monkeypatch).enabled


def test_self_issued_mode_covers_service_names_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(
        monkeypatch,
        MODELREG_WEBHOOK_TLS_SECRET="r-webhook-tls",
        MODELREG_WEBHOOK_CONFIGURATION="r.ns.modelreg.dev",
        MODELREG_NAMESPACE="ns",
        MODELREG_WEBHOOK_DNS_NAMES="r.ns.svc, r.ns.svc.cluster.local,r.ns.svc",
        MODELREG_WEBHOOK_HOST="r.ns.svc",
    )
    assert s.enabled
    assert s.self_issued
    assert s.problems() == []
    assert s.names == ("r.ns.svc", "r.ns.svc.cluster.local")


def test_given_files_win_over_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(
        monkeypatch,
        MODELREG_WEBHOOK_CERT_FILE="/c/tls.crt",
        MODELREG_WEBHOOK_KEY_FILE="/c/tls.key",
        MODELREG_WEBHOOK_CONFIGURATION="r.ns.modelreg.dev",
    )
    assert s.enabled
    assert not s.self_issued
    assert s.cert_file == Path("/c/tls.crt")


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"MODELREG_WEBHOOK_TLS_SECRET": "s", "MODELREG_NAMESPACE": "ns"}, "CONFIGURATION"),
        ({"MODELREG_WEBHOOK_TLS_SECRET": "s", "MODELREG_WEBHOOK_CONFIGURATION": "c"}, "NAMESPACE"),
        ({"MODELREG_WEBHOOK_CERT_FILE": "/c/tls.crt"}, "both"),
    ],
)
def test_inconsistent_settings_are_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], problem: str
) -> None:
    problems = settings(monkeypatch, **env).problems()
    assert any(problem in p for p in problems), problems


def test_probe_address_and_whether_the_webhook_server_accepts_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELREG_WEBHOOK_PORT", "9443")
    assert WebhookSettings.from_env().probe_address == ("127.0.0.1", 9443)  # 0.0.0.0
    monkeypatch.setenv("MODELREG_WEBHOOK_LISTEN", "10.0.0.7")
    assert WebhookSettings.from_env().probe_address == ("10.0.0.7", 9443)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = server.getsockname()
        assert accepts_connections(address) is None
    # the same port, closed
    why = accepts_connections(address)
    assert why is not None
    assert why.startswith(f"127.0.0.1:{address[1]}: ")


def test_kopf_runs_with_the_settings_chosen_for_modelreg() -> None:
    settings = kopf.OperatorSettings()
    tune(settings)
    # kopf's bookkeeping under its own prefix, apart from the contract's modelreg.dev/*
    assert settings.persistence.finalizer == "kopf.modelreg.dev/finalizer"
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert settings.persistence.progress_storage.prefix == "kopf.modelreg.dev"
    # modelreg posts its own Events; kopf's only for warnings and errors
    assert settings.posting.level == logging.WARNING
    # a silently dead watch is noticed: the client times out after the server would
    assert settings.watching.server_timeout == 300
    assert settings.watching.client_timeout is not None
    assert settings.watching.client_timeout > settings.watching.server_timeout
    assert settings.watching.chunk_size == 500
    # no per-object worker cap (an object in backoff would hold a slot), 16 threads
    assert settings.queueing.worker_limit is None
    assert settings.execution.max_workers == 16
    assert settings.scanning.disabled is True
