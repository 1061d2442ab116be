"""Prometheus metrics of the operator (``modelreg run --metrics=ADDRESS:PORT``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, start_http_server

EVENTS = Counter(
    "modelreg_events",
    "Events the operator posted, by kind of object, event type and reason "
    "(e.g. VersionVerified, ArtifactChecksumMismatch, RolledBack).",
    ["kind", "type", "reason"],
)
ADMISSION_REVIEWS = Counter(
    "modelreg_admission_reviews",
    "Admission reviews answered, by webhook (approval-record: ModelVersions; "
    "deployment-authority: ModelDeployments; model-authority: RegisteredModels), "
    "operation and result.",
    ["webhook", "operation", "result"],
)
RECONCILES = Counter(
    "modelreg_reconciles",
    "Reconciles of RegisteredModels, ModelVersions and ModelDeployments that kopf's "
    "handlers completed, by kind and reason (create, update, resume). After a start every "
    "object is reconciled once (resume; create if it had not been handled at its "
    "generation): this reaching the number of objects marks the end of the start-up.",
    ["kind", "reason"],
)
NOTIFICATIONS = Counter(
    "modelreg_notifications",
    "Notifications (CloudEvents POSTed to a model's receivers) by final result: delivered; "
    "failed (refused: an answer other than 2xx, 408, 429 or 5xx, or a URL that cannot be "
    "used); dropped (the queue of pending notifications overflowed, or the operator stopped "
    "before it was delivered).",
    ["result"],
)
NOTIFICATION_ATTEMPTS = Counter(
    "modelreg_notification_attempts",
    "HTTP attempts to deliver notifications, by result: success (2xx), retryable (connection "
    "error, timeout, 408, 429, 5xx) or permanent (any other answer).",
    ["result"],
)
NOTIFICATIONS_PENDING = Gauge(
    "modelreg_notifications_pending",
    "Notifications queued, being sent or waiting to be retried.",
)


def serve(address: str) -> None:
    """Serve /metrics on ``address`` (``host:port``) from a daemon thread."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"metrics address {address!r} is not HOST:PORT")
    start_http_server(int(port), addr=host or "0.0.0.0")  # noqa: S104
