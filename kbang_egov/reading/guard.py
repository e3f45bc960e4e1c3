"""Looking at a file's bytes before any parser does: what it really is, whether it is encrypted, and whether
it is safe to inflate (screen). A returned finding rejects the file; None lets the reader open it, with
the cells of a sheet that lie far beyond the template's table cut first.

python-calamine (and openpyxl) inflate whole zip members into memory, and nothing in them checks sizes
first: a 1 MB .xlsx can inflate to 1 GB. So the zip's central directory is checked here, and a member whose
compressed size could inflate past the limit is inflated here, in bounded reads through zipfile, and
measured. Only the methods Office writes (stored, deflated) are inflated at all: zipfile inflates a bzip2 or
LZMA member past any size it declares. The workbook's map of sheets is parsed with defusedxml; sheets are
looked at with regular expressions written so that no input costs more than a pass or two over it.

Everything here runs in the workers (pipeline.read_files), never in the process that holds the run.
"""

from __future__ import annotations

import copy
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, NamedTuple
from xml.etree import ElementTree

import defusedxml.ElementTree as defused

from ..forms.layout import column_index, column_letter
from ..rules.findings import Finding, make_finding

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Compound File: .xls, .doc, and encrypted .xlsx
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

# Generous for real workbooks: the template's criteria sheet is 0.3 MB of XML, a 100,000-row sheet ~40 MB.
MEMBER_LIMIT = 128 * 2**20  # bytes one zip member may inflate to
TOTAL_LIMIT = 256 * 2**20  # bytes all members together may inflate to
MAX_MEMBERS = 10_000
DEFLATE_MAX_RATIO = 1032  # deflate cannot inflate more than ~1032 times its compressed size
_DTD_PEEK = 4096  # a DOCTYPE must come before the root element, so the start of a member is enough

_ENCRYPTED = 0x1  # general purpose flag bit 0
_METHODS = {1: "Shrink", 6: "Implode", 9: "Deflate64", 12: "bzip2", 14: "LZMA", 93: "Zstandard", 95: "XZ",
            98: "PPMd", 99: "AES (WinZip)"}
_SPREADSHEET_PARTS = ("xl/workbook.xml", "xl/workbook.bin", "content.xml")
_KIND_BY_PART = (
    ("word/", "một văn bản Word (.docx)"),
    ("ppt/", "một bản trình chiếu PowerPoint (.pptx)"),
)


class Screened(NamedTuple):
    """What the guard makes of a file's bytes before any parser sees them."""

    finding: Finding | None  # rejects the bytes (empty, encrypted, not a spreadsheet, a zip bomb, a DTD)
    data: bytes  # the bytes to read: the cells beyond ROW_LIMIT rows or COLUMN_LIMIT columns cut
    far: dict[str, str]  # sheet -> its farthest cut cell, for a located warning


def screen(data: bytes, file: str, suffix: str) -> Screened:
    """What the reader may be given, in one pass over the archive (see Screened): the finding that rejects
    the bytes, or the bytes to read with far cells cut."""
    if not data:
        return Screened(make_finding("file-empty", file), data, {})
    if data.startswith(OLE_MAGIC):
        return Screened(_inspect_ole(data, file, suffix), data, {})
    if data.startswith(ZIP_MAGIC):
        return _screen_zip(data, file, suffix)
    kind = _sniff_text(data)
    if kind is not None:
        return Screened(make_finding("file-wrong-type", file, suffix=suffix, kind=kind), data, {})
    return Screened(None, data, {})  # unknown bytes: the reader says what it makes of them


def _inspect_ole(data: bytes, file: str, suffix: str) -> Finding | None:
    """An OLE container is an .xls workbook, an encrypted .xlsx (EncryptedPackage) or a Word .doc."""
    names = _ole_stream_names(data)
    if "EncryptedPackage" in names or "EncryptionInfo" in names:
        return make_finding("file-encrypted", file)
    if "Workbook" in names or "Book" in names:
        return None  # a legacy workbook; a password on it (FILEPASS) is reported by the reader
    if "WordDocument" in names:
        return make_finding("file-wrong-type", file, suffix=suffix, kind="một văn bản Word (.doc)")
    if "PowerPoint Document" in names:
        return make_finding("file-wrong-type", file, suffix=suffix, kind="một bản trình chiếu PowerPoint (.ppt)")
    return None


