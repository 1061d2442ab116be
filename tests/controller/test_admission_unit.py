import datetime as dt
from typing import Any

import pytest

from modelreg.api import annotations as ann
from modelreg.api.registered_model import ApprovalPolicy, Approvers
from modelreg.approval import Requester
from modelreg.controller.admission import Denied, admit_version

NOW = dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC)
POLICY = ApprovalPolicy(approvers=Approvers(groups=["ml-approvers"]))
ALICE = Requester("alice", ("ml-approvers",))


def mv(**annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "v", "annotations": annotations},
        "spec": {"modelRef": {"name": "m"}},
    }


def admit(op, new, old=None, who=ALICE, policy=POLICY, serving=()):
    return admit_version(op, new, old, who, lambda _: policy, NOW, 123, lambda _: list(serving))


def test_create_records_registrant_and_refuses_system_annotations():
    assert admit("CREATE", mv(), who=Requester("dana")) == {
        ann.REGISTERED_BY: "dana",
        ann.CREATED_AT: "123",
    }
    for key in ann.SYSTEM:
        with pytest.raises(Denied, match="written by modelreg only"):
            admit("CREATE", mv(**{key: "x"}))
    with pytest.raises(Denied, match="must not be set at creation"):
        admit("CREATE", mv(**{ann.APPROVAL: "Approved"}))


def test_decision_is_recorded_and_request_annotations_consumed():
    old = mv(**{ann.REGISTERED_BY: "dana"})
    new = mv(**{ann.REGISTERED_BY: "dana", ann.APPROVAL: "Approved", ann.APPROVAL_COMMENT: "good"})
    changes = admit("UPDATE", new, old)
    assert changes[ann.APPROVAL] is None
    assert changes[ann.APPROVAL_COMMENT] is None
    record = ann.decisions({ann.DECISIONS: changes[ann.DECISIONS]})
    assert [(d.user, d.decision, d.comment, d.time) for d in record] == [
        ("alice", "Approved", "good", NOW)
    ]


def test_stale_approval_annotation_is_dropped_not_counted():
    old = mv(**{ann.APPROVAL: "Approved"})
    new = mv(**{ann.APPROVAL: "Approved", "other": "x"})
    assert admit("UPDATE", new, old) == {ann.APPROVAL: None}


def test_denials_name_the_rule():
    old = mv(**{ann.REGISTERED_BY: "alice"})
    with pytest.raises(Denied, match="selfApproval is Forbidden"):
        admit("UPDATE", mv(**{ann.REGISTERED_BY: "alice", ann.APPROVAL: "Approved"}), old)
    with pytest.raises(Denied, match="not an approver"):
        admit("UPDATE", mv(**{ann.APPROVAL: "Rejected"}), mv(), who=Requester("eve"))
    with pytest.raises(Denied, match="does not exist"):
        admit("UPDATE", mv(**{ann.APPROVAL: "Approved"}), mv(), policy=None)
    with pytest.raises(Denied, match="must not be added, changed or removed"):
        admit("UPDATE", mv(**{ann.DECISIONS: "[]"}), mv())
    with pytest.raises(Denied, match=r"must not be archived while ModelDeployment\(s\) prod serve"):
        admit("UPDATE", mv(**{ann.ARCHIVED: "true"}), mv(), serving=["prod"])
    assert admit("UPDATE", mv(**{ann.ARCHIVED: "true"}), mv()) == {}
