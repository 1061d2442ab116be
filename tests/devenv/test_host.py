"""The real node's start-up checks: each missing piece said plainly, with its package."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelreg.devenv import host


def test_this_machine_has_what_the_real_node_needs(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--no-real-node"):
        pytest.skip("the real node is turned off (--no-real-node / MODELREG_TEST_REAL_NODE=0)")
    # where the real node's tests run, a problem here would fail them all obscurely
    assert host.preflight() == []


def test_each_missing_piece_is_said_plainly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setattr(host, "_effective_caps", lambda: 1 << 21)  # CAP_SYS_ADMIN only
    real_which = shutil.which
    monkeypatch.setattr(
        "shutil.which", lambda tool: None if tool == "iptables" else real_which(tool)
    )
    monkeypatch.setattr(host, "RUNC", tmp_path / "runc")
    cni = tmp_path / "cni"
    cni.mkdir()
    (cni / "loopback").touch()
    monkeypatch.setattr(host, "CNI_BIN", cni)
    problems = host.preflight()
    assert problems == [
        "the real node needs root (network namespaces, mounts, cgroups)",
        "the real node needs CAP_NET_ADMIN, which this process does not have",
        "`iptables` is missing (Debian package iptables)",
        f"{tmp_path / 'runc'} is missing (Debian package runc)",
        f"CNI plugin {cni / 'bridge'} is missing (Debian package containernetworking-plugins)",
        f"CNI plugin {cni / 'host-local'} is missing (Debian package containernetworking-plugins)",
    ]


def test_dev_up_refuses_with_the_problems_and_the_way_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from modelreg import devenv
    from modelreg.devenv.cluster import DevEnvError

    monkeypatch.setattr(host, "preflight", lambda: ["`ip` is missing (Debian package iproute2)"])
    with pytest.raises(DevEnvError) as e:
        devenv.up(tmp_path / "env", log=lambda _: None)
    message = str(e.value)
    assert "this machine cannot run the real node: `ip` is missing" in message
    assert "modelreg dev up --no-real-node" in message
    # nothing was started
    assert not list((tmp_path / "env").glob("**/*.pid"))
