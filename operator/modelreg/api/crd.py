"""Generate the CustomResourceDefinitions from the pydantic models.

``python -m modelreg.api.crd [DIR]`` writes ``DIR/<plural>.modelreg.dev.yaml`` (default
``crds/``); ``tests/api/test_crd.py`` fails when the checked-in files differ.

pydantic's JSON Schema is turned into a Kubernetes *structural* schema: ``$ref`` inlined,
``Optional`` unwrapped (absent means unset), titles dropped, descriptions kept, and the
Kubernetes extensions from ``json_schema_extra`` passed through.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from modelreg.api.base import GROUP, PATTERN_MESSAGE, VERSION
from modelreg.api.model_deployment import ModelDeploymentSpec, ModelDeploymentStatus
from modelreg.api.model_version import ModelVersionSpec, ModelVersionStatus
from modelreg.api.registered_model import RegisteredModelSpec, RegisteredModelStatus

CATEGORY = "modelreg"


@dataclass(frozen=True)
class Kind:
    """One custom resource kind and how it is shown."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    printer_columns: tuple[dict[str, Any], ...]
    spec_rules: tuple[dict[str, str], ...] = ()
    root_rules: tuple[dict[str, str], ...] = ()
    spec_default: dict[str, Any] | None = field(default=None)


def _ready_column() -> dict[str, Any]:
    return {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    }


def _reason_column() -> dict[str, Any]:
    return {
        "name": "Reason",
        "type": "string",
        "priority": 1,
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
    }


_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

KINDS = (
    Kind(
        "RegisteredModel",
        "registeredmodels",
        ("rmodel",),
        "A named model and its governance policy: who may approve its versions, how many "
        "approvals they need, metric gates, retention and notifications.",
        RegisteredModelSpec,
        RegisteredModelStatus,
        (
            _ready_column(),
            {"name": "Latest", "type": "integer", "jsonPath": ".status.latestVersion.number"},
            {
                "name": "Approved",
                "type": "integer",
                "jsonPath": ".status.latestApprovedVersion.number",
            },
            {"name": "Versions", "type": "integer", "jsonPath": ".status.versionCount"},
            _AGE,
            _reason_column(),
        ),
        spec_default={},
    ),
    Kind(
        "ModelVersion",
        "modelversions",
        ("mv", "mver"),
        "One immutable, registered model version: artifact with checksum, inference image, "
        "lineage and metrics. Approve or reject it with the modelreg.dev/approval annotation.",
        ModelVersionSpec,
        ModelVersionStatus,
        (
            _ready_column(),
            {"name": "Model", "type": "string", "jsonPath": ".spec.modelRef.name"},
            {"name": "Version", "type": "integer", "jsonPath": ".status.number"},
            {"name": "Approval", "type": "string", "jsonPath": ".status.approval.state"},
            {"name": "Stage", "type": "string", "jsonPath": ".status.stage"},
            _AGE,
            _reason_column(),
            {"name": "Artifact", "type": "string", "priority": 1, "jsonPath": ".spec.artifact.uri"},
            {
                "name": "Image",
                "type": "string",
                "priority": 1,
                "jsonPath": ".status.image.resolved",
            },
        ),
        spec_rules=(
            {
                "rule": "self == oldSelf",
                "message": "spec is immutable: register a new ModelVersion instead of changing "
                "this one",
            },
        ),
    ),
    Kind(
        "ModelDeployment",
        "modeldeployments",
        ("mdep",),
        "Serves an approved, verified ModelVersion as a Deployment and a Service, and rolls "
        "back to the previous good version when a rollout fails or an approval is revoked.",
        ModelDeploymentSpec,
        ModelDeploymentStatus,
        (
            {"name": "Model", "type": "string", "jsonPath": ".spec.modelRef.name"},
            {"name": "Current", "type": "string", "jsonPath": ".status.currentVersion.name"},
            {"name": "Target", "type": "string", "jsonPath": ".status.targetVersion.name"},
            _ready_column(),
            _AGE,
            {"name": "Stage", "type": "string", "priority": 1, "jsonPath": ".spec.stage"},
            _reason_column(),
        ),
        root_rules=(
            {
                "rule": "size(self.metadata.name) <= 63 && "
                "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
                "message": "metadata.name must be a DNS-1035 label (at most 63 lowercase letters, "
                "digits and '-', starting with a letter), because the Service is named after it",
            },
        ),
    ),
)

