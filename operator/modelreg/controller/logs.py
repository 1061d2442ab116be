"""Log lines kopf writes for every handler that succeeds, left out unless ``--verbose``;
and a not-ready health probe said in one line instead of two tracebacks.

kopf logs, at INFO, each handler and webhook that succeeded and each cause processed
("Handler 'version_changed' succeeded.", "Creation is processed: 1 succeeded; 0
failed."): about six lines per registered version, none of which says what changed.
Logging (its lock and JSON formatting) was 7.5% of the operator's samples while it
registered 1,000 versions (benchmarks/), and these lines bury the ones that matter: the
transitions the operator logs itself, with the acting user (docs/api.md), and every
failure or retry, which kopf logs at WARNING or ERROR and which stay.
"""

from __future__ import annotations

import logging
import re

_CHATTER = re.compile(
    r"^(?:(?:Handler|Webhook) '[^']*' succeeded\.|\w+ is processed: \d+ succeeded; 0 failed\.)$"
)


class SuccessChatter(logging.Filter):
    """Drops kopf's INFO lines about handlers that succeeded."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and _CHATTER.match(record.getMessage()))


def quiet_success_chatter() -> None:
    """Install the filter on kopf's per-object logger (where those lines come from)."""
    logger = logging.getLogger("kopf.objects")
    if not any(isinstance(f, SuccessChatter) for f in logger.filters):
        logger.addFilter(SuccessChatter())


#: the probe's own message (controller/handlers.py webhook_listening)
NOT_LISTENING = "webhook server not listening"


class NotReadyProbe(logging.Filter):
    """Turns aiohttp's "Error handling request" with two tracebacks, logged when the
    readiness probe finds the webhook server not listening yet (kopf answers 500), into
    one WARNING line: not ready is a state of starting up, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        while error is not None and NOT_LISTENING not in str(error):
            error = error.__cause__
        if error is not None:
            record.msg, record.args = f"not ready: {error}", None
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_not_ready_probes() -> None:
    """Install the filter on aiohttp's server logger (kopf's health endpoint)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, NotReadyProbe) for f in logger.filters):
        logger.addFilter(NotReadyProbe())
