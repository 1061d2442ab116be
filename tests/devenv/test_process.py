import os
import sys
import time

from modelreg.devenv import process


def test_start_records_and_stop_kills_the_whole_group(tmp_path):
    pidfile, log = tmp_path / "p.pid", tmp_path / "p.log"
    # a parent that spawns a child: both must be gone after stop()
    script = (
        "import subprocess, time; subprocess.Popen(['sleep', '300']); "
        "print('up', flush=True); time.sleep(300)"
    )
    running = process.start([sys.executable, "-c", script], pidfile=pidfile, log=log)
    assert process.read_pidfile(pidfile) == running
    deadline = time.monotonic() + 10
    while "up" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.stop(pidfile, timeout=5) is True
    assert not pidfile.exists()
    assert not process._group_alive(running.pid)
    assert process.stop(pidfile) is False


def test_stale_pidfile_is_not_trusted(tmp_path):
    pidfile = tmp_path / "p.pid"
    # our own pid with a wrong start time stands for a reused pid: never signal it
    pidfile.write_text(f"{os.getpid()} 1\n")
    assert process.read_pidfile(pidfile) is None
    assert process.stop(pidfile) is False
    assert not pidfile.exists()


def test_process_that_ignores_sigterm_is_killed(tmp_path):
    pidfile = tmp_path / "p.pid"
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(300)"
    )
    log = tmp_path / "p.log"
    running = process.start([sys.executable, "-c", script], pidfile=pidfile, log=log)
    deadline = time.monotonic() + 10
    while "up" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    assert process.stop(pidfile, timeout=0.5)
    assert time.monotonic() - started < 5
    assert not process._group_alive(running.pid)
