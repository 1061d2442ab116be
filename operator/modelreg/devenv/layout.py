"""Where the local environment keeps its files, and which ports it uses."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Ports the environment listens on, all on 127.0.0.1, chosen free at first start and kept.
PORT_NAMES = (
    "etcd",
    "etcd_peer",
    "apiserver",
    "kwok",
    "s3",
    "s3_console",
    "registry",
    "private_registry",
    "webhook",
    "operator_health",
    "operator_metrics",
)


@dataclass(frozen=True)
class Ports:
    """The loopback ports of one environment."""

    etcd: int
    etcd_peer: int
    apiserver: int
    kwok: int
    s3: int
    s3_console: int
    registry: int
    private_registry: int
    webhook: int
    operator_health: int
    operator_metrics: int


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass(frozen=True)
class Layout:
    """The directory of one local environment (``.dev/`` by default)."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def env_sh(self) -> Path:
        return self.root / "env.sh"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def internal_kubeconfig(self, component: str) -> Path:
        """The kubeconfig a control-plane component uses (not for people)."""
        return self.pki / f"{component}.kubeconfig"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def pidfile(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    def ensure(self) -> None:
        for d in (self.root, self.pki, self.logs, self.run, self.data):
            d.mkdir(parents=True, exist_ok=True)
        self.pki.chmod(0o700)

    def load_ports(self) -> Ports | None:
        """The saved ports; ports added to PORT_NAMES since they were saved are allocated."""
        try:
            raw = json.loads(self.state_file.read_text())["ports"]
            saved = {k: int(raw[k]) for k in PORT_NAMES if k in raw}
        except (FileNotFoundError, KeyError, TypeError, ValueError, AttributeError):
            return None
        missing = [k for k in PORT_NAMES if k not in saved]
        if missing:
            fresh = iter(
                p for p in free_ports(len(missing) + len(saved)) if p not in saved.values()
            )
            saved.update({k: next(fresh) for k in missing})
            self.save_ports(Ports(**saved))
        return Ports(**saved)

    def _load_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _save_state(self, **values: object) -> None:
        """Update keys of state.json, keeping the others."""
        state = {**self._load_state(), **values}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.state_file)

    def save_ports(self, ports: Ports) -> None:
        self._save_state(ports=asdict(ports))

    def load_disabled(self) -> frozenset[str]:
        """Components the last ``up`` left out on purpose (``--no-operator``, kind)."""
        disabled = self._load_state().get("disabled", [])
        return frozenset(d for d in disabled if isinstance(d, str))

    def save_disabled(self, names: Iterable[str]) -> None:
        self._save_state(disabled=sorted(names))

    def load_images(self) -> dict[str, str]:
        """Images the last ``up`` pushed for the real node: name -> reference by digest."""
        images = self._load_state().get("images", {})
        return {k: v for k, v in images.items() if isinstance(v, str)}

    def save_images(self, images: dict[str, str]) -> None:
        self._save_state(images=images)

    def allocate_ports(self) -> Ports:
        """The saved ports, or new free ones (saved) on the first start."""
        ports = self.load_ports()
        if ports is None:
            ports = Ports(*free_ports(len(PORT_NAMES)))
            self.save_ports(ports)
        return ports
