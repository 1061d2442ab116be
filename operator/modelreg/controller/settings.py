"""The operator's runtime configuration, from its environment (12-factor style)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WebhookSettings:
    """Where the admission webhooks listen and what the API server calls.

    ``host`` is the address the API server dials (127.0.0.1 for the local cluster); the
    certificate must be valid for it. With ``cert_file`` unset the webhooks are off.
    """

    listen: str
    port: int
    host: str
    cert_file: Path | None
    key_file: Path | None
    ca_file: Path | None

    @classmethod
    def from_env(cls) -> WebhookSettings:
        def path(var: str) -> Path | None:
            value = os.environ.get(var)
            return Path(value) if value else None

        return cls(
            listen=os.environ.get("MODELREG_WEBHOOK_LISTEN", "0.0.0.0"),  # noqa: S104
            port=int(os.environ.get("MODELREG_WEBHOOK_PORT", "9443")),
            host=os.environ.get("MODELREG_WEBHOOK_HOST", "127.0.0.1"),
            cert_file=path("MODELREG_WEBHOOK_CERT_FILE"),
            key_file=path("MODELREG_WEBHOOK_KEY_FILE"),
            ca_file=path("MODELREG_WEBHOOK_CA_FILE"),
        )

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None and self.key_file is not None
