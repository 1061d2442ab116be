import datetime as dt
from typing import Any

from modelreg.api.model_deployment import (
    HistoryEntry,
    ManualRollback,
    ModelDeploymentSpec,
    RolloutResult,
)
from modelreg.rollout import (
    Candidate,
    choose_target,
    crash_looping,
    holds,
    manual_hold,
    previous_good,
    rolled_out,
    rollout_failure,
    trim_history,
)

T = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def c(name: str, number: int, ok: bool = True, reason: str = "Deployable") -> Candidate:
    return Candidate(name, number, ok, reason if ok else "NotApproved", {})


def spec(**kw) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate({"modelRef": {"name": "m"}, **kw})


def h(name: str, result: RolloutResult, gen: int = 1) -> HistoryEntry:
    return HistoryEntry(name=name, number=int(name[1:]), result=result, time=T, generation=gen)


def test_follows_the_latest_deployable_version_skipping_failed_ones():
    versions = [c("v1", 1), c("v2", 2), c("v3", 3, ok=False)]
    assert choose_target(spec(), versions, None, [], 1).version.name == "v2"
    failed = [h("v2", RolloutResult.FAILED, gen=1)]
    assert choose_target(spec(), versions, None, failed, 1).version.name == "v1"
    # a spec change (new generation) lets it be tried again
    assert choose_target(spec(), versions, None, failed, 2).version.name == "v2"


def test_pinned_and_manual_targets():
    versions = [c("v1", 1), c("v2", 2, ok=False)]
    assert choose_target(spec(version={"number": 1}), versions, None, [], 1).version.name == "v1"
    pinned = choose_target(spec(version={"name": "v2"}), versions, None, [], 1)
    assert (pinned.version, pinned.reason) == (None, "VersionNotApproved")
    missing = choose_target(spec(version={"name": "v9"}), versions, None, [], 1)
    assert missing.reason == "VersionNotFound"
    manual = choose_target(spec(), versions, "v1", [], 1)
    assert manual.manual
    assert manual.version.name == "v1"
    assert choose_target(spec(), versions, "v2", [], 1).reason == "VersionNotApproved"
    assert choose_target(spec(), [c("v1", 1, ok=False)], None, [], 1).reason == "NoApprovedVersion"


def test_previous_good_is_the_newest_succeeded_and_still_deployable():
    history = [
        h("v3", RolloutResult.FAILED),
        h("v2", RolloutResult.SUCCEEDED),
        h("v1", RolloutResult.SUCCEEDED),
    ]
    versions = [c("v1", 1), c("v2", 2, ok=False), c("v3", 3)]
    assert previous_good(history, versions, exclude="v3").name == "v1"
    assert previous_good(history, [c("v1", 1, ok=False)], exclude="v3") is None


def dep(labels_version: str, conditions=(), **status) -> dict[str, Any]:
    return {
        "metadata": {"generation": 2},
        "spec": {"template": {"metadata": {"labels": {"modelreg.dev/version": labels_version}}}},
        "status": {"observedGeneration": 2, "conditions": list(conditions), **status},
    }


