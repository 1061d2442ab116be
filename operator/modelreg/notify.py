"""Notification delivery: a model's transitions POSTed as CloudEvents to its receivers.

Format
    Each transition is one CloudEvents 1.0 event in structured mode: ``POST`` with
    ``Content-Type: application/cloudevents+json`` and the event as the JSON body
    (:func:`cloudevent`). ``type`` is ``dev.modelreg.<event>``
    (``dev.modelreg.VersionApproved``), ``source`` the object's API path
    (``/apis/modelreg.dev/v1alpha1/namespaces/ns/modelversions/v7``), ``subject`` its
    name, ``id`` a hash of the transition (:attr:`Transition.id`): the same for every
    attempt and every receiver of one transition, so a receiver de-duplicates on
    ``(source, id)``. ``data`` always has every key (``null`` when it does not apply):
    ``model, version, versionNumber, user, reason, message, digest, artifactUri, namespace,
    deployment``. Every request also carries ``X-Modelreg-Delivery: <id>``.

Signature
    A subscription with a key (the ``key`` of the Secret its ``secretRef`` names) signs each
    request the way GitHub signs webhooks: ``X-Modelreg-Signature: sha256=<hex>``, the
    lowercase hex HMAC-SHA256 of the raw request body under the key. A receiver computes the
    HMAC over the bytes it received, before parsing them, and compares in constant time
    (:func:`verify_signature`). The body contains ``id`` and ``time``, so a replayed request
    is recognisable as a duplicate. Without a key there is no signature header.

Delivery
    At least once while the operator runs. :meth:`Dispatcher.submit` only enqueues; a
    background thread with its own asyncio loop and ``httpx.AsyncClient`` sends. Each
    receiver URL is a lane: its deliveries go one at a time in submission order, so a dead or
    slow receiver holds up only its own lane, and gets one request per backoff interval, not
    one per queued event. Lanes run concurrently, at most ``max_connections`` requests at a
    time. An attempt fails on a connection error, no complete answer within ``timeout``
    seconds, or a non-2xx status. 408, 429 and 5xx, connection errors and timeouts are
    retried for as long as the dispatcher runs, after an exponential backoff with jitter:
    ``backoff_base`` doubling per consecutive failure of the receiver up to ``backoff_max``,
    the delay drawn from the upper half of that, and at least a ``Retry-After`` the receiver
    sent (up to ``backoff_max``). The backoff belongs to the receiver, not the delivery: the
    next delivery to a failing receiver waits it out too. Any other answer (3xx, other 4xx)
    or a URL httpx cannot send to is a permanent failure. Redirects are not followed.

    At most ``max_pending`` deliveries are pending (queued, in flight or waiting to be
    retried); submitting beyond that drops the oldest pending one, whatever its lane (one in
    flight is cancelled). Pending deliveries live in memory only: an operator restart loses
    them.

Reports
    Callbacks run on a dedicated reporter thread, never on the sending loop, so a slow
    callback (e.g. one that posts a Kubernetes Event) delays neither deliveries nor
    :meth:`Dispatcher.submit`. They are made so that a caller posting a
    ``NotificationFailed`` Warning for each ``on_failure`` is not flooded:

    * ``on_failure(delivery, error, permanent=False)``: an attempt failed with a retryable
      error and the receiver had been fine until then, once per outage of a receiver, not
      per delivery or attempt (later failures are silent, logged at debug level);
    * each delivery's outcome: ``on_delivered(delivery, attempts)``, or
      ``on_failure(delivery, error, permanent=True)`` when the receiver refused it or it was
      dropped (``error`` then starts with ``"dropped: "``).

    So a delivery gets at most two reports, and a receiver that stays down for hours one
    transient report plus one per delivery dropped. Errors name the receiver by scheme, host
    and port only: hook URLs often carry a secret in their path or query.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import hmac
import ipaddress
import itertools
import json
import logging
import queue
import random
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from modelreg import __version__, metrics
from modelreg.api.base import API_VERSION
from modelreg.api.registered_model import Notification, NotificationEvent
from modelreg.verify.egress import EgressPolicy

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json"
SIGNATURE_HEADER = "X-Modelreg-Signature"
DELIVERY_HEADER = "X-Modelreg-Delivery"
TYPE_PREFIX = "dev.modelreg."
_MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Subscription:
    """A receiver: where to POST, which events it wants, and the optional signing key."""

    url: str
    events: frozenset[str]
    key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.key is not None and not self.key:
            raise ValueError("a signing key must not be empty (use None for unsigned)")

    @classmethod
    def from_spec(cls, notification: Notification, key: bytes | None = None) -> Subscription:
        """From a RegisteredModel's ``spec.notifications`` entry and its Secret's key."""
        return cls(notification.url, frozenset(e.value for e in notification.events), key)


@dataclass(frozen=True, kw_only=True)
class Transition:
    """What happened, to which object: the content of one event.

    ``key`` identifies the transition (e.g. the object's uid, the event and what tells this
    occurrence apart, such as a generation or condition transition time): submitting the
    same transition again gives the same event id, so it is not sent twice while pending or
    recently delivered, and receivers can de-duplicate.
    """

    event: str  # a NotificationEvent value, e.g. "VersionApproved"
    namespace: str
    kind: str
    name: str
    plural: str
    model: str
    reason: str
    message: str
    key: str
    time: datetime
    version: str | None = None
    version_number: int | None = None
    user: str | None = None
    digest: str | None = None
    artifact_uri: str | None = None
    deployment: str | None = None

    def __post_init__(self) -> None:
        NotificationEvent(self.event)  # ValueError for an unknown event
        if not self.key:
            raise ValueError("a transition needs a key")
        if self.time.tzinfo is None:
            raise ValueError("the transition time must be timezone-aware")

    @property
    def id(self) -> str:
        """The event id: 128 bits of SHA-256 over the event and the key."""
        return hashlib.sha256(f"{self.event}\n{self.key}".encode()).hexdigest()[:32]

    @property
    def source(self) -> str:
        """The object's API path."""
        return f"/apis/{API_VERSION}/namespaces/{self.namespace}/{self.plural}/{self.name}"


