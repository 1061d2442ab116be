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

import httpx

_lock = threading.Lock()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def tls_context() -> ssl.SSLContext:
    """The CA bundle of certifi, or $SSL_CERT_FILE / $SSL_CERT_DIR (as httpx does). Built
    once, also when the first checks come in together on many threads."""
    with _lock:
        return _tls_context()


def client(timeout: float) -> httpx.Client:
    return httpx.Client(timeout=timeout, verify=tls_context())
