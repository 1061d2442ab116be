"""Kube facade: errors that mean "nothing left to do" are not raised."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from modelreg.kube import Kube

TERMINATING = (
    '{"kind":"Status","message":"deployments.apps \\"serve\\" is forbidden: unable to create '
    'new content in namespace t because it is being terminated","reason":"Forbidden",'
    '"details":{"causes":[{"reason":"NamespaceTerminating"}]},"code":403}'
)


class Refusing:
    def __init__(self, status: int, body: str) -> None:
        self.status, self.body = status, body

    def patch_namespaced_deployment(self, *_: Any, **__: Any) -> None:
        e = ApiException(status=self.status)
        e.body = self.body
        raise e


def kube(apps: Any) -> Kube:
    k = Kube.__new__(Kube)
    k.apps = apps
    return k


DEPLOYMENT = {"kind": "Deployment", "metadata": {"name": "serve", "namespace": "t"}}


def test_apply_into_a_terminating_namespace_is_a_no_op() -> None:
    kube(Refusing(403, TERMINATING)).apply(DEPLOYMENT)


def test_other_refusals_are_raised() -> None:
    with pytest.raises(ApiException):
        kube(Refusing(403, '{"message":"forbidden by RBAC"}')).apply(DEPLOYMENT)