def _ole_stream_names(data: bytes) -> set[str]:
    """Names in the compound file's directory (followed through the FAT), or a plain scan when the header
    is damaged; never raises."""
    try:
        sector_size = 1 << struct.unpack_from("<H", data, 30)[0]
        dir_start = struct.unpack_from("<I", data, 48)[0]
        fat = _ole_fat(data, sector_size)
        names: set[str] = set()
        sector, seen = dir_start, set()
        while sector < 0xFFFFFFFA and sector not in seen and len(seen) < 10_000:
            seen.add(sector)
            base = (sector + 1) * sector_size
            for off in range(base, min(base + sector_size, len(data)), 128):
                length = struct.unpack_from("<H", data, off + 64)[0]
                if 2 <= length <= 64:
                    names.add(data[off:off + length - 2].decode("utf-16-le", "replace"))
            sector = fat[sector] if sector < len(fat) else 0xFFFFFFFE
        return names
    except (struct.error, IndexError):
        found = set()
        for name in ("EncryptedPackage", "EncryptionInfo", "Workbook", "Book", "WordDocument"):
            if name.encode("utf-16-le") in data:
                found.add(name)
        return found


def _ole_fat(data: bytes, sector_size: int) -> list[int]:
    """The file allocation table from the header's first 109 FAT sector numbers (enough for any directory
    within the first ~7 MB at 512-byte sectors; a longer chain falls back to the plain scan's answer)."""
    count = struct.unpack_from("<I", data, 44)[0]
    fat: list[int] = []
    for i in range(min(count, 109)):
        sector = struct.unpack_from("<I", data, 76 + 4 * i)[0]
        base = (sector + 1) * sector_size
        chunk = data[base:base + sector_size]
        fat.extend(struct.unpack(f"<{len(chunk) // 4}I", chunk))
    return fat


def _screen_zip(data: bytes, file: str, suffix: str) -> Screened:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, struct.error, EOFError) as exc:
        return Screened(make_finding("file-truncated", file, reason=_short(exc)), data, {})
    rejected = _inspect_sizes(zf, infos, file, suffix)
    if rejected is not None:
        return Screened(rejected, data, {})
    try:
        sheets = sheet_members(zf)
    except (KeyError, ValueError):
        sheets = {}  # no map of sheets, or not XML: the reader reports the workbook
    except _DAMAGED as exc:  # the map cannot be read back (checksum, corrupt data): no sheet could be looked at
        return Screened(make_finding("file-truncated", file, reason=_short(exc)), data, {})
    for info in infos:  # a sheet's DTD is looked for in the part of it that is read below
        if info.filename.endswith((".xml", ".rels")) and info.filename not in sheets \
                and _declares_entities(zf, info):
            return Screened(make_finding("file-unsafe-xml", file, member=info.filename), data, {})
    heads = {}
    try:
        for member, sheet in sheets.items():
            heads[member] = head = sheet_head(zf, zf.getinfo(member))
            if _has_dtd(head[:_DTD_PEEK]):
                return Screened(make_finding("file-unsafe-xml", file, sheet=sheet, member=member), data, {})
    except KeyError:
        return Screened(None, data, {})  # a sheet the map names is not in the archive: the reader reports it
    except _DAMAGED as exc:  # a sheet that does not inflate to its checksum: calamine would not read it either
        return Screened(make_finding("file-truncated", file, reason=_short(exc)), data, {})
    try:
        trimmed, far = _trimmed_zip(zf, data, sheets, heads)
    except _DAMAGED as exc:  # far cells to cut, and the archive cannot be rebuilt: never read it uncut
        return Screened(make_finding("file-truncated", file, reason=_short(exc)), data, {})
    return Screened(None, trimmed, far)


