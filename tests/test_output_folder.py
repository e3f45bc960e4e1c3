"""The output folder: whatever is wrong with it is exit 3 with a message, never a traceback, and the previous
outputs stay as they were; it may sit inside or above the inbox but not be the inbox; nothing is ever
written over an input. And a night without any return (issue 15) publishes nothing and exits 4."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

import hostile
from kbang_egov.cli import EXIT_NO_RETURNS, main
from kbang_egov.operations.pipeline import NoReturnsFound, bundled_samples_dir
from kbang_egov.operations.runlock import LOCK_NAME

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted(bundled_samples_dir().glob("*.xlsx"))
posix_only = pytest.mark.skipif(sys.platform != "linux", reason="links, chattr and PATH_MAX are Linux's here")
pytestmark = posix_only


def _inbox(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for sample in SAMPLES[:n]:
        shutil.copyfile(sample, folder / sample.name)
    return folder


def _run(*args: str) -> subprocess.CompletedProcess:
    """`batch.py run ARGS`, in this process (a refusal needs no process of its own: the exit code and the
    message are the CLI's): its exit code and what it wrote to stderr. A Python exception that escaped the
    CLI is put in stderr as a traceback, as the interpreter would print it."""
    res = CliRunner().invoke(main, ["run", *args])
    stderr = res.stderr
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        stderr += "Traceback (most recent call last):\n" + "".join(traceback.format_exception(res.exception))
    return subprocess.CompletedProcess(["run", *args], res.exit_code, res.stdout, stderr)


def _run_process(*args: str) -> subprocess.CompletedProcess:
    """`python batch.py run ARGS` as cron starts it."""
    return subprocess.run([sys.executable, "batch.py", "run", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def snapshot(out: Path) -> dict[str, str]:
    """Every file and link under out, by content (a link by where it points), except the logs and the lock."""
    seen = {}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out).as_posix()
        if rel == LOCK_NAME or rel.startswith("logs"):
            continue
        if path.is_symlink():
            seen[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            seen[rel] = "dir"
    return seen


@pytest.fixture(scope="module")
def one_run(tmp_path_factory) -> tuple[Path, Path]:
    """An inbox of three returns and an output folder holding the outputs of one run over it, run once per
    module. Never changed: each test works on its own copy (fixture `previous`)."""
    base = tmp_path_factory.mktemp("previous")
    inbox, out = _inbox(base / "inbox"), base / "out"
    res = CliRunner().invoke(main, ["run", str(inbox), "--out", str(out)])
    assert res.exit_code == 1, res.output
    return inbox, out


@pytest.fixture
def previous(one_run, tmp_path) -> tuple[Path, Path, dict[str, str]]:
    """tmp_path/inbox and tmp_path/out: copies of `one_run`'s (links kept as links), the test's own to run
    over, change or break, and the snapshot of that output folder before the test touches it."""
    inbox, out = (shutil.copytree(src, tmp_path / src.name, symlinks=True) for src in one_run)
    return inbox, out, snapshot(out)


@contextlib.contextmanager
def read_only(*folders: Path) -> Iterator[None]:
    """Folders nobody may write in, root included: chattr +i where we are root (root ignores modes)."""
    paths = [p for f in folders for p in [f, *f.rglob("*")] if not p.is_symlink()]
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folders[0])]).returncode:
            pytest.skip("chattr +i is not available here")
        flag = ["chattr", "+i"], ["chattr", "-i"]
    else:
        flag = ["chmod", "a-w"], ["chmod", "u+w"]
    subprocess.run([*flag[0], *map(str, paths)], check=True)
    try:
        yield
    finally:
        subprocess.run([*flag[1], *map(str, paths)], check=True)


# --- the output folder cannot be written -----------------------------------------------------------------


@pytest.mark.parametrize("which", ["everything", "all but the lock"])
def test_a_read_only_output_folder_is_exit_3_and_changes_nothing(previous, which):
    inbox, out, before = previous
    blocked = [out] if which == "everything" else [out / "runs", out / "history"]
    with read_only(*blocked):
        if which != "everything":  # the lock can be taken, the run reads every return, then cannot write
            subprocess.run(["chattr", "+i", str(out)] if os.geteuid() == 0 else ["chmod", "a-w", str(out)],
                           check=True)
        try:
            done = _run(str(inbox), "--out", str(out))
        finally:
            subprocess.run(["chattr", "-i", str(out)] if os.geteuid() == 0 else ["chmod", "u+w", str(out)],
                           check=True)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and str(out) in done.stderr
    assert snapshot(out) == before


def test_a_fresh_output_folder_that_cannot_be_written_is_exit_3(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with read_only(out):
        done = _run(str(_inbox(tmp_path / "inbox")), "--out", str(out))
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert LOCK_NAME in done.stderr
    assert list(out.iterdir()) == []


def test_a_lock_path_that_is_a_folder_is_exit_3(previous):
    inbox, out, before = previous
    (out / LOCK_NAME).unlink()
    (out / LOCK_NAME).mkdir()
    done = _run(str(inbox), "--out", str(out))
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert LOCK_NAME in done.stderr
    assert snapshot(out) == before


def test_an_output_name_past_the_limit_is_exit_3(tmp_path):
    done = _run(str(_inbox(tmp_path / "inbox")), "--out", str(tmp_path / ("ư" * 200)))  # 400 bytes > NAME_MAX
    assert done.returncode == 3 and "Traceback" not in done.stderr


def _deep_folder(base: Path, length: int) -> Path:
    """A folder whose absolute path is `length` bytes long (made with relative steps: each call is short)."""
    path, here = base, os.getcwd()
    try:
        os.chdir(base)
        while len(os.fsencode(str(path))) < length - 256:
            os.mkdir("d" * 200)
            os.chdir("d" * 200)
            path = path / ("d" * 200)
        last = "e" * (length - len(os.fsencode(str(path))) - 1)
        os.mkdir(last)
        return path / last
    finally:
        os.chdir(here)


@pytest.mark.parametrize("room", [10, 30])
def test_an_output_folder_too_deep_for_its_files_is_exit_3_and_publishes_nothing(tmp_path, room):
    """PATH_MAX is 4,096 bytes: with 10 to spare the lock file's path is too long; with 30, the lock is
    taken and the run's folder under runs/ is not."""
    out = _deep_folder(tmp_path, 4096 - room)
    done = _run(str(_inbox(tmp_path / "inbox", 2)), "--out", str(out))
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and "name too long" in done.stderr


def test_an_output_folder_that_is_a_link_loop_is_exit_3(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    done = _run(str(_inbox(tmp_path / "inbox", 1)), "--out", str(loop))
    assert done.returncode == 3 and "Traceback" not in done.stderr and str(loop) in done.stderr


def test_any_error_while_publishing_is_exit_3_and_the_previous_outputs_stay(previous, monkeypatch):
    inbox, out, before = previous

    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("kbang_egov.operations.publish.os.rename", disk_full)  # sealing the run folder
    res = CliRunner().invoke(main, ["run", str(inbox), "--out", str(out)])
    assert res.exit_code == 3 and isinstance(res.exception, SystemExit)
    assert "No space left on device" in res.output
    after = snapshot(out)
    assert {k: v for k, v in after.items() if "/.tmp-" not in k} == before  # a temporary run folder at most


def test_an_unforeseen_error_is_exit_3_never_1(previous, monkeypatch):
    """Exit 1 means findings: a cron wrapper would read a crashed night as a normal one."""
    inbox, out, before = previous

    def broken(*args: object) -> None:
        raise ValueError("a bug")

    monkeypatch.setattr("kbang_egov.reporting.report_writer.write_csvs", broken)
    res = CliRunner().invoke(main, ["run", str(inbox), "--out", str(out)])
    assert res.exit_code == 3 and "ValueError: a bug" in res.output
    assert {k: v for k, v in snapshot(out).items() if "/.tmp-" not in k} == before


# --- where the output folder sits ------------------------------------------------------------------------


def test_the_inbox_as_output_folder_is_refused_and_nothing_is_written(tmp_path):
    inbox = _inbox(tmp_path / "inbox")
    shutil.copyfile(SAMPLES[5], inbox / "ranking.xlsx")  # a return that happens to carry an output's name
    before = hostile.sha256_tree(inbox)
    for out in (inbox, tmp_path / "inbox" / ".." / "inbox"):
        done = _run_process(str(inbox), "--out", str(out))
        assert done.returncode == 2 and "--out" in done.stderr
        assert hostile.sha256_tree(inbox) == before  # not one byte changed, nothing added


def test_an_output_folder_inside_the_inbox_is_not_read_and_no_return_is_lost(tmp_path):
    inbox = _inbox(tmp_path / "inbox")
    out = inbox / "ket_qua"
    out.mkdir()
    shutil.copyfile(SAMPLES[5], out / "ranking.xlsx")  # put there by hand: not a return (it is in --out)
    before = hostile.sha256_tree(inbox)
    res = CliRunner().invoke(main, ["run", str(inbox), "--out", str(out), "--json"])
    assert res.exit_code == 1, res.output
    s = json.loads(res.output)
    assert s["files"]["scored"] == 3 and s["files"]["skipped"]["output"] >= 1
    assert {k: v for k, v in hostile.sha256_tree(inbox).items() if not k.startswith("ket_qua/")} == \
        {k: v for k, v in before.items() if not k.startswith("ket_qua/")}
    [kept] = (out / "history").glob("ranking_replaced_*.xlsx")
    assert kept.read_bytes() == SAMPLES[5].read_bytes()
    rerun = CliRunner().invoke(main, ["run", str(inbox), "--out", str(out), "--json"])
    assert json.loads(rerun.output)["files"]["scored"] == 3  # its own outputs are never read as returns


def test_an_output_folder_above_the_inbox_reads_every_return(tmp_path):
    inbox = _inbox(tmp_path / "inbox")
    before = hostile.sha256_tree(inbox)
    res = CliRunner().invoke(main, ["run", str(inbox), "--out", str(tmp_path), "--json"])
    assert res.exit_code == 1, res.output
    s = json.loads(res.output)
    assert s["files"]["scored"] == 3 and "output" not in s["files"]["skipped"]
    assert hostile.sha256_tree(inbox) == before
    assert len(openpyxl.load_workbook(tmp_path / "ranking.xlsx")["Xếp hạng"]["B"]) > 3


# --- empty nights ----------------------------------------------------------------------------------------


def _unreadable(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        path.chmod(0)
        return
    real = os.scandir  # root reads any folder: the one the kernel would refuse is refused here

    def scandir(p: object = ".") -> object:
        if Path(os.fsdecode(p)) == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(p))
        return real(p)

    monkeypatch.setattr("kbang_egov.operations.pipeline.os.scandir", scandir)


@pytest.mark.parametrize("night", ["missing", "empty", "no workbook", "unreadable", "link loop"])
def test_a_night_without_returns_exits_4_and_leaves_the_outputs_as_they_were(previous, night, monkeypatch):
    inbox, out, before = previous
    shutil.rmtree(inbox)
    if night == "link loop":
        inbox.symlink_to(inbox)
    elif night != "missing":
        inbox.mkdir()
    if night == "no workbook":
        (inbox / "~$CQDT_2020_Huyen_Kbang.xlsx").write_bytes(b"lock")
        (inbox / "ghi_chu.txt").write_text("chưa có bài")
    if night == "unreadable":
        _unreadable(inbox, monkeypatch)
    logs = set((out / "logs").iterdir())
    try:
        res = CliRunner().invoke(main, ["run", str(inbox), "--out", str(out), "--json"])
    finally:
        if inbox.is_dir():
            inbox.chmod(0o755)
    assert res.exit_code == EXIT_NO_RETURNS == NoReturnsFound.exit_code == 4
    assert isinstance(res.exception, SystemExit) and str(inbox) in res.output
    assert snapshot(out) == before  # byte-identical: the ranking is not replaced by an empty one
    [log] = set((out / "logs").iterdir()) - logs
    text = log.read_text(encoding="utf-8")
    assert "exit code: 4" in text and "không có bài nộp nào" in text and str(log) in res.output


def test_an_empty_night_on_a_fresh_folder_writes_only_its_log(tmp_path):
    (tmp_path / "inbox").mkdir()
    done = _run_process(str(tmp_path / "inbox"), "--out", str(tmp_path / "out"))
    assert done.returncode == 4 and "Traceback" not in done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [LOCK_NAME, "logs"]
