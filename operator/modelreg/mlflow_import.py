"""Import registered models and their versions from an MLflow tracking server.

Each MLflow registered model becomes a RegisteredModel and each of its versions a
ModelVersion, in one namespace. The import is idempotent: names are deterministic, an
object that already exists is left as it is (a ModelVersion's spec is immutable, and a
RegisteredModel's spec belongs to whoever manages it, e.g. GitOps) and reported as
``unchanged``; only what is missing is created.

Where each MLflow concept lands:

========================================  ==================================================
MLflow                                    modelreg
========================================  ==================================================
registered model name                     RegisteredModel ``metadata.name`` (DNS-1123:
                                          lowercased, other characters -> ``-``), and the
                                          original in tag ``mlflow.name``
registered model description              RegisteredModel ``spec.description``
registered model tags                     RegisteredModel ``spec.tags``
model version ``n``                       ModelVersion ``<model>-mlflow-<n>`` (tags
                                          ``mlflow.name``, ``mlflow.version``)
version ``source`` / download URI         ``spec.artifact.uri``: ``runs:/<run>/<path>`` and
                                          ``models:/<name>/<version>`` resolved to the run's
                                          artifact location; ``artifact_uri_map`` rewrites
                                          prefixes (``mlflow-artifacts:/`` -> ``s3://...``);
                                          anything not s3:// or https:// is skipped
version description                       ModelVersion ``spec.description``
version tags                              ModelVersion ``spec.tags``
aliases (``champion``)                    ModelVersion tag ``mlflow.alias/champion: "true"``
legacy stage (``Production``)             ModelVersion tag ``mlflow.stage``
run id (+ link)                           ``spec.lineage.run`` ``{system: mlflow, id, url}``
run params                                ``spec.lineage.parameters`` (string values)
run metrics (latest value of each)        ``spec.metrics``
run tags ``mlflow.source.git.repoURL`` /  ``spec.lineage.code`` ``{repository, commit,
``mlflow.source.git.commit`` /            path}``
``mlflow.source.name``
run dataset inputs                        ``spec.lineage.datasets`` (name, uri from the
                                          dataset source, digest as version)
(none: MLflow has no serving image)       ``spec.image.reference`` from the ``image`` argument
========================================  ==================================================

Bounds of the CRDs are respected deterministically: map keys that are not label-like
are rewritten (invalid characters -> ``_``), values are truncated, and maps beyond their
maximum size keep the first entries in sorted key order; every such change is listed in
the report's notes for that object. Non-finite metrics (NaN, inf) are dropped.

An artifact must be one object (a file or an archive): the operator verifies that the
object exists. A version whose source is a directory (what ``mlflow.<flavor>.log_model``
writes, and every MLflow 3 ``models:/m-...`` logged model) is skipped with a reason;
log the model as a single file or archive (``mlflow.log_artifact("model.tar.gz")``) and
register ``runs:/<run>/model.tar.gz`` instead.

``mlflow`` is imported lazily: it is needed only by :func:`import_registered_models`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

from pydantic import ValidationError

from modelreg.api.base import API_VERSION
from modelreg.api.model_version import ARTIFACT_URI, ModelVersionSpec
from modelreg.api.registered_model import RegisteredModelSpec

PLURAL_MODELS = "registeredmodels"
PLURAL_VERSIONS = "modelversions"

#: bounds of the CRDs (modelreg.api)
MAX_TAGS = 64
MAX_PARAMETERS = 128
MAX_METRICS = 128
MAX_KEY = 128
MAX_TAG_VALUE = 256
MAX_PARAMETER_VALUE = 1024
MAX_DESCRIPTION = 4096
MAX_DATASETS = 32
#: a model name leaves room for "-mlflow-<version>" within the 253 characters of a name
MAX_MODEL_NAME = 200

TAG_NAME = "mlflow.name"
TAG_VERSION = "mlflow.version"
TAG_STAGE = "mlflow.stage"
TAG_ALIAS = "mlflow.alias/"

_KEY_OK = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$")
_ARTIFACT_URI = re.compile(ARTIFACT_URI)
_COMMIT = re.compile(r"^[a-f0-9]{4,64}$")

Action = Literal["created", "unchanged", "skipped", "would-create"]


# --- MLflow data, as plain values (so the mapping is testable without a server) -----------


@dataclass(frozen=True)
class MlflowDataset:
    name: str
    source: str = ""
    digest: str = ""


@dataclass(frozen=True)
class MlflowRun:
    run_id: str
    artifact_uri: str = ""
    experiment_id: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    datasets: tuple[MlflowDataset, ...] = ()


@dataclass(frozen=True)
class MlflowVersion:
    version: str
    source: str
    run_id: str = ""
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    stage: str = "None"
    status: str = "READY"


@dataclass(frozen=True)
class MlflowModel:
    name: str
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    """alias -> version"""


# --- the report -------------------------------------------------------------------------


@dataclass
class ImportItem:
    kind: Literal["RegisteredModel", "ModelVersion"]
    name: str
    """The modelreg object's name (empty when no valid name could be made)."""
    mlflow_model: str
    mlflow_version: str | None
    action: Action
    reason: str = ""
    """Why it was skipped."""
    notes: list[str] = field(default_factory=list)
    """What had to be changed to fit the CRD's bounds."""
    artifact_uri: str | None = None


