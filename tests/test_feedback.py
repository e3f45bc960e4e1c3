"""Feedback workbooks: the return rebuilt at the same addresses, every finding's comment at the cell
findings.csv names, the summary sheet's figures, a clean return without a comment, feedback.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from kbang_egov.forms.template import Filled, write_template
from kbang_egov.operations.feedback_pass import CSV_COLUMNS, FEEDBACK_CSV, FEEDBACK_DIR
from kbang_egov.operations.pipeline import process_file, run_batch
from kbang_egov.reading.reader import read_sheets
from kbang_egov.reporting.feedback import CHECKED, SUMMARY_SHEET, figures_for, write_feedback
from kbang_egov.rules.districts import match_district
from workbooks import convert_all, make_profile


def full_marks(rb) -> Filled:
    """A return with every point earned and every self-score and subtotal right: no finding at all. A percent
    is typed as text with its sign ("70%"): a percent cell's 0.7 is read as 70% with a warning, as the reader
    cannot see the cell's format (percent-fraction, tested in test_checks and test_validate)."""
    values, own = {}, {}
    for c in rb.scored_criteria:
        if c.kind == "ratio":
            values[c.code] = {"numerator": 14, "denominator": 14}
        elif c.kind in ("yesno", "choice"):
            values[c.code] = {"value": max(c.options, key=lambda o: o.points).label}
        else:
            top = max(c.tiers, key=lambda t: t.points)
            v = top.ge if top.ge is not None else (top.gt + 1 if top.gt is not None else c.value.max)
            values[c.code] = {"value": f"{v:g}%" if c.value.unit == "%" else v}
        own[c.code] = c.max
    declared = {g.code: g.max for g in rb.groups} | {p.code: p.max for p in rb.parts} | {rb.total_code: rb.total_max}
    return Filled(values=values, self_scores=own, declared=declared)


def with_slips(rb) -> Filled:
    """Full marks with planted slips: a wrong self-score, an unparseable figure, a missing input, a wrong
    subtotal."""
    f = full_marks(rb)
    values = {k: dict(v) for k, v in f.values.items()}
    own = dict(f.self_scores)
    own["SS.I.2"] = 0.5  # self-score-mismatch
    values["SS.I.1"] = {"numerator": "ba mươi", "denominator": 14}  # input-unparseable
    values["KQ.II.1"] = {}  # input-missing
    declared = dict(f.declared)
    declared["SS.III"] = 9  # a wrong subtotal
    return Filled(values=values, self_scores=own, declared=declared)


@pytest.fixture()
def inbox(tmp_path, rb, districts):
    inp = tmp_path / "in"
    write_template(rb, inp, match_district("Kbang", districts), districts, filled=with_slips(rb),
                   file_name="kbang.xlsx")
    write_template(rb, inp, match_district("Ia Pa", districts), districts, filled=full_marks(rb),
                   file_name="iapa.xlsx")
    (inp / "broken.xlsx").write_bytes(b"PK\x03\x04 not a workbook")
    return inp


def comments(path: Path) -> dict[tuple[str, str], str]:
    wb = openpyxl.load_workbook(path)
    return {(ws.title, c.coordinate): c.comment.text for ws in wb for row in ws.iter_rows() for c in row if c.comment}


