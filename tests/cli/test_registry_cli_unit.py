"""The registry commands without a cluster: help with examples, exit codes, formatting."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from modelreg.cli import main
from modelreg.cli._common import age, exit_code
from modelreg.cli.registry import COMMANDS
from modelreg.sdk import errors

NAMES = sorted(c.name or "" for c in COMMANDS)


def test_every_registry_command_is_registered() -> None:
    assert set(NAMES) == {
        "register",
        "approve",
        "reject",
        "versions",
        "show",
        "compare",
        "deploy",
        "rollback",
        "history",
        "lineage",
        "where",
    }
    assert set(NAMES) <= set(main.commands)


@pytest.mark.parametrize("name", NAMES)
def test_help_has_an_example_and_the_common_options(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output
    for option in ("--namespace", "--context", "--output"):
        assert option in result.output


def test_group_help_documents_the_exit_codes() -> None:
    out = CliRunner().invoke(main, ["--help"]).output
    assert "Exit codes:" in out
    assert "3  denied" in out
    assert "4  not found" in out


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.Denied("x"), 3),
        (errors.NotFound("x"), 4),
        (errors.VerificationFailed("x"), 5),
        (errors.Timeout("x"), 5),
        (errors.Invalid("x"), 2),
        (errors.ModelregError("x"), 1),
    ],
)
def test_exit_codes(error: Exception, code: int) -> None:
    assert exit_code(error) == code


def test_usage_errors_exit_2() -> None:
    result = CliRunner().invoke(main, ["register", "m", "--image", "r/x:1"])
    assert result.exit_code == 2
    assert "PATH or --uri" in result.output
    assert CliRunner().invoke(main, ["versions", "-o", "xml"]).exit_code == 2


def test_age_is_kubectl_style() -> None:
    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    assert age(now - dt.timedelta(seconds=5), now) == "5s"
    assert age(now - dt.timedelta(minutes=3), now) == "3m"
    assert age(now - dt.timedelta(hours=26), now) == "1d"
    assert age(None, now) == "-"
