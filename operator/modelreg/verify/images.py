"""Image resolution: tag to digest through the OCI distribution API.

HEAD ``/v2/<repository>/manifests/<tag>`` with the Docker v2 and OCI manifest and index
media types; anonymous, then basic or bearer-token auth as the registry's
``WWW-Authenticate`` asks, with credentials from the version's pull secrets
(``.dockerconfigjson``). Loopback registries (and any listed in
``MODELREG_INSECURE_REGISTRIES``) are spoken to over plain HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx

from modelreg.verify import http
from modelreg.verify.verdict import Verdict

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
DOCKER_HUB = "docker.io"
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference."""

    registry: str  # host[:port]
    repository: str
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def pinned(self, digest: str) -> str:
        host = "docker.io" if self.registry == DOCKER_HUB else self.registry
        return f"{host}/{self.repository}@{digest}"


def parse_reference(ref: str) -> ImageRef:
    """Split ``[registry/]repository[:tag][@digest]`` (Docker's normalisation rules)."""
    name, _, digest = ref.partition("@")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
    tag = None
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if digest and not _DIGEST.match(digest):
        raise ValueError(f"{ref!r}: digest must be sha256:<64 hex digits>")
    return ImageRef(registry, path, tag if tag or digest else "latest", digest or None)


def credentials_for(
    registry: str, dockerconfigs: Iterable[Mapping[str, object]]
) -> tuple[str, str] | None:
    """Username and password for ``registry`` from ``.dockerconfigjson`` documents."""
    for config in dockerconfigs:
        auths = config.get("auths", {})
        if not isinstance(auths, Mapping):
            continue
        for host, entry in auths.items():
            normalized = re.sub(r"^https?://", "", str(host)).split("/")[0]
            if normalized not in (registry, "index.docker.io" if registry == DOCKER_HUB else ""):
                continue
            if not isinstance(entry, Mapping):
                continue
            if entry.get("username") and entry.get("password"):
                return str(entry["username"]), str(entry["password"])
            if auth := entry.get("auth"):
                try:
                    decoded = base64.b64decode(str(auth), validate=True).decode()
                except ValueError:  # not base64, or not UTF-8: no credentials here
                    continue
                user, _, password = decoded.partition(":")
                return user, password
    return None


def _insecure(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    listed = {r.strip() for r in os.environ.get("MODELREG_INSECURE_REGISTRIES", "").split(",")}
    return host in ("localhost", "127.0.0.1", "::1") or registry in listed


def _base_url(ref: ImageRef) -> str:
    host = "registry-1.docker.io" if ref.registry == DOCKER_HUB else ref.registry
    return f"{'http' if _insecure(ref.registry) else 'https'}://{host}"


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, params = header.partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', params))


def resolve(
    client: httpx.Client, reference: str, credentials: tuple[str, str] | None = None
) -> Verdict:
    """Resolve ``reference`` to its manifest digest."""
    ref = parse_reference(reference)
    url = f"{_base_url(ref)}/v2/{ref.repository}/manifests/{ref.reference}"
    headers = {"Accept": ", ".join(MANIFEST_TYPES)}
    try:
        r = client.head(url, headers=headers)
        if r.status_code == 401:
            auth = _authorize(client, r.headers.get("WWW-Authenticate", ""), ref, credentials)
            if isinstance(auth, Verdict):
                return auth
            headers["Authorization"] = auth
            r = client.head(url, headers=headers)
        digest = r.headers.get("Docker-Content-Digest", "")
        if r.status_code == 200 and not digest:
            # some registries omit the header on HEAD: the digest is the manifest's hash
            # (only of a manifest: an error page hashes to a digest as well)
            r = client.get(url, headers=headers)
            digest = r.headers.get("Docker-Content-Digest", "") or (
                "sha256:" + hashlib.sha256(r.content).hexdigest()
            )
    except httpx.HTTPError as e:
        return Verdict.unknown("RegistryUnreachable", f"cannot reach {ref.registry}: {e}")
    return _verdict(r.status_code, ref, digest, reference, credentials is not None)


def _authorize(
    client: httpx.Client, header: str, ref: ImageRef, credentials: tuple[str, str] | None
) -> str | Verdict:
    scheme, params = _challenge(header)
    if scheme == "basic":
        if credentials is None:
            return Verdict.failed(
                "Unauthorized",
                f"{ref.registry} requires credentials: add a "
                "kubernetes.io/dockerconfigjson Secret to spec.image.pullSecrets",
            )
        basic = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        return f"Basic {basic}"
    if scheme == "bearer" and params.get("realm"):
        query = {
            "service": params.get("service", ""),
            "scope": params.get("scope", f"repository:{ref.repository}:pull"),
        }
        r = client.get(
            params["realm"],
            params=query,
            auth=httpx.BasicAuth(*credentials) if credentials else None,
        )
        if r.status_code in (401, 403):
            return Verdict.failed(
                "Unauthorized", f"the token service of {ref.registry} refused the credentials"
            )
        if r.status_code != 200:
            return Verdict.unknown(
                "RegistryUnavailable",
                f"the token service of {ref.registry} answered {r.status_code}",
            )
        token: object = None
        try:
            body = json.loads(r.content)
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):  # not JSON, or not an object
            pass
        if not token or not isinstance(token, str):
            return Verdict.unknown(
                "RegistryUnavailable",
                f"the token service of {ref.registry} answered 200 without a token "
                "(a JSON object with 'token' or 'access_token')",
            )
        return f"Bearer {token}"
    return Verdict.failed("Unauthorized", f"{ref.registry} asks for unsupported auth {header!r}")


def _verdict(
    status: int, ref: ImageRef, digest: str, reference: str, had_credentials: bool
) -> Verdict:
    if status == 200 and _DIGEST.match(digest):
        if ref.digest and digest != ref.digest:
            return Verdict.failed(
                "DigestMismatch", f"{reference} resolved to {digest}, not the pinned digest"
            )
        return Verdict.ok(
            "Resolved",
            f"{reference} resolved to {digest}",
            digest=digest,
            resolved=ref.pinned(digest),
        )
    if status == 404:
        return Verdict.failed(
            "ImageNotFound", f"{ref.registry} has no manifest {ref.reference!r} in {ref.repository}"
        )
    if status in (401, 403):
        hint = (
            "the credentials from spec.image.pullSecrets were refused"
            if had_credentials
            else "add a kubernetes.io/dockerconfigjson Secret to spec.image.pullSecrets"
        )
        return Verdict.failed("Unauthorized", f"{ref.registry} refused access: {hint}")
    return Verdict.unknown("RegistryUnavailable", f"{ref.registry} answered {status}")


def resolve_image(
    reference: str, dockerconfigs: Iterable[Mapping[str, object]] = (), timeout: float = 10.0
) -> Verdict:
    """Resolve with a fresh client and credentials picked from ``dockerconfigs``."""
    ref = parse_reference(reference)
    with http.client(timeout) as client:
        return resolve(client, reference, credentials_for(ref.registry, dockerconfigs))
