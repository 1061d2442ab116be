"""Fixtures of the SDK tests: clients acting as the demo users."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelreg import devenv
from modelreg.sdk import Client
from tests.support.cluster import Cluster


@pytest.fixture
def clients(
    cluster: Cluster, dev_env: devenv.Environment, namespace: str, s3_bucket: str
) -> Iterator[Callable[[str], Client]]:
    """``clients("alice")``: a Client in the test namespace, connected through alice's
    context of the environment's kubeconfig (as a user would), uploading to a fresh bucket."""
    made: list[Client] = []
    v = dev_env.env_vars()

    def make(user: str) -> Client:
        c = Client(
            namespace,
            context=user,
            kubeconfig=cluster.kubeconfig,
            s3_endpoint=v["MODELREG_S3_ENDPOINT"],
            s3_bucket=s3_bucket,
            s3_region=v["AWS_DEFAULT_REGION"],
            aws_access_key_id=v["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=v["AWS_SECRET_ACCESS_KEY"],
            poll_interval=0.2,
        )
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A git repository with a model directory committed, and a remote with a token in it."""
    repo = tmp_path / "fraud"
    (repo / "model").mkdir(parents=True)
    (repo / "model" / "weights.bin").write_bytes(b"\x00\x01" * 5000)
    (repo / "model" / "config.json").write_text('{"max_depth": 8}\n')
    (repo / "train.py").write_text("print('training')\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "dana@example.com")
    git(repo, "config", "user.name", "dana")
    git(repo, "remote", "add", "origin", "https://dana:s3cr3t-token@git.example.com/ml/fraud.git")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "train")
    return repo


def sha_of(path: Path) -> Any:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
