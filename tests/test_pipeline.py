"""The batch's file handling: which files are submissions, which district each is for, duplicates."""

from __future__ import annotations

import os
import shutil
import unicodedata
from pathlib import Path

import openpyxl
import pytest

from kbang_egov.districts import District
from kbang_egov.layout import INFO_SHEET
from kbang_egov.pipeline import discover_files, process_file, settle_duplicates
from kbang_egov.results import REJECTED, SCORED, SUPERSEDED

BLANK = Path(__file__).resolve().parent.parent / "input_templates" / "CQDT_2020_mau.xlsx"


def submission_for(path: Path, unit_name: object) -> Path:
    """The blank template with the information sheet's unit name typed in."""
    wb = openpyxl.load_workbook(BLANK)
    ws = wb[INFO_SHEET]
    for row in ws.iter_rows(max_col=1):
        if row[0].value == "Tên đơn vị":
            ws.cell(row[0].row, 2, unit_name)
    wb.save(path)
    return path


def test_discover_skips_lock_hidden_other_and_output(tmp_path):
    for name in ["a.xlsx", "b.XLS", "c.ods", "d.xlsm", "sub/e.xlsx", "~$a.xlsx", ".~lock.a.xlsx#", ".hidden.xlsx",
                 ".git/x.xlsx", "notes.pdf", "readme.txt", "out/ranking.xlsx"]:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    found, skipped, unreadable = discover_files(tmp_path, exclude=tmp_path / "out")
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.xlsx", "b.XLS", "c.ods", "d.xlsm", "sub/e.xlsx"]
    assert skipped == {"lock": 2, "hidden": 2, "other": 2, "output": 1}
    assert unreadable == []


@pytest.mark.parametrize("typed", ["Huyện Kbang", "huyện  kbang", "KBANG", " Kbang ", "H. Kbang",
                                   unicodedata.normalize("NFD", "Huyện Kbang"), "Huyen Kbang"])
def test_district_is_matched_as_typed(tmp_path, rb, districts, typed):
    p = submission_for(tmp_path / "k.xlsx", typed)
    o = process_file(p, "k.xlsx", rb, districts)
    assert o.record.status == SCORED
    assert o.result.district == "Huyện Kbang"
    assert all(f.district == "Huyện Kbang" for f in o.findings)


@pytest.mark.parametrize(("typed", "code"), [("Huyện Đà Lạt", "district-unknown"), (None, "district-missing"),
                                             ("   ", "district-missing")])
def test_district_unknown_or_missing(tmp_path, rb, districts, typed, code):
    p = submission_for(tmp_path / "x.xlsx", typed)
    o = process_file(p, "x.xlsx", rb, districts)
    assert o.record.status == REJECTED
    assert [(f.code, f.sheet, f.cell) for f in o.findings] == [(code, INFO_SHEET, "B5")]
    assert o.record.codes == (code,)
    assert o.result is None


def test_unknown_district_message_names_a_few_of_a_long_list(tmp_path, rb):
    """A national list has thousands of names; the message names the first 20 and counts the rest."""
    national = [District(f"Huyện Số {i}") for i in range(5000)]
    p = submission_for(tmp_path / "x.xlsx", "Huyện Kbang")
    o = process_file(p, "x.xlsx", rb, national)
    (f,) = o.findings
    assert f.code == "district-unknown"
    assert "Huyện Số 0, Huyện Số 1," in f.message and "Huyện Số 19 và 4980 đơn vị khác" in f.message
    assert "Huyện Số 20," not in f.message


def test_district_from_template_metadata_when_info_is_blank(tmp_path, rb, districts):
    src = BLANK.parent / "CQDT_2020_Thi_xa_An_Khe.xlsx"
    wb = openpyxl.load_workbook(src)
    ws = wb[INFO_SHEET]
    for row in ws.iter_rows(max_col=1):
        if row[0].value == "Tên đơn vị":
            ws.cell(row[0].row, 2, None)
    wb.save(tmp_path / "a.xlsx")
    o = process_file(tmp_path / "a.xlsx", "a.xlsx", rb, districts)
    assert o.result.district == "Thị xã An Khê"


def test_newer_of_two_submissions_is_scored(tmp_path, rb, districts):
    old = submission_for(tmp_path / "kbang_cu.xlsx", "Huyện Kbang")
    new = tmp_path / "kbang_moi.xlsx"
    shutil.copy(old, new)
    os.utime(old, (1_600_000_000, 1_600_000_000))
    os.utime(new, (1_700_000_000, 1_700_000_000))
    other = submission_for(tmp_path / "ak.xlsx", "Thị xã An Khê")
    outcomes = [process_file(p, p.name, rb, districts) for p in (other, old, new)]
    settle_duplicates(outcomes)
    assert [o.record.status for o in outcomes] == [SCORED, SUPERSEDED, SCORED]
    assert [(f.code, f.file, f.sheet, f.cell, f.district) for f in outcomes[1].findings] == \
        [("district-duplicate", "kbang_cu.xlsx", INFO_SHEET, "B5", "Huyện Kbang")]
    assert outcomes[1].findings[0].params["used"] == "kbang_moi.xlsx"
    assert outcomes[1].result is None


def test_unreadable_file_is_rejected_with_its_hash(tmp_path, rb, districts):
    p = tmp_path / "bad.xlsx"
    p.write_bytes(b"%PDF-1.4 not a workbook")
    o = process_file(p, "bad.xlsx", rb, districts)
    assert o.record.status == REJECTED
    assert o.record.codes == ("file-wrong-type",)
    assert len(o.record.sha256) == 64 and o.record.size == 23


def test_the_run_pauses_the_cyclic_collector_and_restores_it(tmp_path, rb, districts, monkeypatch):
    """Millions of result objects at national scale: no cyclic collection while reading, back on after."""
    import gc

    from kbang_egov import pipeline

    seen = []
    real = pipeline.read_files
    monkeypatch.setattr(pipeline, "read_files", lambda *a, **k: seen.append(gc.isenabled()) or real(*a, **k))
    run = pipeline.run_batch(pipeline.bundled_samples_dir(), tmp_path / "out", rb, districts, workers=0)
    assert seen == [False] and gc.isenabled()
    assert len(run.districts) == 17


def test_the_collector_comes_back_without_walking_the_runs_objects_as_young():
    """What the run made while the collector was off is handed to the oldest generation, not left in the
    youngest for the first collection after the run to walk."""
    import gc

    from kbang_egov import pipeline

    if not gc.isenabled():
        pytest.skip("the collector is off in this process")
    young: list[int] = []

    def first_collection(phase: str, info: dict) -> None:
        if phase == "start" and not young:
            young.append(len(gc.get_objects(generation=0)))

    gc.collect()  # counts at zero: no collection before the block, and none in it (the collector is off)
    gc.callbacks.append(first_collection)
    try:
        with pipeline._no_cyclic_gc():
            made = [[i] for i in range(50_000)]
        while not young:
            _ = [[i] for i in range(1_000)]  # allocations until the collector runs
    finally:
        gc.callbacks.remove(first_collection)
    assert young[0] < 10_000 and len(made) == 50_000
