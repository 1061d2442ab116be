import datetime as dt
from typing import Any

import pytest

from modelreg import record
from modelreg.api import annotations as ann
from modelreg.api.model_version import ApprovalDecision, ArchiveAction, ArchiveDecision, Decision
from modelreg.api.registered_model import ApprovalPolicy, Approvers, SecurityPolicy
from modelreg.approval import Requester
from modelreg.controller.admission import (
    CREATE_DEPLOYMENTS,
    MAX_DECISIONS,
    Access,
    Denied,
    admit_bookkeeping,
    admit_delegation,
    admit_record,
    admit_size,
    admit_version,
    deployment_requests,
)

NOW = dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC)
POLICY = ApprovalPolicy(approvers=Approvers(groups=["ml-approvers"]))
ALICE = Requester("alice", ("ml-approvers",))


def mv(**annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "v", "annotations": annotations},
        "spec": {"modelRef": {"name": "m"}},
    }


def admit(op, new, old=None, who=ALICE, policy=POLICY, serving=(), may_retire=True):
    return admit_version(
        op, new, old, who, lambda _: policy, NOW, 123, lambda _: list(serving),
        may_retire=lambda _: may_retire,
    )  # fmt: skip


def test_create_records_registrant_and_refuses_system_annotations():
    assert admit("CREATE", mv(), who=Requester("dana")) == {
        ann.REGISTERED_BY: "dana",
        ann.CREATED_AT: "123",
    }
    for key in ann.SYSTEM:
        with pytest.raises(Denied, match="written by modelreg only"):
            admit("CREATE", mv(**{key: "x"}))
    with pytest.raises(Denied, match="must not be set at creation"):
        admit("CREATE", mv(**{ann.APPROVAL: "Approved"}))


def test_decision_is_recorded_and_request_annotations_consumed():
    old = mv(**{ann.REGISTERED_BY: "dana"})
    new = mv(**{ann.REGISTERED_BY: "dana", ann.APPROVAL: "Approved", ann.APPROVAL_COMMENT: "good"})
    changes = admit("UPDATE", new, old)
    assert changes[ann.APPROVAL] is None
    assert changes[ann.APPROVAL_COMMENT] is None
    record = ann.decisions({ann.DECISIONS: changes[ann.DECISIONS]})
    assert [(d.user, d.decision, d.comment, d.time) for d in record] == [
        ("alice", "Approved", "good", NOW)
    ]


def test_stale_approval_annotation_is_dropped_not_counted():
    old = mv(**{ann.APPROVAL: "Approved"})
    new = mv(**{ann.APPROVAL: "Approved", "other": "x"})
    assert admit("UPDATE", new, old) == {ann.APPROVAL: None}


def test_denials_name_the_rule():
    old = mv(**{ann.REGISTERED_BY: "alice"})
    with pytest.raises(Denied, match="selfApproval is Forbidden"):
        admit("UPDATE", mv(**{ann.REGISTERED_BY: "alice", ann.APPROVAL: "Approved"}), old)
    with pytest.raises(Denied, match="not an approver"):
        admit("UPDATE", mv(**{ann.APPROVAL: "Rejected"}), mv(), who=Requester("eve"))
    with pytest.raises(Denied, match="does not exist"):
        admit("UPDATE", mv(**{ann.APPROVAL: "Approved"}), mv(), policy=None)
    with pytest.raises(Denied, match="must not be added, changed or removed"):
        admit("UPDATE", mv(**{ann.DECISIONS: "[]"}), mv())
    with pytest.raises(Denied, match=r"must not be archived while ModelDeployment\(s\) prod serve"):
        admit("UPDATE", mv(**{ann.ARCHIVED: "true"}), mv(), serving=["prod"])
    assert admit("UPDATE", mv(**{ann.ARCHIVED: "true"}), mv())[ann.ARCHIVED_BY] == "alice"


SECURITY = SecurityPolicy(
    allowed_artifact_prefixes=["s3://models-prod/"],
    allowed_image_prefixes=["registry.internal/serving/"],
)


