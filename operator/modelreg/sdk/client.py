"""``modelreg.Client``: register, approve, deploy, roll back and audit model versions."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import kubernetes
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from modelreg.api import annotations as ann
from modelreg.api.base import API_VERSION, GROUP, VERSION
from modelreg.api.model_deployment import RolloutResult
from modelreg.api.model_version import Dataset, Decision, ModelVersionSpec
from modelreg.sdk import lineage as lineage_mod
from modelreg.sdk import upload as upload_mod
from modelreg.sdk.errors import (
    Invalid,
    ModelregError,
    NotFound,
    Timeout,
    VerificationFailed,
    from_api,
)
from modelreg.sdk.models import (
    Comparison,
    DatasetUse,
    Deployment,
    Difference,
    HistoryEvent,
    MetricDelta,
    Model,
    Placement,
    Version,
)

Obj = dict[str, Any]
MV, MD, RM = "modelversions", "modeldeployments", "registeredmodels"
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

#: progress of a long call: (what, done, total) -- bytes for uploads, steps for waits
Progress = Callable[[str, int, int], None]
DatasetArg = Dataset | Mapping[str, Any] | str


def _dataset(d: DatasetArg) -> Dataset:
    if isinstance(d, Dataset):
        return d
    if isinstance(d, str):
        name = d.rstrip("/").rsplit("/", 1)[-1] or d
        return Dataset(name=name[:256], uri=d)
    return Dataset.model_validate(dict(d))


def _utc(t: dt.datetime | None) -> dt.datetime:
    if t is None:
        return dt.datetime.max.replace(tzinfo=dt.UTC)
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


class Client:
    """A modelreg client for one namespace.

    Connection: ``api_client`` if given; else the kubeconfig (``kubeconfig`` or
    $KUBECONFIG / ~/.kube/config) with ``context`` when one of them is given; else the
    in-cluster service account, falling back to the kubeconfig's current context.
    Namespace: the argument, else the context's namespace, else the in-cluster namespace,
    else ``default``.

    S3 (for :meth:`register` with a local path): the arguments, else MODELREG_S3_ENDPOINT,
    MODELREG_S3_BUCKET, AWS_DEFAULT_REGION and the usual AWS credential chain.
    """

    def __init__(
        self,
        namespace: str | None = None,
        *,
        context: str | None = None,
        kubeconfig: str | Path | None = None,
        api_client: kubernetes.client.ApiClient | None = None,
        s3_endpoint: str | None = None,
        s3_bucket: str | None = None,
        s3_region: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        config_namespace: str | None = None
        if api_client is None:
            api_client, config_namespace = self._connect(context, kubeconfig)
        self.api = api_client
        self.custom = kubernetes.client.CustomObjectsApi(api_client)
        self.namespace = namespace or config_namespace or "default"
        self.s3 = upload_mod.S3Settings.resolve(
            s3_endpoint, s3_bucket, s3_region, aws_access_key_id, aws_secret_access_key
        )
        self.poll_interval = poll_interval

    @staticmethod
    def _connect(
        context: str | None, kubeconfig: str | Path | None
    ) -> tuple[kubernetes.client.ApiClient, str | None]:
        config = kubernetes.client.Configuration()
        if context is None and kubeconfig is None:
            try:
                kubernetes.config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
            except kubernetes.config.ConfigException:
                pass
            else:
                ns = None
                if IN_CLUSTER_NAMESPACE.exists():
                    ns = IN_CLUSTER_NAMESPACE.read_text().strip() or None
                return kubernetes.client.ApiClient(config), ns
        # $KUBECONFIG read now, not when the kubernetes package was imported
        config_file = str(kubeconfig) if kubeconfig is not None else os.environ.get("KUBECONFIG")
        try:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=config_file, context=context, client_configuration=config
            )
            contexts, active = kubernetes.config.list_kube_config_contexts(config_file)  # type: ignore[no-untyped-call]
        except (kubernetes.config.ConfigException, OSError) as e:
            raise ModelregError(f"cannot load the Kubernetes configuration: {e}") from e
        chosen = (
            next((c for c in contexts if c.get("name") == context), None) if context else active
        )
        ns = ((chosen or {}).get("context") or {}).get("namespace")
        return kubernetes.client.ApiClient(config), ns

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- API I/O -------------------------------------------------------------------------

    def _get(self, plural: str, name: str, what: str) -> Obj:
        try:
            return cast(
                Obj,
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, name
                ),
            )
        except ApiException as e:
            if e.status == 404:
                raise NotFound(f"{what} {name!r} not found in namespace {self.namespace!r}") from e
            raise from_api(e, f"{what} {name}") from e

    def _find(self, plural: str, name: str) -> Obj | None:
        try:
            return self._get(plural, name, plural)
        except NotFound:
            return None

    def _list(self, plural: str) -> list[Obj]:
        try:
            out = cast(
                Obj,
                self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, plural),
            )
        except ApiException as e:
            raise from_api(e, f"listing {plural} in {self.namespace}") from e
        return cast(list[Obj], out.get("items", []))

    def _patch(self, plural: str, name: str, patch: Obj, what: str) -> Obj:
        try:
            return cast(
                Obj,
                self.custom.patch_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, name, patch
                ),
            )
        except ApiException as e:
            if e.status == 404:
                raise NotFound(f"{what} {name!r} not found in namespace {self.namespace!r}") from e
            raise from_api(e, f"{what} {name}") from e

    def _create(self, plural: str, body: Obj, what: str) -> Obj:
        try:
            return cast(
                Obj,
                self.custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, body
                ),
            )
        except ApiException as e:
            raise from_api(e, f"creating {what}") from e

    # --- versions ------------------------------------------------------------------------

    def get(self, version: str) -> Version:
        """A ModelVersion by name, or ``<model>:<number>``."""
        if ":" in version:
            model, _, number = version.rpartition(":")
            if number.isdigit():
                for v in self.versions(model):
                    if v.number == int(number):
                        return v
                raise NotFound(f"model {model!r} has no version {number} in {self.namespace!r}")
        return Version.from_api(self._get(MV, version, "ModelVersion"))

    def model(self, name: str) -> Model:
        """A RegisteredModel."""
        return Model.from_api(self._get(RM, name, "RegisteredModel"))

    def versions(self, model: str | None = None) -> list[Version]:
        """The versions of ``model`` (all models when None), by number."""
        out = [Version.from_api(o) for o in self._list(MV)]
        if model is not None:
            out = [v for v in out if v.model == model]
        return sorted(
            out, key=lambda v: (v.model, v.number is None, v.number or 0, _utc(v.created))
        )

    def register(
        self,
        model: str,
        path: str | Path | None = None,
        *,
        uri: str | None = None,
        sha256: str | None = None,
        image: str,
        name: str | None = None,
        datasets: Iterable[DatasetArg] | None = None,
        parameters: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        training_image: str | None = None,
        description: str | None = None,
        format: str | None = None,
        parent_version: str | None = None,
        pull_secrets: Iterable[str] = (),
        capture_lineage: bool = True,
        bucket: str | None = None,
        key: str | None = None,
        wait: bool = False,
        timeout: float = 300,
        progress: Progress | None = None,
    ) -> Version:
        """Register a new version of ``model``.

        Either ``path`` (a file, or a directory packed as a reproducible tar.gz) is
        uploaded to S3 (``bucket``, default $MODELREG_S3_BUCKET; ``key``, default
        ``<model>/<uuid>/<filename>``) with its sha256 computed on the way, or ``uri`` (and
        optionally ``sha256``) names an artifact already stored. Lineage (git repository,
        commit and dirty flag; Python and installed packages; MLflow/W&B run ids from the
        environment) is captured unless ``capture_lineage`` is False, and merged with what
        is passed (what is passed wins). ``wait``: block until the operator verified the
        artifact and resolved the image (:class:`VerificationFailed` if it could not).
        Returns the created version, with its number.
        """
        if (path is None) == (uri is None):
            raise Invalid("register needs exactly one of path (to upload) or uri")
        spec: Obj = {
            "modelRef": {"name": model},
            "image": {
                "reference": image,
                "pullSecrets": [{"name": s} for s in pull_secrets],
            },
        }
        captured = (
            lineage_mod.capture(Path(path) if path is not None else None)
            if capture_lineage
            else None
        )
        lineage: Obj = {}
        merged_tags: dict[str, str] = {}
        if captured is not None:
            if (code := captured.code()) is not None:
                lineage["code"] = code.to_api()
            if (run := captured.run()) is not None:
                lineage["run"] = run.to_api()
            merged_tags.update(captured.tags())
        if datasets:
            lineage["datasets"] = [_dataset(d).to_api() for d in datasets]
        if training_image:
            lineage["trainingImage"] = training_image
        if parameters:
            lineage["parameters"] = {str(k): str(v) for k, v in parameters.items()}
        if parent_version:
            lineage["parentVersion"] = parent_version
        merged_tags.update(tags or {})
        spec["lineage"] = lineage
        spec["metrics"] = {str(k): float(v) for k, v in (metrics or {}).items()}
        spec["tags"] = merged_tags
        if description:
            spec["description"] = description
        artifact: Obj = {"uri": uri or "s3://placeholder-bucket/placeholder", "sha256": sha256}
        if format:
            artifact["format"] = format
        spec["artifact"] = {k: v for k, v in artifact.items() if v is not None}
        self._validate(spec)  # before uploading anything

        if path is not None:
            up = self.upload(model, path, bucket=bucket, key=key, progress=progress)
            spec["artifact"]["uri"], spec["artifact"]["sha256"] = up.uri, up.sha256
            if format is None and up.key.endswith((".tar.gz", ".tgz")):
                spec["artifact"].setdefault("format", "tar.gz")
            self._validate(spec)

        metadata: Obj = {"name": name} if name else {"generateName": f"{model}-"}
        body = {"apiVersion": API_VERSION, "kind": "ModelVersion", "metadata": metadata}
        created = Version.from_api(self._create(MV, {**body, "spec": spec}, "ModelVersion"))
        if wait:
            return self.wait_verified(created.name, timeout=timeout, progress=progress)
        return created

    @staticmethod
    def _validate(spec: Obj) -> None:
        try:
            ModelVersionSpec.model_validate(spec)
        except ValidationError as e:
            raise Invalid(f"the ModelVersion would be invalid: {e}") from e

    def upload(
        self,
        model: str,
        path: str | Path,
        *,
        bucket: str | None = None,
        key: str | None = None,
        progress: Progress | None = None,
    ) -> upload_mod.Uploaded:
        """Upload a file (or a directory as tar.gz) for ``model``; see :meth:`register`."""
        bucket = bucket or self.s3.bucket
        if not bucket:
            raise Invalid("no bucket: pass bucket= or set MODELREG_S3_BUCKET")
        src = Path(path)
        if not src.exists():
            raise NotFound(f"{src} does not exist")
        with upload_mod.artifact_file(src) as (file, filename):
            target = key or upload_mod.default_key(model, filename)
            cb = None
            if progress is not None:
                p = progress

                def cb(done: int, total: int) -> None:
                    p(f"uploading {filename}", done, total)

            return upload_mod.upload_file(self.s3.client(), file, bucket, target, progress=cb)

    def wait_verified(
        self, version: str, *, timeout: float = 300, progress: Progress | None = None
    ) -> Version:
        """Wait until the artifact is verified and the image resolved (or skipped)."""
        deadline = time.monotonic() + timeout
        wanted = ("ArtifactVerified", "ImageResolved")
        while True:
            v = self.get(version)
            done = 0
            for type_ in wanted:
                c = v.condition(type_)
                if c is not None and c.status == "False":
                    raise VerificationFailed(
                        f"{v.name}: {type_}=False ({c.reason}): {c.message}".rstrip(": ")
                    )
                if c is not None and c.status == "True":
                    done += 1
            if progress is not None:
                progress(f"verifying {v.name}", done, len(wanted))
            if done == len(wanted) and v.number is not None:
                return v
            if time.monotonic() > deadline:
                seen = ", ".join(
                    f"{t}={c.status if (c := v.condition(t)) else 'pending'}"
                    + (f" ({c.message})" if c and c.message else "")
                    for t in wanted
                )
                raise Timeout(f"{v.name} not verified after {timeout:g}s: {seen}")
            time.sleep(self.poll_interval)

    def _decide(self, version: str, decision: Decision, comment: str) -> Version:
        name = self.get(version).name if ":" in version else version
        values: dict[str, str | None] = {
            ann.APPROVAL: decision.value,
            ann.APPROVAL_COMMENT: comment or None,
        }
        obj = self._patch(MV, name, {"metadata": {"annotations": values}}, "ModelVersion")
        return Version.from_api(obj)

    def approve(self, version: str, comment: str = "") -> Version:
        """Record an approval of ``version`` by the calling user (:class:`Denied` with the
        webhook's reason if the policy does not allow it)."""
        return self._decide(version, Decision.APPROVED, comment)

    def reject(self, version: str, comment: str = "") -> Version:
        """Record a rejection of ``version`` by the calling user."""
        return self._decide(version, Decision.REJECTED, comment)

    def archive(self, version: str, comment: str = "") -> Version:
        """Retire ``version`` (refused while it is deployed)."""
        name = self.get(version).name if ":" in version else version
        values = {ann.ARCHIVED: "true", ann.ARCHIVE_COMMENT: comment or None}
        return Version.from_api(
            self._patch(MV, name, {"metadata": {"annotations": values}}, "ModelVersion")
        )

    # --- deployments -------------------------------------------------------------------

    def deployment(self, name: str) -> Deployment:
        return Deployment.from_api(self._get(MD, name, "ModelDeployment"))

    def deployments(self, model: str | None = None) -> list[Deployment]:
        out = [Deployment.from_api(o) for o in self._list(MD)]
        return sorted((d for d in out if model is None or d.model == model), key=lambda d: d.name)

    def deploy(
        self,
        model: str,
        name: str | None = None,
        *,
        version: str | int | None = None,
        stage: str = "Production",
        replicas: int = 1,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        storage_secret: str | None = None,
        service_account: str | None = None,
        wait: bool = False,
        timeout: float = 300,
        progress: Progress | None = None,
    ) -> Deployment:
        """Create or update the ModelDeployment ``name`` (default: the model's name) serving
        ``model``: pinned to ``version`` (a ModelVersion name or a number), or following the
        latest Ready version when None. ``wait``: block until it serves the target version
        and is Ready."""
        name = name or model
        spec: Obj = {"modelRef": {"name": model}, "stage": stage, "replicas": replicas}
        if isinstance(version, int) or (isinstance(version, str) and version.isdigit()):
            spec["version"] = {"number": int(version)}
        elif version:
            spec["version"] = {"name": version}
        else:
            spec["version"] = None
        if port is not None:
            spec["port"] = port
        if env:
            spec["env"] = [{"name": k, "value": v} for k, v in env.items()]
        if storage_secret:
            spec["storage"] = {"secretRef": {"name": storage_secret}}
        if service_account:
            spec["serviceAccountName"] = service_account
        existing = self._find(MD, name)
        if existing is None:
            body = {
                "apiVersion": API_VERSION,
                "kind": "ModelDeployment",
                "metadata": {"name": name},
                "spec": {k: v for k, v in spec.items() if v is not None},
            }
            obj = self._create(MD, body, f"ModelDeployment {name}")
        else:
            if existing["spec"]["modelRef"]["name"] != model:
                raise Invalid(
                    f"ModelDeployment {name!r} serves model "
                    f"{existing['spec']['modelRef']['name']!r}, not {model!r}"
                )
            obj = self._patch(MD, name, {"spec": spec}, "ModelDeployment")
        dep = Deployment.from_api(obj)
        if wait:
            return self.wait_deployed(dep.name, timeout=timeout, progress=progress)
        return dep

    def wait_deployed(
        self,
        deployment: str,
        *,
        version: str | None = None,
        timeout: float = 300,
        progress: Progress | None = None,
    ) -> Deployment:
        """Wait until ``deployment`` is Ready and serves its target (or ``version``)."""
        deadline = time.monotonic() + timeout
        while True:
            d = self.deployment(deployment)
            ready = d.condition("Ready")
            target = version or (d.status.target_version.name if d.status.target_version else None)
            observed = (d.status.observed_generation or 0) >= (d.generation or 0)
            ok = (
                observed
                and ready is not None
                and ready.status == "True"
                and d.current is not None
                and (target is None or d.current == target)
            )
            if progress is not None:
                progress(f"deploying {d.name}", int(ok), 1)
            if ok:
                return d
            if time.monotonic() > deadline:
                why = f"Ready={ready.status} ({ready.reason}): {ready.message}" if ready else ""
                raise Timeout(
                    f"ModelDeployment {d.name} not serving {target or 'a version'} after "
                    f"{timeout:g}s (serving {d.current or 'nothing'}) {why}".rstrip()
                )
            time.sleep(self.poll_interval)

    def rollback(
        self,
        deployment: str,
        to: str | int | None = None,
        *,
        wait: bool = False,
        timeout: float = 300,
    ) -> Deployment:
        """Point ``deployment`` back at ``to`` (a version name or number), or at the
        previous version that rolled out successfully there (status.history), and hold it
        there (annotation modelreg.dev/rollback-to) until :meth:`release` or a spec
        change."""
        d = self.deployment(deployment)
        if to is None:
            current = d.current
            prev = next(
                (
                    h.name
                    for h in d.status.history
                    if h.result == RolloutResult.SUCCEEDED and h.name != current
                ),
                None,
            )
            if prev is None:
                raise NotFound(
                    f"ModelDeployment {deployment!r} has no earlier successful version to "
                    "roll back to; pass the version"
                )
            target = prev
        elif isinstance(to, int) or to.isdigit():
            target = self.get(f"{d.model}:{int(to)}").name
        else:
            target = self.get(to).name
        obj = self._patch(
            MD, deployment, {"metadata": {"annotations": {ann.ROLLBACK_TO: target}}}, "deployment"
        )
        if wait:
            return self.wait_deployed(deployment, version=target, timeout=timeout)
        return Deployment.from_api(obj)

    def release(self, deployment: str) -> Deployment:
        """Remove a manual rollback: the deployment follows its spec again."""
        return Deployment.from_api(
            self._patch(
                MD, deployment, {"metadata": {"annotations": {ann.ROLLBACK_TO: None}}}, "deployment"
            )
        )

    # --- audit -------------------------------------------------------------------------

    def history(self, model_or_deployment: str) -> list[HistoryEvent]:
        """The audit trail of a RegisteredModel (its versions and deployments) or of a
        ModelDeployment (its rollouts and the versions it ran), oldest first."""
        versions: list[Version]
        deployments: list[Deployment]
        if self._find(RM, model_or_deployment) is not None or self.versions(model_or_deployment):
            versions = self.versions(model_or_deployment)
            deployments = self.deployments(model_or_deployment)
        else:
            dep = self._find(MD, model_or_deployment)
            if dep is None:
                raise NotFound(
                    f"no RegisteredModel, versions or ModelDeployment named "
                    f"{model_or_deployment!r} in namespace {self.namespace!r}"
                )
            d = Deployment.from_api(dep)
            deployments = [d]
            ran = {h.name for h in d.status.history} | ({d.current} if d.current else set())
            versions = [v for v in self.versions(d.model) if v.name in ran]
        events: list[HistoryEvent] = []
        for v in versions:
            events.extend(version_events(v))
        for d in deployments:
            events.extend(deployment_events(d))
        # decisions and rollouts are recorded to the second: order by the second, then by
        # what must come first (a version is registered before it is decided or deployed)
        return sorted(
            events,
            key=lambda e: (
                _utc(e.time).replace(microsecond=0),
                _EVENT_ORDER.get(e.event, 9),
                _utc(e.time),
            ),
        )

    def where(self, version: str) -> list[Placement]:
        """The ModelDeployments that serve ``version`` now or are rolling out to it."""
        v = self.get(version)
        out = []
        for d in self.deployments(v.model):
            serving = d.current == v.name
            target = d.status.target_version is not None and d.status.target_version.name == v.name
            if serving or target:
                out.append(
                    Placement(
                        deployment=d.name,
                        namespace=d.namespace,
                        stage=d.spec.stage.value,
                        serving=serving,
                        target=target,
                        replicas=d.spec.replicas,
                    )
                )
        return out

    def lineage(self, dataset_uri: str) -> list[DatasetUse]:
        """The versions trained on ``dataset_uri`` (trailing '/' ignored) and where each
        runs now."""
        want = dataset_uri.rstrip("/")
        deployments = self.deployments()
        out = []
        for v in self.versions():
            for ds in v.spec.lineage.datasets:
                if ds.uri.rstrip("/") == want:
                    out.append(
                        DatasetUse(
                            version=v.name,
                            number=v.number,
                            model=v.model,
                            dataset=ds.name,
                            dataset_version=ds.version,
                            deployments=[
                                Placement(
                                    deployment=d.name,
                                    namespace=d.namespace,
                                    stage=d.spec.stage.value,
                                    serving=True,
                                    target=bool(
                                        d.status.target_version
                                        and d.status.target_version.name == v.name
                                    ),
                                    replicas=d.spec.replicas,
                                )
                                for d in deployments
                                if d.current == v.name
                            ],
                        )
                    )
                    break
        return out

    def compare(self, a: str, b: str) -> Comparison:
        """Metrics (with b - a), and the parameters and lineage that differ."""
        va, vb = self.get(a), self.get(b)
        return compare_versions(va, vb)


def _lineage_fields(v: Version) -> dict[str, str | None]:
    lin = v.spec.lineage
    return {
        "code.repository": lin.code.repository if lin.code else None,
        "code.commit": lin.code.commit if lin.code else None,
        "code.path": lin.code.path if lin.code else None,
        "trainingImage": lin.training_image,
        "run": f"{lin.run.system}:{lin.run.id}" if lin.run else None,
        "parentVersion": lin.parent_version,
        "datasets": ", ".join(
            sorted(
                f"{d.name}={d.uri}" + (f"@{d.version}" if d.version else "") for d in lin.datasets
            )
        )
        or None,
        "artifact.uri": v.spec.artifact.uri,
        "artifact.sha256": v.spec.artifact.sha256,
        "image": v.spec.image.reference,
        **{
            f"tags.{k}": val
            for k, val in v.spec.tags.items()
            if k.startswith(lineage_mod.TAG_PREFIX)
        },
    }


def compare_versions(va: Version, vb: Version) -> Comparison:
    ma, mb = va.spec.metrics, vb.spec.metrics
    metrics = [
        MetricDelta(
            name=k,
            a=ma.get(k),
            b=mb.get(k),
            delta=(mb[k] - ma[k]) if k in ma and k in mb else None,
        )
        for k in sorted(ma.keys() | mb.keys())
    ]
    pa, pb = va.spec.lineage.parameters, vb.spec.lineage.parameters
    parameters = [
        Difference(field=k, a=pa.get(k), b=pb.get(k))
        for k in sorted(pa.keys() | pb.keys())
        if pa.get(k) != pb.get(k)
    ]
    la, lb = _lineage_fields(va), _lineage_fields(vb)
    lineage = [
        Difference(field=k, a=la.get(k), b=lb.get(k))
        for k in sorted(la.keys() | lb.keys())
        if la.get(k) != lb.get(k)
    ]
    return Comparison(
        a=va.name,
        b=vb.name,
        a_number=va.number,
        b_number=vb.number,
        metrics=metrics,
        parameters=parameters,
        lineage=lineage,
    )


def version_events(v: Version) -> list[HistoryEvent]:
    def event(time: dt.datetime | None, kind: str, user: str | None, detail: str) -> HistoryEvent:
        return HistoryEvent(
            time=time,
            event=kind,
            subject=v.name,
            version=v.name,
            number=v.number,
            user=user,
            detail=detail,
        )

    out = [event(v.registered_at, "Registered", v.registered_by, v.spec.description or "")]
    decisions = v.status.approval.decisions or ann.decisions(v.annotations)
    for d in decisions:
        out.append(event(d.time, d.decision.value, d.user, d.comment))
    if v.archived:
        c = v.condition("Ready")
        when = c.last_transition_time if c is not None and c.reason == "Archived" else None
        out.append(
            event(
                when,
                "Archived",
                v.annotations.get(ann.ARCHIVED_BY),
                v.annotations.get(ann.ARCHIVE_COMMENT, ""),
            )
        )
    return out


_EVENT_ORDER = {
    "Registered": 0,
    "Approved": 1,
    "Rejected": 1,
    "Archived": 2,
    "Deploying": 3,
    "Deployed": 4,
    "DeploymentFailed": 5,
    "RolledBack": 6,
}

_ROLLOUT_EVENTS = {
    RolloutResult.SUCCEEDED: "Deployed",
    RolloutResult.FAILED: "DeploymentFailed",
    RolloutResult.ROLLED_BACK: "RolledBack",
    RolloutResult.IN_PROGRESS: "Deploying",
}


def deployment_events(d: Deployment) -> list[HistoryEvent]:
    """The rollouts of ``d``, oldest first. A rollout that went back to a lower version
    number than the one served before it is a rollback (manual, failed rollout or revoked
    approval: the RolledBack condition says which, for the latest one)."""
    out = []
    served: int | None = None
    rolled = d.condition("RolledBack")
    for h in reversed(d.status.history):  # stored newest first
        event = _ROLLOUT_EVENTS.get(h.result, h.result.value)
        detail = h.reason
        if h.result == RolloutResult.SUCCEEDED:
            if served is not None and h.number < served:
                event = "RolledBack"
                detail = detail or f"rolled back from #{served}"
            served = h.number
        out.append(
            HistoryEvent(
                time=h.time,
                event=event,
                subject=d.name,
                version=h.name,
                number=h.number,
                deployment=d.name,
                detail=detail,
            )
        )
    last_back = next((e for e in reversed(out) if e.event == "RolledBack"), None)
    if last_back is not None and rolled is not None and rolled.status == "True":
        last_back.detail = f"{rolled.reason}: {rolled.message}"
    return out
