"""The approval rules of the contract, as pure functions.

Who may decide (``denial``), and what the recorded decisions amount to (``evaluate``).
The admission webhook calls ``denial`` with the identity of the API request; the
controller calls ``evaluate`` with the system's record of decisions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelreg.api.model_version import ApprovalDecision, ApprovalState, Decision
from modelreg.api.registered_model import ApprovalPolicy, MetricGate, SelfApproval


@dataclass(frozen=True)
class Requester:
    """The authenticated user of an API request."""

    user: str
    groups: tuple[str, ...] = ()

    @classmethod
    def of(cls, userinfo: Mapping[str, Any]) -> Requester:
        """The requester an admission review's ``userInfo`` names."""
        return cls(userinfo.get("username", ""), tuple(userinfo.get("groups") or ()))


def denial(policy: ApprovalPolicy, requester: Requester, registered_by: str | None) -> str | None:
    """Why ``requester`` may not approve or reject under ``policy``; None when allowed."""
    approvers = policy.approvers
    if approvers.users or approvers.groups:
        allowed = requester.user in approvers.users or bool(
            set(requester.groups) & set(approvers.groups)
        )
        if not allowed:
            who = [f"users {sorted(approvers.users)}"] if approvers.users else []
            who += [f"groups {sorted(approvers.groups)}"] if approvers.groups else []
            return (
                f"user {requester.user!r} is not an approver of this model: "
                f"approvalPolicy.approvers allows only {' and '.join(who)}"
            )
    if (
        policy.self_approval == SelfApproval.FORBIDDEN
        and registered_by is not None
        and requester.user == registered_by
    ):
        return (
            f"user {requester.user!r} registered this version and must not approve or "
            "reject it (approvalPolicy.selfApproval is Forbidden)"
        )
    return None


def gate_failures(gates: Sequence[MetricGate], metrics: Mapping[str, float]) -> list[str]:
    """One message per metric gate the metrics do not pass."""
    failures = []
    for gate in gates:
        value = metrics.get(gate.metric)
        if value is None:
            failures.append(f"metric {gate.metric!r} is missing (gate requires it)")
        elif gate.min is not None and value < gate.min:
            failures.append(f"metric {gate.metric!r} is {value:g}, below the minimum {gate.min:g}")
        elif gate.max is not None and value > gate.max:
            failures.append(f"metric {gate.metric!r} is {value:g}, above the maximum {gate.max:g}")
    return failures


@dataclass(frozen=True)
class Evaluation:
    state: ApprovalState
    reason: str
    message: str
    approvers: tuple[str, ...]


#: what a version verifies as: its resolved image and artifact sha256
Content = tuple[str | None, str | None]


def evaluate(
    policy: ApprovalPolicy,
    decisions: Sequence[ApprovalDecision],
    metrics: Mapping[str, float],
    content: Content | None = None,
) -> Evaluation:
    """The approval state the recorded decisions amount to, under the current policy.

    Decisions are replayed oldest first: an approval counts once per distinct user; a
    rejection makes the state Rejected and clears the approvals; a later approval
    re-opens the version and counts. Approved needs ``requiredApprovals`` approvals and
    every metric gate passing. With ``content`` (what the version verifies as now), an
    approval made on other content does not count: its approver never saw these bytes.
    """
    approvals: dict[str, None] = {}
    stale: dict[str, None] = {}
    rejected_by: str | None = None
    for d in decisions:
        if d.decision == Decision.REJECTED:
            rejected_by, approvals = d.user, {}
        elif content is not None and d.content() not in (None, content):
            stale[d.user] = None
        else:
            rejected_by = None
            approvals[d.user] = None
    users = tuple(approvals)
    if rejected_by is not None:
        return Evaluation(ApprovalState.REJECTED, "Rejected", f"rejected by {rejected_by}", users)
    failures = gate_failures(policy.metric_gates, metrics)
    required = policy.required_approvals
    if len(users) >= required and not failures:
        return Evaluation(
            ApprovalState.APPROVED, "Approved", f"approved by {', '.join(users)}", users
        )
    if failures:
        return Evaluation(ApprovalState.PENDING, "MetricGateFailed", "; ".join(failures), users)
    if stale:
        return Evaluation(
            ApprovalState.PENDING,
            "ContentChanged",
            f"the approval of {', '.join(stale)} was given to other content than the "
            "version verifies as now (image digest or artifact sha256): approve again",
            users,
        )
    return Evaluation(
        ApprovalState.PENDING,
        "PendingManualApproval",
        f"{len(users)} of {required} required approvals"
        + (f" (approved by {', '.join(users)})" if users else ""),
        users,
    )
