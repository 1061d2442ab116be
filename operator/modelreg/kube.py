"""Kubernetes API I/O for the operator (the only module that talks to the API server).

Turns ``ApiException`` into ``None`` (not found), :class:`Conflict` (optimistic
concurrency lost) or lets other errors through for kopf to retry.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelreg.api.base import GROUP, VERSION

Obj = dict[str, Any]
log = logging.getLogger(__name__)
#: connections kept to the API server per client
POOL_SIZE = 32
#: the field manager of what the operator writes to Deployments and Services
FIELD_MANAGER = "modelreg"


def load_client() -> kubernetes.client.ApiClient:
    """A client configured in-cluster (service account) or else from the kubeconfig, for
    the moments before kopf has logged in (start-up)."""
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    return kubernetes.client.ApiClient()


def _namespace_terminating(e: ApiException) -> bool:
    return e.status == 403 and "NamespaceTerminating" in str(e.body)


class Index(Protocol):
    """Objects already seen by the operator's watches (controller/cache.py)."""

    def versions_of(self, namespace: str, model: str) -> list[Obj] | None: ...

    def deployments_in(self, namespace: str) -> list[Obj] | None: ...

    def model(self, namespace: str, name: str) -> Obj | None: ...


class Conflict(Exception):
    """The object changed since it was read (HTTP 409)."""


