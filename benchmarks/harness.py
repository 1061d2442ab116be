"""Runs the benchmarks in order against one environment and renders the results."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import fixtures, scenarios
from benchmarks.api import Api
from modelreg.devenv import Environment

Log = Callable[[str], None]
REPO = Path(__file__).resolve().parent.parent
ALL = ("ceiling", "registration", "approvals", "failures", "mlflow", "steady")
START, END = "<!-- benchmark-results:start -->", "<!-- benchmark-results:end -->"


@dataclass
class Config:
    """Sizes and durations; ``smoke()`` gives tiny ones (the CI smoke test)."""

    versions: list[int] = field(default_factory=lambda: [1000, 10000])
    approvals: int = 100
    failures: int = 20
    models: int = 100
    threads: list[int] = field(default_factory=lambda: [1, 4, 16, 32, 64])
    ceiling_seconds: float = 5.0
    concurrency: int = 16
    artifacts: int = 10
    images: int = 5
    idle_seconds: float = 60.0
    quiet_seconds: float = 10.0
    lookups: int = 1000
    mlflow: bool = True
    prefix: str = "bench"
    profile_dir: Path | None = None
    keep_namespaces: bool = False
    only: list[str] = field(default_factory=lambda: list(ALL))

    @classmethod
    def smoke(cls, **overrides: Any) -> Config:
        values: dict[str, Any] = {
            "versions": [4],
            "approvals": 2,
            "failures": 1,
            "models": 2,
            "threads": [1, 4],
            "ceiling_seconds": 0.5,
            "concurrency": 4,
            "artifacts": 2,
            "images": 1,
            "idle_seconds": 2.0,
            "quiet_seconds": 2.0,
            "lookups": 5,
        }
        return cls(**{**values, **overrides})


def machine(env: Environment) -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    pins = dict(
        line.split("=", 1)
        for line in (REPO / "hack" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    import importlib.metadata as md

    def version(dist: str) -> str:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "-"

    api = Api(env)
    kube = api.get("/version").get("gitVersion", "?")
    api.close()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem / 2**30, 1),
        "load_avg_at_start": os.getloadavg()[0],
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kubernetes": kube,
        "etcd": pins.get("ETCD_VERSION", "?"),
        "kwok": pins.get("KWOK_VERSION", "?"),
        "minio": pins.get("MINIO_VERSION", "?"),
        "modelreg": version("modelreg"),
        "kopf": version("kopf"),
        "mlflow": version("mlflow"),
    }


def _attempt(
    into: dict[str, Any], key: str, log: Log, bench: Callable[..., dict[str, Any]], *args: Any
) -> None:
    """Run one benchmark; a failure is recorded (``errors``) and the next ones still run."""
    try:
        into[key] = bench(*args)
    except Exception as e:  # any failure: report it, go on
        log(f"  {key} FAILED: {e}")
        into.setdefault("errors", {})[key] = f"{type(e).__name__}: {e}"[:500]


def run(env: Environment, cfg: Config, log: Log = print) -> dict[str, Any]:
    """Every benchmark ``cfg.only`` names, in order; the results (JSON-able)."""
    op = scenarios.Operator(env)
    admin = Api(env)
    results: dict[str, Any] = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        "machine": machine(env),
        "sizes": [],
    }
    started = time.monotonic()
    made: list[str] = []

    def namespace(suffix: str) -> str:
        name = f"{cfg.prefix}-{suffix}"
        fixtures.delete_namespace(admin, name, wait=300)
        fixtures.create_namespace(env, name)
        made.append(name)
        return name

    def profile(name: str) -> Path | None:
        return cfg.profile_dir / f"{name}.txt" if cfg.profile_dir else None

    try:
        if "ceiling" in cfg.only:
            log("ceiling (operator stopped)")
            ns = namespace("ceiling")
            results["ceiling"] = scenarios.ceiling(
                env, op, ns, cfg.threads, cfg.ceiling_seconds, log
            )
            if not cfg.keep_namespaces:
                fixtures.delete_namespace(admin, ns)  # its deletion overlaps the next steps
                made.remove(ns)
        total = 0
        for n in cfg.versions:
            size: dict[str, Any] = {"versions": n}
            results["sizes"].append(size)
            log(f"N = {n}")
            ns = namespace(f"n{n}")
            reg_result, reg = scenarios.registration(
                env,
                op,
                ns,
                n,
                cfg.models,
                cfg.concurrency,
                cfg.artifacts,
                cfg.images,
                timeout=max(120.0, n * 0.5),
                log=log,
                profile=profile(f"registration-{n}"),
            )
            size["registration"] = reg_result
            if "ceiling" in results:
                limit = results["ceiling"]["version_limit_per_s"]
                reg_result["ratio_to_limit"] = reg_result["versions_per_s"] / limit if limit else 0
            total += n
            if "approvals" in cfg.only and cfg.approvals:
                _attempt(
                    size,
                    "approvals",
                    log,
                    scenarios.approvals,
                    *(env, ns, cfg.approvals, reg, log),
                )
                total += cfg.approvals + 1
            if "failures" in cfg.only and cfg.failures:
                _attempt(
                    size,
                    "failures",
                    log,
                    scenarios.failures,
                    *(env, ns, cfg.failures, reg, log),
                )
                total += cfg.failures + 1
            if "mlflow" in cfg.only and cfg.mlflow:
                _attempt(
                    size,
                    "mlflow",
                    log,
                    scenarios.mlflow_side_by_side,
                    *(env, reg, reg_result, cfg.concurrency, cfg.lookups, log),
                )
            if "steady" in cfg.only:
                _attempt(
                    size,
                    "steady",
                    log,
                    scenarios.steady_and_restart,
                    *(env, op, total, cfg.idle_seconds, cfg.quiet_seconds, log),
                    *(1800.0, profile(f"restart-{n}")),
                )
            if not cfg.keep_namespaces:
                # the next size starts from an empty cluster; the last need not wait
                last = n == cfg.versions[-1]
                fixtures.delete_namespace(admin, ns, wait=0 if last else 600)
                made.remove(ns)
                total = 0
    finally:
        if not cfg.keep_namespaces:
            for ns in made:
                fixtures.delete_namespace(admin, ns)
        admin.close()
    results["wall_seconds"] = time.monotonic() - started
    return results


# --- the report ------------------------------------------------------------------------------


def _f(value: Any, digits: int = 1) -> str:
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(results: dict[str, Any]) -> str:
    """The results as Markdown tables."""
    m = results["machine"]
    out = [
        f"Measured {m['date']} on {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, "
        f"Linux {m['kernel']}, load average {m['load_avg_at_start']:.1f} at the start; "
        f"Kubernetes {m['kubernetes']}, etcd {m['etcd']}, KWOK {m['kwok']}, "
        f"Python {m['python']}, kopf {m['kopf']}, modelreg {m['modelreg']}, "
        f"MLflow {m['mlflow']}. Wall time {results.get('wall_seconds', 0) / 60:.1f} min.",
        "",
    ]
    c = results.get("ceiling")
    if c:
        out += [
            f"**1. Ceiling** (operator stopped, {c['seconds_per_level']:g} s per level)",
            "",
            "| threads | ConfigMap creates/s | ModelVersion status patches/s |",
            "|---:|---:|---:|",
        ]
        out += [
            f"| {r['threads']} | {_f(r['create_per_s'])} | {_f(r['status_per_s'])} |"
            for r in c["levels"]
        ]
        out += [
            "",
            f"Best: {_f(c['create_per_s'])} creates/s ({c['create_threads']} threads), "
            f"{_f(c['status_per_s'])} status patches/s ({c['status_threads']} threads): "
            f"ceiling-derived limit {_f(c['version_limit_per_s'])} versions/s.",
            "",
        ]
    rows: list[tuple[str, str, Callable[[dict[str, Any]], str]]] = [
        ("2", "registration: versions/s (first create → all verified)",
         lambda s: _f(s["registration"]["versions_per_s"])),
        ("2", "registration: wall time, s", lambda s: _f(s["registration"]["seconds"])),
        ("2", "registration: ratio to ceiling-derived limit (target ≥ 0.5)",
         lambda s: _f(s["registration"].get("ratio_to_limit", "-"), 2)),
        ("2", "registration: per-version create→verified p50 / p95, s",
         lambda s: f"{_f(s['registration']['latency_p50_s'], 2)} / "
         f"{_f(s['registration']['latency_p95_s'], 2)}"),
        ("2", "registration: LISTs of modelversions (MB transferred)",
         lambda s: f"{_f(s['registration']['modelversion_lists'])} "
         f"({_f(s['registration']['modelversion_list_mb'], 0)})"),
        ("2", "registration: operator CPU, s", lambda s: _f(s["registration"]["operator_cpu_s"])),
        ("3", "approval → rollout p50 / p95, s (target p50 < 1)",
         lambda s: f"{_f(s['approvals']['p50_s'], 3)} / {_f(s['approvals']['p95_s'], 3)} "
         f"(n={s['approvals']['approvals']})"),
        ("4", "failure visible → rollback p50 / p95, s (target p50 < 2)",
         lambda s: f"{_f(s['failures']['p50_s'], 3)} / {_f(s['failures']['p95_s'], 3)} "
         f"(n={s['failures']['failures']})"),
        ("4", "rollout → crash visible p50, s (KWOK, not modelreg)",
         lambda s: _f(s["failures"]["crash_visible_after_rollout_p50_s"], 2)),
        ("5", "versions in the cluster", lambda s: _f(s["steady"]["versions_in_cluster"])),
        ("5", "operator RSS, MB (target < 250 at 10k) / peak",
         lambda s: f"{_f(s['steady']['rss_mb'], 0)} / {_f(s['steady']['peak_rss_mb'], 0)}"),
        ("5", "operator RSS after restart, MB",
         lambda s: _f(s["steady"]["rss_after_restart_mb"], 0)),
        ("5", "operator CPU while idle, %", lambda s: _f(s["steady"]["idle_cpu_percent"], 2)),
        ("5", "idle API requests/min beyond baseline, non-WATCH (target ~0)",
         lambda s: _f(s["steady"]["idle_requests_per_min"])),
        ("5", "idle requests/min to modelreg.dev objects",
         lambda s: _f(s["steady"]["idle_modelreg_requests_per_min"])),
        ("6", "restart: healthy / every object reconciled / settled (then quiet), s",
         lambda s: f"{_f(s['steady']['restart_healthy_s'])} / "
         f"{_f(s['steady'].get('restart_resumed_s'))} / "
         f"{_f(s['steady']['restart_settled_s'])}"),
        ("6", "restart: writes beyond baseline (to modelreg.dev objects; target 0)",
         lambda s: f"{_f(s['steady']['restart_writes'])} "
         f"({_f(s['steady']['restart_modelreg_writes'])})"),
        ("6", "restart: requests (non-WATCH)", lambda s: _f(s["steady"]["restart_requests"])),
        ("7", "MLflow registration: versions/s",
         lambda s: _f(s["mlflow"]["mlflow_versions_per_s"])),
        ("7", "registration modelreg / MLflow (target ≥ 1)",
         lambda s: _f(s["mlflow"]["registration_ratio"], 2)),
        ("7", "latest-approved lookup p50 / p95, ms: modelreg",
         lambda s: f"{_f(s['mlflow']['modelreg_lookup_p50_ms'], 2)} / "
         f"{_f(s['mlflow']['modelreg_lookup_p95_ms'], 2)}"),
        ("7", "latest-approved lookup p50 / p95, ms: MLflow (alias)",
         lambda s: f"{_f(s['mlflow']['mlflow_lookup_p50_ms'], 2)} / "
         f"{_f(s['mlflow']['mlflow_lookup_p95_ms'], 2)}"),
        ("7", "lookups/s modelreg / MLflow (target ≥ 1)",
         lambda s: _f(s["mlflow"]["lookup_ratio"], 2)),
    ]  # fmt: skip
    sizes = results["sizes"]
    if sizes:
        out += [
            "**2-7. At N versions** (N across "
            f"{sizes[0]['registration']['models']} RegisteredModels, "
            f"{sizes[0]['registration']['concurrency']} client threads)",
            "",
            "| # | figure | " + " | ".join(f"N = {_f(s['versions'])}" for s in sizes) + " |",
            "|---|---|" + "---:|" * len(sizes),
        ]
        for num, label, get in rows:
            cells = []
            for s in sizes:
                try:
                    cells.append(get(s))
                except (KeyError, TypeError):
                    cells.append("-")
            if any(cell != "-" for cell in cells):
                out.append(f"| {num} | {label} | " + " | ".join(cells) + " |")
        out.append("")
        for s in sizes:
            busiest = s["registration"].get("busiest_requests") or []
            if busiest:
                out.append(
                    f"Busiest requests during the registration of {_f(s['versions'])}: "
                    + ", ".join(
                        f"{name} x{_f(n)} ({b / 1e6:,.0f} MB)" for name, n, b in busiest[:6]
                    )
                    + "."
                )
            writes = (s.get("steady") or {}).get("restart_write_breakdown") or []
            if writes:
                out.append(
                    f"Write requests of the restart at {_f(s['versions'])} (baseline included): "
                    + ", ".join(f"{name} x{_f(n)}" for name, n, _ in writes[:8])
                    + "."
                )
            restart = (s.get("steady") or {}).get("restart_busiest") or []
            if restart:
                out.append(
                    f"Requests of the restart at {_f(s['versions'])}: "
                    + ", ".join(f"{name} x{_f(n)}" for name, n, _ in restart[:6])
                    + "."
                )
        out.append("")
    return "\n".join(out)


def write_report(path: Path, table: str, title: str) -> None:
    """Put ``table`` between the result markers of ``path`` (created if missing)."""
    block = f"{START}\n### {title}\n\n{table}\n{END}"
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START in text and END in text:
        text = re.sub(
            re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.DOTALL
        )
    else:
        text += "\n" + block + "\n"
    path.write_text(text)
