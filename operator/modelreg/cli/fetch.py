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
@click.option("--no-unpack", is_flag=True, help="Keep a .tar.gz/.tgz/.tar as the file it is.")
def fetch_artifact(
    uri: str, dest: Path, sha256: str | None, version_id: str | None, no_unpack: bool
) -> None:
    """Download a model artifact, verify its checksum and unpack it (exit 1 on mismatch,
    or on an archive that would write outside --dest or past its bounds).

    S3 credentials and endpoint come from AWS_* and MODELREG_S3_ENDPOINT. Archives are
    unpacked into --dest; MODELREG_UNPACK_MAX_BYTES and MODELREG_UNPACK_MAX_ENTRIES bound
    them (200 GiB and 100,000 members by default).

    \b
    Example:
      modelreg fetch-artifact --uri s3://models/fraud/7/model.tar.gz --sha256 3f5a...
    """
    from modelreg.fetch import ChecksumMismatch, fetch
    from modelreg.unpack import UnsafeArchive
    from modelreg.verify.artifacts import StoreConfig

    try:
        path = fetch(
            uri, dest, sha256, StoreConfig.from_env(), version_id, unpack_archives=not no_unpack
        )
    except ChecksumMismatch as e:
        raise click.ClickException(str(e)) from e
    except UnsafeArchive as e:
        raise click.ClickException(f"{uri} was not unpacked: {e}") from e
    checked = " (sha256 verified)" if sha256 else ""
    if path.is_dir():
        click.echo(f"downloaded {uri}{checked}, unpacked into {path}")
    else:
        click.echo(f"downloaded {uri} to {path}{checked}")
