"""One run per output folder: the system's lock on a file that is never removed. A live holder stops a
second run; a killed holder's lock is free and its takeover reported; no two processes ever hold it."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kbang_egov.operations.runlock import LOCK_NAME, LockError, LockHeld, RunLock

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "kbang_egov" / "data" / "samples").glob("*.xlsx"))
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="flock and fork are tested on Linux")

HOLD = "import sys, time; from kbang_egov.operations.runlock import RunLock; lock = RunLock(sys.argv[1]); lock.acquire(); " \
       "print('held', flush=True); time.sleep(60)"


def _write_lock(folder: Path, pid: int, host: str | None = None) -> Path:
    """What a run killed while it held the lock leaves in the file."""
    path = folder / LOCK_NAME
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                "started": "2026-11-24T23:00:00"}), encoding="utf-8")
    return path


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock on tmp_path/out."""
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    yield out, proc
    proc.kill()
    proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_holds_our_pid_and_the_file_stays_empty_after(tmp_path):
    with RunLock(tmp_path) as lock:
        held = json.loads((tmp_path / LOCK_NAME).read_text())
        assert held["pid"] == os.getpid() and lock.stale is None
    assert (tmp_path / LOCK_NAME).read_text() == ""  # the file stays: the lock lives on it
    with RunLock(tmp_path) as again:
        assert again.stale is None  # released properly: no takeover to report


def test_a_live_holder_stops_a_second_run(holder):
    out, proc = holder
    with pytest.raises(LockHeld, match=f"PID {proc.pid}"):
        RunLock(out).acquire()
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == proc.pid  # untouched


def test_the_lock_is_free_the_moment_its_holder_is_killed(holder):
    out, proc = holder
    proc.kill()
    proc.wait()
    with RunLock(out) as lock:
        assert lock.stale is not None and lock.stale.pid == proc.pid


@pytest.mark.parametrize("content", ["dead", "alive", "other host", "garbage"])
def test_what_the_file_says_never_decides_only_the_lock_does(tmp_path, content):
    """A holder written in the file but not holding the lock (killed, or its PID reused by a live process, or
    on another machine sharing the folder, whose locks the system would show) was killed: taken over."""
    pid = {"dead": _dead_pid(), "alive": os.getppid(), "other host": 4242, "garbage": 0}[content]
    if content == "garbage":
        (tmp_path / LOCK_NAME).write_text("not json")
    else:
        _write_lock(tmp_path, pid, "may-chu-khac" if content == "other host" else None)
    with RunLock(tmp_path) as lock:
        assert lock.stale is not None and lock.stale.pid == pid
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


@pytest.mark.parametrize("kind", ["folder", "link", "fifo"])
def test_a_lock_path_that_is_not_a_plain_file_is_an_error(tmp_path, kind):
    path = tmp_path / LOCK_NAME
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    if kind == "folder":
        path.mkdir()
    elif kind == "link":
        path.symlink_to(victim)  # the run would otherwise write its PID into whatever the link names
    else:
        os.mkfifo(path)
    with pytest.raises(LockError, match=LOCK_NAME):
        RunLock(tmp_path).acquire()
    assert victim.read_text() == "keep me"


def test_a_second_batch_run_exits_3_while_the_lock_is_held(holder):
    out, proc = holder
    done = subprocess.run([sys.executable, "batch.py", "run", "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 3
    assert f"một lần chạy khác (PID {proc.pid}" in done.stderr and "Traceback" not in done.stderr
    assert not (out / "ranking.xlsx").exists()


def test_a_run_after_a_killed_one_takes_the_lock_over_and_says_so(tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    for sample in SAMPLES[:2]:  # a takeover does not depend on how many returns the run reads
        shutil.copyfile(sample, inbox / sample.name)
    out.mkdir()
    dead = _dead_pid()
    _write_lock(out, dead)
    (out / ".tmp-abc123.xlsx").write_bytes(b"half a workbook")  # what a killed writer leaves
    proc = subprocess.run([sys.executable, "batch.py", "run", str(inbox), "--out", str(out), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    notices = json.loads(proc.stdout)["notices"]
    assert any(f"PID {dead}" in n and "stale lock" in n for n in notices)
    assert any("đã xóa 1 tệp tạm" in n for n in notices)
    assert (out / LOCK_NAME).read_text() == "" and not list(out.glob(".tmp-*"))
    [log] = (out / "logs").glob("run_*.log")
    assert f"PID {dead}" in log.read_text(encoding="utf-8")


# --- the race: several processes started together, many times -------------------------------------------

TRIALS = 150
RACERS = 4


def _racer(out: str, start, end, violations, holders, stale) -> None:  # noqa: ANN001 - multiprocessing objects
    for _ in range(TRIALS):
        start.wait()
        try:
            lock = RunLock(Path(out))
            lock.acquire()
        except LockHeld:
            pass
        else:
            try:  # while we hold it nobody else may: a second holder finds the marker already made
                fd = os.open(os.path.join(out, "holder"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                with violations.get_lock():
                    violations.value += 1
            else:
                os.close(fd)
                with holders.get_lock():
                    holders.value += 1
                if lock.stale is not None:
                    with stale.get_lock():
                        stale.value += 1
                time.sleep(0.002)
                os.unlink(os.path.join(out, "holder"))
            lock.release()
        end.wait()


def test_several_processes_started_together_never_hold_the_lock_at_once(tmp_path):
    """A stale lock is left before each trial (a killed run), then four processes go for it at the same
    instant: in every trial at most one holds it at a time, and the stale lock is taken over exactly once."""
    ctx = multiprocessing.get_context("fork")
    start, end = ctx.Barrier(RACERS + 1), ctx.Barrier(RACERS + 1)
    violations, holders, stale = ctx.Value("i", 0), ctx.Value("i", 0), ctx.Value("i", 0)
    procs = [ctx.Process(target=_racer, args=(str(tmp_path), start, end, violations, holders, stale))
             for _ in range(RACERS)]
    for p in procs:
        p.start()
    dead = _dead_pid()
    takeovers = []
    for _ in range(TRIALS):
        _write_lock(tmp_path, dead)
        before = stale.value
        start.wait(timeout=30)
        end.wait(timeout=30)
        takeovers.append(stale.value - before)
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * RACERS
    assert violations.value == 0
    assert holders.value >= TRIALS  # every trial had a holder
    assert takeovers == [1] * TRIALS