def test_run_writes_a_feedback_per_return_with_comments_at_the_cells_findings_csv_names(tmp_path, inbox, rb,
                                                                                      districts):
    out = tmp_path / "out"
    run_batch(inbox, out, rb, districts, workers=1)
    assert (out / FEEDBACK_DIR / FEEDBACK_CSV).read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8
    rows = list(csv.DictReader(open(out / FEEDBACK_DIR / FEEDBACK_CSV, encoding="utf-8-sig")))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_file = {r["source_file"]: r for r in rows}
    assert {f: (r["district"], r["feedback_file"], r["status"]) for f, r in by_file.items()} == {
        "broken.xlsx": ("", "PhanHoi_tep_broken.xlsx", "not-scored"),
        "iapa.xlsx": ("Huyện Ia Pa", "PhanHoi_CQDT_2020_Huyen_Ia_Pa.xlsx", "ranked"),
        "kbang.xlsx": ("Huyện Kbang", "PhanHoi_CQDT_2020_Huyen_Kbang.xlsx", "ranked"),
    }
    findings = pd.read_csv(out / "findings.csv", dtype=str, keep_default_na=False)
    kb = findings[(findings.file == "kbang.xlsx") & (findings.cell != "")]
    expected = {(r.sheet, r.cell) for r in kb.itertuples()}
    assert {"self-score-mismatch", "input-unparseable", "input-missing"} <= set(kb.finding)
    assert "SS.III" in set(kb[kb.finding.str.startswith("subtotal-")].code)
    got = comments(out / FEEDBACK_DIR / "PhanHoi_CQDT_2020_Huyen_Kbang.xlsx")
    assert set(got) == expected
    # the comment carries the official score beside the declared one
    mismatch = kb[kb.finding == "self-score-mismatch"].iloc[0]
    assert "0,5" in got[(mismatch.sheet, mismatch.cell)] and "SS.I.2" in got[(mismatch.sheet, mismatch.cell)]
    assert comments(out / FEEDBACK_DIR / "PhanHoi_CQDT_2020_Huyen_Ia_Pa.xlsx") == {}
    broken = openpyxl.load_workbook(out / FEEDBACK_DIR / "PhanHoi_tep_broken.xlsx")
    assert broken.sheetnames == [SUMMARY_SHEET]
    assert (out / "feedback").is_dir() and (out / "current" / "feedback" / FEEDBACK_CSV).is_file()


def test_the_copy_keeps_every_sheet_and_cell_at_its_address(tmp_path, inbox, rb):
    data = (inbox / "kbang.xlsx").read_bytes()
    sheets, finding = read_sheets(data, "kbang.xlsx")
    assert finding is None
    target = tmp_path / "fb.xlsx"
    write_feedback(target, sheets, [], figures_for(None, rb, file="kbang.xlsx", district="Huyện Kbang",
                                                   status=CHECKED))
    wb = openpyxl.load_workbook(target)
    assert wb.sheetnames == [SUMMARY_SHEET, *[s.name for s in sheets]]
    for s in sheets:
        ws = wb[s.name]
        for i, row in enumerate(s.rows):
            for j, v in enumerate(row):
                got = ws.cell(i + 1, j + 1).value
                assert (got if got is not None else "") == v, (s.name, i + 1, j + 1)
        assert ws.sheet_state == ("hidden" if s.hidden else "visible")


def test_summary_sheet_scores_rank_median_and_links(tmp_path, inbox, rb, districts):
    out = tmp_path / "out"
    run = run_batch(inbox, out, rb, districts, workers=0)
    ws = openpyxl.load_workbook(out / FEEDBACK_DIR / "PhanHoi_CQDT_2020_Huyen_Kbang.xlsx")[SUMMARY_SHEET]
    cells = {c.coordinate: c.value for row in ws.iter_rows() for c in row if c.value is not None}
    kbang = next(d for d in run.districts if d.district == "Huyện Kbang")
    assert any(isinstance(v, str) and f"{kbang.rank}/2" in v for v in cells.values())
    rows = {ws.cell(r, 1).value: r for r in range(1, ws.max_row + 1)}
    r = rows["SS.III"]
    assert ws.cell(r, 5).value == pytest.approx(kbang.subtotals["SS.III"].achieved)
    assert ws.cell(r, 6).value == 9  # declared
    assert ws.cell(r, 8).value == pytest.approx((10 + kbang.subtotals["SS.III"].achieved) / 2)  # median of two
    links = [c.hyperlink.location for row in ws.iter_rows() for c in row if c.hyperlink is not None]
    located = [f for f in kbang.findings if f.cell]
    assert sorted(links) == sorted(f"'{f.sheet}'!{f.cell}" for f in located)
    assert ws._charts  # noqa: SLF001 - openpyxl keeps a read sheet's charts there; the chart is there


def test_a_return_changed_after_scoring_gets_no_stale_feedback(tmp_path, inbox, rb, districts):
    from kbang_egov.operations.feedback_pass import plan_feedback, write_feedbacks

    o = process_file(inbox / "kbang.xlsx", "kbang.xlsx", rb, districts)
    jobs, rows = plan_feedback([o], rb, tmp_path / "fb", inbox, [o.result])
    (inbox / "kbang.xlsx").write_bytes((inbox / "iapa.xlsx").read_bytes())  # a new upload over it
    failed = write_feedbacks(jobs, rows, tmp_path / "fb", workers=0)
    assert [(f.code, f.file) for f in failed] == [("feedback-failed", "kbang.xlsx")]
    assert rows[0]["feedback_file"] == "" and not (tmp_path / "fb" / "PhanHoi_CQDT_2020_Huyen_Kbang.xlsx").exists()


