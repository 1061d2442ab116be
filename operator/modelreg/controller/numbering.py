"""Version numbers: assigned once per RegisteredModel, in creation order, never reused.

The next number lives in the RegisteredModel's ``status.nextVersionNumber`` and is
advanced with optimistic concurrency *before* versions get their numbers, so a crash in
between can leave a gap but never reuse a number. Unnumbered versions are numbered in
batches, ordered by the admission timestamp the webhook stamped on them.
"""

from __future__ import annotations

import threading
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


def ensure_numbers(kube: Kube, namespace: str, model: str) -> dict[str, int]:
    """Number every unnumbered version of ``model``; returns name -> number for all."""
    with _locks[(namespace, model)]:
        for _ in range(20):
            rm = kube.get("registeredmodels", namespace, model)
            if rm is None:
                return {}
            versions = list(kube.versions_of(namespace, model))
            numbers = {
                v["metadata"]["name"]: v["status"]["number"]
                for v in versions
                if (v.get("status") or {}).get("number")
            }
            pending = sorted(
                (v for v in versions if v["metadata"]["name"] not in numbers), key=_creation_key
            )
            if not pending:
                return numbers
            status = rm.setdefault("status", {})
            start = max(
                int(status.get("nextVersionNumber") or 1), max(numbers.values(), default=0) + 1
            )
            status["nextVersionNumber"] = start + len(pending)
            try:
                kube.replace_status("registeredmodels", rm)
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
