"""Which version a ModelDeployment should serve, and what a failed rollout leads to (pure)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from modelreg.api.model_deployment import (
    HISTORY_MAX,
    HistoryEntry,
    ManualRollback,
    ModelDeploymentSpec,
    RolloutResult,
)
from modelreg.builders import STORAGE_INITIALIZER


@dataclass(frozen=True)
class Candidate:
    """A ModelVersion of the deployment's model, as the controller sees it."""

    name: str
    number: int
    deployable: bool
    ready_reason: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Target:
    """What the spec (or a manual rollback) asks for."""

    version: Candidate | None
    reason: str  # why there is no deployable target, or how it was chosen
    message: str
    manual: bool = False


def failed_here(history: list[HistoryEntry], name: str, generation: int | None) -> bool:
    """Whether ``name`` failed to roll out under the current spec generation."""
    return any(
        h.name == name and h.result == RolloutResult.FAILED and h.generation == generation
        for h in history
    )


def manual_hold(
    rollback_to: str | None, seen: ManualRollback | None, generation: int | None
) -> ManualRollback | None:
    """The manual rollback to record: the one ``seen`` before while the annotation still
    names its version (it keeps the generation it started at), a new one at this
    generation when the annotation names another version, none without the annotation."""
    if not rollback_to:
        return None
    if seen is not None and seen.version == rollback_to:
        return seen
    return ManualRollback(version=rollback_to, generation=generation)


def holds(hold: ManualRollback | None, generation: int | None) -> str | None:
    """The version a manual rollback holds the deployment at: none once the spec changed
    after it started (the contract: held "until the annotation is removed or the spec
    changes")."""
    return hold.version if hold is not None and hold.generation == generation else None


def choose_target(
    spec: ModelDeploymentSpec,
    versions: list[Candidate],
    rollback_to: str | None,
    history: list[HistoryEntry],
    generation: int | None,
) -> Target:
    by_name = {v.name: v for v in versions}
    if rollback_to:
        v = by_name.get(rollback_to)
        if v is None:
            return Target(
                None,
                "VersionNotFound",
                f"modelreg.dev/rollback-to names {rollback_to!r}, which is not a "
                "version of this model",
            )
        if not v.deployable:
            return Target(
                None,
                "VersionNotApproved",
                f"modelreg.dev/rollback-to names {v.name}, which is not deployable "
                f"({v.ready_reason})",
            )
        return Target(v, "Manual", f"held at {v.name} by modelreg.dev/rollback-to", manual=True)
    if spec.version is not None:
        wanted = (
            by_name.get(spec.version.name)
            if spec.version.name
            else next((v for v in versions if v.number == spec.version.number), None)
        )
        if wanted is None:
            ref = spec.version.name or f"number {spec.version.number}"
            return Target(None, "VersionNotFound", f"version {ref} of this model does not exist")
        if not wanted.deployable:
            if wanted.ready_reason in ("NotApproved", "Rejected", "Archived"):
                reason = "VersionNotApproved"
            elif wanted.ready_reason in _NOT_YET:
                reason = "VersionNotReady"
            else:
                reason = "VersionInvalid"
            return Target(None, reason, f"{wanted.name} is not deployable ({wanted.ready_reason})")
        return Target(wanted, "Pinned", f"pinned to {wanted.name}")
    ready = [v for v in versions if v.deployable and not failed_here(history, v.name, generation)]
    if not ready:
        return Target(
            None,
            "NoApprovedVersion",
            "no version of this model is deployable (verified and approved)",
        )
    latest = max(ready, key=lambda v: v.number)
    return Target(latest, "Latest", f"following the latest deployable version, {latest.name}")


#: a version's Ready reasons while its checks are still running (it may become deployable)
_NOT_YET = ("Pending", "VerificationPending")


def trim_history(
    history: list[HistoryEntry], generation: int | None, limit: int
) -> list[HistoryEntry]:
    """The newest ``limit`` entries, plus the older ones rollbacks still depend on: each
    version's newest success (what to roll back to) and this generation's failures (what
    not to retry). Without them, a run of failed releases pushed the last good version out
    of the history, and the deployment scaled to zero (found by benchmarks/, 20 failures
    in a row), and failed versions were retried."""
    kept, older = history[:limit], history[limit:]
    succeeded = {h.name for h in kept if h.result == RolloutResult.SUCCEEDED}
    for h in older:
        if h.result == RolloutResult.SUCCEEDED and h.name not in succeeded:
            kept.append(h)
            succeeded.add(h.name)
        elif h.result == RolloutResult.FAILED and h.generation == generation:
            kept.append(h)
    return kept[:HISTORY_MAX]


