"""kopf handlers: thin wiring of events to the services in this package.

Run with ``modelreg run`` (or ``kopf run -m modelreg.controller.handlers``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import datetime as dt
import functools
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import kopf
import kubernetes

from modelreg import notify, record
from modelreg import policy as source_policy
from modelreg.api import annotations as ann
from modelreg.api.base import GROUP, VERSION
from modelreg.api.registered_model import (
    ApprovalPolicy,
    NotificationEvent,
    RegisteredModelSpec,
    SecurityPolicy,
)
from modelreg.approval import Requester
from modelreg.controller import admission, bootstrap, cache, diffbase, marks, numbering
from modelreg.controller.deployments import reconcile_deployment, sync_version_stages
from modelreg.controller.lifecycle import apply_retention
from modelreg.controller.logs import NOT_LISTENING
from modelreg.controller.notifications import Notifier, deployment_notices, version_notices
from modelreg.controller.numbering import reserve
from modelreg.controller.settings import (
    KOPF_PREFIX,
    WebhookServer,
    WebhookSettings,
    accepts_connections,
    tune,
)
from modelreg.controller.versions import Outcome as VersionOutcome
from modelreg.controller.versions import reconcile_version, summarize_model
from modelreg.kube import Kube, load_client
from modelreg.metrics import ADMISSION_REVIEWS, EVENTS, RECONCILES
from modelreg.verify.artifacts import StoreConfig

_kube: Kube | None = None
_api_kube: Kube | None = None
_indices = cache.Indices()
_own_writes = cache.OwnWrites()
_diffbase = diffbase.MemoryDiffBaseStorage(prefix="kopf.modelreg.dev")
_notifier: Notifier | None = None
_stores = StoreConfig.from_env()
_record_key = record.key_from_env()
#: the operator's own user name (SelfSubjectReview at start-up): only it writes kopf's
#: bookkeeping and archives for the retention policy without asking RBAC
_operator_user: str | None = None
#: where the webhook server listens, once configured (the readiness probe connects to it)
_webhook_address: tuple[str, int] | None = None


def kube() -> Kube:
    """For the handlers: lists come from what the watches have seen (controller/cache.py)."""
    global _kube
    if _kube is None:
        _kube = Kube(index=_indices, on_write=_track_version_writes)
    return _kube


def _track_version_writes(obj: dict[str, Any]) -> None:
    if obj.get("kind") == "ModelVersion":
        _own_writes.wrote(obj)


def api_kube() -> Kube:
    """For the webhooks: every read from the API server. They answer from the moment the
    operator starts, before the indices are filled, and decide on what exists now."""
    global _api_kube
    if _api_kube is None:
        _api_kube = Kube()
    return _api_kube


@kopf.index(GROUP, VERSION, "modelversions")
def version_index(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    model = (body.get("spec") or {}).get("modelRef", {}).get("name", "")
    return {(namespace, model): cache.version_entry(body)}


@kopf.index(GROUP, VERSION, "registeredmodels")
def model_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): cache.slim(body)}


@kopf.index(GROUP, VERSION, "modeldeployments")
def deployment_index(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {namespace: cache.slim(body)}


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    # kopf logs in itself (in-cluster or kubeconfig) and configures the kubernetes client
    tune(settings)
    # what kopf last handled, in memory rather than in an annotation: one write (and one
    # admission round trip) fewer per change handled (controller/diffbase.py)
    global _diffbase
    _diffbase = diffbase.MemoryDiffBaseStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = _diffbase
    global _operator_user
    _operator_user = bootstrap.whoami(load_client())
    try:
        sources = source_policy.admin_sources()
    except ValueError as e:
        raise kopf.PermanentError(str(e)) from e
    if sources.rules is None:
        logger.warning(
            f"{source_policy.SOURCES_ENV} is not set: versions may use any artifact and "
            "image source (the Helm chart sets it from sources.allowed)"
        )
    global _record_key
    namespace, key_secret = os.environ.get("MODELREG_NAMESPACE"), record.secret_from_env()
    if not namespace:
        # version numbers are kept there, out of reach of the models' users (marks.py)
        raise kopf.PermanentError(
            "MODELREG_NAMESPACE is not set: the operator keeps how far each model's "
            "version numbers went in its own namespace"
        )
    numbering.configure(marks.Marks(namespace))
    if key_secret:
        core = kubernetes.client.CoreV1Api(load_client())
        _record_key = bootstrap.ensure_record_key(core, namespace, key_secret)
    global _notifier
    if _notifier is None:
        holder: list[Notifier] = []
        dispatcher = notify.Dispatcher(on_failure=lambda d, e, p: holder[0].failed(d, e, p))
        _notifier = Notifier(kube, dispatcher)
        holder.append(_notifier)
    webhooks = WebhookSettings.from_env()
    if problems := webhooks.problems():
        raise kopf.PermanentError("webhook settings: " + "; ".join(problems))
    if webhooks.enabled:
        global _webhook_address
        _webhook_address = webhooks.probe_address
        files = _serving_files(webhooks)
        settings.admission.server = WebhookServer(
            addr=webhooks.listen,
            port=webhooks.port,
            host=webhooks.host,
            certfile=str(files.cert_file),
            pkeyfile=str(files.key_file),
            cafile=str(files.ca_file) if files.ca_file else None,
        )
        if webhooks.configuration is None:
            settings.admission.managed = "modelreg.dev"


@kopf.on.probe(id="webhook")
def webhook_listening(**_: Any) -> str:
    """Healthy only once the webhook server accepts connections: kopf answers /healthz
    before it does, and the webhooks fail closed, so a pod marked ready too early would
    have the API server refuse every ModelVersion and ModelDeployment write meanwhile."""
    if _webhook_address is None:
        return "off"
    if why := accepts_connections(_webhook_address):
        # permanent: kopf answers the probe at once (500) instead of retrying the handler
        raise kopf.PermanentError(f"{NOT_LISTENING} on {why}")
    return "listening"


def _serving_files(webhooks: WebhookSettings) -> bootstrap.ServingFiles:
    """The certificate the webhook server serves: issued and kept by the operator in its
    Secret (with the CA written into the chart's webhook configuration), or given."""
    if webhooks.cert_file is not None and webhooks.key_file is not None:
        return bootstrap.ServingFiles(webhooks.cert_file, webhooks.key_file, webhooks.ca_file)
    if not (webhooks.namespace and webhooks.tls_secret and webhooks.configuration):
        raise kopf.PermanentError("webhook settings: no certificate files and no TLS Secret")
    api = load_client()  # startup handlers run before kopf's own login
    ca, pair = bootstrap.ensure_certificate(
        kubernetes.client.CoreV1Api(api), webhooks.namespace, webhooks.tls_secret, webhooks.names
    )
    bootstrap.inject_ca_bundle(
        kubernetes.client.AdmissionregistrationV1Api(api), webhooks.configuration, ca
    )
    return bootstrap.write_files(ca, pair)


@kopf.on.cleanup()
def stop_notifications(**_: Any) -> None:
    """Give pending notifications a few seconds to go out (the rest are dropped, and
    reported as such: delivery is at least once while the operator runs)."""
    if _notifier is not None:
        _notifier.dispatcher.close(timeout=5)


@kopf.on.cleanup()
def release_numbers(**_: Any) -> None:
    """Give back the version numbers reserved in blocks and not handed out (no gap after
    a clean stop: controller/numbering.py)."""
    numbering.release_idle(idle=0)


def _notify_version(body: dict[str, Any], outcome: VersionOutcome) -> None:
    if _notifier is None or outcome.old is None or outcome.new is None:
        return
    meta = body["metadata"]
    notices = version_notices(outcome.old, outcome.new, meta.get("annotations") or {})
    if not notices:
        return
    spec, new = body.get("spec") or {}, outcome.new
    _notifier.send(
        body,
        (spec.get("modelRef") or {}).get("name", ""),
        notices,
        version=meta["name"],
        number=new.number,
        digest=new.image.digest if new.image else None,
        artifact_uri=(spec.get("artifact") or {}).get("uri"),
    )


# --- admission -----------------------------------------------------------------------------


class _Models:
    """The RegisteredModels one admission request reads, each fetched once (from the API
    server: webhooks never trust the index)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.seen: dict[str, dict[str, Any] | None] = {}

    def raw(self, model: str) -> dict[str, Any] | None:
        if model not in self.seen:
            self.seen[model] = api_kube().get("registeredmodels", self.namespace, model)
        return self.seen[model]

    def spec(self, model: str) -> RegisteredModelSpec | None:
        rm = self.raw(model)
        return None if rm is None else RegisteredModelSpec.model_validate(rm.get("spec") or {})

    def policy(self, model: str) -> ApprovalPolicy | None:
        spec = self.spec(model)
        return None if spec is None else spec.approval_policy

    def security(self, model: str) -> SecurityPolicy | None:
        spec = self.spec(model)
        return None if spec is None else spec.security_policy


def _serving_lookup(namespace: str) -> admission.ServingLookup:
    def lookup(version: str) -> list[str]:
        return sorted(
            md["metadata"]["name"]
            for md in api_kube().list_objects("modeldeployments", namespace)
            if ((md.get("status") or {}).get("currentVersion") or {}).get("name") == version
        )

    return lookup


@contextlib.contextmanager
def _review(webhook: str, operation: str) -> Iterator[None]:
    """Count the admission review; a :class:`admission.Denied` in the block becomes the
    API server's 403 with its message."""
    try:
        yield
    except admission.Denied as e:
        ADMISSION_REVIEWS.labels(webhook, operation, "denied").inc()
        raise kopf.AdmissionError(str(e), code=403) from e
    ADMISSION_REVIEWS.labels(webhook, operation, "allowed").inc()


_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def _fail_closed(
    register: Callable[..., Any], plural: str, webhook: str
) -> Callable[[_Handler], _Handler]:
    """``kopf.on.mutate`` or ``kopf.on.validate`` for CREATE and UPDATE of ``plural``,
    failing closed and kept registered when the operator stops (persistent): without
    them, approvals would go unchecked and anyone could name any ServiceAccount or
    Secret (docs/approvals.md)."""
    decorator = register(
        GROUP,
        VERSION,
        plural,
        operations=["CREATE", "UPDATE"],
        id=webhook,
        side_effects=False,
        ignore_failures=False,
        persistent=True,
    )
    return cast(Callable[[_Handler], _Handler], decorator)


@_fail_closed(kopf.on.mutate, "modelversions", "approval-record")
async def record_decisions(**kwargs: Any) -> None:
    await _admit(_record_decisions, kwargs)


def _record_decisions(
    body: kopf.Body,
    userinfo: kopf.UserInfo,
    namespace: str | None,
    patch: kopf.Patch,
    **kwargs: Any,
) -> None:
    requester = Requester.of(userinfo)
    models = _Models(namespace or "")
    model = (body.get("spec") or {}).get("modelRef", {}).get("name", "")
    with _review("approval-record", kwargs["operation"]):
        changes = admission.admit_version(
            kwargs["operation"],
            body,
            kwargs.get("old"),
            requester,
            models.policy,
            dt.datetime.now(dt.UTC).replace(microsecond=0),
            time.time_ns(),
            _serving_lookup(namespace or ""),
            models.security,
            may_retire=_retire_check(userinfo, namespace or ""),
            content=_verified_content(kwargs.get("old")),
            namespace=namespace or "",
        )
        if kwargs["operation"] == "CREATE" and not kwargs.get("dryrun") and model:
            try:
                reserved = reserve(api_kube(), namespace or "", model, models.seen.get(model))
            except numbering.Unavailable as e:
                # fail closed: never a number that might have been handed out before
                ADMISSION_REVIEWS.labels("approval-record", "CREATE", "unavailable").inc()
                raise kopf.AdmissionError(str(e), code=503) from e
            if reserved is not None:
                # the creation stamp is taken with the number, so both give the same order
                changes[ann.NUMBER], changes[ann.CREATED_AT] = str(reserved[0]), str(reserved[1])
    if _record_key is not None and any(k in changes for k in ann.SIGNED):
        merged = {**(body.get("metadata", {}).get("annotations") or {}), **changes}
        final = {k: v for k, v in merged.items() if v is not None}
        changes[ann.SIGNATURE] = record.sign(_record_key, namespace or "", model, final)
    for key, value in changes.items():
        patch.metadata.annotations[key] = value
    if ann.DECISIONS in changes and not kwargs.get("dryrun"):
        decision = ann.decisions({ann.DECISIONS: str(changes[ann.DECISIONS])})[-1]
        kwargs["logger"].info(
            f"{decision.decision} by {decision.user}",
            extra={
                "user": decision.user,
                "decision": str(decision.decision),
                "comment": decision.comment,
                "reason": f"Version{decision.decision}Recorded",
            },
        )
    elif kwargs["operation"] == "CREATE" and not kwargs.get("dryrun"):
        kwargs["logger"].info(
            f"registered by {requester.user}",
            extra={"user": requester.user, "reason": "VersionRegistered"},
        )


#: the version reconciles' own threads (checks are bounded per host and in time by
#: verify/egress.py, so a slow host holds a few of these for a bounded time at most)
_version_pool = concurrent.futures.ThreadPoolExecutor(16, thread_name_prefix="versions")

#: the webhooks' own threads: an API request waits on the answer, so it must not queue
#: behind reconciles in kopf's executor (settings.execution.max_workers)
_admission_pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="admission")


