"""Capture the testdata of the Argo CD health checks (gitops/argocd/health) from a live cluster.

Every file written is what ``kubectl get -o yaml`` printed for an object that the real
operator reconciled (kubectl hides managedFields by default), in a dedicated namespace,
with a one-line comment on top saying how the state was produced. Nothing is hand-edited:

- "status not written yet" is the API server's answer to ``kubectl create -o yaml``
  (ModelVersion: the admission webhook has run, the operator has not);
- "generation not observed yet" (RegisteredModel, ModelDeployment) is produced by stopping
  the operator (``modelreg dev up --no-operator``), editing the spec, capturing, and
  starting the operator again.

Run it against a fresh local environment (it uses the contexts admin, dana and alice):

    .venv/bin/modelreg dev up --dir .dev-argo && . .dev-argo/env.sh
    .venv/bin/python hack/argocd-health-testdata.py --dir .dev-argo
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from modelreg.devenv import manifests
from modelreg.devenv.s3 import client

ROOT = Path(__file__).resolve().parent.parent
HEALTH = ROOT / "gitops" / "argocd" / "health" / "modelreg.dev"
NS = "argo-health"
GROUP_VERSION = "modelreg.dev/v1alpha1"
PLURAL = {
    "RegisteredModel": "registeredmodels",
    "ModelVersion": "modelversions",
    "ModelDeployment": "modeldeployments",
}
env = os.environ
T = TypeVar("T")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def kubectl(*args: str, user: str = "admin", stdin: str | None = None) -> str:
    r = subprocess.run(
        ["kubectl", f"--context={user}", "-n", NS, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if r.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} as {user}: {r.stderr.strip()}")
    return r.stdout


def get(kind: str, name: str) -> dict[str, Any]:
    return json.loads(kubectl("get", PLURAL[kind], name, "-o", "json"))  # type: ignore[no-any-return]


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == type_), {})


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 120) -> T:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {what} (last: {last!r})")


def wait_condition(
    kind: str, name: str, type_: str, status: str, reason: str | None = None, timeout: float = 120
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get(kind, name)
        c = condition(obj, type_)
        ok = c.get("status") == status and (reason is None or c.get("reason") == reason)
        return obj if ok else None

    return wait_for(f"{kind} {name} {type_}={status} {reason or ''}", check, timeout)


def settle(kind: str, name: str, quiet: float = 4.0, timeout: float = 120) -> None:
    """Wait until the object's status has not changed for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        status = get(kind, name).get("status")
        if status != last:
            last, since = status, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{kind} {name} kept changing for {timeout}s")


def write(kind: str, filename: str, text: str, how: str) -> None:
    doc = yaml.safe_load(text)
    if "managedFields" in doc["metadata"]:
        raise RuntimeError("kubectl printed managedFields: use a kubectl that hides them")
    path = HEALTH / kind / "testdata" / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {how}\n{text}")
    log(f"  wrote {path.relative_to(ROOT)}")


def capture(kind: str, name: str, filename: str, how: str) -> None:
    text = kubectl("get", PLURAL[kind], name, "-o", "yaml")
    write(kind, filename, text, f"kubectl get {PLURAL[kind]} {name} -o yaml: {how}")


def create(kind: str, name: str, spec: dict[str, Any], user: str = "dana") -> str:
    body = {"apiVersion": GROUP_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}
    return kubectl("create", "-o", "yaml", "-f", "-", user=user, stdin=yaml.safe_dump(body))


def annotate(kind: str, name: str, user: str, **values: str) -> None:
    pairs = [f"modelreg.dev/{k.replace('_', '-')}={v}" for k, v in values.items()]
    kubectl("annotate", PLURAL[kind], name, *pairs, "--overwrite", user=user)


