"""An invariant checker that watches a namespace while a scenario runs.

It records every revision of every Deployment the operator writes and every ModelVersion
change, in etcd order (resourceVersions of one etcd are one global sequence), and
reports a violation when:

- a Deployment's pod template points at a version that was not Ready (verified and
  approved) as of that revision, or at an image other than that version's resolved
  digest;
- an image is not pinned by digest;
- a ModelDeployment has more than one Deployment or Service;
- a Deployment runs an image digest or artifact sha256 other than what the approving
  decisions of its version were recorded over (decisions made once it was verified);
- a version number is given to two versions of one model;
- a recorded approval decision disappears or changes.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "modelreg.dev", "v1alpha1"


@dataclass
class _VersionHistory:
    """A version's states, by resourceVersion."""

    rvs: list[int] = field(default_factory=list)
    ready: list[bool] = field(default_factory=list)
    resolved: list[str | None] = field(default_factory=list)
    #: (image, artifact sha256) that the approvals in force were recorded over
    approved: list[set[tuple[str | None, str | None]]] = field(default_factory=list)

    def add(
        self,
        rv: int,
        ready: bool,
        resolved: str | None,
        approved: set[tuple[str | None, str | None]],
    ) -> None:
        i = bisect.bisect(self.rvs, rv)
        self.rvs.insert(i, rv)
        self.ready.insert(i, ready)
        self.resolved.insert(i, resolved)
        self.approved.insert(i, approved)

    def as_of(self, rv: int) -> tuple[bool, str | None, set[tuple[str | None, str | None]]] | None:
        i = bisect.bisect(self.rvs, rv) - 1
        return (self.ready[i], self.resolved[i], self.approved[i]) if i >= 0 else None


def approved_content(annotations: dict[str, str]) -> set[tuple[str | None, str | None]]:
    """What the approvals in force (after the last rejection) were recorded over."""
    content: set[tuple[str | None, str | None]] = set()
    try:
        decisions = json.loads(annotations.get("modelreg.dev/decisions") or "[]")
    except ValueError:
        return content
    for d in decisions:
        if d.get("decision") == "Rejected":
            content = set()
        elif d.get("image") or d.get("artifactSha256"):
            content.add((d.get("image"), d.get("artifactSha256")))
    return content