def _inspect_sizes(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], file: str, suffix: str) -> Finding | None:
    """Too many members, no workbook part, a member encrypted or compressed otherwise than Office does, or a
    member (or all of them) inflating past the limits."""
    if len(infos) > MAX_MEMBERS:
        return make_finding("file-too-large", file, member=f"{len(infos)} thành phần",
                            size=f"{len(infos)} thành phần", limit=f"{MAX_MEMBERS} thành phần")
    names = {i.filename for i in infos}
    if not any(p in names for p in _SPREADSHEET_PARTS):
        kind = next((k for prefix, k in _KIND_BY_PART if any(n.startswith(prefix) for n in names)),
                    "một tệp nén ZIP không chứa bảng tính")
        return make_finding("file-wrong-type", file, suffix=suffix, kind=kind)
    for info in infos:
        if info.flag_bits & _ENCRYPTED:  # a zip tool's password (ZipCrypto or WinZip AES)
            return make_finding("file-encrypted", file)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # Office, LibreOffice and WPS write stored and deflated members only, and calamine reads no
            # other; zipfile would inflate a bzip2 or LZMA member past any size it declares
            method = _METHODS.get(info.compress_type, f"số {info.compress_type}")
            return make_finding("file-unsupported-compression", file, sheet=_sheet_of(zf, info.filename),
                                member=info.filename, method=method)
    total = 0
    for info in infos:
        size = info.file_size
        if size <= MEMBER_LIMIT and info.compress_size * DEFLATE_MAX_RATIO + 1024 > MEMBER_LIMIT:
            size = max(size, _inflated_size(zf, info, MEMBER_LIMIT))  # the declared size may lie
        total += size
        if size > MEMBER_LIMIT or total > TOTAL_LIMIT:
            return make_finding("file-too-large", file, sheet=_sheet_of(zf, info.filename), member=info.filename,
                                size=_mb(size), limit=_mb(MEMBER_LIMIT if size > MEMBER_LIMIT else TOTAL_LIMIT))
    return None


# What reading a member through zipfile raises on a damaged archive: a checksum or local header that does
# not match (BadZipFile), a corrupt deflate stream (zlib.error), data cut short (EOFError), a header past
# the end (struct.error, OSError).
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError, struct.error)
# zipfile inflates up to a few KiB more than a read asks for and keeps them for the next read; its end of
# data must lie beyond them, or it would take a longer member for one that ends there and check its checksum
_READ_SLACK = 2**20


def _open_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> IO[bytes]:
    """The member as calamine inflates it, through zipfile, for reading at most `limit` bytes: to the end of
    its data, not to the size its headers declare (a lying member inflates past that, and calamine inflates
    it all). zipfile stops at the size in the ZipInfo it is given, and checks the checksum there, so it is
    given a copy whose size lies _READ_SLACK beyond what the caller reads; it inflates a stored or deflated
    member one read's worth at a time. The checksum is checked when the data ends within the limit
    (BadZipFile if it does not match)."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # screen rejects any other method (file-unsupported-compression); nothing here inflates one, as
        # nothing bounds what a bzip2 or LZMA member that lies about its size inflates to in zipfile
        raise ValueError(f"compression method {info.compress_type}")
    bounded = copy.copy(info)
    bounded.file_size = limit + _READ_SLACK
    return zf.open(bounded)


def read_member(zf: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes, never more than MEMBER_LIMIT of them (see _open_member)."""
    with _open_member(zf, zf.getinfo(name), MEMBER_LIMIT) as member:
        return member.read(MEMBER_LIMIT)


