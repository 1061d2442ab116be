"""hack/lib.sh's ensure_go: the machine's Go when recent enough, else the pinned toolchain
from the Go module proxy, verified by its go.sum hash (a fake proxy on file:// here)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
HACK = REPO / "hack"


def go_toolchain() -> ModuleType:
    spec = importlib.util.spec_from_file_location("go_toolchain", HACK / "go-toolchain.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def versions() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (HACK / "versions.env").read_text().splitlines()
        if "=" in line
    )
    return {k: v for k, v in pairs if not k.startswith("#")}


def test_h1_matches_the_go_commands_go_sum_hash() -> None:
    """Known answer: a module zip in Go's module cache beside the .ziphash go wrote."""
    cache = Path(
        os.environ.get("MODELREG_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelreg"
    )
    downloads = cache / "go" / "mod" / "cache" / "download"
    zips = sorted(
        (z for z in downloads.glob("**/@v/*.zip") if z.with_suffix(".ziphash").exists()),
        key=lambda z: z.stat().st_size,
    )
    if not zips:
        pytest.skip(f"no module zip in {downloads} (tools not built yet)")
    h1 = go_toolchain().h1
    for z in zips[:3]:
        assert h1(z) == z.with_suffix(".ziphash").read_text().strip(), z


def test_pinned_toolchain_satisfies_every_wrapper_module() -> None:
    v = versions()
    minimum = tuple(int(x) for x in v["GO_MIN_VERSION"].split("."))
    pinned = tuple(int(x) for x in v["GO_TOOLCHAIN_VERSION"].removeprefix("go").split("."))
    assert pinned >= minimum
    for gomod in sorted((HACK / "go").glob("*/go.mod")):
        m = re.search(r"^go (\S+)$", gomod.read_text(), re.M)
        assert m, gomod
        assert tuple(int(x) for x in m.group(1).split(".")) <= minimum, gomod
    assert re.fullmatch(r"linux-amd64=h1:[A-Za-z0-9+/]{43}=(,.*)?", v["GO_TOOLCHAIN_SUMS"])


def fake_proxy(tmp_path: Path, version: str, platform: str) -> tuple[str, str]:
    """A proxy directory serving a toolchain zip whose bin/go prints ``version``."""
    mod_version = f"v0.0.1-{version}.{platform}"
    at = tmp_path / "proxy" / "golang.org" / "toolchain" / "@v"
    at.mkdir(parents=True)
    zip_path = at / f"{mod_version}.zip"
    prefix = f"golang.org/toolchain@{mod_version}/"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr(prefix + "bin/go", f'#!/bin/sh\necho "go version {version} {platform}"\n')
        z.writestr(prefix + "pkg/tool/linux_amd64/compile", "#!/bin/sh\n")
        z.writestr(prefix + "src/README", "not executable\n")
        z.writestr(prefix + "go.mod", "module golang.org/toolchain\n")
    return (tmp_path / "proxy").as_uri(), go_toolchain().h1(zip_path)


def ensure_go(
    tmp_path: Path, path: str, proxy: str, sums: str, version: str = "go1.99.1"
) -> subprocess.CompletedProcess[str]:
    script = (
        f'source {HACK}/lib.sh && ensure_go 1.99.0 {version} "$SUMS" && command -v go && go version'
    )
    return subprocess.run(
        ["/bin/bash", "-c", script],
        env={
            "PATH": path,
            "HOME": str(tmp_path),
            "MODELREG_CACHE_DIR": str(tmp_path / "cache"),
            "MODELREG_GO_PROXY": proxy,
            "SUMS": sums,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def system_path(tmp_path: Path, old_go: str | None) -> str:
    """A PATH with python3 and coreutils but no Go, or only a Go that says ``old_go``."""
    bin_dir = tmp_path / "sysbin"
    bin_dir.mkdir()
    python = subprocess.run(
        ["/bin/sh", "-c", "command -v python3"], capture_output=True, text=True, check=True
    ).stdout.strip()
    (bin_dir / "python3").symlink_to(Path(python).resolve())
    if old_go:
        go = bin_dir / "go"
        go.write_text(f'#!/bin/sh\necho "go version {old_go} linux/amd64"\n')
        go.chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the fake proxy serves linux-amd64")
@pytest.mark.parametrize("old_go", [None, "go1.20.1"])
def test_fetches_verifies_and_unpacks_the_toolchain(tmp_path: Path, old_go: str | None) -> None:
    proxy, h1 = fake_proxy(tmp_path, "go1.99.1", "linux-amd64")
    r = ensure_go(tmp_path, system_path(tmp_path, old_go), proxy, f"linux-amd64={h1}")
    assert r.returncode == 0, r.stderr
    home = tmp_path / "cache" / "go-toolchain" / "go1.99.1"
    assert r.stdout.splitlines() == [str(home / "bin" / "go"), "go version go1.99.1 linux-amd64"]
    assert f"found: {old_go or 'none'}" in r.stderr
    assert os.access(home / "pkg/tool/linux_amd64/compile", os.X_OK)
    assert not os.access(home / "src/README", os.X_OK)
    # fetched once: the next call uses the unpacked copy (the proxy is gone)
    (tmp_path / "x").mkdir()
    warm = ensure_go(tmp_path, system_path(tmp_path / "x", old_go), "file:///nonexistent", "")
    assert warm.returncode == 0, warm.stderr
    assert "fetching" not in warm.stderr


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the fake proxy serves linux-amd64")
def test_a_toolchain_with_another_hash_is_not_installed(tmp_path: Path) -> None:
    proxy, h1 = fake_proxy(tmp_path, "go1.99.1", "linux-amd64")
    wrong = "h1:" + "A" * 43 + "="
    r = ensure_go(tmp_path, system_path(tmp_path, None), proxy, f"linux-amd64={wrong}")
    assert r.returncode != 0
    assert f"go.sum hash {h1} is not the pinned {wrong}" in r.stderr
    assert not (tmp_path / "cache" / "go-toolchain" / "go1.99.1").exists()
    assert list((tmp_path / "cache" / "go-toolchain").iterdir()) == []


def test_a_recent_enough_machine_go_is_used_as_it_is(tmp_path: Path) -> None:
    r = ensure_go(tmp_path, system_path(tmp_path, "go1.99.3"), "file:///nonexistent", "")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        str(tmp_path / "sysbin" / "go"),
        "go version go1.99.3 linux/amd64",
    ]
    assert not (tmp_path / "cache" / "go-toolchain").exists()
