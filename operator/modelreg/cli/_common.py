"""Shared plumbing of the registry commands: connection options, output formats, errors
mapped to exit codes, progress bars on stderr."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import click
import yaml
from pydantic import BaseModel

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from modelreg.sdk.client import Client

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DENIED, EXIT_NOT_FOUND, EXIT_FAILED = 0, 1, 2, 3, 4, 5

EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  1  error (API server, S3, anything else)
  2  usage error (bad options or arguments)
  3  denied (RBAC or the admission webhook refused; its message is printed)
  4  not found (model, version or deployment)
  5  verification failed or timed out (--wait)"""


class CliError(click.ClickException):
    """A ClickException with the exit code of the SDK error behind it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]


def exit_code(e: Exception) -> int:
    from modelreg.sdk import errors

    if isinstance(e, errors.Denied):
        return EXIT_DENIED
    if isinstance(e, errors.NotFound):
        return EXIT_NOT_FOUND
    if isinstance(e, errors.VerificationFailed | errors.Timeout):
        return EXIT_FAILED
    if isinstance(e, errors.Invalid):
        return EXIT_USAGE
    return EXIT_ERROR


class SdkCommand(click.Command):
    """A command whose SDK errors become messages and exit codes (no tracebacks)."""

    def invoke(self, ctx: click.Context) -> Any:  # noqa: ANN401 (whatever the callback returns)
        from modelreg.sdk.errors import ModelregError

        try:
            return super().invoke(ctx)
        except ModelregError as e:
            name = type(e).__name__
            prefix = {
                "Denied": "denied: ",
                "NotFound": "not found: ",
                "ModelregError": "",
                "VerificationFailed": "verification failed: ",
            }.get(name, f"{name}: ")
            raise CliError(f"{prefix}{e}", exit_code(e)) from e


def connection_options(f: F) -> F:
    """-n/--namespace, --context, --kubeconfig, -o/--output."""
    f = click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json", "yaml"]),
        default="table",
        show_default=True,
        help="Output format.",
    )(f)
    f = click.option(
        "--kubeconfig",
        envvar="MODELREG_KUBECONFIG",
        default=None,
        help="Kubeconfig file (default: $KUBECONFIG or ~/.kube/config; in-cluster config "
        "when there is none).",
    )(f)
    f = click.option("--context", default=None, help="Kubeconfig context (default: current).")(f)
    f = click.option(
        "-n",
        "--namespace",
        default=None,
        help="Namespace (default: the context's, else the pod's, else default).",
    )(f)
    return f


def client(namespace: str | None, context: str | None, kubeconfig: str | None) -> Client:
    from modelreg.sdk.client import Client

    return Client(namespace, context=context, kubeconfig=kubeconfig)


def plain(data: Any) -> Any:  # noqa: ANN401 (JSON-able data of any shape)
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(data, list | tuple):
        return [plain(d) for d in data]
    if isinstance(data, dict):
        return {k: plain(v) for k, v in data.items()}
    return data


def emit(output: str, data: Any, table: Callable[[Console], None]) -> None:  # noqa: ANN401
    """Print ``data`` as JSON or YAML, or call ``table`` with a stdout console."""
    if output == "json":
        click.echo(json.dumps(plain(data), indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump(plain(data), sort_keys=False).rstrip())
    else:
        from rich.console import Console

        # piped: wide enough that nothing is cut (like kubectl), no colours
        width = None if sys.stdout.isatty() else 400
        table(Console(soft_wrap=False, highlight=False, width=width))


def make_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None
) -> Any:  # noqa: ANN401 (a rich Table)
    from rich import box
    from rich.table import Table

    t = Table(*columns, box=box.SIMPLE_HEAD, title=title, title_justify="left")
    for row in rows:
        t.add_row(*["" if c is None else str(c) for c in row])
    return t


def age(t: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """kubectl-style age: 45s, 12m, 3h, 5d."""
    if t is None:
        return "-"
    now = now or dt.datetime.now(dt.UTC)
    seconds = max(0, int((now - t).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def when(t: dt.datetime | None) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if t else "-"


def fmt_number(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:g}"


class ProgressBars:
    """Progress callbacks drawn as rich bars on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressBars:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
        return self

    def __call__(self, what: str, done: int, total: int) -> None:
        if self._progress is None:
            return
        if what not in self._tasks:
            self._tasks[what] = self._progress.add_task(what, total=total, detail="")
        detail = (
            f"{done / 2**20:.0f}/{total / 2**20:.0f} MiB"
            if what.startswith("uploading")
            else f"{done}/{total}"
        )
        self._progress.update(self._tasks[what], completed=done, total=total, detail=detail)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
