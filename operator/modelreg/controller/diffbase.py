"""kopf's diff base (the essence it last handled) kept in the operator's memory.

kopf's default keeps it in an annotation on every object. That costs one more PATCH, and
one more admission round trip, for every create and every change handled, and copies the
whole spec into the object, which every watcher then receives again. Registering a
version took seven writes; this was one of them (docs/benchmarks.md).

Without the annotation, what kopf needs from it after a restart (or on a new leader) is
decided here from the object itself, once, the first time this process sees it (then
kept, so that a retried handler and a later change both diff against it):

- handled at its current generation (``status.observedGeneration`` is written by every
  reconcile of the three kinds): the base is the object as it is now, so kopf sees no
  change and calls the resume handlers. They reconcile from the whole object, so a change
  that generation does not count (an approval annotation set while the operator was down)
  is acted on all the same;
- not handled at its current generation: an annotation left by an older operator is
  still read; otherwise there is no base and kopf calls the create handlers. A handler
  that must tell a policy change from a first sight checks ``observedGeneration`` too
  (``handlers.registered_model``).

So every handler of these kinds has to be level-based (reconcile from the whole object,
whatever the reason), which they are. The bases are compressed (about 0.3 KB a version)
and forgotten when the object is deleted.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Mapping
from typing import Any, cast

import kopf


class MemoryDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """Stores the base per object uid in memory; reads the annotation of an older operator."""

    def __init__(self, *, prefix: str, key: str = "last-handled-configuration") -> None:
        super().__init__(prefix=prefix, key=key)
        #: uid -> compressed base; None: seen in this process, no base yet (being created)
        self._bases: dict[str, bytes | None] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._bases)

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        uid = body.metadata.uid or ""
        with self._lock:
            if uid in self._bases:
                packed = self._bases[uid]
                return None if packed is None else _unpack(packed)
            # first sight in this process (the listing after a start): decide once, and keep
            # it, so that a retried handler and a later change both diff against it
            base = self.build(body=body) if handled(body) else super().fetch(body=body)
            self._bases[uid] = None if base is None else _pack(base)
            return base

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        if uid := body.metadata.uid:
            with self._lock:
                self._bases[uid] = _pack(essence)

    def forget(self, uid: str | None) -> None:
        """The object is gone: drop its base."""
        if uid:
            with self._lock:
                self._bases.pop(uid, None)


def _pack(essence: kopf.BodyEssence) -> bytes:
    return zlib.compress(json.dumps(essence, separators=(",", ":")).encode(), 1)


def _unpack(packed: bytes) -> kopf.BodyEssence:
    return cast(kopf.BodyEssence, json.loads(zlib.decompress(packed)))


def handled(body: Mapping[str, Any]) -> bool:
    """Whether a reconcile has written the object's status at its current generation."""
    generation = (body.get("metadata") or {}).get("generation")
    observed = (body.get("status") or {}).get("observedGeneration")
    return generation is not None and observed == generation
