"""ModelVersion reconciliation: numbering, verification, approval state, Ready."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from modelreg import approval, conditions, record
from modelreg import policy as source_policy
from modelreg.api import annotations as ann
from modelreg.api.base import Condition, ConditionStatus, VersionRef, merge_patch
from modelreg.api.model_version import (
    Approval,
    ApprovalState,
    ArtifactStatus,
    ImageStatus,
    ModelVersionSpec,
    ModelVersionStatus,
    Stage,
    ValidationStep,
)
from modelreg.api.registered_model import ArtifactEncryption, RegisteredModelSpec
from modelreg.conditions import FALSE, TRUE, UNKNOWN
from modelreg.controller.numbering import ensure_numbers
from modelreg.kube import Kube
from modelreg.verify.artifacts import StoreConfig, verify_artifact
from modelreg.verify.images import resolve_image
from modelreg.verify.verdict import Verdict

ARTIFACT_VERIFIED = "ArtifactVerified"
IMAGE_RESOLVED = "ImageResolved"
APPROVED = "Approved"
READY = "Ready"
MODEL_FOUND = "ModelFound"


@dataclass
class Outcome:
    """What a reconcile decided: the status to write, Events to post, and a retry."""

    status: dict[str, Any] | None
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    retry: str | None = None  # why to retry soon (a verification was Unknown)
    old: ModelVersionStatus | None = None  # the status before and after (for notifications)
    new: ModelVersionStatus | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


#: verdicts of the model's securityPolicy, re-evaluated on every reconcile (the policy can
#: change; the version cannot)
POLICY_REASONS = ("SourceNotAllowed", "EncryptionRequired")
#: False verdicts that depend on something outside the version, checked again on every
#: reconcile (start-up included): ``AccessDenied`` is what operators before
#: StoreAccessDenied wrote for their own S3 credentials, and ``Unauthorized`` of a
#: version that names pull Secrets depends on what those Secrets hold now
#: (docs/decisions.md, "Which verdicts are definitive")
ARTIFACT_RECHECK_REASONS = ("AccessDenied",)
IMAGE_RECHECK_REASONS = ("Unauthorized",)
#: what a registry says without the credentials a missing pull Secret would give
_NEEDS_PULL_SECRET = ("Unauthorized", "ImageNotFound")


def _needs_check(
    conds: list[Condition], type_: str, generation: int | None, recheck: tuple[str, ...] = ()
) -> bool:
    c = conditions.find(conds, type_)
    return (
        c is None
        or c.status == UNKNOWN
        or c.observed_generation != generation
        or c.reason in POLICY_REASONS
        or (c.status == FALSE and c.reason in recheck)
    )


def _apply(conds: list[Condition], type_: str, v: Verdict, gen: int | None) -> list[Condition]:
    return conditions.set_condition(conds, type_, v.status, v.reason, v.message, gen, _now())


def reconcile_version(
    kube: Kube, body: dict[str, Any], stores: StoreConfig, record_key: bytes | None = None
) -> Outcome:
    meta = body["metadata"]
    namespace, name, gen = meta["namespace"], meta["name"], meta.get("generation")
    annotations = meta.get("annotations") or {}
    old = ModelVersionStatus.model_validate(body.get("status") or {})
    status = old.model_copy(deep=True)
    status.observed_generation = gen
    tampered = _unsealed_results(body, old, record_key)
    if tampered:
        # not written by this operator: trust none of it, and never seal it; verify again
        status.image, status.artifact = None, None
        status.conditions = [
            c for c in status.conditions if c.type not in (ARTIFACT_VERIFIED, IMAGE_RESOLVED)
        ]
    status.registered_by = annotations.get(ann.REGISTERED_BY, status.registered_by)
    try:
        spec = ModelVersionSpec.model_validate(body.get("spec") or {})
    except ValidationError as e:
        status.conditions = conditions.set_condition(
            status.conditions, READY, FALSE, "InvalidSpec", f"spec is invalid: {e}", gen, _now()
        )
        return _finish(old, status)

    if meta.get("deletionTimestamp"):
        # going away: never verified again (a finalizer can hold it here for long), and
        # never deployable (controller/deployments.py)
        status.conditions = conditions.set_condition(
            status.conditions,
            READY,
            FALSE,
            "Deleting",
            "the version is being deleted: it is not verified again nor deployed",
            gen,
            _now(),
        )
        status.seal = _seal(namespace, name, meta.get("uid", ""), status, record_key)
        return _finish(old, status)
    rm = kube.model(namespace, spec.model_ref.name)
    if rm is None:
        msg = (
            f"RegisteredModel {spec.model_ref.name!r} does not exist in {namespace}: "
            "waiting for it to be created"
        )
        status.conditions = conditions.set_condition(
            status.conditions, READY, FALSE, "ModelNotFound", msg, gen, _now()
        )
        return _finish(old, status, ("Warning", "ModelNotFound", msg))
    rm_spec = RegisteredModelSpec.model_validate(rm.get("spec") or {})
    policy, security, model = rm_spec.approval_policy, rm_spec.security_policy, spec.model_ref.name

    if status.number is None:
        reserved = annotations.get(ann.NUMBER, "")
        status.number = (
            int(reserved)
            if reserved.isdigit()
            else ensure_numbers(kube, namespace, spec.model_ref.name).get(name)
        )

    retry: list[str] = []
    conds = status.conditions
    skip = set(spec.validation.skip)
    admin = source_policy.admin_sources()
    artifact_denied = admin.artifact_denial(
        namespace, spec.artifact.uri
    ) or source_policy.artifact_denial(security, model, spec.artifact.uri)
    if artifact_denied:
        # the store is not even contacted
        conds = conditions.set_condition(
            conds, ARTIFACT_VERIFIED, FALSE, "SourceNotAllowed", artifact_denied, gen, _now()
        )
    elif ValidationStep.ARTIFACT in skip:
        conds = conditions.set_condition(
            conds,
            ARTIFACT_VERIFIED,
            TRUE,
            "Skipped",
            "spec.validation.skip lists Artifact",
            gen,
            _now(),
        )
    elif _needs_check(conds, ARTIFACT_VERIFIED, gen, ARTIFACT_RECHECK_REASONS) or (
        # verified before the store's encryption was recorded
        security.required_artifact_encryption != ArtifactEncryption.NONE
        and (status.artifact is None or status.artifact.encryption is None)
    ):
        # once verified, a version is held to what was found then (sealed): the sha256
        # computed for a version registered without one and the S3 version id are never
        # taken again from the store, which may have been overwritten since
        found = old.artifact if not tampered else None
        v = verify_artifact(
            spec.artifact.uri,
            spec.artifact.sha256 or (found.sha256 if found else None),
            stores,
            found.version_id if found else None,
        )
        conds = _apply(conds, ARTIFACT_VERIFIED, v, gen)
        if v.status == TRUE:
            status.artifact = ArtifactStatus.model_validate(v.details)
        if v.retry:
            retry.append(v.message)
    verified = conditions.find(conds, ARTIFACT_VERIFIED)
    if not artifact_denied and verified is not None and verified.status == TRUE:
        problem = source_policy.encryption_problem(
            security,
            model,
            spec.artifact.uri,
            status.artifact if ValidationStep.ARTIFACT not in skip else None,
        )
        if problem:
            conds = conditions.set_condition(
                conds, ARTIFACT_VERIFIED, FALSE, "EncryptionRequired", problem, gen, _now()
            )
    image_denied = admin.image_denial(
        namespace, spec.image.reference
    ) or source_policy.image_denial(security, model, spec.image.reference)
    if image_denied:
        conds = conditions.set_condition(
            conds, IMAGE_RESOLVED, FALSE, "SourceNotAllowed", image_denied, gen, _now()
        )
    elif ValidationStep.IMAGE in skip:
        conds = conditions.set_condition(
            conds, IMAGE_RESOLVED, TRUE, "Skipped", "spec.validation.skip lists Image", gen, _now()
        )
    elif _needs_check(
        conds,
        IMAGE_RESOLVED,
        gen,
        IMAGE_RECHECK_REASONS if spec.image.pull_secrets else (),
    ):
        secrets = [s.name for s in spec.image.pull_secrets]
        configs, missing = kube.dockerconfigs(namespace, secrets)
        # a tag is resolved once: checked again, a version is held to the digest it was
        # resolved to (and approved on), never to whatever the tag names now
        resolved = old.image.resolved if old.image is not None and not tampered else None
        if resolved is None and record.verify(
            record_key, namespace, model, annotations, meta.get("creationTimestamp")
        ):
            # results discarded (an unsealed status): the digest a decision was made
            # on, in the signed record, pins it instead of the tag
            resolved = next(
                (d.image for d in reversed(ann.decisions(annotations)) if d.image), None
            )
        v = resolve_image(resolved or spec.image.reference, configs)
        if v.status == FALSE and missing and v.reason in _NEEDS_PULL_SECRET:
            # the answer without credentials the version asks for: the Secret may be
            # created later, so this is no verdict on the version yet
            v = Verdict.unknown(
                "PullSecretNotFound",
                f"pull secrets {', '.join(missing)} not found in {namespace} (or not of "
                f"type kubernetes.io/dockerconfigjson), and without them: {v.message}. "
                "Create them: the image is resolved again with backoff",
            )
        conds = _apply(conds, IMAGE_RESOLVED, v, gen)
        if v.status == TRUE:
            status.image = ImageStatus.model_validate(v.details)
        if v.retry:
            retry.append(v.message)

    if not record.verify(
        record_key, namespace, spec.model_ref.name, annotations, meta.get("creationTimestamp")
    ):
        # written while the webhook was not there to check it: nothing in it counts
        status.registered_by = None
        status.approval = Approval(state=ApprovalState.PENDING, required=policy.required_approvals)
        msg = (
            "the approval record (modelreg.dev/decisions, registered-by, number) was not "
            "written by modelreg's admission webhook; it is ignored. Re-register the "
            "version, or have the approvals given again"
        )
        conds = conditions.set_condition(conds, APPROVED, FALSE, "RecordTampered", msg, gen, _now())
        status.conditions = conditions.set_condition(
            conds, READY, FALSE, "RecordTampered", msg, gen, _now()
        )
        status.seal = _seal(namespace, name, meta.get("uid", ""), status, record_key)
        notes = [("Warning", "StatusNotSealed", tampered)] if tampered else []
        return _finish(old, status, ("Warning", "RecordTampered", msg), *notes, retry=retry)
    decisions = ann.decisions(annotations)
    now_as = record.Verification.of({"metadata": meta, "status": status.to_api()})
    result = approval.evaluate(policy, decisions, spec.metrics, (now_as.image, now_as.sha256))
    status.approval = Approval(
        state=result.state, required=policy.required_approvals, decisions=decisions
    )
    approved_status = {ApprovalState.APPROVED: TRUE, ApprovalState.REJECTED: FALSE}.get(
        result.state, FALSE
    )
    conds = conditions.set_condition(
        conds, APPROVED, approved_status, result.reason, result.message, gen, _now()
    )

    archived = ann.retired(annotations)
    events: list[tuple[str, str, str]] = []
    if archived:
        before = conditions.find(old.conditions, READY)
        # by the Ready reason, which only this reconcile writes (status.stage is also
        # derived by the deployments' reconcile, and may already say Archived)
        if before is None or before.reason != "Archived":
            # from the signed archive record (verified above), which only the archivist
            # wrote: the comment annotation may have been edited since
            last = ann.last_archive(annotations)
            by = last.user if last else annotations.get(ann.ARCHIVED_BY) or "unknown"
            why = last.comment if last else annotations.get(ann.ARCHIVE_COMMENT)
            events.append(
                ("Normal", "VersionArchived", f"archived by {by}" + (f": {why}" if why else ""))
            )
        status.stage = Stage.ARCHIVED
    elif status.stage == Stage.ARCHIVED:
        status.stage = Stage.NONE
    status.conditions = conditions.set_condition(
        conds, READY, *_ready(conds, archived), gen, _now()
    )
    status.seal = _seal(namespace, name, meta.get("uid", ""), status, record_key)
    if tampered:
        events.append(("Warning", "StatusNotSealed", tampered))
    return _finish(old, status, *events, retry=retry)


def _seal(
    namespace: str, name: str, uid: str, status: ModelVersionStatus, key: bytes | None
) -> str | None:
    """The operator's seal over the verification results in ``status``, read the way
    deployments read them back (``record.Verification.of``)."""
    if key is None:
        return None
    written = {"metadata": {"namespace": namespace, "name": name, "uid": uid}}
    return record.seal(key, record.Verification.of({**written, "status": status.to_api()}))


def _unsealed_results(
    body: dict[str, Any], old: ModelVersionStatus, record_key: bytes | None
) -> str | None:
    """Why the verification results in ``old`` cannot be trusted (None: they can)."""
    if record_key is None:
        return None
    if (
        old.image is None
        and old.artifact is None
        and not any(c.type in (ARTIFACT_VERIFIED, IMAGE_RESOLVED) for c in old.conditions)
    ):
        return None  # nothing verified yet
    if record.seal_valid(record_key, record.Verification.of(body), old.seal):
        return None
    return (
        "the verification results in status carry no valid seal of this operator "
        "(written by someone else, or by an older modelreg that sealed only deployable "
        "versions): "
        "they are discarded and the artifact and image are verified again"
    )


def _ready(conds: list[Condition], archived: bool) -> tuple[ConditionStatus, str, str]:
    if archived:
        return FALSE, "Archived", f"archived ({ann.ARCHIVED}=true): cannot be newly deployed"
    for type_, reason in (
        (ARTIFACT_VERIFIED, "ArtifactNotVerified"),
        (IMAGE_RESOLVED, "ImageNotResolved"),
    ):
        c = conditions.find(conds, type_)
        if c is None or c.status == UNKNOWN:
            return UNKNOWN, "VerificationPending", c.message if c else f"{type_} pending"
        if c.status == FALSE:
            return FALSE, reason, c.message
    c = conditions.find(conds, APPROVED)
    if c is None or c.status != TRUE:
        reason = "Rejected" if c is not None and c.reason == "Rejected" else "NotApproved"
        return FALSE, reason, c.message if c else "not approved"
    return TRUE, "Deployable", "verified and approved"


def _finish(
    old: ModelVersionStatus,
    new: ModelVersionStatus,
    *events: tuple[str, str, str],
    retry: list[str] | None = None,
) -> Outcome:
    found = list(events)
    for type_ in (ARTIFACT_VERIFIED, IMAGE_RESOLVED, APPROVED, READY):
        before, after = (
            conditions.find(old.conditions, type_),
            conditions.find(new.conditions, type_),
        )
        if after is None or (
            before and (before.status, before.reason) == (after.status, after.reason)
        ):
            continue
        if type_ == READY and after.status != TRUE:
            continue  # the condition that failed has its own Event
        if type_ == APPROVED and after.reason == ApprovalState.PENDING:
            continue  # waiting is no transition; the condition says what it waits for
        found.append(_event_for(type_, after))
    # one Event for a version verified in one go (each Event is a write to etcd, and
    # registration runs at the API server's write rate)
    checks = [e for e in found if e[1] in ("ArtifactVerified", "ImageResolved")]
    if len(checks) == 2:
        found = [e for e in found if e not in checks]
        found.append(("Normal", "VersionVerified", "; ".join(e[2] for e in checks)))
    if new.number is not None and old.number is None:
        found.insert(
            0,
            (
                "Normal",
                "VersionRegistered",
                f"registered as version {new.number}"
                + (f" by {new.registered_by}" if new.registered_by else ""),
            ),
        )
    new_api, old_api = new.to_api(), old.to_api()
    patch = merge_patch(old_api, new_api) if new_api != old_api else None
    return Outcome(patch, found, "; ".join(retry) if retry else None, old, new)


def _event_for(type_: str, c: Condition) -> tuple[str, str, str]:
    if c.status == TRUE:
        reason = {
            ARTIFACT_VERIFIED: "ArtifactVerified",
            IMAGE_RESOLVED: "ImageResolved",
            APPROVED: "VersionApproved",
            READY: "VersionReady",
        }[type_]
        return "Normal", reason, c.message
    if type_ == APPROVED and c.reason == "Rejected":
        return "Warning", "VersionRejected", c.message
    kind = "Warning" if c.status == FALSE and type_ != APPROVED else "Normal"
    return kind, c.reason, c.message


def summarize_model(kube: Kube, rm: dict[str, Any]) -> dict[str, Any] | None:
    """The RegisteredModel status derived from its versions; None if unchanged."""
    meta = rm["metadata"]
    versions = list(kube.versions_of(meta["namespace"], meta["name"]))
    numbered = sorted(
        (v for v in versions if (v.get("status") or {}).get("number")),
        key=lambda v: v["status"]["number"],
    )
    approved = [
        v
        for v in numbered
        if (v["status"].get("approval") or {}).get("state") == ApprovalState.APPROVED
    ]
    old = rm.get("status") or {}

    def ref(v: dict[str, Any]) -> dict[str, Any]:
        return VersionRef(name=v["metadata"]["name"], number=v["status"]["number"]).to_api()

    conds = [Condition.model_validate(c) for c in old.get("conditions", [])]
    gen = meta.get("generation")
    conds = conditions.set_condition(
        conds, READY, TRUE, "Reconciled", f"{len(versions)} version(s)", gen, _now()
    )
    # only the fields this summary owns: nextVersionNumber belongs to the numbering, and a
    # merge patch of a stale copy of it would hand out numbers twice
    new = {
        "observedGeneration": gen,
        "versionCount": len(versions),
        "latestVersion": ref(numbered[-1]) if numbered else None,
        "latestApprovedVersion": ref(approved[-1]) if approved else None,
        "conditions": [c.to_api() for c in conds],
    }
    return new if any(old.get(k) != v for k, v in new.items()) else None
