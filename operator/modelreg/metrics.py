"""Prometheus metrics of the operator (``modelreg run --metrics=ADDRESS:PORT``)."""

from __future__ import annotations

from prometheus_client import Counter, start_http_server

EVENTS = Counter(
    "modelreg_events",
    "Events the operator posted, by kind of object, event type and reason "
    "(e.g. VersionVerified, ArtifactChecksumMismatch, RolledBack).",
    ["kind", "type", "reason"],
)
ADMISSION_REVIEWS = Counter(
    "modelreg_admission_reviews",
    "ModelVersion admission reviews answered by the approval webhook, by operation and result.",
    ["operation", "result"],
)


def serve(address: str) -> None:
    """Serve /metrics on ``address`` (``host:port``) from a daemon thread."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"metrics address {address!r} is not HOST:PORT")
    start_http_server(int(port), addr=host or "0.0.0.0")  # noqa: S104
