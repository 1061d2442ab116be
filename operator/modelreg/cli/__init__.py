"""The ``modelreg`` command line."""

from __future__ import annotations

import click

from modelreg import __version__
from modelreg.cli._common import EXIT_CODES_HELP
from modelreg.cli.dev import dev
from modelreg.cli.fetch import fetch_artifact
from modelreg.cli.mlflow import import_mlflow
from modelreg.cli.registry import COMMANDS as REGISTRY_COMMANDS
from modelreg.cli.run import run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelreg")
def main() -> None:
    """modelreg: a Kubernetes-native model registry."""


main.help = f"""modelreg: a Kubernetes-native model registry.

Register, approve, deploy and audit model versions (also as `kubectl modelreg ...`).
Every registry command takes -n/--namespace, --context and -o/--output table|json|yaml.

\b
Example:
  modelreg register fraud-detector ./model --image registry.internal/serving/sklearn:1.5
  modelreg approve fraud-detector-v7 -m "AUC up 2 points" --context alice
  modelreg deploy fraud-detector --wait

{EXIT_CODES_HELP}
"""


main.add_command(dev)
main.add_command(run)
main.add_command(fetch_artifact)
main.add_command(import_mlflow)
for _command in REGISTRY_COMMANDS:
    main.add_command(_command)

__all__ = ["main"]