async def _admit(check: Callable[..., None], kwargs: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    # in kopf's context (its logger posts through context variables), as kopf runs sync
    # handlers itself
    context = contextvars.copy_context()
    await loop.run_in_executor(_admission_pool, context.run, functools.partial(check, **kwargs))


def _access_check(userinfo: kopf.UserInfo, namespace: str) -> admission.AccessCheck:
    def may(access: admission.Access) -> bool:
        return kube().allowed(
            dict(userinfo), namespace, access.verb, access.group, access.resource, access.name
        )

    return may


def _verified_content(old: dict[str, Any] | None) -> tuple[str | None, str | None] | None:
    """What a version verified as before a request: the operator's sealed results (None:
    not verified, or a status the operator did not seal)."""
    if not old:
        return None
    values = record.Verification.of(old)
    if not values.verified or not record.seal_valid(
        _record_key, values, (old.get("status") or {}).get("seal")
    ):
        return None
    return (values.image, values.sha256)


def _retire_check(userinfo: kopf.UserInfo, namespace: str) -> admission.RetireCheck:
    may = _access_check(userinfo, namespace)

    def check(model: str) -> bool:
        if _operator_user is not None and userinfo.get("username") == _operator_user:
            return True  # the retention policy, the owner's own rule
        return may(admission.Access("update", "registeredmodels", GROUP, model))

    return check


def _check_delegation(
    webhook: str, body: kopf.Body, userinfo: kopf.UserInfo, **kwargs: Any
) -> None:
    """Refuse an object naming a ServiceAccount or Secret its author could not use
    themselves: the operator must not be a confused deputy. Changes nothing."""
    with _review(webhook, kwargs["operation"]):
        admission.admit_bookkeeping(
            body, kwargs.get("old"), userinfo.get("username", ""), _operator_user
        )
        admission.admit_delegation(
            body.get("kind", ""),
            body,
            kwargs.get("old"),
            _access_check(userinfo, kwargs.get("namespace") or ""),
        )
    if body.get("kind") == "ModelDeployment" and not kwargs.get("dryrun"):
        user = userinfo.get("username", "")
        for reason, message in admission.deployment_requests(
            kwargs["operation"], body, kwargs.get("old")
        ):
            kwargs["logger"].info(f"{message} by {user}", extra={"user": user, "reason": reason})


def _guard_version(
    body: kopf.Body, userinfo: kopf.UserInfo, namespace: str | None, **kwargs: Any
) -> None:
    """The final ModelVersion, after every mutating webhook: its pull Secrets are the
    author's to use, and its approval record is what approval-record made of it."""
    requester = Requester.of(userinfo)
    with _review("version-guard", kwargs["operation"]):
        admission.admit_bookkeeping(body, kwargs.get("old"), requester.user, _operator_user)
        admission.admit_size(body, kwargs.get("old"))
        admission.admit_delegation(
            "ModelVersion", body, kwargs.get("old"), _access_check(userinfo, namespace or "")
        )
        admission.admit_record(
            kwargs["operation"],
            body,
            kwargs.get("old"),
            requester,
            dt.datetime.now(dt.UTC),
            _record_key,
            namespace or "",
        )


# Refusals that change nothing are validating webhooks: they see the final object, after
# every mutating webhook (modelreg's own and any other) has run.
@_fail_closed(kopf.on.validate, "modelversions", "version-guard")
async def guard_version(**kwargs: Any) -> None:
    await _admit(_guard_version, kwargs)


@_fail_closed(kopf.on.validate, "modeldeployments", "deployment-authority")
async def check_deployment_authority(**kwargs: Any) -> None:
    await _admit(functools.partial(_check_delegation, "deployment-authority"), kwargs)


@_fail_closed(kopf.on.validate, "registeredmodels", "model-authority")
async def check_model_authority(**kwargs: Any) -> None:
    await _admit(functools.partial(_check_delegation, "model-authority"), kwargs)


# --- ModelVersion ----------------------------------------------------------------------------


def _post(
    body: dict[str, Any],
    events: list[tuple[str, str, str]],
    logger: kopf.Logger,
    direct: bool = False,
) -> None:
    """Post, count and log ``events``. ``direct``: through the API at once rather than
    kopf's queue, which would retry each Event nine times when the whole namespace is
    being deleted and accepts none."""
    for type_, reason, message in events:
        if direct:
            kube().post_event(body, type_, reason, message)
        else:
            kopf.event(
                kopf.Body(cast(kopf.RawBody, body)), type=type_, reason=reason, message=message
            )
        EVENTS.labels(body.get("kind", ""), type_, reason).inc()
        logger.info(message, extra={"reason": reason})


def _whole(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The whole version as the API server has it now, for an index entry (which keeps only
    what most reconciles read: controller/cache.py) or a stale body; None if it is gone."""
    meta = entry["metadata"]
    return kube().get("modelversions", meta["namespace"], meta["name"])


def _write_version(
    mv: dict[str, Any], logger: kopf.Logger, direct_events: bool = False
) -> VersionOutcome:
    """Reconcile one version; write its status, notify and post what changed."""
    if _own_writes.stale(mv):
        # older than a status written here: judged on that, it would be written twice
        fresh = _whole(mv)
        if fresh is None:
            return VersionOutcome(None)
        mv = fresh
    meta = mv["metadata"]
    outcome = reconcile_version(kube(), mv, _stores, _record_key)
    if outcome.status is not None and kube().patch_status(
        "modelversions", meta["namespace"], meta["name"], outcome.status
    ):
        _notify_version(mv, outcome)
    _post(mv, outcome.events, logger, direct=direct_events)
    return outcome


@kopf.on.resume(GROUP, VERSION, "modelversions")
@kopf.on.create(GROUP, VERSION, "modelversions")
@kopf.on.update(GROUP, VERSION, "modelversions", field="metadata.annotations")
async def version(
    body: kopf.Body, retry: int, reason: str, logger: kopf.Logger, **kwargs: Any
) -> None:
    """Verify the version and evaluate its approvals. What follows from its new state (the
    model's summary, its deployments) follows from the watch event of the status written
    here (``version_changed``), so that it reads that state from the index.

    On threads of its own (``_version_pool``): checks wait on registries and stores, and
    must never hold the threads that deployments (rollbacks, revocations) run on."""
    _indices.bind(kwargs)
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    outcome = await loop.run_in_executor(
        _version_pool, context.run, functools.partial(_write_version, dict(body), logger)
    )
    if outcome.retry:
        raise kopf.TemporaryError(outcome.retry, delay=min(300, 5 * 2 ** min(retry, 6)))
    RECONCILES.labels("ModelVersion", reason).inc()


def _consequential(body: kopf.Body) -> tuple[Any, ...]:
    """What of a version its model's summary and deployments depend on."""
    status, annotations = body.get("status") or {}, body["metadata"].get("annotations") or {}
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    return (
        status.get("number"),
        ready.get("status"),
        ready.get("reason"),
        (status.get("approval") or {}).get("state"),
        status.get("seal"),
        (status.get("image") or {}).get("resolved"),
        annotations.get(ann.DECISIONS),
        annotations.get(ann.SIGNATURE),
        ann.retired(annotations),
    )


@kopf.on.event(GROUP, VERSION, "modelversions")
def version_changed(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **kwargs: Any
) -> None:
    """A version changed in a way its model's summary or deployments depend on (or was
    deleted): summarize the model and reconcile its deployments. The initial listing
    only records what was seen: resume handlers reconcile everything then."""
    _indices.bind(kwargs)
    if event.get("type") == "DELETED":
        _diffbase.forget(body.get("metadata", {}).get("uid"))
        _own_writes.forget(body.get("metadata", {}).get("uid"))
    now = None if event.get("type") == "DELETED" else _consequential(body)
    seen, memo["consequential"] = memo.get("consequential"), now
    if event.get("type") is None or now == seen:
        return
    if now is not None and now[0] is None:
        return  # not numbered yet: in no summary, deployable by no deployment
    namespace = body["metadata"].get("namespace", "")
    model = (body.get("spec") or {}).get("modelRef", {}).get("name")
    if model:
        # deployments first: a rollout should not wait for a summary
        _reconcile_deployments_of(namespace, model, logger)
        _summarize(namespace, model)


def _ready_reason(mv: dict[str, Any]) -> str | None:
    for c in (mv.get("status") or {}).get("conditions", []):
        if c.get("type") == "Ready":
            return str(c.get("reason"))
    return None


def _summarize(namespace: str, model: str) -> None:
    rm = kube().get("registeredmodels", namespace, model)
    if rm is None:
        return
    if (status := summarize_model(kube(), rm)) is not None:
        kube().patch_status("registeredmodels", namespace, model, status)
    # each archive is an annotation update: the version's own handler posts the Event
    apply_retention(kube(), namespace, model, rm)


# --- RegisteredModel ---------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "registeredmodels")
@kopf.on.create(GROUP, VERSION, "registeredmodels")
@kopf.on.update(GROUP, VERSION, "registeredmodels", field="spec")
def registered_model(
    name: str,
    namespace: str | None,
    reason: str,
    body: kopf.Body,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    """A model appeared (versions waiting for it resume) or its policy changed (all versions
    are re-evaluated). At start-up (resume) versions and deployments have resume handlers
    of their own."""
    _indices.bind(kwargs)
    namespace = namespace or ""
    # a spec not yet handled may be a policy changed while the operator was down (its
    # diff base is not kept across restarts: controller/diffbase.py)
    policy_changed = reason == "update" or not diffbase.handled(body)
    for mv in kube().versions_of(namespace, name):
        if not policy_changed and _ready_reason(mv) != "ModelNotFound":
            continue
        if (whole := _whole(mv)) is not None:
            _write_version(whole, logger)
    _summarize(namespace, name)
    if reason != "resume":
        # a policy change can make a served version undeployable, or a waiting one
        # deployable
        _reconcile_deployments_of(namespace, name, logger)
    RECONCILES.labels("RegisteredModel", reason).inc()


@kopf.on.event(GROUP, VERSION, "registeredmodels")
def registered_model_gone(
    event: kopf.RawEvent, name: str, namespace: str | None, logger: kopf.Logger, **kwargs: Any
) -> None:
    """A model was deleted under its versions: they wait for it (Ready=False,
    ModelNotFound) and its deployments hold what they serve, until it is created again."""
    _indices.bind(kwargs)
    if event.get("type") != "DELETED":
        return
    _diffbase.forget(event["object"].get("metadata", {}).get("uid"))
    namespace = namespace or ""
    for mv in kube().versions_of(namespace, name):
        # often the whole namespace is being deleted: Events directly, not retried
        if (whole := _whole(mv)) is not None:
            _write_version(whole, logger, direct_events=True)
    _reconcile_deployments_of(namespace, name, logger)


# --- ModelDeployment -------------------------------------------------------------------------


def _reconcile_deployment(body: dict[str, Any], logger: kopf.Logger) -> None:
    outcome = reconcile_deployment(kube(), body, _record_key)
    model = (body.get("spec") or {}).get("modelRef", {}).get("name")
    if _notifier is not None and model:
        _notify_deployment(body, model, outcome.events)
    for type_, reason, message in outcome.events:
        kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message)
        EVENTS.labels("ModelDeployment", type_, reason).inc()
        logger.info(message, extra={"reason": reason})
    model = (body.get("spec") or {}).get("modelRef", {}).get("name")
    if model:
        sync_version_stages(kube(), body["metadata"]["namespace"], model)


def _notify_deployment(
    body: dict[str, Any], model: str, events: list[tuple[str, str, str]]
) -> None:
    """Send the deployment's transitions, each naming the version it is about: the one that
    failed for DeploymentFailed, the one served now otherwise."""
    if _notifier is None:
        return
    meta = body["metadata"]
    md = kube().get("modeldeployments", meta["namespace"], meta["name"]) or body
    status = md.get("status") or {}
    failed: dict[str, Any] = next(
        (h for h in status.get("history", []) if h.get("result") == "Failed"), {}
    )
    for notice in deployment_notices(events):
        about = failed if notice.event == NotificationEvent.DEPLOYMENT_FAILED else None
        ref = about or status.get("currentVersion") or {}
        mv = (
            kube().get("modelversions", meta["namespace"], ref["name"]) if ref.get("name") else None
        )
        mv_status, mv_spec = (mv or {}).get("status") or {}, (mv or {}).get("spec") or {}
        _notifier.send(
            md,
            model,
            [notice],
            version=ref.get("name"),
            number=ref.get("number"),
            digest=(mv_status.get("image") or {}).get("digest"),
            artifact_uri=(mv_spec.get("artifact") or {}).get("uri"),
        )


def _reconcile_deployments_of(namespace: str, model: str, logger: kopf.Logger) -> None:
    for md in kube().list_objects("modeldeployments", namespace):
        if md.get("spec", {}).get("modelRef", {}).get("name") == model:
            _reconcile_deployment(md, logger)


@kopf.on.resume(GROUP, VERSION, "modeldeployments")
@kopf.on.create(GROUP, VERSION, "modeldeployments")
@kopf.on.update(GROUP, VERSION, "modeldeployments", field="spec")
@kopf.on.update(GROUP, VERSION, "modeldeployments", field="metadata.annotations")
def model_deployment(body: kopf.Body, reason: str, logger: kopf.Logger, **kwargs: Any) -> None:
    _indices.bind(kwargs)
    _reconcile_deployment(dict(body), logger)
    RECONCILES.labels("ModelDeployment", reason).inc()


@kopf.on.event(GROUP, VERSION, "modeldeployments")
def model_deployment_gone(event: kopf.RawEvent, **_: Any) -> None:
    """Forget what kopf last handled of a deleted ModelDeployment (controller/diffbase.py);
    its Deployment and Service go with it (owner references)."""
    if event.get("type") == "DELETED":
        _diffbase.forget(event["object"].get("metadata", {}).get("uid"))


@kopf.on.event("apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": "modelreg"})
@kopf.on.event("", "v1", "services", labels={"app.kubernetes.io/managed-by": "modelreg"})
@kopf.on.event("", "v1", "pods", labels={"app.kubernetes.io/managed-by": "modelreg"})
def workload_changed(
    body: kopf.Body, namespace: str | None, logger: kopf.Logger, **kwargs: Any
) -> None:
    """A Deployment, Service or pod of a ModelDeployment changed (rollout progress,
    failure, a hand edit or deletion): reconcile its owner."""
    _indices.bind(kwargs)
    owner = (body.get("metadata", {}).get("labels") or {}).get("modelreg.dev/deployment")
    if owner and namespace:
        md = kube().get("modeldeployments", namespace, owner)
        if md is not None:
            _reconcile_deployment(md, logger)
