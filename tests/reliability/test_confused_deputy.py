"""Confused deputy: someone who may create modelreg objects but not Deployments, Pods or
Secrets gains no power through the operator. The webhooks ask the API server (a
SubjectAccessReview for the requesting user) before the operator may use a
ServiceAccount or Secret on their behalf; docs/security.md states the rule."""

from __future__ import annotations

from typing import Any

import kubernetes
import pytest
import yaml

from tests.support.cluster import Cluster, Registries
from tests.support.modelreg import Artifacts, Registry, denied, image

pytestmark = [pytest.mark.cluster, pytest.mark.local_env]
MD = "modeldeployments"
HOOK = {
    "url": "https://example.org/h",
    "events": ["VersionApproved"],
    "secretRef": {"name": "hmac"},
}


def grant(cluster: Cluster, namespace: str, user: str, rules: list[dict[str, Any]]) -> None:
    """A Role with ``rules`` bound to ``user`` in ``namespace``."""
    name = f"grant-{user}"
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(
            [
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": {"name": name, "namespace": namespace},
                    "rules": rules,
                },
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": name, "namespace": namespace},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": name,
                    },
                    "subjects": [
                        {"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}
                    ],
                },
            ]
        ),
    )


def serve(registry: Registry, name: str, user: str, **spec: Any) -> Any:
    return registry.create(MD, "ModelDeployment", name, {"modelRef": {"name": "m"}, **spec}, user)


def test_deployments_name_only_accounts_and_secrets_their_author_may_use(
    cluster: Cluster, registry: Registry
) -> None:
    registry.model("m")
    ns = registry.namespace
    core = kubernetes.client.CoreV1Api(cluster.api())
    core.create_namespaced_secret(ns, {"metadata": {"name": "team-s3"}, "stringData": {"k": "v"}})

    # dana may create ModelDeployments (and read pods and deployments) but not create
    # Deployments, use ServiceAccounts or read Secrets
    message = denied(lambda: serve(registry, "a", "dana", serviceAccountName="privileged"))
    assert "spec.serviceAccountName: you may not use serviceaccounts 'privileged'" in message
    assert "create deployments.apps" in message
    message = denied(
        lambda: serve(registry, "b", "dana", storage={"secretRef": {"name": "team-s3"}})
    )
    assert "spec.storage.secretRef: you may not get secrets 'team-s3'" in message
    # the same when a deployment she may edit is re-pointed
    serve(registry, "c", "dana")
    message = denied(
        lambda: registry.api("dana").patch_namespaced_custom_object(
            "modelreg.dev", "v1alpha1", ns, MD, "c", {"spec": {"serviceAccountName": "privileged"}}
        )
    )
    assert "you may not use serviceaccounts 'privileged'" in message

    # granted exactly: use of one ServiceAccount, get of one Secret
    grant(
        cluster,
        ns,
        "dana",
        [
            {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["use"],
             "resourceNames": ["serving"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
             "resourceNames": ["team-s3"]},
        ],
    )  # fmt: skip
    serve(
        registry,
        "d",
        "dana",
        serviceAccountName="serving",
        storage={"secretRef": {"name": "team-s3"}},
    )
    assert "'privileged'" in denied(
        lambda: serve(registry, "e", "dana", serviceAccountName="privileged")
    )

    # an admin's deployment under another account: dana may still scale it, not re-point it
    serve(registry, "f", "admin", serviceAccountName="privileged")
    registry.api("dana").patch_namespaced_custom_object(
        "modelreg.dev", "v1alpha1", ns, MD, "f", {"spec": {"replicas": 3}}
    )
    assert "'other'" in denied(
        lambda: registry.api("dana").patch_namespaced_custom_object(
            "modelreg.dev", "v1alpha1", ns, MD, "f", {"spec": {"serviceAccountName": "other"}}
        )
    )
    names = {
        md["metadata"]["name"]
        for md in registry.api().list_namespaced_custom_object("modelreg.dev", "v1alpha1", ns, MD)[
            "items"
        ]
    }
    assert names == {"c", "d", "f"}


def test_pull_secrets_and_notification_secrets_need_read_access(
    registry: Registry, artifacts: Artifacts, registries: Registries
) -> None:
    registry.model("m")
    art, _ = artifacts.upload("m/v1")
    ref = image(registries, "serving/sklearn", "deputy", private=True).reference
    spec = {
        "modelRef": {"name": "m"},
        "artifact": art,
        "image": {"reference": ref, "pullSecrets": [{"name": "creds"}]},
    }
    message = denied(lambda: registry.create("modelversions", "ModelVersion", "v1", spec, "dana"))
    assert "spec.image.pullSecrets[0]: you may not get secrets 'creds'" in message
    message = denied(
        lambda: registry.create(
            "registeredmodels",
            "RegisteredModel",
            "n",
            {"notifications": [HOOK]},
            "dana",
        )
    )
    assert "spec.notifications[0].secretRef: you may not get secrets 'hmac'" in message
    # the cluster admin may (could create such pods or read such Secrets anyway)
    registry.create(
        "registeredmodels",
        "RegisteredModel",
        "n",
        {"notifications": [HOOK]},
    )
