"""The SDK's exceptions: one base class, and one subclass per way a call can fail."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException


class ModelregError(Exception):
    """Base of every error the SDK raises on purpose."""


class Denied(ModelregError):
    """The API server refused the request: RBAC, or the admission webhook (whose text the
    message carries, e.g. "user 'eve' is not an approver of this model")."""


class NotFound(ModelregError):
    """The object does not exist (or the user may not see it)."""


class Invalid(ModelregError):
    """The request is malformed (schema or CEL validation, or a bad argument)."""


class Conflict(ModelregError):
    """The object exists already, or changed underneath the request."""


class VerificationFailed(ModelregError):
    """The operator could not verify the version: artifact or image (the condition's
    message says why)."""


class Timeout(ModelregError):
    """Waiting for the operator took longer than the timeout."""


class UploadFailed(ModelregError):
    """The artifact upload to S3 failed."""


def api_message(e: ApiException) -> str:
    """The API server's message for a failed request (the Status object's ``message``)."""
    body = e.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if body:
        try:
            message = json.loads(body).get("message")
        except (TypeError, ValueError, AttributeError):
            message = None
        if message:
            return str(message)
        return str(body)
    return f"{e.status} {e.reason}"


def from_api(e: ApiException, what: str = "") -> ModelregError:
    """The SDK error for an ``ApiException`` (``what`` names the object, for messages)."""
    message = api_message(e)
    prefix = f"{what}: " if what else ""
    if e.status == 404:
        return NotFound(f"{prefix}not found" + (f" ({message})" if what == "" else ""))
    if e.status in (401, 403):
        return Denied(f"{prefix}{message}")
    if e.status == 409:
        return Conflict(f"{prefix}{message}")
    if e.status in (400, 422):
        # admission webhooks deny with 400 ("admission webhook ... denied the request: ...")
        if "denied the request" in message or "forbidden" in message.lower():
            return Denied(f"{prefix}{message}")
        return Invalid(f"{prefix}{message}")
    return ModelregError(f"{prefix}the API server answered {e.status}: {message}")