def sourced(uri: str, image: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "v", "annotations": {}},
        "spec": {
            "modelRef": {"name": "m"},
            "artifact": {"uri": uri},
            "image": {"reference": image},
        },
    }


def test_create_outside_the_security_policy_is_refused_naming_it():
    def create(uri: str, image: str) -> Any:
        return admit_version(
            "CREATE", sourced(uri, image), None, ALICE, lambda _: POLICY, NOW, 1,
            security_of=lambda _: SECURITY, may_retire=lambda _: False,
        )  # fmt: skip

    assert create("s3://models-prod/m/1.tgz", "registry.internal/serving/sk:1")
    with pytest.raises(
        Denied, match=r"securityPolicy.allowedArtifactPrefixes \(s3://models-prod/\)"
    ):
        create("s3://models-dev/m/1.tgz", "registry.internal/serving/sk:1")
    with pytest.raises(Denied, match=r"securityPolicy.allowedImagePrefixes"):
        create("s3://models-prod/m/1.tgz", "registry.internal/servingx/sk:1")
    with pytest.raises(Denied, match=r"docker\.io/library/python"):
        create("s3://models-prod/m/1.tgz", "python:3.11")


def trail(changes: dict[str, str | None]) -> list[tuple[str, str, str]]:
    entries = ann.archive_record({ann.ARCHIVE_RECORD: str(changes[ann.ARCHIVE_RECORD])})
    return [(e.user, e.action, e.comment) for e in entries]


def test_archiving_and_unarchiving_are_recorded_and_never_erased():
    asked = mv(**{ann.ARCHIVED: "true", ann.ARCHIVE_COMMENT: "CVE-2026-1: do not deploy"})
    changes = admit("UPDATE", asked, mv(), who=Requester("dana"))
    assert changes[ann.ARCHIVED_BY] == "dana"
    assert trail(changes) == [("dana", "Archived", "CVE-2026-1: do not deploy")]
    kept = {k: v for k, v in changes.items() if v}
    old = mv(**{ann.ARCHIVED: "true", **kept})
    back = admit("UPDATE", mv(**kept), old)
    assert back[ann.ARCHIVED_BY] is None
    assert trail(back) == [
        ("dana", "Archived", "CVE-2026-1: do not deploy"),
        ("alice", "Unarchived", ""),
    ]
    with pytest.raises(Denied, match="must not be set at creation"):
        admit("CREATE", mv(**{ann.ARCHIVED: "true"}))
    with pytest.raises(Denied, match="while ModelDeployment"):
        admit("UPDATE", mv(**{ann.ARCHIVED: "true"}), mv(), serving=["serve"])


def test_only_who_may_update_the_model_archives_or_unarchives():
    eve = Requester("eve")
    with pytest.raises(Denied, match=r"may not archive .*update registeredmodels"):
        admit("UPDATE", mv(**{ann.ARCHIVED: "true"}), mv(), who=eve, may_retire=False)
    archived = mv(**{ann.ARCHIVED: "true", ann.ARCHIVED_BY: "dana"})
    with pytest.raises(Denied, match=r"may not un-archive"):
        admit(
            "UPDATE", mv(**{ann.ARCHIVED: "false", ann.ARCHIVED_BY: "dana"}), archived,
            who=eve, may_retire=False,
        )  # fmt: skip
    # a change that is no archive nor un-archive needs no such right
    assert admit("UPDATE", mv(**{"team": "x"}), mv(), who=eve, may_retire=False) == {}


def test_only_the_operator_writes_kopfs_bookkeeping():
    key = f"{ann.KOPF_PREFIX}/version"
    progress = mv(**{key: '{"started":"2026-01-01T00:00:00Z"}'})
    for new, old in ((progress, mv()), (mv(), progress), (mv(**{key: "{}"}), progress)):
        with pytest.raises(Denied, match="operator's own bookkeeping"):
            admit_bookkeeping(new, old, "eve", "system:serviceaccount:modelreg:modelreg")
        admit_bookkeeping(
            new,
            old,
            "system:serviceaccount:modelreg:modelreg",
            "system:serviceaccount:modelreg:modelreg",
        )
    with pytest.raises(Denied, match="operator's own bookkeeping"):
        admit_bookkeeping(progress, None, "eve", None)  # at creation too
    admit_bookkeeping(mv(**{key: "{}", "team": "x"}), mv(**{key: "{}"}), "eve", "op")


