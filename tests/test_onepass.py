"""Sheets arranged for calamine's one pass: the same cells and merged ranges as the file itself, for every
file a spreadsheet program writes; anything unusual left as it was; and a failure never blamed on it."""

from __future__ import annotations

import dataclasses
import io
import zipfile

import openpyxl
import pytest
import python_calamine

from kbang_egov import guard, onepass, reader
from kbang_egov.layout import CRITERIA_SHEET
from kbang_egov.onepass import SheetHead, reordered, with_stored_members
from kbang_egov.pipeline import bundled_samples_dir
from kbang_egov.reader import read_submission
from workbooks import convert, make_profile

SAMPLES = sorted(bundled_samples_dir().glob("*.xlsx"))
SAMPLE = bundled_samples_dir() / "CQDT_2020_Huyen_Kbang.xlsx"


def _members(data: bytes) -> dict[str, str]:
    return guard._sheet_members(zipfile.ZipFile(io.BytesIO(data)), data)


def _calamine_view(data: bytes) -> dict[str, tuple]:
    """Everything the reader takes from calamine, per sheet."""
    wb = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    out = {}
    for name in wb.sheet_names:
        sheet = wb.get_sheet_by_name(name)
        out[name] = (sheet.to_python(skip_empty_area=False), sheet.merged_cell_ranges, sheet.start, sheet.end)
    return out


def _assert_read_alike(data: bytes) -> bytes:
    """The arranged bytes of a file, after checking that calamine reads them as it reads the file; every sheet
    is stored, merged ranges first."""
    screened = guard.screen(data, "f.xlsx", ".xlsx")
    assert screened.finding is None and screened.data is data and screened.quick is not None
    assert _calamine_view(screened.quick) == _calamine_view(data)
    zf = zipfile.ZipFile(io.BytesIO(screened.quick))
    assert zf.testzip() is None
    for member in _members(data):
        assert zf.getinfo(member).compress_type == zipfile.ZIP_STORED
        xml = zf.read(member)
        assert xml.index(b"mergeCells") < xml.index(b"<sheetData")
    return screened.quick


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_every_sample_reads_alike_arranged(path):
    _assert_read_alike(path.read_bytes())


def test_the_criteria_sheet_keeps_its_merged_ranges_and_loses_what_calamine_does_not_read():
    quick = _assert_read_alike(SAMPLE.read_bytes())
    member = next(m for m, n in _members(quick).items() if n == CRITERIA_SHEET)
    xml = zipfile.ZipFile(io.BytesIO(quick)).read(member)
    assert xml.count(b"<mergeCell ") == 20 and b"dataValidation" not in xml and xml.endswith(b"</worksheet>")


def test_a_file_saved_by_openpyxl_reads_alike(tmp_path):
    wb = openpyxl.load_workbook(SAMPLE)
    wb.save(tmp_path / "o.xlsx")
    _assert_read_alike((tmp_path / "o.xlsx").read_bytes())


@pytest.mark.libreoffice
def test_a_file_saved_by_libreoffice_reads_alike(tmp_path):
    saved = convert(SAMPLE, "xlsx", tmp_path / "out", make_profile(tmp_path / "profile"))
    _assert_read_alike(saved.read_bytes())


def test_the_unit_reads_the_same_submission_either_way(rb):
    data = SAMPLE.read_bytes()
    quick = guard.screen(data, "k.xlsx", ".xlsx").quick
    plain, _ = reader._read_workbook(data, "k.xlsx", rb, {})
    arranged, failed = reader._read_workbook(quick, "k.xlsx", rb, {})
    assert not failed and dataclasses.asdict(arranged) == dataclasses.asdict(plain)


# --- what is left as it was ---------------------------------------------------------------------------------

CELLS = b'<sheetData><row r="1"><c r="A1"><v>1</v></c></row></sheetData>'
MERGES = b'<mergeCells count="1"><mergeCell ref="A1:B1"/></mergeCells>'


def _head(xml: bytes, complete: bool = True) -> SheetHead:
    end = guard._sheet_data_end(xml)
    if end < 0:
        return SheetHead(xml, False)
    return SheetHead(xml[:end], True, xml[end:], None if complete else iter(()))


def test_the_merged_ranges_go_first_and_the_tail_goes():
    xml = b'<worksheet a="1"><dimension ref="A1"/>' + CELLS + b"<autoFilter ref='A1'/>" + MERGES \
          + b'<pageMargins left="1"/></worksheet>'
    assert reordered(_head(xml)) == b'<worksheet a="1"><dimension ref="A1"/>' + MERGES + CELLS + b"</worksheet>"


def test_a_prefixed_worksheet_keeps_its_prefix():
    xml = b"<x:worksheet>" + CELLS.replace(b"<", b"<x:").replace(b"<x:/", b"</x:") + MERGES + b"</x:worksheet>"
    assert reordered(_head(xml)).endswith(b"</x:sheetData></x:worksheet>")


def test_a_sheet_seen_whole_without_merged_ranges_gets_an_empty_list():
    assert reordered(_head(b"<worksheet>" + CELLS + b"<pageMargins/></worksheet>")) \
        == b"<worksheet>" + onepass._NO_MERGES + CELLS + b"</worksheet>"