_DROP = {"title"}


def structural(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pydantic JSON schema as a Kubernetes structural schema."""
    defs = schema.get("$defs", {}) if defs is None else defs
    return _convert(schema, defs)


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = dict(node)
    node.pop("$defs", None)
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        merged = {**_convert(target, defs)}
        # the property's own docstring is more specific than the referenced class's
        merged.update({k: v for k, v in node.items() if k not in _DROP})
        node = merged
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"unions are not structural: {options}")
        inner = _convert(options[0], defs)
        if node.get("default", ...) is None:
            node.pop("default")
        node = {**inner, **{k: v for k, v in node.items() if k not in _DROP}}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {k: _convert(v, defs) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _convert(value, defs)
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" in out and "required" in out:
        out["required"] = sorted(out["required"])
    if PATTERN_MESSAGE in out:
        # a CEL rule says what the value must be; a bare pattern would print a regex
        message = out.pop(PATTERN_MESSAGE)
        pattern = out.pop("pattern")
        if "'" in pattern:
            raise ValueError(f"pattern {pattern!r} cannot go into a CEL raw string")
        out.setdefault("x-kubernetes-validations", []).append(
            {"rule": f"self.matches(r'{pattern}')", "message": message}
        )
    return out


def _nested_models(model: type[BaseModel], schema: dict[str, Any]) -> None:
    for name, info in model.model_fields.items():
        prop = schema.get("properties", {}).get(info.alias or name)
        if prop is None:
            continue
        for arg in (info.annotation, *getattr(info.annotation, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                if info.default_factory is not None and prop.get("type") == "object":
                    prop["default"] = {}
                _nested_models(arg, prop)
            items = prop.get("items")
            if isinstance(items, dict):
                for inner in getattr(arg, "__args__", ()):
                    if isinstance(inner, type) and issubclass(inner, BaseModel):
                        _nested_models(inner, items)


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = structural(model.model_json_schema(by_alias=True, mode="validation"))
    _nested_models(model, schema)
    return schema


def crd(kind: Kind) -> dict[str, Any]:
    """The CustomResourceDefinition of ``kind``."""
    spec = model_schema(kind.spec)
    if kind.spec_rules:
        spec["x-kubernetes-validations"] = list(kind.spec_rules)
    if kind.spec_default is not None:
        spec["default"] = kind.spec_default
    status = model_schema(kind.status)
    root: dict[str, Any] = {
        "type": "object",
        "description": kind.description,
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of the object."},
            "kind": {"type": "string", "description": "Kind of the object."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if kind.spec_default is None:
        root["required"] = ["spec"]
    if kind.root_rules:
        root["x-kubernetes-validations"] = list(kind.root_rules)
    singular = kind.kind.lower()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{kind.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "modelreg"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(kind.printer_columns),
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


HEADER = "# Generated by `python -m modelreg.api.crd` from operator/modelreg/api. Do not edit.\n"


def render(kind: Kind) -> str:
    return HEADER + yaml.safe_dump(crd(kind), sort_keys=False, width=100)


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = directory / f"{kind.plural}.{GROUP}.yaml"
        path.write_text(render(kind))
        written.append(path)
    return written


#: Where the CRDs are checked in: for `kubectl apply`, and in the Helm chart (which adds its
#: labels and the keep policy when it renders them).
OUTPUTS = ("crds", "charts/modelreg/files/crds")

if __name__ == "__main__":
    for out in sys.argv[1:] or OUTPUTS:
        for p in write_all(Path(out)):
            print(p)
