"""ModelDeployment reconciliation: serve the target version, roll back when it fails.

Level-based: every call looks at the spec, the versions of the model, the Deployment and
its pods, and decides what the Deployment must serve. It never points the Deployment at
a version that is not deployable (Ready) at the moment of writing.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import kopf

from modelreg import approval, builders, conditions, record, rollout
from modelreg.api import annotations as ann
from modelreg.api.base import ConditionStatus, VersionRef, merge_patch
from modelreg.api.model_deployment import (
    AutomaticRollback,
    HistoryEntry,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    RolloutResult,
    ServedVersion,
)
from modelreg.api.model_version import ApprovalState, ModelVersionSpec, Stage
from modelreg.api.registered_model import ApprovalPolicy, RegisteredModelSpec
from modelreg.conditions import FALSE, TRUE, UNKNOWN
from modelreg.kube import Kube

log = logging.getLogger(__name__)

HISTORY_LIMIT = 20
_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)


@dataclass
class Outcome:
    status: dict[str, Any] | None
    events: list[tuple[str, str, str]] = field(default_factory=list)


class Stale(Exception):
    """A version chosen from the index turned out to have changed on the API server."""


def controlled_by(obj: dict[str, Any], uid: str) -> bool:
    """Whether ``obj`` is controlled by the object with ``uid`` (its controller owner
    reference): modelreg changes a Deployment or Service only if it is its ModelDeployment's."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return bool(uid) and any(r.get("controller") and r.get("uid") == uid for r in refs)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _policy(rm: dict[str, Any]) -> ApprovalPolicy:
    return RegisteredModelSpec.model_validate(rm.get("spec") or {}).approval_policy


def _candidates(
    kube: Kube, namespace: str, model: str, rm: dict[str, Any], key: bytes | None = None
) -> list[rollout.Candidate]:
    """The numbered versions of model ``rm`` and whether each is deployable."""
    policy = _policy(rm)
    return [
        _candidate(mv, model, key, policy)
        for mv in kube.versions_of(namespace, model)
        if (mv.get("status") or {}).get("number")
    ]


def _candidate(
    mv: dict[str, Any], model: str, key: bytes | None, policy: ApprovalPolicy
) -> rollout.Candidate:
    """Whether a (numbered) version is deployable. With the record key, status alone is
    not trusted (whoever may write status could forge it): the operator's seal must match
    the verified digest and checksum, and the signed record of decisions must satisfy the
    model's policy."""
    status = mv.get("status") or {}
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions", []) if c["type"] == "Ready"), {}
    )
    annotations = mv["metadata"].get("annotations") or {}
    resolved = (status.get("image") or {}).get("resolved")
    # with validation.skip [Image] nothing was resolved: the reference itself must be
    # a digest, since a Deployment never runs a tag (it could change under the approval)
    pinned = bool(resolved) or "@sha256:" in (mv["spec"].get("image") or {}).get("reference", "")
    deployable = ready.get("status") == "True" and pinned and not ann.retired(annotations)
    # and the pods must check what they download against a sha256 that was verified (or
    # given at registration, with validation.skip [Artifact])
    checked = bool(
        mv["spec"].get("artifact", {}).get("sha256") or (status.get("artifact") or {}).get("sha256")
    )
    deleting = bool(mv["metadata"].get("deletionTimestamp"))
    deployable = deployable and checked and not deleting
    reason = str(ready.get("reason", "Pending"))
    if ready.get("status") == "True" and not pinned:
        reason = "ImageNotPinned"
    elif ready.get("status") == "True" and not checked:
        reason = "ArtifactNotPinned"
    elif deleting:
        reason = "Deleting"
    if deployable and key is not None:
        trusted = _untrusted_because(mv, model, key, policy)
        if trusted is not None:
            deployable, reason = False, trusted
    return rollout.Candidate(mv["metadata"]["name"], int(status["number"]), deployable, reason, mv)


def _untrusted_because(
    mv: dict[str, Any], model: str, key: bytes, policy: ApprovalPolicy
) -> str | None:
    """Why a version whose status says Ready must not be trusted (None: it may be)."""
    meta, status = mv["metadata"], mv.get("status") or {}
    annotations = meta.get("annotations") or {}
    values = record.Verification.of(mv)
    if not values.verified or not record.seal_valid(key, values, status.get("seal")):
        return "Unsealed"
    if not record.verify(key, meta["namespace"], model, annotations, meta.get("creationTimestamp")):
        return "RecordTampered"
    metrics = ModelVersionSpec.model_validate(mv.get("spec") or {}).metrics
    if (
        approval.evaluate(
            policy, ann.decisions(annotations), metrics, (values.image, values.sha256)
        ).state
        != ApprovalState.APPROVED
    ):
        return "NotApproved"
    return None


