"""Hostile and bad input through the real API server (property-based, hypothesis).

Generated RegisteredModel, ModelVersion and ModelDeployment bodies, valid and invalid:
oversized strings, maps and lists, odd unicode, wrong types, references to objects that
do not exist or live in other namespaces. Every one is either refused (by the schema, CEL
or the admission webhook) with a message that says what is wrong, or accepted and then
given a Ready condition with a message by the operator; and the operator never logs a
traceback.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from tests.support.modelreg import Registry, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.local_env]

GROUP, VERSION = "modelreg.dev", "v1alpha1"
EXAMPLES = settings(
    # more for a longer hunt: MODELREG_HYPOTHESIS_EXAMPLES=500
    max_examples=int(os.environ.get("MODELREG_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

# odd text: control characters, combining marks, right-to-left, emoji, surrogates excluded
odd_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), min_codepoint=0), max_size=80
)
huge_text = st.integers(min_value=1, max_value=70_000).map(lambda n: "x" * n)
any_text = st.one_of(odd_text, huge_text, st.sampled_from(["", " ", "../..", "a" * 254]))
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
)
wrong_type = st.one_of(json_scalar, st.lists(json_scalar, max_size=3), st.just({"a": 1}))
big_map = st.dictionaries(any_text, st.one_of(any_text, json_scalar), max_size=120)


def valid_version(model: str) -> dict[str, Any]:
    return {
        "modelRef": {"name": model},
        "artifact": {"uri": "s3://models/m/1.tgz", "sha256": "a" * 64, "format": "sklearn"},
        "image": {"reference": "127.0.0.1:1/serving/sklearn:1.0"},
        "lineage": {
            "datasets": [{"name": "tx", "uri": "s3://data/tx/"}],
            "code": {"repository": "https://git.internal/r.git", "commit": "9b1c2d3"},
            "parameters": {"lr": "0.1"},
        },
        "metrics": {"auc": 0.9},
        "tags": {"team": "payments"},
    }


#: (path in the spec, values to put there)
VERSION_MUTATIONS: list[tuple[tuple[str, ...], st.SearchStrategy[Any]]] = [
    (("artifact", "uri"), st.one_of(any_text, wrong_type)),
    (("artifact", "sha256"), st.one_of(any_text, wrong_type)),
    (("image", "reference"), st.one_of(any_text, wrong_type)),
    (("image", "pullSecrets"), st.lists(st.fixed_dictionaries({"name": any_text}), max_size=12)),
    (("modelRef", "name"), st.one_of(any_text, st.just("model-in-another-namespace"))),
    (("modelRef", "namespace"), st.just("kube-system")),
    (("description",), st.one_of(any_text, wrong_type)),
    (("tags",), st.one_of(big_map, wrong_type)),
    (("metrics",), st.one_of(big_map, wrong_type)),
    (("lineage", "parameters"), st.one_of(big_map, wrong_type)),
    (
        ("lineage", "datasets"),
        st.lists(st.fixed_dictionaries({"name": any_text, "uri": any_text}), max_size=70),
    ),
    (("lineage", "code", "commit"), st.one_of(any_text, wrong_type)),
    (
        ("validation", "skip"),
        st.lists(st.one_of(any_text, st.sampled_from(["Artifact", "Image"])), max_size=5),
    ),
]


def put(spec: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    node = spec
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return spec


@st.composite
def mutated_version(draw: st.DrawFn, model: str) -> dict[str, Any]:
    spec = valid_version(model)
    chosen = draw(st.lists(st.sampled_from(VERSION_MUTATIONS), min_size=0, max_size=3))
    for path, values in chosen:
        put(spec, path, draw(values))
    return spec


def outcome(registry: Registry, plural: str, kind: str, spec: Any, user: str) -> str | None:
    """Create the object; None if accepted, else the API server's message (checked)."""
    name = f"h-{uuid.uuid4().hex[:10]}"
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }
    refused: ApiException | None = None
    try:
        registry.api(user).create_namespaced_custom_object(
            GROUP, VERSION, registry.namespace, plural, body
        )
    except ApiException as e:
        refused = e
    if refused is not None:
        assert refused.status in (400, 403, 422), f"{refused.status}: {json.dumps(spec)[:300]}"
        message = str(json.loads(refused.body).get("message", ""))
        assert message.strip(), "refused without a message"
        if refused.status == 422:
            assert "spec" in message, message  # names the field
        registry.refused.append(message)  # type: ignore[attr-defined]
        return message
    registry.accepted.append((plural, name))  # type: ignore[attr-defined]
    return None


def explained(registry: Registry, plural: str, name: str) -> bool:
    status = registry.get(plural, name).get("status") or {}
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
    return ready is not None and bool(ready.get("message"))


