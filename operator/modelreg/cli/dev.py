"""``modelreg dev``: run the local cluster, S3 server and registries on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import click

from modelreg import devenv
from modelreg.devenv.tools import ToolsError


def _default_dir() -> Path:
    return Path(os.environ.get("MODELREG_DEV_DIR", ".dev"))


dir_option = click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=_default_dir,
    show_default=".dev (or $MODELREG_DEV_DIR)",
    help="Directory holding the environment's state, logs, kubeconfig and env.sh.",
)


def _log(message: str) -> None:
    click.echo(message, err=True)


@click.group()
def dev() -> None:
    """Run a local Kubernetes control plane, S3 server and OCI registries, without Docker."""


@dev.command()
@dir_option
@click.option(
    "--no-operator",
    is_flag=True,
    help="Leave the operator out (for tests or a debugger that run their own).",
)
@click.option(
    "--no-real-node",
    is_flag=True,
    help="Leave the real node (kubelet, containerd) out, on a machine that cannot run it; "
    "pods then run only on KWOK's fake nodes.",
)
def up(root: Path, no_operator: bool, no_real_node: bool) -> None:
    """Start the environment (builds the binaries on first use; safe to run again).

    \b
    Example:
      modelreg dev up && . .dev/env.sh && kubectl get nodes
    """
    try:
        devenv.up(root, log=_log, operator=not no_operator, real_node=not no_real_node)
    except (devenv.DevEnvError, ToolsError) as e:
        raise click.ClickException(str(e)) from e


@dev.command()
@dir_option
@click.option("--purge", is_flag=True, help="Also delete the directory (cluster data, images, S3).")
def down(root: Path, purge: bool) -> None:
    """Stop every process of the environment, and remove what its real node made on the
    host (network namespace, veth, mounts, cgroups); safe to run twice and after a crash.

    \b
    Example:
      modelreg dev down --purge
    """
    stopped = devenv.down(root, log=_log)
    if not stopped:
        _log("nothing was running")
    if purge and root.exists():
        shutil.rmtree(root)
        _log(f"removed {root}")


@dev.command()
@dir_option
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def status(root: Path, output: str) -> None:
    """Show what runs and whether it answers; exit code 1 unless all is healthy.

    Components the last ``up`` left out (``--no-operator``) show as "disabled".

    \b
    Example:
      modelreg dev status -o json
    """
    try:
        result = devenv.status(root)
    except ToolsError as e:
        raise click.ClickException(str(e)) from e
    if output == "json":
        click.echo(json.dumps([s.__dict__ for s in result], indent=2))
    else:
        click.echo(f"{'COMPONENT':<26}{'PID':>8}  STATE")
        for s in result:
            if s.healthy:
                state = "healthy"
            elif s.pid:
                state = "running, not answering"
            else:
                state = "disabled" if s.disabled else "stopped"
            click.echo(f"{s.name:<26}{s.pid or '-':>8}  {state}")
    sys.exit(0 if all(s.ok for s in result) else 1)
