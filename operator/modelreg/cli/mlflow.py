"""``modelreg import-mlflow``: import registered models and versions from MLflow."""

from __future__ import annotations

import json
import sys

import click


def _map(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        prefix, sep, target = v.partition("=")
        if not sep or not prefix or not target:
            raise click.BadParameter(f"{v!r} is not FROM=TO", param_hint="--map-artifacts")
        out[prefix] = target
    return out


@click.command("import-mlflow")
@click.option(
    "--tracking-uri",
    envvar="MLFLOW_TRACKING_URI",
    required=True,
    help="MLflow tracking server (default: $MLFLOW_TRACKING_URI).",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="NAME",
    help="MLflow registered model to import (repeatable). Default: all of them.",
)
@click.option(
    "--image",
    required=True,
    metavar="REF",
    help="Inference image of every imported version (MLflow has none).",
)
@click.option(
    "--map-artifacts",
    "mappings",
    multiple=True,
    metavar="FROM=TO",
    help="Rewrite an artifact URI prefix, e.g. mlflow-artifacts:/=s3://mlflow/ (repeatable; "
    "the longest matching prefix wins).",
)
@click.option(
    "-n",
    "--namespace",
    default=None,
    help="Namespace (default: the context's, else the pod's, else default).",
)
@click.option("--context", default=None, help="Kubeconfig context (default: current).")
@click.option("--dry-run", is_flag=True, help="Create nothing; report what would be created.")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
def import_mlflow(
    tracking_uri: str,
    models: tuple[str, ...],
    image: str,
    mappings: tuple[str, ...],
    namespace: str | None,
    context: str | None,
    dry_run: bool,
    output: str,
) -> None:
    """Import registered models and their versions from an MLflow tracking server.

    Each MLflow registered model becomes a RegisteredModel (its name made a valid
    Kubernetes name), each version a ModelVersion named <model>-mlflow-<version>, with
    the run's params as lineage.parameters, its latest metrics as metrics, the run as
    lineage.run, tags, aliases (mlflow.alias/<alias>: "true") and the legacy stage
    (mlflow.stage) as tags. Idempotent: what exists is left unchanged (versions are
    immutable) and reported as such. A version whose artifact is not one s3:// or
    https:// object (after --map-artifacts) is skipped with the reason. See
    docs/mlflow.md.

    \b
    Example:
      modelreg import-mlflow --tracking-uri http://mlflow.internal:5000 \\
          --model fraud-detector --image registry.internal/serving/sklearn:1.5 \\
          --map-artifacts mlflow-artifacts:/=s3://mlflow/ -n ml-payments --dry-run
    """
    from modelreg.mlflow_import import import_registered_models

    mapping = _map(mappings)
    from modelreg.cli._common import client
    from modelreg.sdk.errors import ModelregError

    try:
        # the SDK's connection and namespace rules (kubeconfig/context, else in-cluster)
        connected = client(namespace, context, None)
    except ModelregError as e:
        raise click.ClickException(str(e)) from e
    api, ns = connected.api, connected.namespace
    try:
        report = import_registered_models(
            tracking_uri,
            namespace=ns,
            image=image,
            names=list(models) or None,
            kube_api=api,
            artifact_uri_map=mapping,
            dry_run=dry_run,
        )
    except Exception as e:  # MLflow or API server errors: one line, not a traceback
        if isinstance(e, click.ClickException):
            raise
        raise click.ClickException(f"{type(e).__name__}: {e}") from e
    if output == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"MLflow import into {ns}" + (" (dry run)" if dry_run else ""))
    for column in ("KIND", "NAME", "MLFLOW", "ACTION"):
        table.add_column(column, no_wrap=True)
    table.add_column("DETAILS", overflow="fold")
    styles = {"created": "green", "unchanged": "dim", "skipped": "yellow", "would-create": "cyan"}
    for i in report.items:
        source = i.mlflow_model + (f" v{i.mlflow_version}" if i.mlflow_version else "")
        details = "; ".join([i.reason, *i.notes] if i.reason else i.notes)
        action = f"[{styles[i.action]}]{i.action}[/]"
        table.add_row(i.kind, i.name or "-", source, action, details)
    # not a terminal: wide enough that names are never cut (scripts should use -o json)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    counts = report.to_dict()["summary"]
    click.echo(", ".join(f"{n} {a}" for a, n in counts.items() if n) or "nothing to import")


__all__ = ["import_mlflow"]