@pytest.fixture
def hostile(registry: Registry, dev_env: Any) -> Any:
    registry.model("m")
    registry.accepted = []  # type: ignore[attr-defined]
    registry.refused = []  # type: ignore[attr-defined]
    log = Path(dev_env.layout.logs) / "operator.log"
    start = log.stat().st_size if log.exists() else 0
    yield registry
    accepted, refused = registry.accepted, registry.refused  # type: ignore[attr-defined]
    print(f"hostile input: {len(accepted)} accepted, {len(refused)} refused")
    # the generator must produce both, or it tests nothing
    assert accepted, "no generated object was accepted"
    assert refused, "no generated object was refused"
    # every accepted object gets a Ready condition that says why it is (not) ready
    for plural, name in registry.accepted:  # type: ignore[attr-defined]
        wait_for(
            f"{plural}/{name} explained",
            lambda p=plural, n=name: explained(registry, p, n),  # type: ignore[misc]
            60,
        )
    time.sleep(1)
    with log.open() as f:
        f.seek(start)
        tail = f.read()
    assert "Traceback" not in tail, tail[tail.index("Traceback") - 2000 :][:6000]


@EXAMPLES
@given(data=st.data())
def test_generated_model_versions_are_refused_clearly_or_explained(
    hostile: Registry, data: st.DataObject
) -> None:
    spec = data.draw(mutated_version("m"))
    outcome(hostile, "modelversions", "ModelVersion", spec, "dana")


@EXAMPLES
@given(
    spec=st.fixed_dictionaries(
        {},
        optional={
            "description": st.one_of(any_text, wrong_type),
            "owners": st.one_of(st.lists(any_text, max_size=40), wrong_type),
            "tags": st.one_of(big_map, wrong_type),
            "approvalPolicy": st.one_of(
                wrong_type,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "requiredApprovals": st.one_of(st.integers(-5, 50), wrong_type),
                        "approvers": st.fixed_dictionaries(
                            {
                                "users": st.lists(any_text, max_size=60),
                                "groups": st.lists(any_text, max_size=3),
                            }
                        ),
                        "selfApproval": st.one_of(
                            st.sampled_from(["Forbidden", "Allowed"]), any_text
                        ),
                        "metricGates": st.lists(
                            st.fixed_dictionaries(
                                {"metric": any_text},
                                optional={"min": json_scalar, "max": json_scalar},
                            ),
                            max_size=40,
                        ),
                    },
                ),
            ),
            "retention": st.fixed_dictionaries(
                {"maxVersions": st.one_of(st.integers(-3, 10**6), wrong_type)}
            ),
            "notifications": st.lists(
                st.fixed_dictionaries({"url": any_text, "events": st.lists(any_text, max_size=20)}),
                max_size=20,
            ),
            "securityPolicy": st.fixed_dictionaries(
                {},
                optional={
                    "allowedArtifactPrefixes": st.lists(any_text, max_size=40),
                    "requiredArtifactEncryption": st.one_of(
                        st.sampled_from(["None", "Any", "SSE-S3", "SSE-KMS"]), any_text
                    ),
                },
            ),
        },
    )
)
def test_generated_registered_models_are_refused_clearly_or_explained(
    hostile: Registry, spec: dict[str, Any]
) -> None:
    outcome(hostile, "registeredmodels", "RegisteredModel", spec, "admin")


@EXAMPLES
@given(
    spec=st.fixed_dictionaries(
        {"modelRef": st.fixed_dictionaries({"name": st.one_of(st.just("m"), any_text)})},
        optional={
            "replicas": st.one_of(st.integers(-2, 10_000), wrong_type),
            "port": st.one_of(st.integers(-1, 70_000), wrong_type),
            "stage": st.one_of(st.sampled_from(["Staging", "Production", "None"]), any_text),
            "version": st.one_of(
                st.fixed_dictionaries(
                    {}, optional={"name": any_text, "number": st.integers(-1, 10**9)}
                ),
                wrong_type,
            ),
            "env": st.lists(
                st.fixed_dictionaries({"name": any_text, "value": any_text}), max_size=70
            ),
            "resources": st.one_of(big_map, wrong_type),
            "serviceAccountName": any_text,
            "rollout": st.fixed_dictionaries(
                {},
                optional={
                    "progressDeadlineSeconds": st.one_of(st.integers(-1, 10**7), wrong_type),
                    "automaticRollback": st.one_of(
                        st.sampled_from(["Enabled", "Disabled"]), any_text
                    ),
                },
            ),
        },
    )
)
def test_generated_model_deployments_are_refused_clearly_or_explained(
    hostile: Registry, spec: dict[str, Any]
) -> None:
    outcome(hostile, "modeldeployments", "ModelDeployment", spec, "admin")