def previous_good(
    history: list[HistoryEntry], versions: list[Candidate], exclude: str
) -> Candidate | None:
    """The newest version that rolled out successfully here and is still deployable."""
    by_name = {v.name: v for v in versions}
    for h in history:  # newest first
        v = by_name.get(h.name)
        if (
            h.result == RolloutResult.SUCCEEDED
            and h.name != exclude
            and v is not None
            and v.deployable
        ):
            return v
    return None


def rollout_failure(
    deployment: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    number: int,
    since: dt.datetime | None = None,
) -> str | None:
    """Why the rollout of version ``number`` (started at ``since``) failed, or None if it
    has not (yet)."""
    if deployment is None:
        return None
    status = deployment.get("status") or {}
    for c in status.get("conditions", []):
        if (
            c.get("type") == "Progressing"
            and c.get("status") == "False"
            and c.get("reason") == "ProgressDeadlineExceeded"
            and _after(c.get("lastUpdateTime"), since)
        ):
            return "ProgressDeadlineExceeded"
    for pod in pods:
        if pod["metadata"].get("labels", {}).get("modelreg.dev/version") != str(number):
            continue
        status = pod.get("status") or {}
        for cs in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = "CrashLoopBackOff" if crash_looping(cs) else waiting.get("reason")
            if reason in _STUCK:
                if cs.get("name") == STORAGE_INITIALIZER and reason == "CrashLoopBackOff":
                    # the artifact cannot be fetched, or does not match its sha256
                    return "StorageInitializerFailed"
                return str(reason)
    return None


#: restarts after failures that make a crash loop, whatever state is shown between them
CRASH_RESTARTS = 2


def crash_looping(cs: dict[str, Any]) -> bool:
    """Whether a container is in a crash loop: the kubelet says so (waiting
    ``CrashLoopBackOff``), or it has been restarted :data:`CRASH_RESTARTS` times and
    its last run failed. A real kubelet under load can report the exit
    (``terminated: Error``) for the whole back-off and never the waiting state in
    between (seen on the local real node: restarts 1 to 4, each shown as terminated,
    with the kubelet's BackOff events), so the waiting reason alone misses real crashes.
    """
    state = cs.get("state") or {}
    if (state.get("waiting") or {}).get("reason") == "CrashLoopBackOff":
        return True
    if int(cs.get("restartCount") or 0) < CRASH_RESTARTS:
        return False
    if "running" in state and cs.get("ready"):
        return False  # it came back and serves: a past failure, not a loop
    last = state.get("terminated") or (cs.get("lastState") or {}).get("terminated") or {}
    return bool(last) and (last.get("exitCode") != 0 or last.get("reason") == "OOMKilled")


def _after(timestamp: str | None, since: dt.datetime | None) -> bool:
    """Whether a condition written at ``timestamp`` can be about a rollout started at
    ``since``. Right after a rollback, the Deployment still reports the deadline the
    failed version exceeded (the controller keeps it until the old template's pods are
    gone), with the current generation observed: only its time tells them apart. A
    deadline is at least a second, so a condition from the very second the rollout
    started is an earlier one's."""
    if since is None or not timestamp:
        return True
    written = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return written > since.replace(microsecond=0)


#: container states that will not get better by waiting
_STUCK = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError")


def rolled_out(deployment: dict[str, Any] | None, number: int, replicas: int) -> bool:
    """Whether the Deployment serves version ``number`` on all its replicas."""
    if deployment is None:
        return False
    template_labels = deployment["spec"]["template"]["metadata"].get("labels", {})
    status = deployment.get("status") or {}
    return bool(
        template_labels.get("modelreg.dev/version") == str(number)
        and status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        and status.get("updatedReplicas", 0) >= replicas
        and status.get("availableReplicas", 0) >= replicas
        and status.get("replicas", 0) == status.get("updatedReplicas", 0)
    )
