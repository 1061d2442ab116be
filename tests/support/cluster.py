"""What the test session runs against: a cluster, its users, S3 and the registries."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import yaml

from modelreg.devenv.identities import PEOPLE


@dataclass
class Cluster:
    """A running cluster plus the S3 server and registries of the local environment.

    ``local``: the environment of ``modelreg dev up`` (real authentication: each person
    has a bearer token). ``kind``: a kind cluster from pytest-kind, where people are
    simulated by impersonation from the admin credentials.
    """

    kind: str  # "local" | "kind"
    kubeconfig: Path
    kubectl_bin: str
    crane_bin: str
    helm_bin: str
    env: dict[str, str]
    _clients: dict[str, kubernetes.client.ApiClient] = field(default_factory=dict)

    @property
    def people(self) -> list[str]:
        return [p.name for p in PEOPLE]

    def groups_of(self, user: str) -> tuple[str, ...]:
        return next(p.groups for p in PEOPLE if p.name == user)

    def api(self, user: str = "admin") -> kubernetes.client.ApiClient:
        """A Kubernetes API client acting as ``user``."""
        if user not in self._clients:
            config = kubernetes.client.Configuration()
            context = user if self.kind == "local" else None
            kubernetes.config.load_kube_config(
                config_file=str(self.kubeconfig), context=context, client_configuration=config
            )
            client = kubernetes.client.ApiClient(config)
            if self.kind == "kind" and user != "admin":
                client.set_default_header("Impersonate-User", user)
                for g in self.groups_of(user):
                    client.set_default_header("Impersonate-Group", g)
            self._clients[user] = client
        return self._clients[user]

    def kubectl(
        self, *args: str, user: str = "admin", stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the kubectl built with the cluster, as ``user``."""
        who = (
            [f"--context={user}"]
            if self.kind == "local"
            else (
                []
                if user == "admin"
                else [f"--as={user}", *[f"--as-group={g}" for g in self.groups_of(user)]]
            )
        )
        result = subprocess.run(
            [self.kubectl_bin, f"--kubeconfig={self.kubeconfig}", *who, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} as {user} failed ({result.returncode}): {result.stderr}"
            )
        return result

    def dry_run(self, namespace: str, obj: dict[str, Any], user: str = "admin") -> str:
        """The API server's error for ``obj`` on a server-side dry run ("" if accepted)."""
        r = self.kubectl(
            "apply",
            "--dry-run=server",
            "-n",
            namespace,
            "-f",
            "-",
            user=user,
            stdin=yaml.safe_dump(obj),
            check=False,
        )
        return r.stderr if r.returncode != 0 else ""

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()


@dataclass(frozen=True)
class PushedImage:
    """An image pushed to one of the test registries."""

    repository: str  # host:port/path
    tag: str
    digest: str  # sha256:...
    media_type: str

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def pinned(self) -> str:
        return f"{self.repository}@{self.digest}"


@dataclass
class Registries:
    """Pushes small, unique test images with crane (public or private registry)."""

    crane_bin: str
    public: str  # host:port
    private: str  # host:port
    username: str
    password: str
    workdir: Path

    def docker_config(self) -> Path:
        """A DOCKER_CONFIG directory holding the private registry's credentials."""
        d = self.workdir / "docker-config"
        d.mkdir(parents=True, exist_ok=True)
        auth = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        (d / "config.json").write_text(json.dumps({"auths": {self.private: {"auth": auth}}}))
        return d

    def dockerconfigjson(self) -> dict[str, Any]:
        """The ``.dockerconfigjson`` of a pull secret for the private registry."""
        auth = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return {
            "auths": {
                self.private: {"username": self.username, "password": self.password, "auth": auth}
            }
        }

    def crane(self, *args: str, authenticated: bool = True) -> str:
        env = dict(os.environ)
        env["DOCKER_CONFIG"] = str(
            self.docker_config() if authenticated else self.workdir / "no-credentials"
        )
        result = subprocess.run(
            [self.crane_bin, *args, "--insecure"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"crane {' '.join(args)} failed: {result.stderr}")
        return result.stdout.strip()

    def push(
        self,
        path: str,
        tag: str = "1.0",
        *,
        private: bool = False,
        oci: bool = False,
        content: bytes | None = None,
    ) -> PushedImage:
        """Push a one-layer image (unique content unless given) and return its digest."""
        host = self.private if private else self.public
        repository = f"{host}/{path}"
        layer = self.workdir / f"layer-{uuid.uuid4().hex}.tar"
        data = content if content is not None else uuid.uuid4().bytes
        with tarfile.open(layer, "w") as tar:
            info = tarfile.TarInfo("model-server/id")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        args = ["append", "-f", str(layer), "-t", f"{repository}:{tag}"]
        if oci:
            args.append("--oci-empty-base")
        self.crane(*args)
        digest = self.crane("digest", f"{repository}:{tag}")
        media = json.loads(self.crane("manifest", f"{repository}:{tag}"))["mediaType"]
        return PushedImage(repository, tag, digest, media)


@contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
