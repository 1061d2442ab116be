"""The ``modelreg`` command line."""

from __future__ import annotations

import click

from modelreg import __version__
from modelreg.cli.dev import dev
from modelreg.cli.fetch import fetch_artifact
from modelreg.cli.run import run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelreg")
def main() -> None:
    """modelreg: a Kubernetes-native model registry."""


main.add_command(dev)
main.add_command(run)
main.add_command(fetch_artifact)

__all__ = ["main"]
