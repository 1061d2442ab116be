"""Version numbers reserved in blocks: order, no reuse (not even across a delete and
re-create of the model), what is given back, failing closed (no cluster: the models and
the operator's ConfigMaps live in a fake that does what the API server's optimistic
concurrency does)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from modelreg.controller import marks, numbering
from modelreg.kube import Conflict

HOME = "modelreg-system"


class FakeModels:
    """RegisteredModels by name and ConfigMaps of the operator's namespace, with
    resourceVersion conflicts on replace_configmap."""

    def __init__(self) -> None:
        self.models: dict[str, dict[str, Any]] = {}
        self.configmaps: dict[str, dict[str, Any]] = {}
        self.versions: list[dict[str, Any]] = []
        self.writes = 0
        #: raised by every ConfigMap call while set (a store that does not answer)
        self.failure: Exception | None = None
        #: a write that goes through, then times out on its way back (once)
        self.lost_answer = False

    def create(self, name: str, uid: str = "uid-1", status: dict[str, Any] | None = None) -> None:
        self.models[name] = {
            "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "1"},
            "status": status or {},
        }

    def delete(self, name: str) -> None:
        del self.models[name]
        self.versions = [v for v in self.versions if v["spec"]["modelRef"]["name"] != name]

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.models.get(name)
        return copy.deepcopy(obj) if obj is not None else None

    def patch_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any] | None:
        if plural != "registeredmodels":
            return {}
        obj = self.models.get(name)
        if obj is None:
            return None
        obj["status"].update(status)
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        return copy.deepcopy(obj)

    def versions_of(self, namespace: str, model: str) -> Iterator[dict[str, Any]]:
        return iter([v for v in self.versions if v["spec"]["modelRef"]["name"] == model])

    def add_version(self, name: str, model: str, number: int) -> None:
        self.versions.append(
            {
                "metadata": {"name": name, "namespace": "ns"},
                "spec": {"modelRef": {"name": model}},
                "status": {"number": number},
            }
        )

    # --- ConfigMaps ------------------------------------------------------------------

    def _check(self, namespace: str) -> None:
        assert namespace == HOME  # never anywhere a model's users may write
        if self.failure is not None:
            raise self.failure

    def get_configmap(self, namespace: str, name: str, timeout: float) -> dict[str, Any] | None:
        self._check(namespace)
        obj = self.configmaps.get(name)
        return copy.deepcopy(obj) if obj is not None else None

    def create_configmap(self, obj: dict[str, Any], timeout: float) -> dict[str, Any]:
        self._check(obj["metadata"]["namespace"])
        name = obj["metadata"]["name"]
        if name in self.configmaps:
            raise Conflict(name)
        return self._store(obj, "1")

    def replace_configmap(self, obj: dict[str, Any], timeout: float) -> dict[str, Any]:
        self._check(obj["metadata"]["namespace"])
        name = obj["metadata"]["name"]
        current = self.configmaps.get(name)
        if current is None or current["metadata"]["resourceVersion"] != obj["metadata"].get(
            "resourceVersion"
        ):
            raise Conflict(name)
        return self._store(obj, str(int(current["metadata"]["resourceVersion"]) + 1))

    def _store(self, obj: dict[str, Any], version: str) -> dict[str, Any]:
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = version
        self.configmaps[obj["metadata"]["name"]] = stored
        self.writes += 1
        if self.lost_answer:
            self.lost_answer = False
            raise TimeoutError("read timed out")
        return copy.deepcopy(stored)

    def counter(self, name: str) -> int:
        """The model's mark: the first number not reserved."""
        return int(self.configmaps[marks.name_of("ns", name)]["data"]["next"])

    def copied(self, name: str) -> int:
        """What the model's status shows."""
        return int(self.models[name]["status"]["nextVersionNumber"])


@pytest.fixture
def kube() -> Iterator[FakeModels]:
    numbering.configure(marks.Marks(HOME))
    fake = FakeModels()
    fake.create("m")
    yield fake
    numbering.configure(None)


def restart() -> None:
    """What the operator keeps in memory is gone (a restart, or a crash)."""
    numbering.configure(marks.Marks(HOME))


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
    stored = kube.configmaps[marks.name_of("ns", "m")]
    stored["data"]["next"] = "20"  # e.g. the controller numbered versions meanwhile
    stored["metadata"]["resourceVersion"] = "99"
    numbering.release_idle(idle=0)
    assert kube.counter("m") == 20  # a gap, never a number handed out twice
    assert take(kube, 1) == [20]