@dataclass
class ImportReport:
    namespace: str
    dry_run: bool = False
    items: list[ImportItem] = field(default_factory=list)

    def by_action(self, action: Action) -> list[ImportItem]:
        return [i for i in self.items if i.action == action]

    @property
    def created(self) -> list[ImportItem]:
        return self.by_action("created")

    @property
    def unchanged(self) -> list[ImportItem]:
        return self.by_action("unchanged")

    @property
    def skipped(self) -> list[ImportItem]:
        return self.by_action("skipped")

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "dryRun": self.dry_run,
            "summary": {
                a: len(self.by_action(a))
                for a in ("created", "unchanged", "skipped", "would-create")
            },
            "items": [
                {
                    "kind": i.kind,
                    "name": i.name,
                    "mlflowModel": i.mlflow_model,
                    "mlflowVersion": i.mlflow_version,
                    "action": i.action,
                    "reason": i.reason,
                    "notes": i.notes,
                    "artifactUri": i.artifact_uri,
                }
                for i in self.items
            ],
        }


class _Refused(Exception):
    """The API server refused an object (invalid, denied by admission, forbidden)."""


class SkipVersion(Exception):
    """This version cannot be imported (the message says why)."""


# --- pure mapping -----------------------------------------------------------------------


def dns_name(name: str, max_length: int = MAX_MODEL_NAME) -> str:
    """A DNS-1123 name for an MLflow name: lowercase, runs of other characters -> "-".

    Deterministic; a name that had to be shortened gets a hash suffix so that two long
    names with the same beginning stay apart. Empty if nothing usable is left.
    """
    s = re.sub(r"[^a-z0-9.-]+", "-", name.lower())
    s = re.sub(r"-{2,}", "-", s)
    s = re.sub(r"\.{2,}", ".", s)
    s = re.sub(r"(^[^a-z0-9]+|[^a-z0-9]+$)", "", s)
    if len(s) > max_length:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        s = s[: max_length - 9].rstrip(".-") + "-" + digest
    return s


def version_name(model: str, version: str) -> str:
    """The ModelVersion name of MLflow version ``version`` of RegisteredModel ``model``."""
    return f"{model}-mlflow-{version}"


def map_key(key: str) -> str:
    """A map key the CRDs accept (label-like, at most 128 characters), or "" if none."""
    k = re.sub(r"[^-A-Za-z0-9_./]", "_", key)[:MAX_KEY]
    k = re.sub(r"(^[^A-Za-z0-9]+|[^A-Za-z0-9]+$)", "", k)
    return k if _KEY_OK.match(k) else ""


def bounded_map(
    what: str,
    values: Mapping[str, Any],
    max_items: int,
    max_value: int | None,
    notes: list[str],
) -> dict[str, Any]:
    """``values`` within the bounds of a CRD map: keys made label-like, string values
    truncated to ``max_value``, at most ``max_items`` entries (the first in sorted key
    order). Each change is appended to ``notes``."""
    out: dict[str, Any] = {}
    renamed, truncated, invalid = [], [], []
    for key in sorted(values):
        value = values[key]
        k = map_key(key)
        if not k:
            invalid.append(key)
            continue
        if k in out:
            invalid.append(key)  # collides with an earlier key after rewriting
            continue
        if k != key:
            renamed.append(f"{key!r}->{k!r}")
        if max_value is not None:
            value = str(value)
            if len(value) > max_value:
                value = value[:max_value]
                truncated.append(k)
        out[k] = value
    if renamed:
        notes.append(f"{what}: keys rewritten {', '.join(renamed)}")
    if invalid:
        notes.append(f"{what}: dropped keys that cannot be map keys: {invalid}")
    if truncated:
        notes.append(f"{what}: values truncated to {max_value} characters: {truncated}")
    if len(out) > max_items:
        dropped = sorted(out)[max_items:]
        notes.append(f"{what}: {len(out)} entries, kept the first {max_items}, dropped {dropped}")
        out = {k: out[k] for k in sorted(out)[:max_items]}
    return out


