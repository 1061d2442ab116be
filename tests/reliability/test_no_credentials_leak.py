"""No credential the operator handles appears in its log, in Events, in any status or in
the objects it writes. The workload touches each one: a private image resolved with a
pull Secret (and one with a wrong password), an artifact downloaded with a storage
Secret, notifications signed with an HMAC key, and the approval record key."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.controller.test_deployments import MD, MV, served
from tests.support.cluster import Cluster, Registries
from tests.support.modelreg import Artifacts, Registry

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]


def dockerconfig(host: str, user: str, password: str) -> dict[str, str]:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    document = {"auths": {host: {"username": user, "password": password, "auth": auth}}}
    return {".dockerconfigjson": base64.b64encode(json.dumps(document).encode()).decode()}


def everything_written(cluster: Cluster, namespace: str) -> dict[str, str]:
    """Every object of the namespace a user or tool could read, as JSON text, by kind."""
    api = cluster.api()
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    found = {
        plural: json.dumps(
            custom.list_namespaced_custom_object("modelreg.dev", "v1alpha1", namespace, plural)
        )
        for plural in ("registeredmodels", "modelversions", "modeldeployments")
    }
    listed: dict[str, list[Any]] = {
        "events": core.list_namespaced_event(namespace).items,
        "pods": core.list_namespaced_pod(namespace).items,
        "services": core.list_namespaced_service(namespace).items,
        "deployments": apps.list_namespaced_deployment(namespace).items,
        "replicasets": apps.list_namespaced_replica_set(namespace).items,
    }
    for kind, items in listed.items():
        found[kind] = json.dumps([api.sanitize_for_serialization(i) for i in items])
    return found


def test_no_credential_in_logs_events_status_or_written_objects(
    cluster: Cluster,
    registry: Registry,
    artifacts: Artifacts,
    registries: Registries,
    dev_env: Any,
) -> None:
    log = Path(dev_env.layout.logs) / "operator.log"
    start = log.stat().st_size if log.exists() else 0
    ns = registry.namespace
    core = kubernetes.client.CoreV1Api(cluster.api())
    env = cluster.env
    wrong_password = f"wrong-{uuid.uuid4().hex}"
    hmac_key = f"hmac-{uuid.uuid4().hex}"
    private = registries.private
    user, password = (
        env["MODELREG_PRIVATE_REGISTRY_USERNAME"],
        env["MODELREG_PRIVATE_REGISTRY_PASSWORD"],
    )
    secrets = {
        "regcred": ("kubernetes.io/dockerconfigjson", dockerconfig(private, user, password)),
        "wrongcred": (
            "kubernetes.io/dockerconfigjson",
            dockerconfig(private, user, wrong_password),
        ),
        "s3": (
            "Opaque",
            {
                k: base64.b64encode(env[k].encode()).decode()
                for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MODELREG_S3_ENDPOINT")
            },
        ),
        "hook": ("Opaque", {"key": base64.b64encode(hmac_key.encode()).decode()}),
    }
    for name, (type_, data) in secrets.items():
        core.create_namespaced_secret(ns, {"metadata": {"name": name}, "type": type_, "data": data})

    # every event is notified, signed with the HMAC key, to a receiver that is not there
    events = ["VersionRegistered", "VersionVerified", "VersionApproved", "DeploymentSucceeded"]
    registry.model("m", notifications=[
        {"url": "http://127.0.0.1:1/hook", "events": events, "secretRef": {"name": "hook"}}
    ])  # fmt: skip
    img = registries.push("secret/model", "leak", private=True)
    for name, pull in (("v1", "regcred"), ("v2", "wrongcred")):
        art, _ = artifacts.upload(f"m/{name}")
        spec = {
            "modelRef": {"name": "m"},
            "artifact": art,
            "image": {"reference": img.reference, "pullSecrets": [{"name": pull}]},
        }
        registry.create(MV, "ModelVersion", name, spec, user="admin")
    registry.wait_condition(MV, "v2", "ImageResolved", "False", "Unauthorized")
    registry.approve("v1", "alice")
    registry.wait_condition(MV, "v1", "Ready", "True", "Deployable")
    storage = {"secretRef": {"name": "s3"}}
    spec = {"modelRef": {"name": "m"}, "version": {"name": "v1"}, "storage": storage}
    registry.create(MD, "ModelDeployment", "serve", spec)
    served(registry, "v1")
    time.sleep(2)  # notification attempts and their log lines

    credentials = {
        "registry password": password,
        "wrong registry password": wrong_password,
        "registry basic auth": base64.b64encode(f"{user}:{password}".encode()).decode(),
        "S3 secret key": env["AWS_SECRET_ACCESS_KEY"],
        "notification HMAC key": hmac_key,
        "approval record key": dev_env.secrets.record_key,
    }
    with log.open() as f:
        f.seek(start)
        places = {"operator log": f.read(), **everything_written(cluster, ns)}
    assert "Unauthorized" in places["modelversions"]  # the failure is explained...
    assert "v1" in places["deployments"]
    leaks = [
        f"{what} in {where}"
        for what, value in credentials.items()
        for where, text in places.items()
        if value in text
    ]
    assert not leaks, leaks  # ...without the credentials
