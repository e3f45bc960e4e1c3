"""The guard's own reading of zip members (the same bytes as zipfile's, never more than the member limit) and
its look at the cells calamine would read."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from kbang_egov.forms.layout import CRITERIA_SHEET
from kbang_egov.reading import guard
from kbang_egov.reading.reader import read_submission
from kbang_egov.rules.rulebook import load_rulebook


@pytest.fixture(scope="module")
def rb():
    return load_rulebook()


def _zip(members: dict[str, bytes], method: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zw:
        for name, body in members.items():
            zw.writestr(name, body)
    return out.getvalue()


def test_members_read_as_zipfile_reads_them():
    body = b"<row r='1'>" + bytes(range(256)) * 400
    for method in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED):
        data = _zip({"xl/worksheets/sheet1.xml": body, "empty.xml": b""}, method)
        zf = zipfile.ZipFile(io.BytesIO(data))
        assert guard.read_member(zf, "xl/worksheets/sheet1.xml") == body
        assert guard.read_member(zf, "empty.xml") == b""


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_no_other_compression_method_is_inflated(method):
    """zipfile inflates a bzip2 or LZMA member past the size it declares: the guard refuses to."""
    data = _zip({"xl/workbook.xml": b" " * 1000}, method)
    with pytest.raises(ValueError, match="compression method"):
        guard.read_member(zipfile.ZipFile(io.BytesIO(data)), "xl/workbook.xml")


def test_a_member_is_never_inflated_past_the_limit(monkeypatch):
    monkeypatch.setattr(guard, "MEMBER_LIMIT", 2**20)
    data = _zip({"xl/workbook.xml": b" " * (8 * 2**20)}, zipfile.ZIP_DEFLATED)
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert len(guard.read_member(zf, "xl/workbook.xml")) == 2**20


# --- what calamine would read of a sheet: its cells up to the end of sheetData -----------------------------

SAMPLE = Path(__file__).resolve().parent.parent / "kbang_egov" / "data" / "samples" / "CQDT_2020_Huyen_Kbang.xlsx"


def _edit_sheet(data: bytes, sheet: str, edit) -> bytes:
    """The workbook's bytes with one sheet's XML passed through edit (bytes -> bytes)."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    member = next(m for m, name in guard.sheet_members(zf).items() if name == sheet)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zw:
        for info in zf.infolist():
            body = zf.read(info.filename)
            zw.writestr(info.filename, edit(body) if info.filename == member else body)
    return out.getvalue()


def _after_first_cell(xml: bytes, extra: bytes) -> bytes:
    at = xml.index(b"</c>", xml.index(b"<sheetData")) + len(b"</c>")
    return xml[:at] + extra + xml[at:]


def test_a_cell_whose_own_reference_is_far_is_cut_and_located(rb):
    """Inside a near row, a cell's reference alone can place it at row 1,048,576: calamine goes by the cell's."""
    data = _edit_sheet(SAMPLE.read_bytes(), CRITERIA_SHEET,
                       lambda xml: _after_first_cell(xml, b'<c r="J1048576" t="inlineStr"><is><t>x</t></is></c>'))
    rejected, trimmed, far = guard.screen(data, "f.xlsx", ".xlsx")
    assert rejected is None and far == {CRITERIA_SHEET: "J1048576"}
    assert b"J1048576" not in zipfile.ZipFile(io.BytesIO(trimmed)).read(
        next(m for m, n in guard.sheet_members(zipfile.ZipFile(io.BytesIO(trimmed))).items()
             if n == CRITERIA_SHEET))
    sub = read_submission(data, "f.xlsx", rb)
    assert [(f.code, f.sheet, f.cell) for f in sub.findings] == [("sheet-oversized", CRITERIA_SHEET, "J1048576")]
    assert not sub.rejected


def _beyond(row_xml: bytes) -> bool:
    [(_, number, cells)] = list(guard.positioned_cells(row_xml))
    return number > guard.ROW_LIMIT or any(r > guard.ROW_LIMIT or c > guard.COLUMN_LIMIT for _, r, c in cells)


