"""kopf's success chatter is dropped; transitions, warnings and failures are kept."""

from __future__ import annotations

import logging

import pytest

from modelreg.controller.logs import NOT_LISTENING, NotReadyProbe, SuccessChatter


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


def server_error(error: BaseException) -> logging.LogRecord:
    """aiohttp's record of a request whose handler raised ``error``."""
    exc_info = (type(error), error, error.__traceback__)
    return logging.LogRecord(
        "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request", None, exc_info
    )


def test_a_not_ready_probe_is_one_warning_line_without_traceback() -> None:
    error = ValueError("One or more handlers failed.")
    error.__cause__ = RuntimeError(f"{NOT_LISTENING} on 127.0.0.1:9443: [Errno 111] refused")
    r = server_error(error)
    assert NotReadyProbe().filter(r)
    assert (r.levelno, r.getMessage(), r.exc_info) == (
        logging.WARNING,
        f"not ready: {NOT_LISTENING} on 127.0.0.1:9443: [Errno 111] refused",
        None,
    )
    assert "Traceback" not in logging.Formatter().format(r)


def test_other_request_errors_keep_their_traceback() -> None:
    r = server_error(KeyError("something else"))
    assert NotReadyProbe().filter(r)
    assert r.levelno == logging.ERROR
    assert r.exc_info is not None