# --- confused deputy: nothing used on the author's behalf beyond their own RBAC ----------------


def md(**spec: Any) -> dict[str, Any]:
    return {"kind": "ModelDeployment", "spec": {"modelRef": {"name": "m"}, **spec}}


def granting(*allowed: Access) -> tuple[list[Access], Any]:
    asked: list[Access] = []

    def may(access: Access) -> bool:
        asked.append(access)
        return access in allowed

    return asked, may


def test_naming_nothing_asks_nothing():
    asked, may = granting()
    admit_delegation("ModelDeployment", md(replicas=3), None, may)
    assert asked == []


def test_service_account_and_secret_need_use_and_get_unless_deployments_are_allowed():
    spec = md(serviceAccountName="fraud-serving", storage={"secretRef": {"name": "s3"}})
    _, may = granting()
    with pytest.raises(
        Denied,
        match=r"spec.serviceAccountName: you may not use serviceaccounts "
        r"'fraud-serving'.*or create deployments.apps",
    ):
        admit_delegation("ModelDeployment", spec, None, may)
    _, may = granting(Access("use", "serviceaccounts", name="fraud-serving"))
    with pytest.raises(Denied, match=r"spec.storage.secretRef: you may not get secrets 's3'"):
        admit_delegation("ModelDeployment", spec, None, may)
    _, may = granting(
        Access("use", "serviceaccounts", name="fraud-serving"), Access("get", "secrets", name="s3")
    )
    admit_delegation("ModelDeployment", spec, None, may)
    _, may = granting(CREATE_DEPLOYMENTS)  # could run such pods directly: gains nothing
    admit_delegation("ModelDeployment", spec, None, may)


def test_only_what_the_request_adds_or_changes_is_checked():
    old = md(serviceAccountName="fraud-serving")
    asked, may = granting()
    admit_delegation(
        "ModelDeployment", md(serviceAccountName="fraud-serving", replicas=5), old, may
    )
    assert asked == []
    with pytest.raises(Denied, match="'other'"):
        admit_delegation("ModelDeployment", md(serviceAccountName="other"), old, may)


def test_a_delegation_put_to_another_use_is_checked_again():
    """Pointing an admin's deployment at another model (or version) changes what runs
    under its ServiceAccount and what its Secret fetches; a signing Secret sent to
    another URL signs for someone else: each is asked anew."""
    old = md(serviceAccountName="fraud-serving", storage={"secretRef": {"name": "s3"}})
    _, may = granting()
    for new in (
        md(serviceAccountName="fraud-serving", modelRef={"name": "lax"}),
        md(serviceAccountName="fraud-serving", version={"name": "v9"}),
    ):
        with pytest.raises(Denied, match=r"spec.serviceAccountName: .*used anew: for model"):
            admit_delegation("ModelDeployment", new, old, may)
    secret_only = md(storage={"secretRef": {"name": "s3"}})
    elsewhere = md(storage={"secretRef": {"name": "s3"}}, modelRef={"name": "lax"})
    with pytest.raises(Denied, match=r"spec.storage.secretRef: .*used anew: for model lax"):
        admit_delegation("ModelDeployment", elsewhere, secret_only, may)
    _, may = granting(
        Access("use", "serviceaccounts", name="fraud-serving"),
        _s3 := Access("get", "secrets", name="s3"),
    )
    admit_delegation(
        "ModelDeployment",
        md(
            serviceAccountName="fraud-serving",
            storage={"secretRef": {"name": "s3"}},
            modelRef={"name": "lax"},
        ),
        old,
        may,
    )

    def hook(url: str) -> dict[str, Any]:
        return {
            "kind": "RegisteredModel",
            "spec": {"notifications": [{"url": url, "secretRef": {"name": "hmac"}}]},
        }

    _, may = granting()
    admit_delegation("RegisteredModel", hook("https://a"), hook("https://a"), may)
    with pytest.raises(
        Denied, match=r"notifications\[0\].secretRef: .*used anew: for https://evil"
    ):
        admit_delegation("RegisteredModel", hook("https://evil"), hook("https://a"), may)


