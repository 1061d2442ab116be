"""Safe unpacking of model archives (the storage-initializer's second step)."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from modelreg.sdk.upload import pack_directory
from modelreg.unpack import Limits, UnsafeArchive, is_archive, unpack


def archive(tmp_path: Path, *members: Callable[[tarfile.TarFile], None]) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for add in members:
            add(tar)
    path = tmp_path / "model.tar.gz"
    path.write_bytes(gzip.compress(buf.getvalue()))
    return path


def file(name: str, data: bytes = b"x", mode: int = 0o644) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))

    return add


def link(name: str, target: str, *, hard: bool = False) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
        info.linkname = target
        tar.addfile(info)

    return add


def special(name: str, kind: bytes) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        tar.addfile(info)

    return add


def test_what_the_sdk_packs_comes_back_as_the_directory(tmp_path: Path) -> None:
    src = tmp_path / "my-model"
    (src / "sub").mkdir(parents=True)
    (src / "model.joblib").write_bytes(b"weights")
    (src / "sub" / "config.json").write_text("{}")
    dest = tmp_path / "models"
    dest.mkdir()
    packed = dest / "my-model.tar.gz"
    with packed.open("wb") as f:
        pack_directory(src, f)
    assert is_archive(packed)
    unpack(packed, dest)
    assert (dest / "model.joblib").read_bytes() == b"weights"
    assert (dest / "sub" / "config.json").read_text() == "{}"
    assert not packed.exists()
    assert sorted(p.name for p in dest.iterdir()) == ["model.joblib", "sub"]


def test_links_inside_are_kept(tmp_path: Path) -> None:
    a = archive(
        tmp_path,
        file("weights/v1.bin", b"w"),
        link("current", "weights/v1.bin"),
        link("copy", "weights/v1.bin", hard=True),
    )
    dest = tmp_path / "out"
    dest.mkdir()
    unpack(a, dest)
    assert (dest / "current").read_bytes() == b"w"
    assert (dest / "copy").read_bytes() == b"w"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([file("/etc/passwd")], "absolute"),
        ([file("../../escape")], "climbs out"),
        ([file("a/../../escape")], "climbs out"),
        ([link("l", "/etc/passwd")], "points out"),
        ([link("l", "../outside")], "points out"),
        ([link("l", "sub"), file("l/evil")], "through a link"),
        ([link("d/up", ".."), link("e", "d/up/../x")], "leads out"),
        ([link("h", "/etc/shadow", hard=True)], "absolute"),
        ([link("h", "not-yet", hard=True)], "not a file"),
        ([special("dev", tarfile.CHRTYPE)], "special file"),
        ([special("fifo", tarfile.FIFOTYPE)], "special file"),
    ],
)
def test_an_unsafe_archive_is_refused_and_leaves_nothing(
    tmp_path: Path, members: list[Callable[[tarfile.TarFile], None]], message: str
) -> None:
    a = archive(tmp_path, file("ok.txt"), *members)
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchive, match=message):
        unpack(a, dest)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "outside").exists()


def test_size_and_count_are_bounded_while_reading(tmp_path: Path) -> None:
    # 64 MiB of zeros compress to almost nothing: refused once the bound is passed
    a = archive(tmp_path, file("big", b"\0" * (64 * 1024 * 1024)))
    assert a.stat().st_size < 1024 * 1024
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchive, match="bytes unpacked"):
        unpack(a, dest, Limits(max_bytes=1024 * 1024))
    assert list(dest.iterdir()) == []
    many = archive(tmp_path, *[file(f"f{i}") for i in range(20)])
    with pytest.raises(UnsafeArchive, match="more than 10 members"):
        unpack(many, dest, Limits(max_entries=10))


def test_modes_lose_setuid_and_world_write(tmp_path: Path) -> None:
    a = archive(tmp_path, file("run.sh", b"#!/bin/sh", mode=0o6777), file("data", mode=0o666))
    dest = tmp_path / "out"
    dest.mkdir()
    unpack(a, dest)
    assert (dest / "run.sh").stat().st_mode & 0o7777 == 0o755
    assert (dest / "data").stat().st_mode & 0o7777 == 0o644


def test_a_second_run_replaces_what_the_first_left(tmp_path: Path) -> None:
    """An init container runs again when its pod's sandbox is made again (a node that
    restarted), and its emptyDir keeps the first run's files."""
    dest = tmp_path / "out"
    dest.mkdir()
    for _ in range(2):
        a = archive(tmp_path, file("model.joblib", b"weights"), file("sub/config.json", b"{}"))
        unpack(a, dest)
    assert (dest / "model.joblib").read_bytes() == b"weights"
    assert sorted(p.name for p in dest.iterdir()) == ["model.joblib", "sub"]
    # a link left where the archive has a name is replaced, never written through
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (dest / "model.joblib").unlink()
    (dest / "model.joblib").symlink_to(outside)
    unpack(archive(tmp_path, file("model.joblib", b"new")), dest)
    assert (dest / "model.joblib").read_bytes() == b"new"
    assert not (dest / "model.joblib").is_symlink()
    assert outside.read_text() == "keep"
