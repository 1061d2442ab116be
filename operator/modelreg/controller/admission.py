"""The admission rules (pure, given lookups): ModelVersion decisions, and what a
ModelDeployment may make the operator do on its author's behalf.

Every request that sets ``modelreg.dev/approval`` is one decision by the requesting user:
the webhook checks the user against the model's approval policy, appends the decision to
the system-managed record (``modelreg.dev/decisions``) and removes the request
annotations, so the next request is again a new decision. Users can never write the
record, the registrant or the creation stamp themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modelreg import policy, record
from modelreg.api import annotations as ann
from modelreg.api.model_version import ApprovalDecision, ArchiveAction, ArchiveDecision, Decision
from modelreg.api.registered_model import ApprovalPolicy, SecurityPolicy
from modelreg.approval import Requester, denial

Obj = Mapping[str, Any]
PolicyLookup = Callable[[str], ApprovalPolicy | None]
#: the names of the ModelDeployments that serve a version now (by version name)
ServingLookup = Callable[[str], list[str]]
#: the security policy of a model (None: the model does not exist)
SecurityLookup = Callable[[str], SecurityPolicy | None]
#: whether the requester may archive and un-archive versions of a model: whether they
#: may update the RegisteredModel (a SubjectAccessReview), or are the operator itself
RetireCheck = Callable[[str], bool]


#: the most decisions one version can hold (``status.approval.decisions`` is bounded too)
MAX_DECISIONS = 256

# Sizes, as the API server counts annotations (key and value lengths; it refuses a total
# over 256 KiB): the bounds below keep a revocation within it whatever users wrote before
# (docs/security.md, "Revocation always fits").
#: labels and annotations users write (all but modelreg's and kopf's own): an update
#: that grows them past this is refused
USER_METADATA_BYTES = 64 * 1024
#: the decisions record: no Approved decision is recorded past this
APPROVALS_BYTES = 96 * 1024
#: past this a Rejected decision is recorded without its comment, and one that repeats
#: the last decision (which changes nothing) is refused
REJECTIONS_BYTES = 144 * 1024
#: the archive record: past this an archive is recorded without its comment, and no
#: un-archive is accepted
ARCHIVE_RECORD_BYTES = 16 * 1024

#: how far a new decision's recorded time may be from the validating webhook's clock
DECISION_CLOCK_SKEW = dt.timedelta(minutes=5)


class Denied(Exception):
    """The request breaks a rule; the message names it and says what to do."""


def _annotations(obj: Obj | None) -> Mapping[str, str]:
    return (obj or {}).get("metadata", {}).get("annotations") or {}


def admit_version(
    operation: str,
    new: Obj,
    old: Obj | None,
    requester: Requester,
    policy_of: PolicyLookup,
    now: dt.datetime,
    created_ns: int,
    serving: ServingLookup = lambda _: [],
    security_of: SecurityLookup = lambda _: None,
    *,
    may_retire: RetireCheck,
    content: tuple[str | None, str | None] | None = None,
    namespace: str = "",
) -> dict[str, str | None]:
    """The annotation changes to make to ``new`` (None removes); raises :class:`Denied`.
    ``content``: what the version verified as before this request (image, sha256), the
    operator's sealed results; a decision is recorded over it."""
    new_ann, old_ann = _annotations(new), _annotations(old)
    name = new.get("metadata", {}).get("name") or new.get("metadata", {}).get("generateName", "")
    if operation == "CREATE":
        for key in ann.SYSTEM:
            if key in new_ann:
                raise Denied(f"annotation {key} is written by modelreg only: remove it")
        if ann.APPROVAL in new_ann:
            raise Denied(
                f"{ann.APPROVAL} must not be set at creation: register the version, "
                "then an approver annotates it"
            )
        if ann.is_archived(new_ann):
            raise Denied(f"{ann.ARCHIVED} must not be set at creation: register, then archive")
        spec = new.get("spec") or {}
        model = (spec.get("modelRef") or {}).get("name", "")
        namespace = namespace or new.get("metadata", {}).get("namespace", "")
        admin = policy.admin_sources()
        why_not = admin.artifact_denial(
            namespace, (spec.get("artifact") or {}).get("uri", "")
        ) or admin.image_denial(namespace, (spec.get("image") or {}).get("reference", ""))
        if why_not:
            raise Denied(why_not)
        security = security_of(model)
        if security is not None:
            why = policy.artifact_denial(
                security, model, (spec.get("artifact") or {}).get("uri", "")
            ) or policy.image_denial(
                security, model, (spec.get("image") or {}).get("reference", "")
            )
            if why:
                raise Denied(why)
        return {ann.REGISTERED_BY: requester.user, ann.CREATED_AT: str(created_ns)}

    for key in ann.SYSTEM:
        if new_ann.get(key) != old_ann.get(key):
            raise Denied(
                f"annotation {key} is written by modelreg only: it must not be added, "
                "changed or removed"
            )
    changes = _retirement(new, old_ann, new_ann, requester, now, serving, may_retire)
    if ann.APPROVAL not in new_ann:
        return changes
    value = new_ann[ann.APPROVAL]
    if old_ann.get(ann.APPROVAL) == value:
        # left over from a time without this webhook: this request did not set it, so it is
        # no decision of this requester; drop it unrecorded
        changes[ann.APPROVAL] = None
        if ann.APPROVAL_COMMENT in new_ann:
            changes[ann.APPROVAL_COMMENT] = None
        return changes
    if value not in (Decision.APPROVED, Decision.REJECTED):
        raise Denied(f'{ann.APPROVAL} must be "Approved" or "Rejected", not {value!r}')
    model = new.get("spec", {}).get("modelRef", {}).get("name", "")
    approval_policy = policy_of(model)
    if approval_policy is None:
        raise Denied(
            f"RegisteredModel {model!r} does not exist: decisions follow its approval "
            "policy, so create it first"
        )
    why = denial(approval_policy, requester, old_ann.get(ann.REGISTERED_BY))
    if why:
        raise Denied(why)
    recorded = ann.decisions(old_ann)
    size = len(old_ann.get(ann.DECISIONS, ""))
    full = (
        f"ModelVersion {name} already holds {len(recorded)} decisions ({size} bytes), the "
        "most one version records"
    )
    comment = _requested(new_ann, old_ann, ann.APPROVAL_COMMENT)
    if value == Decision.APPROVED and (len(recorded) >= MAX_DECISIONS or size > APPROVALS_BYTES):
        raise Denied(f"{full} for an approval: register a new version to decide again")
    if value == Decision.REJECTED and (len(recorded) >= MAX_DECISIONS or size > REJECTIONS_BYTES):
        # a revocation always fits: only a rejection that changes nothing is refused
        if recorded and recorded[-1].decision == Decision.REJECTED:
            raise Denied(f"{full}, and the last one is already a rejection")
        comment = ""
    image, sha256 = content or (None, None)
    recorded.append(
        ApprovalDecision(
            user=requester.user,
            decision=Decision(value),
            comment=comment,
            time=now,
            # bound to what was verified when it was made (signed with the record)
            image=image,
            artifact_sha256=sha256,
        )
    )
    changes[ann.DECISIONS] = ann.encode_decisions(recorded)
    changes[ann.APPROVAL] = None
    if ann.APPROVAL_COMMENT in new_ann:
        changes[ann.APPROVAL_COMMENT] = None
    return changes


