"""A tiny kopf operator used to prove the operator fixture runs against the real cluster."""

from __future__ import annotations

from typing import Any

import kopf


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = "modelreg-tests.dev/echo"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix="echo.modelreg-tests.dev"
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="echo.modelreg-tests.dev"
    )
    settings.watching.server_timeout = 60


@kopf.on.create("configmaps", labels={"modelreg-tests/echo": "yes"})
def echo(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    patch.metadata.annotations["modelreg-tests/echo"] = body.get("data", {}).get("msg", "")
