"""One run at a time per output folder: a lock file holding the running batch's PID.

A second run finds the lock and stops (the CLI exits 3). A lock left by a run that was killed (its PID is
gone, or now belongs to a process started later) is stale: it is taken over and the takeover reported.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = ".kbang_egov.lock"


class LockHeld(Exception):
    """Another run holds the output folder; the message says who and what to do."""


@dataclass
class Holder:
    pid: int
    host: str
    started: str  # ISO time the holder took the lock
    boot_ticks: int | None = None  # the holder's process start time (Linux), to tell a reused PID

    def describe(self) -> str:
        return f"PID {self.pid} on {self.host}, since {self.started}"


class RunLock:
    """The lock on an output folder: `with RunLock(out_dir) as lock:`; lock.stale says whose stale lock
    was taken over."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / LOCK_NAME
        self.stale: Holder | None = None
        self._mine: str = ""

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        me = Holder(os.getpid(), socket.gethostname(), dt.datetime.now().isoformat(timespec="seconds"),
                    _start_ticks(os.getpid()))
        self._mine = json.dumps(me.__dict__)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read(self.path)
                if holder is not None and _alive(holder):
                    raise LockHeld(
                        f"another run ({holder.describe()}) is writing to {self.path.parent}; wait for it to "
                        f"finish. If no run is going on, delete {self.path}.") from None
                # Stale: replace it in one step, then check that no other run replaced it at the same time.
                tmp = self.path.with_name(f"{LOCK_NAME}.{os.getpid()}")
                tmp.write_text(self._mine, encoding="utf-8")
                os.replace(tmp, self.path)
                if _read_text(self.path) == self._mine:
                    self.stale = holder or Holder(0, "?", "?")
                    return
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self._mine)
            return
        raise LockHeld(f"could not take the lock {self.path}: another run keeps replacing it")

    def release(self) -> None:
        """Remove the lock if it is still ours (a run that took it over after us keeps it)."""
        if self._mine and _read_text(self.path) == self._mine:
            try:
                self.path.unlink()
            except OSError:
                pass
        self._mine = ""


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _read(path: Path) -> Holder | None:
    """The holder a lock file names, or None when it is unreadable or not ours (treated as stale)."""
    try:
        data = json.loads(_read_text(path))
        return Holder(int(data["pid"]), str(data["host"]), str(data["started"]), data.get("boot_ticks"))
    except (ValueError, KeyError, TypeError):
        return None


def _alive(h: Holder) -> bool:
    """Whether the holder's process still runs. A lock from another machine (a shared folder) cannot be
    checked from here, so it is taken as held."""
    if h.host != socket.gethostname():
        return True
    if h.pid <= 0:
        return False
    if sys.platform == "win32":
        return True  # os.kill(pid, 0) would terminate the process there; the message says how to clear it
    try:
        os.kill(h.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OSError:
        return False
    ticks = _start_ticks(h.pid)
    return h.boot_ticks is None or ticks is None or ticks == h.boot_ticks


def _start_ticks(pid: int) -> int | None:
    """A process's start time since boot (Linux /proc), so a PID reused after a reboot or a crash is not
    mistaken for the run that wrote the lock."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None