class Kube:
    """A small facade over the kubernetes client, for modelreg's objects and workloads."""

    def __init__(
        self,
        api: kubernetes.client.ApiClient | None = None,
        index: Index | None = None,
        on_write: Callable[[Obj], None] | None = None,
    ) -> None:
        if api is None:
            config = kubernetes.client.Configuration.get_default_copy()
            # one connection per thread that may call at once (kopf's executor, the webhooks'
            # pool): urllib3 closes what does not fit, and each new one is a TLS handshake
            config.connection_pool_maxsize = POOL_SIZE
            api = kubernetes.client.ApiClient(config)
        self.api = api
        #: what the watches have seen, for the list reads (None: list from the API server)
        self.index = index
        #: told of every status this client writes (the object as written)
        self.on_write = on_write
        self.custom = kubernetes.client.CustomObjectsApi(self.api)
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.apps = kubernetes.client.AppsV1Api(self.api)

    # --- modelreg objects ----------------------------------------------------------------

    def get(self, plural: str, namespace: str, name: str) -> Obj | None:
        try:
            obj = cast(
                Obj,
                self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name),
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return obj

    def model(self, namespace: str, name: str) -> Obj | None:
        """A RegisteredModel to read (never to write back): as the watches last saw it,
        or from the API server if they have not seen it."""
        if self.index is not None and (seen := self.index.model(namespace, name)) is not None:
            return seen
        return self.get("registeredmodels", namespace, name)

    def list_objects(self, plural: str, namespace: str) -> list[Obj]:
        if plural == "modeldeployments" and self.index is not None:
            seen = self.index.deployments_in(namespace)
            if seen is not None:
                return seen
        result = cast(
            Obj, self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        )
        return cast(list[Obj], result["items"])

    def versions_of(self, namespace: str, model: str) -> Iterator[Obj]:
        if self.index is not None:
            seen = self.index.versions_of(namespace, model)
            if seen is not None:
                yield from seen
                return
        for mv in self.list_objects("modelversions", namespace):
            if mv.get("spec", {}).get("modelRef", {}).get("name") == model:
                yield mv

    def patch_status(self, plural: str, namespace: str, name: str, status: Obj) -> Obj | None:
        """Merge-patch ``status``; None if the object is gone."""
        try:
            obj = cast(
                Obj,
                self.custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, namespace, plural, name, {"status": status}
                ),
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        if self.on_write is not None:
            self.on_write(obj)
        return obj

    def annotate(
        self, plural: str, namespace: str, name: str, annotations: dict[str, str | None]
    ) -> str | None:
        """Merge-patch annotations (None removes), through admission; the API server's
        refusal message if it refused, None when done (or when the object is gone)."""
        patch = {"metadata": {"annotations": annotations}}
        try:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, patch
            )
        except ApiException as e:
            if e.status == 404:
                return None
            if e.status in (400, 403, 422):
                try:
                    return str(json.loads(e.body or "{}").get("message", e.body))
                except (TypeError, ValueError, AttributeError):
                    return str(e.body)
            raise
        return None

    # --- secrets -----------------------------------------------------------------------

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes | str] | None:
        """The (base64) data of a Secret, None if it does not exist."""
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return dict(secret.data or {})

    # --- configmaps: the operator's own records, in its own namespace -----------------

    def get_configmap(self, namespace: str, name: str, timeout: float) -> Obj | None:
        """A ConfigMap (None if it does not exist), waited on at most ``timeout`` seconds."""
        try:
            obj = self.core.read_namespaced_config_map(name, namespace, _request_timeout=timeout)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return self._plain(obj)

    def create_configmap(self, obj: Obj, timeout: float) -> Obj:
        """Create ``obj``; :class:`Conflict` if one of its name exists already."""
        try:
            out = self.core.create_namespaced_config_map(
                obj["metadata"]["namespace"],
                obj,  # type: ignore[arg-type]
                _request_timeout=timeout,
            )
        except ApiException as e:
            if e.status == 409:
                raise Conflict(obj["metadata"]["name"]) from e
            raise
        return self._plain(out)

    def replace_configmap(self, obj: Obj, timeout: float) -> Obj:
        """Replace ``obj`` only if its resourceVersion is still current; Conflict if it
        changed, or is gone, since it was read."""
        meta = obj["metadata"]
        try:
            out = self.core.replace_namespaced_config_map(
                meta["name"],
                meta["namespace"],
                obj,  # type: ignore[arg-type]
                _request_timeout=timeout,
            )
        except ApiException as e:
            if e.status in (404, 409):
                raise Conflict(meta["name"]) from e
            raise
        return self._plain(out)

    # --- authorization -----------------------------------------------------------------

    def allowed(
        self,
        user: Obj,
        namespace: str,
        verb: str,
        group: str,
        resource: str,
        name: str = "",
    ) -> bool:
        """Whether ``user`` (an admission request's userInfo) may ``verb`` the resource in
        ``namespace``, as the API server's authorizers answer a SubjectAccessReview."""
        attributes = {"namespace": namespace, "verb": verb, "group": group, "resource": resource}
        spec: Obj = {
            "user": user.get("username", ""),
            "groups": list(user.get("groups") or []),
            "resourceAttributes": attributes | ({"name": name} if name else {}),
        }
        if user.get("uid"):
            spec["uid"] = user["uid"]
        if user.get("extra"):
            spec["extra"] = {k: list(v) for k, v in user["extra"].items()}
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
        }
        result = kubernetes.client.AuthorizationV1Api(self.api).create_subject_access_review(
            review  # type: ignore[arg-type]
        )
        return bool(result.status and result.status.allowed)

    def post_event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about ``obj``, from outside a kopf handler (best effort)."""
        meta = obj["metadata"]
        now = dt.datetime.now(dt.UTC)
        event = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "modelreg"},
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
        }
        try:
            self.core.create_namespaced_event(meta["namespace"], event)  # type: ignore[arg-type]
        except ApiException as e:
            if _namespace_terminating(e) or e.status == 404:
                return  # the namespace is going or gone: nobody will read the Event
            log.exception(f"could not post the {reason} Event on {meta['name']}")

    def dockerconfigs(self, namespace: str, names: list[str]) -> tuple[list[Obj], list[str]]:
        """The ``.dockerconfigjson`` documents of the named Secrets, and the names missing."""
        configs, missing = [], []
        for name in names:
            raw = (self.secret_data(namespace, name) or {}).get(".dockerconfigjson")
            try:
                config = json.loads(base64.b64decode(raw)) if raw else None
            except ValueError:  # not base64, or not JSON: as good as no Secret
                config = None
            if isinstance(config, dict):
                configs.append(config)
            else:
                missing.append(name)
        return configs, missing

    # --- workloads -----------------------------------------------------------------------

    def _plain(self, model: object) -> Obj:
        """A client model object as the API's own JSON (camelCase dicts)."""
        return cast(Obj, self.api.sanitize_for_serialization(model))  # type: ignore[no-untyped-call]

    def _read(self, read: Callable[[str, str], object], namespace: str, name: str) -> Obj | None:
        """A built-in object (None when there is none)."""
        try:
            return self._plain(read(name, namespace))
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def get_deployment(self, namespace: str, name: str) -> Obj | None:
        return self._read(self.apps.read_namespaced_deployment, namespace, name)

    def get_service(self, namespace: str, name: str) -> Obj | None:
        return self._read(self.core.read_namespaced_service, namespace, name)

    def pods(self, namespace: str, selector: str) -> list[Obj]:
        items = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        return [self._plain(p) for p in items]

    def apply(self, obj: Obj) -> Obj | None:
        """Server-side apply ``obj`` as field manager ``modelreg``: the fields it sets are
        put back if edited by hand (fields only others set stay: see restore_spec). The
        object as applied; None when its namespace is terminating."""
        meta = obj["metadata"]
        kwargs: dict[str, Any] = {
            "field_manager": FIELD_MANAGER,
            "force": True,
            "_content_type": "application/apply-patch+yaml",
        }
        try:
            if obj["kind"] == "Deployment":
                out: object = self.apps.patch_namespaced_deployment(
                    meta["name"], meta["namespace"], obj, **kwargs
                )
            elif obj["kind"] == "Service":
                out = self.core.patch_namespaced_service(
                    meta["name"], meta["namespace"], obj, **kwargs
                )
            else:
                raise ValueError(f"cannot apply a {obj['kind']}")
        except ApiException as e:
            if _namespace_terminating(e):
                # the ModelDeployment goes with its namespace: nothing left to serve
                log.info(
                    f"not applying {obj['kind']} {meta['name']}: {meta['namespace']} is terminating"
                )
                return None
            raise
        return self._plain(out)

    def restore_spec(self, live: Obj, spec: Obj) -> bool:
        """Replace the whole spec of Deployment ``live`` by ``spec`` if the API server would
        make something else of it than what ``live`` holds (a container, volume or
        setting added by hand); whether it was replaced. A server-side dry run tells,
        with the API server's defaults filled in, so an unchanged Deployment is not
        written. False as well if ``live`` changed meanwhile (its event reconciles
        again)."""
        meta = live["metadata"]
        body = {**live, "spec": spec}
        body["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
        try:
            dry = self.apps.replace_namespaced_deployment(
                meta["name"],
                meta["namespace"],
                body,  # type: ignore[arg-type]
                dry_run="All",
                field_manager=FIELD_MANAGER,
            )
            if self._plain(dry)["spec"] == live["spec"]:
                return False
            self.apps.replace_namespaced_deployment(
                meta["name"],
                meta["namespace"],
                body,  # type: ignore[arg-type]
                field_manager=FIELD_MANAGER,
            )
        except ApiException as e:
            if e.status in (404, 409) or _namespace_terminating(e):
                return False
            raise
        return True

    def scale_to_zero(self, namespace: str, name: str) -> None:
        """Scale a Deployment to zero through its scale subresource (template untouched)."""
        try:
            self.apps.patch_namespaced_deployment_scale(
                name, namespace, {"spec": {"replicas": 0}}, field_manager=FIELD_MANAGER
            )
        except ApiException as e:
            if e.status != 404 and not _namespace_terminating(e):
                raise