def _serving(c: rollout.Candidate) -> builders.Serving:
    status, spec = c.body.get("status") or {}, c.body["spec"]
    image = (status.get("image") or {}).get("resolved") or spec["image"]["reference"]
    return builders.Serving(
        c.name,
        c.number,
        image,
        spec["artifact"]["uri"],
        # without one in spec, the checksum the operator recorded from the store (sealed
        # with the record key): the pod must fetch exactly what was verified
        spec["artifact"].get("sha256") or record.Verification.of(c.body).sha256,
        tuple(s["name"] for s in spec["image"].get("pullSecrets") or []),
        ((status.get("artifact") or {}).get("versionId") or None),
    )


class _Run:
    """One reconcile of one ModelDeployment."""

    def __init__(self, kube: Kube, body: dict[str, Any], key: bytes | None = None) -> None:
        self.kube, self.body, self.key = kube, body, key
        meta = body["metadata"]
        self.name, self.namespace = meta["name"], meta["namespace"]
        self.generation = meta.get("generation")
        self.uid = str(meta.get("uid", ""))
        self.annotations = meta.get("annotations") or {}
        self.spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
        self.old = ModelDeploymentStatus.model_validate(body.get("status") or {})
        self.status = self.old.model_copy(deep=True)
        self.status.observed_generation = self.generation
        self.events: list[tuple[str, str, str]] = []
        #: the model's policy, once run() has read the model
        self.policy: ApprovalPolicy | None = None
        #: the model's versions by name, once run() has read them
        self.by_name: dict[str, rollout.Candidate] = {}

    def condition(self, type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        self.status.conditions = conditions.set_condition(
            self.status.conditions, type_, status, reason, message, self.generation, _now()
        )

    def record(self, c: rollout.Candidate, result: RolloutResult, reason: str = "") -> bool:
        """Put ``result`` on top of the history; False if it is there already."""
        history = self.status.history
        if history and history[0].name == c.name and history[0].generation == self.generation:
            if history[0].result == result and history[0].reason == reason:
                return False
            history = history[1:]
        entry = HistoryEntry(
            name=c.name,
            number=c.number,
            result=result,
            reason=reason,
            time=_now(),
            generation=self.generation,
        )
        self.status.history = rollout.trim_history(
            [entry, *history], self.generation, HISTORY_LIMIT
        )
        return True

    def serve(self, c: rollout.Candidate) -> None:
        """Point the Deployment (and Service) at ``c``, which must be deployable now."""
        if not c.deployable:  # the one invariant: never write an undeployable version
            raise RuntimeError(f"refusing to deploy {c.name}: not deployable")
        # chosen from what the watches have seen: read it again, and judge it as it is now
        fresh = self.kube.get("modelversions", self.namespace, c.name)
        if self.policy is None:
            raise RuntimeError("serve() before run() read the model")
        c = (
            _candidate(fresh, self.spec.model_ref.name, self.key, self.policy)
            if fresh is not None and (fresh.get("status") or {}).get("number") == c.number
            else rollout.Candidate(c.name, c.number, False, "Changed", {})
        )
        if not c.deployable:
            # a newer event about it is on its way, and will reconcile this deployment again
            raise Stale(f"{c.name} is no longer deployable ({c.ready_reason})")
        serving = _serving(c)
        dep = builders.deployment(
            self.name,
            self.namespace,
            self.spec.model_ref.name,
            self.spec,
            serving,
            builders.storage_initializer_image(),
        )
        svc = builders.service(self.name, self.namespace, self.spec.model_ref.name, self.spec)
        for obj in (dep, svc):
            # an owner reference only: kopf.adopt would copy the ModelDeployment's labels
            # (anyone's to write) onto the Service and Deployment, where Argo CD,
            # kube-proxy or policy engines read them
            kopf.append_owner_reference(obj, owner=kopf.Body(self.body))  # type: ignore[arg-type]
            live = self.kube.apply(obj)
            # apply resets only the fields modelreg owns: a container, volume or setting
            # added by hand stays, unless the whole spec is put back
            if (
                obj["kind"] == "Deployment"
                and live is not None
                and builders.hand_edited(live)
                and self.kube.restore_spec(live, obj["spec"])
            ):
                log.info(f"{self.namespace}/{self.name}: hand edits of the Deployment undone")
        self.status.deployment_name = self.status.service_name = self.name
        previous = self.status.current_version
        self.status.current_version = ServedVersion(
            name=c.name, number=c.number, image=serving.image, artifact_uri=serving.artifact_uri
        )
        if previous is None or previous.name != c.name:
            self.record(c, RolloutResult.IN_PROGRESS)
            self.events.append(
                ("Normal", "RolloutStarted", f"rolling out {c.name} (version {c.number})")
            )

    def fall_back(
        self,
        failed: rollout.Candidate | None,
        versions: list[rollout.Candidate],
        reason: str,
        message: str,
    ) -> None:
        """Roll back to the previous good version, or scale to zero if there is none."""
        exclude = failed.name if failed else ""
        prev = rollout.previous_good(self.status.history, versions, exclude)
        if prev is not None:
            self.serve(prev)
            self.condition("Progressing", TRUE, "RollingBack", f"rolling back to {prev.name}")
            self.condition("RolledBack", TRUE, reason, f"{message}; serving {prev.name}")
            self.events.append(("Warning", "RolledBack", f"{message}; rolled back to {prev.name}"))
            return
        self.kube.scale_to_zero(self.namespace, self.name)
        self.status.current_version = None
        self.condition("Progressing", FALSE, "ScaledToZero", f"{message}; scaled to zero")
        self.condition(
            "RolledBack",
            FALSE,
            "NoPreviousVersion",
            f"{message}; no earlier version rolled out here and is still "
            "deployable, so the Deployment is scaled to zero",
        )
        self.condition(
            "Ready",
            FALSE,
            "NoDeployableVersion",
            f"{message}; nothing to roll back to: scaled to zero",
        )
        self.events.append(("Warning", "ScaledToZero", f"{message}; scaled to zero"))

    def hold(self, dep: dict[str, Any] | None) -> None:
        """Keep the Deployment as modelreg last made it while nothing new rolls out: the
        current version exactly as built (hand edits undone, a deleted Deployment made
        again), or, with nothing served, no pods at all (a hand scale-up undone)."""
        current = self.status.current_version
        cur = self.by_name.get(current.name) if current else None
        if cur is not None and cur.deployable:
            self.serve(cur)
        elif current is None and dep is not None and (dep.get("spec") or {}).get("replicas"):
            self.kube.scale_to_zero(self.namespace, self.name)

    def settle(self, dep: dict[str, Any] | None) -> bool:
        """Record that the current version rolled out, if it has; whether it has."""
        current = self.status.current_version
        if current is None or not rollout.rolled_out(dep, current.number, self.spec.replicas):
            return False
        cur = self.by_name.get(current.name)
        history = self.status.history
        if (
            cur is not None
            and history
            and history[0].name == cur.name
            and history[0].result == RolloutResult.IN_PROGRESS
        ):
            self.record(cur, RolloutResult.SUCCEEDED)
            self.events.append(("Normal", "RolloutSucceeded", f"serving {cur.name}"))
        self.condition("Progressing", FALSE, "RolloutComplete", f"serving {current.name}")
        return True

    def run(self) -> Outcome:
        model = self.spec.model_ref.name
        rm = self.kube.model(self.namespace, model)
        if rm is None and self.repointed():
            # pointed at a model that does not exist: what it served belongs to another
            # model, whose revocations would no longer reach it; it is not held
            self.kube.scale_to_zero(self.namespace, self.name)
            self.status.current_version = None
            message = (
                f"RegisteredModel {model!r} does not exist in {self.namespace}; what this "
                "deployment served is another model's, so it is scaled to zero"
            )
            self.condition("Ready", FALSE, "ModelNotFound", message)
            self.condition("Progressing", FALSE, "ScaledToZero", message)
            self.events.append(("Warning", "ScaledToZero", message))
            return self.finish()
        if rm is None:
            # its policy is gone with it, so no version can be judged: hold, do not revoke
            # (deleting a model by mistake must not take production down)
            current = self.status.current_version
            held = f"; the Deployment keeps serving {current.name}" if current else ""
            self.condition(
                "Ready",
                FALSE,
                "ModelNotFound",
                f"RegisteredModel {model!r} does not exist in {self.namespace}{held}; nothing "
                "is rolled out or back until it is created again",
            )
            return self.finish()
        self.policy = _policy(rm)
        versions = _candidates(self.kube, self.namespace, model, rm, self.key)
        self.by_name = by_name = {v.name: v for v in versions}
        manual = rollout.manual_hold(
            self.annotations.get(ann.ROLLBACK_TO), self.old.manual_rollback, self.generation
        )
        self.status.manual_rollback = manual
        target = rollout.choose_target(
            self.spec,
            versions,
            rollout.holds(manual, self.generation),
            self.status.history,
            self.generation,
        )
        self.status.target_version = (
            VersionRef(name=target.version.name, number=target.version.number)
            if target.version
            else None
        )
        dep = self.kube.get_deployment(self.namespace, self.name)
        if self.name_taken(dep):
            return self.finish()
        current = self.status.current_version
        cur = by_name.get(current.name) if current else None

        # 1. revoked: the serving version is no longer deployable (rejected, archived, gone)
        if current is not None and (cur is None or not cur.deployable):
            why = cur.ready_reason if cur else "deleted"
            self.record(
                cur or rollout.Candidate(current.name, current.number, False, why, {}),
                RolloutResult.ROLLED_BACK,
                "ApprovalRevoked",
            )
            self.fall_back(
                cur, versions, "ApprovalRevoked", f"{current.name} is no longer deployable ({why})"
            )
            return self.finish()

        # 2. the rollout in progress failed
        if (
            current is not None
            and cur is not None
            and dep is not None
            and not rollout.rolled_out(dep, cur.number, self.spec.replicas)
        ):
            pods = self.kube.pods(self.namespace, f"modelreg.dev/deployment={self.name}")
            started = next(
                (
                    h.time
                    for h in self.status.history
                    if h.name == cur.name and h.result == RolloutResult.IN_PROGRESS
                ),
                None,
            )
            failure = rollout.rollout_failure(dep, pods, cur.number, started)
            if failure is not None and self.spec.replicas > 0:
                # once: later pod events see the same failure (automaticRollback Disabled)
                if self.record(cur, RolloutResult.FAILED, failure):
                    self.events.append(
                        ("Warning", "RolloutFailed", f"{cur.name} failed to roll out: {failure}")
                    )
                if self.spec.rollout.automatic_rollback == AutomaticRollback.ENABLED:
                    self.fall_back(cur, versions, "RolloutFailed", f"{cur.name} failed ({failure})")
                else:
                    self.hold(dep)
                    why = f"{cur.name} failed ({failure}); automaticRollback is Disabled"
                    self.condition("Progressing", FALSE, "RolloutFailed", why)
                    self.condition("Ready", FALSE, "RolloutFailed", why)
                return self.finish()

        # 3. the target
        if target.version is None:
            self.hold(dep)
            self.settle(dep)
            if current is None and dep is not None and self.spec.replicas > 0:
                # stays as fall_back() left it: nothing served, and the reason says so
                self.condition(
                    "Ready",
                    FALSE,
                    "NoDeployableVersion",
                    f"{target.message}; the Deployment is scaled to zero",
                )
            else:
                self.condition(
                    "Ready",
                    FALSE,
                    target.reason,
                    target.message + (f"; still serving {current.name}" if current else ""),
                )
            return self.finish()
        t = target.version
        if rollout.failed_here(self.status.history, t.name, self.generation):
            # a manual target too: re-served after every fall-back, it would loop
            self.hold(dep)
            self.settle(dep)
            serving = f"; serving {current.name}" if current else ""
            unless = (
                "the spec changes or modelreg.dev/rollback-to names another version"
                if target.manual
                else "the spec changes or a newer version becomes the target"
            )
            self.condition(
                "Ready",
                FALSE,
                "RolloutFailed",
                f"{t.name} failed to roll out and is not retried until {unless}{serving}",
            )
            return self.finish()
        if dep is None or current is None or current.name != t.name:
            self.serve(t)
            rolled_back = conditions.find(self.status.conditions, "RolledBack")
            if target.manual:
                self.condition("RolledBack", TRUE, "Manual", target.message)
                if current is not None and current.name != t.name:
                    self.events.append(
                        (
                            "Normal",
                            "RolledBack",
                            f"manual rollback (modelreg.dev/rollback-to): {current.name} "
                            f"replaced by {t.name}",
                        )
                    )
            elif current is not None or (rolled_back and rolled_back.status == FALSE):
                # a new target: an earlier rollback (or failed one) is history now
                self.status.conditions = conditions.remove(self.status.conditions, "RolledBack")
        else:
            self.serve(t)  # idempotent: repairs hand edits of the Deployment and Service
        dep = self.kube.get_deployment(self.namespace, self.name)
        if self.settle(dep):
            self.condition("Ready", TRUE, "Serving", f"serving {t.name} ({target.message})")
        else:
            self.condition("Progressing", TRUE, "RollingOut", f"rolling out {t.name}")
            self.condition("Ready", UNKNOWN, "RollingOut", f"rolling out {t.name}")
        return self.finish()

    def repointed(self) -> bool:
        """Whether the version served now is not a version of ``spec.modelRef`` (the
        deployment was pointed at another model since)."""
        current = self.status.current_version
        if current is None:
            return False
        mv = self.kube.get("modelversions", self.namespace, current.name)
        served_model = ((mv or {}).get("spec") or {}).get("modelRef", {}).get("name")
        return bool(served_model != self.spec.model_ref.name)

    def name_taken(self, dep: dict[str, Any] | None) -> bool:
        """Whether a Deployment or Service of this name exists that is not this
        ModelDeployment's: then modelreg writes nothing (neither applies, adopts nor
        scales it), since it changes only what it created, and says so once."""
        svc = self.kube.get_service(self.namespace, self.name)
        taken = [
            kind
            for kind, obj in (("Deployment", dep), ("Service", svc))
            if obj is not None and not controlled_by(obj, self.uid)
        ]
        if not taken:
            return False
        what = " and a ".join(taken)
        message = (
            f"a {what} named {self.name} exists in {self.namespace} and is not this "
            "ModelDeployment's: modelreg changes only what it created, so nothing is rolled "
            "out; rename the ModelDeployment, or have its owner remove that object"
        )
        before = conditions.find(self.status.conditions, "Ready")
        if before is None or before.reason != "NameConflict" or before.message != message:
            self.events.append(("Warning", "NameConflict", message))
        self.condition("Ready", FALSE, "NameConflict", message)
        self.condition("Progressing", FALSE, "NameConflict", message)
        return True

    def finish(self) -> Outcome:
        new, old = self.status.to_api(), self.old.to_api()
        return Outcome(merge_patch(old, new) if new != old else None, self.events)


def reconcile_deployment(
    kube: Kube, body: dict[str, Any], record_key: bytes | None = None
) -> Outcome:
    meta = body["metadata"]
    with _locks[(meta["namespace"], meta["name"])]:
        fresh = kube.get("modeldeployments", meta["namespace"], meta["name"])
        if fresh is None:
            return Outcome(None)
        try:
            outcome = _Run(kube, fresh, record_key).run()
        except Stale as e:
            log.info(f"{meta['namespace']}/{meta['name']}: not changed now: {e}")
            return Outcome(None)
        if outcome.status is not None:
            kube.patch_status("modeldeployments", meta["namespace"], meta["name"], outcome.status)
        return outcome


def sync_version_stages(kube: Kube, namespace: str, model: str) -> None:
    """Derive each version's ``status.deployments`` and ``status.stage`` from the
    ModelDeployments that serve it."""
    serving: dict[str, list[dict[str, str]]] = defaultdict(list)
    for md in kube.list_objects("modeldeployments", namespace):
        if md.get("spec", {}).get("modelRef", {}).get("name") != model:
            continue
        current = (md.get("status") or {}).get("currentVersion")
        if current:
            serving[current["name"]].append(
                {"name": md["metadata"]["name"], "stage": md["spec"].get("stage", "Production")}
            )
    for mv in kube.versions_of(namespace, model):
        name = mv["metadata"]["name"]
        status = mv.get("status") or {}
        deployments = sorted(serving.get(name, []), key=lambda d: d["name"])
        stages = {d["stage"] for d in deployments}
        if ann.retired(mv["metadata"].get("annotations")):
            stage = Stage.ARCHIVED
        elif Stage.PRODUCTION in stages:
            stage = Stage.PRODUCTION
        elif Stage.STAGING in stages:
            stage = Stage.STAGING
        else:
            stage = Stage.NONE
        if status.get("deployments", []) != deployments or status.get("stage") != stage:
            kube.patch_status(
                "modelversions", namespace, name, {"deployments": deployments, "stage": str(stage)}
            )
