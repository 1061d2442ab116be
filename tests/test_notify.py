"""Notification delivery (modelreg.notify) against real HTTP receivers on 127.0.0.1.

The receiver is a stdlib ``ThreadingHTTPServer`` that checks signatures with
``verify_signature``, records every request, and can be told to answer a status, hang, or go
down (close its listening socket) and come back on the same port.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from prometheus_client import REGISTRY

from modelreg.api.registered_model import Notification, NotificationEvent
from modelreg.notify import (
    CONTENT_TYPE,
    Delivery,
    Dispatcher,
    Subscription,
    Transition,
    backoff,
    cloudevent,
    parse_retry_after,
    signature,
    verify_signature,
)
from tests.support.receiver import Receiver

KEY = b"hook-secret"
FAST = {"backoff_base": 0.02, "backoff_max": 0.1, "timeout": 2.0}


# -- the receiver: tests/support/receiver.py -------------------------------------------


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kw: Any) -> Receiver:
        r = Receiver(**kw)
        r.start()
        made.append(r)
        return r

    yield make
    for r in made:
        r.release.set()
        r.stop()


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A port that refuses connections: bound, never listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}/hook"


class Reports:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failures: list[tuple[Delivery, str, bool]] = []
        self.delivered: list[tuple[Delivery, int]] = []

    def on_failure(self, d: Delivery, error: str, permanent: bool) -> None:
        with self.lock:
            self.failures.append((d, error, permanent))

    def on_delivered(self, d: Delivery, attempts: int) -> None:
        with self.lock:
            self.delivered.append((d, attempts))

    def dropped(self) -> list[str]:
        with self.lock:
            return [d.id for d, e, p in self.failures if p and e.startswith("dropped: ")]


@pytest.fixture
def reports() -> Reports:
    return Reports()


@pytest.fixture
def dispatcher(reports: Reports) -> Iterator[Callable[..., Dispatcher]]:
    made: list[Dispatcher] = []

    def make(**kw: Any) -> Dispatcher:
        d = Dispatcher(
            **{**FAST, **kw}, on_failure=reports.on_failure, on_delivered=reports.on_delivered
        )
        made.append(d)
        return d

    yield make
    for d in made:
        d.close(timeout=0.2)


def transition(i: int = 0, event: str = "VersionApproved", **kw: Any) -> Transition:
    fields: dict[str, Any] = {
        "event": event,
        "namespace": "ml-payments",
        "kind": "ModelVersion",
        "name": f"fraud-detector-v{i}",
        "plural": "modelversions",
        "model": "fraud-detector",
        "version": f"fraud-detector-v{i}",
        "version_number": i,
        "user": "alice",
        "reason": "Approved",
        "message": f"approved by alice ({i})",
        "digest": "sha256:" + "ab" * 32,
        "artifact_uri": f"s3://models/fraud/{i}/model.tar.gz",
        "key": f"uid-{i}/{event}/1",
        "time": datetime(2026, 11, 2, 9, 30, 15, tzinfo=UTC),
    }
    return Transition(**{**fields, **kw})


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for ``check()``; the timeout only bounds a test that fails, so it is generous
    (on a loaded machine a few hundred deliveries take seconds)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        time.sleep(0.01)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- the event -------------------------------------------------------------------------------


def test_cloudevent_has_every_field() -> None:
    t = transition(
        7, time=datetime(2026, 11, 2, 10, 30, 15, 250000, tzinfo=timezone(timedelta(hours=1)))
    )
    assert cloudevent(t) == {
        "specversion": "1.0",
        "type": "dev.modelreg.VersionApproved",
        "source": "/apis/modelreg.dev/v1alpha1/namespaces/ml-payments/modelversions/"
        "fraud-detector-v7",
        "subject": "fraud-detector-v7",
        "id": t.id,
        "time": "2026-11-02T09:30:15.250000Z",
        "datacontenttype": "application/json",
        "data": {
            "model": "fraud-detector",
            "version": "fraud-detector-v7",
            "versionNumber": 7,
            "user": "alice",
            "reason": "Approved",
            "message": "approved by alice (7)",
            "digest": "sha256:" + "ab" * 32,
            "artifactUri": "s3://models/fraud/7/model.tar.gz",
            "namespace": "ml-payments",
            "deployment": None,
        },
    }
    assert len(t.id) == 32
    assert int(t.id, 16) >= 0


def test_event_types_and_ids() -> None:
    for e in NotificationEvent:
        assert cloudevent(transition(event=e))["type"] == f"dev.modelreg.{e.value}"
    deployed = transition(
        event="DeploymentRolledBack", kind="ModelDeployment", plural="modeldeployments",
        name="fraud", deployment="fraud",
    )  # fmt: skip
    ce = cloudevent(deployed)
    assert ce["source"].endswith("/namespaces/ml-payments/modeldeployments/fraud")
    assert ce["data"]["deployment"] == "fraud"
    # the id depends on the key and the event only: a re-sent transition keeps it
    assert transition(1).id == transition(1, message="other", time=datetime.now(UTC)).id
    assert transition(1).id != transition(2).id
    assert (
        transition(1).id != transition(1, event="VersionRejected", key="uid-1/VersionApproved/1").id
    )


def test_transition_and_subscription_validation() -> None:
    with pytest.raises(ValueError, match="NotAnEvent"):
        transition(event="NotAnEvent")
    with pytest.raises(ValueError, match="timezone"):
        transition(time=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="key"):
        transition(key="")
    with pytest.raises(ValueError, match="empty"):
        Subscription("http://x", frozenset({"VersionApproved"}), b"")
    n = Notification.model_validate(
        {
            "url": "https://hooks.example/x",
            "events": ["VersionApproved", "VersionRejected"],
            "secretRef": {"name": "hook-hmac"},
        }
    )
    s = Subscription.from_spec(n, KEY)
    assert s == Subscription(
        "https://hooks.example/x", frozenset({"VersionApproved", "VersionRejected"}), KEY
    )
    assert "hook-secret" not in repr(s)


# -- signatures ------------------------------------------------------------------------------


def test_signature_scheme() -> None:
    body = b'{"id":"1"}'
    header = signature(KEY, body)
    assert header.startswith("sha256=")
    assert len(header) == len("sha256=") + 64
    assert verify_signature(KEY, body, header)
    assert verify_signature(KEY, body, header.upper().replace("SHA256=", "sha256="))
    assert not verify_signature(KEY, body + b" ", header)
    assert not verify_signature(b"other", body, header)
    assert not verify_signature(KEY, body, header.removeprefix("sha256="))
    assert not verify_signature(KEY, body, "sha1=" + header[7:])
    assert not verify_signature(KEY, body, None)
    assert not verify_signature(KEY, body, "sha256=ünïcode")


def test_delivered_event_is_signed_and_shaped(receivers, dispatcher, reports) -> None:
    signed = receivers(key=KEY)
    unsigned = receivers()
    d = dispatcher()
    t = transition(3)
    subs = [
        Subscription(signed.url, frozenset({"VersionApproved"}), KEY),
        Subscription(unsigned.url, frozenset({"VersionApproved"})),
    ]
    assert d.submit(subs, t) == 2
    wait_until(lambda: len(reports.delivered) == 2)

    (got,) = signed.got()
    assert got.signature_ok is True
    assert got.headers["Content-Type"] == CONTENT_TYPE
    assert got.headers["X-Modelreg-Delivery"] == t.id
    assert got.headers["User-Agent"].startswith("modelreg/")
    assert json.loads(got.body) == cloudevent(t)
    tampered = got.body.replace(b"alice", b"mallory")
    assert tampered != got.body
    assert not verify_signature(KEY, tampered, got.headers["X-Modelreg-Signature"])

    (plain,) = unsigned.got()
    assert "X-Modelreg-Signature" not in plain.headers
    assert plain.headers["X-Modelreg-Delivery"] == t.id
    assert plain.body == got.body  # one event, one id, for every receiver
    assert sorted(a for _, a in reports.delivered) == [1, 1]
    assert reports.failures == []


def test_only_subscribed_events_are_sent(receivers, dispatcher, reports) -> None:
    approvals = receivers()
    rollbacks = receivers()
    d = dispatcher()
    subs = [
        Subscription(approvals.url, frozenset({"VersionApproved", "VersionRejected"})),
        Subscription(rollbacks.url, frozenset({"DeploymentRolledBack"})),
    ]
    sent = {e.value: d.submit(subs, transition(1, event=e.value)) for e in NotificationEvent}
    assert sent == {e.value: 0 for e in NotificationEvent} | {
        "VersionApproved": 1,
        "VersionRejected": 1,
        "DeploymentRolledBack": 1,
    }
    wait_until(lambda: len(reports.delivered) == 3)
    time.sleep(0.1)
    types = [json.loads(r.body)["type"] for r in approvals.got()]
    assert types == ["dev.modelreg.VersionApproved", "dev.modelreg.VersionRejected"]
    assert [json.loads(r.body)["type"] for r in rollbacks.got()] == [
        "dev.modelreg.DeploymentRolledBack"
    ]


def test_the_same_transition_is_not_enqueued_twice(receivers, dispatcher, reports) -> None:
    r = receivers(mode="hang")
    d = dispatcher()
    sub = [Subscription(r.url, frozenset({"VersionApproved"}))]
    assert d.submit(sub, transition(1)) == 1
    assert d.submit(sub, transition(1, message="again")) == 0  # pending
    assert d.pending() == 1
    r.release.set()
    wait_until(lambda: len(reports.delivered) == 1)
    assert d.submit(sub, transition(1)) == 0  # recently delivered
    assert d.submit(sub, transition(1, key="uid-1/VersionApproved/2")) == 1  # another transition
    wait_until(lambda: len(reports.delivered) == 2)
    assert len(r.got()) == 2


# -- retries and failures --------------------------------------------------------------------


def test_receiver_down_then_back_gets_every_event_once(receivers, dispatcher, reports) -> None:
    r = receivers()
    r.stop()  # down: connections are refused
    d = dispatcher()
    sub = [Subscription(r.url, frozenset({"VersionApproved"}))]
    events = [transition(i) for i in range(20)]
    retried = metric("modelreg_notification_attempts_total", result="retryable")
    for t in events:
        assert d.submit(sub, t) == 1
    # the outage is seen (and reported) and retried before the receiver comes back
    wait_until(lambda: len(reports.failures) == 1)
    wait_until(
        lambda: metric("modelreg_notification_attempts_total", result="retryable") >= retried + 3
    )
    assert d.pending() == 20
    # back, but the first answers are 503s after the receiver recorded the event
    r.script.extend([503, 503, 503])
    r.start()
    wait_until(lambda: d.pending() == 0)
    # reports are made on the reporter thread, after a delivery stops being pending; the
    # reports of a delivery are made in order, so once every delivery's outcome is in, so
    # is any failure report about it
    wait_until(lambda: len(reports.delivered) == 20)

    got = r.got()
    ids = [g.id for g in got]
    assert set(ids) == {t.id for t in events}
    ok = Counter(g.id for g in got if g.answered == 200)
    assert len(ok) == 20
    assert all(n == 1 for n in ok.values())
    duplicates = len(ids) - len(set(ids))
    print(f"\n{len(ids)} requests for 20 events: {duplicates} duplicates (after 503s)")
    assert duplicates <= 3
    assert [g.id for g in got if g.answered == 200] == [t.id for t in events]  # per-URL order
    # one transient report for the whole outage, no final failure
    assert [(f[0].id, f[2]) for f in reports.failures] == [(events[0].id, False)]
    assert "ConnectError" in reports.failures[0][1]
    assert "s3cret" not in reports.failures[0][1]  # no URL path or query in reports
    assert len(reports.delivered) == 20
    # a new outage is reported again
    r.stop()
    assert d.submit(sub, transition(20)) == 1
    wait_until(lambda: len(reports.failures) == 2)
    assert reports.failures[1][0].id == transition(20).id
    assert not reports.failures[1][2]


@pytest.mark.parametrize("status", [404, 400, 302])
def test_refused_for_good_is_reported_once_and_not_retried(
    receivers, dispatcher, reports, status
) -> None:
    r = receivers(mode=status)
    d = dispatcher()
    failed = metric("modelreg_notifications_total", result="failed")
    attempts = metric("modelreg_notification_attempts_total", result="permanent")
    assert d.submit([Subscription(r.url, frozenset({"VersionApproved"}))], transition()) == 1
    wait_until(lambda: len(reports.failures) == 1)
    time.sleep(0.3)  # many backoff intervals
    assert len(r.got()) == 1
    ((_, error, permanent),) = reports.failures
    assert permanent
    assert f"answered {status}" in error
    assert error.startswith(f"http://127.0.0.1:{r.port} answered")
    if status == 404:
        assert "no such hook" not in error  # the receiver's answer is not relayed
    assert reports.delivered == []
    assert d.pending() == 0
    assert metric("modelreg_notifications_total", result="failed") == failed + 1
    assert metric("modelreg_notification_attempts_total", result="permanent") == attempts + 1


def test_429_408_and_503_are_retried(receivers, dispatcher, reports) -> None:
    r = receivers(key=KEY, script=deque([429, 503, 408, 500]))
    d = dispatcher()
    retryable = metric("modelreg_notification_attempts_total", result="retryable")
    t = transition()
    assert d.submit([Subscription(r.url, frozenset({"VersionApproved"}), KEY)], t) == 1
    wait_until(lambda: len(reports.delivered) == 1)
    got = r.got()
    assert [g.answered for g in got] == [429, 503, 408, 500, 200]
    assert {g.id for g in got} == {t.id}
    assert len({g.body for g in got}) == 1  # the same bytes, the same signature
    assert all(g.signature_ok for g in got)
    assert reports.delivered[0][1] == 5
    ((_, error, permanent),) = reports.failures  # only the first failure is reported
    assert not permanent
    assert "429" in error
    assert "slow down" not in error  # the receiver's answer is not relayed
    assert metric("modelreg_notification_attempts_total", result="retryable") == retryable + 4


def test_backoff() -> None:
    assert backoff(1, 1.0, 60.0, rand=lambda: 0.0) == 0.5
    assert backoff(1, 1.0, 60.0, rand=lambda: 1.0) == 1.0
    assert backoff(4, 1.0, 60.0, rand=lambda: 0.0) == 4.0
    assert backoff(10, 1.0, 60.0, rand=lambda: 1.0) == 60.0
    assert backoff(100000, 1.0, 60.0) <= 60.0  # no overflow after days of retries
    assert backoff(1, 1.0, 60.0, retry_after=30, rand=lambda: 0.0) == 30.0
    assert backoff(1, 1.0, 60.0, retry_after=3600) == 60.0
    for attempt in range(1, 12):
        assert 0.5 * min(60, 2 ** (attempt - 1)) <= backoff(attempt, 1.0, 60.0) <= 60.0
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = (datetime.now(UTC) + timedelta(seconds=100)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 90 < (parse_retry_after(later) or 0) <= 100


# -- never blocking, bounded --------------------------------------------------------------------


def test_a_hanging_receiver_delays_neither_submit_nor_other_receivers(
    receivers, dispatcher, reports
) -> None:
    hanging = receivers(mode="hang", hang_for=120.0)
    healthy = receivers()
    d = dispatcher(timeout=100.0)
    subs = [
        Subscription(hanging.url, frozenset({"VersionApproved"})),
        Subscription(healthy.url, frozenset({"VersionApproved"})),
    ]
    start = time.monotonic()
    for i in range(1000):
        assert d.submit(subs, transition(i)) == 2
    submitted = time.monotonic() - start
    wait_until(lambda: len(healthy.got()) == 1000, timeout=90.0)
    delivered = time.monotonic() - start
    print(f"\nsubmit x1000: {submitted:.3f}s; healthy receiver had all 1000 after {delivered:.2f}s")
    assert submitted < 1.0
    wait_until(lambda: len(reports.delivered) == 1000)
    # all while the hanging receiver's first request still hangs: not answered, not timed
    # out (no report), and its lane sent nothing else
    assert {dl.url for dl, _ in reports.delivered} == {healthy.url}
    wait_until(lambda: len(hanging.got()) >= 1)
    assert len(hanging.got()) == 1  # its lane sends one at a time
    assert d.pending() == 1000  # the hanging one's
    assert reports.failures == []


def test_the_queue_is_bounded_and_drops_the_oldest(dead_url, dispatcher, reports) -> None:
    dropped = metric("modelreg_notifications_total", result="dropped")
    pending_before = metric("modelreg_notifications_pending")
    attempts = metric("modelreg_notification_attempts_total", result="retryable")
    d = dispatcher(max_pending=10, backoff_base=10.0, backoff_max=20.0)
    sub = [Subscription(dead_url, frozenset({"VersionApproved"}))]
    events = [transition(i) for i in range(50)]
    for t in events:
        assert d.submit(sub, t) == 1
        assert d.pending() <= 10
    assert d.pending() == 10
    assert metric("modelreg_notifications_pending") == pending_before + 10
    wait_until(lambda: len(reports.dropped()) == 40)
    assert reports.dropped() == [t.id for t in events[:40]]
    assert all(
        "queue of pending notifications is full (10)" in e for _, e, p in reports.failures if p
    )
    assert metric("modelreg_notifications_total", result="dropped") == dropped + 40
    # one transient report; the dead receiver's backoff outlives the dropped deliveries, so
    # dropping the one in flight does not make the next one try at once
    wait_until(lambda: len([f for f in reports.failures if not f[2]]) == 1)
    tried = metric("modelreg_notification_attempts_total", result="retryable") - attempts
    assert 1 <= tried <= 2
    d.close(timeout=0.2)
    assert metric("modelreg_notifications_total", result="dropped") == dropped + 50
    assert metric("modelreg_notifications_pending") == pending_before


def test_submit_from_many_threads(receivers, dispatcher, reports) -> None:
    r = receivers()
    d = dispatcher()
    sub = [Subscription(r.url, frozenset({"VersionApproved"}))]

    def work(n: int) -> None:
        for i in range(50):
            d.submit(sub, transition(n * 1000 + i))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wait_until(lambda: len(reports.delivered) == 400)
    ids = r.ids()
    assert len(ids) == len(set(ids)) == 400


# -- close ----------------------------------------------------------------------------------------


def test_close_drains_then_stops(receivers, dispatcher, reports) -> None:
    r = receivers()
    d = dispatcher()
    sub = [Subscription(r.url, frozenset({"VersionApproved"}))]
    for i in range(20):
        d.submit(sub, transition(i))
    d.close(timeout=5.0)
    assert len(r.got()) == 20
    assert len(reports.delivered) == 20
    assert not d._worker.is_alive()
    assert not d._reporter.is_alive()


def test_close_stops_the_worker_and_drops_what_is_pending(dead_url, dispatcher, reports) -> None:
    d = dispatcher()
    sub = [Subscription(dead_url, frozenset({"VersionApproved"}))]
    for i in range(5):
        d.submit(sub, transition(i))
    start = time.monotonic()
    d.close(timeout=0.3)
    took = time.monotonic() - start
    assert took < 1.5
    assert not d._worker.is_alive()
    assert not d._reporter.is_alive()
    assert d.pending() == 0
    assert len(reports.dropped()) == 5
    assert all("operator stopped" in e for _, e, p in reports.failures if p)
    assert d.submit(sub, transition(9)) == 0
    d.close()  # again: nothing happens


def test_loopback_and_metadata_receivers_are_refused_unless_allowed(
    receivers, dispatcher, reports, monkeypatch
) -> None:
    """A model owner's notification URL must not make the operator a proxy into what
    only it can reach (issue 15): refused for good, nothing sent."""
    monkeypatch.delenv("MODELREG_ALLOWED_ADDRESSES", raising=False)
    r = receivers()
    d = dispatcher()
    subs = [Subscription(r.url, frozenset({"VersionApproved"}))]
    assert d.submit(subs, transition()) == 1
    wait_until(lambda: len(reports.failures) == 1)
    ((_, error, permanent),) = reports.failures
    assert permanent
    assert "MODELREG_ALLOWED_ADDRESSES" in error
    assert r.got() == []
