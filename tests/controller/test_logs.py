"""kopf's success chatter is dropped; transitions, warnings and failures are kept."""

from __future__ import annotations

import logging

import pytest

from modelreg.controller.logs import SuccessChatter


def record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    "message",
    [
        "Handler 'version_changed' succeeded.",
        "Handler 'version/metadata.annotations' succeeded.",
        "Webhook 'approval-record' succeeded.",
        "Creation is processed: 1 succeeded; 0 failed.",
        "Resuming is processed: 1 succeeded; 0 failed.",
    ],
)
def test_success_chatter_is_dropped(message: str) -> None:
    assert not SuccessChatter().filter(record(message))


@pytest.mark.parametrize(
    ("message", "level"),
    [
        ("registered as version 1 by dana", logging.INFO),
        ("Updating is processed: 0 succeeded; 1 failed.", logging.INFO),
        ("Handler 'version' failed temporarily: the S3 endpoint is unreachable", logging.ERROR),
        ("Handler 'version' succeeded.", logging.WARNING),
    ],
)
def test_everything_else_is_kept(message: str, level: int) -> None:
    assert SuccessChatter().filter(record(message, level))