def test_a_model_deleted_and_created_again_numbers_on(kube: FakeModels) -> None:
    assert take(kube, 3) == [1, 2, 3]  # holds 4.. in a block
    kube.add_version("v3", "m", 3)
    kube.delete("m")
    kube.create("m", uid="uid-2")  # no status, no versions: nothing shows how far it went
    assert take(kube, 1) == [4]
    assert kube.copied("m") >= 5  # the copy in its status follows


def test_a_model_created_again_after_a_restart_numbers_on(kube: FakeModels) -> None:
    assert take(kube, 3) == [1, 2, 3]
    numbering.release_idle(idle=0)  # a clean stop: 4.. given back
    restart()
    kube.delete("m")
    kube.create("m", uid="uid-2")
    assert take(kube, 2) == [4, 5]


def test_a_model_numbered_before_marks_existed_numbers_past_its_status_and_versions(
    kube: FakeModels,
) -> None:
    kube.create("old", status={"nextVersionNumber": 7})
    assert take(kube, 1, "old") == [7]
    kube.create("older")
    kube.add_version("v9", "older", 9)
    assert take(kube, 1, "older") == [10]


def test_without_an_answer_from_the_store_no_number_is_handed_out(kube: FakeModels) -> None:
    assert take(kube, 1) == [1]
    kube.failure = ApiException(status=500, reason="Internal Server Error")
    with pytest.raises(numbering.Unavailable, match=r"ns/m are unavailable.*500"):
        numbering.reserve(kube, "ns", "m")
    kube.failure = TimeoutError("read timed out")
    late = {"metadata": {"name": "late", "namespace": "ns"}, "spec": {"modelRef": {"name": "m"}}}
    kube.versions.append(late)
    with pytest.raises(numbering.Unavailable, match="TimeoutError"):
        numbering.ensure_numbers(kube, "ns", "m")
    assert "status" not in late  # not numbered: numbered once the store answers
    kube.failure = None
    assert take(kube, 1) == [2]


def test_a_write_whose_answer_was_lost_leaves_a_gap_never_a_reuse(
    kube: FakeModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(numbering, "_clock", lambda: clock[0])
    assert take(kube, 1) == [1]
    clock[0] += numbering.BURST_SECONDS + 1
    kube.lost_answer = True  # the mark moved to 3, the operator does not know
    with pytest.raises(numbering.Unavailable):
        numbering.reserve(kube, "ns", "m")
    assert take(kube, 1) == [3]


def test_no_namespace_for_the_marks_no_number(kube: FakeModels) -> None:
    numbering.configure(None)
    with pytest.raises(numbering.Unavailable, match="MODELREG_NAMESPACE"):
        numbering.reserve(kube, "ns", "m")
    assert numbering.reserve(kube, "ns", "missing") is None  # no model: nothing to number


def test_a_mark_that_is_not_as_written_is_not_guessed_at(kube: FakeModels) -> None:
    assert take(kube, 1) == [1]
    restart()
    kube.configmaps[marks.name_of("ns", "m")]["data"]["next"] = "many"
    with pytest.raises(numbering.Unavailable, match="cluster admin must repair it"):
        numbering.reserve(kube, "ns", "m")


def test_a_mark_moved_by_another_writer_is_read_again(kube: FakeModels) -> None:
    assert take(kube, 1) == [1]
    stored = kube.configmaps[marks.name_of("ns", "m")]
    stored["data"]["next"] = "40"
    stored["metadata"]["resourceVersion"] = "99"
    numbering.release_idle(idle=0)
    assert take(kube, 1) == [40]


def test_the_controller_numbers_on_from_the_mark(kube: FakeModels) -> None:
    assert take(kube, 2) == [1, 2]
    kube.delete("m")
    kube.create("m", uid="uid-2")
    kube.versions.append(
        {
            "metadata": {"name": "late", "namespace": "ns", "creationTimestamp": "t"},
            "spec": {"modelRef": {"name": "m"}},
        }
    )
    # 3 is still held by the webhook's block: past it
    assert numbering.ensure_numbers(kube, "ns", "m") == {"late": 4}
    assert take(kube, 1) == [3]


def test_a_stop_gives_everything_back(kube: FakeModels) -> None:
    take(kube, 10)
    assert kube.counter("m") > 11
    numbering.release_idle(idle=0)
    assert kube.counter("m") == 11
