"""The Argo CD health checks (gitops/argocd/health), run as Argo CD runs them (no cluster).

Every case of every ``health_test.yaml`` runs its kind's ``health.lua`` on the testdata
object (captured from a real cluster by hack/argocd-health-testdata.py) in a Lua 5.1
sandbox with what Argo CD gives argocd-cm scripts, and must give the expected status and
message, exactly as ``go test ./util/lua/`` checks Argo CD's own resource_customizations.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gitops import argocd
from tests.gitops.argocd import GITOPS, GROUP, HEALTH, KINDS, REPO, Health

CRDS = REPO / "crds"
CONFIG_MAP = GITOPS / "argocd-cm.yaml"
CM_KEY = "resource.customizations.health.{group}_{kind}"


def cases_of(kind: str) -> list[dict[str, Any]]:
    doc = yaml.safe_load((HEALTH / GROUP / kind / "health_test.yaml").read_text())
    return list(doc["tests"])


CASES = [(kind, case) for kind in KINDS for case in cases_of(kind)]


@pytest.mark.parametrize(
    ("kind", "case"), CASES, ids=[f"{kind}/{case['inputPath']}" for kind, case in CASES]
)
def test_health_check_gives_the_expected_status(kind: str, case: dict[str, Any]) -> None:
    obj = argocd.load(HEALTH / GROUP / kind / case["inputPath"])
    expected = Health(case["healthStatus"]["status"], case["healthStatus"].get("message", ""))
    assert argocd.run(argocd.script(kind).read_text(), obj) == expected


def test_every_kind_of_the_crds_has_a_health_check() -> None:
    kinds = {
        crd["spec"]["names"]["kind"]
        for crd in (yaml.safe_load(p.read_text()) for p in CRDS.glob("*.yaml"))
        if crd["spec"]["group"] == GROUP
    }
    assert kinds == set(KINDS)
    assert {p.name for p in (HEALTH / GROUP).iterdir()} == set(KINDS)
    for kind in KINDS:
        assert argocd.script(kind).is_file(), kind
        assert (HEALTH / GROUP / kind / "health_test.yaml").is_file(), kind


@pytest.mark.parametrize("kind", KINDS)
def test_every_testdata_file_is_a_case(kind: str) -> None:
    testdata = {
        p.relative_to(HEALTH / GROUP / kind).as_posix()
        for p in (HEALTH / GROUP / kind / "testdata").glob("*")
    }
    inputs = [case["inputPath"] for case in cases_of(kind)]
    assert len(inputs) == len(set(inputs)), "a testdata file is used by two cases"
    assert set(inputs) == testdata


@pytest.mark.parametrize("kind", KINDS)
def test_every_case_expects_a_status_argo_cd_knows(kind: str) -> None:
    for case in cases_of(kind):
        assert set(case) == {"healthStatus", "inputPath"}, case
        assert case["healthStatus"]["status"] in argocd.STATUSES, case
        assert set(case["healthStatus"]) <= {"status", "message"}, case


@pytest.mark.parametrize("kind", KINDS)
def test_every_status_a_kind_can_have_is_tested(kind: str) -> None:
    """Each kind's cases cover Healthy, Progressing and, where the kind has them, the rest."""
    statuses = {case["healthStatus"]["status"] for case in cases_of(kind)}
    expected = {
        "RegisteredModel": {"Healthy", "Progressing"},
        "ModelVersion": {"Healthy", "Progressing", "Suspended", "Degraded"},
        "ModelDeployment": {"Healthy", "Progressing", "Suspended", "Degraded"},
    }[kind]
    assert statuses >= expected


@pytest.mark.parametrize(
    ("kind", "path"),
    [(k, p) for k in KINDS for p in sorted((HEALTH / GROUP / k / "testdata").glob("*.yaml"))],
    ids=lambda v: v.name if isinstance(v, Path) else v,
)
def test_testdata_was_captured_from_a_cluster(kind: str, path: Path) -> None:
    """What kubectl printed for an object the operator reconciled, not written by hand."""
    first = path.read_text().splitlines()[0]
    assert first.startswith(("# kubectl get ", "# kubectl create ")), first
    obj = argocd.load(path)
    assert obj["apiVersion"] == f"{GROUP}/v1alpha1"
    assert obj["kind"] == kind
    meta = obj["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp"):
        assert meta[key], key
    assert "managedFields" not in meta
    if "status" in obj:
        assert obj["status"]["observedGeneration"] >= 1


def test_the_sandbox_is_argo_cd_s() -> None:
    """No string/math/io libraries and a safe os, as for argocd-cm scripts."""
    ok = argocd.run('return {status = "Healthy", message = type(os.time())}', {})
    assert ok == Health("Healthy", "number")
    for source in (
        'return {status = string.lower("Healthy")}',
        'return {status = ("Healthy"):lower()}',
        "return {status = math.max(1, 2)}",
        'return {status = io.open("/etc/passwd")}',
        'return {status = os.execute("true")}',
        'return {status = require("string").lower("x")}',
    ):
        with pytest.raises(argocd.LuaError, match=r"nil value|attempt to index|not found"):
            argocd.run(source, {})


def test_the_sandbox_decodes_objects_as_argo_cd() -> None:
    obj = {"metadata": {"generation": 2}, "a": [{"b": "x"}, {"b": "y"}], "n": None}
    source = (
        "return {status = 'Healthy', message = obj.a[1].b .. obj.a[2].b .. #obj.a .. "
        "tostring(obj.n) .. obj.metadata.generation}"
    )
    assert argocd.run(source, obj) == Health("Healthy", "xy2nil2")
    assert argocd.run('return {status = "Fine"}', {}) == Health("Unknown", argocd.INVALID_STATUS)


def test_argocd_cm_holds_exactly_the_health_checks() -> None:
    """gitops/argocd/argocd-cm.yaml is in sync with the health.lua files
    (regenerate it with `.venv/bin/python hack/argocd-cm.py`)."""
    cm = yaml.safe_load(CONFIG_MAP.read_text())
    assert (cm["apiVersion"], cm["kind"]) == ("v1", "ConfigMap")
    assert cm["metadata"]["name"] == "argocd-cm"
    expected = {
        CM_KEY.format(group=GROUP, kind=kind): argocd.script(kind).read_text() for kind in KINDS
    }
    assert cm["data"] == expected
    check = subprocess.run(
        [sys.executable, str(REPO / "hack" / "argocd-cm.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def applications() -> list[Path]:
    return sorted(GITOPS.glob("application-*.yaml"))


@pytest.mark.parametrize("path", applications(), ids=lambda p: p.stem)
def test_applications_use_server_side_apply(path: Path) -> None:
    app = yaml.safe_load(path.read_text())
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    options = app["spec"]["syncPolicy"]["syncOptions"]
    assert "ServerSideApply=true" in options
    assert app["spec"]["destination"]["namespace"]


def test_chart_application_installs_this_repository_s_chart() -> None:
    app = yaml.safe_load((GITOPS / "application-chart.yaml").read_text())
    source = app["spec"]["source"]
    assert source["path"] == "charts/modelreg"
    assert (REPO / source["path"] / "Chart.yaml").is_file()
    assert app["spec"]["destination"]["namespace"] == "modelreg-system"
    assert "CreateNamespace=true" in app["spec"]["syncPolicy"]["syncOptions"]
