"""Unpack a model archive safely: the storage-initializer's second step.

The SDK uploads a directory as ``<name>.tar.gz`` (sdk/upload.py); a model server wants
the directory. After the archive's sha256 has been checked, :func:`unpack` turns it into
files under the model directory, refusing what would escape it or exhaust the pod:

- no absolute names, no ``..``, nothing through a symbolic link the archive made;
- symbolic links only to a place inside the directory; hard links only to a member
  already unpacked; no devices, FIFOs or sockets;
- at most :data:`MAX_ENTRIES` members and :data:`MAX_BYTES` bytes in all (both
  configurable), counted as the archive is read, so a "zip bomb" stops early;
- no set-uid, set-gid or sticky bits, nothing writable by others.

It unpacks into a staging directory next to the result and moves the members into place
only when the whole archive was good: a refused archive leaves nothing behind. Run
again (a pod's init container is, when its sandbox is made again), it replaces what the
earlier run left.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

#: names the storage-initializer unpacks (anything else is served as the file it is)
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
#: default bounds; MODELREG_UNPACK_MAX_ENTRIES / MODELREG_UNPACK_MAX_BYTES override
MAX_ENTRIES = 100_000
MAX_BYTES = 200 * 1024**3
_CHUNK = 1024 * 1024


class UnsafeArchive(Exception):
    """The archive holds something that must not be unpacked; nothing was written."""


@dataclass(frozen=True)
class Limits:
    max_entries: int = MAX_ENTRIES
    max_bytes: int = MAX_BYTES

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            int(os.environ.get("MODELREG_UNPACK_MAX_ENTRIES", MAX_ENTRIES)),
            int(os.environ.get("MODELREG_UNPACK_MAX_BYTES", MAX_BYTES)),
        )


def is_archive(path: Path) -> bool:
    return path.name.endswith(ARCHIVE_SUFFIXES)


def _clean_name(name: str) -> str:
    """The member's path relative to the directory, or UnsafeArchive."""
    if name.startswith("/") or "\\" in name or "\0" in name:
        raise UnsafeArchive(f"member {name!r} has an absolute or malformed name")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"member {name!r} climbs out of the model directory ('..')")
    return "/".join(parts)


def _inside(link_dir: str, target: str) -> bool:
    if target.startswith("/"):
        return False
    resolved = posixpath.normpath(posixpath.join(link_dir, target))
    return resolved != ".." and not resolved.startswith("../")


def unpack(archive: Path, dest: Path, limits: Limits | None = None) -> list[str]:
    """Unpack ``archive`` into ``dest`` (which must exist); returns the top-level names.

    The archive file is removed once its members are in place.
    """
    limits = limits or Limits.from_env()
    staging = dest / f".unpack-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        names = _extract(archive, staging, limits)
        top = sorted({n.split("/", 1)[0] for n in names})
        for name in top:
            # what an earlier run left (an init container runs again when its pod's
            # sandbox is made again, and the emptyDir keeps its files): replaced by
            # these checked bytes; a link is removed, never followed
            target = dest / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(staging / name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    archive.unlink()
    return top


def _extract(archive: Path, root: Path, limits: Limits) -> list[str]:
    names: list[str] = []
    links: set[str] = set()  # symbolic links made so far: never a path component
    files: set[str] = set()
    total = 0
    # "r|*": a stream, read once, so sizes are counted as the bytes arrive
    with tarfile.open(archive, mode="r|*") as tar:
        for member in tar:
            if len(names) >= limits.max_entries:
                raise UnsafeArchive(f"more than {limits.max_entries} members")
            name = _clean_name(member.name)
            if not name:
                continue
            parents = name.split("/")[:-1]
            for i in range(1, len(parents) + 1):
                if "/".join(parents[:i]) in links:
                    raise UnsafeArchive(f"member {name!r} would be written through a link")
            path = root / name
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
                path.chmod(0o755)
            elif member.isreg():
                total += member.size
                if total > limits.max_bytes:
                    raise UnsafeArchive(f"more than {limits.max_bytes} bytes unpacked")
                path.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:  # a regular file always has a body; a broken archive
                    raise UnsafeArchive(f"member {name!r} has no content")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as out:
                    written = 0
                    while chunk := source.read(_CHUNK):
                        written += len(chunk)
                        out.write(chunk)
                if written != member.size:
                    raise UnsafeArchive(f"member {name!r} is truncated")
                path.chmod(0o755 if member.mode & 0o111 else 0o644)
                files.add(name)
            elif member.issym():
                if not _inside(posixpath.dirname(name), member.linkname):
                    raise UnsafeArchive(
                        f"link {name!r} points out of the model directory ({member.linkname!r})"
                    )
                path.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(member.linkname, path)
                links.add(name)
            elif member.islnk():
                target = _clean_name(member.linkname)
                if target not in files:
                    raise UnsafeArchive(f"hard link {name!r} to {member.linkname!r}, not a file")
                path.parent.mkdir(parents=True, exist_ok=True)
                os.link(root / target, path)
                files.add(name)
            else:
                raise UnsafeArchive(f"member {name!r} is a device, FIFO or other special file")
            names.append(name)
    # each link was checked on its own; a chain of them (a link to "..", then one
    # through it) can still lead out, which only resolving them all shows
    real_root = root.resolve()
    for link in links:
        if not Path(os.path.realpath(root / link)).is_relative_to(real_root):
            raise UnsafeArchive(f"link {link!r} leads out of the model directory")
    return names