def test_the_far_mark_misses_no_cell_beyond_the_limits():
    columns = ["A", "I", "J", "Z", "AA", "IV", "IW", "IZ", "JA", "ZZ", "AAA", "XFD", "xfd", "j"]
    rows = ["1", "9", "10", "999", "1000", "4999", "5000", "5001", "9999", "10000", "1048576", "01048576"]
    for col in columns:
        for row in rows:
            for cell in (f'<c r="{col}{row}"><v>1</v></c>', f"<c s='0' r = '{col}{row}'><v>1</v></c>"):
                xml = f'<row r="1">{cell}</row>'.encode()
                if _beyond(xml):
                    assert guard.has_far_mark(xml), xml
                if guard.column_index(col.upper()) <= guard.COLUMN_LIMIT and len(row) < 4:
                    assert not guard.has_far_mark(xml), xml  # the usual cell costs no parse
    assert guard.has_far_mark(b'<row r="5001">') and not guard.has_far_mark(b'<row r="999">')
    # Without a reference calamine puts a cell after the one before it, and a row after the row before.
    assert guard.has_far_mark(b'<row r="1"><c t="s"><v>1</v></c></row>')
    assert guard.has_far_mark(b"<row/>" * (guard.ROW_LIMIT + 1))


@pytest.mark.parametrize(("row", "where"), [
    (b'<row r="1048576"><c r="J1048576"><v>1</v></c></row>', (1048576, 10)),
    (b'<row r="1048576"><c s="0" r="XFD1048576"><v>1</v></c></row>', (1048576, 16384)),  # r not first
    (b"<row r='1048576'><c r = 'j01048576'><v>1</v></c></row>", (1048576, 10)),  # as calamine reads it
    (b'<x:row r="1048576"><x:c r="J1048576"><x:v>1</x:v></x:c></x:row>', (1048576, 10)),
    (b'<row r="7"><c r="IV7"><v>1</v></c><c><v>1</v></c></row>', (7, 257)),  # after IV, unreferenced
    (b'<row r="01048576"><c><v>1</v></c></row>', (1048576, 1)),
])
def test_cells_are_placed_as_calamine_places_them(row, where):
    *_, cells = next(guard.positioned_cells(row))
    assert cells[-1][1:] == where
    xml, cut, valued = guard.trim_far_cells(b"<sheetData>" + row + b"</sheetData>")
    assert cut == 1 and valued == [where] and b"<v>" not in xml.replace(b"x:", b"")[:-len(b"</sheetData>")] \
        or where == (7, 257) and xml.count(b"<v>") == 1


@pytest.mark.parametrize("end", [b"</sheetData>", b"</x:sheetData >"])
def test_a_sheet_is_inflated_up_to_the_end_of_its_cells(monkeypatch, end):
    """However the inflate steps fall across the end tag, the head stops right after it."""
    body = b'<worksheet><sheetData><row r="1"><c r="A1"><v>1</v></c></row>' + end + b"<mergeCells/>" * 500
    body += b"</worksheet>"
    data = _zip({"xl/worksheets/sheet1.xml": body}, zipfile.ZIP_DEFLATED)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("xl/worksheets/sheet1.xml")
    for step in (5, 7, 64, 1 << 16):
        monkeypatch.setattr(guard, "HEAD_STEP", step)
        assert guard.sheet_head(zipfile.ZipFile(io.BytesIO(data)), info) == body[:body.index(end) + len(end)]


def test_a_sheet_without_an_end_of_cells_is_read_whole():
    body = b'<worksheet><sheetData><row r="1"><c r="A1"><v>1</v></c></row>' + b" " * 5000
    data = _zip({"xl/worksheets/sheet1.xml": body}, zipfile.ZIP_DEFLATED)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("xl/worksheets/sheet1.xml")
    assert guard.sheet_head(zipfile.ZipFile(io.BytesIO(data)), info) == body


