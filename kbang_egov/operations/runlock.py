"""One run at a time per output folder: an exclusive lock, taken by the operating system, on a file that is
never removed (DIR/.kbang_egov.lock).

The lock is `flock` on POSIX (`msvcrt.locking` on Windows): taking it is one atomic system call, so two
runs started at the same instant can never both hold it, and the system releases it when the process ends
however it ends (SIGKILL, a crash, a reboot). The file is only the place of the lock: it is never deleted
(a deleted lock file lets a third run lock a new file while the second still waits on the old one) and
holds the holder's PID, host and start time for the message a second run prints. A run that finds a
holder written in the file once it has the lock knows that run ended without releasing it (killed) and
reports the takeover; release empties the file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from .isolation import termination_deferred

LOCK_NAME = ".kbang_egov.lock"
_WINDOWS_LOCK_OFFSET = 2**30  # msvcrt locks a byte range: one far past the holder text, which stays readable


class LockHeld(Exception):
    """Another run holds the output folder; the message says who and what to do."""


class LockError(Exception):
    """The lock file cannot be opened or locked (a folder or a link in its place, no permission, a file
    system without locks); the message names the path."""


@dataclass
class Holder:
    pid: int
    host: str
    started: str  # ISO time the holder took the lock

    def describe(self) -> str:
        return f"PID {self.pid} trên máy {self.host}, từ {self.started}"


class RunLock:
    """The lock on an output folder: `with RunLock(out_dir) as lock:`; lock.stale names the run that was
    killed while it held the lock, when there was one."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / LOCK_NAME
        self.stale: Holder | None = None
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        # A SIGTERM (systemd's stop) is held back while the lock is taken and delivered right after, here:
        # the lock is then released before the run stops, so the file never keeps the name of a run that
        # ended. A run stopped before it took the lock leaves the file as it was.
        try:
            with termination_deferred():
                self.acquire()
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, or raise LockHeld (another run has it) or LockError (it cannot be taken)."""
        # No link is followed: a link put in the lock's place would have this run write where it points.
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise LockError(f"không mở được tệp khóa {self.path}: {exc.strerror or exc}; thư mục kết quả "
                            f"phải ghi được và {LOCK_NAME} phải là một tệp thường") from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise LockError(f"tệp khóa {self.path} không phải một tệp thường; xóa nó rồi chạy lại")
            try:
                _lock(fd)
            except BlockingIOError:
                holder = _parse(_read(fd))
                who = f"một lần chạy khác ({holder.describe()})" if holder else "một lần chạy khác"
                raise LockHeld(f"{who} đang ghi vào {self.path.parent}; chờ lần chạy đó xong (khóa được nhả "
                               f"khi lần chạy kết thúc, kể cả khi bị dừng đột ngột)") from None
            except OSError as exc:
                raise LockError(f"không khóa được {self.path}: {exc.strerror or exc}; hệ thống tệp này "
                                "không hỗ trợ khóa: dùng một thư mục kết quả trên máy") from exc
            text = _read(fd)
            if text.strip():  # a holder that never released: it was killed, and the system freed its lock
                self.stale = _parse(text) or Holder(0, "?", "?")
            me = Holder(os.getpid(), socket.gethostname(), dt.datetime.now().isoformat(timespec="seconds"))
            _write(fd, json.dumps(me.__dict__))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Empty the file (nobody holds the lock now) and close it, which releases the lock."""
        with termination_deferred():  # a SIGTERM now would leave this run's name in the file
            fd, self._fd = self._fd, None
            if fd is None:
                return
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass  # the next run would report a takeover: harmless
            os.close(fd)


if sys.platform == "win32":  # not exercised by the tests, which run on Linux
    import msvcrt

    def _lock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:  # held by another process
            raise BlockingIOError(exc.errno, exc.strerror) from exc
else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 4096).decode("utf-8", "replace")
    except OSError:
        return ""


def _write(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, text.encode("utf-8"))


def _parse(text: str) -> Holder | None:
    """The holder a lock file names, or None when it is empty, unreadable or not ours."""
    try:
        data = json.loads(text)
        return Holder(int(data["pid"]), str(data["host"]), str(data["started"]))
    except (ValueError, KeyError, TypeError):
        return None
