"""Shared building blocks of the modelreg API: the base model, bounded types, conditions.

The pydantic models in this package are the single source of truth for the CRDs:
``modelreg.api.crd`` turns them into ``crds/*.yaml``. Field docstrings become the
schema descriptions that ``kubectl explain`` shows; ``Field`` bounds become schema bounds;
``json_schema_extra`` carries Kubernetes extensions (CEL rules, list types).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "modelreg.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class ApiModel(BaseModel):
    """Base of every API object part: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="ignore",
        frozen=False,
    )

    def to_api(self) -> dict[str, Any]:
        """The object as the API server expects it (camelCase, unset fields left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


#: A DNS-1123 subdomain: the names of Kubernetes objects.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SHA256_HEX = r"^[a-f0-9]{64}$"
IMAGE_DIGEST = r"^sha256:[a-f0-9]{64}$"

#: Schema key carrying the message of a pattern; the CRD generator turns pattern + message
#: into a CEL rule, so a bad value is rejected with words instead of a regular expression.
PATTERN_MESSAGE = "x-modelreg-pattern-message"


def says(message: str) -> Any:  # noqa: ANN401 (a pydantic FieldInfo, typed Any by pydantic)
    """Annotated metadata: what a value of a patterned string must be, for error messages."""
    return Field(json_schema_extra={PATTERN_MESSAGE: message})


ObjectName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN),
    says(
        "must be a Kubernetes object name: lowercase letters, digits, '-' and '.', starting "
        "and ending with a letter or digit"
    ),
]
ShortText = Annotated[str, StringConstraints(max_length=256)]
Text = Annotated[str, StringConstraints(max_length=4096)]
Sha256 = Annotated[
    str,
    StringConstraints(min_length=64, max_length=64, pattern=SHA256_HEX),
    says("must be 64 lowercase hexadecimal digits (as printed by sha256sum)"),
]
UserName = Annotated[str, StringConstraints(min_length=1, max_length=256)]

#: A map key: a label-like key (optional DNS prefix and "/", then up to 63 characters).
MAP_KEY_RULE: JsonDict = {
    "rule": "self.all(k, size(k) <= 128 && "
    "k.matches('^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$'))",
    "message": "keys must be 1-128 characters of letters, digits, '-', '_', '.', '/', "
    "starting and ending with a letter or digit",
}


def map_field(max_items: int) -> Any:  # noqa: ANN401 (a pydantic Field, typed Any by pydantic)
    """A bounded map with label-like keys (the value type bounds the values)."""
    return Field(
        default_factory=dict,
        max_length=max_items,
        json_schema_extra={"x-kubernetes-validations": [MAP_KEY_RULE]},
    )


class LocalObjectReference(ApiModel):
    """A reference to an object in the same namespace."""

    name: ObjectName
    """Name of the referenced object, in the same namespace."""


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """An observation of one aspect of the object's state (metav1.Condition)."""

    type: Annotated[str, StringConstraints(min_length=1, max_length=316)]
    """Type of the condition, CamelCase (e.g. Ready, ArtifactVerified)."""
    status: ConditionStatus
    """Status of the condition: True, False or Unknown."""
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    """A CamelCase word that says why the condition has this status."""
    message: Annotated[str, StringConstraints(max_length=32768)] = ""
    """What happened and, where something is wrong, what to do about it."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The metadata.generation this condition was set for."""
    last_transition_time: dt.datetime
    """When the condition last changed status, reason or message."""


CONDITIONS_EXTRA: JsonDict = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


def conditions_field() -> Any:  # noqa: ANN401 (a pydantic Field)
    return Field(default_factory=list, max_length=16, json_schema_extra=CONDITIONS_EXTRA)


class VersionRef(ApiModel):
    """A ModelVersion by name and number."""

    name: ObjectName
    """Name of the ModelVersion."""
    number: Annotated[int, Field(ge=1, le=2**31 - 1)]
    """Its version number within its RegisteredModel."""


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) from ``old`` to ``new``: what ``new`` has, plus a
    ``None`` (delete) for each field ``old`` has and ``new`` no longer has, so a status
    written as a merge patch can also clear fields (e.g. ``currentVersion`` after a scale
    to zero). Lists are replaced whole, as merge patches do."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = merge_patch(before, value)
        else:
            patch[key] = value
    for key in old.keys() - new.keys():
        patch[key] = None
    return patch
