"""The input folder as it is, not as it should be: walked at any depth, folders that cannot be listed named
rather than skipped, and a submission's bytes read only from a regular file and never more than FILE_LIMIT
of them. Whatever lands in an inbox may be hostile: a FIFO blocks whoever opens it for reading, a device
never ends, a sparse file claims 30 GB, a tree nests past PATH_MAX.

The parent process only walks and picks the workbooks by name (discover_files: no bytes); read_input runs
in the workers (pipeline.read_files).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePath

from ..rules.results import SKIP_HIDDEN, SKIP_LOCK, SKIP_OTHER, SKIP_OUTPUT
from .reader import LOOKALIKE_SUFFIXES, SUFFIXES

# Generous for a return: the filled template is under 1 MB, and the guard lets its parts inflate to 256 MB.
FILE_LIMIT = 128 * 2**20  # bytes of one input file
_READ_STEP = 2**20
# Paths longer than this are opened a step at a time, each step a path this long relative to a directory
# descriptor: the kernel refuses a path of PATH_MAX bytes or more (4096 on Linux, 1024 on macOS).
_PATH_STEP = 1000
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_BY_DESCRIPTOR = os.scandir in os.supports_fd and os.open in os.supports_dir_fd
# O_NONBLOCK: should a FIFO be swapped in between the stat and the open, the open returns at once and the
# fstat after it says what it is; it changes nothing for a regular file. O_NOCTTY: a terminal never
# becomes this process's controlling terminal.
_FILE_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0) \
    | getattr(os, "O_BINARY", 0)

_KIND_VI = {stat.S_IFDIR: "một thư mục", stat.S_IFIFO: "một đường ống (FIFO)", stat.S_IFSOCK: "một socket",
            stat.S_IFCHR: "một thiết bị ký tự", stat.S_IFBLK: "một thiết bị khối"}


@dataclass(frozen=True)
class Walked:
    """What a walk of the input folder found: relative parts of every entry that is not a directory, in
    path order, and the folders that could not be listed with the reason."""

    entries: list[tuple[str, ...]]
    unreadable: list[tuple[tuple[str, ...], str]]


def walk(root: Path) -> Walked:
    """Every entry under root that is not a directory, at any depth (a directory is opened relative to a
    descriptor of an ancestor, never by a path the kernel would refuse as too long). Symbolic links to
    directories are not followed, and a directory met twice (a bind mount of an ancestor) is not walked
    again. Never raises: a folder that cannot be listed, root included, is in `unreadable`."""
    entries: list[tuple[str, ...]] = []
    unreadable: list[tuple[tuple[str, ...], str]] = []
    seen: set[tuple[int, int]] = set()
    todo: list[tuple[str, ...]] = [()]
    while todo:
        parts = todo.pop()
        try:
            st, listed = _list(root, parts)
        except OSError as exc:
            unreadable.append((parts, exc.strerror or str(exc)))
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        for name, is_dir in listed:
            (todo if is_dir else entries).append((*parts, name))
    entries.sort()
    unreadable.sort()
    return Walked(entries, unreadable)


def _list(root: Path, parts: tuple[str, ...]) -> tuple[os.stat_result, list[tuple[str, bool]]]:
    """The folder's own stat and its entries as (name, is a directory)."""
    if not _BY_DESCRIPTOR:  # no descriptors to list by (Windows): by path, as deep as the system allows
        folder = root.joinpath(*parts)
        with os.scandir(folder) as it:
            return os.stat(folder), [(e.name, _is_dir(e)) for e in it]
    fd = open_dir(root, parts)
    try:
        with os.scandir(fd) as it:
            return os.fstat(fd), [(e.name, _is_dir(e)) for e in it]
    finally:
        os.close(fd)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False  # gone or unreadable: reported when it is read


