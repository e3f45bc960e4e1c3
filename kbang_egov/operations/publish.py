"""Publishing one run's outputs together, or not at all.

A run writes all its outputs into a folder of its own, DIR/runs/.tmp-RUN_ID, adds manifest.json (the run's
id and time, and every file's SHA-256), and renames the folder to DIR/runs/RUN_ID: a run folder without the
temporary prefix is always complete. The run is then published by one rename: the link DIR/current is
replaced by a link to the new folder. The names the officer opens, DIR/ranking.xlsx, DIR/ranking.csv, ...,
are links to current/NAME, made once: they all show the new run from that instant, and a run killed at any
moment before it leaves them all showing the previous one. The previous run's folder is kept (a reader that
opened it a moment before the switch still finds its files); older ones are removed.

Where the file system takes no symbolic links (a Windows share mounted without them, a FAT drive, a run
on Windows itself) the files are moved into DIR one by one, the manifest last: each file is still whole, but a run
killed among those moves leaves files of two runs, which the manifest's hashes tell apart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

from ..reporting.runlog import HISTORY_DIR, keep_replaced
from .atomic import STAMP_FORMAT, TEMP_PREFIX

RUNS_DIR = "runs"
CURRENT = "current"
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


def new_run_id(started: dt.datetime) -> str:
    """The run's time and a random suffix: unique even for two runs started in the same second."""
    return f"{started.strftime(STAMP_FORMAT)}-{secrets.token_hex(3)}"


_RUN_ID = re.compile(r"\d{4}-\d\d-\d\d_\d{6}-[0-9a-f]{6}")  # what new_run_id makes


def check_layout(out: Path) -> None:
    """FileExistsError, before the night's work, when something of its own sits where the run's links and
    folders must go (a folder called DIR/current; a file, or a link to another folder, called DIR/runs,
    whose old run folders the run removes)."""
    current, runs = out / CURRENT, out / RUNS_DIR
    if current.exists() and not current.is_symlink():
        raise FileExistsError(f"{current} is not the link this tool keeps there; move it away")
    if runs.is_symlink() or (runs.exists() and not runs.is_dir()):
        raise FileExistsError(f"{runs} is not the folder this tool keeps there; move it away")


def start_run_folder(out: Path, run_id: str) -> Path:
    """DIR/runs/.tmp-RUN_ID, new and empty, for the run's outputs."""
    folder = out / RUNS_DIR / f"{TEMP_PREFIX}{run_id}"
    folder.mkdir(parents=True)
    return folder


def seal_run_folder(staging: Path, manifest: dict[str, Any]) -> Path:
    """Write manifest.json (manifest plus every file's size and SHA-256, each file flushed to disk) and
    rename the folder to its run id; returns the sealed folder."""
    files = {}
    for path in sorted(p for p in staging.rglob("*") if p.name != MANIFEST and p.is_file()):
        files[path.relative_to(staging).as_posix()] = {"sha256": _sha256(path), "bytes": path.stat().st_size}
    text = json.dumps({**manifest, "files": files}, ensure_ascii=False, indent=2) + "\n"
    with open(staging / MANIFEST, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    folder = staging.with_name(staging.name.removeprefix(TEMP_PREFIX))
    os.rename(staging, folder)
    _sync_folder(folder.parent)
    return folder


def publish(out: Path, folder: Path, names: list[str], stamp: str) -> tuple[list[Path], list[str]]:
    """Make the files `names` of the sealed run folder, and its manifest, the outputs in DIR; returns their
    paths in DIR and notices for the operator (files of their own kept aside, a file system without links)."""
    names = [*names, MANIFEST]
    if not _links_work(out):
        return _move_in(out, folder, names, stamp)
    notices = []
    for name in names:
        notices += _link_public(out, name, stamp)
    previous = _current_run(out)
    _replace_link(out / CURRENT, f"{RUNS_DIR}/{folder.name}")  # the one step that publishes the run
    _sync_folder(out)
    for old in (out / RUNS_DIR).iterdir():  # run folders only: anything else put there is left alone
        if _RUN_ID.fullmatch(old.name) and old.name not in (folder.name, previous) and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
    return [out / name for name in names], notices


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The manifest of the run whose outputs are in DIR, or None."""
    try:
        return json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _link_public(out: Path, name: str, stamp: str) -> list[str]:
    """DIR/NAME as a link to current/NAME. Anything else there (an earlier version's output, a file an
    officer saved over the link) is first kept under DIR/history, then replaced."""
    public, target = out / name, f"{CURRENT}/{name}"
    if public.is_symlink() and os.readlink(public) == target:
        return []
    notices = []
    if public.is_dir() and not public.is_symlink():  # a folder of its own (DIR/feedback moved in by hand)
        kept = _unused_beside(out / HISTORY_DIR, f"{name}_replaced_{stamp}")
        kept.parent.mkdir(parents=True, exist_ok=True)
        os.rename(public, kept)
        notices.append(f"{public} là một thư mục riêng, không phải liên kết tới lần chạy hiện tại: đã giữ lại thành {kept}")
    elif public.exists() or public.is_symlink():
        kept = keep_replaced(public, out, stamp)
        notices.append(f"{public} là một tệp riêng, không phải liên kết tới lần chạy hiện tại: đã giữ lại thành {kept}")
    _replace_link(public, target)
    return notices


def _move_in(out: Path, folder: Path, names: list[str], stamp: str) -> tuple[list[Path], list[str]]:
    notices = [f"{out} không hỗ trợ liên kết tượng trưng: các kết quả được chuyển vào từng tệp một, không đổi cùng lúc"]
    paths = []
    for name in names:
        target = out / name
        if (folder / name).is_dir() and target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)  # a folder (feedback/) replaces the previous run's whole
        try:
            os.replace(folder / name, target)
        except PermissionError as exc:  # Windows: the file is open in Excel
            beside = target.with_name(f"{target.stem}-{stamp}{target.suffix}")
            os.replace(folder / name, beside)
            notices.append(f"không thay được {target} ({exc.strerror or exc}; tệp đang mở trong Excel?): "
                           f"đã ghi {beside.name} bên cạnh")
            target = beside
        paths.append(target)
    shutil.rmtree(folder, ignore_errors=True)
    return paths, notices


def _unused_beside(folder: Path, name: str) -> Path:
    target, n = folder / name, 2
    while target.exists() or target.is_symlink():
        target, n = folder / f"{name}-{n}", n + 1
    return target


def _current_run(out: Path) -> str:
    try:
        return Path(os.readlink(out / CURRENT)).name
    except OSError:
        return ""


def _replace_link(link: Path, target: str) -> None:
    """Point link at target in one rename (a new link beside it, renamed over it)."""
    tmp = link.with_name(f"{TEMP_PREFIX}{link.name}-{os.getpid()}")
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except OSError:
        tmp.unlink()
        raise


def _links_work(out: Path) -> bool:
    """Whether out takes symbolic links. Never on Windows: links there need a privilege, and a link to a
    folder must be made as one; officers on a Windows share served by Samba from Linux still get them."""
    if sys.platform == "win32":
        return False
    probe = out / f"{TEMP_PREFIX}probe-{os.getpid()}"
    try:
        os.symlink(CURRENT, probe)
    except (OSError, NotImplementedError):
        return False
    probe.unlink()
    return True


def _sha256(path: Path) -> str:
    """The file's SHA-256, after flushing it to disk (a power cut after the switch finds it whole)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
        os.fsync(fh.fileno())
    return digest.hexdigest()


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk, where the system allows it (not on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
