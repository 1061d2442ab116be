"""HTTP clients for the checks, sharing one TLS context.

Building a TLS context loads the CA bundle, which took a fifth of the operator's CPU
when every check built its own (benchmarks/, registering 1,000 versions). The context
is built once; clients stay per check, so no cookies or connections are shared between
registries.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The CA bundle of certifi, or $SSL_CERT_FILE / $SSL_CERT_DIR (as httpx does)."""
    return httpx.create_ssl_context()


def client(timeout: float) -> httpx.Client:
    return httpx.Client(timeout=timeout, verify=tls_context())