def merge_tags(*maps: Mapping[str, str]) -> dict[str, str]:
    """Later maps win."""
    out: dict[str, str] = {}
    for m in maps:
        out.update(m)
    return out


def rewrite_uri(uri: str, artifact_uri_map: Mapping[str, str] | None) -> str:
    """``uri`` with the longest matching prefix of ``artifact_uri_map`` replaced."""
    for prefix in sorted(artifact_uri_map or {}, key=len, reverse=True):
        if uri.startswith(prefix):
            return (artifact_uri_map or {})[prefix] + uri[len(prefix) :]
    return uri


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + ("/" + path.strip("/") if path.strip("/") else "")


def resolve_artifact_uri(
    source: str,
    run: MlflowRun | None,
    artifact_uri_map: Mapping[str, str] | None = None,
) -> str:
    """The s3:// or https:// URI of a version's artifact (raises :class:`SkipVersion`).

    ``runs:/<id>/<path>`` is resolved against the run's artifact location (``run`` must
    be that run); ``models:/m-<id>`` (an MLflow 3 logged model, always a directory) is
    refused; everything else is taken as is. Then ``artifact_uri_map`` is applied, and
    the result must be an artifact URI modelreg accepts.
    """
    uri = source
    if source.startswith("runs:/"):
        rest = source[len("runs:/") :].lstrip("/")
        run_id, _, path = rest.partition("/")
        if run is None or run.run_id != run_id or not run.artifact_uri:
            raise SkipVersion(f"cannot resolve {source}: run {run_id} not found")
        uri = _join(run.artifact_uri, path)
    elif source.startswith("models:/"):
        raise SkipVersion(
            f"source {source} is an MLflow logged model (a directory); modelreg artifacts are "
            "one object: log the model as one file or archive and register runs:/<run>/<file>"
        )
    uri = rewrite_uri(uri, artifact_uri_map)
    if not _ARTIFACT_URI.match(uri) or len(uri) > 2048:
        hint = (
            " (map it with --map-artifacts mlflow-artifacts:/=s3://<bucket>/<prefix>/)"
            if uri.startswith("mlflow-artifacts:")
            else ""
        )
        raise SkipVersion(f"artifact {uri} is not an s3:// or https:// URI{hint}")
    return uri


