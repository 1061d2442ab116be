"""The checks' egress rules (verify/egress.py) against real sockets on loopback: no
connection to forbidden addresses, a total deadline against servers that trickle, and a
bound on connections per host."""

from __future__ import annotations

import ipaddress
import threading
import time

import httpx
import pytest

from modelreg.conditions import UNKNOWN
from modelreg.verify import http
from modelreg.verify.egress import SLOTS, EgressPolicy, forbidden
from modelreg.verify.images import resolve
from tests.support.http_server import Reply, Request, serve, trickling

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "169.254.169.254",
        "fe80::1",
        "0.0.0.0",  # noqa: S104
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_loopback_link_local_and_metadata_addresses_are_forbidden(address: str) -> None:
    assert forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["10.0.0.5", "192.168.1.1", "8.8.8.8", "2001:db8::1"])
def test_ordinary_addresses_are_not(address: str) -> None:
    assert not forbidden(ipaddress.ip_address(address))


def test_a_forbidden_address_is_never_connected_to_unless_allowed() -> None:
    seen: list[str] = []

    def ok(request: Request) -> Reply:
        seen.append(request.method)
        return Reply(200, {}, b"ok")

    with serve(ok) as (host, _):
        with http.client(5, EgressPolicy()) as client, pytest.raises(httpx.ConnectError) as e:
            client.get(f"http://{host}/")
        assert "MODELREG_ALLOWED_ADDRESSES" in str(e.value)
        assert seen == []  # refused before connecting
        with http.client(5, EgressPolicy(allowed_networks=LOOPBACK)) as client:
            assert client.get(f"http://{host}/").text == "ok"
    metadata = r"169\.254\.169\.254"
    allowed = EgressPolicy(allowed_networks=LOOPBACK)
    with http.client(5, allowed) as client, pytest.raises(httpx.ConnectError, match=metadata):
        client.get("http://169.254.169.254/latest/meta-data/")


def test_a_redirect_to_the_metadata_service_is_refused() -> None:
    def redirect(_: object) -> Reply:
        return Reply(302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")

    allowed = EgressPolicy(allowed_networks=LOOPBACK)
    with (
        serve(redirect) as (host, _),
        http.client(5, allowed) as client,
        pytest.raises(httpx.ConnectError, match=r"169\.254\.169\.254"),
    ):
        client.get(f"http://{host}/m.bin", follow_redirects=True)


def test_a_trickling_server_is_cut_off_at_the_deadline() -> None:
    """Each byte comes well within the per-read timeout; the check still ends at its
    total deadline, and its slot is given back."""
    policy = EgressPolicy(allowed_networks=LOOPBACK, deadline_seconds=1.5)
    with trickling() as host:
        start = time.monotonic()
        with http.client(5, policy) as client, pytest.raises(httpx.TimeoutException):
            client.get(f"http://{host}/")
        took = time.monotonic() - start
        assert took < 4, took
        assert host not in SLOTS.held


def test_a_slow_host_holds_no_more_than_its_slots() -> None:
    policy = EgressPolicy(
        allowed_networks=LOOPBACK, per_host=2, slot_wait_seconds=0.2, deadline_seconds=3
    )
    errors: list[BaseException] = []

    def hold(host: str) -> None:
        try:
            with http.client(10, policy) as client:
                client.get(f"http://{host}/")
        except httpx.HTTPError as e:
            errors.append(e)

    with trickling() as host:
        holders = [threading.Thread(target=hold, args=(host,)) for _ in range(2)]
        for t in holders:
            t.start()
        time.sleep(0.5)
        start = time.monotonic()
        with http.client(10, policy) as client, pytest.raises(httpx.ConnectError) as e:
            client.get(f"http://{host}/")
        assert time.monotonic() - start < 1
        assert f"2 checks are connected to {host} already" in str(e.value)
        # another host is not held up by this one
        with serve(lambda _: Reply(200, {}, b"ok")) as (other, _), http.client(5, policy) as c:
            assert c.get(f"http://{other}/").text == "ok"
        for t in holders:
            t.join()
    assert len(errors) == 2


def test_an_image_check_against_a_trickling_registry_is_unknown_and_bounded() -> None:
    policy = EgressPolicy(allowed_networks=LOOPBACK, deadline_seconds=1.5)
    with trickling() as host, http.client(5, policy) as client:
        start = time.monotonic()
        v = resolve(client, f"{host}/serving/sklearn:1")
    assert v.status == UNKNOWN
    assert v.reason == "RegistryUnreachable"
    assert time.monotonic() - start < 4


def test_an_s3_store_that_trickles_is_unknown_within_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """boto3's timeouts are per read; the S3 check still ends at the check's deadline."""
    from modelreg.verify.artifacts import StoreConfig, verify_artifact

    monkeypatch.setenv("MODELREG_CHECK_DEADLINE_SECONDS", "1.5")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    with trickling() as host:
        config = StoreConfig(s3_endpoint=f"http://{host}", region="us-east-1")
        start = time.monotonic()
        v = verify_artifact("s3://models/m/1.bin", None, config)
    assert (v.status, v.reason) == (UNKNOWN, "StoreUnavailable")
    assert "deadline" in v.message
    assert time.monotonic() - start < 4