def test_what_follows_the_cells_is_not_scanned():
    """calamine builds its grid from the cells before </sheetData> only: a reference after it is no far cell
    (the bytes come back untouched), while the same reference before it is cut."""
    src = SAMPLE.read_bytes()
    extra = b'<c r="XFD1048576"><v>1</v></c>'
    after = _edit_sheet(src, CRITERIA_SHEET, lambda xml: xml.replace(b"</worksheet>", b"<!--" + extra + b"--></worksheet>"))
    assert guard.screen(after, "a.xlsx", ".xlsx")[1:] == (after, {})
    before = _edit_sheet(src, CRITERIA_SHEET, lambda xml: _after_first_cell(xml, extra))
    assert guard.screen(before, "b.xlsx", ".xlsx")[2] == {CRITERIA_SHEET: "XFD1048576"}


def test_a_dtd_in_a_sheet_is_refused_and_located():
    data = _edit_sheet(SAMPLE.read_bytes(), CRITERIA_SHEET,
                       lambda xml: xml.replace(b"<worksheet", b'<!DOCTYPE w [<!ENTITY a "aaaa">]><worksheet', 1))
    rejected = guard.screen(data, "d.xlsx", ".xlsx")[0]
    assert (rejected.code, rejected.sheet) == ("file-unsafe-xml", CRITERIA_SHEET)


def test_a_far_cell_hidden_from_the_guard_is_still_reported(rb):
    """A `</sheetData>` inside a comment ends the guard's look early; calamine reads on, and the reader
    reports the cell from the grid's end."""
    hidden = b'<!-- </sheetData> --><c r="J6000" t="inlineStr"><is><t>x</t></is></c>'
    data = _edit_sheet(SAMPLE.read_bytes(), CRITERIA_SHEET, lambda xml: _after_first_cell(xml, hidden))
    assert guard.screen(data, "h.xlsx", ".xlsx")[1:] == (data, {})  # not cut: the guard did not see it
    sub = read_submission(data, "h.xlsx", rb)
    assert [(f.code, f.sheet, f.cell) for f in sub.findings] == [("sheet-oversized", CRITERIA_SHEET, "J6000")]


# --- members read through zipfile: its checks hold -------------------------------------------------------


def _flip_checksum(data: bytes, member: str) -> bytes:
    """The archive with one member's CRC-32 changed in its central directory entry and its local header."""
    from hostile2 import _central_entries

    out = bytearray(data)
    for central, local, name in list(_central_entries(data)):
        if name == member:
            crc = struct.unpack_from("<I", out, central + 16)[0] ^ 1
            struct.pack_into("<I", out, central + 16, crc)
            struct.pack_into("<I", out, local + 14, crc)
    return bytes(out)


def test_a_member_whose_checksum_fails_is_not_read_as_sound():
    data = _flip_checksum(_zip({"xl/workbook.xml": b"<workbook/>" * 100}, zipfile.ZIP_DEFLATED), "xl/workbook.xml")
    with pytest.raises(zipfile.BadZipFile, match="CRC"):
        guard.read_member(zipfile.ZipFile(io.BytesIO(data)), "xl/workbook.xml")


@pytest.mark.parametrize("damaged", ["xl/workbook.xml", "docProps/app.xml"])
def test_far_cells_beside_a_damaged_member_are_never_read_uncut(damaged):
    """A far cell to cut, and a member the guard must read whole to find the sheets or to rebuild the archive
    whose checksum fails: the file is refused (file-truncated), never handed to the reader with the cell."""
    data = _edit_sheet(SAMPLE.read_bytes(), CRITERIA_SHEET,
                       lambda xml: _after_first_cell(xml, b'<c r="XFD1048576"><v>1</v></c>'))
    assert guard.screen(data, "f.xlsx", ".xlsx").far == {CRITERIA_SHEET: "XFD1048576"}
    rejected, given, far = guard.screen(_flip_checksum(data, damaged), "f.xlsx", ".xlsx")
    assert (rejected.code, rejected.file, far) == ("file-truncated", "f.xlsx", {})
    assert rejected.rejects