@pytest.mark.libreoffice
def test_xls_and_ods_returns_get_comments_at_the_same_cells(tmp_path, inbox, rb, districts):
    conv = tmp_path / "conv"
    profile = make_profile(tmp_path / "profile")
    (inbox / "broken.xlsx").unlink()
    (inbox / "iapa.xlsx").unlink()
    xls = convert_all([inbox / "kbang.xlsx"], "xls", conv, profile)[0]
    ods = convert_all([inbox / "kbang.xlsx"], "ods", conv, profile)[0]
    for path in (xls, ods):
        one = tmp_path / path.suffix[1:]
        one.mkdir()
        path.rename(one / path.name)
        out = tmp_path / f"out{path.suffix}"
        run_batch(one, out, rb, districts, workers=1)
        findings = pd.read_csv(out / "findings.csv", dtype=str, keep_default_na=False)
        expected = {(r.sheet, r.cell) for r in findings.itertuples() if r.cell}
        assert {"self-score-mismatch", "input-unparseable"} <= set(findings.finding)
        got = comments(out / FEEDBACK_DIR / "PhanHoi_CQDT_2020_Huyen_Kbang.xlsx")
        assert set(got) == expected, path.suffix


def test_hostile_cells_and_sheet_names_stay_values_and_a_far_finding_is_listed_not_made(tmp_path, rb):
    from kbang_egov.reading.reader import SheetCells
    from kbang_egov.rules.findings import make_finding

    long_name = "Tiêu chí đánh giá năm 2020 (bản sửa lần 2)"  # .ods allows more than Excel's 31 characters
    sheets = [SheetCells("Tiêu chí: 2020/21", [["=HYPERLINK(\"http://x\",\"bấm\")", "\x01ký tự lạ", "x" * 40000]]),
              SheetCells(long_name, [[1.5, None, True]]),
              SheetCells(SUMMARY_SHEET, [["một trang cùng tên"]])]
    findings = [make_finding("input-missing", "f.ods", "Tiêu chí: 2020/21", "B1", what="Giá trị", score=0, how="."),
                make_finding("sheet-oversized", "f.ods", long_name, "XFD1048576", end="XFD1048576", limit=2000),
                make_finding("file-not-template", "f.ods", template="CQDT_2020_mau.xlsx")]
    target = tmp_path / "fb.xlsx"
    write_feedback(target, sheets, findings, figures_for(None, rb, file="f.ods", district="", status=CHECKED))
    wb = openpyxl.load_workbook(target)
    assert len(wb.sheetnames) == 4 and wb.sheetnames[0] == SUMMARY_SHEET
    first, second, third = (wb[n] for n in wb.sheetnames[1:])
    assert first["A1"].data_type == "s" and first["A1"].value.startswith("=HYPERLINK")  # text, never a formula
    assert len(first["C1"].value) == 32767
    assert first["B1"].comment is not None
    assert second.max_row == 1 and second.max_column == 3  # the far cell is not made: listed on the summary
    assert third["A1"].value == "một trang cùng tên"
    links = [c.hyperlink.location for row in wb[SUMMARY_SHEET].iter_rows() for c in row if c.hyperlink]
    assert f"'{second.title}'!XFD1048576" in links
    import zipfile

    with zipfile.ZipFile(target) as z:
        notes = [z.read(n).decode().count("<comment ") for n in z.namelist() if n.startswith("xl/comments")]
    assert sum(notes) == 1


def test_a_sheet_past_the_cell_budget_is_copied_in_part_and_the_summary_says_so(tmp_path, inbox, rb):
    sheets, _ = read_sheets((inbox / "kbang.xlsx").read_bytes(), "kbang.xlsx", cell_limit=1000)
    assert [s.cut for s in sheets][:3] == [False, False, True]  # the guide, the information, the criteria
    target = tmp_path / "fb.xlsx"
    write_feedback(target, sheets, [], figures_for(None, rb, file="kbang.xlsx", district="Huyện Kbang",
                                                   status=CHECKED))
    texts = [c.value for row in openpyxl.load_workbook(target)[SUMMARY_SHEET].iter_rows() for c in row
             if isinstance(c.value, str)]
    assert any("Tiêu chí" in t and "một phần" in t for t in texts)