def open_dir(base: PurePath, parts: tuple[str, ...] = ()) -> int:
    """A descriptor of the directory base/parts at any depth, opened in steps of at most _PATH_STEP bytes."""
    fd = os.open(base, _DIR_FLAGS)
    i = 0
    while i < len(parts):
        j, size = i, 0
        while j < len(parts) and (j == i or size + len(os.fsencode(parts[j])) + 1 <= _PATH_STEP):
            size += len(os.fsencode(parts[j])) + 1
            j += 1
        try:
            step = os.open(os.path.join(*parts[i:j]), _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd, i = step, j
    return fd


class InputError(Exception):
    """An input path that gives no bytes to read: the finding code and its parameters, with the size and
    modification time when the file system told them."""

    def __init__(self, code: str, file_size: int = 0, mtime_ns: int = 0, **params: object) -> None:
        super().__init__(code)
        self.code, self.file_size, self.mtime_ns, self.params = code, file_size, mtime_ns, params


@dataclass(frozen=True)
class InputBytes:
    data: bytes
    mtime_ns: int  # the modification time to the nanosecond the file system keeps


def read_input(path: Path, limit: int = FILE_LIMIT) -> InputBytes:
    """The bytes of the regular file at path, at any depth; InputError (file-unreadable, file-oversized)
    for anything else. A path that is not a regular file (a FIFO, a device, a socket, a folder) is never
    opened; what is opened is checked again by its descriptor, and never more than limit + 1 bytes are read
    (a file may grow, and /proc's files say they have none)."""
    try:
        fd = _open_regular(Path(path))
    except _NotRegular as exc:
        raise InputError("file-unreadable", 0, exc.st.st_mtime_ns, reason=_not_regular(exc.st)) from None
    except OSError as exc:
        raise InputError("file-unreadable", reason=exc.strerror or str(exc)) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError("file-unreadable", 0, st.st_mtime_ns, reason=_not_regular(st))
        if st.st_size > limit:
            raise InputError("file-oversized", st.st_size, st.st_mtime_ns, size=_megabytes(st.st_size),
                             limit=_megabytes(limit))
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(_READ_STEP, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise InputError("file-unreadable", reason=exc.strerror or str(exc)) from exc
    finally:
        os.close(fd)
    if total > limit:
        raise InputError("file-oversized", total, st.st_mtime_ns, size=f"hơn {_megabytes(limit)}",
                         limit=_megabytes(limit))
    return InputBytes(b"".join(chunks), st.st_mtime_ns)


class _NotRegular(Exception):
    def __init__(self, st: os.stat_result) -> None:
        super().__init__(st.st_mode)
        self.st = st


def _open_regular(path: Path) -> int:
    """A read descriptor of the file at path after its stat (symbolic links followed) says it is a regular
    file; _NotRegular before opening anything else."""
    name: str | Path = path
    parent = None
    if len(os.fsencode(path)) > _PATH_STEP and _BY_DESCRIPTOR:
        folders = path.parts[1:-1] if path.anchor else path.parts[:-1]
        parent, name = open_dir(Path(path.anchor or "."), folders), path.name
    try:
        st = os.stat(name, dir_fd=parent)
        if not stat.S_ISREG(st.st_mode):
            raise _NotRegular(st)
        return os.open(name, _FILE_FLAGS, dir_fd=parent)
    finally:
        if parent is not None:
            os.close(parent)


def _not_regular(st: os.stat_result) -> str:
    return f"đây là {_KIND_VI.get(stat.S_IFMT(st.st_mode), 'một đối tượng')}, không phải một tệp thông thường"


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.0f} MB"


def discover_files(input_dir: Path, exclude: Path | None = None
                   ) -> tuple[list[Path], dict[str, int], list[tuple[Path, str]]]:
    """Workbooks under input_dir in path order, counts of what was skipped and why, and the folders that
    could not be listed (with the reason), whose files would have been read.

    Office lock files (~$name.xlsx, .~lock.name#) and hidden files or folders are never submissions; nor
    is anything under `exclude` (the output folder, when it sits inside the input folder). Anything else
    with a workbook's name is given to the readers, whatever it is (a FIFO, a link, a look-alike type such
    as .xlsb): what it is becomes its finding there. Only names are looked at here, never bytes.
    """
    found: list[Path] = []
    skipped = {SKIP_LOCK: 0, SKIP_HIDDEN: 0, SKIP_OTHER: 0, SKIP_OUTPUT: 0}
    root = input_dir.resolve()
    out = exclude.resolve() if exclude is not None else None
    walked = walk(root)
    for parts in walked.entries:
        path = root.joinpath(*parts)
        if out is not None and path.is_relative_to(out):
            skipped[SKIP_OUTPUT] += 1
        elif parts[-1].startswith(("~$", ".~lock.")):
            skipped[SKIP_LOCK] += 1
        elif any(part.startswith(".") for part in parts):
            skipped[SKIP_HIDDEN] += 1
        elif path.suffix.lower() not in SUFFIXES and path.suffix.lower() not in LOOKALIKE_SUFFIXES:
            skipped[SKIP_OTHER] += 1
        else:
            found.append(path)
    unreadable = []
    for parts, reason in walked.unreadable:
        path = root.joinpath(*parts)
        if (out is None or not path.is_relative_to(out)) and not any(part.startswith(".") for part in parts) \
                and parts != ("lost+found",):  # a file system's own folder, root's alone
            unreadable.append((path, reason))
    return found, skipped, unreadable
