"""Log lines kopf writes for every handler that succeeds, left out unless ``--verbose``.

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
