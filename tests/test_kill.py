"""A run killed at any moment: no worker outlives the run, and whoever reads its output (`batch.py run |
mail`) is not left waiting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kbang_egov.pipeline import bundled_samples_dir

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted(bundled_samples_dir().glob("*.xlsx"))
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals, sessions and /proc are Linux's")

KILLS = 22  # SIGKILLs of a live run at random moments (runs that finish first come on top)
TERMS = 4  # SIGTERMs


def _session(sid: int) -> list[int]:
    """The live (not zombie) processes of a session: the run started with start_new_session has sid = pid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _assert_nothing_left(sid: int) -> None:
    deadline = time.monotonic() + 5
    while _session(sid) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = _session(sid)
    for pid in left:  # a failing test must not leave them spinning on a shared machine
        os.kill(pid, signal.SIGKILL)
    assert left == [], "a process of the killed run is still alive"


def _read_to_eof(proc: subprocess.Popen) -> bytes:
    """What the killed run wrote to stderr; fails when its pipes stay open (someone else holds them)."""
    try:
        return proc.communicate(timeout=10)[1] or b""
    except subprocess.TimeoutExpired:
        _assert_nothing_left(proc.pid)
        pytest.fail("the killed run's output pipe stayed open: a process it started holds it")


HOLDING_THE_GIL = textwrap.dedent("""
    import os, re, sys
    from kbang_egov.isolation import run_isolated

    def work(item):
        open(os.path.join(sys.argv[1], str(os.getpid())), "w").close()
        re.match(r"(a+)+$", "a" * 64 + "b")  # backtracks for ages without ever releasing the GIL

    for _ in run_isolated(work, [1, 2], workers=2, timeout=600):
        pass
""")


def test_workers_die_with_their_parent_even_mid_item(tmp_path):
    """The parent is killed while both workers are deep in an item that holds the GIL (where no watchdog
    thread in the worker could run): the kernel's parent-death signal ends them at once."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDING_THE_GIL, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 30
    while len(os.listdir(tmp_path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = [int(p) for p in os.listdir(tmp_path)]
    assert len(workers) == 2 and set(workers) <= set(_session(proc.pid))
    proc.kill()
    _read_to_eof(proc)
    _assert_nothing_left(proc.pid)
