"""The detail sheet's rows written as XML in chunks and streamed into xlsxwriter's workbook."""

from __future__ import annotations

import io
import zipfile

import python_calamine
import xlsxwriter

from kbang_egov.sheetxml import ROWS_PER_CHUNK, Spliced, column_letters, rows_xml, splice_rows


def _workbook() -> io.BytesIO:
    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True})
    first = wb.add_worksheet("Đầu")
    first.write(0, 0, "trang khác")
    ws = wb.add_worksheet("Chi tiết")
    for j, title in enumerate(("Hạng", "Đơn vị", "Điểm")):
        ws.write(0, j, title)
    wb.close()
    return buffer


def test_rows_come_in_chunks_and_splice_into_the_sheet(tmp_path):
    n = 2 * ROWS_PER_CHUNK + 50
    rows = [[i + 1, f"Huyện {i}", i / 4 if i % 3 else None] for i in range(n)]
    rows[5][1] = " <&> "  # escaped, spaces kept
    chunks = list(rows_xml(iter(rows), 1, column_letters(3), [0, 0, 0], [0, 0, 0]))
    assert len(chunks) == 3  # 200, 200 and 50 rows: never the whole sheet at once
    target = tmp_path / "out.xlsx"
    splice_rows(_workbook(), target, {2: Spliced(iter(chunks), f"C{n + 1}", size_hint=10**6)})

    wb = python_calamine.CalamineWorkbook.from_path(str(target))
    got = wb.get_sheet_by_name("Chi tiết").to_python()
    assert got[0] == ["Hạng", "Đơn vị", "Điểm"]
    assert len(got) == n + 1
    assert got[1] == [1.0, "Huyện 0", ""] and got[3] == [3.0, "Huyện 2", 0.5]
    assert got[6][1] == " <&> "
    assert wb.get_sheet_by_name("Đầu").to_python() == [["trang khác"]]
    with zipfile.ZipFile(target) as z:
        xml = z.read("xl/worksheets/sheet2.xml")
        assert f'<dimension ref="A1:C{n + 1}"/>'.encode() in xml
        assert z.getinfo("xl/worksheets/sheet2.xml").compress_type == zipfile.ZIP_DEFLATED
        # A small member carries no ZIP64 record, which Excel is strict about.
        assert z.getinfo("xl/worksheets/sheet2.xml").extra == b""


def test_an_empty_sheet_gets_its_rows(tmp_path):
    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True})
    wb.add_worksheet("Trống")
    wb.close()
    target = tmp_path / "out.xlsx"
    splice_rows(buffer, target, {1: Spliced(rows_xml([[1, "a"]], 0, column_letters(2), [0, 0], [0, 0]), "B1")})
    got = python_calamine.CalamineWorkbook.from_path(str(target)).get_sheet_by_name("Trống").to_python()
    assert got == [[1.0, "a"]]


def test_rows_with_heights_and_two_sheets_spliced_at_once(tmp_path):
    rows = [["ngắn"], ["dài " * 50]]
    height = lambda cells: 45.0 if len(cells[0]) > 10 else None  # noqa: E731
    target = tmp_path / "out.xlsx"
    splice_rows(_workbook(), target, {
        1: Spliced(rows_xml([["đầu"]], 1, ["A"], [0], [0]), "A2"),
        2: Spliced(rows_xml(rows, 1, ["A"], [0], [0], height=height), "A3"),
    })
    with zipfile.ZipFile(target) as z:
        xml = z.read("xl/worksheets/sheet2.xml").decode()
    assert '<row r="2">' in xml and '<row r="3" ht="45" customHeight="1">' in xml
    wb = python_calamine.CalamineWorkbook.from_path(str(target))
    assert wb.get_sheet_by_name("Đầu").to_python() == [["trang khác"], ["đầu"]]
    assert wb.get_sheet_by_name("Chi tiết").to_python()[2][0] == "dài " * 50


def test_each_kind_of_value_becomes_its_cell(monkeypatch):
    from kbang_egov import sheetxml

    rows = [[0.1 + 0.2, float("nan"), None, 7, " KAD", "a<b & c"], [0.1 + 0.2, float("inf"), 2.5e16, True, "", 1.0]]
    want = (b'<row r="3">'
            b'<c r="A3" s="1"><v>0.30000000000000004</v></c><c r="B3" s="2"/><c r="C3" s="3"/>'
            b'<c r="D3" s="4"><v>7</v></c>'
            b'<c r="E3" s="15" t="inlineStr"><is><t xml:space="preserve"> KAD</t></is></c>'
            b'<c r="F3" s="16" t="inlineStr"><is><t>a&lt;b &amp; c</t></is></c></row>'
            b'<row r="4">'
            b'<c r="A4" s="1"><v>0.30000000000000004</v></c><c r="B4" s="2"/><c r="C4" s="3"><v>2.5e+16</v></c>'
            b'<c r="D4" s="4"><v>True</v></c>'
            b'<c r="E4" s="15" t="inlineStr"><is><t></t></is></c><c r="F4" s="6"><v>1.0</v></c></row>')
    args = (2, column_letters(6), [1, 2, 3, 4, 5, 6], [11, 12, 13, 14, 15, 16])
    assert b"".join(rows_xml(rows, *args)) == want
    monkeypatch.setattr(sheetxml, "_REPRS_KEPT", 1)  # the remembered numbers are let go: the same XML
    assert b"".join(rows_xml(rows, *args)) == want
