"""Writing a file so that a reader never sees half of it: a temporary file beside the target, renamed
into place. A run killed mid-write leaves the previous file as it was."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

STAMP_FORMAT = "%Y-%m-%d_%H%M%S"  # a run's time in file names: history copies, logs, files written beside


TEMP_PREFIX = ".tmp-"


def remove_temp_files(folder: Path) -> int:
    """Delete the temporary files, links and folders a killed writer left in folder; call only while no
    writer can be running (the run lock is held). Returns how many were removed."""
    removed = 0
    for path in Path(folder).glob(TEMP_PREFIX + "*"):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(target: Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a temporary file in target's folder, then rename it over target.

    The temporary file gets the permissions a plain open() would (mkstemp makes it owner-only), and is
    removed when anything fails; OSError propagates for the caller to turn into its own error.
    """
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX, suffix=target.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            try:
                tmp.unlink()
            except OSError:
                pass  # the original error matters more than a stray temp file
    return target


def _read_only(path: Path) -> bool:
    """Read-only for us, or marked read-only for everyone (root may write anything, but the officer who
    removed the write bits meant the file to stay)."""
    return not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222


def write_replacing(target: Path, write: Callable[[Path], None], stamp: str) -> tuple[Path, str | None]:
    """write_atomically(target, write), or, when target exists and cannot be replaced (open in Excel on
    Windows, made read-only by the officer), the same written beside it as name-STAMP.ext.

    Returns the path written and, for the fallback, a sentence saying why, for the run's notices.
    """
    if target.exists() and _read_only(target):
        reason = "tệp chỉ đọc"
    else:
        try:
            return write_atomically(target, write), None
        except PermissionError as exc:  # Windows: the file is open in Excel
            reason = f"{exc.strerror or exc}; tệp có đang mở trong Excel không?"
    beside = target.with_name(f"{target.stem}-{stamp}{target.suffix}")
    write_atomically(beside, write)
    return beside, f"không thay được {target} ({reason}): đã ghi {beside.name} bên cạnh"
