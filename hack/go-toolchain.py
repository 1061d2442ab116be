"""Fetch the official Go toolchain from the Go module proxy, verified, into a directory.

    python3 hack/go-toolchain.py <version> <sums> <dest>

The Go project publishes every release as the module ``golang.org/toolchain`` (version
``v0.0.1-go1.X.Y.<os>-<arch>``); the go command itself downloads it this way when a go.mod
asks for a newer Go. ``sums`` is the pinned list of go.sum hashes from hack/versions.env
(``linux-amd64=h1:...[,linux-arm64=h1:...]``); the zip is checked against the one for this
machine (Go's "h1" dirhash: SHA-256 over the SHA-256 of each file, as in go.sum), then
unpacked into ``dest`` (``dest/bin/go``). Nothing is installed when the hash differs.
Run by ``ensure_go`` in hack/lib.sh; needs only the Python standard library.
"""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import shutil
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

MODULE = "golang.org/toolchain"
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def h1(zip_path: Path) -> str:
    """Go's go.sum hash of a module zip (golang.org/x/mod/sumdb/dirhash.HashZip)."""
    summary = hashlib.sha256()
    with zipfile.ZipFile(zip_path) as z:
        for name in sorted(z.namelist()):
            if "\n" in name:
                raise ValueError(f"file name with a newline in {zip_path}")
            content = hashlib.sha256()
            with z.open(name) as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    content.update(chunk)
            summary.update(f"{content.hexdigest()}  {name}\n".encode())
    return "h1:" + base64.b64encode(summary.digest()).decode()


def platform_name() -> str:
    arch = ARCHES.get(platform.machine().lower())
    if sys.platform != "linux" or arch is None:
        raise SystemExit(f"no pinned Go toolchain for {sys.platform}/{platform.machine()}")
    return f"linux-{arch}"


def pinned_sum(sums: str, plat: str) -> str:
    for item in sums.split(","):
        key, _, value = item.strip().partition("=")
        if key == plat and value.startswith("h1:"):
            return value
    raise SystemExit(
        f"hack/versions.env pins no Go toolchain hash for {plat}: install Go yourself "
        "(https://go.dev/doc/install) or add its go.sum hash to GO_TOOLCHAIN_SUMS"
    )


def extract(zip_path: Path, prefix: str, dest: Path) -> None:
    """Unpack the files under ``prefix`` into ``dest``; bin/ and pkg/tool/ are executable."""
    with zipfile.ZipFile(zip_path) as z:
        for info in z.infolist():
            if not info.filename.startswith(prefix) or info.is_dir():
                continue
            rel = info.filename[len(prefix) :]
            target = dest / rel
            if ".." in Path(rel).parts or Path(rel).is_absolute():
                raise ValueError(f"unsafe path in the toolchain zip: {info.filename}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            # module zips keep no modes; like the go command, mark the tools executable
            executable = rel.startswith(("bin/", "pkg/tool/")) or (info.external_attr >> 16) & 0o111
            target.chmod(0o755 if executable else 0o644)


def fetch(version: str, sums: str, dest: Path) -> None:
    plat = platform_name()
    want = pinned_sum(sums, plat)
    proxy = os.environ.get("MODELREG_GO_PROXY", "https://proxy.golang.org").rstrip("/")
    mod_version = f"v0.0.1-{version}.{plat}"
    url = f"{proxy}/{MODULE}/@v/{mod_version}.zip"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.parent / f".{dest.name}.zip.part"
    tmp = dest.parent / f".{dest.name}.tmp"
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=60) as r, part.open("wb") as out:  # noqa: S310
            shutil.copyfileobj(r, out, 1 << 20)
        downloaded = time.monotonic()
        got = h1(part)
        if got != want:
            raise SystemExit(f"{url}: go.sum hash {got} is not the pinned {want}; not installed")
        shutil.rmtree(tmp, ignore_errors=True)
        extract(part, f"{MODULE}@{mod_version}/", tmp)
        if not (tmp / "bin" / "go").is_file():
            raise SystemExit(f"{url} holds no bin/go")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        size = part.stat().st_size
        print(
            f"Go {version} ({plat}): downloaded {size / 2**20:.0f} MiB in "
            f"{downloaded - started:.1f}s, verified {want}, unpacked in "
            f"{time.monotonic() - downloaded:.1f}s into {dest}",
            file=sys.stderr,
        )
    finally:
        part.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit(__doc__)
    fetch(argv[0], argv[1], Path(argv[2]))


if __name__ == "__main__":
    main(sys.argv[1:])
