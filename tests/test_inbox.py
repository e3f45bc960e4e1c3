"""The input folder as it is: walked at any depth, unreadable folders named, and a submission's bytes read
only from a regular file, never more than the limit of them."""

from __future__ import annotations

import os
import pickle
import shutil
import socket
import stat
import sys
import tempfile
from pathlib import Path

import pytest

import hostile2
from kbang_egov.reading import inbox
from kbang_egov.reading.inbox import InputError, discover_files, read_input, walk

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="FIFOs, sockets, /proc and /dev are Linux's")


def _code(path: Path, limit: int = inbox.FILE_LIMIT) -> str:
    with pytest.raises(InputError) as exc:
        read_input(path, limit)
    return exc.value.code


def test_a_regular_file_is_read_with_its_time_to_the_nanosecond(tmp_path):
    p = tmp_path / "a.xlsx"
    p.write_bytes(b"abc")
    os.utime(p, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    got = read_input(p)
    assert (got.data, got.mtime_ns) == (b"abc", 1_600_000_000_123_456_789)


def test_what_is_not_a_regular_file_is_never_opened(tmp_path, monkeypatch):
    """A FIFO would block whoever opens it for reading, /dev/zero never ends: their stat is enough."""
    os.mkfifo(tmp_path / "fifo.xlsx")
    (tmp_path / "zero.xlsx").symlink_to("/dev/zero")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "socket.xlsx"))
    (tmp_path / "folder.xlsx").mkdir()
    opened = []
    real_open = os.open
    monkeypatch.setattr(inbox.os, "open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k))
    try:
        for name in ("fifo.xlsx", "zero.xlsx", "socket.xlsx", "folder.xlsx"):
            with pytest.raises(InputError) as exc:
                read_input(tmp_path / name)
            assert exc.value.code == "file-unreadable" and "không phải một tệp thông thường" in exc.value.params["reason"]
    finally:
        sock.close()
    assert opened == []


def test_a_fifo_swapped_in_after_the_stat_is_caught_by_its_descriptor(tmp_path, monkeypatch):
    """Between the stat and the open a FIFO may take the file's place: opened without blocking, its fstat
    tells."""
    fifo = tmp_path / "swap.xlsx"
    os.mkfifo(fifo)
    regular = os.stat(__file__)
    monkeypatch.setattr(inbox.os, "stat", lambda *a, **k: regular)  # the stat saw the file that was there
    assert _code(fifo) == "file-unreadable"


def test_links_that_lead_nowhere_are_unreadable(tmp_path):
    (tmp_path / "dangling.xlsx").symlink_to(tmp_path / "gone.xlsx")
    (tmp_path / "loop.xlsx").symlink_to(tmp_path / "loop.xlsx")
    assert _code(tmp_path / "dangling.xlsx") == _code(tmp_path / "loop.xlsx") == "file-unreadable"


def test_a_huge_sparse_file_is_refused_before_any_byte_is_read(tmp_path, monkeypatch):
    p = tmp_path / "sparse.xlsx"
    with open(p, "wb") as fh:
        fh.truncate(30 * 2**30)
    reads = []
    monkeypatch.setattr(inbox.os, "read", lambda *a: reads.append(a) or b"")
    with pytest.raises(InputError) as exc:
        read_input(p)
    assert (exc.value.code, exc.value.file_size, reads) == ("file-oversized", 30 * 2**30, [])


def test_no_more_than_the_limit_is_read_whatever_the_size_says():
    """/proc's files say they hold 0 bytes: the read itself stops one byte past the limit."""
    with pytest.raises(InputError) as exc:
        read_input(Path("/proc/self/status"), limit=10)
    assert (exc.value.code, exc.value.file_size) == ("file-oversized", 11)


def test_a_file_deeper_than_path_max_is_walked_and_read(tmp_path):
    parts = hostile2.write_deep(tmp_path, b"deep bytes")
    path = tmp_path.joinpath(*parts)
    assert len(os.fsencode(path)) > os.pathconf("/", "PC_PATH_MAX")
    with pytest.raises(OSError):
        path.stat()  # what the kernel says to a path this long
    assert walk(tmp_path).entries == [parts]
    assert read_input(path).data == b"deep bytes"


def test_the_walk_follows_no_link_to_a_folder_and_lists_everything_else(tmp_path):
    (tmp_path / "sub" / ".hidden").mkdir(parents=True)
    (tmp_path / "sub" / "a.xlsx").write_bytes(b"a")
    (tmp_path / "sub" / ".hidden" / "b.xlsx").write_bytes(b"b")
    (tmp_path / "up").symlink_to(tmp_path)  # would loop for ever if followed
    os.mkfifo(tmp_path / "f.xlsx")
    assert walk(tmp_path) == inbox.Walked([("f.xlsx",), ("sub", ".hidden", "b.xlsx"), ("sub", "a.xlsx"), ("up",)],
                                          [])


def _as_nobody(fn, *args):  # noqa: ANN001, ANN202
    """fn(*args) in a forked child that has given up root, so that permissions hold; its result."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no return from here
        try:
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            result = pickle.dumps(fn(*args))
        except BaseException as exc:  # noqa: BLE001
            result = pickle.dumps(exc)
        os.write(write, result)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    got = pickle.loads(data)
    if isinstance(got, BaseException):
        raise got
    return got


@pytest.fixture
def shared_tmp():
    """A folder another user may enter (pytest's own is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="kbang-inbox-"))
    folder.chmod(0o755)
    yield folder
    for p in folder.rglob("*"):
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(folder)


def test_a_folder_that_cannot_be_listed_is_named_not_skipped(shared_tmp):
    for name in ("a.xlsx", "khoa/b.xlsx", ".an/c.xlsx", "lost+found/d.xlsx"):
        p = shared_tmp / name
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"x")
    for folder in ("khoa", ".an", "lost+found"):
        (shared_tmp / folder).chmod(0o700)
    list_it = discover_files if os.getuid() != 0 else (lambda d: _as_nobody(discover_files, d))
    found, skipped, unreadable = list_it(shared_tmp)
    assert [p.name for p in found] == ["a.xlsx"]
    # A hidden folder's files are never read, nor those of the file system's lost+found: no finding.
    assert [(p.relative_to(shared_tmp).as_posix(), reason) for p, reason in unreadable] == [
        ("khoa", os.strerror(13))]
    assert skipped["hidden"] == 0


def test_an_inbox_that_cannot_be_listed_is_named_too(shared_tmp):
    inbox = shared_tmp / "inbox"
    inbox.mkdir(mode=0o700)
    (inbox / "a.xlsx").write_bytes(b"x")
    list_it = discover_files if os.getuid() != 0 else (lambda d: _as_nobody(discover_files, d))
    assert list_it(inbox) == ([], {"lock": 0, "hidden": 0, "other": 0, "output": 0}, [(inbox, os.strerror(13))])


def test_the_stat_of_what_is_read_comes_from_its_descriptor(tmp_path):
    p = tmp_path / "a.xlsx"
    p.write_bytes(b"x" * 10)
    st = os.stat(p)
    assert stat.S_ISREG(st.st_mode) and read_input(p).mtime_ns == st.st_mtime_ns
