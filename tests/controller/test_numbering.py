"""Version numbers reserved in blocks: order, no reuse, what is given back (no cluster:
the model's counter lives in a fake that does what the API server's optimistic
concurrency does)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from modelreg.controller import numbering
from modelreg.kube import Conflict


class FakeModels:
    """RegisteredModels by name, with resourceVersion conflicts on replace_status."""

    def __init__(self) -> None:
        self.models: dict[str, dict[str, Any]] = {}
        self.writes = 0

    def create(self, name: str, uid: str = "uid-1") -> None:
        self.models[name] = {
            "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "1"},
            "status": {},
        }

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.models.get(name)
        return copy.deepcopy(obj) if obj is not None else None

    def replace_status(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        current = self.models[obj["metadata"]["name"]]
        if current["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise Conflict(obj["metadata"]["name"])
        current["status"] = copy.deepcopy(obj["status"])
        current["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        self.writes += 1
        return copy.deepcopy(current)

    def versions_of(self, namespace: str, model: str) -> Iterator[dict[str, Any]]:
        return iter(())

    def counter(self, name: str) -> int:
        return int(self.models[name]["status"]["nextVersionNumber"])


@pytest.fixture
def kube() -> Iterator[FakeModels]:
    numbering._blocks.clear()
    fake = FakeModels()
    fake.create("m")
    yield fake
    numbering._blocks.clear()


def take(kube: FakeModels, n: int, model: str = "m") -> list[int]:
    out = []
    for _ in range(n):
        got = numbering.reserve(kube, "ns", model)
        assert got is not None
        out.append(got[0])
    return out


def test_a_burst_gets_consecutive_numbers_with_far_fewer_writes(kube: FakeModels) -> None:
    assert take(kube, 100) == list(range(1, 101))
    assert kube.writes <= 8  # blocks of 1, 2, 4, 8, 16, 32, 32, 32 (not 100)


def test_one_version_now_and_then_reserves_exactly_one(
    kube: FakeModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(numbering, "_clock", lambda: clock[0])
    for expected in range(1, 6):
        assert take(kube, 1) == [expected]
        assert kube.counter("m") == expected + 1  # nothing held back: no gap possible
        clock[0] += numbering.BURST_SECONDS + 1


def test_a_steady_trickle_keeps_its_blocks_growing(
    kube: FakeModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(numbering, "_clock", lambda: clock[0])
    for expected in range(1, 101):  # one every 5 s: a block of 32 lasts longer than a burst
        assert take(kube, 1) == [expected]
        clock[0] += numbering.BURST_SECONDS / 2
    assert kube.writes <= 8


def test_what_a_block_has_left_is_given_back_when_idle(
    kube: FakeModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(numbering, "_clock", lambda: clock[0])
    assert take(kube, 5) == [1, 2, 3, 4, 5]  # blocks 1, 2, 4: 6 and 7 held
    assert kube.counter("m") == 8
    numbering.release_idle()  # not idle yet
    assert kube.counter("m") == 8
    clock[0] += numbering.RELEASE_SECONDS
    numbering.release_idle()
    assert kube.counter("m") == 6
    assert take(kube, 1) == [6]


def test_nothing_is_given_back_after_someone_reserved_past_the_block(
    kube: FakeModels,
) -> None:
    assert take(kube, 3) == [1, 2, 3]  # blocks 1, 2 ... then 4 (3 of it held)
    assert kube.counter("m") == 4
    take(kube, 1)  # block of 4: [4, 8), 5..7 held
    assert kube.counter("m") == 8
    rm = kube.models["m"]
    rm["status"]["nextVersionNumber"] = 20  # e.g. the controller numbered versions meanwhile
    numbering.release_idle(idle=0)
    assert kube.counter("m") == 20  # a gap, never a number handed out twice
    assert take(kube, 1) == [20]


def test_a_model_created_again_does_not_use_the_old_models_block(kube: FakeModels) -> None:
    take(kube, 3)  # holds 4..
    kube.create("m", uid="uid-2")
    assert take(kube, 1) == [1]  # its own counter (no versions left: starts again)


def test_a_stop_gives_everything_back(kube: FakeModels) -> None:
    take(kube, 10)
    assert kube.counter("m") > 11
    numbering.release_idle(idle=0)
    assert kube.counter("m") == 11
