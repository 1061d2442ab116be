"""Start, find and stop the environment's background processes (the only OS-level I/O).

Each process runs in a session of its own, so it outlives ``modelreg dev up`` and
``dev down`` can stop its whole process group. A pidfile records the pid and the
process start time, so a pid reused by an unrelated process is never signalled.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Processes started by this Python process: kept so they are reaped (no zombies) and so
#: ``Popen.__del__`` never warns about a child that is meant to outlive its handle.
_children: dict[int, subprocess.Popen[bytes]] = {}


@atexit.register
def _release_children() -> None:
    """Let the daemons outlive this process without ``Popen`` warning that they still run."""
    for child in _children.values():
        if child.poll() is None:
            child.returncode = 0  # not waited for, on purpose: it runs on after we exit
    _children.clear()


@dataclass(frozen=True)
class Running:
    """A process this environment started, as recorded in its pidfile."""

    pid: int
    start_time: str


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/pid/stat), or None if gone."""
    if (child := _children.get(pid)) is not None and child.poll() is not None:
        del _children[pid]  # reaped
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ")"
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited
        return None
    return fields[19]


def read_pidfile(pidfile: Path) -> Running | None:
    """The process recorded in ``pidfile`` if it still runs, else None."""
    try:
        pid_text, start = pidfile.read_text().split()
        pid = int(pid_text)
    except (FileNotFoundError, ValueError):
        return None
    if _start_time(pid) != start:
        return None
    return Running(pid, start)


def start(
    argv: Sequence[str],
    *,
    pidfile: Path,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Running:
    """Start ``argv`` detached, appending its output to ``log``; record it in ``pidfile``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(
            f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(argv)}\n".encode()
        )
        out.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    start_time = None
    for _ in range(100):
        start_time = _start_time(proc.pid)
        if start_time is not None:
            break
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[0]} exited at once with code {proc.returncode}; see {log}")
        time.sleep(0.01)
    if start_time is None:
        raise RuntimeError(f"could not read the start time of {argv[0]} (pid {proc.pid})")
    pidfile.write_text(f"{proc.pid} {start_time}\n")
    return Running(proc.pid, start_time)


def stop(pidfile: Path, timeout: float = 15.0) -> bool:
    """Stop the process group recorded in ``pidfile``: SIGTERM, then SIGKILL after timeout.

    Returns True if something was running. The pidfile is removed either way.
    """
    running = read_pidfile(pidfile)
    if running is None:
        pidfile.unlink(missing_ok=True)
        return False
    _signal_group(running.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(running.pid):
        time.sleep(0.1)
    if _group_alive(running.pid):
        _signal_group(running.pid, signal.SIGKILL)
        while _group_alive(running.pid):
            time.sleep(0.05)
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process of the group still exists."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) != pgid:
            continue
        if fields[0] == "Z" and (child := _children.get(int(entry.name))) is not None:
            child.poll()  # reap our own exited child
        elif fields[0] != "Z":
            return True
    return False
