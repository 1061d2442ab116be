from typing import Any

import pytest

from modelreg.api.model_deployment import ModelDeploymentSpec
from modelreg.builders import SHM_PATH, Serving, deployment, hand_edited, service

SPEC = ModelDeploymentSpec.model_validate(
    {
        "modelRef": {"name": "fraud"},
        "replicas": 3,
        "port": 9000,
        "resources": {"requests": {"cpu": "500m"}},
        "env": [{"name": "A", "value": "1"}],
        "serviceAccountName": "serving",
        "rollout": {"progressDeadlineSeconds": 120},
    }
)
V7 = Serving("fraud-v7", 7, "r.io/s@sha256:" + "a" * 64, "s3://m/7.tgz", "b" * 64)


def test_deployment_serves_the_version_by_digest_with_contract_env_and_labels():
    d = deployment("prod", "ns", "fraud", SPEC, V7, "init:1")
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["progressDeadlineSeconds"] == 120
    assert d["spec"]["selector"] == {"matchLabels": {"modelreg.dev/deployment": "prod"}}
    pod = d["spec"]["template"]
    assert pod["metadata"]["labels"] == {
        "modelreg.dev/deployment": "prod",
        "app.kubernetes.io/managed-by": "modelreg",
        "modelreg.dev/model": "fraud",
        "modelreg.dev/version": "7",
    }
    model = pod["spec"]["containers"][0]
    assert model["image"] == V7.image
    assert model["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert model["env"] == [
        {"name": "MODEL_NAME", "value": "fraud"},
        {"name": "MODEL_VERSION", "value": "7"},
        {"name": "MODEL_PATH", "value": "/mnt/models"},
        {"name": "A", "value": "1"},
    ]
    assert model["resources"] == {"requests": {"cpu": "500m"}}
    init = pod["spec"]["initContainers"][0]
    assert init["image"] == "init:1"
    assert init["args"][-2:] == ["--sha256", "b" * 64]
    assert pod["spec"]["serviceAccountName"] == "serving"
    assert pod["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["spec"]["automountServiceAccountToken"] is False
    for c in (model, init):  # the contract's four settings, on every container
        assert c["securityContext"]["runAsNonRoot"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert c["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_selector_is_stable_across_versions():
    v8 = Serving("fraud-v8", 8, "r.io/s@sha256:" + "c" * 64, "s3://m/8.tgz", None)
    a = deployment("prod", "ns", "fraud", SPEC, V7, "init:1")
    b = deployment("prod", "ns", "fraud", SPEC, v8, "init:1")
    assert a["spec"]["selector"] == b["spec"]["selector"]
    assert "--sha256" not in b["spec"]["template"]["spec"]["initContainers"][0]["args"]


def test_service_targets_the_named_port():
    s = service("prod", "ns", "fraud", SPEC)
    assert s["spec"]["ports"] == [
        {"name": "http", "port": 9000, "targetPort": "http", "protocol": "TCP"}
    ]
    assert s["spec"]["selector"] == {"modelreg.dev/deployment": "prod"}


def test_pods_pull_with_the_versions_pull_secrets():
    private = Serving("p", 1, "r.io/s@sha256:" + "d" * 64, "s3://m/1", None, ("team-pull",))
    pod = deployment("serve", "ns", "m", SPEC, private, "i")
    assert pod["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "team-pull"}]
    public = deployment("serve", "ns", "m", SPEC, V7, "i")
    assert "imagePullSecrets" not in public["spec"]["template"]["spec"]


def _managed(*entries: tuple[str, str, str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {
            "managedFields": [
                {"manager": m, "operation": op, "subresource": sub, "fieldsV1": fields}
                for m, op, sub, fields in entries
            ]
        }
    }


APPLIED: tuple[str, str, str, dict[str, Any]] = (
    "modelreg",
    "Apply",
    "",
    {"f:metadata": {}, "f:spec": {}},
)


@pytest.mark.parametrize(
    ("entries", "edited"),
    [
        ([APPLIED], False),
        # the deployment controller: an annotation and status, not spec
        ([APPLIED, ("kube-controller-manager", "Update", "", {"f:metadata": {}})], False),
        ([APPLIED, ("kube-controller-manager", "Update", "status", {"f:status": {}})], False),
        # a scale (apply resets replicas)
        ([APPLIED, ("kubectl", "Update", "scale", {"f:spec": {"f:replicas": {}}})], False),
        # a sidecar, a volume, privileged: true added by kubectl edit / patch
        ([APPLIED, ("kubectl-edit", "Update", "", {"f:spec": {"f:template": {}}})], True),
        ([APPLIED, ("kubectl-patch", "Update", "", {"f:spec": {}})], True),
        # modelreg's record of what it applied wiped (managedFields reset by hand)
        ([("kubectl-edit", "Update", "", {"f:metadata": {}})], True),
        ([], True),
    ],
)
def test_hand_edited_when_someone_else_owns_part_of_the_spec(entries, edited):
    assert hand_edited(_managed(*entries)) is edited


def _model_container(protocol: str, **extra: Any) -> dict[str, Any]:
    spec = ModelDeploymentSpec.model_validate(
        {"modelRef": {"name": "fraud"}, "port": 9000, "protocol": protocol, **extra}
    )
    d = deployment("fraud", "ns", "fraud", spec, V7, "init@sha256:" + "b" * 64)
    container: dict[str, Any] = d["spec"]["template"]["spec"]["containers"][0]
    return container


def test_the_open_inference_protocol_gives_health_probes_on_the_servers_port():
    c = _model_container("v2")
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 9000}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 9000}
    # a big model may load for ten minutes before liveness may restart it
    startup = c["startupProbe"]
    assert startup["httpGet"] == {"path": "/v2/health/live", "port": 9000}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600


def test_v1_is_ready_when_its_model_answers():
    c = _model_container("v1")
    assert c["readinessProbe"]["httpGet"] == {"path": "/v1/models/fraud", "port": 9000}
    assert c["livenessProbe"] == {**c["livenessProbe"], "tcpSocket": {"port": 9000}}


def test_no_protocol_no_probes():
    c = _model_container("none")
    assert not {"readinessProbe", "livenessProbe", "startupProbe"} & set(c)
    assert ModelDeploymentSpec.model_validate({"modelRef": {"name": "x"}}).protocol == "none"


def test_explicit_probes_replace_the_protocols_one_kind_at_a_time():
    ready = {"httpGet": {"path": "/v2/models/fraud/ready"}, "periodSeconds": 5}
    c = _model_container("v2", probes={"readiness": ready})
    assert c["readinessProbe"] == {
        "httpGet": {"path": "/v2/models/fraud/ready", "port": 9000, "scheme": "HTTP"},
        "periodSeconds": 5,
    }
    # the others stay what v2 gives
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 9000}
    assert c["startupProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 9000}


def test_each_probe_handler_becomes_the_kubernetes_one():
    probes = {
        "startup": {"httpGet": {"path": "/loaded", "port": 9002}, "failureThreshold": 900},
        "readiness": {"grpc": {"service": "inference"}, "timeoutSeconds": 3},
        "liveness": {"tcpSocket": {"port": 9001}, "initialDelaySeconds": 10},
    }
    c = _model_container("none", probes=probes)
    assert c["startupProbe"] == {
        "httpGet": {"path": "/loaded", "port": 9002, "scheme": "HTTP"},
        "failureThreshold": 900,
    }
    assert c["readinessProbe"] == {
        "grpc": {"port": 9000, "service": "inference"},
        "timeoutSeconds": 3,
    }
    assert c["livenessProbe"] == {"tcpSocket": {"port": 9001}, "initialDelaySeconds": 10}
    # only what is given: no protocol, one probe
    c = _model_container("none", probes={"liveness": {"tcpSocket": {}}})
    assert c["livenessProbe"] == {"tcpSocket": {"port": 9000}}
    assert not {"readinessProbe", "startupProbe"} & set(c)


def _pod_spec(**extra: Any) -> dict[str, Any]:
    spec = ModelDeploymentSpec.model_validate({"modelRef": {"name": "fraud"}, **extra})
    d = deployment("fraud", "ns", "fraud", spec, V7, "init@sha256:" + "b" * 64)
    pod: dict[str, Any] = d["spec"]["template"]["spec"]
    return pod


def test_the_pod_shape_serving_needs():
    gpu = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    pod = _pod_spec(
        nodeSelector={"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
        tolerations=[gpu],
        terminationGracePeriodSeconds=120,
        sharedMemory={"sizeLimit": "2Gi"},
        storageInitializer={"resources": {"limits": {"memory": "2Gi"}}},
        resources={"limits": {"nvidia.com/gpu": "1"}},
    )
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert pod["tolerations"] == [gpu]
    assert pod["terminationGracePeriodSeconds"] == 120
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}} in pod["volumes"]
    (model,) = pod["containers"]
    assert {"name": "dshm", "mountPath": SHM_PATH} in model["volumeMounts"]
    assert model["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    (init,) = pod["initContainers"]
    assert init["resources"] == {"limits": {"memory": "2Gi"}}
    # none of it unless asked
    plain = _pod_spec()
    assert not {"nodeSelector", "tolerations", "terminationGracePeriodSeconds"} & set(plain)
    assert [v["name"] for v in plain["volumes"]] == ["model-store"]
    assert plain["initContainers"][0]["resources"]["limits"] == {"memory": "512Mi"}
