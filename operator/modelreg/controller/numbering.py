"""Version numbers: assigned once per RegisteredModel, in creation order, never reused.

The next number lives in the RegisteredModel's ``status.nextVersionNumber`` and is
advanced with optimistic concurrency *before* a number is handed out, so a crash or a
create that fails after admission can leave a gap but never reuse a number.

Normally the admission webhook reserves the number while it admits the create
(:func:`reserve`), which makes "creation order" the order of admission, exact even for
concurrent creates. A version created while its RegisteredModel did not exist yet is
numbered by the controller when the model appears (:func:`ensure_numbers`), in the order
of the admission timestamps.

Numbers are reserved in blocks while versions of a model come in quick succession (a
training pipeline registering many): each reservation is a write of the model's status,
one per version otherwise. A block starts at one number and doubles (up to
:data:`MAX_BLOCK`) while versions follow each other within :data:`BURST_SECONDS`, so
a version registered now and then still takes exactly one. What a block has left is
given back once no version of the model came for :data:`RELEASE_SECONDS`, and when the
operator stops, if no one has reserved after it (compare-and-swap on the model's
counter); a crash in a burst leaves a gap, never a reused number. Handing numbers out of
memory keeps "creation order" exact because the operator runs as a single replica
(charts/: replicaCount 1, strategy Recreate).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from modelreg.api import annotations as ann
from modelreg.kube import Conflict, Kube

log = logging.getLogger(__name__)

_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)

#: the largest block of numbers reserved at once
MAX_BLOCK = 32
#: a reservation this soon after the model's previous number was handed out doubles the
#: block (a steady trickle keeps its blocks growing, however long each lasts)
BURST_SECONDS = 10.0
#: unused numbers of a block are given back after this long without a version (longer
#: than a burst, or a steady trickle would cost a reservation and a release per block)
RELEASE_SECONDS = 30.0


@dataclass
class _Block:
    """Numbers ``[next, end)`` reserved in model ``uid``'s counter and not handed out."""

    kube: Kube
    uid: str
    next: int
    end: int
    size: int
    used_at: float


_blocks: dict[tuple[str, str], _Block] = {}
#: seconds, for bursts and idleness (a function so that tests can move it)
_clock = time.monotonic
_releaser: threading.Thread | None = None
_releaser_lock = threading.Lock()


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
    key = (namespace, model)
    with _locks[key]:
        for attempt in range(20):
            rm = (
                copy.deepcopy(read)
                if attempt == 0 and read is not None
                else kube.get("registeredmodels", namespace, model)
            )
            if rm is None:
                _blocks.pop(key, None)
                return None
            now, uid = _clock(), rm["metadata"].get("uid", "")
            block = _blocks.get(key)
            if block is not None and block.uid == uid and block.next < block.end:
                block.next, block.used_at = block.next + 1, now
                return block.next - 1, time.time_ns()
            size = 1
            if block is not None and block.uid == uid and now - block.used_at < BURST_SECONDS:
                size = min(MAX_BLOCK, block.size * 2)
            floor = 1
            if not (rm.get("status") or {}).get("nextVersionNumber"):
                # a new (or re-created) model: never below the numbers its versions hold
                floor = 1 + max(
                    (n for v in kube.versions_of(namespace, model) if (n := _number_of(v))),
                    default=0,
                )
            try:
                start = _advance(kube, rm, size, floor)
            except Conflict:
                continue
            _blocks[key] = _Block(kube, uid, start + 1, start + size, size, now)
            if size > 1:
                _start_releaser()
            return start, time.time_ns()
    raise RuntimeError(
        f"could not reserve a version number for {namespace}/{model}: RegisteredModel kept changing"
    )


def _release(key: tuple[str, str], block: _Block) -> None:
    """Give the unused numbers of ``block`` back, if no one reserved after it (call with
    the model's lock held)."""
    unused = block.end - block.next
    block.end = block.next  # whatever happens: never handed out from here again
    if unused <= 0:
        return
    namespace, model = key
    try:
        rm = block.kube.get("registeredmodels", namespace, model)
        status = (rm or {}).get("status") or {}
        if rm is None or rm["metadata"].get("uid") != block.uid:
            return
        if int(status.get("nextVersionNumber") or 0) != block.next + unused:
            return  # reserved past it since: the numbers stay a gap
        status["nextVersionNumber"] = block.next
        block.kube.replace_status("registeredmodels", rm)
    except Conflict:
        return  # changed meanwhile: a gap is safe, a second guess is not
    except Exception as e:
        log.info(
            f"numbers {block.next}..{block.next + unused - 1} of {namespace}/{model} "
            f"left unused: {e}"
        )


def release_idle(now: float | None = None, idle: float = RELEASE_SECONDS) -> None:
    """Give back what blocks unused for ``idle`` seconds have left (all of it: idle=0)."""
    now = _clock() if now is None else now
    for key, block in list(_blocks.items()):
        if block.next < block.end and now - block.used_at >= idle:
            with _locks[key]:
                if _blocks.get(key) is block:
                    _release(key, block)


def _start_releaser() -> None:
    global _releaser
    with _releaser_lock:
        if _releaser is not None and _releaser.is_alive():
            return

        def loop() -> None:
            while True:
                time.sleep(1.0)
                release_idle()

        _releaser = threading.Thread(target=loop, name="numbering-release", daemon=True)
        _releaser.start()


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
