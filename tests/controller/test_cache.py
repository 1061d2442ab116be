"""What the operator remembers of its own writes until its watches catch up."""

from __future__ import annotations

import json
from typing import Any

from modelreg import record
from modelreg.api import annotations as ann
from modelreg.api.registered_model import ApprovalPolicy
from modelreg.controller.cache import OwnWrites, version_entry
from modelreg.controller.deployments import _candidate


def obj(rv: str, uid: str = "u1") -> dict[str, Any]:
    return {"kind": "ModelVersion", "metadata": {"uid": uid, "resourceVersion": rv}}


def test_a_body_older_than_the_operators_write_is_stale_until_the_watch_catches_up() -> None:
    own = OwnWrites()
    own.wrote(obj("120"))
    assert own.stale(obj("100"))  # e.g. an approval's event, sent before the status write
    assert own.stale(obj("119"))
    assert not own.stale(obj("120"))  # the write itself has arrived
    assert len(own) == 0  # and is no longer remembered
    assert not own.stale(obj("100"))


def test_the_latest_of_several_writes_counts() -> None:
    own = OwnWrites()
    own.wrote(obj("130"))
    own.wrote(obj("125"))
    assert own.stale(obj("129"))
    assert not own.stale(obj("131"))


def test_objects_are_independent_and_forgotten_when_gone() -> None:
    own = OwnWrites()
    own.wrote(obj("50", uid="a"))
    assert not own.stale(obj("10", uid="b"))
    own.forget("a")
    assert not own.stale(obj("10", uid="a"))


def test_a_resource_version_that_is_not_a_number_is_not_tracked() -> None:
    own = OwnWrites()
    own.wrote(obj("abc"))
    own.wrote(None)
    assert len(own) == 0


KEY = b"k" * 32


def whole_version() -> dict[str, Any]:
    """A registered, verified, approved version as the API server returns it."""
    annotations = {
        "modelreg.dev/decisions": '[{"user":"alice","decision":"Approved","comment":"ok",'
        '"time":"2026-11-22T22:59:44Z"}]',
        "modelreg.dev/number": "9",
        "modelreg.dev/created-at": "1795388381672451533",
        "modelreg.dev/registered-by": "dana",
        "kopf.modelreg.dev/last-handled-configuration": "{}",
        "kubectl.kubernetes.io/last-applied-configuration": "{" + "x" * 2000 + "}",
    }
    annotations["modelreg.dev/record-signature"] = record.sign(KEY, "ns", "m", annotations)
    digest = "sha256:" + "1" * 64
    mv: dict[str, Any] = {
        "apiVersion": "modelreg.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {
            "name": "m-v9",
            "namespace": "ns",
            "uid": "u9",
            "generation": 1,
            "resourceVersion": "3731",
            "creationTimestamp": "2026-11-22T22:59:41Z",
            "labels": {"team": "fraud"},
            "annotations": annotations,
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {
            "modelRef": {"name": "m"},
            "description": "retrained",
            "artifact": {"uri": "s3://models/m/9", "sha256": "c" * 64, "format": "sklearn"},
            "image": {"reference": "reg/serving/sklearn:1.5", "pullSecrets": [{"name": "r"}]},
            "lineage": {"parameters": {f"p{i}": str(i) for i in range(50)}},
            "metrics": {"auc": 0.93},
            "tags": {"month": "2026-10"},
        },
        "status": {
            "observedGeneration": 1,
            "number": 9,
            "registeredBy": "dana",
            "artifact": {"sizeBytes": 2048, "etag": "e", "versionId": "v", "sha256": "c" * 64},
            "image": {"digest": digest, "resolved": f"reg/serving/sklearn@{digest}"},
            "approval": {
                "state": "Approved",
                "required": 1,
                "decisions": [{"user": "alice", "decision": "Approved", "comment": "ok"}],
            },
            "stage": "Production",
            "deployments": [{"name": "serve", "stage": "Production"}],
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "reason": r,
                    "message": "a long message " * 5,
                    "lastTransitionTime": "2026-11-22T22:59:45Z",
                    "observedGeneration": 1,
                }
                for t, r in [
                    ("ArtifactVerified", "Verified"),
                    ("ImageResolved", "Resolved"),
                    ("Approved", "Approved"),
                    ("Ready", "Deployable"),
                ]
            ],
        },
    }
    mv["status"]["seal"] = record.seal(KEY, record.Verification.of(mv))
    return mv


def test_a_version_entry_keeps_what_the_reconciles_read_and_drops_the_rest() -> None:
    mv = whole_version()
    entry = version_entry(mv)
    policy = ApprovalPolicy()
    full, lean = _candidate(mv, "m", KEY, policy), _candidate(entry, "m", KEY, policy)
    assert (lean.name, lean.number, lean.deployable, lean.ready_reason) == (
        full.name,
        full.number,
        full.deployable,
        full.ready_reason,
    )
    assert lean.deployable  # sealed and signed: the entry is trusted like the version
    assert record.Verification.of(entry) == record.Verification.of(mv)
    assert ann.decisions(entry["metadata"]["annotations"]) == ann.decisions(
        mv["metadata"]["annotations"]
    )
    for key in ("number", "stage", "deployments", "approval", "observedGeneration"):
        assert (entry["status"][key] if key != "approval" else entry["status"][key]["state"]) == (
            mv["status"][key] if key != "approval" else mv["status"][key]["state"]
        )
    assert set(entry["metadata"]["annotations"]) == {
        k for k in mv["metadata"]["annotations"] if k.startswith("modelreg.dev/")
    }
    assert "lineage" not in entry["spec"]
    assert "managedFields" not in entry["metadata"]
    assert len(json.dumps(entry)) < len(json.dumps(mv)) / 3
