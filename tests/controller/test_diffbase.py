"""The in-memory diff base: what kopf sees as created, resumed, changed or unchanged."""

from __future__ import annotations

import copy
import json
from typing import Any

import kopf

from modelreg.controller.diffbase import MemoryDiffBaseStorage, handled

PREFIX = "kopf.modelreg.dev"
LEGACY = f"{PREFIX}/last-handled-configuration"


def version(
    uid: str = "u1",
    annotations: dict[str, str] | None = None,
    observed: int | None = None,
    generation: int = 1,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "modelreg.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {
            "name": "v1",
            "namespace": "ns",
            "uid": uid,
            "generation": generation,
            "annotations": dict(annotations or {}),
        },
        "spec": {"modelRef": {"name": "m"}, "artifact": {"uri": "s3://b/k"}},
    }
    if observed is not None:
        body["status"] = {"observedGeneration": observed, "number": 1}
    return body


def fetch(storage: MemoryDiffBaseStorage, body: dict[str, Any]) -> Any:
    return storage.fetch(body=kopf.Body(copy.deepcopy(body)))


def test_a_new_object_has_no_base_until_handled_even_after_its_status_is_written() -> None:
    storage = MemoryDiffBaseStorage(prefix=PREFIX)
    assert fetch(storage, version()) is None
    # a first attempt wrote status, then asked to be retried: still a creation for kopf,
    # or the retry would be lost
    assert fetch(storage, version(observed=1)) is None


def test_a_stored_base_is_returned_and_nothing_is_written_to_the_object() -> None:
    storage = MemoryDiffBaseStorage(prefix=PREFIX)
    body = kopf.Body(version())
    essence = storage.build(body=body)
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=essence)
    assert not patch
    assert fetch(storage, version(observed=1)) == essence


def test_first_sight_of_a_handled_object_resumes_and_later_changes_are_seen() -> None:
    storage = MemoryDiffBaseStorage(prefix=PREFIX)
    listed = version(observed=1)
    base = fetch(storage, listed)
    assert base == storage.build(body=kopf.Body(listed))
    # an approval after the restart differs from that base (an update, not a no-op)
    approved = version(annotations={"modelreg.dev/approval": "Approved"}, observed=1)
    assert fetch(storage, approved) == base
    assert base != storage.build(body=kopf.Body(approved))


def test_an_unhandled_object_falls_back_to_an_older_operators_annotation() -> None:
    storage = MemoryDiffBaseStorage(prefix=PREFIX)
    old = {"spec": {"modelRef": {"name": "m"}}}
    body = version(annotations={LEGACY: json.dumps(old)}, observed=1, generation=2)
    assert fetch(storage, body) == old
    assert fetch(storage, body) == old


def test_the_base_never_contains_the_legacy_annotation() -> None:
    storage = MemoryDiffBaseStorage(prefix=PREFIX)
    body = version(annotations={LEGACY: "{}", "modelreg.dev/approval": "Approved"}, observed=1)
    base = fetch(storage, body)
    assert base["metadata"]["annotations"] == {"modelreg.dev/approval": "Approved"}


def test_forget_drops_the_base() -> None:
    storage = MemoryDiffBaseStorage(prefix=PREFIX)
    body = kopf.Body(version())
    storage.store(body=body, patch=kopf.Patch(), essence=storage.build(body=body))
    assert len(storage) == 1
    storage.forget("u1")
    storage.forget(None)
    assert len(storage) == 0


def test_handled_means_status_written_at_the_current_generation() -> None:
    assert handled(version(observed=2, generation=2))
    assert not handled(version(observed=1, generation=2))
    assert not handled(version())