def _requested(new_ann: Mapping[str, str], old_ann: Mapping[str, str], key: str) -> str:
    """A comment given with this request (set or changed by it): one left on the object
    by someone else earlier is not the decider's, so it is not recorded as theirs."""
    value = new_ann.get(key, "")
    return value[:1024] if value != old_ann.get(key, "") else ""


def _retirement(
    new: Obj,
    old_ann: Mapping[str, str],
    new_ann: Mapping[str, str],
    requester: Requester,
    now: dt.datetime,
    serving: ServingLookup,
    may_retire: RetireCheck,
) -> dict[str, str | None]:
    """An archive or un-archive: a decision of those who may update the model, appended
    to the signed archive record (who, why, when), which nobody can erase."""
    archiving = ann.is_archived(new_ann) and not ann.is_archived(old_ann)
    if not archiving and not (ann.is_archived(old_ann) and not ann.is_archived(new_ann)):
        return {}
    name = new.get("metadata", {}).get("name", "")
    model = ((new.get("spec") or {}).get("modelRef") or {}).get("name", "")
    verb = "archive" if archiving else "un-archive"
    if not may_retire(model):
        raise Denied(
            f"you may not {verb} ModelVersion {name}: archiving and un-archiving are "
            f"decisions of those who may update RegisteredModel {model!r} (RBAC update "
            "registeredmodels); ask its owner"
        )
    if archiving:
        # asked of the ModelDeployments themselves: the version's status.deployments is
        # derived from them and may lag behind a rollout that just happened
        serving_now = serving(name)
        if serving_now:
            raise Denied(
                f"ModelVersion {name} must not be archived while ModelDeployment(s) "
                f"{', '.join(serving_now)} serve it: point them at another version first"
            )
    trail = ann.archive_record(old_ann)
    comment = _requested(new_ann, old_ann, ann.ARCHIVE_COMMENT)
    if len(old_ann.get(ann.ARCHIVE_RECORD, "")) > ARCHIVE_RECORD_BYTES:
        if not archiving:
            raise Denied(
                f"ModelVersion {name} has been archived and un-archived too often to record "
                "another un-archive: register it again as a new version"
            )
        comment = ""  # retiring a version always fits
    trail.append(
        ArchiveDecision(
            user=requester.user,
            action=ArchiveAction.ARCHIVED if archiving else ArchiveAction.UNARCHIVED,
            comment=comment,
            time=now,
        )
    )
    return {
        ann.ARCHIVED_BY: requester.user if archiving else None,
        ann.ARCHIVE_RECORD: ann.encode_archive_record(trail),
    }


