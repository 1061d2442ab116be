"""The outcome of one verification."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelreg.api.base import ConditionStatus


@dataclass(frozen=True)
class Verdict:
    status: ConditionStatus
    reason: str
    message: str
    #: what was observed (status fields, camelCase), when verified
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls, reason: str, message: str, **details: object) -> Verdict:
        return cls(ConditionStatus.TRUE, reason, message, dict(details))

    @classmethod
    def failed(cls, reason: str, message: str) -> Verdict:
        return cls(ConditionStatus.FALSE, reason, message)

    @classmethod
    def unknown(cls, reason: str, message: str) -> Verdict:
        return cls(ConditionStatus.UNKNOWN, reason, message)

    @property
    def retry(self) -> bool:
        return self.status == ConditionStatus.UNKNOWN
