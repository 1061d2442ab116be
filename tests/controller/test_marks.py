"""The marks of version numbers as ConfigMaps of the operator's namespace (no cluster)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from modelreg.controller import marks
from modelreg.kube import Conflict


def test_one_configmap_per_model_named_apart_for_every_namespace_and_model() -> None:
    names = {
        marks.name_of("a", "b-c"),
        marks.name_of("a-b", "c"),
        marks.name_of("a", "b"),
        marks.name_of("b", "a"),
    }
    assert len(names) == 4
    long = marks.name_of("n" * 63, "m" * 253)
    assert long == marks.name_of("n" * 63, "m" * 253)
    assert long.startswith(marks.PREFIX)
    assert len(long) <= 63


def test_a_mark_round_trips_through_its_configmap() -> None:
    mark = marks.Mark("team-a", "fraud", 8)
    obj = marks.to_configmap(mark, "modelreg-system")
    assert obj["metadata"]["namespace"] == "modelreg-system"
    assert obj["metadata"]["labels"][marks.NAMESPACE_LABEL] == "team-a"
    assert "resourceVersion" not in obj["metadata"]  # created, not replaced
    obj["metadata"]["resourceVersion"] = "5"
    assert marks.from_configmap(obj, "team-a", "fraud") == marks.Mark("team-a", "fraud", 8, "5")
    replaced = marks.to_configmap(marks.Mark("team-a", "fraud", 9, "5"), "modelreg-system")
    assert replaced["metadata"]["resourceVersion"] == "5"


@pytest.mark.parametrize(
    "data",
    [
        {"namespace": "team-a", "model": "other", "next": "8"},
        {"namespace": "team-b", "model": "fraud", "next": "8"},
        {"namespace": "team-a", "model": "fraud", "next": "-1"},
        {"namespace": "team-a", "model": "fraud"},
        None,
    ],
)
def test_a_configmap_not_as_written_is_no_mark(data: dict[str, str] | None) -> None:
    obj = {"metadata": {"name": "x", "namespace": "modelreg-system"}, "data": data}
    with pytest.raises(marks.Unavailable, match="team-a/fraud"):
        marks.from_configmap(obj, "team-a", "fraud")


class Failing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_configmap(self, namespace: str, name: str, timeout: float) -> Any:
        raise self.error

    def create_configmap(self, obj: dict[str, Any], timeout: float) -> Any:
        raise self.error

    def replace_configmap(self, obj: dict[str, Any], timeout: float) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (ApiException(status=403, reason="Forbidden"), "403 Forbidden"),
        (TimeoutError("timed out"), "TimeoutError: timed out"),
    ],
)
def test_no_answer_is_unavailable_with_what_and_where(error: Exception, shown: str) -> None:
    store = marks.Marks("modelreg-system")
    kube: Any = Failing(error)
    with pytest.raises(marks.Unavailable) as read:
        store.read(kube, "team-a", "fraud")
    assert shown in str(read.value)
    assert f"ConfigMap modelreg-system/{marks.name_of('team-a', 'fraud')}" in str(read.value)
    with pytest.raises(marks.Unavailable, match="could not write"):
        store.write(kube, marks.Mark("team-a", "fraud", 2, "7"))


def test_a_conflict_is_a_conflict() -> None:
    kube: Any = Failing(Conflict("x"))
    with pytest.raises(Conflict):
        marks.Marks("modelreg-system").write(kube, marks.Mark("team-a", "fraud", 2))
