"""Version numbers: assigned once per RegisteredModel, in creation order, never reused.

The next number lives in the RegisteredModel's ``status.nextVersionNumber`` and is
advanced with optimistic concurrency *before* a number is handed out, so a crash or a
create that fails after admission can leave a gap but never reuse a number.

Normally the admission webhook reserves the number while it admits the create
(:func:`reserve`), which makes "creation order" the order of admission, exact even for
concurrent creates. A version created while its RegisteredModel did not exist yet is
numbered by the controller when the model appears (:func:`ensure_numbers`), in the order
of the admission timestamps.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import defaultdict
from typing import Any

from modelreg.api import annotations as ann
from modelreg.kube import Conflict, Kube

_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)


def _creation_key(mv: dict[str, Any]) -> tuple[int, str, str]:
    meta = mv["metadata"]
    stamp = (meta.get("annotations") or {}).get(ann.CREATED_AT, "")
    return (
        int(stamp) if stamp.isdigit() else 2**63,
        meta.get("creationTimestamp", ""),
        meta["name"],
    )


def _number_of(mv: dict[str, Any]) -> int | None:
    number = (mv.get("status") or {}).get("number")
    if number:
        return int(number)
    annotated = (mv["metadata"].get("annotations") or {}).get(ann.NUMBER, "")
    return int(annotated) if annotated.isdigit() else None


def _advance(kube: Kube, rm: dict[str, Any], count: int, floor: int) -> int:
    """Reserve ``count`` numbers in ``rm``'s counter; returns the first. Raises Conflict."""
    status = rm.setdefault("status", {})
    start = max(int(status.get("nextVersionNumber") or 1), floor)
    status["nextVersionNumber"] = start + count
    kube.replace_status("registeredmodels", rm)
    return start


def reserve(
    kube: Kube, namespace: str, model: str, read: dict[str, Any] | None = None
) -> tuple[int, int] | None:
    """Reserve the next number of ``model`` for a version being created, with the time (ns)
    of the reservation; None if the model does not exist. ``read``: the model as just read
    from the API server, tried first (a stale copy only costs a conflict and a re-read)."""
    with _locks[(namespace, model)]:
        for attempt in range(20):
            rm = (
                copy.deepcopy(read)
                if attempt == 0 and read is not None
                else kube.get("registeredmodels", namespace, model)
            )
            if rm is None:
                return None
            floor = 1
            if not (rm.get("status") or {}).get("nextVersionNumber"):
                # a new (or re-created) model: never below the numbers its versions hold
                floor = 1 + max(
                    (n for v in kube.versions_of(namespace, model) if (n := _number_of(v))),
                    default=0,
                )
            try:
                return _advance(kube, rm, 1, floor), time.time_ns()
            except Conflict:
                continue
    raise RuntimeError(
        f"could not reserve a version number for {namespace}/{model}: RegisteredModel kept changing"
    )


def ensure_numbers(kube: Kube, namespace: str, model: str) -> dict[str, int]:
    """Number every unnumbered version of ``model``; returns name -> number for all."""
    with _locks[(namespace, model)]:
        for _ in range(20):
            rm = kube.get("registeredmodels", namespace, model)
            if rm is None:
                return {}
            versions = list(kube.versions_of(namespace, model))
            numbers = {v["metadata"]["name"]: n for v in versions if (n := _number_of(v))}
            pending = sorted(
                (v for v in versions if v["metadata"]["name"] not in numbers), key=_creation_key
            )
            if not pending:
                return numbers
            try:
                start = _advance(kube, rm, len(pending), max(numbers.values(), default=0) + 1)
            except Conflict:
                continue
            for offset, mv in enumerate(pending):
                name = mv["metadata"]["name"]
                if (
                    kube.patch_status("modelversions", namespace, name, {"number": start + offset})
                    is not None
                ):
                    numbers[name] = start + offset
            return numbers
        raise RuntimeError(
            f"could not reserve version numbers for {namespace}/{model}: "
            "RegisteredModel kept changing"
        )