def test_failure_detection():
    stuck = dep(
        "2", [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    )
    assert rollout_failure(stuck, [], 2) == "ProgressDeadlineExceeded"
    # right after a rollback, the deadline the failed version exceeded is still reported
    stuck["status"]["conditions"][0]["lastUpdateTime"] = "2026-01-01T00:00:05Z"
    started = T + dt.timedelta(seconds=5, microseconds=300)
    assert rollout_failure(stuck, [], 1, since=started) is None
    assert rollout_failure(stuck, [], 1, since=started - dt.timedelta(seconds=3)) == (
        "ProgressDeadlineExceeded"
    )
    crashing = {
        "metadata": {"labels": {"modelreg.dev/version": "2"}},
        "status": {"containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
    }
    assert rollout_failure(dep("2"), [crashing], 2) == "CrashLoopBackOff"
    # an old version's crashing pod is not this rollout's failure
    assert rollout_failure(dep("2"), [crashing], 3) is None
    # the storage initializer crash-loops when the artifact's sha256 does not match
    init = {
        "metadata": {"labels": {"modelreg.dev/version": "2"}},
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [
                {
                    "name": "storage-initializer",
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                }
            ],
            "containerStatuses": [
                {"name": "model", "state": {"waiting": {"reason": "PodInitializing"}}}
            ],
        },
    }
    assert rollout_failure(dep("2"), [init], 2) == "StorageInitializerFailed"
    init["status"]["initContainerStatuses"][0]["state"] = {"running": {}}
    assert rollout_failure(dep("2"), [init], 2) is None


def status(restarts: int, state: dict[str, Any], last: dict[str, Any] | None = None, **kw):
    return {"restartCount": restarts, "state": state, "lastState": last or {}, **kw}


ERROR = {"terminated": {"reason": "Error", "exitCode": 3}}


def test_a_crash_loop_is_seen_whatever_state_is_shown_between_restarts():
    """What a real kubelet reported for a process that exits 3 (tests/devenv/
    test_real_node.py): running and terminated in turn, restarts going up, never the
    waiting state."""
    assert crash_looping(status(0, {"waiting": {"reason": "CrashLoopBackOff"}}))
    assert not crash_looping(status(1, ERROR))  # one failure is not a loop yet
    assert crash_looping(status(2, ERROR))
    assert crash_looping(status(4, {"running": {}}, ERROR))
    oom = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    assert crash_looping(status(2, {"running": {}}, oom))
    # restarted after failures, and now up and ready: it recovered
    assert not crash_looping(status(3, {"running": {}}, ERROR, ready=True))
    # restarts of a process that exits 0 each time are not failures
    done = {"terminated": {"reason": "Completed", "exitCode": 0}}
    assert not crash_looping(status(3, done))
    pod = {
        "metadata": {"labels": {"modelreg.dev/version": "2"}},
        "status": {"containerStatuses": [status(2, {"running": {}}, ERROR)]},
    }
    assert rollout_failure(dep("2"), [pod], 2) == "CrashLoopBackOff"
    init = {
        "metadata": {"labels": {"modelreg.dev/version": "2"}},
        "status": {"initContainerStatuses": [{"name": "storage-initializer", **status(2, ERROR)}]},
    }
    assert rollout_failure(dep("2"), [init], 2) == "StorageInitializerFailed"


def test_rolled_out_needs_all_replicas_updated_and_available():
    assert rolled_out(dep("2", replicas=2, updatedReplicas=2, availableReplicas=2), 2, 2)
    assert not rolled_out(dep("2", replicas=3, updatedReplicas=2, availableReplicas=2), 2, 2)
    assert not rolled_out(dep("1", replicas=2, updatedReplicas=2, availableReplicas=2), 2, 2)


def test_trimming_keeps_what_rollbacks_depend_on():
    S, F, P = RolloutResult.SUCCEEDED, RolloutResult.FAILED, RolloutResult.IN_PROGRESS
    # v1 served, then 15 releases failed in a row, each rolled back to v1
    history = [h("v1", S)]
    for n in range(2, 17):
        history = [h("v1", S), h(f"v{n}", F), *history]
    history = [h("v99", P), h("v98", F, gen=0), h("v97", S, gen=0), *history]
    kept = trim_history(history, generation=1, limit=4)
    assert kept[:4] == history[:4]
    assert {e.name for e in kept if e.result == F and e.generation == 1} == {
        f"v{n}" for n in range(2, 17)
    }  # none of this generation's failures is retried
    assert [e.name for e in kept if e.result == S] == ["v97", "v1"]  # newest success of each
    old = [h("v5", P)] * 4 + [h("v3", F, gen=0)]
    assert trim_history(old, 1, 4) == old[:4]  # an earlier generation's failure may go
    assert previous_good(kept, [c("v1", 1), c("v97", 97)], "v16").name == "v97"
    assert len(trim_history(history * 20, 1, 4)) == 200  # the schema's bound


def test_a_manual_rollback_holds_only_at_the_generation_it_started():
    first = manual_hold("v1", None, 3)
    assert first == ManualRollback(version="v1", generation=3)
    assert holds(first, 3) == "v1"
    # the annotation unchanged: the hold keeps its generation, and a newer spec releases it
    assert manual_hold("v1", first, 4) is first
    assert holds(first, 4) is None
    # another version named: a new hold at the spec as it is now
    assert manual_hold("v0", first, 4) == ManualRollback(version="v0", generation=4)
    assert manual_hold(None, first, 4) is None
    assert holds(None, 3) is None


def test_a_version_still_being_verified_is_not_ready_rather_than_invalid():
    pending = Candidate("v2", 2, False, "VerificationPending", {})
    t = choose_target(spec(version={"name": "v2"}), [pending], None, [], 1)
    assert (t.version, t.reason) == (None, "VersionNotReady")
    broken = Candidate("v2", 2, False, "ArtifactNotVerified", {})
    assert choose_target(spec(version={"number": 2}), [broken], None, [], 1).reason == (
        "VersionInvalid"
    )
