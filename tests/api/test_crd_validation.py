"""The real API server rejects invalid modelreg objects with messages that say what to fix."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.cluster import Cluster

pytestmark = pytest.mark.cluster

SHA = "3f5a" + "0" * 58 + "e9"


def version(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "modelRef": {"name": "fraud-detector"},
        "artifact": {"uri": "s3://models/fraud/7/model.tar.gz", "sha256": SHA},
        "image": {"reference": "registry.internal/serving/sklearn:1.5"},
    }
    base.update(spec)
    return {
        "apiVersion": "modelreg.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "fraud-detector-v7"},
        "spec": base,
    }


@pytest.mark.usefixtures("modelreg_crds")
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"artifact": {"uri": "ftp://x/y"}},
            "spec.artifact.uri",
            "must be s3://<bucket>/<key> or https://<host>/<path>",
        ),
        (
            {"artifact": {"uri": "s3://models/x", "sha256": "ABC"}},
            "spec.artifact.sha256",
            "must be 64 lowercase hexadecimal digits",
        ),
        (
            {"image": {"reference": "registry.internal/serving/sklearn@sha256:1234"}},
            "spec.image.reference",
            "must be an image reference such as",
        ),
        (
            {"modelRef": {"name": "Fraud_Detector"}},
            "spec.modelRef.name",
            "must be a Kubernetes object name",
        ),
        (
            {"lineage": {"code": {"repository": "https://git/x", "commit": "not-hex"}}},
            "spec.lineage.code.commit",
            "must be a lowercase hexadecimal commit hash",
        ),
        (
            {"lineage": {"datasets": [{"name": "tx", "uri": "no scheme"}]}},
            "spec.lineage.datasets[0].uri",
            "must be a URI with a scheme",
        ),
        ({"metrics": {"auc": "high"}}, "spec.metrics.auc", "must be of type number"),
        ({"tags": {"x" * 200: "v"}}, "spec.tags", "keys must be 1-128 characters"),
        (
            {"validation": {"skip": ["Everything"]}},
            "spec.validation.skip[0]",
            'supported values: "Artifact", "Image"',
        ),
        ({"description": "d" * 5000}, "spec.description", "may not be more than 4096"),
        ({"image": None}, "spec.image", "Required value"),
    ],
)
def test_invalid_model_version_is_rejected_with_what_to_fix(
    cluster: Cluster, namespace: str, change: dict[str, Any], field: str, message: str
) -> None:
    obj = version()
    for key, value in change.items():
        if value is None:
            del obj["spec"][key]
        elif isinstance(value, dict) and isinstance(obj["spec"].get(key), dict):
            obj["spec"][key] = {**obj["spec"][key], **value}
        else:
            obj["spec"][key] = value
    error = cluster.dry_run(namespace, obj)
    assert field in error, error
    assert message in error, error


@pytest.mark.usefixtures("modelreg_crds")
def test_valid_model_version_is_accepted_and_defaulted(cluster: Cluster, namespace: str) -> None:
    assert cluster.dry_run(namespace, version()) == ""
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=yaml.safe_dump(
            version(
                lineage={
                    "datasets": [{"name": "tx", "uri": "s3://data/tx/2026-10/", "version": "10"}],
                    "code": {"repository": "https://git.internal/fraud.git", "commit": "9b1c2d3"},
                    "parameters": {"learning_rate": "0.05"},
                },
                metrics={"auc": 0.934, "latency_p95_ms": 31},
            )
        ),
    )
    got = yaml.safe_load(
        cluster.kubectl("get", "mv", "fraud-detector-v7", "-n", namespace, "-o", "yaml").stdout
    )
    assert got["spec"]["metrics"] == {"auc": 0.934, "latency_p95_ms": 31}
    assert got["spec"]["validation"] == {}


@pytest.mark.usefixtures("modelreg_crds")
def test_model_version_spec_is_immutable(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(version()))
    r = cluster.kubectl(
        "patch",
        "mv",
        "fraud-detector-v7",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"metrics":{"auc":0.99}}}',
        check=False,
    )
    assert r.returncode != 0
    assert "spec is immutable: register a new ModelVersion instead of changing this one" in r.stderr
    # metadata stays editable: that is how approvals and archiving are requested
    cluster.kubectl("annotate", "mv", "fraud-detector-v7", "-n", namespace, "note=ok")


@pytest.mark.usefixtures("modelreg_crds")
@pytest.mark.parametrize(
    ("kind", "spec", "name", "message"),
    [
        (
            "RegisteredModel",
            {"approvalPolicy": {"requiredApprovals": 11}},
            "m",
            "should be less than or equal to 10",
        ),
        (
            "RegisteredModel",
            {"approvalPolicy": {"selfApproval": "Sometimes"}},
            "m",
            'supported values: "Forbidden", "Allowed"',
        ),
        (
            "RegisteredModel",
            {"approvalPolicy": {"metricGates": [{"metric": "auc"}]}},
            "m",
            "a metric gate must set min, max or both",
        ),
        (
            "RegisteredModel",
            {"approvalPolicy": {"metricGates": [{"metric": "auc", "min": 2, "max": 1}]}},
            "m",
            "min must not be greater than max",
        ),
        (
            "RegisteredModel",
            {"notifications": [{"url": "hooks.internal", "events": ["VersionApproved"]}]},
            "m",
            "must be an http:// or https:// URL",
        ),
        (
            "ModelDeployment",
            {"modelRef": {"name": "m"}, "version": {"name": "v", "number": 2}},
            "d",
            "version must set exactly one of name or number",
        ),
        (
            "ModelDeployment",
            {"modelRef": {"name": "m"}, "stage": "Canary"},
            "d",
            'supported values: "Staging", "Production"',
        ),
        (
            "ModelDeployment",
            {"modelRef": {"name": "m"}, "resources": {"limits": {"cpu": "lots"}}},
            "d",
            "must be a Kubernetes quantity",
        ),
        (
            "ModelDeployment",
            {"modelRef": {"name": "m"}},
            "fraud.detector",
            "metadata.name must be a DNS-1035 label",
        ),
        (
            "ModelDeployment",
            {"modelRef": {"name": "m"}, "env": [{"name": "MODEL_VERSION", "value": "7"}]},
            "d",
            "env must not set MODEL_NAME, MODEL_VERSION or MODEL_PATH",
        ),
        (
            "ModelDeployment",
            {"modelRef": {"name": "m"}, "replicas": -1},
            "d",
            "should be greater than or equal to 0",
        ),
        (
            "ModelDeployment",
            {
                "modelRef": {"name": "m"},
                "probes": {
                    "readiness": {"httpGet": {"path": "/ready"}, "tcpSocket": {"port": 8080}}
                },
            },
            "d",
            "a probe has exactly one of httpGet, tcpSocket or grpc",
        ),
        (
            "ModelDeployment",
            {"modelRef": {"name": "m"}, "probes": {"liveness": {"periodSeconds": 5}}},
            "d",
            "a probe has exactly one of httpGet, tcpSocket or grpc",
        ),
        (
            "ModelDeployment",
            {"modelRef": {"name": "m"}, "probes": {"readiness": {"httpGet": {"path": "ready"}}}},
            "d",
            "must be an absolute path such as /v2/health/ready",
        ),
        (
            # the kubelet would GET another host from the node's network position
            "ModelDeployment",
            {
                "modelRef": {"name": "m"},
                "probes": {"readiness": {"httpGet": {"path": "/", "host": "169.254.169.254"}}},
            },
            "d",
            'unknown field "spec.probes.readiness.httpGet.host"',
        ),
        (
            "ModelDeployment",
            {
                "modelRef": {"name": "m"},
                "probes": {"startup": {"tcpSocket": {}, "periodSeconds": 0}},
            },
            "d",
            "should be greater than or equal to 1",
        ),
        (
            "ModelDeployment",
            {
                "modelRef": {"name": "m"},
                "resources": {
                    "requests": {"nvidia.com/gpu": "1"},
                    "limits": {"nvidia.com/gpu": "2"},
                },
            },
            "d",
            "an extended resource (such as nvidia.com/gpu) must be requested exactly as limited",
        ),
        (
            "ModelDeployment",
            {
                "modelRef": {"name": "m"},
                "tolerations": [{"key": "gpu", "operator": "Exists", "value": "yes"}],
            },
            "d",
            "a toleration with operator Exists has no value",
        ),
        (
            "ModelDeployment",
            {"modelRef": {"name": "m"}, "nodeSelector": {"-bad-": "x"}},
            "d",
            "nodeSelector keys must be label keys",
        ),
        (
            "ModelDeployment",
            {"modelRef": {"name": "m"}, "sharedMemory": {"sizeLimit": "a lot"}},
            "d",
            "must be a Kubernetes quantity",
        ),
        # a command run in the container: not offered (it changes what an approved image does)
        (
            "ModelDeployment",
            {"modelRef": {"name": "m"}, "probes": {"liveness": {"exec": {"command": ["sh"]}}}},
            "d",
            'unknown field "spec.probes.liveness.exec"',
        ),
        # what the security rules forbid has no field to say it with
        (
            "ModelDeployment",
            {"modelRef": {"name": "m"}, "hostNetwork": True},
            "d",
            'unknown field "spec.hostNetwork"',
        ),
        (
            "ModelDeployment",
            {"modelRef": {"name": "m"}, "volumes": [{"name": "h", "hostPath": {"path": "/"}}]},
            "d",
            'unknown field "spec.volumes"',
        ),
        (
            "ModelDeployment",
            {"modelRef": {"name": "m"}, "securityContext": {"privileged": True}},
            "d",
            'unknown field "spec.securityContext"',
        ),
        (
            "ModelDeployment",
            {
                "modelRef": {"name": "m"},
                "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            },
            "d",
            'unknown field "spec.env[0].valueFrom"',
        ),
    ],
)
def test_invalid_model_and_deployment_are_rejected(
    cluster: Cluster, namespace: str, kind: str, spec: dict[str, Any], name: str, message: str
) -> None:
    obj = {
        "apiVersion": "modelreg.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }
    error = cluster.dry_run(namespace, obj)
    assert message in error, error


@pytest.mark.usefixtures("modelreg_crds")
def test_registered_model_defaults_from_the_contract(cluster: Cluster, namespace: str) -> None:
    obj = {
        "apiVersion": "modelreg.dev/v1alpha1",
        "kind": "RegisteredModel",
        "metadata": {"name": "fraud-detector"},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(obj))
    got = yaml.safe_load(
        cluster.kubectl("get", "rmodel", "fraud-detector", "-n", namespace, "-o", "yaml").stdout
    )
    policy = got["spec"]["approvalPolicy"]
    assert policy["requiredApprovals"] == 1
    assert policy["selfApproval"] == "Forbidden"
    explain = cluster.kubectl("explain", "modelversion.spec.artifact").stdout
    assert "sha256" in explain
    assert "Expected SHA-256" in explain
    listing = cluster.kubectl("get", "modelreg", "-n", namespace).stdout
    assert "registeredmodel.modelreg.dev/fraud-detector" in listing


def test_model_deployment_defaults_from_the_contract(cluster: Cluster, namespace: str) -> None:
    obj = {
        "apiVersion": "modelreg.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "fraud-detector", "namespace": namespace},
        "spec": {"modelRef": {"name": "fraud-detector"}},
    }
    got = yaml.safe_load(
        cluster.kubectl(
            "apply", "--dry-run=server", "-o", "yaml", "-f", "-", stdin=yaml.safe_dump(obj)
        ).stdout
    )
    spec = got["spec"]
    assert "version" not in spec  # absent: follow the latest Ready version
    assert (spec["stage"], spec["replicas"], spec["port"]) == ("Production", 1, 8080)
    assert spec["rollout"] == {"progressDeadlineSeconds": 600, "automaticRollback": "Enabled"}
