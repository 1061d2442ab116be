import datetime as dt

import pytest

from modelreg.api.model_version import ApprovalDecision, ApprovalState, Decision
from modelreg.api.registered_model import ApprovalPolicy, Approvers, MetricGate, SelfApproval
from modelreg.approval import Requester, denial, evaluate, gate_failures

T0 = dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC)


def decided(*pairs: tuple[str, str]) -> list[ApprovalDecision]:
    return [
        ApprovalDecision(user=u, decision=Decision(d), time=T0 + dt.timedelta(minutes=i))
        for i, (u, d) in enumerate(pairs)
    ]


def policy(**kw) -> ApprovalPolicy:
    return ApprovalPolicy(**kw)


def test_anyone_may_decide_when_no_approvers_are_listed():
    assert denial(policy(), Requester("eve"), registered_by="dana") is None


def test_user_outside_the_policy_is_denied_with_the_rule_named():
    p = policy(approvers=Approvers(groups=["ml-approvers"]))
    message = denial(p, Requester("eve"), registered_by="dana")
    assert message is not None
    assert "'eve' is not an approver" in message
    assert "groups ['ml-approvers']" in message
    assert denial(p, Requester("alice", ("ml-approvers",)), registered_by="dana") is None
    assert denial(policy(approvers=Approvers(users=["bob"])), Requester("bob"), "dana") is None


@pytest.mark.parametrize("mode", [SelfApproval.FORBIDDEN, SelfApproval.ALLOWED])
def test_self_approval(mode):
    p = policy(self_approval=mode, approvers=Approvers(groups=["ml-approvers"]))
    message = denial(p, Requester("alice", ("ml-approvers",)), registered_by="alice")
    if mode == SelfApproval.FORBIDDEN:
        assert message is not None
        assert "selfApproval is Forbidden" in message
    else:
        assert message is None


def test_required_approvals_counts_distinct_users():
    p = policy(required_approvals=2)
    assert evaluate(p, decided(("alice", "Approved")), {}).state == ApprovalState.PENDING
    twice = evaluate(p, decided(("alice", "Approved"), ("alice", "Approved")), {})
    assert twice.state == ApprovalState.PENDING
    assert twice.message == "1 of 2 required approvals (approved by alice)"
    both = evaluate(p, decided(("alice", "Approved"), ("bob", "Approved")), {})
    assert both.state == ApprovalState.APPROVED
    assert both.approvers == ("alice", "bob")


def test_one_rejection_rejects_and_a_later_approval_reopens():
    p = policy(required_approvals=2)
    rejected = evaluate(p, decided(("alice", "Approved"), ("bob", "Rejected")), {})
    assert rejected.state == ApprovalState.REJECTED
    assert rejected.message == "rejected by bob"
    reopened = evaluate(
        p, decided(("alice", "Approved"), ("bob", "Rejected"), ("alice", "Approved")), {}
    )
    assert reopened.state == ApprovalState.PENDING
    assert reopened.approvers == ("alice",)  # approvals before the rejection do not count
    approved = evaluate(
        p,
        decided(
            ("alice", "Approved"), ("bob", "Rejected"), ("alice", "Approved"), ("bob", "Approved")
        ),
        {},
    )
    assert approved.state == ApprovalState.APPROVED


def test_metric_gates_block_approval():
    p = policy(
        metric_gates=[
            MetricGate(metric="auc", min=0.9),
            MetricGate(metric="latency_p95_ms", max=40),
        ]
    )
    ok = {"auc": 0.93, "latency_p95_ms": 31}
    assert evaluate(p, decided(("alice", "Approved")), ok).state == ApprovalState.APPROVED
    slow = evaluate(p, decided(("alice", "Approved")), {"auc": 0.93, "latency_p95_ms": 41})
    assert slow.state == ApprovalState.PENDING
    assert slow.reason == "MetricGateFailed"
    assert "above the maximum 40" in slow.message
    assert gate_failures(p.metric_gates, {"latency_p95_ms": 10}) == [
        "metric 'auc' is missing (gate requires it)"
    ]
    assert gate_failures(p.metric_gates, {"auc": 0.9, "latency_p95_ms": 40}) == []  # inclusive


def test_requester_of_an_admission_review():
    assert Requester.of({"username": "alice", "groups": ["ml-approvers", "x"]}) == Requester(
        "alice", ("ml-approvers", "x")
    )
    assert Requester.of({}) == Requester("")


A = ("r/x@sha256:" + "a" * 64, "1" * 64)
B = ("r/x@sha256:" + "b" * 64, "1" * 64)


def bound(user: str, decision: str, content: tuple[str, str] | None) -> ApprovalDecision:
    image, sha = content or (None, None)
    return ApprovalDecision(
        user=user,
        decision=Decision(decision),
        time=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        image=image,
        artifact_sha256=sha,
    )


def test_an_approval_counts_only_for_the_content_it_was_given_to():
    """The tag was pushed again and the version verified as B: alice approved A, so her
    approval does not make B deployable; approvals from before verification still count."""
    p = policy()
    assert evaluate(p, [bound("alice", "Approved", A)], {}, A).state == ApprovalState.APPROVED
    changed = evaluate(p, [bound("alice", "Approved", A)], {}, B)
    assert (changed.state, changed.reason) == (ApprovalState.PENDING, "ContentChanged")
    assert "alice" in changed.message
    assert evaluate(p, [bound("alice", "Approved", None)], {}, B).state == ApprovalState.APPROVED
    # a rejection binds nothing away: it always counts
    assert evaluate(p, [bound("bob", "Rejected", A)], {}, B).state == ApprovalState.REJECTED
    again = [bound("alice", "Approved", A), bound("alice", "Approved", B)]
    assert evaluate(p, again, {}, B).state == ApprovalState.APPROVED