def test_pull_secrets_and_notification_secrets_are_checked_per_entry():
    version = {
        "kind": "ModelVersion",
        "spec": {"image": {"reference": "r/x:1", "pullSecrets": [{"name": "a"}, {"name": "b"}]}},
    }
    _, may = granting(Access("get", "secrets", name="a"))
    with pytest.raises(Denied, match=r"spec.image.pullSecrets\[1\]: you may not get secrets 'b'"):
        admit_delegation("ModelVersion", version, None, may)
    model = {
        "kind": "RegisteredModel",
        "spec": {"notifications": [{"url": "https://h", "secretRef": {"name": "hmac"}}]},
    }
    with pytest.raises(Denied, match=r"spec.notifications\[0\].secretRef"):
        admit_delegation("RegisteredModel", model, None, may)
    _, may = granting(Access("get", "secrets", name="hmac"))
    admit_delegation("RegisteredModel", model, None, may)


def test_the_257th_decision_is_refused_with_what_to_do():
    full = [ApprovalDecision(user="alice", decision=Decision.APPROVED, time=NOW)] * MAX_DECISIONS
    old = mv(**{ann.DECISIONS: ann.encode_decisions(full[:-1])})
    changes = admit(
        "UPDATE", mv(**old["metadata"]["annotations"], **{ann.APPROVAL: "Approved"}), old
    )
    assert len(ann.decisions({ann.DECISIONS: changes[ann.DECISIONS]})) == MAX_DECISIONS
    old = mv(**{ann.DECISIONS: ann.encode_decisions(full)})
    with pytest.raises(Denied, match="register a new version"):
        admit("UPDATE", mv(**old["metadata"]["annotations"], **{ann.APPROVAL: "Approved"}), old)


# --- the validating check of the final object (version-guard) --------------------------------

KEY = b"k" * 32


def applied(obj: dict[str, Any], changes: dict[str, str | None]) -> dict[str, Any]:
    """``obj``, the request's object, as the API server stores it after the mutating
    webhook's changes."""
    annotations = {**obj["metadata"]["annotations"], **changes}
    annotations = {k: v for k, v in annotations.items() if v is not None}
    if any(k in changes for k in ann.SIGNED):
        annotations[ann.SIGNATURE] = record.sign(KEY, "ns", "m", annotations)
    return mv(**annotations)


def guard(op, new, old=None, who=ALICE, now=NOW, key=KEY):
    admit_record(op, new, old, who, now, key, "ns")


def test_what_the_mutating_webhook_made_passes_the_guard():
    dana = Requester("dana")
    created = applied(mv(), admit("CREATE", mv(), who=dana))
    guard("CREATE", created, who=dana)
    approved = applied(
        created, admit("UPDATE", mv_with(created, ann.APPROVAL, "Approved"), created)
    )
    guard("UPDATE", approved, created)
    asked = mv_with(approved, ann.ARCHIVED, "true")
    archived = applied(asked, admit("UPDATE", asked, approved))
    guard("UPDATE", archived, approved)
    relabelled = mv_with(archived, "team", "x")  # no system annotation touched
    guard("UPDATE", relabelled, archived, who=Requester("bob"))


