"""HTTP clients for the checks, sharing one TLS context.

Building a TLS context loads the CA bundle, which took a fifth of the operator's CPU
when every check built its own (benchmarks/, registering 1,000 versions). The context
is built once; clients stay per check, so no cookies or connections are shared between
registries.
"""

from __future__ import annotations

import functools
import ssl
import threading

import httpcore
import httpx

from modelreg.verify.egress import EgressPolicy, GuardedBackend

_lock = threading.Lock()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def tls_context() -> ssl.SSLContext:
    """The CA bundle of certifi, or $SSL_CERT_FILE / $SSL_CERT_DIR (as httpx does). Built
    once, also when the first checks come in together on many threads."""
    with _lock:
        return _tls_context()


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport, connecting through :class:`GuardedBackend` (verify/egress.py)."""

    def __init__(self, policy: EgressPolicy) -> None:
        super().__init__(verify=tls_context())
        self._pool = httpcore.ConnectionPool(
            ssl_context=tls_context(), network_backend=GuardedBackend(policy)
        )


def client(timeout: float, policy: EgressPolicy | None = None) -> httpx.Client:
    """A client for one check: per-read ``timeout``, the egress rules and total deadline
    of ``policy`` (the operator's, from its environment, by default). Proxies from the
    environment are not used: the rules are about where the operator itself connects."""
    return httpx.Client(
        timeout=timeout,
        transport=_GuardedTransport(policy or EgressPolicy.from_env()),
        trust_env=False,
    )
