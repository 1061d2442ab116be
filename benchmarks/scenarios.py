"""The seven benchmarks of issue 6, each a function returning a JSON-able dict of figures.

Every function takes the environment and a namespace it may fill; none asserts speed.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import fixtures
from benchmarks.api import (
    GROUP_PATH,
    WRITE_VERBS,
    Api,
    ApiError,
    Obj,
    Watch,
    cpu_seconds,
    mr,
    rss_bytes,
)
from modelreg import devenv
from modelreg.devenv import Environment, process

Log = Callable[[str], None]
Result = dict[str, Any]


def pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``; 0 for none."""
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def wait_until(what: str, check: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


# --- the operator process ------------------------------------------------------------------


@dataclass
class Operator:
    """The environment's operator (``modelreg run``), stopped and started as `modelreg dev`
    does it."""

    env: Environment

    @property
    def pidfile(self) -> Path:
        return self.env.layout.pidfile("operator")

    @property
    def pid(self) -> int:
        running = process.read_pidfile(self.pidfile)
        if running is None:
            raise RuntimeError("the operator is not running")
        return running.pid

    def stop(self) -> None:
        process.stop(self.pidfile)

    def start(self) -> None:
        """Start it (if stopped); returns once it is healthy and its webhooks registered."""
        devenv.up(self.env.layout.root, log=lambda _: None, build=False)

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start()


@contextlib.contextmanager
def profiled(pid: int, out: Path | None, rate: int = 47) -> Iterator[None]:
    """py-spy samples ``pid`` for the block (collapsed stacks into ``out``), if asked for and
    installed; a no-op otherwise."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if out is None or not Path(spy).exists():
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            *(spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate)),
            *("--nonblocking", "--output", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def parallel(count: int, workers: int, task: Callable[[int], None]) -> list[BaseException]:
    """Run ``task(i)`` for i in range(count) on ``workers`` threads; the errors."""
    errors: list[BaseException] = []
    with cf.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for fut in [pool.submit(task, i) for i in range(count)]:
            if (e := fut.exception()) is not None:
                errors.append(e)
    return errors


class PerThread:
    """One Api client per thread (httpx pools are per client)."""

    def __init__(self, env: Environment, user: str) -> None:
        self.env, self.user = env, user
        self.local = threading.local()
        self.all: list[Api] = []
        self.lock = threading.Lock()

    def get(self) -> Api:
        api: Api | None = getattr(self.local, "api", None)
        if api is None:
            api = Api(self.env, self.user)
            self.local.api = api
            with self.lock:
                self.all.append(api)
        return api

    def close(self) -> int:
        retries = sum(a.retries for a in self.all)
        for a in self.all:
            a.close()
        return retries


# --- 1. ceiling --------------------------------------------------------------------------------


def ceiling(
    env: Environment,
    op: Operator,
    namespace: str,
    threads: list[int],
    seconds: float,
    log: Log,
) -> Result:
    """The API server's raw write rate: ConfigMap creates and ModelVersion /status merge
    patches per second, at each concurrency, with the operator stopped."""
    admin = Api(env)
    peak = max(threads)
    # one version per thread to patch (created while the operator runs: its webhook
    # admits creates); their model does not exist, so the operator leaves them alone
    art = fixtures.Artifact("s3://models/bench/ceiling/model.bin", "0" * 64)
    for i in range(peak):
        body = fixtures.version_body(f"ceil-{i}", "no-such-model", art, "example.invalid/x:1")
        admin.post(mr(namespace, "modelversions"), body)
    levels = []
    with op.stopped():
        for c in threads:
            row: Result = {"threads": c}
            for kind in ("create", "status"):
                rate, errors = _blast(env, namespace, kind, c, seconds)
                row[f"{kind}_per_s"], row[f"{kind}_errors"] = rate, errors
            log(
                f"  ceiling {c:>3} threads: {row['create_per_s']:7.1f} creates/s, "
                f"{row['status_per_s']:7.1f} status patches/s"
            )
            levels.append(row)
    admin.close()
    best_create = max(levels, key=lambda r: r["create_per_s"])
    best_status = max(levels, key=lambda r: r["status_per_s"])
    create, status = best_create["create_per_s"], best_status["status_per_s"]
    return {
        "seconds_per_level": seconds,
        "levels": levels,
        "create_per_s": create,
        "create_threads": best_create["threads"],
        "status_per_s": status,
        "status_threads": best_status["threads"],
        # each version needs at least its create and one status write
        "version_limit_per_s": 1 / (1 / create + 1 / status) if create and status else 0.0,
    }


def _blast(
    env: Environment, namespace: str, kind: str, c: int, seconds: float
) -> tuple[float, int]:
    """``c`` threads sending creates (or status patches) for ``seconds``: (per s, errors)."""
    pool = PerThread(env, "admin")
    done: Counter[int] = Counter()
    errors: Counter[int] = Counter()
    stop_at = time.monotonic() + seconds

    def work(tid: int) -> None:
        api = pool.get()
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            try:
                if kind == "create":
                    api.post(
                        f"/api/v1/namespaces/{namespace}/configmaps",
                        {"metadata": {"name": f"c{c}-{tid}-{i}"}, "data": {"k": "v" * 64}},
                    )
                else:
                    api.merge_patch(
                        mr(namespace, "modelversions", f"ceil-{tid}", "status"),
                        {"status": {"observedGeneration": i}},
                    )
            except ApiError:
                errors[tid] += 1
                continue
            done[tid] += 1

    started = time.monotonic()
    parallel(c, c, work)
    elapsed = time.monotonic() - started
    pool.close()
    return sum(done.values()) / elapsed, sum(errors.values())


# --- 2. registration ---------------------------------------------------------------------


@dataclass
class Registered:
    """What a registration left behind, for the later benchmarks."""

    namespace: str
    models: list[str]
    versions: dict[str, list[str]]  # model -> version names, in creation order
    artifacts: list[fixtures.Artifact]
    images: list[str]


@dataclass
class VersionWatch:
    """When each ModelVersion of a namespace was first seen verified, and its number."""

    verified: dict[str, float] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)
    ready: dict[str, float] = field(default_factory=dict)

    def __call__(self, type_: str, obj: Obj, t: float) -> None:
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        if status.get("number"):
            self.numbers[name] = int(status["number"])
        if name not in self.verified and fixtures.verified(obj):
            self.verified[name] = t
        if name not in self.ready and fixtures.conditions(obj).get("Ready") == "True":
            self.ready[name] = t


def prepare(
    env: Environment, namespace: str, models: int, artifacts: int, images: int, log: Log
) -> tuple[list[str], list[fixtures.Artifact], list[str]]:
    admin = Api(env)
    model_names = [f"m{i:03d}" for i in range(models)]
    fixtures.create_models(admin, namespace, model_names)
    admin.close()
    arts = fixtures.upload_artifacts(env, namespace, artifacts)
    imgs = [fixtures.push_image(env, "bench/serving", f"{i}") for i in range(images)]
    log(f"  {models} models, {artifacts} artifacts, {images} images ready")
    return model_names, arts, imgs


def registration(
    env: Environment,
    op: Operator,
    namespace: str,
    n: int,
    models: int,
    concurrency: int,
    artifacts: int,
    images: int,
    timeout: float,
    log: Log,
    profile: Path | None = None,
) -> tuple[Result, Registered]:
    """N ModelVersions across ``models`` RegisteredModels, created by dana on
    ``concurrency`` threads, from the first create to the last one verified."""
    models = max(1, min(models, n))
    names, arts, imgs = prepare(env, namespace, models, artifacts, images, log)
    plan = [(f"{names[i % models]}-v{i // models + 1}", names[i % models]) for i in range(n)]
    versions: dict[str, list[str]] = defaultdict(list)
    for v, m in plan:
        versions[m].append(v)
    admin = Api(env)
    watcher = VersionWatch()
    created: dict[str, float] = {}
    pool = PerThread(env, "dana")

    def create(i: int) -> None:
        name, model = plan[i]
        body = fixtures.version_body(name, model, arts[i % len(arts)], imgs[i % len(imgs)])
        pool.get().post(mr(namespace, "modelversions"), body)
        created[name] = time.monotonic()

    pid = op.pid
    with Watch(admin, mr(namespace, "modelversions"), watcher):
        before, cpu0 = admin.metrics(), cpu_seconds(pid)
        with profiled(pid, profile):
            t0 = time.monotonic()
            errors = parallel(n, concurrency, create)
            t_created = time.monotonic()
            if errors:
                log(f"  {len(errors)} creates failed, first: {errors[0]}")
            with contextlib.suppress(TimeoutError):
                wait_until(
                    f"{n} versions verified",
                    lambda: len(watcher.verified) >= n - len(errors),
                    timeout,
                    every=0.2,
                )
        t_end = max(watcher.verified.values(), default=time.monotonic())
        after, cpu1 = admin.metrics(), cpu_seconds(pid)
    retries = pool.close()
    admin.close()
    delta = after - before
    elapsed = t_end - t0
    latencies = [watcher.verified[v] - created[v] for v in watcher.verified if v in created]
    lists = [
        (k, v) for k, v in delta.count.items() if k.verb == "LIST" and k.resource == "modelversions"
    ]
    list_count = sum(v for _, v in lists)
    list_bytes = sum(delta.bytes.get(k, 0) for k, _ in lists)
    result = {
        "versions": n,
        "models": models,
        "concurrency": concurrency,
        "created": len(created),
        "create_errors": len(errors),
        "client_retries": retries,
        "verified": len(watcher.verified),
        "seconds": elapsed,
        "create_seconds": t_created - t0,
        "versions_per_s": len(watcher.verified) / elapsed if elapsed > 0 else 0.0,
        "create_per_s": len(created) / (t_created - t0) if t_created > t0 else 0.0,
        "latency_p50_s": pct(latencies, 50),
        "latency_p95_s": pct(latencies, 95),
        "operator_cpu_s": cpu1 - cpu0,
        "api_requests": delta.total(),
        "api_writes": delta.writes(),
        "modelversion_lists": list_count,
        "modelversion_list_mb": list_bytes / 1e6,
        "busiest_requests": delta.by_verb_resource(),
    }
    log(
        f"  registration of {n}: {result['versions_per_s']:.1f} versions/s "
        f"({result['verified']}/{n} verified in {elapsed:.1f}s; "
        f"{list_count} LISTs of modelversions, {list_bytes / 1e6:.0f} MB)"
    )
    return result, Registered(namespace, names, dict(versions), arts, imgs)


def _create_verified(
    env: Environment,
    namespace: str,
    model: str,
    bodies: list[Obj],
    timeout: float,
) -> dict[str, int]:
    """Create ``model`` and its versions (as dana) and wait for them to be verified; their
    numbers."""
    admin, dana = Api(env), Api(env, "dana")
    admin.post(mr(namespace, "registeredmodels"), fixtures.model_body(model))
    watcher = VersionWatch()
    with Watch(admin, mr(namespace, "modelversions"), watcher):
        for b in bodies:
            dana.post(mr(namespace, "modelversions"), b)
        names = [b["metadata"]["name"] for b in bodies]
        wait_until(
            f"versions of {model} verified and numbered",
            lambda: all(n in watcher.verified and n in watcher.numbers for n in names),
            timeout,
        )
    admin.close()
    dana.close()
    return {n: watcher.numbers[n] for n in names}


@dataclass
class DeploymentWatch:
    """Every pod-template version a Deployment was seen pointing at, with the time."""

    seen: dict[str, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))

    def __call__(self, type_: str, obj: Obj, t: float) -> None:
        labels = ((obj.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels")
        version = (labels or {}).get("modelreg.dev/version")
        history = self.seen[obj["metadata"]["name"]]
        if version and (not history or history[-1][1] != version):
            history.append((t, version))

    def first(self, name: str, version: int, after: float = 0.0) -> float | None:
        return next((t for t, v in list(self.seen[name]) if v == str(version) and t >= after), None)


def _serving(api: Api, namespace: str, md: str, version: str) -> bool:
    status = api.get(mr(namespace, "modeldeployments", md)).get("status") or {}
    ready = fixtures.conditions({"status": status}).get("Ready") == "True"
    return ready and (status.get("currentVersion") or {}).get("name") == version


# --- 3. approval to rollout ----------------------------------------------------------------


def approvals(
    env: Environment, namespace: str, count: int, reg: Registered, log: Log, timeout: float = 120
) -> Result:
    """``count`` approvals (as alice), one at a time, each of a newer version of a model whose
    ModelDeployment follows the latest Ready version: from the approval request to the
    Deployment's pod template carrying the version's number."""
    model = "approvals"
    bodies = [
        fixtures.version_body(
            f"{model}-v{i}", model, reg.artifacts[i % len(reg.artifacts)], reg.images[0]
        )
        for i in range(count + 1)
    ]
    numbers = _create_verified(env, namespace, model, bodies, timeout)
    admin, alice = Api(env), Api(env, "alice")
    deps = DeploymentWatch()
    latencies, served = [], []
    with Watch(admin, f"/apis/apps/v1/namespaces/{namespace}/deployments", deps):
        admin.post(mr(namespace, "modeldeployments"), fixtures.deployment_body(model, model))
        for i in range(count + 1):
            name = f"{model}-v{i}"
            t0 = time.monotonic()
            fixtures.approve(alice, namespace, name)
            t1 = wait_until(
                f"Deployment {model} at {name}",
                partial(deps.first, model, numbers[name], t0),
                timeout,
                every=0.02,
            )
            wait_until(
                f"{model} serving {name}",
                partial(_serving, admin, namespace, model, name),
                timeout,
            )
            if i > 0:  # the first approval creates the Deployment: not a rollout
                latencies.append(t1 - t0)
                served.append(time.monotonic() - t0)
    admin.close()
    alice.close()
    result = {
        "approvals": len(latencies),
        "p50_s": pct(latencies, 50),
        "p95_s": pct(latencies, 95),
        "max_s": max(latencies, default=0.0),
        "to_ready_p50_s": pct(served, 50),
    }
    log(f"  approval→rollout over {len(latencies)}: p50 {result['p50_s']:.3f}s")
    return result


# --- 4. failure to rollback ----------------------------------------------------------------


@dataclass
class CrashWatch:
    """When a pod of each version was first seen crashing (CrashLoopBackOff or restarts)."""

    crashing: dict[str, float] = field(default_factory=dict)

    def __call__(self, type_: str, obj: Obj, t: float) -> None:
        version = (obj["metadata"].get("labels") or {}).get("modelreg.dev/version")
        if not version or version in self.crashing:
            return
        for cs in (obj.get("status") or {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff" or cs.get("restartCount", 0) > 0:
                self.crashing[version] = t
                return


def failures(
    env: Environment, namespace: str, count: int, reg: Registered, log: Log, timeout: float = 120
) -> Result:
    """``count`` rollouts of crash-looping versions (KWOK's ``-crashloop`` images): from the
    crash being visible on a pod to the Deployment pointing back at the good version."""
    model = "failures"
    crash_image = fixtures.push_image(env, "bench/model-crashloop", "1")
    good = f"{model}-good"
    bodies = [fixtures.version_body(good, model, reg.artifacts[0], reg.images[0])] + [
        fixtures.version_body(f"{model}-crash{i}", model, reg.artifacts[0], crash_image)
        for i in range(1, count + 1)
    ]
    numbers = _create_verified(env, namespace, model, bodies, timeout)
    admin, alice = Api(env), Api(env, "alice")
    deps, pods = DeploymentWatch(), CrashWatch()
    to_rollback, detect, total = [], [], []
    with (
        Watch(admin, f"/apis/apps/v1/namespaces/{namespace}/deployments", deps),
        Watch(
            admin,
            f"/api/v1/namespaces/{namespace}/pods",
            pods,
            label_selector=f"modelreg.dev/deployment={model}",
        ),
    ):
        admin.post(mr(namespace, "modeldeployments"), fixtures.deployment_body(model, model))
        fixtures.approve(alice, namespace, good)
        wait_until(f"{model} serving {good}", lambda: _serving(admin, namespace, model, good), 60)
        for i in range(1, count + 1):
            name = f"{model}-crash{i}"
            t0 = time.monotonic()
            fixtures.approve(alice, namespace, name)
            t_out = wait_until(
                f"Deployment {model} at {name}",
                partial(deps.first, model, numbers[name], t0),
                timeout,
                every=0.02,
            )
            t_vis = wait_until(
                f"pods of {name} crashing",
                partial(pods.crashing.get, str(numbers[name])),
                timeout,
                every=0.02,
            )
            t_back = wait_until(
                f"Deployment {model} back at {good}",
                partial(deps.first, model, numbers[good], t_out),
                timeout,
                every=0.02,
            )
            to_rollback.append(t_back - t_vis)
            detect.append(t_vis - t_out)
            total.append(t_back - t0)
            wait_until(
                f"{model} serving {good}", lambda: _serving(admin, namespace, model, good), 60
            )
    admin.close()
    alice.close()
    result = {
        "failures": len(to_rollback),
        "p50_s": pct(to_rollback, 50),
        "p95_s": pct(to_rollback, 95),
        "max_s": max(to_rollback, default=0.0),
        "crash_visible_after_rollout_p50_s": pct(detect, 50),
        "approval_to_rollback_p50_s": pct(total, 50),
    }
    log(f"  failure→rollback over {len(to_rollback)}: p50 {result['p50_s']:.3f}s")
    return result


# --- 5 and 6. steady state and restart -----------------------------------------------------


def _quiet(api: Api, quiet: float, timeout: float) -> float:
    """Wait until no request to modelreg.dev objects came for ``quiet`` seconds; the time
    (monotonic) of the last one seen."""
    last_count, last_change = api.metrics().modelreg(), time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() - last_change < quiet and time.monotonic() < deadline:
        time.sleep(min(1.0, quiet / 4))
        count = api.metrics().modelreg()
        if count != last_count:
            # /metrics is scraped without a resource: it does not count
            last_count, last_change = count, time.monotonic()
    return last_change


KINDS = {
    "registeredmodels": "RegisteredModel",
    "modelversions": "ModelVersion",
    "modeldeployments": "ModelDeployment",
}
_RECONCILES = re.compile(r"^modelreg_reconciles_total\{(.*)\} (\S+)$", re.M)


def object_counts(api: Api) -> dict[str, int]:
    """How many of each modelreg kind exist (one LIST of one item each)."""
    counts = {}
    for plural, kind in KINDS.items():
        page = api.get(f"{GROUP_PATH}/{plural}", params={"limit": "1"})
        counts[kind] = len(page.get("items", [])) + int(
            page.get("metadata", {}).get("remainingItemCount") or 0
        )
    return counts


def operator_reconciles(env: Environment) -> dict[str, float] | None:
    """The operator's ``modelreg_reconciles_total`` by kind (all reasons); None if its
    metrics do not answer."""
    url = f"http://127.0.0.1:{env.ports.operator_metrics}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    out: dict[str, float] = defaultdict(float)
    for labels, value in _RECONCILES.findall(text):
        kind = re.search(r'kind="([^"]*)"', labels)
        if kind:
            out[kind.group(1)] += float(value)
    return dict(out)


def _resumed(env: Environment, counts: dict[str, int], timeout: float) -> float | None:
    """Wait until the (just started) operator has reconciled every object once; the time
    (monotonic) it had, None if it did not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = operator_reconciles(env)
        if done is not None and all(done.get(k, 0) >= n for k, n in counts.items()):
            return time.monotonic()
        time.sleep(0.1)
    return None


def steady_and_restart(
    env: Environment,
    op: Operator,
    versions_in_cluster: int,
    idle: float,
    quiet: float,
    log: Log,
    settle_timeout: float = 1800,
    profile: Path | None = None,
) -> Result:
    """Idle figures of the running operator at N versions; the same with the operator
    stopped (the baseline: the control plane's own traffic); then a restart: how long until
    it is quiet again and what it wrote."""
    api = Api(env)
    _quiet(api, quiet, settle_timeout)
    pid = op.pid
    rss, hwm = rss_bytes(pid)
    m0, c0, t0 = api.metrics(), cpu_seconds(pid), time.monotonic()
    time.sleep(idle)
    m1, c1, t1 = api.metrics(), cpu_seconds(pid), time.monotonic()
    running = m1 - m0
    op.stop()
    time.sleep(1)
    b0, tb0 = api.metrics(), time.monotonic()
    time.sleep(idle)
    b1, tb1 = api.metrics(), time.monotonic()
    base = b1 - b0
    per_min = 60 / (t1 - t0)
    base_per_min = 60 / (tb1 - tb0)
    # restart
    counts = object_counts(api)
    r0, start = api.metrics(), time.monotonic()
    op.start()
    healthy = time.monotonic() - start
    new_pid = op.pid
    with profiled(new_pid, profile):
        # settled: every object reconciled once (the operator's own count), then quiet
        resumed = _resumed(env, counts, settle_timeout)
        last = _quiet(api, quiet, settle_timeout)
    r1, end = api.metrics(), time.monotonic()
    restart = r1 - r0
    rss2, _ = rss_bytes(new_pid)
    base_writes = base.writes() * (end - start) / (tb1 - tb0)
    result = {
        "versions_in_cluster": versions_in_cluster,
        "idle_seconds": idle,
        "rss_mb": rss / 2**20,
        "peak_rss_mb": hwm / 2**20,
        "idle_cpu_percent": 100 * (c1 - c0) / (t1 - t0),
        "idle_requests_per_min": (running.total() * per_min) - (base.total() * base_per_min),
        "idle_modelreg_requests_per_min": running.modelreg() * per_min,
        "baseline_requests_per_min": base.total() * base_per_min,
        "idle_busiest": running.by_verb_resource(6),
        "restart_healthy_s": healthy,
        "restart_objects": counts,
        "restart_resumed_s": None if resumed is None else resumed - start,
        "restart_settled_s": max(0.0, last - start, (resumed or start) - start),
        "restart_writes": max(0, round(restart.writes() - base_writes)),
        "restart_modelreg_writes": restart.modelreg(writes=True),
        "restart_requests": restart.total(),
        "restart_busiest": restart.by_verb_resource(8),
        "restart_write_breakdown": [
            r for r in restart.by_verb_resource(40) if r[0].split()[0] in WRITE_VERBS
        ],
        "rss_after_restart_mb": rss2 / 2**20,
    }
    api.close()
    log(
        f"  steady at {versions_in_cluster}: RSS {result['rss_mb']:.0f} MB, idle CPU "
        f"{result['idle_cpu_percent']:.1f}%, {result['idle_requests_per_min']:.1f} req/min; "
        f"restart settled in {result['restart_settled_s']:.1f}s with "
        f"{result['restart_modelreg_writes']} modelreg writes"
    )
    return result


# --- 7. MLflow side by side --------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(workdir: Path, log: Log) -> Iterator[str]:
    """``mlflow server`` with a SQLite store on a free loopback port (its defaults
    otherwise); its URI."""
    port = _free_port()
    out = (workdir / "mlflow-server.log").open("wb")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "mlflow", "server"),
            *("--backend-store-uri", f"sqlite:///{workdir}/mlflow.db"),
            *("--default-artifact-root", f"{workdir}/artifacts"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited; see {workdir}/mlflow-server.log")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:  # noqa: S310
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_until("mlflow server", up, 120, every=0.3)
        log(f"  mlflow server at {uri}")
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(15)
        out.close()


def _lookup_latencies(
    lookup: Callable[[str], object], models: list[str], count: int
) -> list[float]:
    out = []
    for i in range(count):
        t = time.monotonic()
        lookup(models[i % len(models)])
        out.append(time.monotonic() - t)
    return out


def mlflow_side_by_side(
    env: Environment,
    reg: Registered,
    registration_result: Result,
    concurrency: int,
    lookups: int,
    log: Log,
    timeout: float = 600,
) -> Result:
    """The same versions registered in MLflow (MlflowClient against ``mlflow server``), and
    "latest approved version of model X" lookups in both: MLflow's alias ``champion``
    against the SDK's RegisteredModel.status.latestApprovedVersion."""
    import logging

    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)

    from modelreg.sdk import Client

    plan = [
        (model, reg.artifacts[i % len(reg.artifacts)].uri)
        for model, names in reg.versions.items()
        for i in range(len(names))
    ]
    result: Result = {"versions": len(plan), "models": len(reg.models), "lookups": lookups}
    with (
        tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp,
        mlflow_server(Path(tmp), log) as uri,
    ):
        local = threading.local()

        def client() -> MlflowClient:
            c: MlflowClient | None = getattr(local, "client", None)
            if c is None:
                c = local.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            return c

        setup = MlflowClient(tracking_uri=uri, registry_uri=uri)
        for m in reg.models:
            setup.create_registered_model(m)
        numbers: dict[str, list[int]] = defaultdict(list)

        def create(i: int) -> None:
            model, source = plan[i]
            # READY at once with a SQLite store: no need for the client's 1 s status polling
            v = client().create_model_version(model, source, await_creation_for=0)
            numbers[model].append(int(v.version))

        t0 = time.monotonic()
        errors = parallel(len(plan), concurrency, create)
        elapsed = time.monotonic() - t0
        done = sum(len(v) for v in numbers.values())
        result.update(
            {
                "mlflow_seconds": elapsed,
                "mlflow_errors": len(errors),
                "mlflow_versions_per_s": done / elapsed if elapsed else 0.0,
                "modelreg_versions_per_s": registration_result["versions_per_s"],
            }
        )
        if errors:
            log(f"  {len(errors)} MLflow creates failed, first: {errors[0]!r}")
        result["registration_ratio"] = (
            result["modelreg_versions_per_s"] / result["mlflow_versions_per_s"]
            if result["mlflow_versions_per_s"]
            else 0.0
        )
        # champions: MLflow's alias on each model's newest version; modelreg's approval
        for m in reg.models:
            setup.set_registered_model_alias(m, "champion", str(max(numbers[m])))
        ml_lat = _lookup_latencies(
            lambda m: setup.get_model_version_by_alias(m, "champion"), reg.models, lookups
        )
    alice = Api(env, "alice")
    admin = Api(env)
    for m in reg.models:
        fixtures.approve(alice, reg.namespace, reg.versions[m][-1])

    def all_approved() -> bool:
        items = admin.get(mr(reg.namespace, "registeredmodels"))["items"]
        latest = {
            i["metadata"]["name"]: ((i.get("status") or {}).get("latestApprovedVersion") or {})
            for i in items
        }
        return all(latest.get(m, {}).get("name") == reg.versions[m][-1] for m in reg.models)

    wait_until("each model's latest approved version", all_approved, timeout, every=0.5)
    alice.close()
    admin.close()
    sdk = Client(reg.namespace, kubeconfig=env.layout.kubeconfig, context="admin")

    def latest_approved(model: str) -> object:
        ref = sdk.model(model).status.latest_approved_version
        assert ref is not None  # noqa: S101 (the wait above saw it)
        return sdk.get(ref.name)

    mr_lat = _lookup_latencies(latest_approved, reg.models, lookups)
    sdk.close()
    result.update(
        {
            "mlflow_lookup_p50_ms": 1000 * pct(ml_lat, 50),
            "mlflow_lookup_p95_ms": 1000 * pct(ml_lat, 95),
            "mlflow_lookups_per_s": len(ml_lat) / sum(ml_lat) if ml_lat else 0.0,
            "modelreg_lookup_p50_ms": 1000 * pct(mr_lat, 50),
            "modelreg_lookup_p95_ms": 1000 * pct(mr_lat, 95),
            "modelreg_lookups_per_s": len(mr_lat) / sum(mr_lat) if mr_lat else 0.0,
            "modelreg_lookup": "Client.model(m).status.latest_approved_version, then "
            "Client.get(name): 2 GETs",
            "mlflow_lookup": "MlflowClient.get_model_version_by_alias(m, 'champion'): 1 request",
        }
    )
    result["lookup_ratio"] = (
        result["modelreg_lookups_per_s"] / result["mlflow_lookups_per_s"]
        if result["mlflow_lookups_per_s"]
        else 0.0
    )
    log(
        f"  MLflow: {result['mlflow_versions_per_s']:.1f} versions/s "
        f"(modelreg/MLflow {result['registration_ratio']:.2f}); lookups p50 "
        f"{result['modelreg_lookup_p50_ms']:.1f} ms vs {result['mlflow_lookup_p50_ms']:.1f} ms"
    )
    return result