@pytest.mark.parametrize("xml", [
    b"<worksheet>" + CELLS.replace(b"</row>", b"<!-- x --></row>") + MERGES + b"</worksheet>",  # comment in cells
    b"<worksheet>" + CELLS.replace(b"<v>1", b"<v><![CDATA[1]]>") + MERGES + b"</worksheet>",  # CDATA
    b"<worksheet>" + CELLS.replace(b"</row>", MERGES + b"</row>") + MERGES + b"</worksheet>",  # merges among cells
    b"<worksheet>" + CELLS + b"<!-- -->" + MERGES + b"</worksheet>",  # a comment before the merges
    b"<worksheet>" + CELLS + MERGES.replace(b"</mergeCells>", b"<extLst/></mergeCells>") + b"</worksheet>",
    b"<worksheet>" + CELLS + b"<mergeCells/>" + b"</worksheet>",  # an empty element: calamine reads on
    b"<worksheet>" + CELLS.replace(b"</sheetData>", b"") + MERGES + b"</worksheet>",  # no end of the cells
    b"<sheet>" + CELLS + MERGES + b"</sheet>",  # not a worksheet
], ids=["comment", "cdata", "merges-in-cells", "comment-before-merges", "odd-merges", "empty-merges",
        "no-end", "no-root"])
def test_anything_unusual_is_left_as_it_was(xml):
    assert reordered(_head(xml)) is None


def test_a_big_sheet_is_left_as_it_was(monkeypatch):
    xml = b"<worksheet>" + CELLS + MERGES + b"</worksheet>"
    assert reordered(_head(xml)) is not None
    monkeypatch.setattr(onepass, "ARRANGE_MAX", len(CELLS))
    assert reordered(_head(xml)) is None


def test_merged_ranges_not_yet_inflated_are_waited_for_and_a_later_element_ends_the_wait():
    xml = b"<worksheet>" + CELLS
    more = iter([b"<autoFilter ref='A1'/><mergeCells count", b'="1"><mergeCell ref="A1:B1"/></mergeCells>'])
    assert reordered(SheetHead(xml, True, b"", more)) == b"<worksheet>" + MERGES + CELLS + b"</worksheet>"
    never = iter([b"<pageMargins/>", b"x" * 10])
    assert reordered(SheetHead(xml, True, b"", never)) is None
    assert next(never) == b"x" * 10  # not inflated: the schema puts no merged ranges after page margins


# --- the archive --------------------------------------------------------------------------------------------

def _zip(members: dict[str, bytes], comment: bytes = b"") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zw:
        for name, body in members.items():
            zw.writestr(name, body)
        zw.comment = comment
    return out.getvalue()


def test_replaced_members_are_stored_and_the_others_kept_byte_for_byte():
    data = _zip({"a.xml": b"<a/>" * 100, "d\u00e9j\u00e0/b.xml": b"<b/>" * 100, "c.xml": b"<c/>"}, b"note")
    out = with_stored_members(data, {"d\u00e9j\u00e0/b.xml": b"<new/>"})
    zf, old = zipfile.ZipFile(io.BytesIO(out)), zipfile.ZipFile(io.BytesIO(data))
    assert zf.testzip() is None and zf.namelist() == old.namelist()
    assert [zf.read(n) for n in zf.namelist()] == [b"<a/>" * 100, b"<new/>", b"<c/>"]
    assert zf.getinfo("d\u00e9j\u00e0/b.xml").compress_type == zipfile.ZIP_STORED
    assert zf.getinfo("a.xml").compress_type == zipfile.ZIP_DEFLATED


@pytest.mark.parametrize("change", [
    lambda d: d + b"junk",  # data after the end record
    lambda d: b"junk" + d,  # data before the first entry: every offset is off
], ids=["trailing", "leading"])
def test_an_archive_not_rebuilt_exactly_is_left(change):
    data = change(_zip({"a.xml": b"<a/>"}))
    assert with_stored_members(data, {"a.xml": b"<b/>"}) is None


def test_a_name_not_found_leaves_the_archive():
    assert with_stored_members(_zip({"a.xml": b"<a/>"}), {"b.xml": b"<b/>"}) is None


# --- a failure is the file's own ------------------------------------------------------------------------------

def test_when_calamine_fails_on_the_arrangement_the_file_itself_is_read(rb, monkeypatch):
    """The arrangement is for speed only: if calamine failed on it, the file as sent is read instead."""
    data = SAMPLE.read_bytes()
    real = guard.screen(data, "k.xlsx", ".xlsx")
    monkeypatch.setattr(reader, "screen", lambda *a: real._replace(quick=b"PK\x03\x04 not a zip"))
    sub = read_submission(data, "k.xlsx", rb)
    monkeypatch.setattr(reader, "screen", lambda *a: real._replace(quick=None))
    assert dataclasses.asdict(sub) == dataclasses.asdict(read_submission(data, "k.xlsx", rb))
    assert not sub.rejected and len(sub.rows) > 170


def test_a_file_calamine_fails_on_is_reported_once(rb):
    """A cell calamine cannot place fails both ways: one finding, for the file."""
    src = SAMPLE.read_bytes()
    zf = zipfile.ZipFile(io.BytesIO(src))
    member = next(m for m, n in _members(src).items() if n == CRITERIA_SHEET)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zw:
        for info in zf.infolist():
            body = zf.read(info.filename)
            zw.writestr(info.filename, body.replace(b'<c r="A7"', b'<c r="7A"', 1) if info.filename == member else body)
    data = out.getvalue()
    assert guard.screen(data, "b.xlsx", ".xlsx").quick is not None
    sub = read_submission(data, "b.xlsx", rb)
    assert [f.code for f in sub.findings] == ["file-unreadable"]

