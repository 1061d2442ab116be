import base64
import re

import pytest

from modelreg.devenv import manifests


def test_kubeconfig_has_one_context_per_user_and_admin_current():
    kc = manifests.kubeconfig(
        "https://127.0.0.1:1", b"CA", {"admin": "t1", "eve": "t2"}, ["admin", "eve"], "admin"
    )
    assert kc["current-context"] == "admin"
    assert [c["name"] for c in kc["contexts"]] == ["admin", "eve"]
    assert {u["name"]: u["user"]["token"] for u in kc["users"]} == {"admin": "t1", "eve": "t2"}
    cluster = kc["clusters"][0]["cluster"]
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"CA"
    assert cluster["server"] == "https://127.0.0.1:1"


def _pattern(suffix: str) -> str:
    query = manifests.image_behaviour_query(suffix)
    match = re.search(r'test\("(.*)"\)', query)
    assert match
    return match.group(1)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("127.0.0.1:5000/serving/model-unready:1.0", True),
        ("127.0.0.1:5000/serving/model-unready@sha256:" + "a" * 64, True),
        ("model-unready", True),
        ("127.0.0.1:5000/serving/model:1.0", False),
        ("127.0.0.1:5000/model-unready-not/x:1", False),  # suffix must end the repository
        ("127.0.0.1:5000/serving/model:v-unready", False),  # a tag is not the repository
    ],
)
def test_failure_image_selector(image, expected):
    assert bool(re.search(_pattern(manifests.UNREADY_SUFFIX), image)) is expected


def test_pod_stages_exclude_failure_images_from_upstream_ready_stage():
    upstream = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": "pod-ready"},
        "spec": {
            "selector": {
                "matchExpressions": [
                    {"key": ".status.phase", "operator": "In", "values": ["Pending"]}
                ]
            }
        },
    }
    stages = manifests.pod_stages(upstream, [])
    names = [s["metadata"]["name"] for s in stages]
    assert names == ["pod-ready", "modelreg-pod-unready", "modelreg-pod-crashloop"]
    ready_exprs = stages[0]["spec"]["selector"]["matchExpressions"]
    assert [e["operator"] for e in ready_exprs] == ["In", "NotIn", "NotIn"]
    # the upstream object itself is left untouched
    assert len(upstream["spec"]["selector"]["matchExpressions"]) == 1
    for stage in stages[1:]:
        exprs = stage["spec"]["selector"]["matchExpressions"]
        assert {"key": ".status.phase", "operator": "In", "values": ["Pending"]} in exprs


def test_demo_namespace_rbac_lets_non_admins_edit_modelreg_objects():
    objs = manifests.demo_namespace_objects("ns1")
    kinds = [(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in objs]
    assert kinds == [
        ("Namespace", "ns1", None),
        ("ClusterRole", "modelreg-dev-editor", None),
        ("ClusterRole", "modelreg-dev-model-owner", None),
        ("RoleBinding", "modelreg-dev-model-owners", "ns1"),
        ("RoleBinding", "modelreg-dev-editors", "ns1"),
        ("RoleBinding", "modelreg-dev-viewers", "ns1"),
    ]
    assert {s["name"] for s in objs[4]["subjects"]} == {"alice", "bob", "dana", "eve"}
    assert [s["name"] for s in objs[3]["subjects"]] == ["data-scientists"]
    everyone = {r: set(rule["verbs"]) for rule in objs[1]["rules"] for r in rule["resources"]}
    assert {"create", "update", "patch"} <= everyone["modelversions"]
    assert {"create", "update", "patch"} <= everyone["modeldeployments"]
    assert everyone["registeredmodels"] == {"get", "list", "watch"}
    (owner,) = objs[2]["rules"]
    assert owner["resources"] == ["registeredmodels"]
    assert {"create", "update", "patch"} <= set(owner["verbs"])


def test_registry_config_auth_only_when_htpasswd_given():
    anon = manifests.registry_config(5000, "/data")
    private = manifests.registry_config(5001, "/data2", "/pki/htpasswd")
    assert "auth" not in anon
    assert private["auth"] == {"htpasswd": {"realm": "modelreg-dev", "path": "/pki/htpasswd"}}
    assert anon["http"]["addr"] == "127.0.0.1:5000"
