"""One run per output folder: a live holder stops a second run; a dead one's lock is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kbang_egov.runlock import LOCK_NAME, LockHeld, RunLock, _start_ticks

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(os.name != "posix", reason="PID liveness is checked with POSIX signals")


def _write_lock(folder: Path, pid: int, ticks: int | None, host: str | None = None) -> Path:
    path = folder / LOCK_NAME
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(), "started": "2026-11-24T23:00:00",
                                "boot_ticks": ticks}), encoding="utf-8")
    return path


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_holds_our_pid_and_is_removed_after(tmp_path):
    with RunLock(tmp_path) as lock:
        held = json.loads((tmp_path / LOCK_NAME).read_text())
        assert held["pid"] == os.getpid() and lock.stale is None
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_live_holder_stops_a_second_run(tmp_path, sleeper):
    path = _write_lock(tmp_path, sleeper.pid, _start_ticks(sleeper.pid))
    with pytest.raises(LockHeld, match=f"PID {sleeper.pid}"):
        RunLock(tmp_path).acquire()
    assert json.loads(path.read_text())["pid"] == sleeper.pid  # untouched


@pytest.mark.parametrize("content", ["dead", "reused", "garbage"])
def test_a_stale_lock_is_taken_over_and_reported(tmp_path, content):
    if content == "dead":
        pid = _dead_pid()
        _write_lock(tmp_path, pid, None)
    elif content == "reused":  # our own PID, but the lock was written by a process that started earlier
        pid = os.getpid()
        _write_lock(tmp_path, pid, (_start_ticks(pid) or 0) - 1)
    else:
        pid = 0
        (tmp_path / LOCK_NAME).write_text("not json")
    with RunLock(tmp_path) as lock:
        assert lock.stale is not None and lock.stale.pid == pid
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_a_lock_from_another_machine_is_respected(tmp_path):
    _write_lock(tmp_path, _dead_pid(), None, host="may-chu-khac")
    with pytest.raises(LockHeld, match="may-chu-khac"):
        RunLock(tmp_path).acquire()


def test_second_batch_run_exits_3_while_the_lock_is_held(tmp_path, sleeper):
    out = tmp_path / "out"
    out.mkdir()
    _write_lock(out, sleeper.pid, _start_ticks(sleeper.pid))
    proc = subprocess.run([sys.executable, "batch.py", "run", "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 3
    assert f"another run (PID {sleeper.pid}" in proc.stderr and LOCK_NAME in proc.stderr
    assert not (out / "ranking.xlsx").exists()


def test_a_run_after_a_killed_one_takes_the_lock_over_and_says_so(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = _dead_pid()
    _write_lock(out, dead, None)
    (out / ".tmp-abc123.xlsx").write_bytes(b"half a workbook")  # what a killed writer leaves
    proc = subprocess.run([sys.executable, "batch.py", "run", "--out", str(out), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    notices = json.loads(proc.stdout)["notices"]
    assert any(f"PID {dead}" in n and "stale lock" in n for n in notices)
    assert any("removed 1 temporary file" in n for n in notices)
    assert not (out / LOCK_NAME).exists() and not list(out.glob(".tmp-*"))
    [log] = (out / "logs").glob("run_*.log")
    assert f"PID {dead}" in log.read_text(encoding="utf-8")
