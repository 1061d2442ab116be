"""Pure helpers of the API models."""

from __future__ import annotations

from modelreg.api.base import merge_patch


def test_merge_patch_deletes_what_the_new_status_no_longer_has() -> None:
    old = {
        "currentVersion": {"name": "v1", "number": 1},
        "conditions": [{"type": "Ready"}],
        "a": {"b": 1, "c": 2},
    }
    new = {"conditions": [], "a": {"b": 1}}
    assert merge_patch(old, new) == {
        "conditions": [],
        "a": {"b": 1, "c": None},
        "currentVersion": None,
    }


def test_merge_patch_of_unchanged_or_added_fields_is_the_new_value() -> None:
    assert merge_patch({}, {"x": {"y": 1}}) == {"x": {"y": 1}}
    assert merge_patch({"x": 1}, {"x": 1}) == {"x": 1}
