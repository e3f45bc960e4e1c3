"""The batch's file handling: which files are submissions, which district each is for, duplicates."""

from __future__ import annotations

import os
import shutil
import unicodedata
from pathlib import Path

import openpyxl
import pytest

from kbang_egov.forms.layout import CRITERIA_SHEET, INFO_SHEET
from kbang_egov.operations.pipeline import (
    bundled_samples_dir,
    process_file,
    run_batch,
    settle_duplicates,
)
from kbang_egov.reading.inbox import discover_files
from kbang_egov.rules.districts import District
from kbang_egov.rules.results import REJECTED, SCORED, SUPERSEDED

BLANK = Path(__file__).resolve().parent.parent / "input_templates" / "CQDT_2020_mau.xlsx"
FILLED = bundled_samples_dir() / "CQDT_2020_Huyen_Kbang.xlsx"


def submission_for(path: Path, unit_name: object, base: Path = FILLED) -> Path:
    """A filled return (Kbang's) with the information sheet's unit name typed in."""
    wb = openpyxl.load_workbook(base)
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
    p = submission_for(tmp_path / "x.xlsx", typed, base=BLANK)
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
    src = bundled_samples_dir() / "CQDT_2020_Thi_xa_An_Khe.xlsx"
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
    other = submission_for(tmp_path / "ak.xlsx", "Thị xã An Khê", base=bundled_samples_dir() / "CQDT_2020_Thi_xa_An_Khe.xlsx")
    outcomes = [process_file(p, p.name, rb, districts) for p in (other, old, new)]
    settle_duplicates(outcomes)
    assert [o.record.status for o in outcomes] == [SCORED, SUPERSEDED, SCORED]
    assert [(f.code, f.file, f.sheet, f.cell, f.district) for f in outcomes[1].findings] == \
        [("district-duplicate", "kbang_cu.xlsx", INFO_SHEET, "B5", "Huyện Kbang")]
    assert outcomes[1].findings[0].params["used"] == "kbang_moi.xlsx"
    assert outcomes[1].result is None


def _fill(path: Path, rb, codes) -> Path:
    """Type a figure (or a label) for each of `codes` into the template at `path`, as a clerk would."""
    from workbooks import calamine_rows, locate

    _, cols, rows = locate(calamine_rows(path, CRITERIA_SHEET))
    wb = openpyxl.load_workbook(path)
    ws = wb[CRITERIA_SHEET]
    for code in codes:
        c = rb.criterion(code)
        for column in ("numerator", "denominator") if c.kind == "ratio" else ("value",):
            ws.cell(rows[code] + 1, cols[column] + 1, c.options[0].label if c.options else 1)
    wb.save(path)
    return path


def test_a_blank_template_sent_back_is_one_finding_and_not_ranked(tmp_path, rb, districts):
    """A district's own copy sent back untouched: one file-level finding (not 350), the district known."""
    p = tmp_path / "ak.xlsx"
    shutil.copy(BLANK.parent / "CQDT_2020_Thi_xa_An_Khe.xlsx", p)
    o = process_file(p, "ak.xlsx", rb, districts)
    assert (o.record.status, o.record.codes, o.record.district) == (REJECTED, ("file-not-filled",), "Thị xã An Khê")
    assert [(f.code, f.sheet, f.cell, f.district) for f in o.findings] == [
        ("file-not-filled", CRITERIA_SHEET, "", "Thị xã An Khê")]
    assert (o.findings[0].params["filled"], o.findings[0].params["total"]) == (0, 170)
    assert o.result is None and o.district.name == "Thị xã An Khê"
    assert o.note == "Đã gửi mẫu chưa điền (0/170 tiêu chí có số liệu): tệp ak.xlsx"


@pytest.mark.parametrize(("filled", "scored"), [(1, False), (16, False), (17, True)])
def test_the_blank_return_threshold_is_a_tenth_of_the_criteria(tmp_path, rb, districts, filled, scored):
    """17 of 170 criteria (10%) filled in is a return, scored with its gaps flagged; 16 is a blank template."""
    p = submission_for(tmp_path / "x.xlsx", "Thị xã An Khê", base=BLANK)
    _fill(p, rb, [c.code for c in rb.scored_criteria[:filled]])
    o = process_file(p, "x.xlsx", rb, districts)
    assert (o.record.status == SCORED) == scored
    if scored:
        assert sum(f.code == "input-missing" for f in o.findings) == 170 - filled
    else:
        assert [f.code for f in o.findings] == ["file-not-filled"]
        assert o.findings[0].params["filled"] == filled


def test_a_blank_return_leaves_its_district_among_the_not_submitted_with_a_note(tmp_path, rb, districts):
    inp = tmp_path / "in"
    inp.mkdir()
    submission_for(inp / "kbang.xlsx", "Huyện Kbang")
    shutil.copy(BLANK.parent / "CQDT_2020_Thi_xa_An_Khe.xlsx", inp / "ak.xlsx")
    shutil.copy(BLANK.parent / "CQDT_2020_Huyen_Kbang.xlsx", inp / "kbang_trong.xlsx")  # Kbang's filled one counts
    run = run_batch(inp, tmp_path / "out", rb, districts, workers=0)
    assert [d.district for d in run.districts] == ["Huyện Kbang"]
    assert "Thị xã An Khê" in run.not_submitted and "Huyện Kbang" not in run.not_submitted
    assert run.not_submitted_notes == {"Thị xã An Khê": "Đã gửi mẫu chưa điền (0/170 tiêu chí có số liệu): tệp ak.xlsx"}
    assert sorted((f.file, f.code) for f in run.findings if f.code == "file-not-filled") == [
        ("ak.xlsx", "file-not-filled"), ("kbang_trong.xlsx", "file-not-filled")]


def test_unreadable_file_is_rejected_with_its_hash(tmp_path, rb, districts):
    p = tmp_path / "bad.xlsx"
    p.write_bytes(b"%PDF-1.4 not a workbook")
    o = process_file(p, "bad.xlsx", rb, districts)
    assert o.record.status == REJECTED
    assert o.record.codes == ("file-wrong-type",)
    assert len(o.record.sha256) == 64 and o.record.size == 23