def user_metadata_bytes(obj: Obj | None) -> int:
    """The size of the labels and annotations users write, counted as the API server
    counts annotations (modelreg's system annotations and kopf's are not counted)."""
    meta = (obj or {}).get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return sum(
        len(k) + len(v)
        for part in (meta.get("labels") or {}, annotations)
        for k, v in part.items()
        if k not in ann.SYSTEM and not ann.kopf_owned(k)
    )


def admit_size(new: Obj, old: Obj | None) -> None:
    """Refuse a request that grows a version's user-written labels and annotations past
    USER_METADATA_BYTES, so the record of decisions and archives always has room: a
    rejection or an archive must never fail because the object is too large. A version
    already past it may still shrink. Raises :class:`Denied`."""
    size = user_metadata_bytes(new)
    if size > USER_METADATA_BYTES and size > user_metadata_bytes(old):
        raise Denied(
            f"labels and annotations would take {size} bytes; a ModelVersion keeps at most "
            f"{USER_METADATA_BYTES} for them, so that its approval record always fits: "
            "put large data in the artifact or in spec.metrics"
        )


def admit_bookkeeping(new: Obj, old: Obj | None, requester: str, operator: str | None) -> None:
    """Refuse a change of kopf's own state (``kopf.modelreg.dev/*`` annotations: handler
    progress) by anyone but the operator: written by hand, it can make the operator
    believe a handler ran or is waiting, and so freeze an object. Raises :class:`Denied`."""
    if operator is not None and requester == operator:
        return
    new_ann, old_ann = _annotations(new), _annotations(old)
    for key in sorted({*new_ann, *old_ann}):
        if ann.kopf_owned(key) and new_ann.get(key) != old_ann.get(key):
            raise Denied(
                f"annotation {key} is the operator's own bookkeeping, written by modelreg "
                "only: it must not be added, changed or removed"
            )


