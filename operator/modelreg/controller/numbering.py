"""Version numbers: assigned once per RegisteredModel name, in creation order, never reused.

How far the numbers of a model went is kept apart from the model, in the operator's own
namespace (controller/marks.py: the *mark*, which outlives the model), and advanced with
optimistic concurrency *before* a number is handed out: a crash or a create that fails
after admission can leave a gap but never reuse a number, and a model deleted with its
versions and created again numbers on from where the old one stopped. Without an answer
from the mark's store no number is handed out (:class:`Unavailable`: the create is refused,
an unnumbered version is numbered later). The model's ``status.nextVersionNumber`` is a
copy for people to read, written after the mark (best effort); the first time a model is
seen without a mark (created before marks existed), its mark starts past that copy and
past every number its versions hold.

Normally the admission webhook reserves the number while it admits the create
(:func:`reserve`), which makes "creation order" the order of admission, exact even for
concurrent creates. A version created while its RegisteredModel did not exist yet is
numbered by the controller when the model appears (:func:`ensure_numbers`), in the order
of the admission timestamps.

Numbers are reserved in blocks while versions of a model come in quick succession (a
training pipeline registering many): each reservation is a write of the mark, one per
version otherwise. A block starts at one number and doubles (up to :data:`MAX_BLOCK`)
while versions follow each other within :data:`BURST_SECONDS`, so a version registered
now and then still takes exactly one. What a block has left is given back once no
version of the model came for :data:`RELEASE_SECONDS`, and when the operator stops, if no
one has reserved after it (compare-and-swap on the mark); a crash in a burst leaves a
gap, never a reused number. Handing numbers out of memory keeps "creation order" exact
because the operator runs as a single replica (charts/: replicaCount 1, strategy
Recreate).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from modelreg.api import annotations as ann
from modelreg.controller.marks import Mark, Marks, Unavailable
from modelreg.kube import Conflict, Kube

__all__ = ["Unavailable", "configure", "ensure_numbers", "release_idle", "reserve"]

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
    """Numbers ``[next, end)`` reserved in the model's mark and not handed out."""

    kube: Kube
    next: int
    end: int
    size: int
    used_at: float


_blocks: dict[tuple[str, str], _Block] = {}
#: the marks as last read or written here (single replica: nearly always current; a stale
#: one costs a conflict and a read)
_seen: dict[tuple[str, str], Mark] = {}
#: where the marks are kept (set at start-up; None: nowhere, so no number is handed out)
_marks: Marks | None = None
#: seconds, for bursts and idleness (a function so that tests can move it)
_clock = time.monotonic
_releaser: threading.Thread | None = None
_releaser_lock = threading.Lock()


def configure(marks: Marks | None) -> None:
    """Keep the marks in ``marks`` (the operator's namespace), forgetting what was seen."""
    global _marks
    _marks = marks
    _blocks.clear()
    _seen.clear()


def _store() -> Marks:
    if _marks is None:
        raise Unavailable(
            "version numbers are unavailable: the operator has no namespace of its own to "
            "keep them in (MODELREG_NAMESPACE)"
        )
    return _marks


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


def _mark(kube: Kube, key: tuple[str, str]) -> Mark | None:
    if key in _seen:
        return _seen[key]
    return _store().read(kube, *key)


def _advance(kube: Kube, key: tuple[str, str], rm: dict[str, Any], count: int, floor: int) -> int:
    """Reserve ``count`` numbers in the mark of ``key``; returns the first. Raises Conflict
    (the mark changed: read again) and Unavailable."""
    mark = _mark(kube, key)
    copied = int((rm.get("status") or {}).get("nextVersionNumber") or 1)
    if mark is None:
        # no mark yet (a new model, or one numbered before marks): past all it shows
        floor = max(floor, 1 + max((_number_of(v) or 0 for v in kube.versions_of(*key)), default=0))
    start = max(mark.next if mark is not None else 1, copied, floor)
    try:
        _seen[key] = _store().write(
            kube, Mark(*key, start + count, mark.version if mark is not None else None)
        )
    except Conflict:
        _seen.pop(key, None)
        raise
    except Unavailable:
        _seen.pop(key, None)  # it may have been written: read it again next time
        raise
    _copy(kube, key, start + count)
    return start


def _copy(kube: Kube, key: tuple[str, str], next_: int) -> None:
    """The model's ``status.nextVersionNumber``, for people to read (best effort: the mark
    is what counts)."""
    try:
        kube.patch_status("registeredmodels", *key, {"nextVersionNumber": next_})
    except Exception as e:
        log.info(f"could not copy the next version number of {key[0]}/{key[1]}: {e}")


def reserve(
    kube: Kube, namespace: str, model: str, read: dict[str, Any] | None = None
) -> tuple[int, int] | None:
    """Reserve the next number of ``model`` for a version being created, with the time (ns)
    of the reservation; None if the model does not exist. ``read``: the model as just read
    from the API server (else it is read here). Raises Unavailable when the mark cannot be
    read or written: no number then."""
    key = (namespace, model)
    with _locks[key]:
        rm = read if read is not None else kube.get("registeredmodels", namespace, model)
        if rm is None:
            return None
        for _ in range(20):
            now = _clock()
            block = _blocks.get(key)
            if block is not None and block.next < block.end:
                block.next, block.used_at = block.next + 1, now
                return block.next - 1, time.time_ns()
            size = 1
            if block is not None and now - block.used_at < BURST_SECONDS:
                size = min(MAX_BLOCK, block.size * 2)
            try:
                start = _advance(kube, key, rm, size, 1)
            except Conflict:
                continue
            _blocks[key] = _Block(kube, start + 1, start + size, size, now)
            if size > 1:
                _start_releaser()
            return start, time.time_ns()
    raise Unavailable(
        f"could not reserve a version number for {namespace}/{model}: its record kept changing"
    )


def _release(key: tuple[str, str], block: _Block) -> None:
    """Give the unused numbers of ``block`` back, if no one reserved after it (call with
    the model's lock held)."""
    unused = block.end - block.next
    block.end = block.next  # whatever happens: never handed out from here again
    if unused <= 0:
        return
    try:
        mark = _mark(block.kube, key)
        if mark is None or mark.next != block.next + unused:
            return  # reserved past it since: the numbers stay a gap
        _seen[key] = _store().write(block.kube, Mark(*key, block.next, mark.version))
    except Exception as e:  # changed meanwhile, or no answer: a gap is safe, a guess is not
        _seen.pop(key, None)
        log.info(
            f"numbers {block.next}..{block.next + unused - 1} of {key[0]}/{key[1]} left unused: {e}"
        )
        return
    _copy(block.kube, key, block.next)


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
    key = (namespace, model)
    with _locks[key]:
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
                start = _advance(kube, key, rm, len(pending), max(numbers.values(), default=0) + 1)
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
        raise Unavailable(
            f"could not reserve version numbers for {namespace}/{model}: its record kept changing"
        )
