"""One run's outputs are published together: written into a run folder with a manifest, then switched in
by one rename of the link DIR/current; the public names are links into it."""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
from pathlib import Path

import pytest

from kbang_egov.operations.publish import (
    CURRENT,
    MANIFEST,
    RUNS_DIR,
    check_layout,
    new_run_id,
    publish,
    read_manifest,
    seal_run_folder,
    start_run_folder,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="symbolic links need a privilege on Windows")
NAMES = ["ranking.xlsx", "ranking.csv", "scores.csv", "findings.csv"]
STAMP = "2026-11-24_013000"


def _run(out: Path, n: int) -> tuple[str, list[Path], list[str]]:
    """Stage, seal and publish a run whose files say which run they are."""
    run_id = new_run_id(dt.datetime(2026, 11, 24, 1, 30, n))
    staging = start_run_folder(out, run_id)
    for name in NAMES:
        (staging / name).write_text(f"{name} of run {n}")
    folder = seal_run_folder(staging, {"run_id": run_id})
    paths, notices = publish(out, folder, NAMES, STAMP)
    return run_id, paths, notices


def test_the_public_names_are_links_into_the_current_run(tmp_path):
    first, paths, notices = _run(tmp_path, 1)
    assert [p.name for p in paths] == [*NAMES, MANIFEST] and notices == []
    assert os.readlink(tmp_path / CURRENT) == f"{RUNS_DIR}/{first}"
    for name in [*NAMES, MANIFEST]:
        assert os.readlink(tmp_path / name) == f"{CURRENT}/{name}"  # relative: the folder may be moved or shared
    assert (tmp_path / "ranking.xlsx").read_text() == "ranking.xlsx of run 1"
    second, _, _ = _run(tmp_path, 2)
    assert {p.read_text() for p in (tmp_path / n for n in NAMES)} == {f"{n} of run 2" for n in NAMES}
    assert read_manifest(tmp_path)["run_id"] == second
    assert sorted(p.name for p in (tmp_path / RUNS_DIR).iterdir()) == [first, second]  # the previous is kept
    third, _, _ = _run(tmp_path, 3)
    assert sorted(p.name for p in (tmp_path / RUNS_DIR).iterdir()) == [second, third]  # older ones go


def test_the_manifest_names_the_run_and_hashes_every_file(tmp_path):
    run_id, _, _ = _run(tmp_path, 1)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["run_id"] == run_id
    assert sorted(manifest["files"]) == sorted(NAMES)
    for name, entry in manifest["files"].items():
        data = (tmp_path / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def test_a_run_folder_is_complete_or_still_temporary(tmp_path):
    staging = start_run_folder(tmp_path, "r1")
    assert staging.name == ".tmp-r1"  # removed by the next run if this one is killed now
    (staging / "ranking.csv").write_text("x")
    assert seal_run_folder(staging, {"run_id": "r1"}) == tmp_path / RUNS_DIR / "r1"
    assert not staging.exists()


@pytest.mark.parametrize("kind", ["file", "foreign link"])
def test_a_file_of_its_own_at_a_public_name_is_kept_before_the_link_replaces_it(tmp_path, kind):
    """An earlier version's ranking.xlsx, or one an officer saved over the link, is never lost."""
    public = tmp_path / "ranking.xlsx"
    if kind == "file":
        public.write_bytes(b"officer's own workbook")
    else:
        (tmp_path / "elsewhere.xlsx").write_bytes(b"elsewhere")
        public.symlink_to("elsewhere.xlsx")
    _, _, notices = _run(tmp_path, 1)
    assert os.readlink(public) == f"{CURRENT}/ranking.xlsx"
    [kept] = (tmp_path / "history").glob("ranking_replaced_*.xlsx")
    if kind == "file":
        assert kept.read_bytes() == b"officer's own workbook"
    else:
        assert os.readlink(kept) == "elsewhere.xlsx"
    assert any(str(kept) in n for n in notices)


def test_without_links_the_files_are_moved_in_manifest_last(tmp_path, monkeypatch):
    """A file system without symbolic links (a Windows share, a FAT drive): plain files, and a notice."""
    moved: list[str] = []
    real_replace = os.replace

    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    def replace(src: object, dst: object) -> None:
        moved.append(Path(str(dst)).name)
        real_replace(src, dst)

    monkeypatch.setattr("kbang_egov.operations.publish.os.symlink", no_links)
    monkeypatch.setattr("kbang_egov.operations.publish.os.replace", replace)
    run_id, paths, notices = _run(tmp_path, 1)
    assert moved == [*NAMES, MANIFEST]
    assert all(p.is_file() and not p.is_symlink() for p in paths)
    assert read_manifest(tmp_path)["run_id"] == run_id
    assert (tmp_path / "ranking.csv").read_text() == "ranking.csv of run 1"
    assert any("liên kết tượng trưng" in n for n in notices)
    assert list((tmp_path / RUNS_DIR).iterdir()) == []


@pytest.mark.parametrize("blocker", ["current folder", "runs file", "runs link"])
def test_something_of_its_own_where_the_run_keeps_its_folders_stops_it_first(tmp_path, blocker):
    """A link called runs would have the run remove the old run folders of wherever it points."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "2026-01-01_000000-abcdef").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    if blocker == "current folder":
        (out / CURRENT).mkdir()
    elif blocker == "runs file":
        (out / RUNS_DIR).write_text("x")
    else:
        (out / RUNS_DIR).symlink_to(elsewhere)
    with pytest.raises(FileExistsError, match=blocker.split()[0]):
        check_layout(out)
    assert (elsewhere / "2026-01-01_000000-abcdef").is_dir()


def test_only_run_folders_are_removed_from_runs(tmp_path):
    (tmp_path / RUNS_DIR).mkdir()
    (tmp_path / RUNS_DIR / "ghi_chu").mkdir()  # something an operator put there
    for n in range(3):
        _run(tmp_path, n)
    assert "ghi_chu" in os.listdir(tmp_path / RUNS_DIR) and len(os.listdir(tmp_path / RUNS_DIR)) == 3


def test_two_runs_in_one_second_get_their_own_ids():
    when = dt.datetime(2026, 11, 24, 1, 30)
    assert len({new_run_id(when) for _ in range(50)}) == 50
