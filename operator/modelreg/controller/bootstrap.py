"""What the operator sets up for itself at start-up, kept in Secrets of its namespace.

Both Secrets are created empty by the Helm chart and filled here, once: Helm and Argo CD
never render the values (a key generated at template time would change on every render),
and the operator needs no permission to create Secrets.

The approval-record key: 32 random bytes, generated when the Secret is empty.

The admission webhook's own TLS certificate, when no cert-manager provides one: the
operator keeps a CA and a serving certificate in a Secret, issues new ones when they are
missing, do not cover the service's names or expire within a year, and writes the CA into
the ``caBundle`` of the chart's webhook configurations so the API server trusts it.
Kept in a Secret, the certificate stays the same across restarts, so a restart never
leaves the API server trusting a CA the serving operator no longer uses.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelreg import pki

log = logging.getLogger(__name__)

#: Renew when less than this much validity is left (certificates are issued for 10 years).
RENEW_MARGIN = dt.timedelta(days=365)
CA_KEY, CERT_KEY, KEY_KEY = "ca.crt", "tls.crt", "tls.key"
RECORD_KEY = "record-key"


@dataclass(frozen=True)
class ServingFiles:
    """Where the serving certificate, its key and the CA were written for kopf's server."""

    cert_file: Path
    key_file: Path
    ca_file: Path | None


def _decode(data: Mapping[str, bytes | str] | None) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (data or {}).items()}


def _encode(values: Mapping[str, bytes]) -> dict[str, bytes | str]:
    return {k: base64.b64encode(v).decode("ascii") for k, v in values.items()}


def fill_secret(
    core: kubernetes.client.CoreV1Api,
    namespace: str,
    name: str,
    fill: Callable[[dict[str, bytes]], dict[str, bytes] | None],
) -> dict[str, bytes]:
    """The data of Secret ``name``, after ``fill`` had its say: ``fill`` gets the current
    data and returns None to keep it, or the data to store instead (written with
    optimistic concurrency; on a conflict it runs again on the newer data)."""
    while True:
        obj = core.read_namespaced_secret(name, namespace)
        data = _decode(obj.data)
        new = fill(data)
        if new is None:
            return data
        obj.data = _encode(new)
        try:
            # carries the resourceVersion read above: a concurrent writer makes this fail
            core.replace_namespaced_secret(name, namespace, obj)
        except ApiException as e:
            if e.status == 409:
                continue
            raise
        return new


def ensure_record_key(core: kubernetes.client.CoreV1Api, namespace: str, name: str) -> bytes:
    """The approval-record signing key kept in Secret ``name`` (generated once)."""

    def fill(data: dict[str, bytes]) -> dict[str, bytes] | None:
        if data.get(RECORD_KEY):
            return None
        log.info(f"generated the approval-record key into {name}")
        return {**data, RECORD_KEY: secrets.token_urlsafe(32).encode()}

    return fill_secret(core, namespace, name, fill)[RECORD_KEY]


def ensure_certificate(
    core: kubernetes.client.CoreV1Api,
    namespace: str,
    secret: str,
    names: tuple[str, ...],
    now: dt.datetime | None = None,
) -> tuple[bytes, pki.KeyPair]:
    """The CA certificate and serving key pair kept in ``secret``, issued anew when
    missing, not covering ``names``, or about to expire."""
    now = now or dt.datetime.now(dt.UTC)

    def fill(data: dict[str, bytes]) -> dict[str, bytes] | None:
        if all(k in data for k in (CA_KEY, CERT_KEY, KEY_KEY)):
            pair = pki.KeyPair(data[CERT_KEY], data[KEY_KEY])
            if pki.serves(pair, data[CA_KEY], names, now, RENEW_MARGIN):
                return None
        ca = pki.new_ca(f"modelreg webhook CA ({namespace})", now=now)
        dns, ips = pki.split_names(names)
        pair = pki.issue(ca, names[0], dns_names=dns, ip_addresses=ips, now=now)
        log.info(f"issued a webhook certificate for {', '.join(names)} into {secret}")
        return {CA_KEY: ca.cert_pem, CERT_KEY: pair.cert_pem, KEY_KEY: pair.key_pem}

    data = fill_secret(core, namespace, secret, fill)
    return data[CA_KEY], pki.KeyPair(data[CERT_KEY], data[KEY_KEY])


def write_files(ca_pem: bytes, pair: pki.KeyPair, directory: Path | None = None) -> ServingFiles:
    """Write the certificate files kopf's webhook server reads (a private temp dir by
    default: the operator's root filesystem is read-only, /tmp is an emptyDir)."""
    root = directory or Path(tempfile.mkdtemp(prefix="modelreg-webhook-"))
    (root / CERT_KEY).write_bytes(pair.cert_pem)
    (root / CA_KEY).write_bytes(ca_pem)
    (root / KEY_KEY).touch(mode=0o600)
    (root / KEY_KEY).write_bytes(pair.key_pem)
    return ServingFiles(root / CERT_KEY, root / KEY_KEY, root / CA_KEY)


def inject_ca_bundle(
    admission: kubernetes.client.AdmissionregistrationV1Api, configuration: str, ca_pem: bytes
) -> list[str]:
    """Set ``caBundle`` on every webhook of the Mutating- and ValidatingWebhookConfiguration
    named ``configuration`` (the Helm chart's); returns the webhooks patched."""
    bundle = base64.b64encode(ca_pem).decode("ascii")
    stale: list[str] = []
    for kind, read, patch_with in (
        (
            "MutatingWebhookConfiguration",
            admission.read_mutating_webhook_configuration,
            admission.patch_mutating_webhook_configuration,
        ),
        (
            "ValidatingWebhookConfiguration",
            admission.read_validating_webhook_configuration,
            admission.patch_validating_webhook_configuration,
        ),
    ):
        config = read(configuration)
        names = [w.name for w in config.webhooks or []]
        outdated = [w.name for w in config.webhooks or [] if w.client_config.ca_bundle != bundle]
        if outdated:
            # webhooks merge by name in a strategic merge patch: only caBundle changes
            patch = {"webhooks": [{"name": n, "clientConfig": {"caBundle": bundle}} for n in names]}
            patch_with(configuration, patch)
            log.info(f"wrote the webhook CA into {kind} {configuration} ({', '.join(outdated)})")
            stale += outdated
    return stale


def whoami(api: kubernetes.client.ApiClient) -> str:
    """The operator's own user name, as the API server authenticates it (and as admission
    requests name it): what only the operator may write is told apart by it."""
    review = kubernetes.client.AuthenticationV1Api(api).create_self_subject_review(
        kubernetes.client.V1SelfSubjectReview()
    )
    user = review.status.user_info if review.status else None
    if user is None or not user.username:
        raise RuntimeError("the API server did not say who the operator is (SelfSubjectReview)")
    return str(user.username)
