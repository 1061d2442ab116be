"""--cluster=kind skips what needs the local environment's operator, webhooks or 127.0.0.1
servers as the cluster sees them, with a reason; the default (local) run skips nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: operator-dependent tests that are not marked kwok (the audit's examples)
NEEDS_LOCAL_ENV = [
    "tests/controller/test_versions.py",
    "tests/reliability/test_confused_deputy.py",
    "tests/reliability/test_hostile_input.py",
    "tests/integration/test_admission_and_operator.py::"
    "test_validating_webhook_on_loopback_denies_with_its_message",
]


def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_kind_skips_tests_that_need_the_local_operator_and_says_why() -> None:
    # skipped before any fixture runs: no cluster is started, kind or local
    r = pytest_run("--cluster=kind", "-q", "-rs", *NEEDS_LOCAL_ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " passed" not in r.stdout, r.stdout
    assert " failed" not in r.stdout, r.stdout
    assert "needs the local environment's operator" in r.stdout
    for path in NEEDS_LOCAL_ENV:
        assert path.split("::")[0] in r.stdout


def test_the_local_run_keeps_them() -> None:
    r = pytest_run("--cluster=local", "--collect-only", "-q", "-m", "local_env", *NEEDS_LOCAL_ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    collected = [line for line in r.stdout.splitlines() if "::" in line]
    for path in NEEDS_LOCAL_ENV:
        assert any(line.startswith(path) for line in collected), path
    # a test using the operator's `registry` fixture is marked local_env without saying so
    unmarked = "tests/controller/test_deployments.py"
    assert "local_env" not in (REPO / unmarked).read_text()
    rest = pytest_run("--collect-only", "-q", "-m", "not local_env", unmarked)
    assert "::" not in rest.stdout, rest.stdout
