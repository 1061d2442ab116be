"""Integrity of the system-managed approval record (HMAC-SHA256).

The admission webhook signs what it writes (registrant, number, decisions) with a key
only the operator holds; the controller trusts the record only if the signature
matches. So a record written while the webhook was not installed (by anyone with update
rights on ModelVersions) is detected and does not count.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

from modelreg.api import annotations as ann

KEY_ENV = "MODELREG_RECORD_KEY"


def key_from_env() -> bytes | None:
    value = os.environ.get(KEY_ENV)
    return value.encode() if value else None


def _payload(namespace: str, model: str, annotations: Mapping[str, str]) -> bytes:
    # namespace, model and number name the version (numbers are never reused), so a record
    # cannot be copied to another version; the object name may not exist yet at admission
    # (generateName), which is why it is not part of it
    parts = [namespace, model] + [f"{k}={annotations.get(k, '')}" for k in ann.SIGNED]
    return "\n".join(parts).encode()


def sign(key: bytes, namespace: str, model: str, annotations: Mapping[str, str]) -> str:
    return hmac.new(key, _payload(namespace, model, annotations), hashlib.sha256).hexdigest()


def verify(key: bytes | None, namespace: str, model: str, annotations: Mapping[str, str]) -> bool:
    """Whether the record is the webhook's (always True when no key is configured)."""
    if key is None:
        return True
    given = annotations.get(ann.SIGNATURE, "")
    return hmac.compare_digest(given, sign(key, namespace, model, annotations))