def _inflated_size(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> int:
    """How many bytes the member really inflates to, counting at most limit + 1: bounded memory and time."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return 0  # never inflated: _inspect_sizes rejects the member
    total = 0
    try:
        with _open_member(zf, info, limit + 1) as member:
            while total <= limit and (chunk := member.read(min(1 << 20, limit + 1 - total))):
                total += len(chunk)
    except _DAMAGED:
        pass  # corrupt data or checksum: the reader reports it
    return total


def _declares_entities(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """True when an XML member starts with a DTD: Office never writes one, entity bombs need one."""
    try:
        with _open_member(zf, info, _DTD_PEEK) as member:
            head = member.read(_DTD_PEEK)
    except (*_DAMAGED, ValueError):
        return False
    return _has_dtd(head)


def _has_dtd(head: bytes) -> bool:
    return b"<!DOCTYPE" in head or b"<!ENTITY" in head


def _sniff_text(data: bytes) -> str | None:
    """What a non-workbook file saved under a spreadsheet name is, by its first bytes."""
    head = data[:2048]
    if head.startswith(b"%PDF"):
        return "một tài liệu PDF"
    if head.startswith(b"{\\rtf"):
        return "một văn bản RTF"
    text = head.lstrip(b"\xef\xbb\xbf\xff\xfe\xfe\xff \t\r\n").lower()
    if text.startswith(b"mime-version") or b"content-type: multipart/related" in text:
        return "một trang web lưu trữ (.mht)"
    if b"urn:schemas-microsoft-com:office:spreadsheet" in text and b"<workbook" in text:
        return "một bảng tính XML 2003 (không phải .xls)"
    if text.startswith((b"<html", b"<!doctype html", b"<table", b"<?xml")) or b"<html" in text[:512]:
        return "một trang web HTML"
    if _looks_like_text(head):
        return "một tệp văn bản hoặc CSV"
    return None


def _looks_like_text(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True  # UTF-16 text (Excel's "Unicode text")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the 2048-byte boundary
            try:
                text = head.decode("cp1258")
            except UnicodeDecodeError:
                return False
        else:
            text = head[:exc.start].decode("utf-8")
    return all(ch.isprintable() or ch in "\r\n\t\ufeff" for ch in text)


def _mb(size: int) -> str:
    return f"{size / 2**20:.0f} MB" if size >= 2**20 else f"{size} byte"


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


# Beyond these a sheet is not a filled template: calamine would build the whole grid up to the farthest
# cell (a value at J1048576 costs 330 MB, at XFD1048576 it aborts), so such cells are cut before it reads.
ROW_LIMIT = 5000
COLUMN_LIMIT = 256  # IV, the last column of an .xls sheet

# A sheet's rows and cells as calamine finds them: by the element's local name, with its attributes in any
# order and either quote, and a reference in either case and with leading zeros ('j01048576'). Written so
# that no input costs more than a pass or two: the attributes follow XML's grammar, a row's or a cell's
# content stops at the next row or cell, and possessive quantifiers never give back what they took.
_ATTRS = rb"""((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*+"|'[^']*+'))*+)\s*"""  # calamine takes '<' in a value
_ATTR = re.compile(rb"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_ROW_ELEMENT = re.compile(rb"<(?:\w+:)?row" + _ATTRS + rb"(?:/>|>((?:[^<]++|<(?!/?(?:\w+:)?row[\s/>]))*+)"
                          rb"</(?:\w+:)?row\s*>)")
_CELL_ELEMENT = re.compile(rb"<(?:\w+:)?c" + _ATTRS + rb"(?:/>|>(?:[^<]++|<(?!/?(?:\w+:)?c[\s/>]))*+"
                           rb"</(?:\w+:)?c\s*>)")
_CELL_REF = re.compile(rb"([A-Za-z]{1,7})([0-9]+)")  # more letters: no reference calamine takes
_VALUE = re.compile(rb"<(?:\w+:)?(?:v|is)[\s>]")  # a cell that holds something, not only a format
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s[^<>]*+>")
_FAR_ROW = 10**9  # a row number too long to parse (int() refuses thousands of digits) lies beyond anything
# One scan of a sheet for anything that may lie beyond the limits: a row, or a cell's row, numbered with as
# many digits as ROW_LIMIT, or a cell in column IW (257) or beyond. A cell without a reference (calamine puts
# it after the one before) or more rows than ROW_LIMIT may too. Only a sheet with a mark has its cells
# parsed (positioned_cells decides).
# The lookahead turns down a reference of one letter and at most three digits (nearly every one) in one step.
# Each pattern starts with a literal, which re finds at memchr's speed (a class first is four times slower).
_FAR_MARK = re.compile(rb"""r(?<=\sr)\s*=\s*["'](?![A-Za-z]?[0-9]{1,%d}["'])"""
                       rb"(?:[A-Za-z]{3}|[J-Zj-z][A-Za-z]|[Ii][W-Zw-z]|[A-Za-z]{0,2}[0-9]{%d})"
                       % (len(str(ROW_LIMIT)) - 1, len(str(ROW_LIMIT))))
_NO_REFERENCE = rb"""(?:\s+(?!r\s*=)[\w:.-]+\s*=\s*(?:"[^"]*+"|'[^']*+'))*+\s*/?>"""
_UNREFERENCED_CELLS = (re.compile(rb"<c" + _NO_REFERENCE), re.compile(rb"<\w+:c" + _NO_REFERENCE))
# calamine reads a sheet's cells up to the end of its sheetData: what follows (data validations, merged
# ranges, conditional formats: two thirds of the template's criteria sheet) adds no cell to its grid.
_SHEET_DATA_END = re.compile(rb"</(?:\w+:)?sheetData\s*>")
HEAD_STEP = 64 * 1024  # bytes inflated at a time while looking for that end
_END_TAG_MAX = 80  # bytes an end tag may span (a namespace prefix, spaces)


def sheet_head(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A sheet member's XML up to the end of its first sheetData (all of it when there is none), inflated
    no further than that and never past MEMBER_LIMIT.

    That is where calamine stops reading cells in any file a spreadsheet program wrote. A file crafted to
    hide cells from this scan (a `</sheetData>` inside a comment or an attribute value) is still reported:
    by the reader, at the end of the grid calamine built (sheet-oversized), or, when that grid passes the
    worker's memory limit, as file-crashed at its farthest cell (far_cell reads every byte, in a worker)."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return b""
    parts: list[bytes] = []
    size, carry = 0, b""
    with _open_member(zf, info, MEMBER_LIMIT) as member:
        while size < MEMBER_LIMIT and (chunk := member.read(min(HEAD_STEP, MEMBER_LIMIT - size))):
            window = carry + chunk  # carry: the output's last bytes, for an end tag cut between chunks
            end = _sheet_data_end(window)
            if end > 0:
                parts.append(chunk[:end - len(carry)])
                return b"".join(parts)
            parts.append(chunk)
            size += len(chunk)
            carry = window[-_END_TAG_MAX:]
    return b"".join(parts)


def _sheet_data_end(xml: bytes) -> int:
    """Where the first sheetData end tag ends, or -1. Found by its name, which a sheet holds twice: a regex
    tried at every '<' took as long as the far-mark scan."""
    i = xml.find(b"sheetData")
    while i != -1:
        lt = xml.rfind(b"<", max(0, i - _END_TAG_MAX), i)
        m = _SHEET_DATA_END.match(xml, lt) if lt != -1 else None
        if m is not None and m.end() > i:
            return m.end()
        i = xml.find(b"sheetData", i + 9)
    return -1


def _trimmed_zip(zf: zipfile.ZipFile, data: bytes, sheets: dict[str, str],
                 heads: dict[str, bytes]) -> tuple[bytes, dict[str, str]]:
    """The archive's bytes with far cells cut from every sheet whose head has a far mark (unchanged when
    none has), and each such sheet's farthest valued cell. A member that cannot be read raises (_DAMAGED):
    with far cells to cut, the uncut bytes must not go to the reader."""
    changed: dict[str, bytes] = {}
    far: dict[str, str] = {}
    for member, sheet in sheets.items():
        if not has_far_mark(heads[member]):
            continue  # the usual case: one scan, no cell parsed
        xml, cut, valued = trim_far_cells(read_member(zf, member))
        if not cut:
            continue  # formatted empty rows only: calamine skips them
        changed[member] = xml
        if valued:
            far[sheet] = _corner(valued)
    if not changed:
        return data, {}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zw:
        for info in zf.infolist():
            zw.writestr(info.filename, changed.get(info.filename) or read_member(zf, info.filename))
    return out.getvalue(), far


def has_far_mark(xml: bytes) -> bool:
    return _FAR_MARK.search(xml) is not None or xml.count(b"<row") > ROW_LIMIT or \
        any(p.search(xml) is not None for p in _UNREFERENCED_CELLS)


Positioned = tuple[re.Match[bytes], int, int]  # a cell element, its 1-based row and column


def positioned_cells(xml: bytes) -> Iterator[tuple[re.Match[bytes], int, list[Positioned]]]:
    """Every row element of a sheet with its number and its cells with their places, numbered as calamine
    numbers them: by the element's r attribute (the farthest, should it have several), else one after the
    row (or cell of the row) before."""
    number = 0
    for row in _ROW_ELEMENT.finditer(xml):
        rows = [_row_number(r) for r in _references(row.group(1)) if r.isdigit()]
        number = max(rows) if rows else number + 1
        cells, col = [], 0
        if row.group(2) is not None:
            for cell in _CELL_ELEMENT.finditer(xml, row.start(2), row.end(2)):
                refs = [m for r in _references(cell.group(1)) if (m := _CELL_REF.fullmatch(r)) is not None]
                at = number
                if refs:
                    col = max(column_index(m.group(1).upper()) for m in refs)
                    at = max(_row_number(m.group(2)) for m in refs)
                else:
                    col += 1
                cells.append((cell, at, col))
        yield row, number, cells


def _references(attrs: bytes) -> list[bytes]:
    """The values of the r attributes among an element's attributes (calamine takes a cell's last)."""
    return [m.group(2) if m.group(2) is not None else m.group(3) for m in _ATTR.finditer(attrs) if m.group(1) == b"r"]


def _row_number(digits: bytes) -> int:
    return int(digits) if len(digits) <= 9 else _FAR_ROW


def trim_far_cells(xml: bytes) -> tuple[bytes, int, list[tuple[int, int]]]:
    """The sheet's XML without the cells (and rows) beyond the limits (and without its <dimension>), how
    many cells were cut, and the (row, column) of those that held something."""
    by_cells = _trimmed_by_cells(xml)
    return by_cells if by_cells is not None else _trimmed_by_rows(xml)


def _trimmed_by_cells(xml: bytes) -> tuple[bytes, int, list[tuple[int, int]]] | None:
    """trimmed for a sheet whose every cell carries its own reference, as every spreadsheet program writes
    it: calamine places such a cell by that reference alone, so rows need no numbering, and a sheet of a
    million formatted empty rows costs one pass over its cells instead of a Python step per row. None when
    a cell has no reference it can be placed by (then the rows are numbered, _trimmed_by_rows)."""
    out: list[bytes] = []
    at = 0
    valued: list[tuple[int, int]] = []
    cut = 0
    for cell in _CELL_ELEMENT.finditer(xml):
        refs = [m for r in _references(cell.group(1)) if (m := _CELL_REF.fullmatch(r)) is not None]
        if not refs:
            return None
        row = max(_row_number(m.group(2)) for m in refs)
        col = max(column_index(m.group(1).upper()) for m in refs)
        if row <= ROW_LIMIT and col <= COLUMN_LIMIT:
            continue
        out.append(xml[at:cell.start()])
        at = cell.end()
        cut += 1
        if _VALUE.search(cell.group(0)):
            valued.append((row, col))
    out.append(xml[at:])
    return _DIMENSION.sub(b"", b"".join(out), count=1), cut, valued


def _trimmed_by_rows(xml: bytes) -> tuple[bytes, int, list[tuple[int, int]]]:
    """trimmed for any sheet: rows and cells numbered as calamine numbers them (see positioned_cells)."""
    out: list[bytes] = []
    at = cut = 0
    valued: list[tuple[int, int]] = []
    for row, number, cells in positioned_cells(xml):
        beyond = [c for c in cells if number > ROW_LIMIT or c[1] > ROW_LIMIT or c[2] > COLUMN_LIMIT]
        if number <= ROW_LIMIT and not beyond:
            continue
        out.append(xml[at:row.start()])
        if number <= ROW_LIMIT:  # the row stays, without its far cells
            keep = row.start()
            for cell, _, _ in beyond:
                out.append(xml[keep:cell.start()])
                keep = cell.end()
            out.append(xml[keep:row.end()])
        at = row.end()
        cut += len(beyond)
        valued += [(r, col) for cell, r, col in beyond if _VALUE.search(cell.group(0))]
    out.append(xml[at:])
    return _DIMENSION.sub(b"", b"".join(out), count=1), cut, valued


def _corner(places: list[tuple[int, int]]) -> str:
    """The bottom-right corner of (row, column) places as an A1 address: where to look for what to delete."""
    return f"{column_letter(max(col for _, col in places) - 1)}{max(row for row, _ in places)}"


def far_cell(data: bytes) -> tuple[str, str] | None:
    """(sheet name, A1 address) of the farthest cell of an .xlsx's sheets, to say where a workbook that
    crashed its reader went wrong (a cell at XFD1048576 makes calamine allocate the whole grid). Run in a
    worker: no member is inflated past MEMBER_LIMIT, and no input costs more than a pass over it."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        corners = []
        for member, sheet in sheet_members(zf).items():
            rows = cols = 0
            for _, _, cells in positioned_cells(read_member(zf, member)):
                for _, r, col in cells:
                    rows, cols = max(rows, r), max(cols, col)
            if rows and cols:
                corners.append((rows * cols, sheet, _corner([(rows, cols)])))
        return max(corners)[1:] if corners else None
    except (*_DAMAGED, KeyError, ValueError):
        return None


def _sheet_of(zf: zipfile.ZipFile, member: str) -> str:
    """The sheet a zip member holds, for locating a finding ("" for shared strings, styles, ...)."""
    try:
        return sheet_members(zf).get(member, "")
    except (*_DAMAGED, KeyError, ValueError):
        return ""


def sheet_members(zf: zipfile.ZipFile) -> dict[str, str]:
    """Worksheet member path -> sheet name, from workbook.xml and its relationships, parsed by defusedxml
    (no DTD, no entities; ValueError for anything that is not such XML)."""
    rels = {}
    for element in _xml(read_member(zf, "xl/_rels/workbook.xml.rels")).iter():
        if _local(element.tag) == "Relationship":
            rels[element.get("Id", "")] = element.get("Target", "")
    out = {}
    for element in _xml(read_member(zf, "xl/workbook.xml")).iter():
        if _local(element.tag) != "sheet":
            continue
        # r:id, in whichever namespace the workbook's dialect uses (transitional or strict)
        rid = next((v for k, v in element.attrib.items() if k.endswith("}id")), "")
        target = rels.get(rid, "")
        if not target:
            continue
        member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        out[member] = element.get("name", "")
    return out


_XML_PART_LIMIT = 16 * 2**20  # workbook.xml with a thousand sheets is 0.1 MB


def _xml(part: bytes) -> ElementTree.Element:
    if len(part) > _XML_PART_LIMIT:
        raise ValueError(f"an XML part of {_mb(len(part))}")
    try:
        return defused.fromstring(part, forbid_dtd=True)
    except ElementTree.ParseError as exc:  # a SyntaxError; defusedxml's refusals are ValueErrors already
        raise ValueError(str(exc)) from exc


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
