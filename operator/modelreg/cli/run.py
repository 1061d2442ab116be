"""``modelreg run``: the operator."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    help="Watch only this namespace (repeatable). Default: all namespaces.",
)
@click.option(
    "--liveness",
    default="http://0.0.0.0:8081/healthz",
    show_default=True,
    help="Liveness endpoint URL (kopf's health probe).",
)
@click.option(
    "--peering/--standalone",
    default=False,
    show_default=True,
    help="Coordinate several replicas with kopf peering (needs kopf's peering CRDs).",
)
@click.option(
    "--metrics",
    default="",
    metavar="HOST:PORT",
    help="Serve Prometheus metrics on /metrics at this address (e.g. 0.0.0.0:8080). Default: off.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def run(
    namespaces: tuple[str, ...], liveness: str, peering: bool, metrics: str, verbose: bool
) -> None:
    """Run the modelreg operator (watches RegisteredModels, ModelVersions, ModelDeployments).

    Configured by environment: MODELREG_S3_ENDPOINT and AWS_* for artifact checks,
    MODELREG_WEBHOOK_* for the admission webhooks (see controller/settings.py). Logs are JSON lines.

    \b
    Example:
      modelreg run --namespace ml-demo
    """
    import kopf

    import modelreg.controller.handlers  # noqa: F401 (registers the handlers)
    from modelreg.controller import kopf_fixes
    from modelreg.metrics import serve

    kopf_fixes.apply()
    if metrics:
        serve(metrics)

    kopf.configure(
        verbose=verbose, debug=verbose, log_format=kopf.LogFormat.JSON, log_refkey="object"
    )
    from modelreg.controller.logs import quiet_not_ready_probes

    quiet_not_ready_probes()
    if not verbose:
        from modelreg.controller.logs import quiet_success_chatter

        quiet_success_chatter()
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness or None,
        standalone=not peering,
    )