@dataclass
class InvariantChecker:
    api: kubernetes.client.ApiClient
    namespace: str
    violations: list[str] = field(default_factory=list)
    revisions: int = 0  # Deployment pod templates checked
    version_events: int = 0
    _versions: dict[str, _VersionHistory] = field(
        default_factory=lambda: defaultdict(_VersionHistory)
    )
    _decisions: dict[str, list[Any]] = field(default_factory=dict)  # by uid
    _numbers: dict[tuple[str, int], str] = field(default_factory=dict)  # (model, n) -> uid
    _templates: dict[str, str] = field(default_factory=dict)  # deployment uid -> template
    _pending: list[dict[str, Any]] = field(default_factory=list)  # deployments to check
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    # --- running ---------------------------------------------------------------------

    def start(self) -> InvariantChecker:
        for target in (self._watch_versions, self._watch_deployments, self._watch_services):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> list[str]:
        """Stop watching; check what is left; the violations."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)
        with self._lock:
            self._check_pending(final=True)
            return list(self.violations)

    def _watch(self, list_fn: Any, handle: Any, **kwargs: Any) -> None:
        rv = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    listing = list_fn(**kwargs)
                    items = listing["items"] if isinstance(listing, dict) else listing.items
                    for item in items:
                        handle("ADDED", _plain(self.api, item))
                    meta = listing["metadata"] if isinstance(listing, dict) else listing.metadata
                    rv = (
                        meta["resourceVersion"] if isinstance(meta, dict) else meta.resource_version
                    )
                w = kubernetes.watch.Watch()
                for event in w.stream(list_fn, resource_version=rv, timeout_seconds=5, **kwargs):
                    obj = _plain(self.api, event["object"])
                    rv = obj["metadata"]["resourceVersion"]
                    handle(event["type"], obj)
                    if self._stop.is_set():
                        w.stop()
                        break
            except ApiException as e:
                if e.status == 410:
                    rv = None  # expired: list again
                    continue
                if self._stop.wait(1):
                    return
            except Exception:
                if self._stop.wait(1):
                    return

    # --- ModelVersions -----------------------------------------------------------------

    def _watch_versions(self) -> None:
        custom = kubernetes.client.CustomObjectsApi(self.api)
        self._watch(
            custom.list_namespaced_custom_object,
            self._on_version,
            group=GROUP,
            version=VERSION,
            namespace=self.namespace,
            plural="modelversions",
        )

    def _on_version(self, type_: str, mv: dict[str, Any]) -> None:
        if type_ not in ("ADDED", "MODIFIED"):
            return
        meta, status = mv["metadata"], mv.get("status") or {}
        uid, name = meta["uid"], meta["name"]
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions", [])
        )
        with self._lock:
            self.version_events += 1
            self._versions[name].add(
                int(meta["resourceVersion"]),
                ready,
                (status.get("image") or {}).get("resolved"),
                approved_content(meta.get("annotations") or {}),
            )
            decisions = (status.get("approval") or {}).get("decisions") or []
            before = self._decisions.get(uid, [])
            if decisions[: len(before)] != before:
                self.violations.append(
                    f"decisions of {name} changed or disappeared: {before} -> {decisions}"
                )
            if len(decisions) >= len(before):
                self._decisions[uid] = decisions
            number = (meta.get("annotations") or {}).get("modelreg.dev/number") or status.get(
                "number"
            )
            model = (mv.get("spec") or {}).get("modelRef", {}).get("name", "")
            if number:
                owner = self._numbers.setdefault((model, int(number)), uid)
                if owner != uid:
                    self.violations.append(f"version number {model}/{number} reused by {name}")
            self._check_pending(final=False)

    # --- Deployments and Services -------------------------------------------------------------

    def _watch_deployments(self) -> None:
        apps = kubernetes.client.AppsV1Api(self.api)
        self._watch(
            apps.list_namespaced_deployment,
            self._on_deployment,
            namespace=self.namespace,
            label_selector="app.kubernetes.io/managed-by=modelreg",
        )

    def _watch_services(self) -> None:
        core = kubernetes.client.CoreV1Api(self.api)
        self._watch(
            core.list_namespaced_service,
            self._on_service,
            namespace=self.namespace,
            label_selector="app.kubernetes.io/managed-by=modelreg",
        )

    def _on_service(self, type_: str, svc: dict[str, Any]) -> None:
        owner = (svc["metadata"].get("labels") or {}).get("modelreg.dev/deployment")
        if type_ != "DELETED" and owner and svc["metadata"]["name"] != owner:
            with self._lock:
                self.violations.append(f"a second Service {svc['metadata']['name']} for {owner}")

    def _on_deployment(self, type_: str, dep: dict[str, Any]) -> None:
        if type_ == "DELETED":
            return
        meta = dep["metadata"]
        owner = (meta.get("labels") or {}).get("modelreg.dev/deployment")
        with self._lock:
            if owner and meta["name"] != owner:
                self.violations.append(f"a second Deployment {meta['name']} for {owner}")
            template = repr(dep["spec"]["template"])
            if self._templates.get(meta["uid"]) == template:
                return  # status or scale only: no new revision of the pod template
            self._templates[meta["uid"]] = template
            self._pending.append(dep)
            self._check_pending(final=False)

    def _check_pending(self, final: bool) -> None:
        """Check revisions whose version history is known up to their resourceVersion
        (the version watch can lag behind the deployment watch)."""
        keep = []
        for dep in self._pending:
            rv = int(dep["metadata"]["resourceVersion"])
            template = dep["spec"]["template"]
            version = (template["metadata"].get("annotations") or {}).get(
                "modelreg.dev/version-name"
            )
            history = self._versions.get(version or "")
            if not final and (history is None or not history.rvs or history.rvs[-1] < rv):
                keep.append(dep)  # wait for the version watch to catch up
                continue
            self.revisions += 1
            name = dep["metadata"]["name"]
            container = next(c for c in template["spec"]["containers"] if c["name"] == "model")
            if "@sha256:" not in container["image"]:
                self.violations.append(f"{name} runs {container['image']}, not pinned by digest")
            state = history.as_of(rv) if history else None
            if state is None:
                self.violations.append(f"{name} points at {version}, unknown as of rv {rv}")
                continue
            ready, resolved, approved = state
            if not ready:
                self.violations.append(f"{name} points at {version}, not Ready as of rv {rv}")
            elif resolved and container["image"] != resolved:
                self.violations.append(
                    f"{name} runs {container['image']}, but {version} resolved to {resolved}"
                )
            running = (container["image"], _fetched_sha256(template))
            # a part recorded as None was not verified (validation.skip): the immutable
            # spec is what was approved there, checked above
            if (
                ready
                and approved
                and not any(
                    all(want is None or want == have for want, have in zip(a, running, strict=True))
                    for a in approved
                )
            ):
                self.violations.append(
                    f"{name} runs {running}, but the approvals of {version} were recorded "
                    f"over {sorted(approved, key=str)}"
                )
        self._pending = keep


def _fetched_sha256(template: dict[str, Any]) -> str | None:
    """The sha256 the storage-initializer checks (its ``--sha256`` argument)."""
    for init in template["spec"].get("initContainers") or []:
        args = init.get("args") or []
        if "--sha256" in args and args.index("--sha256") + 1 < len(args):
            return str(args[args.index("--sha256") + 1])
    return None


def _plain(api: kubernetes.client.ApiClient, obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    return api.sanitize_for_serialization(obj)  # type: ignore[no-any-return]
