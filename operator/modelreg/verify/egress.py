"""Where the operator's checks may connect, how many at once per host, and for how long.

Every HTTP(S) connection of a check (registry, token service, HTTPS artifact, each
redirect) is made by :class:`GuardedBackend`, which

* resolves the host itself and connects only to an address it allows: never loopback,
  link-local (cloud metadata services such as 169.254.169.254 live there), unspecified
  or multicast addresses, unless a cluster admin allows them
  (``MODELREG_ALLOWED_ADDRESSES``, CIDRs; the local environment allows 127.0.0.0/8).
  It connects to the address it checked, so a name that resolves differently a moment
  later (DNS rebinding) gains nothing;
* holds one of ``MODELREG_CHECKS_PER_HOST`` slots per server (host and port) while
  connected: a server that answers slowly ties up at most that many checks, and the
  others are told to retry;
* enforces the check's total deadline (``MODELREG_CHECK_DEADLINE_SECONDS``) on every
  read and write, so a server that trickles one byte every few seconds cannot hold a
  check past it (httpx's own timeouts are per read).

Without these, one slow registry held every executor thread for as long as it liked,
and image and artifact checks could probe what the operator can reach (issue 15).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: what the operator never connects to unless allowed: loopback, link-local (cloud
#: metadata), unspecified, multicast, and the IPv6 forms of IPv4 ones (mapped addresses)
_FORBIDDEN = "loopback, link-local (cloud metadata), unspecified or multicast"


#: cloud metadata services outside link-local (AWS's IPv6 one)
_METADATA = (ipaddress.ip_address("fd00:ec2::254"),)


def forbidden(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return forbidden(ip.ipv4_mapped)
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_multicast
        or ip in _METADATA
    )


def _networks(value: str | None) -> tuple[Network, ...]:
    return tuple(
        ipaddress.ip_network(v.strip(), strict=False) for v in (value or "").split(",") if v.strip()
    )


@dataclass(frozen=True)
class EgressPolicy:
    """The operator's egress rules for checks (from its environment)."""

    #: addresses allowed although forbidden() (an admin's explicit choice)
    allowed_networks: tuple[Network, ...] = ()
    #: connections to one host at once, across all checks
    per_host: int = 4
    #: how long a check waits for a free slot of its host before it is retried later
    slot_wait_seconds: float = 1.0
    #: the most one check may take, connecting, reading and writing included
    deadline_seconds: float = 60.0

    @classmethod
    def from_env(cls) -> EgressPolicy:
        return cls(
            allowed_networks=_networks(os.environ.get("MODELREG_ALLOWED_ADDRESSES")),
            per_host=int(os.environ.get("MODELREG_CHECKS_PER_HOST", "4")),
            deadline_seconds=float(os.environ.get("MODELREG_CHECK_DEADLINE_SECONDS", "60")),
        )

    def refusal(self, host: str, ip: IPAddress) -> str | None:
        """Why the operator must not connect to ``ip`` (None: it may)."""
        if not forbidden(ip) or any(ip in n for n in self.allowed_networks):
            return None
        return (
            f"{host} resolves to {ip}, a {_FORBIDDEN} address the operator does not "
            "connect to (a cluster admin can allow it: MODELREG_ALLOWED_ADDRESSES)"
        )


@dataclass
class _Slots:
    """Connections held per host, across every check of the process."""

    lock: threading.Condition = field(default_factory=threading.Condition)
    held: dict[str, int] = field(default_factory=dict)

    def take(self, host: str, limit: int, wait: float) -> bool:
        end = time.monotonic() + wait
        with self.lock:
            while self.held.get(host, 0) >= limit:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
            self.held[host] = self.held.get(host, 0) + 1
            return True

    def give(self, host: str) -> None:
        with self.lock:
            self.held[host] -= 1
            if not self.held[host]:
                del self.held[host]
            self.lock.notify_all()


SLOTS = _Slots()


class _Stream(httpcore.NetworkStream):
    """A connection that gives its host's slot back once, and reads and writes no later
    than the check's deadline."""

    def __init__(
        self, inner: httpcore.NetworkStream, deadline: float, host: str, release: list[bool]
    ) -> None:
        self.inner, self.deadline, self.host, self.release = inner, deadline, host, release

    def _left(self, timeout: float | None, error: type[Exception]) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise error(f"the check's deadline passed while talking to {self.host}")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            if not self.release[0]:
                self.release[0] = True
                SLOTS.give(self.host)

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wrapped = self.inner.start_tls(
            ssl_context, server_hostname, self._left(timeout, httpcore.ConnectTimeout)
        )
        return _Stream(wrapped, self.deadline, self.host, self.release)

    def get_extra_info(self, info: str) -> Any:  # noqa: ANN401 (httpcore's own signature)
        return self.inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network backend for one check (its deadline starts when it is made)."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self.deadline = time.monotonic() + policy.deadline_seconds
        self.plain = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            raise httpcore.ConnectError(f"cannot resolve {host}: {e}") from e
        addresses = list(dict.fromkeys(ipaddress.ip_address(i[4][0]) for i in infos))
        allowed = [ip for ip in addresses if self.policy.refusal(host, ip) is None]
        if not allowed:
            why = self.policy.refusal(host, addresses[0]) if addresses else f"{host}: no address"
            raise httpcore.ConnectError(why)
        if self.deadline <= time.monotonic():
            raise httpcore.ConnectTimeout(f"the check's deadline passed before {host}")
        server = f"{host}:{port}"  # a server: hosts often serve several
        if not SLOTS.take(server, self.policy.per_host, self.policy.slot_wait_seconds):
            raise httpcore.ConnectError(
                f"{self.policy.per_host} checks are connected to {server} already (a slow "
                "or busy server): this one is retried later"
            )
        release = [False]
        left = max(0.001, self.deadline - time.monotonic())
        try:
            inner = self.plain.connect_tcp(
                str(allowed[0]),
                port,
                left if timeout is None else min(timeout, left),
                local_address,
                socket_options,
            )
        except BaseException:
            release[0] = True
            SLOTS.give(server)
            raise
        return _Stream(inner, self.deadline, server, release)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("checks never connect to unix sockets")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
