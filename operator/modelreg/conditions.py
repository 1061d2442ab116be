"""Conditions, set the Kubernetes way (pure functions over the status' condition list).

As in Flux's conditions package: one setter that always records ``observedGeneration``
and moves ``lastTransitionTime`` only when status, reason or message change, and
``Ready`` derived from the other conditions by the caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from modelreg.api.base import Condition, ConditionStatus

TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def find(conditions: Iterable[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Iterable[Condition], type_: str) -> bool:
    c = find(conditions, type_)
    return c is not None and c.status == TRUE


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    now: dt.datetime | None = None,
) -> list[Condition]:
    """``conditions`` with ``type_`` set; the transition time changes only on a real change."""
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    old = find(conditions, type_)
    unchanged = old is not None and (old.status, old.reason, old.message) == (
        status,
        reason,
        message,
    )
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:32768],
        observed_generation=generation,
        last_transition_time=old.last_transition_time if unchanged and old else now,
    )
    return [new if c.type == type_ else c for c in conditions] if old else [*conditions, new]


def remove(conditions: list[Condition], type_: str) -> list[Condition]:
    return [c for c in conditions if c.type != type_]