def run_url(tracking_uri: str, run: MlflowRun) -> str | None:
    """The link to the run in the MLflow UI, for an http(s) tracking server."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    return f"{tracking_uri.rstrip('/')}/#/experiments/{run.experiment_id}/runs/{run.run_id}"


def _code(tags: Mapping[str, str]) -> dict[str, str] | None:
    repository = tags.get("mlflow.source.git.repoURL") or tags.get("mlflow.gitRepoURL")
    if not repository:
        return None
    code = {"repository": repository[:2048]}
    commit = tags.get("mlflow.source.git.commit", "").lower()
    if _COMMIT.match(commit):
        code["commit"] = commit
    if tags.get("mlflow.source.name"):
        code["path"] = tags["mlflow.source.name"][:1024]
    return code


def _datasets(datasets: Iterable[MlflowDataset], notes: list[str]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for d in datasets:
        uri = d.source
        try:  # MLflow stores the source as JSON: {"uri": ...} or {"url": ...}
            parsed = json.loads(d.source)
            if isinstance(parsed, dict):
                uri = str(parsed.get("uri") or parsed.get("url") or parsed.get("path") or "")
        except ValueError:
            pass
        if not re.match(r"^[a-z][a-z0-9+.-]*://[^\s]+$", uri) or len(uri) > 2048:
            notes.append(f"dataset {d.name!r}: source is not a URI, left out")
            continue
        item = {"name": d.name[:MAX_TAG_VALUE], "uri": uri}
        if d.digest:
            item["version"] = d.digest[:MAX_TAG_VALUE]
        out.append(item)
    if len(out) > MAX_DATASETS:
        notes.append(f"datasets: {len(out)}, kept the first {MAX_DATASETS}")
        out = out[:MAX_DATASETS]
    return out


def _minimal(spec: RegisteredModelSpec | ModelVersionSpec) -> dict[str, Any]:
    """The validated spec as the API expects it, with only the fields the import set (the
    API server fills in the defaults)."""
    return spec.model_dump(by_alias=True, exclude_none=True, exclude_unset=True, mode="json")


def registered_model_spec(model: MlflowModel, notes: list[str]) -> dict[str, Any]:
    """The RegisteredModel spec (camelCase, validated) for an MLflow registered model."""
    tags = bounded_map(
        "tags", merge_tags(model.tags, {TAG_NAME: model.name}), MAX_TAGS, MAX_TAG_VALUE, notes
    )
    spec: dict[str, Any] = {"tags": tags}
    if model.description:
        if len(model.description) > MAX_DESCRIPTION:
            notes.append(f"description truncated to {MAX_DESCRIPTION} characters")
        spec["description"] = model.description[:MAX_DESCRIPTION]
    return _minimal(RegisteredModelSpec.model_validate(spec))


def model_version_spec(
    model: MlflowModel,
    model_name: str,
    version: MlflowVersion,
    run: MlflowRun | None,
    *,
    image: str,
    tracking_uri: str = "",
    artifact_uri_map: Mapping[str, str] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """The ModelVersion spec (camelCase, validated) for an MLflow model version of
    RegisteredModel ``model_name``; raises :class:`SkipVersion` if it cannot be imported."""
    notes = notes if notes is not None else []
    if version.status and version.status.upper() != "READY":
        raise SkipVersion(f"MLflow version status is {version.status}, not READY")
    uri = resolve_artifact_uri(version.source, run, artifact_uri_map)

    aliases = set(version.aliases) | {a for a, v in model.aliases.items() if v == version.version}
    system_tags = {TAG_NAME: model.name, TAG_VERSION: version.version}
    if version.stage and version.stage != "None":
        system_tags[TAG_STAGE] = version.stage
    for alias in sorted(aliases):
        system_tags[TAG_ALIAS + alias] = "true"
    # the importer's own tags go first so that bounding the map never drops them
    own = bounded_map("tags", system_tags, MAX_TAGS, MAX_TAG_VALUE, notes)
    user = {k: v for k, v in version.tags.items() if map_key(k) not in own}
    rest = bounded_map("tags", user, MAX_TAGS - len(own), MAX_TAG_VALUE, notes)
    spec: dict[str, Any] = {
        "modelRef": {"name": model_name},
        "artifact": {"uri": uri},
        "image": {"reference": image},
        "tags": {**own, **rest},
    }
    if version.description:
        if len(version.description) > MAX_DESCRIPTION:
            notes.append(f"description truncated to {MAX_DESCRIPTION} characters")
        spec["description"] = version.description[:MAX_DESCRIPTION]
    if run is not None:
        lineage: dict[str, Any] = {
            "run": {"system": "mlflow", "id": run.run_id[:MAX_TAG_VALUE]},
            "parameters": bounded_map(
                "parameters", run.params, MAX_PARAMETERS, MAX_PARAMETER_VALUE, notes
            ),
        }
        url = run_url(tracking_uri, run)
        if url and len(url) <= 2048:
            lineage["run"]["url"] = url
        if code := _code(run.tags):
            lineage["code"] = code
        if datasets := _datasets(run.datasets, notes):
            lineage["datasets"] = datasets
        spec["lineage"] = lineage
        finite = {k: float(v) for k, v in run.metrics.items() if math.isfinite(float(v))}
        if len(finite) < len(run.metrics):
            notes.append(
                f"metrics: non-finite values dropped: {sorted(set(run.metrics) - set(finite))}"
            )
        spec["metrics"] = bounded_map("metrics", finite, MAX_METRICS, None, notes)
    try:
        return _minimal(ModelVersionSpec.model_validate(spec))
    except ValidationError as e:
        raise SkipVersion(f"does not fit the ModelVersion schema: {e}") from e


def manifest(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A full object (no labels or annotations: system annotations are refused)."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


# --- reading MLflow ---------------------------------------------------------------------


def _model_from_entity(rm: Any) -> MlflowModel:  # noqa: ANN401 (an mlflow entity)
    return MlflowModel(
        name=rm.name,
        description=rm.description or "",
        tags=dict(rm.tags or {}),
        aliases={str(k): str(v) for k, v in (rm.aliases or {}).items()},
    )


def _version_from_entity(mv: Any) -> MlflowVersion:  # noqa: ANN401 (an mlflow entity)
    return MlflowVersion(
        version=str(mv.version),
        source=mv.source or "",
        run_id=mv.run_id or "",
        description=mv.description or "",
        tags=dict(mv.tags or {}),
        aliases=tuple(mv.aliases or ()),
        stage=mv.current_stage or "None",
        status=mv.status or "READY",
    )


def _run_from_entity(run: Any) -> MlflowRun:  # noqa: ANN401 (an mlflow entity)
    datasets: list[MlflowDataset] = []
    for d in getattr(getattr(run, "inputs", None), "dataset_inputs", None) or []:
        ds = d.dataset
        datasets.append(MlflowDataset(ds.name or "", ds.source or "", ds.digest or ""))
    return MlflowRun(
        run_id=run.info.run_id,
        artifact_uri=run.info.artifact_uri or "",
        experiment_id=str(run.info.experiment_id),
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        tags=dict(run.data.tags),
        datasets=tuple(datasets),
    )


def _is_directory(client: Any, version: MlflowVersion, run: MlflowRun | None) -> bool:  # noqa: ANN401
    """Best effort: whether the version's run-relative source is a directory (MLflow lists
    children for a directory and nothing for a file). False when it cannot tell."""
    if run is None or not version.source.startswith("runs:/"):
        return False
    path = version.source[len("runs:/") :].lstrip("/").partition("/")[2].strip("/")
    if not path:
        return True  # the whole run's artifact root
    try:
        return bool(client.list_artifacts(run.run_id, path))
    except Exception:  # no access to the artifact store: cannot tell
        return False


def _refuse_directory(client: Any, version: MlflowVersion, run: MlflowRun | None) -> None:  # noqa: ANN401
    if _is_directory(client, version, run):
        raise SkipVersion(
            f"source {version.source} is a directory; modelreg artifacts are one object: log "
            "the model as one file or archive and register runs:/<run>/<file>"
        )


def _all_models(client: Any, names: Iterable[str] | None) -> list[Any]:  # noqa: ANN401
    if names:
        return [client.get_registered_model(n) for n in names]
    models: list[Any] = []
    token: str | None = None
    while True:
        page = client.search_registered_models(max_results=100, page_token=token)
        models.extend(page)
        token = page.token
        if not token:
            return models


def _all_versions(client: Any, name: str) -> list[Any]:  # noqa: ANN401
    escaped = name.replace("\\", "\\\\").replace("'", "\\'")
    versions: list[Any] = []
    token: str | None = None
    while True:
        page = client.search_model_versions(f"name='{escaped}'", page_token=token)
        versions.extend(page)
        token = page.token
        if not token:
            return sorted(versions, key=lambda v: int(v.version))


# --- the import -------------------------------------------------------------------------


def import_registered_models(
    tracking_uri: str,
    *,
    namespace: str,
    image: str,
    names: Iterable[str] | None = None,
    kube_api: Any = None,  # noqa: ANN401 (kubernetes.client.ApiClient, untyped)
    artifact_uri_map: Mapping[str, str] | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import MLflow registered models (all, or ``names``) and their versions into
    ``namespace``. Creates what is missing, leaves what exists, reports both and what was
    skipped and why. ``kube_api``: a kubernetes ``ApiClient`` (default: in-cluster
    configuration, else the kubeconfig). ``dry_run``: read only, report ``would-create``.
    """
    import kubernetes
    import mlflow
    from kubernetes.client.exceptions import ApiException

    from modelreg.api.base import GROUP, VERSION

    if kube_api is None:
        from modelreg.kube import load_client

        kube_api = load_client()
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    report = ImportReport(namespace=namespace, dry_run=dry_run)

    def get(plural: str, name: str) -> dict[str, Any] | None:
        try:
            obj = cast(
                dict[str, Any],
                custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name),
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return obj

    def create(plural: str, body: dict[str, Any]) -> Action:
        if dry_run:
            return "would-create"
        for attempt in range(5):
            try:
                custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
            except ApiException as e:
                if e.status == 409:  # our earlier attempt, or a concurrent import
                    return "created" if attempt else "unchanged"
                transient = e.status is None or e.status >= 500 or e.status == 429
                if transient and attempt < 4:  # e.g. a webhook call that failed: retry
                    time.sleep(0.5 * 2**attempt)
                    continue
                if transient:
                    raise  # unavailable: stop; a re-run resumes where this one stopped
                raise _Refused(api_error(e)) from e
            return "created"
        raise AssertionError("unreachable")

    def api_error(e: ApiException) -> str:
        try:
            return str(json.loads(e.body or "").get("message") or e.reason)
        except (TypeError, ValueError):
            return str(e.reason)

    runs: dict[str, MlflowRun | None] = {}

    def run_of(run_id: str) -> MlflowRun | None:
        if run_id and run_id not in runs:
            try:
                runs[run_id] = _run_from_entity(client.get_run(run_id))
            except mlflow.exceptions.MlflowException:
                runs[run_id] = None  # deleted run: the version keeps what it has
        return runs.get(run_id)

    seen: dict[str, str] = {}  # modelreg name -> MLflow name, to catch collisions
    for entity in _all_models(client, names):
        model = _model_from_entity(entity)
        name = dns_name(model.name)
        notes: list[str] = []
        if name != model.name:
            notes.append(f"name {model.name!r} -> {name!r}")
        item = ImportItem("RegisteredModel", name, model.name, None, "skipped", notes=notes)
        report.items.append(item)
        if not name:
            item.reason = "no valid Kubernetes name can be made from the MLflow name"
            continue
        if name in seen:
            item.reason = f"{name} is already the name of MLflow model {seen[name]!r}"
            continue
        seen[name] = model.name
        spec = registered_model_spec(model, notes)
        existing = get(PLURAL_MODELS, name)
        if existing is not None:
            origin = ((existing.get("spec") or {}).get("tags") or {}).get(TAG_NAME)
            if origin is not None and origin != model.name:
                item.reason = f"{name} exists and was imported from MLflow model {origin!r}"
                continue
            item.action = "unchanged"
        else:
            try:
                item.action = create(
                    PLURAL_MODELS, manifest("RegisteredModel", name, namespace, spec)
                )
            except _Refused as e:
                item.reason = f"refused by the API server: {e}"
                continue

        for mv_entity in _all_versions(client, model.name):
            version = _version_from_entity(mv_entity)
            mv_name = version_name(name, version.version)
            v_notes: list[str] = []
            v_item = ImportItem(
                "ModelVersion", mv_name, model.name, version.version, "skipped", notes=v_notes
            )
            report.items.append(v_item)
            existing_mv = get(PLURAL_VERSIONS, mv_name)
            if existing_mv is not None:
                ref = ((existing_mv.get("spec") or {}).get("modelRef") or {}).get("name")
                v_item.artifact_uri = ((existing_mv.get("spec") or {}).get("artifact") or {}).get(
                    "uri"
                )
                if ref != name:
                    v_item.reason = f"{mv_name} exists and is a version of {ref!r}"
                else:
                    v_item.action = "unchanged"
                continue
            run = run_of(version.run_id)
            if version.source.startswith("runs:/"):
                run = run_of(version.source[len("runs:/") :].lstrip("/").partition("/")[0])
            try:
                if version.source.startswith("models:/") and not version.source.startswith(
                    "models:/m-"
                ):
                    # models:/<name>/<version>: a copy of another version; take its source
                    download = client.get_model_version_download_uri(model.name, version.version)
                    version = replace(version, source=download)
                _refuse_directory(client, version, run)
                spec = model_version_spec(
                    model,
                    name,
                    version,
                    run,
                    image=image,
                    tracking_uri=tracking_uri,
                    artifact_uri_map=artifact_uri_map,
                    notes=v_notes,
                )
            except SkipVersion as e:
                v_item.reason = str(e)
                continue
            v_item.artifact_uri = spec["artifact"]["uri"]
            try:
                v_item.action = create(
                    PLURAL_VERSIONS, manifest("ModelVersion", mv_name, namespace, spec)
                )
            except _Refused as e:
                v_item.reason = f"refused by the API server: {e}"
    return report
