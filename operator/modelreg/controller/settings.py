"""The operator's runtime configuration, from its environment (12-factor style)."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import aiohttp.web
import kopf

from modelreg.api import annotations as ann


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@dataclass(frozen=True)
class WebhookSettings:
    """Where the admission webhooks listen, which certificate they serve, and who writes
    the webhook configuration the API server reads.

    Three modes:

    * certificate files given, no ``configuration``: kopf creates and updates the
      configuration ``modelreg.dev`` itself, pointing at ``https://host:port`` (the local
      development environment);
    * ``tls_secret`` and ``configuration`` given (the Helm chart's default): the operator
      keeps a self-issued certificate for ``dns_names`` in that Secret of ``namespace``
      and writes its CA into the chart's configuration;
    * certificate files and ``configuration`` given (cert-manager): the operator only
      serves; cert-manager's CA injector fills the configuration's ``caBundle``.

    With neither certificate files nor a Secret, the webhooks are off.
    """

    listen: str
    port: int
    host: str
    cert_file: Path | None
    key_file: Path | None
    ca_file: Path | None
    configuration: str | None
    tls_secret: str | None
    namespace: str | None
    dns_names: tuple[str, ...]

    @classmethod
    def from_env(cls) -> WebhookSettings:
        def path(var: str) -> Path | None:
            value = os.environ.get(var)
            return Path(value) if value else None

        return cls(
            listen=os.environ.get("MODELREG_WEBHOOK_LISTEN", "0.0.0.0"),  # noqa: S104
            port=int(os.environ.get("MODELREG_WEBHOOK_PORT", "9443")),
            host=os.environ.get("MODELREG_WEBHOOK_HOST", "127.0.0.1"),
            cert_file=path("MODELREG_WEBHOOK_CERT_FILE"),
            key_file=path("MODELREG_WEBHOOK_KEY_FILE"),
            ca_file=path("MODELREG_WEBHOOK_CA_FILE"),
            configuration=os.environ.get("MODELREG_WEBHOOK_CONFIGURATION") or None,
            tls_secret=os.environ.get("MODELREG_WEBHOOK_TLS_SECRET") or None,
            namespace=os.environ.get("MODELREG_NAMESPACE") or None,
            dns_names=_list(os.environ.get("MODELREG_WEBHOOK_DNS_NAMES")),
        )

    @property
    def self_issued(self) -> bool:
        """The operator issues its own certificate (kept in ``tls_secret``)."""
        return self.tls_secret is not None and self.cert_file is None

    @property
    def enabled(self) -> bool:
        return self.self_issued or (self.cert_file is not None and self.key_file is not None)

    @property
    def probe_address(self) -> tuple[str, int]:
        """Where the operator itself can reach its webhook server (readiness)."""
        wildcard = self.listen in ("", "0.0.0.0", "::")  # noqa: S104
        return ("127.0.0.1" if wildcard else self.listen, self.port)

    @property
    def names(self) -> tuple[str, ...]:
        """The names the serving certificate must cover: the service's, then ``host``."""
        return tuple(dict.fromkeys((*self.dns_names, self.host)))

    def problems(self) -> list[str]:
        """What is inconsistent in this configuration (empty when it is usable)."""
        out = []
        if self.self_issued and not self.namespace:
            out.append("MODELREG_WEBHOOK_TLS_SECRET needs MODELREG_NAMESPACE")
        if self.self_issued and not self.configuration:
            out.append("MODELREG_WEBHOOK_TLS_SECRET needs MODELREG_WEBHOOK_CONFIGURATION")
        if (self.cert_file is None) != (self.key_file is None):
            out.append("set both MODELREG_WEBHOOK_CERT_FILE and MODELREG_WEBHOOK_KEY_FILE")
        return out


#: the largest AdmissionReview the webhook server reads. The API server sends the object
#: and the old object of a request (each up to etcd's 1.5 MiB, a request body up to
#: 3 MiB); aiohttp's default of 1 MiB answered 413 to every update of a large version,
#: a revocation included
MAX_REVIEW_BYTES = 32 * 1024 * 1024


class WebhookServer(kopf.WebhookServer):
    """kopf's webhook server, reading any AdmissionReview the API server can send."""

    @staticmethod
    async def _serve(fn: kopf.WebhookFn, request: aiohttp.web.Request) -> aiohttp.web.Response:
        roomy = request.clone(client_max_size=MAX_REVIEW_BYTES)
        return await kopf.WebhookServer._serve(fn, roomy)


def accepts_connections(address: tuple[str, int], timeout: float = 2.0) -> str | None:
    """None when something accepts TCP connections at ``address``; otherwise why not."""
    try:
        with socket.create_connection(address, timeout=timeout):
            return None
    except OSError as e:
        return f"{address[0]}:{address[1]}: {e}"


KOPF_PREFIX = ann.KOPF_PREFIX


def tune(settings: kopf.OperatorSettings) -> None:
    """The kopf settings modelreg runs with, each chosen on purpose (the in-memory diff
    base is set by the startup handler, which keeps it)."""
    settings.persistence.finalizer = f"{KOPF_PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    # our own Events say what happened; kopf's per-handler ones would only add noise
    settings.posting.level = logging.WARNING
    # the API server ends a watch after server_timeout; the client gives up a little later
    # (a watch that silently died would otherwise never be noticed)
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # the initial listing in pages: 10,000 versions in one response is a peak of hundreds
    # of MB of parsed JSON that the heap keeps afterwards (docs/benchmarks.md)
    settings.watching.chunk_size = 500
    # no cap on per-object workers: an object waiting out a retry backoff (e.g. its
    # registry is unreachable) holds its worker while it sleeps, so a cap made new objects
    # wait behind retrying ones (found by tests/reliability/test_hostile_input.py). Workers
    # are asyncio tasks; sync handlers still share the max_workers threads below.
    settings.queueing.worker_limit = None
    settings.execution.max_workers = 16
    # the CRDs are installed before the operator starts (Helm chart, `modelreg dev up`):
    # no need to watch CustomResourceDefinitions, nor the RBAC to do so
    settings.scanning.disabled = True
