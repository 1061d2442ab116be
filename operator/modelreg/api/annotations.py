"""Annotations of the contract, and the system-managed ones that hold the approval record."""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import TypeAdapter

from modelreg.api.model_version import ApprovalDecision

PREFIX = "modelreg.dev"

#: set by an approver: Approved or Rejected (consumed by the admission webhook)
APPROVAL = f"{PREFIX}/approval"
#: set by an approver with APPROVAL: the comment kept with the decision
APPROVAL_COMMENT = f"{PREFIX}/approval-comment"
#: set by an owner (or by the operator for the retention policy): "true" retires the version
ARCHIVED = f"{PREFIX}/archived"
#: set with ARCHIVED: why (kept on the version)
ARCHIVE_COMMENT = f"{PREFIX}/archive-comment"
#: set on a ModelDeployment: serve this ModelVersion until removed
ROLLBACK_TO = f"{PREFIX}/rollback-to"

#: system-managed, written only by the admission webhook: the record of decisions (JSON)
DECISIONS = f"{PREFIX}/decisions"
#: system-managed: the user who created the version
REGISTERED_BY = f"{PREFIX}/registered-by"
#: system-managed: admission time of the create, in nanoseconds (orders version numbers)
CREATED_AT = f"{PREFIX}/created-at"

#: system-managed: the version number, reserved at admission in creation order
NUMBER = f"{PREFIX}/number"

#: system-managed: HMAC of the record (modelreg.record), so a forged record is detected
SIGNATURE = f"{PREFIX}/record-signature"

#: system-managed: the user who archived the version (the operator's own account when the
#: retention policy did)
ARCHIVED_BY = f"{PREFIX}/archived-by"

#: what the signature covers
SIGNED = (REGISTERED_BY, NUMBER, DECISIONS, ARCHIVED_BY)
SYSTEM = (DECISIONS, REGISTERED_BY, CREATED_AT, NUMBER, SIGNATURE, ARCHIVED_BY)

_DECISIONS = TypeAdapter(list[ApprovalDecision])


def decisions(annotations: Mapping[str, str] | None) -> list[ApprovalDecision]:
    """The recorded decisions (oldest first)."""
    raw = (annotations or {}).get(DECISIONS)
    return _DECISIONS.validate_json(raw) if raw else []


def encode_decisions(items: list[ApprovalDecision]) -> str:
    return json.dumps([d.to_api() for d in items], separators=(",", ":"))


def is_archived(annotations: Mapping[str, str] | None) -> bool:
    return (annotations or {}).get(ARCHIVED, "").lower() == "true"
