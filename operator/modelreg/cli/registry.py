"""The registry commands: register, approve, reject, versions, show, compare, deploy,
rollback, history, lineage, where (a thin layer over :class:`modelreg.Client`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from modelreg.cli._common import (
    ProgressBars,
    SdkCommand,
    age,
    client,
    connection_options,
    emit,
    fmt_number,
    make_table,
    when,
)

if TYPE_CHECKING:
    from rich.console import Console

    from modelreg.sdk.models import Version


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=what)
        out[key] = value
    return out


def _metrics(values: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for key, value in _pairs(values, "--metric").items():
        try:
            out[key] = float(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a number", param_hint="--metric") from None
    return out


def _approval(v: Version) -> str:
    a = v.status.approval
    approvals = len({d.user for d in a.decisions if d.decision.value == "Approved"})
    state = a.state.value
    return f"{state} ({approvals}/{a.required})" if state != "Rejected" else state


def _version_table(console: Console, versions: list[Version], title: str | None = None) -> None:
    rows = []
    for v in versions:
        metrics = ", ".join(f"{k}={fmt_number(x)}" for k, x in sorted(v.spec.metrics.items())[:3])
        ready = v.condition("Ready")
        rows.append(
            (
                v.number or "-",
                v.name,
                v.model,
                v.status.stage.value,
                _approval(v),
                ready.reason if ready else "-",
                metrics,
                age(v.created),
            )
        )
    console.print(
        make_table(
            ("NUMBER", "NAME", "MODEL", "STAGE", "APPROVAL", "READY", "METRICS", "AGE"),
            rows,
            title,
        )
    )


def _show_version(console: Console, v: Version) -> None:
    lin = v.spec.lineage
    lines = [
        f"[bold]{v.name}[/] (model {v.model}, version {v.number or '-'}, namespace {v.namespace})",
        f"Registered:  {when(v.registered_at)} by {v.registered_by or '-'}",
        f"Stage:       {v.status.stage.value}",
        f"Approval:    {_approval(v)}",
        f"Artifact:    {v.spec.artifact.uri}"
        + (f" sha256={v.spec.artifact.sha256}" if v.spec.artifact.sha256 else ""),
        f"Image:       {v.spec.image.reference}"
        + (f" -> {v.status.image.resolved}" if v.status.image and v.status.image.resolved else ""),
    ]
    if v.spec.description:
        lines.append(f"Description: {v.spec.description}")
    if lin.code:
        lines.append(
            f"Code:        {lin.code.repository}"
            + (f" @ {lin.code.commit}" if lin.code.commit else "")
            + (f" ({lin.code.path})" if lin.code.path else "")
        )
    if lin.run:
        lines.append(f"Run:         {lin.run.system} {lin.run.id}")
    if lin.training_image:
        lines.append(f"Train image: {lin.training_image}")
    for d in lin.datasets:
        lines.append(f"Dataset:     {d.name} {d.uri}" + (f" @ {d.version}" if d.version else ""))
    if v.status.deployments:
        names = ", ".join(f"{d.name} ({d.stage.value})" for d in v.status.deployments)
        lines.append(f"Deployed:    {names}")
    for line in lines:
        console.print(line)
    for title, mapping in (
        ("Metrics", {k: fmt_number(x) for k, x in v.spec.metrics.items()}),
        ("Parameters", dict(lin.parameters)),
        ("Tags", dict(v.spec.tags)),
    ):
        if mapping:
            console.print(make_table(("KEY", "VALUE"), sorted(mapping.items()), title))
    if v.status.approval.decisions:
        console.print(
            make_table(
                ("TIME", "USER", "DECISION", "COMMENT"),
                [
                    (when(d.time), d.user, d.decision.value, d.comment)
                    for d in v.status.approval.decisions
                ],
                "Decisions",
            )
        )
    console.print(
        make_table(
            ("CONDITION", "STATUS", "REASON", "MESSAGE"),
            [(c.type, c.status.value, c.reason, c.message) for c in v.status.conditions],
            "Conditions",
        )
    )


# --- register ----------------------------------------------------------------------------


@click.command(cls=SdkCommand)
@click.argument("model")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--uri", help="An artifact already stored (s3://bucket/key or https://...).")
@click.option("--sha256", help="sha256 of the artifact at --uri (64 hex digits).")
@click.option("--image", required=True, help="Inference image (registry/repo:tag or @sha256).")
@click.option("--name", help="ModelVersion name (default: generated, <model>-xxxxx).")
@click.option("--description", help="What changed in this version.")
@click.option("--format", "format_", help="Artifact format (sklearn, onnx, pytorch, ...).")
@click.option("--dataset", "datasets", multiple=True, help="Dataset URI (repeatable).")
@click.option("--param", "params", multiple=True, help="Hyperparameter KEY=VALUE (repeatable).")
@click.option("--metric", "metrics", multiple=True, help="Metric KEY=NUMBER (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Tag KEY=VALUE (repeatable).")
@click.option("--training-image", help="Image the training ran in.")
@click.option("--parent", help="ModelVersion this one was derived from.")
@click.option("--pull-secret", "pull_secrets", multiple=True, help="Image pull Secret name.")
@click.option("--bucket", help="S3 bucket for the upload (default: $MODELREG_S3_BUCKET).")
@click.option("--key", help="S3 key (default: <model>/<uuid>/<file name>).")
@click.option("--no-lineage", is_flag=True, help="Do not capture git/Python/run lineage.")
@click.option("--wait/--no-wait", default=False, help="Wait until the version is verified.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to --wait.")
@connection_options
def register(
    model: str,
    path: Path | None,
    uri: str | None,
    sha256: str | None,
    image: str,
    name: str | None,
    description: str | None,
    format_: str | None,
    datasets: tuple[str, ...],
    params: tuple[str, ...],
    metrics: tuple[str, ...],
    tags: tuple[str, ...],
    training_image: str | None,
    parent: str | None,
    pull_secrets: tuple[str, ...],
    bucket: str | None,
    key: str | None,
    no_lineage: bool,
    wait: bool,
    timeout: float,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    output: str,
) -> None:
    """Register a new version of MODEL from a local PATH (file, or directory uploaded as
    tar.gz, with its sha256) or from --uri.

    Lineage is captured automatically: git repository, commit and dirty flag of PATH (or
    the current directory), Python version and installed packages, MLFLOW_RUN_ID /
    WANDB_RUN_ID. S3: MODELREG_S3_ENDPOINT, MODELREG_S3_BUCKET and AWS_* credentials.

    \b
    Example:
      modelreg register fraud-detector ./model --image registry.internal/serving/sklearn:1.5 \\
        --dataset s3://data/tx/2026-10/ --param max_depth=8 --metric auc=0.934 --wait
    """
    if (path is None) == (uri is None):
        raise click.UsageError("give exactly one of PATH or --uri")
    c = client(namespace, context, kubeconfig)
    with ProgressBars() as bars:
        v = c.register(
            model,
            path,
            uri=uri,
            sha256=sha256,
            image=image,
            name=name,
            description=description,
            format=format_,
            datasets=list(datasets),
            parameters=_pairs(params, "--param"),
            metrics=_metrics(metrics),
            tags=_pairs(tags, "--tag"),
            training_image=training_image,
            parent_version=parent,
            pull_secrets=pull_secrets,
            capture_lineage=not no_lineage,
            bucket=bucket,
            key=key,
            wait=wait,
            timeout=timeout,
            progress=bars,
        )
    emit(
        output,
        v,
        lambda console: console.print(
            f"registered {v.name} (version {v.number or '-'} of {v.model}): "
            f"{v.spec.artifact.uri}" + (" verified" if wait else "")
        ),
    )


# --- decisions ---------------------------------------------------------------------------


def _decision_command(decision: str) -> click.Command:
    verb = "approve" if decision == "Approved" else "reject"

    @click.command(verb, cls=SdkCommand)
    @click.argument("version")
    @click.option("-m", "--comment", default="", help="Comment kept with the decision.")
    @connection_options
    def command(
        version: str,
        comment: str,
        namespace: str | None,
        context: str | None,
        kubeconfig: str | None,
        output: str,
    ) -> None:
        c = client(namespace, context, kubeconfig)
        v = c.approve(version, comment) if verb == "approve" else c.reject(version, comment)
        emit(
            output,
            v,
            lambda console: console.print(
                f"{v.name}: {decision.lower()} by you; approval state {_approval(v)}"
            ),
        )

    command.help = f"""{"Approve" if verb == "approve" else "Reject"} VERSION (a ModelVersion
    name, or MODEL:NUMBER) as the current user.

    The admission webhook records the decision with your identity and refuses it if the
    model's approval policy does not allow you (exit code 3, with its reason).

    \b
    Example:
      modelreg {verb} fraud-detector-v7 -m "{"AUC up 2 points" if verb == "approve" else "leaks"}"
      modelreg {verb} fraud-detector:7 --context alice
    """
    return command


approve = _decision_command("Approved")
reject = _decision_command("Rejected")


# --- reading -----------------------------------------------------------------------------


@click.command(cls=SdkCommand)
@click.argument("model", required=False)
@connection_options
def versions(
    model: str | None,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    output: str,
) -> None:
    """List the versions of MODEL (all models if omitted), by number.

    \b
    Example:
      modelreg versions fraud-detector -n ml-payments
      kubectl modelreg versions fraud-detector -o json
    """
    c = client(namespace, context, kubeconfig)
    vs = c.versions(model)

    def table(console: Console) -> None:
        if vs:
            _version_table(console, vs)
        else:
            of = f" of {model}" if model else ""
            console.print(f"no versions{of} in namespace {c.namespace}")

    emit(output, vs, table)


@click.command(cls=SdkCommand)
@click.argument("version")
@connection_options
def show(
    version: str,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    output: str,
) -> None:
    """Show VERSION (a ModelVersion name, or MODEL:NUMBER): artifact, image, lineage,
    metrics, decisions and conditions.

    \b
    Example:
      modelreg show fraud-detector-v7
      modelreg show fraud-detector:7 -o yaml
    """
    v = client(namespace, context, kubeconfig).get(version)
    emit(output, v, lambda console: _show_version(console, v))


@click.command(cls=SdkCommand)
@click.argument("a")
@click.argument("b")
@connection_options
def compare(
    a: str,
    b: str,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    output: str,
) -> None:
    """Compare two versions: metrics with deltas (B - A), and the parameters and lineage
    that differ.

    \b
    Example:
      modelreg compare fraud-detector-v6 fraud-detector-v7
      modelreg compare fraud-detector:6 fraud-detector:7 -o json
    """
    cmp = client(namespace, context, kubeconfig).compare(a, b)

    def table(console: Console) -> None:
        console.print(
            make_table(
                ("METRIC", cmp.a, cmp.b, "DELTA"),
                [
                    (
                        m.name,
                        fmt_number(m.a),
                        fmt_number(m.b),
                        "-" if m.delta is None else f"{m.delta:+g}",
                    )
                    for m in cmp.metrics
                ],
                "Metrics",
            )
        )
        for title, diffs in (("Parameters", cmp.parameters), ("Lineage", cmp.lineage)):
            if diffs:
                console.print(
                    make_table(
                        ("FIELD", cmp.a, cmp.b),
                        [(d.field, d.a or "-", d.b or "-") for d in diffs],
                        f"{title} that differ",
                    )
                )
            else:
                console.print(f"{title}: no differences")

    emit(output, cmp, table)


# --- deployments -------------------------------------------------------------------------


@click.command(cls=SdkCommand)
@click.argument("model")
@click.option("--name", help="ModelDeployment name (default: the model's name).")
@click.option(
    "--version",
    "version",
    help="Pin a version (ModelVersion name or number); default: follow the latest Ready one.",
)
@click.option(
    "--stage",
    type=click.Choice(["Staging", "Production"]),
    default="Production",
    show_default=True,
)
@click.option("--replicas", type=int, default=1, show_default=True)
@click.option("--port", type=int, default=None, help="Container port (default 8080).")
@click.option("--env", "env", multiple=True, help="Container env KEY=VALUE (repeatable).")
@click.option("--storage-secret", help="Secret with S3 credentials for the artifact download.")
@click.option("--wait/--no-wait", default=False, help="Wait until the version is served.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to --wait.")
@connection_options
def deploy(
    model: str,
    name: str | None,
    version: str | None,
    stage: str,
    replicas: int,
    port: int | None,
    env: tuple[str, ...],
    storage_secret: str | None,
    wait: bool,
    timeout: float,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    output: str,
) -> None:
    """Create or update the ModelDeployment serving MODEL.

    Only approved (Ready) versions are ever deployed; a failed rollout rolls back
    automatically.

    \b
    Example:
      modelreg deploy fraud-detector --version fraud-detector-v7 --replicas 2 --wait
      modelreg deploy fraud-detector --name fraud-staging --stage Staging
    """
    c = client(namespace, context, kubeconfig)
    with ProgressBars() as bars:
        d = c.deploy(
            model,
            name,
            version=version,
            stage=stage,
            replicas=replicas,
            port=port,
            env=_pairs(env, "--env"),
            storage_secret=storage_secret,
            wait=wait,
            timeout=timeout,
            progress=bars,
        )
    emit(
        output,
        d,
        lambda console: console.print(
            f"modeldeployment {d.name}: "
            + (f"serving {d.current}" if wait else "applied")
            + (f" (target {d.status.target_version.name})" if d.status.target_version else "")
        ),
    )


@click.command(cls=SdkCommand)
@click.argument("deployment")
@click.option(
    "--to",
    "to",
    help="Version to roll back to (name or number); default: the previous successful one.",
)
@click.option("--wait/--no-wait", default=False, help="Wait until it is served.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to --wait.")
@connection_options
def rollback(
    deployment: str,
    to: str | None,
    wait: bool,
    timeout: float,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    output: str,
) -> None:
    """Roll DEPLOYMENT back to an earlier version and hold it there (annotation
    modelreg.dev/rollback-to) until the annotation is removed or the spec changes.

    \b
    Example:
      modelreg rollback fraud-detector
      modelreg rollback fraud-detector --to fraud-detector-v5 --wait
    """
    d = client(namespace, context, kubeconfig).rollback(deployment, to, wait=wait, timeout=timeout)
    emit(
        output,
        d,
        lambda console: console.print(
            f"modeldeployment {d.name}: rolling back to {d.rollback_to}"
            + (f" (serving {d.current})" if d.current else "")
        ),
    )


# --- audit -------------------------------------------------------------------------------


@click.command(cls=SdkCommand)
@click.argument("target", metavar="MODEL|DEPLOYMENT")
@connection_options
def history(
    target: str,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    output: str,
) -> None:
    """The audit trail of a model (or of one deployment), oldest first: registrations,
    approvals and rejections with their users and comments, archiving, rollouts, failures
    and rollbacks.

    \b
    Example:
      modelreg history fraud-detector
      modelreg history fraud-detector -o json | jq '.[] | select(.event=="Approved")'
    """
    events = client(namespace, context, kubeconfig).history(target)
    emit(
        output,
        events,
        lambda console: console.print(
            make_table(
                ("TIME", "EVENT", "VERSION", "DEPLOYMENT", "USER", "DETAIL"),
                [
                    (
                        when(e.time),
                        e.event,
                        f"{e.version} (#{e.number})" if e.number else e.version,
                        e.deployment or "",
                        e.user or "",
                        e.detail,
                    )
                    for e in events
                ],
            )
        ),
    )


@click.command(cls=SdkCommand)
@click.option("--dataset", required=True, help="Dataset URI as recorded in spec.lineage.")
@connection_options
def lineage(
    dataset: str,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    output: str,
) -> None:
    """The versions trained on a dataset, and where they run now.

    \b
    Example:
      modelreg lineage --dataset s3://data/tx/2026-10/
    """
    uses = client(namespace, context, kubeconfig).lineage(dataset)
    emit(
        output,
        uses,
        lambda console: console.print(
            make_table(
                ("MODEL", "NUMBER", "VERSION", "DATASET", "RUNNING IN"),
                [
                    (
                        u.model,
                        u.number or "-",
                        u.version,
                        u.dataset + (f"@{u.dataset_version}" if u.dataset_version else ""),
                        ", ".join(f"{p.deployment} ({p.stage})" for p in u.deployments) or "-",
                    )
                    for u in uses
                ],
            )
        ),
    )


@click.command(cls=SdkCommand)
@click.argument("version")
@connection_options
def where(
    version: str,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    output: str,
) -> None:
    """The ModelDeployments serving VERSION now (or rolling out to it).

    \b
    Example:
      modelreg where fraud-detector-v7
    """
    places = client(namespace, context, kubeconfig).where(version)
    emit(
        output,
        places,
        lambda console: console.print(
            make_table(
                ("DEPLOYMENT", "STAGE", "SERVING", "TARGET", "REPLICAS"),
                [
                    (
                        p.deployment,
                        p.stage,
                        "yes" if p.serving else "no",
                        "yes" if p.target else "no",
                        p.replicas,
                    )
                    for p in places
                ],
            )
            if places
            else f"{version} is not deployed"
        ),
    )


COMMANDS = [
    register,
    approve,
    reject,
    versions,
    show,
    compare,
    deploy,
    rollback,
    history,
    lineage,
    where,
]

__all__ = ["COMMANDS"]