def operator(running: bool, root: Path) -> None:
    args = [sys.executable, "-m", "modelreg", "dev", "up", "--dir", str(root)]
    subprocess.run([*args] if running else [*args, "--no-operator"], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- artifacts and images ------------------------------------------------------------------


class Store:
    def __init__(self) -> None:
        self.s3 = client(
            env["MODELREG_S3_ENDPOINT"],
            env["AWS_ACCESS_KEY_ID"],
            env["AWS_SECRET_ACCESS_KEY"],
            env["AWS_DEFAULT_REGION"],
        )
        self.bucket = env["MODELREG_S3_BUCKET"]

    def upload(self, key: str) -> dict[str, str]:
        """A small model archive; returns spec.artifact for it."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            payload = f"model {key}\n".encode()
            info = tarfile.TarInfo("model.txt")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        data = buf.getvalue()
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256")
        return {
            "uri": f"s3://{self.bucket}/{key}",
            "sha256": hashlib.sha256(data).hexdigest(),
            "format": "sklearn",
        }


def push(repository: str, tag: str) -> str:
    """Push a one-layer image to the anonymous registry; returns its reference."""
    ref = f"{env['MODELREG_REGISTRY']}/{repository}:{tag}"
    with tempfile.TemporaryDirectory() as tmp:
        layer = Path(tmp) / "layer.tar"
        with tarfile.open(layer, "w") as tar:
            data = f"{repository}:{tag}\n".encode()
            info = tarfile.TarInfo("srv/README")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        subprocess.run(
            ["crane", "append", "-f", str(layer), "-t", ref, "--insecure"],
            check=True,
            capture_output=True,
            env={**env, "DOCKER_CONFIG": tmp},
        )
    return ref


# --- the scenarios ---------------------------------------------------------------------------


def policy(required: int = 1, gates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "approvalPolicy": {
            "requiredApprovals": required,
            "approvers": {"groups": ["ml-approvers"]},
            "selfApproval": "Forbidden",
            "metricGates": gates or [],
        }
    }


def version_spec(
    model: str, artifact: dict[str, str], image: str, **extra: object
) -> dict[str, Any]:
    """A version whose metrics pass the gates (unless ``metrics`` says otherwise)."""
    return {
        "modelRef": {"name": model},
        "artifact": artifact,
        "image": {"reference": image},
        "metrics": {"auc": 0.95},
        **extra,
    }


def deployment_spec(model: str, deadline: int = 600, **extra: object) -> dict[str, Any]:
    return {
        "modelRef": {"name": model},
        "replicas": 2,
        "rollout": {"progressDeadlineSeconds": deadline, "automaticRollback": "Enabled"},
        **extra,
    }


def approved_version(name: str, model: str, artifact: dict[str, str], image: str) -> None:
    create("ModelVersion", name, version_spec(model, artifact, image))
    wait_condition("ModelVersion", name, "Approved", "False", "PendingManualApproval")
    annotate("ModelVersion", name, "alice", approval="Approved", approval_comment="looks good")
    wait_condition("ModelVersion", name, "Ready", "True", "Deployable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="the dev environment's directory")
    root = parser.parse_args().dir.resolve()

    log(f"namespace {NS}")
    kubectl(
        "apply",
        "--server-side",
        "--field-manager=argocd-health-testdata",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(manifests.demo_namespace_objects(NS)),
    )
    store = Store()
    good = store.upload(f"{NS}/fraud/1/model.tar.gz")
    sklearn = push("serving/sklearn", "1.5")
    crashloop = push("serving/scorer-crashloop", "2")
    unready = push("serving/ranker-unready", "2")

    mv, md, rm = "ModelVersion", "ModelDeployment", "RegisteredModel"

    # --- ModelVersion: one version per state, of the model fraud-detector ----------------
    log("ModelVersion states")
    create(rm, "fraud-detector", policy(gates=[{"metric": "auc", "min": 0.9}]))
    create(rm, "churn", policy(required=2))

    approved_version("fraud-detector-v1", "fraud-detector", good, sklearn)
    capture(mv, "fraud-detector-v1", "approved.yaml", "verified and approved by alice")

    create(mv, "fraud-detector-v2", version_spec("fraud-detector", good, sklearn))
    wait_condition(mv, "fraud-detector-v2", "Ready", "False", "NotApproved")
    capture(mv, "fraud-detector-v2", "pending-approval.yaml", "verified, no decision yet")

    create(mv, "fraud-detector-v3", version_spec("fraud-detector", good, sklearn))
    wait_condition(mv, "fraud-detector-v3", "Ready", "False", "NotApproved")
    annotate(mv, "fraud-detector-v3", "alice", approval="Rejected", approval_comment="AUC too low")
    wait_condition(mv, "fraud-detector-v3", "Ready", "False", "Rejected")
    capture(mv, "fraud-detector-v3", "rejected.yaml", "rejected by alice")

    missing = {**good, "uri": f"s3://{store.bucket}/{NS}/fraud/4/model.tar.gz"}
    create(mv, "fraud-detector-v4", version_spec("fraud-detector", missing, sklearn))
    wait_condition(mv, "fraud-detector-v4", "Ready", "False", "ArtifactNotVerified")
    capture(mv, "fraud-detector-v4", "artifact-not-found.yaml", "the S3 object does not exist")

    wrong = {**good, "sha256": hashlib.sha256(b"another model").hexdigest()}
    create(mv, "fraud-detector-v5", version_spec("fraud-detector", wrong, sklearn))
    wait_condition(mv, "fraud-detector-v5", "Ready", "False", "ArtifactNotVerified")
    capture(mv, "fraud-detector-v5", "checksum-mismatch.yaml", "spec.artifact.sha256 is wrong")

    no_image = f"{env['MODELREG_REGISTRY']}/serving/sklearn:9.9-missing"
    create(mv, "fraud-detector-v6", version_spec("fraud-detector", good, no_image))
    wait_condition(mv, "fraud-detector-v6", "Ready", "False", "ImageNotResolved")
    capture(mv, "fraud-detector-v6", "image-not-found.yaml", "the registry has no such tag")

    private = f"{env['MODELREG_PRIVATE_REGISTRY']}/serving/sklearn:1.5"
    create(mv, "fraud-detector-v7", version_spec("fraud-detector", good, private))
    wait_condition(mv, "fraud-detector-v7", "Ready", "False", "ImageNotResolved")
    capture(mv, "fraud-detector-v7", "image-unauthorized.yaml", "private registry, no pullSecrets")

    unreachable = f"127.0.0.1:{free_port()}/serving/sklearn:1.5"
    create(mv, "fraud-detector-v8", version_spec("fraud-detector", good, unreachable))
    wait_condition(mv, "fraud-detector-v8", "Ready", "Unknown", "VerificationPending")
    capture(mv, "fraud-detector-v8", "registry-unreachable.yaml", "nothing listens on the port")

    offline = {"uri": f"https://127.0.0.1:{free_port()}/fraud/9/model.tar.gz"}
    create(mv, "fraud-detector-v9", version_spec("fraud-detector", offline, sklearn))
    wait_condition(mv, "fraud-detector-v9", "Ready", "Unknown", "VerificationPending")
    capture(mv, "fraud-detector-v9", "store-unreachable.yaml", "nothing listens on the port")

    create(
        mv,
        "fraud-detector-v10",
        version_spec("fraud-detector", good, sklearn, metrics={"auc": 0.71}),
    )
    wait_condition(mv, "fraud-detector-v10", "Approved", "False", "MetricGateFailed")
    capture(mv, "fraud-detector-v10", "metric-gate-failed.yaml", "auc 0.71 is below the gate 0.90")

    approved_version("fraud-detector-v11", "fraud-detector", good, sklearn)
    annotate(mv, "fraud-detector-v11", "dana", archived="true")
    wait_condition(mv, "fraud-detector-v11", "Ready", "False", "Archived")
    capture(mv, "fraud-detector-v11", "archived.yaml", "approved, then archived by dana")

    text = create(mv, "fraud-detector-v12", version_spec("fraud-detector", good, sklearn))
    write(
        mv,
        "no-status.yaml",
        text,
        "kubectl create -o yaml (as dana): the API server's answer, after the admission "
        "webhook and before the operator wrote any status",
    )

    create(mv, "orphan-v1", version_spec("no-such-model", good, sklearn))
    wait_condition(mv, "orphan-v1", "Ready", "False", "ModelNotFound")
    capture(mv, "orphan-v1", "model-not-found.yaml", "its RegisteredModel does not exist")

    create(mv, "churn-v1", version_spec("churn", good, sklearn))
    wait_condition(mv, "churn-v1", "Ready", "False", "NotApproved")
    annotate(mv, "churn-v1", "alice", approval="Approved", approval_comment="one of two")
    wait_for(
        "churn-v1 to record alice's approval",
        lambda: "approved by alice" in condition(get(mv, "churn-v1"), "Ready").get("message", ""),
    )
    capture(mv, "churn-v1", "partially-approved.yaml", "1 of 2 required approvals")

    # --- ModelDeployment ----------------------------------------------------------------
    log("ModelDeployment states")
    # healthy, then (operator stopped) generation-behind, then rolling out an unready image
    create(rm, "ranker", policy())
    approved_version("ranker-v1", "ranker", good, sklearn)
    create(md, "ranker", deployment_spec("ranker"))
    wait_condition(md, "ranker", "Ready", "True", "Serving")
    settle(md, "ranker")
    capture(md, "ranker", "healthy.yaml", "serving ranker-v1 on 2 replicas")

    # a rollout that fails: automatic rollback to the version that served before
    create(rm, "scorer", policy())
    approved_version("scorer-v1", "scorer", good, sklearn)
    create(md, "scorer", deployment_spec("scorer", deadline=60))
    wait_condition(md, "scorer", "Ready", "True", "Serving")
    approved_version("scorer-v2", "scorer", good, crashloop)
    wait_condition(md, "scorer", "RolledBack", "True", "RolloutFailed")
    wait_condition(md, "scorer", "Ready", "True", "Serving")
    settle(md, "scorer")
    capture(md, "scorer", "rolled-back.yaml", "scorer-v2 crash-loops; rolled back to scorer-v1")

    # the serving version is rejected: rolled back with ApprovalRevoked
    create(rm, "pricing", policy())
    approved_version("pricing-v1", "pricing", good, sklearn)
    create(md, "pricing", deployment_spec("pricing"))
    wait_condition(md, "pricing", "Ready", "True", "Serving")
    approved_version("pricing-v2", "pricing", good, sklearn)
    wait_for(
        "pricing to serve pricing-v2",
        lambda: (
            condition(get(md, "pricing"), "Ready")
            .get("message", "")
            .startswith("serving pricing-v2")
        ),
    )
    annotate(mv, "pricing-v2", "alice", approval="Rejected", approval_comment="bias found")
    wait_condition(md, "pricing", "RolledBack", "True", "ApprovalRevoked")
    wait_condition(md, "pricing", "Ready", "True", "Serving")
    settle(md, "pricing")
    capture(md, "pricing", "approval-revoked.yaml", "pricing-v2 rejected while serving")

    # held at an older version by modelreg.dev/rollback-to
    create(rm, "search", policy())
    approved_version("search-v1", "search", good, sklearn)
    create(md, "search", deployment_spec("search"))
    wait_condition(md, "search", "Ready", "True", "Serving")
    approved_version("search-v2", "search", good, sklearn)
    wait_for(
        "search to serve search-v2",
        lambda: (
            condition(get(md, "search"), "Ready").get("message", "").startswith("serving search-v2")
        ),
    )
    annotate(md, "search", "dana", rollback_to="search-v1")
    wait_condition(md, "search", "RolledBack", "True", "Manual")
    wait_for(
        "search to serve search-v1",
        lambda: (
            condition(get(md, "search"), "Ready").get("message", "").startswith("serving search-v1")
        ),
    )
    settle(md, "search")
    capture(md, "search", "manual-rollback.yaml", "held at search-v1 by modelreg.dev/rollback-to")

    # the only version crash-loops: nothing to roll back to, scaled to zero
    create(rm, "spam", policy())
    approved_version("spam-v1", "spam", good, crashloop)
    create(md, "spam", deployment_spec("spam", deadline=60))
    wait_condition(md, "spam", "RolledBack", "False", "NoPreviousVersion")
    settle(md, "spam")
    capture(md, "spam", "scaled-to-zero.yaml", "spam-v1 crash-loops, no earlier version")

    # automatic rollback disabled: the failed rollout stays
    create(rm, "forecast", policy())
    approved_version("forecast-v1", "forecast", good, crashloop)
    create(
        md,
        "forecast",
        {
            **deployment_spec("forecast", deadline=60),
            "rollout": {"progressDeadlineSeconds": 60, "automaticRollback": "Disabled"},
        },
    )
    wait_condition(md, "forecast", "Ready", "False", "RolloutFailed")
    settle(md, "forecast")
    capture(
        md, "forecast", "rollout-failed.yaml", "forecast-v1 crash-loops, automaticRollback Disabled"
    )

    # waiting for an approval: nothing deployable yet / the pinned version is pending
    create(rm, "triage", policy())
    create(mv, "triage-v1", version_spec("triage", good, sklearn))
    wait_condition(mv, "triage-v1", "Ready", "False", "NotApproved")
    create(md, "triage", deployment_spec("triage"))
    wait_condition(md, "triage", "Ready", "False", "NoApprovedVersion")
    settle(md, "triage")
    capture(md, "triage", "no-approved-version.yaml", "triage-v1 waits for approval")
    create(md, "triage-pinned", deployment_spec("triage", version={"name": "triage-v1"}))
    wait_condition(md, "triage-pinned", "Ready", "False", "VersionNotApproved")
    settle(md, "triage-pinned")
    capture(md, "triage-pinned", "pinned-not-approved.yaml", "pinned to triage-v1, pending")

    # pinned to a version that failed verification / that does not exist
    create(
        md,
        "fraud-detector",
        deployment_spec("fraud-detector", version={"name": "fraud-detector-v5"}),
    )
    wait_condition(md, "fraud-detector", "Ready", "False", "VersionInvalid")
    settle(md, "fraud-detector")
    capture(md, "fraud-detector", "pinned-invalid.yaml", "pinned to a checksum mismatch")
    create(md, "fraud-detector-next", deployment_spec("fraud-detector", version={"number": 99}))
    wait_condition(md, "fraud-detector-next", "Ready", "False", "VersionNotFound")
    settle(md, "fraud-detector-next")
    capture(md, "fraud-detector-next", "version-not-found.yaml", "pinned to version 99")

    # --- RegisteredModel ----------------------------------------------------------------
    log("RegisteredModel states")
    settle(rm, "fraud-detector")
    capture(rm, "fraud-detector", "healthy.yaml", "a model with versions in every state")

    # --- operator stopped: generation not observed yet, status not written yet ------------
    log("stopping the operator")
    operator(False, root)
    try:
        kubectl(
            "patch",
            PLURAL[rm],
            "churn",
            "--type=merge",
            "-p",
            json.dumps({"spec": {"description": "Churn model, two approvers"}}),
            user="dana",
        )
        capture(rm, "churn", "generation-behind.yaml", "spec edited while the operator was stopped")
        text = create(rm, "ltv", policy())
        write(
            rm,
            "no-status.yaml",
            text,
            "kubectl create -o yaml (as dana) while the operator was stopped",
        )
        kubectl(
            "patch",
            PLURAL[md],
            "ranker",
            "--type=merge",
            "-p",
            json.dumps({"spec": {"replicas": 3}}),
            user="dana",
        )
        capture(
            md,
            "ranker",
            "generation-behind.yaml",
            "spec.replicas edited while the operator was stopped",
        )
        text = create(md, "ltv", deployment_spec("ltv"))
        write(
            md,
            "no-status.yaml",
            text,
            "kubectl create -o yaml (as dana) while the operator was stopped",
        )
    finally:
        log("starting the operator")
        operator(True, root)

    # an image whose pods never become ready: the rollout is in progress (deadline 600 s)
    wait_condition(md, "ranker", "Ready", "True", "Serving")
    approved_version("ranker-v2", "ranker", good, unready)
    wait_for(
        "ranker to roll out ranker-v2",
        lambda: condition(get(md, "ranker"), "Ready").get("message", "") == "rolling out ranker-v2",
    )
    settle(md, "ranker")
    capture(
        md, "ranker", "progressing.yaml", "ranker-v2's pods never become ready (deadline 600 s)"
    )
    log("done")


if __name__ == "__main__":
    main()
