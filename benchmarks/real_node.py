"""``python -m benchmarks.real_node``: approval → a real pod Ready and answering, and a
real crash → rollback, on the local environment's real node (docs/benchmarks.md).

In a namespace whose pods run on the real node, with the Quick start's models and its
serving image (MLServer; hack/seed-examples.py must have run, as hack/up.sh does):

- **approval → answering**: a ModelDeployment (1 replica, ``protocol: v2``) follows the
  model; each round registers a new version of the good model and approves it, then
  measures until the Deployment serves it Ready (its readiness probe: the model is
  loaded) and a prediction through the Service answers (``kubectl port-forward``);
- **failure visible → rollback**: a version whose model file cannot be loaded is
  approved; measured from the first time the API server shows one of its pods in a
  crash loop (``CrashLoopBackOff``, or restarted after failures:
  ``rollout.crash_looping``) to ``RolledBack=True``.

The anchor, in the same run and interleaved round by round: the same rollout without
modelreg, a plain Deployment and Service with the pod template the operator wrote
(same images, storage-initializer, probes and artifact), changed with one patch of its
template and measured until it has rolled out and answers. The difference is what
modelreg adds between an approval and a served version (admission, reconcile, status).

Prints the figures (p50/p95 and each round) side by side; no assertion on them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from modelreg import devenv, rollout
from modelreg.devenv import components, manifests

REPO = Path(__file__).resolve().parent.parent
GOOD = ("s3://models/fraud-detector/1/model.tar.gz", "fraud-detector/1/model.tar.gz")
BAD = ("s3://models/fraud-detector/3/model.tar.gz", "fraud-detector/3/model.tar.gz")


def _kubectl(env: devenv.Environment, *args: str, user: str = "admin") -> str:
    out = subprocess.run(
        [env.tools["kubectl"], f"--kubeconfig={env.layout.kubeconfig}", f"--context={user}",
         *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def _apply(env: devenv.Environment, ns: str, objs: list[dict[str, Any]], user: str) -> None:
    out = subprocess.run(
        [env.tools["kubectl"], f"--kubeconfig={env.layout.kubeconfig}", f"--context={user}",
         "-n", ns, "apply", "-f", "-"],
        input=yaml.safe_dump_all(objs), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(out.stderr)


def _get(env: devenv.Environment, ns: str, kind: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(_kubectl(env, "-n", ns, "get", kind, name, "-o", "json"))
    return obj


def _wait(what: str, check: Any, timeout: float = 300, period: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(period)
    raise TimeoutError(what)


def _sha256(env: devenv.Environment, key: str) -> str:
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed", REPO / "hack" / "seed-examples.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("hack/seed-examples.py is missing")
    seed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed)
    sha: str = seed.artifact_sha256s()[key]
    return sha


def _version(name: str, uri: str, sha: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelreg.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "modelRef": {"name": "fraud"},
            "artifact": {"uri": uri, "sha256": sha, "format": "sklearn"},
            "image": {"reference": image},
        },
    }


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == kind:
            return dict(c)
    return {}


def _answers(env: devenv.Environment, ns: str, service: str = "fraud") -> bool:
    argv = [env.tools["kubectl"], f"--kubeconfig={env.layout.kubeconfig}", "--context=admin",
            "-n", ns, "port-forward", f"svc/{service}", ":8080"]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as p:
        try:
            if p.stdout is None:
                return False
            port = int(p.stdout.readline().split("127.0.0.1:", 1)[1].split()[0])
            body = {"inputs": [{"name": "t", "shape": [1, 4], "datatype": "FP64",
                                "data": [420.0, 3, 0.9, 120.0]}]}  # fmt: skip
            r = httpx.post(f"http://127.0.0.1:{port}/v2/models/fraud/infer", json=body, timeout=10)
            return r.status_code == 200 and r.json()["outputs"][0]["data"] == [1]
        finally:
            p.terminate()


ANCHOR = "anchor"


def _anchor_objects(env: devenv.Environment, ns: str) -> list[dict[str, Any]]:
    """A plain Deployment and Service with the pod template and ports the operator wrote
    for ``fraud``, under labels of their own (nothing of modelreg's selects them)."""
    served = _get(env, ns, "deployment", "fraud")
    service = _get(env, ns, "service", "fraud")
    labels = {"app": ANCHOR}
    template = served["spec"]["template"]
    template["metadata"] = {"labels": labels, "annotations": {"bench/round": "0"}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": ANCHOR, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": template,
            "progressDeadlineSeconds": 300,
        },
    }
    ports = [{k: p[k] for k in ("name", "port", "targetPort") if k in p}
             for p in service["spec"]["ports"]]  # fmt: skip
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": ANCHOR, "labels": labels},
        "spec": {"selector": labels, "ports": ports},
    }
    return [deployment, svc]


def _rolled_out(env: devenv.Environment, ns: str, name: str) -> bool:
    d = _get(env, ns, "deployment", name)
    st = d.get("status") or {}
    return bool(
        st.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and st.get("updatedReplicas", 0) == st.get("replicas", 0) == 1
        and st.get("availableReplicas", 0) == 1
    )


def _anchor_round(env: devenv.Environment, ns: str, i: int) -> float:
    """One rollout of the anchor: a new template (as a new version is), until rolled
    out and answering."""
    patch = json.dumps(
        {"spec": {"template": {"metadata": {"annotations": {"bench/round": str(i)}}}}}
    )
    started = time.monotonic()
    _kubectl(env, "-n", ns, "patch", "deployment", ANCHOR, "-p", patch)
    _wait(f"anchor round {i} rolled out", lambda: _rolled_out(env, ns, ANCHOR))
    _wait(f"anchor round {i} answering", lambda: _answers(env, ns, ANCHOR), period=0.2)
    return time.monotonic() - started


