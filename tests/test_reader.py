"""Reading returned workbooks by header title and code: moved columns, inserted rows, renamed sheets, and
file-level findings with their locations."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from kbang_egov.forms.layout import CRITERIA_SHEET, INFO_SHEET, META_SHEET
from kbang_egov.reading.reader import a1, read_submission
from kbang_egov.rules.rulebook import load_rulebook

TEMPLATES = Path(__file__).resolve().parent.parent / "input_templates"
KBANG = TEMPLATES / "CQDT_2020_Huyen_Kbang.xlsx"
BLANK = TEMPLATES / "CQDT_2020_mau.xlsx"


@pytest.fixture(scope="module")
def rb():
    return load_rulebook()


def _codes_rows(ws) -> dict[str, int]:
    out = {}
    for row in ws.iter_rows(min_col=1, max_col=1):
        v = row[0].value
        if isinstance(v, str) and v.strip() and v.strip() not in out:
            out[v.strip()] = row[0].row
    return out


def _header_row(ws) -> int:
    return next(r for r in range(1, 40) if ws.cell(r, 1).value == "Mã")


def _edit(tmp_path: Path, edit, src: Path = KBANG, name: str = "edited.xlsx") -> bytes:
    wb = openpyxl.load_workbook(src)
    ws = wb[CRITERIA_SHEET]
    for merged in list(ws.merged_cells.ranges):  # openpyxl, unlike Excel, does not move merges with rows
        ws.unmerge_cells(str(merged))
    edit(wb)
    out = tmp_path / name
    wb.save(out)
    return out.read_bytes()


def test_a1():
    assert [a1(1, 0), a1(10, 7), a1(3, 25), a1(3, 26), a1(3, 701), a1(3, 702)] == \
        ["A1", "H10", "Z3", "AA3", "ZZ3", "AAA3"]


def test_template_reads_clean(rb):
    sub = read_submission(KBANG.read_bytes(), "k.xlsx", rb)
    assert sub.findings == []
    assert sub.sheet == CRITERIA_SHEET
    assert len([c for c in rb.criteria if c.code in sub.rows]) == 171
    assert {"SS.I", "SS", "KQ", "TONG"} <= set(sub.rows)
    assert sub.info["unit_name"] == "Huyện Kbang"
    assert sub.meta["rulebook_version"] == rb.version


def test_moved_columns_inserted_rows_renamed_sheet_and_notes(tmp_path, rb):
    def edit(wb):
        ws = wb[CRITERIA_SHEET]
        ws.title = "Bảng điểm huyện"
        ws.insert_rows(1, amount=3)  # a letterhead above the table
        ws["A1"] = "UBND HUYỆN KBANG"
        ws.insert_cols(2)  # a column of notes before the names
        ws.insert_rows(_codes_rows(ws)["SS.I.2"])
        ws.cell(_codes_rows(ws)["SS.I.1"] + 1, 1, "Ghi chú: số liệu tháng 11")  # a note line in the code column
        rows = _codes_rows(ws)
        # self-score and denominator columns swapped by a clerk
        header = next(r for r in range(1, 20) if ws.cell(r, 1).value == "Mã")
        titles = {ws.cell(header, c).value: c for c in range(1, 15)}
        ss, den = titles["Điểm tự đánh giá"], titles["Mẫu số"]
        ws.cell(header, ss, "Mẫu số")
        ws.cell(header, den, "Điểm tự đánh giá")
        ws.cell(rows["SS.I.1"], titles["Tử số"], 31)
        ws.cell(rows["SS.I.1"], ss, 318)  # now the Mẫu số column
        ws.cell(rows["SS.I.1"], den, 0.1)  # now the self-score column
        ws.insert_rows(rows["KQ.I.33"])
        ws.cell(rows["KQ.I.33"], 1, "  kq.i.5 ")  # a duplicate typed in lower case
        wb[INFO_SHEET].insert_rows(2, amount=2)

    sub = read_submission(_edit(tmp_path, edit), "e.xlsx", rb)
    assert sub.sheet == "Bảng điểm huyện"
    r = sub.rows["SS.I.1"]
    assert (r.cells["numerator"], r.cells["denominator"], r.cells["self_score"]) == (31, 318, 0.1)
    assert sub.cell("SS.I.1", "self_score")[0] == "H"  # the swapped column, found by its title
    assert [(f.code, f.subject) for f in sub.findings] == [("row-duplicated", "KQ.I.5")]
    assert sub.info["unit_name"] == "Huyện Kbang"
    assert sub.info_cells["unit_name"] == "B7"


def test_missing_column_rejects(tmp_path, rb):
    def edit(wb):
        ws = wb[CRITERIA_SHEET]
        ws.delete_cols(7)  # Mẫu số

    sub = read_submission(_edit(tmp_path, edit), "e.xlsx", rb)
    assert [(f.code, f.sheet, f.cell) for f in sub.findings] == [("column-missing", CRITERIA_SHEET, "A4")]
    assert sub.rejected


def test_missing_and_duplicated_rows(tmp_path, rb):
    def edit(wb):
        ws = wb[CRITERIA_SHEET]
        rows = _codes_rows(ws)
        ws.delete_rows(rows["SS.II.3"])
        ws.cell(rows["KQ.IV.5"] + 5, 1, "SS.I.2")

    sub = read_submission(_edit(tmp_path, edit), "e.xlsx", rb)
    got = [(f.code, f.subject, f.cell) for f in sub.findings]
    dup_row = sub.rows["TONG"].row + 4  # KQ.IV.5 + 5, one row up after the deletion
    assert got == [("row-duplicated", "SS.I.2", f"A{dup_row}"), ("row-missing", "SS.II.3", "")]
    assert not sub.rejected


def test_other_rulebook_version_rejects(tmp_path, rb):
    def edit(wb):
        ws = wb[META_SHEET]
        for row in ws.iter_rows():
            if row[0].value == "rulebook_version":
                row[1].value = "2019.1"

    sub = read_submission(_edit(tmp_path, edit), "e.xlsx", rb)
    assert [(f.code, f.sheet) for f in sub.findings] == [("template-version", META_SHEET)]
    assert sub.rejected


def test_edited_rulebook_hash_warns(tmp_path, rb):
    def edit(wb):
        ws = wb[META_SHEET]
        for row in ws.iter_rows():
            if row[0].value == "rulebook_hash":
                row[1].value = "0" * 64

    sub = read_submission(_edit(tmp_path, edit), "e.xlsx", rb)
    assert [f.code for f in sub.findings] == ["template-modified"]
    assert not sub.rejected


def test_unmarked_copy_is_read_with_a_warning(tmp_path, rb):
    sub = read_submission(_edit(tmp_path, lambda wb: wb.remove(wb[META_SHEET])), "e.xlsx", rb)
    assert [f.code for f in sub.findings] == ["template-unmarked"]
    assert len(sub.rows) > 170


def test_foreign_workbook(tmp_path, rb):
    wb = openpyxl.Workbook()
    wb.active["A1"] = "Báo cáo tài chính"
    wb.active["B2"] = 12
    wb.save(tmp_path / "f.xlsx")
    sub = read_submission((tmp_path / "f.xlsx").read_bytes(), "f.xlsx", rb)
    assert [f.code for f in sub.findings] == ["file-not-template"]
    assert sub.rejected


@pytest.mark.parametrize(("data", "code"), [
    (b"", "file-empty"),
    (b"not a workbook at all", "file-wrong-type"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "file-wrong-type"),
    (b"<html><body><table><tr><td>M\xc3\xa3</td></tr></table></body></html>", "file-wrong-type"),
    (b"PK\x03\x04" + b"\x00" * 40, "file-truncated"),
    (bytes(range(256)) * 4, "file-unreadable"),
])
def test_not_a_workbook(rb, data, code):
    sub = read_submission(data, "bad.xlsx", rb)
    assert [f.code for f in sub.findings] == [code]
    assert sub.rejected


def test_truncated_template(rb):
    data = KBANG.read_bytes()
    sub = read_submission(data[: len(data) // 2], "cut.xlsx", rb)
    assert [f.code for f in sub.findings] == ["file-truncated"]


def test_merged_cell_over_inputs_is_located(tmp_path, rb):
    def edit(wb):
        ws = wb[CRITERIA_SHEET]
        row = _codes_rows(ws)["SS.I.1"]
        titles = {ws.cell(_header_row(ws), c).value: c for c in range(1, 15)}
        first, last = titles["Tử số"], titles["Mẫu số"]
        ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)

    sub = read_submission(_edit(tmp_path, edit), "m.xlsx", rb)
    got = [(f.code, f.subject, f.cell) for f in sub.findings]
    numerator = sub.cell("SS.I.1", "numerator")
    assert got == [("cell-merged", "SS.I.1", numerator)]
    assert f"{numerator}:{sub.cell('SS.I.1', 'denominator')}" in sub.findings[0].message


@pytest.mark.parametrize("cell", ["J1048576", "A5001", "IW2", "AAA3"])
def test_a_far_stray_cell_reads_bounded_and_is_reported(tmp_path, rb, cell):
    """Beyond row 5,000 or column IV, however near the limit, the cell is cut and reported where it is."""
    def edit(wb):
        wb[CRITERIA_SHEET][cell] = "ghi chú"

    sub = read_submission(_edit(tmp_path, edit), "far.xlsx", rb)
    assert [(f.code, f.cell) for f in sub.findings] == [("sheet-oversized", cell)]
    assert not sub.rejected and len(sub.rows) > 170


@pytest.mark.parametrize("cell", ["A5000", "IV2"])
def test_a_cell_at_the_limit_is_read_without_finding(tmp_path, rb, cell):
    def edit(wb):
        wb[CRITERIA_SHEET][cell] = "ghi chú"

    sub = read_submission(_edit(tmp_path, edit), "near.xlsx", rb)
    assert [f.code for f in sub.findings] == []


def test_a_reader_panic_is_a_finding_not_a_crash(rb, monkeypatch):
    """python-calamine can raise pyo3's PanicException, a BaseException: one bad file must not stop the run."""

    class PanicException(BaseException):
        pass

    def panic(*args, **kwargs):
        raise PanicException("index out of bounds")

    import python_calamine
    monkeypatch.setattr(python_calamine.CalamineWorkbook, "from_filelike", panic)
    sub = read_submission(KBANG.read_bytes(), "p.xls", rb)
    assert [f.code for f in sub.findings] == ["file-unreadable"]
    assert "PanicException" in sub.findings[0].params["reason"]


