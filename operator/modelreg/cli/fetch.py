"""``modelreg fetch-artifact``: the storage-initializer of model pods."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("fetch-artifact")
@click.option("--uri", required=True, help="s3://bucket/key or https:// URL of the artifact.")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default="/mnt/models",
    show_default=True,
    help="Directory to download into.",
)
@click.option("--sha256", default=None, help="Expected sha256 (64 hex digits); fail if it differs.")
@click.option(
    "--version-id", default=None, help="S3 object version to fetch (the one that was verified)."
)
def fetch_artifact(uri: str, dest: Path, sha256: str | None, version_id: str | None) -> None:
    """Download a model artifact and verify its checksum (exit 1 on mismatch).

    S3 credentials and endpoint come from AWS_* and MODELREG_S3_ENDPOINT.

    \b
    Example:
      modelreg fetch-artifact --uri s3://models/fraud/7/model.tar.gz --sha256 3f5a...
    """
    from modelreg.fetch import ChecksumMismatch, fetch
    from modelreg.verify.artifacts import StoreConfig

    try:
        path = fetch(uri, dest, sha256, StoreConfig.from_env(), version_id)
    except ChecksumMismatch as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"downloaded {uri} to {path}" + (" (sha256 verified)" if sha256 else ""))
