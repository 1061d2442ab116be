"""A thin, fast HTTP client for the API server (httpx, one bearer token per person),
watches that timestamp every event, the API server's request counters, and /proc readings
of the operator process.

The benchmarks talk to the API server with plain httpx rather than the kubernetes client:
it costs the (shared, 2-core) machine less CPU per request, so the figures say more about
the server and the operator than about the client.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from modelreg.devenv import Environment

Obj = dict[str, Any]
GROUP_PATH = "/apis/modelreg.dev/v1alpha1"
#: status codes worth retrying (throttling, overload, a webhook that timed out)
RETRY = {429, 500, 502, 503, 504}


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status


@dataclass
class Api:
    """Requests to the API server as one person of the local environment."""

    env: Environment
    user: str = "admin"

    def __post_init__(self) -> None:
        ctx = ssl.create_default_context(cafile=str(self.env.layout.pki / "ca.crt"))
        self.http = httpx.Client(
            base_url=self.env.server,
            headers={"Authorization": f"Bearer {self.env.secrets.tokens[self.user]}"},
            verify=ctx,
            timeout=httpx.Timeout(60.0, connect=10.0),
            limits=httpx.Limits(max_connections=128, max_keepalive_connections=128),
        )
        self.retries = 0

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
        ok404: bool = False,
        attempts: int = 8,
    ) -> Obj:
        for attempt in range(attempts):
            r = self.http.request(
                method,
                path,
                content=json.dumps(body) if body is not None else None,
                headers={"Content-Type": content_type} if body is not None else None,
                params=params,
            )
            if r.status_code < 300:
                return r.json() if r.content else {}  # type: ignore[no-any-return,unused-ignore]
            if ok404 and r.status_code == 404:
                return {}
            if r.status_code in RETRY and attempt + 1 < attempts:
                self.retries += 1
                time.sleep(min(2.0, 0.05 * 2**attempt))
                continue
            raise ApiError(r.status_code, r.text)
        raise AssertionError("unreachable")

    def get(self, path: str, **kw: Any) -> Obj:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Obj) -> Obj:
        return self.request("POST", path, body)

    def merge_patch(self, path: str, body: Obj) -> Obj:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def delete(self, path: str) -> Obj:
        return self.request("DELETE", path, ok404=True)

    def metrics(self) -> Requests:
        """The API server's request counters now."""
        r = self.http.get("/metrics")
        r.raise_for_status()
        return Requests.parse(r.text)


def mr(namespace: str, plural: str, name: str = "", sub: str = "") -> str:
    """The path of a modelreg.dev object (or collection)."""
    path = f"{GROUP_PATH}/namespaces/{namespace}/{plural}"
    return path + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


# --- the API server's request counters ---------------------------------------------------

_LINE = re.compile(r"^(apiserver_request_total|apiserver_response_sizes_sum)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "APPLY", "DELETECOLLECTION"})


@dataclass(frozen=True)
class Key:
    verb: str
    group: str
    resource: str
    subresource: str


@dataclass
class Requests:
    """``apiserver_request_total`` (summed over codes) and response bytes, by verb and
    resource; subtracting two gives what happened in between."""

    count: Counter[Key]
    bytes: Counter[Key]

    @classmethod
    def parse(cls, text: str) -> Requests:
        count: Counter[Key] = Counter()
        size: Counter[Key] = Counter()
        for line in text.splitlines():
            m = _LINE.match(line)
            if not m:
                continue
            labels = dict(_LABEL.findall(m.group(2)))
            key = Key(
                labels.get("verb", ""),
                labels.get("group", ""),
                labels.get("resource", ""),
                labels.get("subresource", ""),
            )
            target = count if m.group(1) == "apiserver_request_total" else size
            target[key] += int(float(m.group(3)))
        return cls(count, size)

    def __sub__(self, other: Requests) -> Requests:
        return Requests(self.count - other.count, self.bytes - other.bytes)

    def total(self, pred: Callable[[Key], bool] | None = None) -> int:
        """Requests to resources (not /metrics, /healthz, ...), WATCH excluded."""
        return sum(
            v
            for k, v in self.count.items()
            if k.resource and k.verb not in ("WATCH", "CONNECT") and (pred is None or pred(k))
        )

    def writes(self, pred: Callable[[Key], bool] | None = None) -> int:
        return self.total(lambda k: k.verb in WRITE_VERBS and (pred is None or pred(k)))

    def modelreg(self, writes: bool = False) -> int:
        """Requests (or writes) to modelreg.dev objects: only the operator and the benchmark
        itself send those."""
        f = self.writes if writes else self.total
        return f(lambda k: k.group == "modelreg.dev")

    def by_verb_resource(self, top: int = 12) -> list[tuple[str, int, int]]:
        """(verb resource[/sub], count, bytes) of the busiest, WATCH excluded."""
        rows = [
            (
                f"{k.verb} {k.resource}{'/' + k.subresource if k.subresource else ''}",
                v,
                self.bytes.get(k, 0),
            )
            for k, v in self.count.items()
            if k.resource and k.verb != "WATCH" and v > 0
        ]
        return sorted(rows, key=lambda r: -r[1])[:top]


# --- watches -------------------------------------------------------------------------------


class Watch:
    """Every event of a collection, timestamped (``time.monotonic``) as it arrives, handed
    to ``on_event(type, obj, t)`` from a background thread. Starts with a list (type
    ``LIST``) and re-lists when the watch expires."""

    def __init__(
        self,
        api: Api,
        path: str,
        on_event: Callable[[str, Obj, float], None],
        label_selector: str = "",
    ) -> None:
        self.api, self.path, self.on_event, self.selector = api, path, on_event, label_selector
        self.stopping = threading.Event()
        self.synced = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"watch {path}", daemon=True)

    def __enter__(self) -> Watch:
        self.thread.start()
        if not self.synced.wait(60):
            raise TimeoutError(f"watch {self.path} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=35)

    def _run(self) -> None:
        params = {"labelSelector": self.selector} if self.selector else {}
        while not self.stopping.is_set():
            try:
                listed = self.api.get(self.path, params=params)
                now = time.monotonic()
                for item in listed.get("items", []):
                    self.on_event("LIST", item, now)
                rv = listed["metadata"]["resourceVersion"]
                self.synced.set()
                rv = self._stream(rv, params)
            except (httpx.HTTPError, ApiError) as e:  # reconnect
                if self.stopping.is_set():
                    return
                self.error = e
                time.sleep(0.2)

    def _stream(self, rv: str, params: dict[str, str]) -> str:
        watch = {
            **params,
            "watch": "1",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "5",
        }
        while not self.stopping.is_set():
            with self.api.http.stream(
                "GET", self.path, params=watch, timeout=httpx.Timeout(20.0, connect=10.0)
            ) as r:
                if r.status_code != 200:
                    raise ApiError(r.status_code, r.read().decode(errors="replace"))
                for line in r.iter_lines():
                    if not line:
                        continue
                    now = time.monotonic()
                    ev = json.loads(line)
                    obj = ev.get("object") or {}
                    if ev["type"] == "ERROR":
                        raise ApiError(int(obj.get("code") or 410), str(obj.get("message")))
                    watch["resourceVersion"] = obj["metadata"]["resourceVersion"]
                    if ev["type"] != "BOOKMARK":
                        self.on_event(ev["type"], obj, now)
        return watch["resourceVersion"]


# --- the operator process ------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rindex(")") + 2 :].split()
    # fields 14 and 15 (utime, stime); ``rest`` starts at field 3
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    start = time.monotonic()
    yield lambda: time.monotonic() - start
