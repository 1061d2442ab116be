"""Helpers for tests that drive modelreg objects as the demo users."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from tests.support.cluster import Cluster, PushedImage, Registries

GROUP, VERSION = "modelreg.dev", "v1alpha1"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class Registry:
    """modelreg objects in one namespace, created and changed as a chosen user."""

    cluster: Cluster
    namespace: str

    def api(self, user: str = "admin") -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.cluster.api(user))

    def create(
        self,
        plural: str,
        kind: str,
        name: str,
        spec: dict[str, Any],
        user: str = "admin",
        annotations: dict[str, str] | None = None,
    ) -> Any:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": spec,
        }
        return self.api(user).create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, body
        )

    def model(self, name: str, **spec: Any) -> Any:
        return self.create("registeredmodels", "RegisteredModel", name, spec)

    def version(
        self,
        name: str,
        model: str,
        artifact: dict[str, Any],
        image: str,
        user: str = "dana",
        **extra: Any,
    ) -> Any:
        spec = {
            "modelRef": {"name": model},
            "artifact": artifact,
            "image": {"reference": image},
            **extra,
        }
        return self.create("modelversions", "ModelVersion", name, spec, user=user)

    def get(self, plural: str, name: str) -> Any:
        return self.api().get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)

    def number(self, name: str) -> int | None:
        """The version number the operator recorded in the version's status, if any."""
        number = (self.get("modelversions", name).get("status") or {}).get("number")
        return int(number) if number else None

    def annotate(self, name: str, user: str, **values: str | None) -> Any:
        patch = {
            "metadata": {
                "annotations": {f"modelreg.dev/{k.replace('_', '-')}": v for k, v in values.items()}
            }
        }
        return self.api(user).patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "modelversions", name, patch
        )

    def approve(self, name: str, user: str, comment: str = "") -> Any:
        return self.annotate(name, user, approval="Approved", approval_comment=comment or None)

    def reject(self, name: str, user: str, comment: str = "") -> Any:
        return self.annotate(name, user, approval="Rejected", approval_comment=comment or None)

    def condition(self, plural: str, name: str, type_: str) -> dict[str, Any] | None:
        status = self.get(plural, name).get("status") or {}
        return next((c for c in status.get("conditions", []) if c["type"] == type_), None)

    def wait_condition(
        self,
        plural: str,
        name: str,
        type_: str,
        status: str,
        reason: str | None = None,
        timeout: float = 60,
    ) -> dict[str, Any]:
        seen: list[Any] = [None]

        def check() -> dict[str, Any] | None:
            seen[0] = (self.get(plural, name).get("status") or {}).get("conditions")
            c: dict[str, Any] | None = next((c for c in seen[0] or [] if c["type"] == type_), None)
            if c and c["status"] == status and (reason is None or c["reason"] == reason):
                return c
            return None

        try:
            return wait_for(f"{plural}/{name} {type_}={status} {reason or ''}", check, timeout)  # type: ignore[no-any-return]
        except AssertionError as e:
            raise AssertionError(f"{e}; conditions last seen: {seen[0]}") from None

    def events(self, name: str) -> list[tuple[str, str]]:
        core = kubernetes.client.CoreV1Api(self.cluster.api())
        items = core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        ).items
        return [(str(e.reason), str(e.message)) for e in items]


def denied(call: Callable[[], Any]) -> str:
    """The message of an admission denial (fails if the call succeeds)."""
    with pytest.raises(ApiException) as e:
        call()
    assert e.value.status in (400, 403, 422), e.value.body
    return str(e.value.body)


@dataclass
class Artifacts:
    """Uploads model artifacts to the S3 server."""

    s3: Any
    bucket: str

    def upload(
        self, key: str, data: bytes | None = None, checksum: bool = True
    ) -> tuple[dict[str, Any], str]:
        data = data if data is not None else os.urandom(2048)
        sha = hashlib.sha256(data).hexdigest()
        extra = {"ChecksumAlgorithm": "SHA256"} if checksum else {}
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
        return {"uri": f"s3://{self.bucket}/{key}", "sha256": sha}, sha


def image(
    registries: Registries, path: str = "serving/sklearn", tag: str = "1.0", private: bool = False
) -> PushedImage:
    return registries.push(path, tag, private=private)


@contextmanager
def stopped(dev_env: Any, component: str) -> Iterator[None]:
    """Stop a component of the test environment for the block; start it again afterwards
    (``modelreg dev up`` restarts whatever is missing)."""
    from modelreg import devenv
    from modelreg.devenv import process

    process.stop(dev_env.layout.pidfile(component))
    try:
        yield
    finally:
        devenv.up(dev_env.layout.root, log=lambda _: None)