def mv_with(obj: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    return mv(**{**obj["metadata"]["annotations"], key: value})


def test_the_guard_refuses_a_record_changed_after_the_mutating_webhook():
    dana = Requester("dana")
    created = applied(mv(), admit("CREATE", mv(), who=dana))
    approved = applied(
        created, admit("UPDATE", mv_with(created, ann.APPROVAL, "Approved"), created)
    )
    forged = ann.encode_decisions(
        [ApprovalDecision(user="bob", decision=Decision.APPROVED, time=NOW)]
    )
    cases = [
        # the request annotation left in place: a decision nobody checked
        ("CREATE", mv_with(created, ann.APPROVAL, "Approved"), None, dana, "still set"),
        # another registrant than the requester
        ("CREATE", created, None, Requester("eve"), "must name the requesting user 'eve'"),
        ("CREATE", mv_with(created, ann.DECISIONS, forged), None, dana, "at creation"),
        ("UPDATE", mv_with(approved, ann.REGISTERED_BY, "eve"), approved, ALICE, "never changes"),
        ("UPDATE", mv_with(approved, ann.NUMBER, "9"), approved, ALICE, "never changes"),
        # a decision rewritten, one added on someone else's behalf, two at once
        ("UPDATE", mv_with(approved, ann.DECISIONS, forged), approved, ALICE, "rewritten"),
        ("UPDATE", mv_with(created, ann.DECISIONS, forged), created, ALICE, "not 'alice'"),
        ("UPDATE", approved, created, ALICE, None),  # the real one passes
    ]
    for op, new, old, who, match in cases:
        if match is None:
            guard(op, new, old, who=who)
            continue
        with pytest.raises(Denied, match=match):
            guard(op, new, old, who=who)
    # stamped far from the webhook's clock: not this request's decision
    with pytest.raises(Denied, match="not 'alice'"):
        guard("UPDATE", approved, created, now=NOW + dt.timedelta(hours=1))
    # two decisions in one request
    twice = ann.decisions(approved["metadata"]["annotations"]) * 2
    doubled = mv_with(approved, ann.DECISIONS, ann.encode_decisions(twice))
    with pytest.raises(Denied, match="one per request"):
        guard("UPDATE", doubled, created)


def test_the_guard_checks_archived_by_and_the_signature():
    created = applied(mv(), admit("CREATE", mv(), who=Requester("dana")))
    asked = mv_with(created, ann.ARCHIVED, "true")
    archived = applied(asked, admit("UPDATE", asked, created))
    with pytest.raises(Denied, match="must be 'bob'"):
        guard("UPDATE", archived, created, who=Requester("bob"))
    unsigned = mv(
        **{k: v for k, v in archived["metadata"]["annotations"].items() if k != ann.SIGNATURE}
    )
    with pytest.raises(Denied, match="signature"):
        guard("UPDATE", unsigned, created)
    guard("UPDATE", unsigned, created, key=None)  # no key configured: nothing is signed
    # an unsigned record from before the key existed may still be relabelled
    legacy = mv(**{ann.REGISTERED_BY: "dana"})
    guard("UPDATE", mv_with(legacy, "team", "x"), legacy)


def test_deployment_requests_name_what_the_user_asked_for():
    def md(spec: dict[str, Any], **annotations: str) -> dict[str, Any]:
        return {"metadata": {"name": "serve", "annotations": annotations}, "spec": spec}

    base = md({"modelRef": {"name": "m"}})
    assert deployment_requests("CREATE", base, None) == [
        ("DeploymentCreated", "ModelDeployment serve created")
    ]
    assert deployment_requests("UPDATE", base, base) == []  # e.g. kopf's own finalizer patch
    held = md({"modelRef": {"name": "m"}}, **{ann.ROLLBACK_TO: "v1"})
    assert deployment_requests("UPDATE", held, base) == [
        ("ManualRollbackRequested", "ModelDeployment serve: roll back to v1")
    ]
    assert deployment_requests("UPDATE", base, held) == [
        ("ManualRollbackReleased", "ModelDeployment serve: rollback to v1 released")
    ]
    scaled = md({"modelRef": {"name": "m"}, "replicas": 3}, **{ann.ROLLBACK_TO: "v2"})
    assert [r for r, _ in deployment_requests("UPDATE", scaled, held)] == [
        "DeploymentChangeRequested",
        "ManualRollbackRequested",
    ]


def test_user_metadata_is_bounded_so_the_record_always_fits():
    big = mv(**{f"pad-{i}": "x" * 100 for i in range(700)})  # ~75 KB
    with pytest.raises(Denied, match="so that its approval record always fits"):
        admit_size(big, mv())
    admit_size(big, big)  # an unchanged (or shrinking) version past it may still change
    system = mv(**{ann.DECISIONS: "x" * 200_000, "kopf.modelreg.dev/v": "y" * 50_000})
    admit_size(system, mv())  # modelreg's and kopf's own are not counted


def decided(n: int, decision: str, comment: str = "c" * 1024) -> dict[str, Any]:
    record = [
        ApprovalDecision(user=f"u{i}", decision=Decision(decision), comment=comment, time=NOW)
        for i in range(n)
    ]
    return mv(**{ann.DECISIONS: ann.encode_decisions(record)})


def test_a_rejection_always_fits_and_an_approval_does_not_grow_the_record_forever():
    approvals = decided(100, "Approved")  # ~110 KB: past APPROVALS_BYTES
    asked = mv_with(approvals, ann.APPROVAL, "Approved")
    with pytest.raises(Denied, match="for an approval: register a new version"):
        admit("UPDATE", asked, approvals)
    rejected = admit("UPDATE", mv_with(approvals, ann.APPROVAL, "Rejected"), approvals)
    assert ann.decisions({ann.DECISIONS: str(rejected[ann.DECISIONS])})[-1].decision == "Rejected"
    full = decided(150, "Approved")  # past REJECTIONS_BYTES: recorded without comment
    asked = mv_with(full, ann.APPROVAL_COMMENT, "why")
    changes = admit("UPDATE", mv_with(asked, ann.APPROVAL, "Rejected"), full)
    last = ann.decisions({ann.DECISIONS: str(changes[ann.DECISIONS])})[-1]
    assert (last.decision, last.comment) == ("Rejected", "")
    again = decided(150, "Rejected")  # the last word is a rejection already: nothing changes
    with pytest.raises(Denied, match="already a rejection"):
        admit("UPDATE", mv_with(again, ann.APPROVAL, "Rejected"), again)


def test_an_archive_always_fits():
    entries = [
        ArchiveDecision(user="dana", action=a, comment="c" * 1024, time=NOW)
        for a in [ArchiveAction.ARCHIVED, ArchiveAction.UNARCHIVED] * 8
    ]
    long = mv(**{ann.ARCHIVE_RECORD: ann.encode_archive_record(entries)})  # ~17 KB
    changes = admit("UPDATE", mv_with(long, ann.ARCHIVED, "true"), long)
    assert (
        ann.archive_record({ann.ARCHIVE_RECORD: str(changes[ann.ARCHIVE_RECORD])})[-1].comment == ""
    )
    archived = mv_with(long, ann.ARCHIVED, "true")
    with pytest.raises(Denied, match="too often to record another un-archive"):
        admit("UPDATE", long, archived)


def test_a_rollback_on_an_admins_deployment_asks_for_its_service_account_again():
    """modelreg.dev/rollback-to changes which version runs under the ServiceAccount, as
    spec.version does (found by review: it went around the pin and the re-check)."""
    old = md(serviceAccountName="fraud-serving")
    rolled = {**old, "metadata": {"annotations": {ann.ROLLBACK_TO: "v9"}}}
    _, may = granting()
    with pytest.raises(Denied, match=r"used anew: .*rollback to v9"):
        admit_delegation("ModelDeployment", rolled, old, may)
    admit_delegation("ModelDeployment", md(replicas=2), md(), may)  # nothing delegated


def test_a_comment_left_by_someone_else_is_not_recorded_as_the_deciders():
    """eve writes approval-comment (and archive-comment) and leaves it; the approver's
    later decision without a comment must not carry eve's words (found by review)."""
    planted = mv(**{ann.APPROVAL_COMMENT: "LGTM, security sign-off"})
    asked = mv_with(planted, ann.APPROVAL, "Rejected")
    changes = admit("UPDATE", asked, planted)
    assert ann.decisions({ann.DECISIONS: str(changes[ann.DECISIONS])})[-1].comment == ""
    archive = mv(**{ann.ARCHIVE_COMMENT: "planted"})
    changes = admit("UPDATE", mv_with(archive, ann.ARCHIVED, "true"), archive)
    assert trail(changes) == [("alice", "Archived", "")]
    given = mv_with(mv_with(mv(), ann.APPROVAL, "Approved"), ann.APPROVAL_COMMENT, "mine")
    changes = admit("UPDATE", given, mv())
    assert ann.decisions({ann.DECISIONS: str(changes[ann.DECISIONS])})[-1].comment == "mine"
