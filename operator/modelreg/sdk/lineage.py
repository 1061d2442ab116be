"""Lineage captured automatically at registration: git, Python, tracker runs (pure, no
network; git through subprocess, tolerating a missing git or repository)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from modelreg.api.model_version import Code, Run

#: tag keys written by the SDK (label-like keys, within the CRD's key rule)
TAG_PREFIX = "lineage.modelreg.dev"
TAG_GIT_DIRTY = f"{TAG_PREFIX}/git-dirty"
TAG_GIT_BRANCH = f"{TAG_PREFIX}/git-branch"
TAG_PYTHON = f"{TAG_PREFIX}/python"
TAG_PACKAGES_SHA256 = f"{TAG_PREFIX}/packages-sha256"
TAG_PACKAGES_COUNT = f"{TAG_PREFIX}/packages-count"
TAG_RUN_PREFIX = f"{TAG_PREFIX}/run-"

#: tracker environment variables -> system name, in order of preference for lineage.run
RUN_VARIABLES = (
    ("MLFLOW_RUN_ID", "mlflow"),
    ("WANDB_RUN_ID", "wandb"),
    ("CLEARML_TASK_ID", "clearml"),
    ("NEPTUNE_RUN_ID", "neptune"),
    ("COMET_EXPERIMENT_KEY", "comet"),
)
_COMMIT = re.compile(r"^[a-f0-9]{4,64}$")
_TAG_VALUE_MAX = 256


@dataclass
class GitInfo:
    repository: str | None
    commit: str | None
    dirty: bool
    branch: str | None
    path: str | None
    """The registered path relative to the repository root."""


@dataclass
class CapturedLineage:
    """What the SDK found about the environment of a registration."""

    git: GitInfo | None = None
    python: str = field(default_factory=platform.python_version)
    packages_sha256: str = ""
    packages_count: int = 0
    runs: dict[str, str] = field(default_factory=dict)
    """system -> run id"""
    run_urls: dict[str, str] = field(default_factory=dict)

    def code(self) -> Code | None:
        if self.git is None or not self.git.repository:
            return None
        return Code(repository=self.git.repository, commit=self.git.commit, path=self.git.path)

    def run(self) -> Run | None:
        for _, system in RUN_VARIABLES:
            if system in self.runs:
                return Run(system=system, id=self.runs[system], url=self.run_urls.get(system))
        return None

    def tags(self) -> dict[str, str]:
        tags = {
            TAG_PYTHON: self.python,
            TAG_PACKAGES_SHA256: self.packages_sha256,
            TAG_PACKAGES_COUNT: str(self.packages_count),
        }
        if self.git is not None and self.git.commit:
            tags[TAG_GIT_DIRTY] = "true" if self.git.dirty else "false"
            if self.git.branch:
                tags[TAG_GIT_BRANCH] = self.git.branch
        primary = self.run()
        for system, run_id in self.runs.items():
            if primary is None or system != primary.system:
                tags[f"{TAG_RUN_PREFIX}{system}"] = run_id
        return {k: v[:_TAG_VALUE_MAX] for k, v in tags.items() if v}


def strip_credentials(url: str) -> str:
    """A remote URL without user:password@ (tokens in remotes must not reach the API)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme in ("http", "https", "ssh", "git") and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        user = parts.netloc.rsplit("@", 1)[0]
        # ssh://git@host is a user name, not a secret: keep it
        keep = f"{user}@" if parts.scheme == "ssh" and ":" not in user else ""
        return urlunsplit((parts.scheme, keep + host, parts.path, parts.query, ""))
    return url


def _git(cwd: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        result = subprocess.run(
            [git, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_info(where: Path) -> GitInfo | None:
    """The repository of ``where`` (a file or directory): remote origin, HEAD, dirty flag."""
    where = where.resolve()
    cwd = where if where.is_dir() else where.parent
    if not cwd.exists():
        return None
    root = _git(cwd, "rev-parse", "--show-toplevel")
    if root is None:
        return None
    commit = _git(cwd, "rev-parse", "HEAD")
    if commit is not None and not _COMMIT.match(commit):
        commit = None
    remote = _git(cwd, "config", "--get", "remote.origin.url")
    status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    branch = _git(cwd, "rev-parse", "--abbrev-ref", "HEAD")
    try:
        rel = str(where.relative_to(Path(root).resolve()))
    except ValueError:
        rel = None
    return GitInfo(
        repository=strip_credentials(remote) if remote else f"file://{root}",
        commit=commit,
        dirty=bool(status),
        branch=branch if branch and branch != "HEAD" else None,
        path=rel if rel and rel != "." else None,
    )


def packages() -> tuple[str, int]:
    """A SHA-256 over the sorted ``name==version`` of the installed distributions, and their
    count (the full list does not fit the API's bounds; the hash tells environments apart)."""
    names = sorted(
        {
            f"{(d.metadata['Name'] or '').lower()}=={d.version}"
            for d in importlib.metadata.distributions()
            if d.metadata["Name"]
        }
    )
    return hashlib.sha256("\n".join(names).encode()).hexdigest(), len(names)


def runs_from_env(env: dict[str, str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    env = dict(os.environ) if env is None else env
    runs = {system: env[var] for var, system in RUN_VARIABLES if env.get(var)}
    urls: dict[str, str] = {}
    tracking = env.get("MLFLOW_TRACKING_URI", "")
    if "mlflow" in runs and tracking.startswith(("http://", "https://")):
        urls["mlflow"] = f"{tracking.rstrip('/')}/#/runs/{runs['mlflow']}"
    return runs, urls


def capture(path: Path | None = None, env: dict[str, str] | None = None) -> CapturedLineage:
    """Lineage of a registration of ``path`` (or of the current directory)."""
    sha, count = packages()
    runs, urls = runs_from_env(env)
    git = git_info(path) if path is not None else None
    if git is None:
        git = git_info(Path.cwd())
        if git is not None:
            git.path = None
    return CapturedLineage(
        git=git, packages_sha256=sha, packages_count=count, runs=runs, run_urls=urls
    )