@pytest.mark.parametrize(("error", "message", "code"), [
    ("PasswordError", "Workbook is password protected", "file-encrypted"),  # an encrypted .xls (FILEPASS)
    ("ZipError", "invalid Zip archive: Could not find EOCD", "file-truncated"),
    ("XlsError", "Invalid OLE signature", "file-unreadable"),
])
def test_calamine_errors_map_to_their_codes(rb, monkeypatch, error, message, code):
    raised = type(error, (Exception,), {})

    def fail(*args, **kwargs):
        raise raised(message)

    import python_calamine
    monkeypatch.setattr(python_calamine.CalamineWorkbook, "from_filelike", fail)
    sub = read_submission(KBANG.read_bytes(), "x.xls", rb)
    assert [f.code for f in sub.findings] == [code]


def test_a_cell_calamine_cannot_place_is_one_finding_for_the_file(rb):
    import io
    import zipfile

    src = zipfile.ZipFile(KBANG)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zw:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename.startswith("xl/worksheets/"):
                body = body.replace(b'<c r="A7"', b'<c r="7A"', 1)
            zw.writestr(info.filename, body)
    sub = read_submission(out.getvalue(), "b.xlsx", rb)
    assert [f.code for f in sub.findings] == ["file-unreadable"]


def test_duplicated_rows_are_reported_in_the_order_their_codes_first_appear(tmp_path, rb):
    def edit(wb):
        ws = wb[CRITERIA_SHEET]
        rows = _codes_rows(ws)
        below = rows["KQ.IV.5"] + 5
        ws.cell(below, 1, "KQ.I.1")  # a later code, copied first
        ws.cell(below + 1, 1, "SS.I.1")
        ws.cell(below + 2, 1, "KQ.I.1")

    sub = read_submission(_edit(tmp_path, edit), "e.xlsx", rb)
    first = {code: sub.rows[code].row for code in ("SS.I.1", "KQ.I.1")}
    below = sub.rows["KQ.IV.5"].row + 5
    got = [(f.code, f.subject, f.cell, f.params["rows"]) for f in sub.findings]
    assert got == [
        ("row-duplicated", "SS.I.1", f"A{below + 1}", f"{first['SS.I.1']}, {below + 1}"),
        ("row-duplicated", "KQ.I.1", f"A{below}", f"{first['KQ.I.1']}, {below}, {below + 2}"),
        ("row-duplicated", "KQ.I.1", f"A{below + 2}", f"{first['KQ.I.1']}, {below}, {below + 2}"),
    ]