def run(env: devenv.Environment, rounds: int, failures: int) -> dict[str, Any]:
    ns = f"bench-real-{uuid.uuid4().hex[:6]}"
    s = env.secrets
    subprocess.run(
        [env.tools["kubectl"], f"--kubeconfig={env.layout.kubeconfig}", "--context=admin",
         "apply", "--server-side", "-f", "-"],
        input=yaml.safe_dump_all(manifests.real_node_namespace_objects(
            ns, env.node_s3_endpoint, s.s3_access_key, s.s3_secret_key, components.S3_REGION)),
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    image = f"{env.registry}/serving/sklearn:1.6"
    model = {
        "apiVersion": "modelreg.dev/v1alpha1",
        "kind": "RegisteredModel",
        "metadata": {"name": "fraud"},
        "spec": {
            "approvalPolicy": {"requiredApprovals": 1, "approvers": {"groups": ["ml-approvers"]}}
        },
    }
    dep = {
        "apiVersion": "modelreg.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "fraud"},
        "spec": {
            "modelRef": {"name": "fraud"},
            "replicas": 1,
            "protocol": "v2",
            "env": [{"name": "MLSERVER_MODEL_NAME", "value": "fraud"}],
            "storage": {"secretRef": {"name": manifests.MODEL_STORE_SECRET}},
            "rollout": {"progressDeadlineSeconds": 300},
        },
    }
    _apply(env, ns, [model], "dana")
    _apply(env, ns, [dep], "dana")
    good, bad = _sha256(env, GOOD[1]), _sha256(env, BAD[1])
    to_answer: list[float] = []
    to_rollback: list[float] = []
    anchor: list[float] = []
    try:
        for i in range(1, rounds + failures + 1):
            broken = i > rounds
            name = f"fraud-v{i}"
            uri, sha = (BAD[0], bad) if broken else (GOOD[0], good)
            _apply(env, ns, [_version(name, uri, sha, image)], "dana")
            _wait(f"{name} verified", lambda n=name: _condition(
                _get(env, ns, "mv", n), "ArtifactVerified").get("status") == "True")  # fmt: skip
            started = time.monotonic()
            _kubectl(env, "-n", ns, "annotate", "mv", name, "modelreg.dev/approval=Approved",
                     user="alice")  # fmt: skip
            if not broken:

                def serving(n: str = name) -> bool:
                    st = _get(env, ns, "mdep", "fraud").get("status") or {}
                    cur = (st.get("currentVersion") or {}).get("name")
                    return cur == n and _condition({"status": st}, "Ready").get("status") == "True"

                _wait(f"{name} Ready", serving)
                _wait(f"{name} answering", lambda: _answers(env, ns), period=0.2)
                to_answer.append(time.monotonic() - started)
                if i == 1:
                    _apply(env, ns, _anchor_objects(env, ns), "admin")
                    _wait("the anchor rolled out", lambda: _rolled_out(env, ns, ANCHOR))
                anchor.append(_anchor_round(env, ns, i))
                continue

            number = _get(env, ns, "mv", name)["status"]["number"]

            def crash_visible(number: int = number) -> float | None:
                # only this version's pods: an earlier broken version's may still be going
                selector = f"modelreg.dev/version={number}"
                pods = json.loads(
                    _kubectl(env, "-n", ns, "get", "pods", "-l", selector, "-o", "json")
                )["items"]
                for p in pods:
                    for cs in (p.get("status") or {}).get("containerStatuses") or []:
                        # the kubelet's CrashLoopBackOff, or restarts after failures
                        # (what the operator also counts: rollout.crash_looping)
                        if rollout.crash_looping(cs):
                            return time.monotonic()
                return None

            seen = _wait("CrashLoopBackOff", crash_visible, period=0.05)
            _wait("RolledBack", lambda: _condition(
                _get(env, ns, "mdep", "fraud"), "RolledBack").get("status") == "True",
                period=0.05)  # fmt: skip
            to_rollback.append(time.monotonic() - seen)
    finally:
        subprocess.run(
            [env.tools["kubectl"], f"--kubeconfig={env.layout.kubeconfig}", "--context=admin",
             "delete", "namespace", ns, "--wait=false"], capture_output=True, check=False,
        )  # fmt: skip
    return {
        "approval_to_answering_s": to_answer,
        "anchor_rollout_to_answering_s": anchor,
        "crash_to_rollback_s": to_rollback,
    }


def _p(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.real_node", description=__doc__)
    p.add_argument("--dir", type=Path, default=Path(os.environ.get("MODELREG_DEV_DIR", ".dev")))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--failures", type=int, default=1)
    args = p.parse_args()
    env = devenv.open_existing(args.dir)
    if env is None or not env.node_ready():
        raise SystemExit(f"no environment with a Ready real node in {args.dir} (hack/up.sh)")
    result = run(env, args.rounds, args.failures)
    print("| on the real node | n | p50 | p95 | each |")
    print("|---|---|---|---|---|")
    for key, label in (
        ("approval_to_answering_s", "modelreg: approval → new version Ready and answering (s)"),
        (
            "anchor_rollout_to_answering_s",
            "anchor: plain Deployment patch → rolled out and answering (s)",
        ),
        ("crash_to_rollback_s", "crash loop visible → RolledBack (s)"),
    ):
        v = result[key]
        if v:
            each = ", ".join(f"{x:.2f}" for x in v)
            print(f"| {label} | {len(v)} | {_p(v, 50):.2f} | {_p(v, 95):.2f} | {each} |")


if __name__ == "__main__":
    main()