def admit_record(
    operation: str,
    new: Obj,
    old: Obj | None,
    requester: Requester,
    now: dt.datetime,
    key: bytes | None,
    namespace: str,
) -> None:
    """Check the final object of a ModelVersion request (validating admission, after every
    mutating webhook has run): its system-managed record must be exactly what the
    ``approval-record`` webhook may have made of this request. Raises :class:`Denied`.

    The mutating webhook writes the record; this check catches anything that changed it
    afterwards: another mutating webhook, a reinvocation, or a request that reached the
    API server while the mutating webhook was not registered.
    """
    new_ann, old_ann = _annotations(new), _annotations(old)
    after = "after modelreg recorded this request (another mutating admission webhook?)"
    if ann.APPROVAL in new_ann:
        raise Denied(
            f"annotation {ann.APPROVAL} is still set {after}: it must be removed when the "
            "decision is recorded; make sure modelreg's mutating webhook approval-record "
            "is registered"
        )
    if operation == "CREATE":
        if new_ann.get(ann.REGISTERED_BY) != requester.user:
            raise Denied(
                f"annotation {ann.REGISTERED_BY} must name the requesting user "
                f"{requester.user!r}, and it names {new_ann.get(ann.REGISTERED_BY)!r} {after}"
            )
        for key_ in (ann.DECISIONS, ann.ARCHIVED_BY, ann.ARCHIVE_RECORD):
            if key_ in new_ann:
                raise Denied(f"annotation {key_} must not be set at creation; it was {after}")
    else:
        for key_ in (ann.REGISTERED_BY, ann.CREATED_AT, ann.NUMBER):
            if new_ann.get(key_) != old_ann.get(key_):
                raise Denied(f"annotation {key_} was changed {after}: it never changes")
        _check_decisions(ann.decisions(old_ann), ann.decisions(new_ann), requester, now, after)
        _check_archived_by(old_ann, new_ann, requester, after)
    signed_changed = any(new_ann.get(k) != old_ann.get(k) for k in ann.SIGNED)
    if signed_changed:
        model = ((new.get("spec") or {}).get("modelRef") or {}).get("name", "")
        if not record.verify(key, namespace, model, new_ann):
            raise Denied(f"the signature of the approval record does not match it {after}")


def _check_decisions(
    before: list[ApprovalDecision],
    after_: list[ApprovalDecision],
    requester: Requester,
    now: dt.datetime,
    after: str,
) -> None:
    added = len(after_) - len(before)
    if after_[: len(before)] != before or added not in (0, 1):
        raise Denied(
            f"annotation {ann.DECISIONS} was rewritten {after}: decisions are only ever "
            "appended, one per request"
        )
    if added:
        decision = after_[-1]
        if decision.user != requester.user or abs(decision.time - now) > DECISION_CLOCK_SKEW:
            raise Denied(
                f"the decision added to {ann.DECISIONS} is not {requester.user!r}'s own "
                f"decision of this request {after}"
            )


def _check_archived_by(
    old_ann: Mapping[str, str], new_ann: Mapping[str, str], requester: Requester, after: str
) -> None:
    archived_now, archived_before = ann.is_archived(new_ann), ann.is_archived(old_ann)
    expected = old_ann.get(ann.ARCHIVED_BY)
    action: ArchiveAction | None = None
    if archived_now and not archived_before:
        expected, action = requester.user, ArchiveAction.ARCHIVED
    elif archived_before and not archived_now:
        expected, action = None, ArchiveAction.UNARCHIVED
    if new_ann.get(ann.ARCHIVED_BY) != expected:
        raise Denied(f"annotation {ann.ARCHIVED_BY} must be {expected!r}, and it was set {after}")
    before, now_ = ann.archive_record(old_ann), ann.archive_record(new_ann)
    added = now_[len(before) :]
    if now_[: len(before)] != before or len(added) != (action is not None):
        raise Denied(
            f"annotation {ann.ARCHIVE_RECORD} was rewritten {after}: it is only ever "
            "appended, one entry per archive or un-archive"
        )
    if added and (added[0].user != requester.user or added[0].action != action):
        raise Denied(
            f"the entry added to {ann.ARCHIVE_RECORD} is not {requester.user!r}'s own "
            f"{action} of this request {after}"
        )


def deployment_requests(operation: str, new: Obj, old: Obj | None) -> list[tuple[str, str]]:
    """What a ModelDeployment request asks the operator to do, as (reason, message) for
    the log line that names the requesting user: the operator's own transition lines
    cannot, since the watch event it acts on carries no user."""
    name = new.get("metadata", {}).get("name", "")
    if operation == "CREATE":
        return [("DeploymentCreated", f"ModelDeployment {name} created")]
    asks: list[tuple[str, str]] = []
    if (new.get("spec") or {}) != ((old or {}).get("spec") or {}):
        asks.append(("DeploymentChangeRequested", f"ModelDeployment {name}: spec changed"))
    before, after = _annotations(old).get(ann.ROLLBACK_TO), _annotations(new).get(ann.ROLLBACK_TO)
    if after and after != before:
        asks.append(("ManualRollbackRequested", f"ModelDeployment {name}: roll back to {after}"))
    elif before and not after:
        asks.append(
            ("ManualRollbackReleased", f"ModelDeployment {name}: rollback to {before} released")
        )
    return asks


