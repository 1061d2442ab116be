"""The ModelDeployment reconcile against a fake Kube (no cluster): what it writes in the
states the cluster tests reach only slowly (found by an audit's simulations)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelreg.controller import deployments as D

Obj = dict[str, Any]


def version(name: str, n: int, ready: str = "Deployable", sha256: str | None = "e" * 64) -> Obj:
    status = "True" if ready == "Deployable" else "Unknown" if "Pending" in ready else "False"
    return {
        "metadata": {"name": name, "namespace": "ns", "annotations": {}},
        "spec": {
            "modelRef": {"name": "m"},
            "artifact": {"uri": f"s3://b/{name}"},
            "image": {"reference": "r/x:1"},
        },
        "status": {
            "number": n,
            "image": {"resolved": f"r/x@sha256:{n:064d}"},
            "artifact": {"sha256": sha256} if sha256 else {},
            "conditions": [{"type": "Ready", "status": status, "reason": ready}],
        },
    }


class FakeKube:
    """Just what a reconcile calls; a Deployment rolls out only when told."""

    def __init__(self) -> None:
        self.versions: dict[str, Obj] = {}
        self.dep: Obj | None = None
        self.svc: Obj | None = None
        self.applied: list[str] = []
        self.scaled = 0
        self.md: Obj = {
            "apiVersion": "modelreg.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {
                "name": "serve",
                "namespace": "ns",
                "generation": 1,
                "uid": "u",
                "annotations": {},
            },
            "spec": {"modelRef": {"name": "m"}},
        }

    def model(self, namespace: str, name: str) -> Obj:
        return {"spec": {}}

    def versions_of(self, namespace: str, model: str) -> list[Obj]:
        return list(self.versions.values())

    def get(self, plural: str, namespace: str, name: str) -> Obj | None:
        if plural == "modelversions":
            return copy.deepcopy(self.versions.get(name))
        return copy.deepcopy(self.md)

    def get_deployment(self, namespace: str, name: str) -> Obj | None:
        return copy.deepcopy(self.dep)

    def get_service(self, namespace: str, name: str) -> Obj | None:
        return copy.deepcopy(self.svc)

    def pods(self, namespace: str, selector: str) -> list[Obj]:
        return []

    def apply(self, obj: Obj) -> None:
        if obj["kind"] != "Deployment":
            self.svc = copy.deepcopy(obj)
            return
        obj = copy.deepcopy(obj)
        obj["metadata"]["generation"] = 1
        same = self.dep is not None and self.template(self.dep) == self.template(obj)
        obj["status"] = self.dep["status"] if same and self.dep else {}
        self.dep = obj
        self.applied.append(self.template(obj)["metadata"]["labels"]["modelreg.dev/version"])

    @staticmethod
    def template(dep: Obj) -> Obj:
        return dep["spec"]["template"]  # type: ignore[no-any-return]

    def scale_to_zero(self, namespace: str, name: str) -> None:
        assert self.dep is not None
        self.dep["spec"]["replicas"] = 0
        self.scaled += 1

    def patch_status(self, plural: str, namespace: str, name: str, patch: Obj) -> None:
        def merge(a: Obj, b: Obj) -> None:
            for k, v in b.items():
                if v is None:
                    a.pop(k, None)
                elif isinstance(v, dict) and isinstance(a.get(k), dict):
                    merge(a[k], v)
                else:
                    a[k] = v

        merge(self.md.setdefault("status", {}), patch)

    # --- what the cluster does -------------------------------------------------------------

    def rolled_out(self) -> None:
        assert self.dep is not None
        self.dep["status"] = {
            "observedGeneration": 1,
            "updatedReplicas": 1,
            "availableReplicas": 1,
            "replicas": 1,
        }

    def deadline_exceeded(self) -> None:
        assert self.dep is not None
        self.dep["status"] = {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "lastUpdateTime": "2999-01-01T00:00:00Z",
                }
            ],
        }

    def image(self) -> str:
        assert self.dep is not None
        return str(self.template(self.dep)["spec"]["containers"][0]["image"])

    def status(self) -> Obj:
        return self.md["status"]  # type: ignore[no-any-return]

    def condition(self, type_: str) -> tuple[str, str]:
        c = next(c for c in self.status()["conditions"] if c["type"] == type_)
        return c["status"], c["reason"]

    def respec(self, **spec: Any) -> None:
        self.md["spec"].update(spec)
        self.md["metadata"]["generation"] += 1


def reconcile(k: FakeKube) -> list[str]:
    outcome = D.reconcile_deployment(k, k.md)
    return [reason for _, reason, _ in outcome.events]


def serving_v1() -> FakeKube:
    k = FakeKube()
    k.versions["v1"] = version("v1", 1)
    reconcile(k)
    k.rolled_out()
    reconcile(k)
    assert k.status()["currentVersion"]["name"] == "v1"
    return k


def serving_v2_after_v1() -> FakeKube:
    """Following the latest version: v1 rolled out, then v2."""
    k = serving_v1()
    k.versions["v2"] = version("v2", 2)
    reconcile(k)
    k.rolled_out()
    reconcile(k)
    return k


V1_IMAGE = f"r/x@sha256:{1:064d}"


def pinned_v2_failed() -> FakeKube:
    """Serving v1 again after v2, pinned, failed to roll out."""
    k = serving_v1()
    k.versions["v2"] = version("v2", 2)
    k.respec(version={"name": "v2"})
    reconcile(k)
    k.deadline_exceeded()
    assert reconcile(k) == ["RolloutFailed", "RolloutStarted", "RolledBack"]
    k.rolled_out()
    return k


def test_hand_edits_are_undone_while_a_pinned_target_failed() -> None:
    k = pinned_v2_failed()
    reconcile(k)
    assert k.dep is not None
    k.template(k.dep)["spec"]["containers"][0]["image"] = "evil:latest"
    reconcile(k)
    assert k.image() == V1_IMAGE
    k.dep = None
    reconcile(k)
    assert k.image() == V1_IMAGE  # deleted: made again


def test_hand_edits_are_undone_while_the_target_is_not_deployable() -> None:
    k = serving_v1()
    k.versions["v3"] = version("v3", 3, ready="VerificationPending")
    k.respec(version={"name": "v3"})
    reconcile(k)
    assert k.dep is not None
    k.template(k.dep)["spec"]["containers"][0]["image"] = "evil:latest"
    reconcile(k)
    assert k.image() == V1_IMAGE


def test_a_failed_version_rolled_back_to_settles() -> None:
    """After falling back from a failed pinned version, the version rolled back to is
    recorded as Succeeded and Progressing is no longer RollingBack."""
    k = pinned_v2_failed()
    assert reconcile(k) == ["RolloutSucceeded"]
    history = [(h["name"], h["result"]) for h in k.status()["history"]]
    assert history[:2] == [("v1", "Succeeded"), ("v2", "Failed")]
    assert k.condition("Progressing") == ("False", "RolloutComplete")
    assert k.condition("Ready") == ("False", "RolloutFailed")


def test_a_failed_manual_rollback_is_not_retried_in_a_loop() -> None:
    k = serving_v2_after_v1()
    k.md["metadata"]["annotations"]["modelreg.dev/rollback-to"] = "v1"
    assert reconcile(k) == ["RolloutStarted", "RolledBack"]
    k.deadline_exceeded()
    assert reconcile(k) == ["RolloutFailed", "RolloutStarted", "RolledBack"]
    k.rolled_out()
    for _ in range(3):
        reconcile(k)
    assert k.applied[-5:] == ["1", "2", "2", "2", "2"]  # v1 once, then v2 stays
    assert k.status()["currentVersion"]["name"] == "v2"
    assert k.condition("Ready") == ("False", "RolloutFailed")


def test_a_manual_rollback_holds_until_the_spec_changes() -> None:
    k = serving_v2_after_v1()
    k.md["metadata"]["annotations"]["modelreg.dev/rollback-to"] = "v1"
    reconcile(k)
    k.rolled_out()
    reconcile(k)
    assert k.status()["manualRollback"] == {"version": "v1", "generation": 1}
    assert k.status()["currentVersion"]["name"] == "v1"
    k.respec(replicas=1)  # any spec change releases it
    reconcile(k)
    assert k.status()["currentVersion"]["name"] == "v2"
    assert k.status()["manualRollback"] == {"version": "v1", "generation": 1}
    # naming another version starts a new hold, at the spec as it is now
    k.md["metadata"]["annotations"]["modelreg.dev/rollback-to"] = "v1-again"
    k.versions["v1-again"] = version("v1-again", 4)
    reconcile(k)
    assert k.status()["manualRollback"] == {"version": "v1-again", "generation": 2}
    del k.md["metadata"]["annotations"]["modelreg.dev/rollback-to"]
    reconcile(k)
    assert "manualRollback" not in k.status()


def test_a_hand_scale_up_after_scaling_to_zero_is_undone() -> None:
    k = serving_v1()
    k.versions["v1"] = version("v1", 1, ready="NotApproved")
    assert reconcile(k) == ["ScaledToZero"]
    assert k.dep is not None
    k.dep["spec"]["replicas"] = 3
    reconcile(k)
    assert k.dep["spec"]["replicas"] == 0
    assert k.condition("Ready") == ("False", "NoDeployableVersion")


def test_a_failure_without_automatic_rollback_is_reported_once() -> None:
    k = serving_v1()
    k.respec(rollout={"automaticRollback": "Disabled"})
    reconcile(k)
    k.versions["v2"] = version("v2", 2)
    reconcile(k)
    k.deadline_exceeded()
    assert reconcile(k) == ["RolloutFailed"]
    assert reconcile(k) == reconcile(k) == []
    assert k.condition("Ready") == ("False", "RolloutFailed")


@pytest.mark.parametrize(("spec_sha", "used"), [(None, "c" * 64), ("d" * 64, "d" * 64)])
def test_the_recorded_checksum_is_checked_at_pod_start(spec_sha: str | None, used: str) -> None:
    k = FakeKube()
    k.versions["v1"] = version("v1", 1, sha256="c" * 64)
    if spec_sha:
        k.versions["v1"]["spec"]["artifact"]["sha256"] = spec_sha
    reconcile(k)
    assert k.dep is not None
    args = k.template(k.dep)["spec"]["initContainers"][0]["args"]
    assert args[-2:] == ["--sha256", used]


FOREIGN = {"metadata": {"name": "serve", "namespace": "ns", "ownerReferences": []}, "spec": {}}


@pytest.mark.parametrize("kind", ["dep", "svc"])
def test_a_foreign_object_of_the_same_name_is_never_written(kind: str) -> None:
    k = FakeKube()
    k.versions["v1"] = version("v1", 1)
    setattr(k, kind, copy.deepcopy(FOREIGN))
    assert reconcile(k) == ["NameConflict"]
    assert k.applied == []
    assert k.scaled == 0
    assert getattr(k, kind) == FOREIGN
    assert k.condition("Ready") == ("False", "NameConflict")
    assert "currentVersion" not in k.status()
    assert reconcile(k) == []  # said once
    setattr(k, kind, None)  # its owner removed it: modelreg goes on
    reconcile(k)
    assert k.applied == ["1"]


def test_a_foreign_deployment_that_replaced_the_served_one_is_not_scaled() -> None:
    k = serving_v1()
    k.dep = copy.deepcopy(FOREIGN)
    k.versions["v1"]["status"]["conditions"][0].update(status="False", reason="Rejected")
    assert reconcile(k) == ["NameConflict"]
    assert k.scaled == 0
    assert k.dep == FOREIGN


def test_a_version_whose_artifact_nobody_pinned_is_not_deployable() -> None:
    """No sha256 given at registration nor recorded from the store (validation.skip
    [Artifact]): pods would load whatever the URI holds then, so it is never served."""
    k = FakeKube()
    k.versions["v1"] = version("v1", 1, sha256=None)
    reconcile(k)
    assert k.dep is None
    assert k.applied == []


def test_the_verified_s3_version_is_fetched() -> None:
    k = FakeKube()
    k.versions["v1"] = version("v1", 1)
    k.versions["v1"]["status"]["artifact"]["versionId"] = "3HL4kqtJlcpXroDTDmJ"
    reconcile(k)
    assert k.dep is not None
    args = k.template(k.dep)["spec"]["initContainers"][0]["args"]
    assert args[-2:] == ["--version-id", "3HL4kqtJlcpXroDTDmJ"]


def test_pointed_at_a_model_that_does_not_exist_it_holds_nothing() -> None:
    """Re-pointing a deployment at a missing model must not freeze what it served: that
    version's revocations would no longer reach it (found by review)."""
    k = serving_v1()
    k.model = lambda namespace, name: None  # type: ignore[method-assign,assignment,return-value]
    k.respec(modelRef={"name": "missing"})
    assert "ScaledToZero" in reconcile(k)
    assert k.scaled == 1
    assert "currentVersion" not in k.status()


def test_the_deployment_s_labels_are_not_copied_to_what_modelreg_writes() -> None:
    k = FakeKube()
    k.md["metadata"]["labels"] = {"argocd.argoproj.io/instance": "payments"}
    k.versions["v1"] = version("v1", 1)
    reconcile(k)
    assert k.dep is not None
    assert k.svc is not None
    assert "argocd.argoproj.io/instance" not in k.dep["metadata"].get("labels", {})
    assert "argocd.argoproj.io/instance" not in k.svc["metadata"].get("labels", {})
