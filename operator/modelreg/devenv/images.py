"""Images for the real node, made without Docker and without pulling a base image.

A layer is a tarball written here from a directory (sorted, owned by root, time 0, so
the same files always give the same digest); ``crane append`` puts the layers on an
empty base and ``crane mutate`` sets the entrypoint, user and environment. What an
image is built from decides its tag (:func:`content_tag`), so it is pushed only when an
input changed.

- the pause image (the sandbox of every pod): the pause program that
  ``hack/build-tools.sh`` compiles from the Kubernetes module's own source;
- a busybox image (Debian's static busybox): the real node's tests' shell, HTTP server
  and failing processes.
"""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PLATFORM = "linux/amd64"
BUSYBOX = Path("/bin/busybox")
#: the applets the busybox image links (what the tests use)
BUSYBOX_APPLETS = ("sh", "sleep", "cat", "echo", "httpd", "wget", "nc", "ls", "false", "true")


class ImageError(RuntimeError):
    """An image could not be built or pushed."""


@dataclass(frozen=True)
class File:
    """One file of a layer: its path in the image, its content (bytes or a host file)."""

    path: str
    source: Path | None = None
    data: bytes = b""
    mode: int = 0o755
    #: a symbolic link to this target instead of content
    link: str | None = None


@dataclass(frozen=True)
class Spec:
    """What an image is: its layers' files and its configuration."""

    repository: str
    files: tuple[File, ...]
    entrypoint: tuple[str, ...]
    user: str = "65532:65532"
    env: tuple[str, ...] = field(default=("PATH=/bin",))


def content_tag(spec: Spec) -> str:
    """A tag that changes whenever anything the image is made of changes."""
    h = hashlib.sha256()
    for f in spec.files:
        h.update(f"{f.path}\0{f.mode}\0{f.link}\0".encode())
        h.update(f.source.read_bytes() if f.source else f.data)
    h.update(repr((spec.entrypoint, spec.user, spec.env)).encode())
    return "c-" + h.hexdigest()[:16]


def write_layer(files: Iterable[File], out: Path) -> None:
    """A reproducible layer tarball of ``files`` (parent directories included)."""
    entries = sorted(files, key=lambda f: f.path)
    dirs = sorted({str(p) for f in entries for p in Path(f.path.lstrip("/")).parents} - {"."})
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for f in entries:
            info = tarfile.TarInfo(f.path.lstrip("/"))
            info.mode = f.mode
            if f.link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, f.link
                tar.addfile(info)
                continue
            data = f.source.read_bytes() if f.source else f.data
            info.size = len(data)
            with tempfile.TemporaryFile() as buf:
                buf.write(data)
                buf.seek(0)
                tar.addfile(info, buf)


def _crane(crane: str, *args: str) -> str:
    r = subprocess.run([crane, *args], capture_output=True, text=True, check=False, timeout=300)
    if r.returncode != 0:
        raise ImageError(f"crane {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout.strip()


def ensure(crane: str, registry: str, spec: Spec) -> str:
    """``spec`` pushed to ``registry`` (once per content); its reference by digest."""
    ref = f"{registry}/{spec.repository}:{content_tag(spec)}"
    try:
        digest = _crane(crane, "digest", "--insecure", ref)
    except ImageError:
        with tempfile.TemporaryDirectory() as tmp:
            layer = Path(tmp) / "layer.tar"
            write_layer(spec.files, layer)
            _crane(crane, "append", "--insecure", "-f", str(layer), "-t", ref)
        # without a platform the config's os/architecture are empty, and the kubelet
        # refuses the image (REAL-NODE.md)
        mutate = ["mutate", "--insecure", f"--set-platform={PLATFORM}", f"--user={spec.user}"]
        mutate += [f"--entrypoint={','.join(spec.entrypoint)}"]
        mutate += [f"--env={e}" for e in spec.env]
        _crane(crane, *mutate, ref)
        digest = _crane(crane, "digest", "--insecure", ref)
    return f"{registry}/{spec.repository}@{digest}"


def pause(program: Path) -> Spec:
    return Spec(
        "modelreg-dev/pause",
        (File("/pause", source=program),),
        entrypoint=("/pause",),
        user="65535:65535",
        env=(),
    )


def busybox(applets: Sequence[str] = BUSYBOX_APPLETS) -> Spec:
    if not BUSYBOX.exists():
        raise ImageError(f"{BUSYBOX} is missing (Debian package busybox-static)")
    files = [File("/bin/busybox", source=BUSYBOX)]
    files += [File(f"/bin/{a}", link="busybox") for a in applets]
    return Spec("modelreg-dev/busybox", tuple(files), entrypoint=("/bin/sh",))


# --- the images hack/build-images.sh builds (modelreg, mlserver) ----------------------------


def built(build: bool = True) -> dict[str, Path]:
    """The images ``hack/build-images.sh`` made (name -> directory); builds what is
    missing first if ``build`` (a no-op when every input is unchanged)."""
    from modelreg.devenv.tools import source_dir

    script = source_dir() / "hack" / "build-images.sh"
    args = ["bash", str(script)] + ([] if build else ["--print"])
    result = subprocess.run(args, stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise ImageError(f"{script} failed (exit {result.returncode}); see its output above")
    found = {}
    for line in result.stdout.splitlines():
        name, _, directory = line.partition(" ")
        if directory:
            found[name] = Path(directory)
    return found


def push_built(crane: str, registry: str, name: str, directory: Path) -> str:
    """A built image (its layers and config flags) in ``registry``, by digest; pushed
    once per content (the directory's key is its tag)."""
    key = directory.name.rsplit("-", 1)[-1]
    ref = f"{registry}/modelreg-dev/{name}:{key}"
    try:
        digest = _crane(crane, "digest", "--insecure", ref)
    except ImageError:
        layers = sorted((directory / "layers").glob("*.tar.gz"))
        if not layers:
            raise ImageError(f"{directory} holds no layers; rebuild it") from None
        append = ["append", "--insecure", "-t", ref]
        for layer in layers:
            append += ["-f", str(layer)]
        _crane(crane, *append)
        flags = (directory / "config.flags").read_text().splitlines()
        _crane(crane, "mutate", "--insecure", f"--set-platform={PLATFORM}", *flags, ref)
        digest = _crane(crane, "digest", "--insecure", ref)
    return f"{registry}/modelreg-dev/{name}@{digest}"
