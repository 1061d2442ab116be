"""Every benchmark of benchmarks/ at tiny size against the test session's cluster, so the
harness never rots. Checks the figures are well-formed, never how fast anything is
(figures belong in docs/benchmarks.md)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from benchmarks import harness

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.kwok,
    # MLflow's own warnings (pydantic, deprecations, ...) are not ours to fix
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


def positive(*values: Any) -> bool:
    return all(isinstance(v, int | float) and v > 0 for v in values)


def test_every_benchmark_at_tiny_size(dev_env: Any, modelreg_crds: list[str], tmp_path: Path):
    # the harness makes (and deletes) its own namespaces, named after this prefix
    cfg = harness.Config.smoke(prefix=f"t-bench-{uuid.uuid4().hex[:6]}")
    results = harness.run(dev_env, cfg, log=print)

    c = results["ceiling"]
    assert [r["threads"] for r in c["levels"]] == cfg.threads
    assert all(positive(r["create_per_s"], r["status_per_s"]) for r in c["levels"])
    assert 0 < c["version_limit_per_s"] < min(c["create_per_s"], c["status_per_s"])

    [size] = results["sizes"]
    reg = size["registration"]
    assert reg["versions"] == reg["created"] == reg["verified"] == cfg.versions[0]
    assert reg["create_errors"] == 0
    assert positive(reg["versions_per_s"], reg["seconds"], reg["ratio_to_limit"])
    assert 0 < reg["latency_p50_s"] <= reg["latency_p95_s"]

    a = size["approvals"]
    assert a["approvals"] == cfg.approvals
    assert 0 < a["p50_s"] <= a["p95_s"] <= a["max_s"]

    f = size["failures"]
    assert f["failures"] == cfg.failures
    assert 0 < f["p50_s"] <= f["p95_s"]

    m = size["mlflow"]
    assert m["versions"] == cfg.versions[0]
    assert m["mlflow_errors"] == 0
    assert positive(m["mlflow_versions_per_s"], m["registration_ratio"])
    assert positive(m["modelreg_lookup_p50_ms"], m["mlflow_lookup_p50_ms"], m["lookup_ratio"])

    s = size["steady"]
    assert s["versions_in_cluster"] == cfg.versions[0] + cfg.approvals + 1 + cfg.failures + 1
    assert positive(s["rss_mb"], s["rss_after_restart_mb"], s["restart_healthy_s"])
    assert s["idle_cpu_percent"] >= 0
    assert s["restart_settled_s"] >= 0
    assert s["restart_modelreg_writes"] >= 0

    # the report renders every figure and goes between the markers of a Markdown file
    table = harness.render(results)
    out = tmp_path / "benchmarks.md"
    out.write_text(f"# B\n\nmethod\n\n{harness.START}\nold\n{harness.END}\n\nafter\n")
    harness.write_report(out, table, "smoke")
    text = out.read_text()
    assert "old" not in text
    assert text.startswith("# B\n\nmethod\n")
    assert text.endswith("\nafter\n")
    assert "approval → rollout" in text
    assert "N = 4" in text
