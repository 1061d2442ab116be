"""Which transitions a reconcile made (pure), and sending them to a model's receivers.

A ModelVersion's transitions are read off its old and new status, so they are sent once
per transition however often the version is reconciled; a ModelDeployment's come from the
Events its reconcile posts. Delivery (retries, signatures, bounded memory) is
:mod:`modelreg.notify`; a delivery that fails is posted as a Warning Event
``NotificationFailed`` on the RegisteredModel.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelreg import conditions, notify
from modelreg.api import annotations as ann
from modelreg.api.model_version import ApprovalState, ModelVersionStatus
from modelreg.api.registered_model import NotificationEvent as E
from modelreg.api.registered_model import RegisteredModelSpec
from modelreg.conditions import FALSE, TRUE
from modelreg.kube import Kube

log = logging.getLogger(__name__)

#: the Secret key that signs a subscription's events
SECRET_KEY = "key"  # noqa: S105 (the name of a data key)
#: ModelDeployment Event reasons that are notification transitions
DEPLOYMENT_EVENTS = {
    "RolloutSucceeded": E.DEPLOYMENT_SUCCEEDED,
    "RolloutFailed": E.DEPLOYMENT_FAILED,
    "RolledBack": E.DEPLOYMENT_ROLLED_BACK,
}
_CHECKS = ("ArtifactVerified", "ImageResolved")


@dataclass(frozen=True)
class Notice:
    """One transition of a version or deployment, before it is addressed."""

    event: E
    reason: str
    message: str
    user: str | None = None


def _condition(status: ModelVersionStatus, type_: str) -> tuple[str | None, str, str]:
    c = conditions.find(status.conditions, type_)
    return (c.status, c.reason, c.message) if c else (None, "", "")


def version_notices(
    old: ModelVersionStatus, new: ModelVersionStatus, annotations: dict[str, str]
) -> list[Notice]:
    """The notification transitions from ``old`` to ``new`` status of one version."""
    out = []
    if new.number is not None and old.number is None:
        out.append(
            Notice(
                E.VERSION_REGISTERED,
                "VersionRegistered",
                f"registered as version {new.number}",
                new.registered_by,
            )
        )

    def verified(s: ModelVersionStatus) -> bool:
        return all(_condition(s, t)[0] == TRUE for t in _CHECKS)

    def failure(s: ModelVersionStatus) -> tuple[str, str] | None:
        for t in _CHECKS:
            status, reason, message = _condition(s, t)
            if status == FALSE:
                return reason, message
        return None

    if verified(new) and not verified(old):
        out.append(Notice(E.VERSION_VERIFIED, "Verified", "artifact verified and image resolved"))
    if (failed := failure(new)) and failure(old) != failed:
        out.append(Notice(E.VERSION_VERIFICATION_FAILED, *failed))
    last = new.approval.decisions[-1].user if new.approval.decisions else None
    if new.approval.state != old.approval.state:
        _, reason, message = _condition(new, "Approved")
        if new.approval.state == ApprovalState.APPROVED:
            out.append(Notice(E.VERSION_APPROVED, reason, message, last))
        elif new.approval.state == ApprovalState.REJECTED:
            out.append(Notice(E.VERSION_REJECTED, reason, message, last))
    _, before, _ = _condition(old, "Ready")
    _, after, message = _condition(new, "Ready")
    if after == "Archived" and before != "Archived":
        comment = annotations.get(ann.ARCHIVE_COMMENT) or message
        out.append(
            Notice(E.VERSION_ARCHIVED, "Archived", comment, annotations.get(ann.ARCHIVED_BY))
        )
    return out


def deployment_notices(events: list[tuple[str, str, str]]) -> list[Notice]:
    """The notification transitions among a ModelDeployment reconcile's Events."""
    return [
        Notice(DEPLOYMENT_EVENTS[reason], reason, message)
        for _, reason, message in events
        if reason in DEPLOYMENT_EVENTS
    ]


class Notifier:
    """Addresses notices to the model's receivers and hands them to the dispatcher."""

    def __init__(self, kube: Callable[[], Kube], dispatcher: notify.Dispatcher) -> None:
        self.kube, self.dispatcher = kube, dispatcher

    def subscriptions(self, namespace: str, model: str) -> list[notify.Subscription]:
        rm = self.kube().model(namespace, model)
        if rm is None:
            return []
        out = []
        spec = RegisteredModelSpec.model_validate(rm.get("spec") or {})
        for i, n in enumerate(spec.notifications):
            key = None
            if n.secret_ref is not None:
                key = self._key(namespace, n.secret_ref.name)
                if key is None:
                    self.kube().post_event(
                        rm, "Warning", "NotificationFailed",
                        f"Secret {n.secret_ref.name} (spec.notifications[{i}]) is missing or "
                        f"has no {SECRET_KEY!r}: its events are not sent unsigned",
                    )  # fmt: skip
                    continue
            out.append(notify.Subscription.from_spec(n, key))
        return out

    def _key(self, namespace: str, secret: str) -> bytes | None:
        data = self.kube().secret_data(namespace, secret)
        raw = (data or {}).get(SECRET_KEY)
        return base64.b64decode(raw) if raw else None

    def send(
        self,
        obj: dict[str, Any],
        model: str,
        notices: list[Notice],
        *,
        version: str | None = None,
        number: int | None = None,
        digest: str | None = None,
        artifact_uri: str | None = None,
    ) -> int:
        """Submit each notice to the subscribed receivers; how many deliveries."""
        if not notices:
            return 0
        meta = obj["metadata"]
        namespace = meta["namespace"]
        subscriptions = self.subscriptions(namespace, model)
        if not subscriptions:
            return 0
        kind = obj.get("kind", "")
        plural = "modeldeployments" if kind == "ModelDeployment" else "modelversions"
        now = dt.datetime.now(dt.UTC)
        sent = 0
        for n in notices:
            sent += self.dispatcher.submit(
                subscriptions,
                notify.Transition(
                    event=n.event.value,
                    namespace=namespace,
                    kind=kind,
                    name=meta["name"],
                    plural=plural,
                    model=model,
                    reason=n.reason,
                    message=n.message,
                    # the object's state this reconcile started from: one per transition
                    key=f"{meta.get('uid')}/{meta.get('resourceVersion')}",
                    time=now,
                    version=version,
                    version_number=number,
                    user=n.user,
                    digest=digest,
                    artifact_uri=artifact_uri,
                    deployment=meta["name"] if kind == "ModelDeployment" else None,
                ),
            )
        return sent

    def failed(self, delivery: notify.Delivery, error: str, permanent: bool) -> None:
        """Post a delivery failure as a Warning Event on the RegisteredModel."""
        t = delivery.transition
        rm = self.kube().get("registeredmodels", t.namespace, t.model)
        if rm is None:
            return
        what = "gave up on" if permanent else "retrying"
        self.kube().post_event(
            rm, "Warning", "NotificationFailed", f"{what} {delivery.describe()}: {error}"
        )