def rfc3339(when: datetime) -> str:
    """``when`` in UTC, RFC 3339 with a ``Z``."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def cloudevent(t: Transition) -> dict[str, Any]:
    """The CloudEvents 1.0 structured-mode JSON event of ``t``."""
    return {
        "specversion": "1.0",
        "type": f"{TYPE_PREFIX}{t.event}",
        "source": t.source,
        "subject": t.name,
        "id": t.id,
        "time": rfc3339(t.time),
        "datacontenttype": "application/json",
        "data": {
            "model": t.model,
            "version": t.version,
            "versionNumber": t.version_number,
            "user": t.user,
            "reason": t.reason,
            "message": t.message,
            "digest": t.digest,
            "artifactUri": t.artifact_uri,
            "namespace": t.namespace,
            "deployment": t.deployment,
        },
    }


def encode(t: Transition) -> bytes:
    """The request body: the event as compact UTF-8 JSON."""
    return json.dumps(cloudevent(t), separators=(",", ":"), ensure_ascii=False).encode()


def signature(key: bytes, body: bytes) -> str:
    """The ``X-Modelreg-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(key: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` (the ``X-Modelreg-Signature`` value) signs ``body`` under ``key``.

    ``body`` must be the raw bytes received, not re-serialised JSON. Constant-time.
    """
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(signature(key, body).encode(), header.strip().lower().encode())


def backoff(
    attempt: int,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...).

    The ceiling ``base * 2**(attempt-1)``, at most ``cap``, halved plus a random part of the
    other half (jitter that keeps a floor); at least ``retry_after`` when the receiver asked
    for it, but never more than ``cap``.
    """
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 64))
    delay = ceiling / 2 + rand() * ceiling / 2
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def retryable_status(status: int) -> bool:
    """408, 429 and 5xx are worth retrying; any other non-2xx answer is final."""
    return status in (408, 429) or status >= 500


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _where(url: str) -> str:
    """The receiver without path and query, which may hold a secret."""
    try:
        u = httpx.URL(url)
    except httpx.InvalidURL:
        return "an invalid URL"
    port = f":{u.port}" if u.port else ""
    return f"{u.scheme}://{u.host}{port}"


@dataclass(frozen=True, eq=False)
class Delivery:
    """One transition to one subscription."""

    subscription: Subscription
    transition: Transition
    body: bytes = field(repr=False)
    seq: int = field(repr=False)

    @property
    def id(self) -> str:
        return self.transition.id

    @property
    def url(self) -> str:
        return self.subscription.url

    def describe(self) -> str:
        t = self.transition
        return f"{t.event} of {t.kind} {t.namespace}/{t.name} to {_where(self.url)}"


@dataclass
class _Health:
    """A receiver's recent record, kept by its lane."""

    failures: int = 0  # consecutive retryable failures
    retry_at: float = 0.0  # loop time before which it is not tried again


@dataclass(frozen=True)
class _Outcome:
    error: str | None  # None: delivered
    retry: bool = False
    retry_after: float | None = None


OnFailure = Callable[[Delivery, str, bool], None]
OnDelivered = Callable[[Delivery, int], None]
_Report = Callable[[], None]


class Dispatcher:
    """Delivers notifications from a background thread; see the module docstring."""

    def __init__(
        self,
        *,
        max_pending: int = 10000,
        timeout: float = 10.0,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_connections: int = 64,
        on_failure: OnFailure | None = None,
        on_delivered: OnDelivered | None = None,
    ) -> None:
        if max_pending < 1 or max_connections < 1:
            raise ValueError("max_pending and max_connections must be at least 1")
        if timeout <= 0 or backoff_base <= 0 or backoff_max < backoff_base:
            raise ValueError("timeout and backoff_base must be positive, backoff_max >= base")
        self._max_pending = max_pending
        self._timeout = timeout
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._on_failure = on_failure
        self._on_delivered = on_delivered

        # Shared with submitting threads, guarded by _lock; never held across an await.
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending: OrderedDict[int, Delivery] = OrderedDict()  # by submission order
        self._index: dict[tuple[str, str], int] = {}  # (url, id) -> seq of pending ones
        self._delivered: OrderedDict[tuple[str, str], None] = OrderedDict()  # recent (url, id)
        self._lanes: dict[str, OrderedDict[int, Delivery]] = {}  # url -> its pending ones
        self._seq = itertools.count()
        self._closed = False

        # The loop thread's own.
        self._lane_tasks: dict[str, asyncio.Task[None]] = {}
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=max_connections),
            follow_redirects=False,
            headers={"User-Agent": f"modelreg/{__version__}"},
        )
        self._loop = asyncio.new_event_loop()

        self._reports: queue.Queue[_Report | None] = queue.Queue(maxsize=max(1000, max_pending))
        self._worker = threading.Thread(target=self._run, name="modelreg-notify", daemon=True)
        self._reporter = threading.Thread(
            target=self._report_loop, name="modelreg-notify-reports", daemon=True
        )
        self._worker.start()
        self._reporter.start()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the caller's side (any thread) ------------------------------------------------------

    def submit(self, subscriptions: Iterable[Subscription], t: Transition) -> int:
        """Enqueue ``t`` for each subscription that wants ``t.event``; never blocks.

        Returns how many deliveries were enqueued. A subscription whose URL already has this
        transition pending, or had it delivered recently, gets no second one. After
        :meth:`close`, nothing is enqueued.
        """
        wanted = [s for s in subscriptions if t.event in s.events]
        if not wanted:
            return 0
        body = encode(t)
        added: set[str] = set()
        dropped: list[Delivery] = []
        enqueued = 0
        with self._lock:
            if self._closed:
                log.warning(f"notification {t.event} of {t.namespace}/{t.name} after close")
                return 0
            for s in wanted:
                ident = (s.url, t.id)
                if ident in self._index or ident in self._delivered:
                    continue
                while len(self._pending) >= self._max_pending:
                    _, oldest = self._pending.popitem(last=False)
                    self._forget_locked(oldest)
                    dropped.append(oldest)
                d = Delivery(s, t, body, next(self._seq))
                self._pending[d.seq] = d
                self._index[ident] = d.seq
                self._lanes.setdefault(s.url, OrderedDict())[d.seq] = d
                metrics.NOTIFICATIONS_PENDING.inc()
                added.add(s.url)
                enqueued += 1
        if added:
            self._call_soon(self._kick, frozenset(added))
        for d in dropped:
            self._call_soon(self._abort, d.seq)
            self._dropped(d, f"the queue of pending notifications is full ({self._max_pending})")
        return enqueued

    def pending(self) -> int:
        """Deliveries queued, in flight or waiting to be retried."""
        with self._lock:
            return len(self._pending)

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, wait up to ``timeout`` s for pending deliveries, then stop.

        What is still pending then is dropped and reported. Returns within about ``timeout``
        plus a second; reports that slow callbacks have not made by then may still be made
        (the reporter thread is a daemon).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._idle.wait_for(lambda: not self._pending, timeout)
        stop_by = time.monotonic() + 1.0

        def left() -> float:
            return max(0.0, stop_by - time.monotonic())

        if self._worker.is_alive():
            stopping = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            with contextlib.suppress(Exception):
                stopping.result(left())
            self._worker.join(left())
        with self._lock:
            remaining = list(self._pending.values())
            self._pending.clear()
            for d in remaining:
                self._forget_locked(d)
        for d in remaining:
            self._dropped(d, "the operator stopped before it was delivered")
        if threading.current_thread() is not self._reporter:
            with contextlib.suppress(queue.Full):
                self._reports.put(None, timeout=left())
            self._reporter.join(left())

    # -- bookkeeping (the *_locked ones: callers hold _lock) -----------------------------------

    def _forget_locked(self, d: Delivery) -> None:
        """Remove ``d`` (already popped from _pending) from the other indexes."""
        self._index.pop((d.url, d.id), None)
        lane = self._lanes.get(d.url)
        if lane is not None:
            lane.pop(d.seq, None)
        metrics.NOTIFICATIONS_PENDING.dec()
        if not self._pending:
            self._idle.notify_all()

    def _finish(self, d: Delivery, delivered: bool) -> bool:
        """Take ``d`` out of the pending ones; False if it was dropped meanwhile."""
        with self._lock:
            if self._pending.pop(d.seq, None) is None:
                return False
            self._forget_locked(d)
            if delivered:
                self._delivered[(d.url, d.id)] = None
                while len(self._delivered) > self._max_pending:
                    self._delivered.popitem(last=False)
            return True

    def _dropped(self, d: Delivery, why: str) -> None:
        metrics.NOTIFICATIONS.labels("dropped").inc()
        log.warning(f"notification {d.describe()} dropped: {why}")
        if self._on_failure is not None:
            self._report(self._on_failure, d, f"dropped: {why}", True)

    # -- reports (the reporter thread) ---------------------------------------------------------

    def _report(self, callback: Callable[..., None], *args: object) -> None:
        try:
            self._reports.put_nowait(lambda: callback(*args))
        except queue.Full:
            log.warning("notification report skipped: the callbacks are not keeping up")

    def _report_loop(self) -> None:
        while (report := self._reports.get()) is not None:
            try:
                report()
            except Exception:
                log.exception("a notification callback failed")

    # -- the loop thread -----------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def _call_soon(self, callback: Callable[..., None], *args: Any) -> None:  # noqa: ANN401
        with contextlib.suppress(RuntimeError):  # the loop is closed: close() reports the rest
            self._loop.call_soon_threadsafe(callback, *args)

    def _kick(self, urls: frozenset[str]) -> None:
        for url in urls:
            if url not in self._lane_tasks:
                self._lane_tasks[url] = self._loop.create_task(self._lane(url))

    def _abort(self, seq: int) -> None:
        task = self._inflight.get(seq)
        if task is not None:
            task.cancel()

    async def _shutdown(self) -> None:
        tasks = [*self._inflight.values(), *self._lane_tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.aclose()
        self._loop.stop()

    async def _lane(self, url: str) -> None:
        """Send the deliveries to ``url`` one at a time, oldest first, until none is left."""
        health = _Health()
        try:
            while True:
                with self._lock:
                    lane = self._lanes.get(url)
                    if not lane:
                        self._lanes.pop(url, None)
                        return
                    d = next(iter(lane.values()))
                task = self._loop.create_task(self._deliver(d, health))
                self._inflight[d.seq] = task
                try:
                    await asyncio.wait({task})
                finally:
                    del self._inflight[d.seq]
                if not task.cancelled() and (exc := task.exception()) is not None:
                    log.error(f"notification {d.describe()} failed", exc_info=exc)
                    if self._finish(d, delivered=False):
                        metrics.NOTIFICATIONS.labels("failed").inc()
                        self._failed(d, f"internal error: {exc}", permanent=True)
        finally:
            self._lane_tasks.pop(url, None)

    async def _deliver(self, d: Delivery, health: _Health) -> None:
        """Attempt ``d`` until delivered, refused for good, dropped or shut down.

        The backoff is the receiver's (``health``), not the delivery's: after a drop or a
        refusal the next delivery to a failing receiver waits out the same backoff, and only
        the first failure of an outage is reported as transient.
        """
        attempts = 0
        while True:
            if (wait := health.retry_at - self._loop.time()) > 0:
                await asyncio.sleep(wait)
            with self._lock:
                if d.seq not in self._pending:
                    return
            attempts += 1
            outcome = await self._attempt(d)
            if outcome.error is None:
                health.failures = 0
                metrics.NOTIFICATION_ATTEMPTS.labels("success").inc()
                if self._finish(d, delivered=True):
                    metrics.NOTIFICATIONS.labels("delivered").inc()
                    if attempts > 1:
                        log.info(f"notification {d.describe()} delivered, attempt {attempts}")
                    if self._on_delivered is not None:
                        self._report(self._on_delivered, d, attempts)
                return
            if not outcome.retry:
                health.failures = 0  # it answered
                metrics.NOTIFICATION_ATTEMPTS.labels("permanent").inc()
                if self._finish(d, delivered=False):
                    metrics.NOTIFICATIONS.labels("failed").inc()
                    self._failed(d, outcome.error, permanent=True)
                return
            metrics.NOTIFICATION_ATTEMPTS.labels("retryable").inc()
            health.failures += 1
            if health.failures == 1:
                self._failed(d, outcome.error, permanent=False)
            delay = backoff(
                health.failures, self._backoff_base, self._backoff_max, outcome.retry_after
            )
            health.retry_at = self._loop.time() + delay
            log.debug(f"notification {d.describe()}: {outcome.error}; retry in {delay:.1f}s")

    def _failed(self, d: Delivery, error: str, permanent: bool) -> None:
        final = "failed" if permanent else "failed, will retry"
        log.warning(f"notification {d.describe()} {final}: {error}")
        if self._on_failure is not None:
            self._report(self._on_failure, d, error, permanent)

    async def _attempt(self, d: Delivery) -> _Outcome:
        headers = {"Content-Type": CONTENT_TYPE, DELIVERY_HEADER: d.id}
        if d.subscription.key is not None:
            headers[SIGNATURE_HEADER] = signature(d.subscription.key, d.body)
        where = _where(d.url)
        if why := await _refused_address(d.url):
            return _Outcome(f"cannot send to {where}: {why}")
        try:
            async with self._slots, asyncio.timeout(self._timeout):
                request = self._client.build_request("POST", d.url, content=d.body, headers=headers)
                response = await self._client.send(request, stream=True)
                try:
                    return await _judge(response, where)
                finally:
                    await response.aclose()
        except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError) as e:
            return _Outcome(f"cannot send to {where}: {e}")
        except httpx.HTTPError as e:
            return _Outcome(f"{where}: {type(e).__name__} {e}".rstrip(), retry=True)
        except TimeoutError:
            return _Outcome(f"{where} did not answer within {self._timeout:g}s", retry=True)


async def _refused_address(url: str) -> str | None:
    """Why the operator must not send to ``url``'s host (verify/egress.py's rules: no
    loopback, link-local or cloud metadata address unless an admin allows it)."""
    parsed = httpx.URL(url)
    host = parsed.host
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parsed.port or 443, type=socket.SOCK_STREAM
        )
    except OSError:
        return None  # unresolvable: the send itself fails, and is retried
    policy = EgressPolicy.from_env()
    for info in infos:
        why = policy.refusal(host, ipaddress.ip_address(info[4][0]))
        if why:
            return why
    return None


async def _judge(response: httpx.Response, where: str) -> _Outcome:
    """Delivered, retry or give up, from the receiver's answer."""
    status = response.status_code
    await _read_some(response)
    if 200 <= status < 300:
        return _Outcome(None)
    # what it said is not repeated: an Event the model's owner reads must not relay the
    # answers of hosts only the operator can reach
    error = f"{where} answered {status} {response.reason_phrase}".rstrip()
    if retryable_status(status):
        return _Outcome(error, True, parse_retry_after(response.headers.get("Retry-After")))
    return _Outcome(error)


async def _read_some(response: httpx.Response) -> bytes:
    """The start of the answer's body. A short body is read to its end, so that the
    connection can be reused; a long one is cut off (and its connection closed)."""
    chunk = b""
    async for part in response.aiter_raw():
        chunk += part
        if len(chunk) > _MAX_ANSWER_BYTES:
            break
    return chunk