# --- no power beyond the requester's own (confused deputy) -----------------------------------


@dataclass(frozen=True)
class Access:
    """One RBAC question about the requester, in the request's namespace."""

    verb: str
    resource: str
    group: str = ""
    name: str = ""

    def __str__(self) -> str:
        kind = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{self.verb} {kind}" + (f" {self.name!r}" if self.name else "")


#: whether the requester may do ``Access`` in the namespace (a SubjectAccessReview)
AccessCheck = Callable[[Access], bool]

#: a requester who may create Deployments may already run pods under any ServiceAccount,
#: with any Secret as env or pull secret: they gain nothing through modelreg
CREATE_DEPLOYMENTS = Access("create", "deployments", "apps")


def _secret(name: str) -> Access:
    return Access("get", "secrets", name=name)


def delegated(kind: str, obj: Obj) -> dict[str, tuple[Access, tuple[str, ...]]]:
    """The fields of an object that make the operator use something on its author's
    behalf, each with what it is used for: the permission and its purpose."""
    asks: dict[str, tuple[Access, tuple[str, ...]]] = {}
    spec = obj.get("spec") or {}
    if kind == "ModelDeployment":
        # what runs under the ServiceAccount and what the Secret fetches: the versions of
        # this model (under its policy), the one pinned, or the one rolled back to
        pin = spec.get("version") or {}
        rollback = _annotations(obj).get(ann.ROLLBACK_TO)
        serves = (
            f"model {(spec.get('modelRef') or {}).get('name', '')}",
            f"version {pin.get('name') or pin.get('number')}" if pin else "",
            f"rollback to {rollback}" if rollback else "",
        )
        if account := spec.get("serviceAccountName"):
            asks["spec.serviceAccountName"] = (
                Access("use", "serviceaccounts", name=account),
                serves,
            )
        if secret := ((spec.get("storage") or {}).get("secretRef") or {}).get("name"):
            asks["spec.storage.secretRef"] = (_secret(secret), serves)
    elif kind == "ModelVersion":
        for i, ref in enumerate((spec.get("image") or {}).get("pullSecrets") or []):
            if name := (ref or {}).get("name"):
                image = (spec.get("image") or {}).get("reference", "")
                asks[f"spec.image.pullSecrets[{i}]"] = (_secret(name), (image,))
    elif kind == "RegisteredModel":
        for i, hook in enumerate(spec.get("notifications") or []):
            if name := ((hook or {}).get("secretRef") or {}).get("name"):
                url = str((hook or {}).get("url", ""))
                asks[f"spec.notifications[{i}].secretRef"] = (_secret(name), (url,))
    return asks


def admit_delegation(kind: str, new: Obj, old: Obj | None, may: AccessCheck) -> None:
    """Refuse an object that would let its author do through the operator what RBAC does
    not let them do themselves; raises :class:`Denied`.

    What the operator uses on the author's behalf: the ServiceAccount the serving pods
    run as and the Secret the storage initializer reads (ModelDeployment), the pull
    Secrets it resolves and pulls the image with (ModelVersion), the Secret it signs
    notifications with (RegisteredModel). Kubernetes lets anyone who may create
    Deployments use all of these; anyone else needs each one granted: ``get`` on the
    Secret, the custom verb ``use`` on the ServiceAccount. What this request adds, or
    puts to another use, is checked: editing ``replicas`` of a deployment an admin set
    up needs no more than the right to edit it, but pointing it at another model (or
    version) is asking anew for its ServiceAccount and Secret, and so is sending a
    notification signed with a Secret to another URL.
    """
    before = set(delegated(kind, old or {}).values())
    asks = [(f, use[0], use[1]) for f, use in delegated(kind, new).items() if use not in before]
    missing = [(f, a, purpose) for f, a, purpose in asks if not may(a)]
    if not missing or may(CREATE_DEPLOYMENTS):
        return
    field, access, purpose = missing[0]
    again = (
        f" (it is used anew: for {', '.join(p for p in purpose if p)})"
        if old is not None and access in {a for a, _ in before}
        else ""
    )
    raise Denied(
        f"{field}: you may not {access} in this namespace{again}, and modelreg uses it "
        f"only for someone who could ({access}, or {CREATE_DEPLOYMENTS}); ask a namespace "
        "admin for that RBAC permission, or remove the field"
    )
