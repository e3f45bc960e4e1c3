"""A corpus of hostile and broken input files for the batch, built in code from a good submission.

Every builder is ``name(out_dir, base) -> Path``: it writes one file with a fixed name into ``out_dir`` and
returns its path; ``base`` is a good filled submission (.xlsx). Nothing binary is committed: the files are
made here, each in well under three seconds and with little memory, so tests can build them in tmp_path.

Most builders change one thing in a copy of ``base`` and keep everything else byte for byte, so a failure
points at that one thing. Two are never in ``build_corpus``: the zip bombs (``BOMBS``, two seconds each and a
gigabyte for whoever inflates them) and ``corner_cell``, which makes python-calamine abort the process.
"""

from __future__ import annotations

import atexit
import base64
import csv
import datetime as dt
import hashlib
import io
import re
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import openpyxl
import xlsxwriter

INFO_SHEET = "Thông tin chung"
CRITERIA_SHEET = "Tiêu chí"
META_SHEET = "_meta"
UNIT_NAME_LABEL = "Tên đơn vị"

MAX_ROW, MAX_COL = 1_048_576, "XFD"  # the last cell of an xlsx sheet
GIB, MIB = 1 << 30, 1 << 20
BOMB_INFLATED = GIB  # whitespace inserted into the bombs' criteria sheet
LYING_SIZE = 300_000  # what the lying bomb declares its criteria sheet inflates to

BOMBS = ("zip_bomb", "zip_bomb_lying")
DANGEROUS = ("corner_cell",)  # aborts the process that reads it with python-calamine

WRONG_VERSION = "2019.1"
WRONG_HASH = hashlib.sha256(b"cqdt-cap-huyen 2019.1").hexdigest()
# Ratio criteria whose value, numerator and denominator cells become formulas without a cached value.
FORMULA_CODES = ("SS.I.1", "SS.I.13", "SS.I.14")
FORMULAS = {"value": "=10+21", "numerator": "=10+21", "denominator": "=300+18"}
# Criteria whose value cell is merged with the next column (numerator); both hold a value, the numerator none.
MERGED_CODES = ("SS.I.2", "SS.I.12")
# Evidence cells: one longer than Excel's 32,767-character limit, one with C0 control characters.
LONG_TEXT_CODE, CONTROL_TEXT_CODE = "SS.I.3", "SS.I.4"
LONG_TEXT = ("Biên bản kiểm tra hạ tầng " * 2000)[:40_000]
CONTROL_TEXT = "Biên bản\x01 số 12\x07/BB-UBND\x1b ngày 27/11/2020"
FAR_TEXT = "ghi chú"
HOSTILE_DISTRICTS = {
    "formula_district": '=HYPERLINK("http://x","Kbang")',
    "plus_district": "+Kbang",
    "at_district": "@Kbang",
}

OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
_FIXED_TIME = (2020, 11, 27, 8, 0, 0)  # zip entry time of the files made from scratch
_NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "pr": "http://schemas.openxmlformats.org/package/2006/relationships",
}
_COLUMN_TITLES = {"code": "Mã", "value": "Giá trị", "numerator": "Tử số", "denominator": "Mẫu số",
                  "evidence": "Tài liệu kiểm chứng"}

Edit = Callable[[bytes], "bytes | Iterable[bytes]"]


# --- zip plumbing -----------------------------------------------------------------------------------------

def _clone(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """A fresh ZipInfo with the source's name, time, method and attributes (writing mutates ZipInfos)."""
    new = zipfile.ZipInfo(info.filename, info.date_time)
    new.compress_type = info.compress_type
    new.external_attr = info.external_attr
    new.create_system = info.create_system
    return new


def rewrite_members(base: Path, out: Path, edits: Mapping[str, Edit], force_zip64: bool = False,
                    fast: bool = False) -> Path:
    """Copy base's zip to out member by member, passing the named members' bytes through their edit.

    An edit returns the new bytes, or an iterable of chunks that is streamed into the member so that a
    gigabyte never sits in memory. ``fast`` deflates the streamed members at zlib's level 1 (zipfile's
    compresslevel, which applies to members opened by name: they get zipfile's fixed 1980 time): a gigabyte
    of one byte in 1.5 s instead of 5, to 4.5 MB instead of 1; a plain deflate stream either way.
    """
    level = 1 if fast else None
    with zipfile.ZipFile(base) as src, \
            zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as dst:
        missing = set(edits) - set(src.namelist())
        assert not missing, f"{base.name} has no {sorted(missing)}"
        for info in src.infolist():
            data = src.read(info)
            edit = edits.get(info.filename)
            result = edit(data) if edit else data
            if isinstance(result, bytes):
                dst.writestr(_clone(info), result)
                continue
            streamed = info.filename if fast else _clone(info)
            with dst.open(streamed, "w", force_zip64=force_zip64) as member:
                for chunk in result:
                    member.write(chunk)
    return out


def rewrite_member(base: Path, out: Path, member: str, fn: Edit, force_zip64: bool = False,
                   fast: bool = False) -> Path:
    """Copy base's zip to out, transforming the one member ``member`` with ``fn``."""
    return rewrite_members(base, out, {member: fn}, force_zip64, fast)


def _write_zip(out: Path, members: Mapping[str, bytes]) -> Path:
    """A deflated zip of the members in order, with a fixed entry time so the bytes are reproducible."""
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return out


def _normalize_saved(path: Path, replace: Mapping[str, str] | None = None) -> Path:
    """Make a file openpyxl saved reproducible (fixed zip entry times and document dates), replacing each
    placeholder text of ``replace`` (found once in the whole package) by its text, XML-escaped."""
    with zipfile.ZipFile(path) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    for old, new in (replace or {}).items():
        hits = [name for name, data in members.items() if old.encode() in data]
        assert len(hits) == 1 and members[hits[0]].count(old.encode()) == 1, f"{old} not found once: {hits}"
        members[hits[0]] = members[hits[0]].replace(old.encode(), escape(new).encode("utf-8"))
    core = members.get("docProps/core.xml")
    if core is not None:
        members["docProps/core.xml"] = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*", rb"\g<1>2020-11-27T08:00:00Z",
                                              core)
    return _write_zip(path, members)


def _patch_declared_size(path: Path, member: str, size: int) -> None:
    """Overwrite a member's 32-bit uncompressed size in its local header and central directory entry."""
    data = bytearray(path.read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", data, eocd + 12)
    pos, patched = cd_offset, 0
    while pos < cd_offset + cd_size:
        assert data[pos:pos + 4] == b"PK\x01\x02", "central directory entry expected"
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        (local,) = struct.unpack_from("<I", data, pos + 42)
        if data[pos + 46:pos + 46 + name_len].decode("utf-8") == member:
            assert extra_len == 0 and data[local:local + 4] == b"PK\x03\x04", "plain 32-bit entry expected"
            struct.pack_into("<I", data, pos + 24, size)
            struct.pack_into("<I", data, local + 22, size)
            patched += 1
        pos += 46 + name_len + extra_len + comment_len
    assert patched == 1, f"{member} not found once in the central directory"
    path.write_bytes(bytes(data))


# --- reading the good workbook ----------------------------------------------------------------------------

def sheet_member(base: Path, sheet: str) -> str:
    """The zip member holding a sheet, found through workbook.xml and its relationships."""
    with zipfile.ZipFile(base) as zf:
        wb = ET.fromstring(zf.read("xl/workbook.xml"))
        rels = ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target", "") for r in rels.findall("pr:Relationship", _NS)}
    for s in wb.iterfind("m:sheets/m:sheet", _NS):
        if s.get("name") == sheet:
            target = targets[s.get(f"{{{_NS['r']}}}id")]
            return target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    raise KeyError(f"{base.name} has no sheet {sheet!r}")


def _shared_strings(base: Path) -> list[str]:
    with zipfile.ZipFile(base) as zf:
        if "xl/sharedStrings.xml" not in zf.namelist():
            return []
        sst = ET.fromstring(zf.read("xl/sharedStrings.xml"))
    return ["".join(t.text or "" for t in si.iter(f"{{{_NS['m']}}}t")) for si in sst.findall("m:si", _NS)]


def _cells(xml: bytes, sst: list[str]) -> dict[str, tuple[str, str]]:
    """{A1 ref: (cell type, text)} of every cell with a value; shared strings resolved."""
    out = {}
    for c in ET.fromstring(xml).iter(f"{{{_NS['m']}}}c"):
        kind = c.get("t", "n")
        if kind == "inlineStr":
            text = "".join(t.text or "" for t in c.iter(f"{{{_NS['m']}}}t"))
        else:
            v = c.find("m:v", _NS)
            if v is None:
                continue
            text = sst[int(v.text)] if kind == "s" else (v.text or "")
        out[c.get("r")] = (kind, text)
    return out


def _value_ref(cells: dict[str, tuple[str, str]], label: str) -> str:
    """The B cell of the row whose A cell reads label (key/value sheets: _meta, information)."""
    for ref, (_, text) in cells.items():
        if ref.startswith("A") and ref[1:].isdigit() and text.strip() == label:
            return f"B{ref[1:]}"
    raise KeyError(label)


def _sheet_xml(base: Path, sheet: str) -> tuple[str, bytes]:
    member = sheet_member(base, sheet)
    with zipfile.ZipFile(base) as zf:
        return member, zf.read(member)


_CELL = r'<c r="{ref}"(?=[\s/>])[^>]*?(?:/>|>.*?</c>)'


def _find_cell(xml: str, ref: str) -> re.Match[str]:
    m = re.search(_CELL.format(ref=ref), xml, flags=re.S)
    assert m, f"no cell {ref}"
    return m


def _inline_cell(ref: str, text: str, style: str | None = None) -> str:
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{s} t="inlineStr"><is><t xml:space="preserve">{escape(text)}</t></is></c>'


def _set_inline(xml: str, ref: str, text: str) -> str:
    """Replace an existing cell by an inline string, keeping its style."""
    m = _find_cell(xml, ref)
    style = re.search(r'\ss="(\d+)"', m.group(0)[:m.group(0).find(">")])
    return xml[:m.start()] + _inline_cell(ref, text, style.group(1) if style else None) + xml[m.end():]


def _set_dimension(xml: str, ref: str) -> str:
    new, n = re.subn(r'<dimension ref="[^"]*"/>', f'<dimension ref="{ref}"/>', xml, count=1)
    assert n == 1, "no <dimension>"
    return new


def _append_row(xml: str, row_xml: str) -> str:
    i = xml.rindex("</sheetData>")
    return xml[:i] + row_xml + xml[i:]


def _last_row(xml: str) -> int:
    return max(int(n) for n in re.findall(r'<row r="(\d+)"', xml))


def _stem_name(base: Path, suffix: str, ext: str = ".xlsx") -> str:
    return f"{base.stem}_{suffix}{ext}"


def _noise(label: str, n: int) -> bytes:
    """Deterministic random-looking bytes, standing in for ciphertext."""
    return hashlib.shake_256(label.encode()).digest(n)


# --- OLE2 compound file -----------------------------------------------------------------------------------

_SECTOR = 512
_FREESECT, _ENDOFCHAIN, _FATSECT, _NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
_MINI_CUTOFF = 4096


def _dir_entry(name: str, kind: int, child: int, right: int, start: int, size: int) -> bytes:
    raw = name.encode("utf-16-le") + b"\0\0" if name else b""
    assert len(raw) <= 64, f"stream name too long: {name}"
    color = 1 if kind else 0  # every node black: the sibling tree is then a plain binary search tree
    return struct.pack("<64sHBBIII16sIQQIQ", raw, len(raw), kind, color, _NOSTREAM, right, child, b"\0" * 16,
                       0, 0, 0, start, size)


def write_cfb(streams: dict[str, bytes]) -> bytes:
    """A valid OLE2 Compound File Binary (version 3, 512-byte sectors) holding the streams in its root.

    Streams are padded to 4096 bytes so none lives in the mini stream; the root's children form a chain of
    right siblings in CFB order (shorter names first, then by upper-cased name), all black, which MS-CFB
    allows. FAT sectors listed in the header only (no DIFAT sectors): enough for about 7 MB.
    """
    names = sorted(streams, key=lambda n: (len(n), n.upper()))
    datas = [streams[n] + b"\0" * max(0, _MINI_CUTOFF - len(streams[n])) for n in names]
    sizes = [-(-len(d) // _SECTOR) for d in datas]
    n_dir = -(-(len(names) + 1) // 4)
    used = n_dir + sum(sizes)
    n_fat = 1
    while n_fat * 128 < n_fat + used:
        n_fat += 1
    assert n_fat <= 109, "too big for a header-only DIFAT"
    fat = [_FREESECT] * (n_fat * 128)
    fat[:n_fat] = [_FATSECT] * n_fat

    def chain(start: int, count: int) -> int:
        for s in range(start, start + count):
            fat[s] = s + 1 if s < start + count - 1 else _ENDOFCHAIN
        return start

    first_dir = chain(n_fat, n_dir)
    entries = [_dir_entry("Root Entry", 5, 1 if names else _NOSTREAM, _NOSTREAM, _ENDOFCHAIN, 0)]
    sector = n_fat + n_dir
    for i, (name, data, count) in enumerate(zip(names, datas, sizes, strict=True)):
        right = i + 2 if i + 1 < len(names) else _NOSTREAM
        entries.append(_dir_entry(name, 2, _NOSTREAM, right, chain(sector, count), len(data)))
        sector += count
    while len(entries) < n_dir * 4:
        entries.append(_dir_entry("", 0, _NOSTREAM, _NOSTREAM, 0, 0))  # unused

    header = struct.pack("<8s16sHHHHH6sIIIIIIIII", OLE_MAGIC, b"\0" * 16, 0x3E, 3, 0xFFFE, 9, 6, b"\0" * 6,
                         0, n_fat, first_dir, 0, _MINI_CUTOFF, _ENDOFCHAIN, 0, _ENDOFCHAIN, 0)
    difat = list(range(n_fat)) + [_FREESECT] * (109 - n_fat)
    header += struct.pack("<109I", *difat)
    body = struct.pack(f"<{len(fat)}I", *fat) + b"".join(entries)
    body += b"".join(d + b"\0" * (-len(d) % _SECTOR) for d in datas)
    assert len(header) == _SECTOR and len(body) == (n_fat + used) * _SECTOR
    return header + body


# --- builders ---------------------------------------------------------------------------------------------

def _bomb_edit(inflate: int) -> Edit:
    """Stream the criteria sheet with ``inflate`` bytes of spaces right after <sheetData>, 1 MiB at a time."""

    def edit(data: bytes) -> Iterator[bytes]:
        i = data.index(b"<sheetData>") + len(b"<sheetData>")
        yield data[:i]
        chunk = b" " * MIB
        for _ in range(inflate // MIB):
            yield chunk
        yield data[i:]

    return edit


def zip_bomb(out_dir: Path, base: Path) -> Path:
    """bomb_zip.xlsx: base whose criteria sheet inflates to over 1 GiB of whitespace; the file is ~4.5 MB.

    The declared sizes are honest (zip64 fields in the local header, plain 32-bit ones in the central
    directory as the size is under 2 GiB), so a reader that checks declared sizes or compression ratios
    before inflating can refuse it.
    """
    return rewrite_member(base, out_dir / "bomb_zip.xlsx", sheet_member(base, CRITERIA_SHEET),
                          _bomb_edit(BOMB_INFLATED), force_zip64=True, fast=True)


def zip_bomb_lying(out_dir: Path, base: Path) -> Path:
    """bomb_zip_lying.xlsx: like zip_bomb, but the local header and central directory claim the criteria
    sheet inflates to LYING_SIZE bytes while the deflate stream gives over 1 GiB.

    Plain 32-bit zip fields (no zip64). The CRC is that of the real gigabyte, so it cannot match what a
    reader that stops at the declared size has read: zipfile raises BadZipFile on it.
    """
    member = sheet_member(base, CRITERIA_SHEET)
    out = rewrite_member(base, out_dir / "bomb_zip_lying.xlsx", member, _bomb_edit(BOMB_INFLATED), fast=True)
    _patch_declared_size(out, member, LYING_SIZE)
    return out


def xml_bomb(out_dir: Path, base: Path) -> Path:
    """bomb_xml.xlsx: base with a billion-laughs sharedStrings.xml (every string is &lol9;, 10^9 'lol's).

    Same number of strings, count and uniqueCount as base, so every reference stays in range.
    """
    unique = len(_shared_strings(base))

    def edit(data: bytes) -> bytes:
        count = re.search(rb'\scount="(\d+)"', data)
        entities = ['<!ENTITY lol "lol">'] + [
            f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)]
        doc = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
               f'<!DOCTYPE sst [\n{chr(10).join(entities)}\n]>\n'
               f'<sst xmlns="{_NS["m"]}" count="{count.group(1).decode() if count else unique}" '
               f'uniqueCount="{unique}">' + "<si><t>&lol9;</t></si>" * unique + "</sst>")
        return doc.encode("utf-8")

    return rewrite_member(base, out_dir / "bomb_xml.xlsx", "xl/sharedStrings.xml", edit)


def encrypted(out_dir: Path, base: Path) -> Path:
    """encrypted.xlsx: what Excel saves for a password-protected workbook, an OLE2 compound file with the
    EncryptionInfo (agile, version 4.4) and EncryptedPackage streams; the ciphertext is noise.

    Real files also carry a \\x06DataSpaces storage; readers look at the two streams only.
    """
    def b64(label: str, n: int) -> str:
        return base64.b64encode(_noise(label, n)).decode()

    key = ('saltSize="16" blockSize="16" keyBits="256" hashSize="64" cipherAlgorithm="AES" '
           'cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512"')
    xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
           '<encryption xmlns="http://schemas.microsoft.com/office/2006/encryption" '
           'xmlns:p="http://schemas.microsoft.com/office/2006/keyEncryptor/password" '
           'xmlns:c="http://schemas.microsoft.com/office/2006/keyEncryptor/certificate">'
           f'<keyData {key} saltValue="{b64("keydata-salt", 16)}"/>'
           f'<dataIntegrity encryptedHmacKey="{b64("hmac-key", 64)}" encryptedHmacValue="{b64("hmac", 64)}"/>'
           '<keyEncryptors><keyEncryptor uri="http://schemas.microsoft.com/office/2006/keyEncryptor/password">'
           f'<p:encryptedKey spinCount="100000" {key} saltValue="{b64("key-salt", 16)}" '
           f'encryptedVerifierHashInput="{b64("verifier", 16)}" '
           f'encryptedVerifierHashValue="{b64("verifier-hash", 64)}" '
           f'encryptedKeyValue="{b64("key", 32)}"/></keyEncryptor></keyEncryptors></encryption>')
    info = struct.pack("<HHI", 4, 4, 0x40) + xml.encode("utf-8")
    size = base.stat().st_size
    package = struct.pack("<Q", size) + _noise("package", -(-size // 16) * 16)
    out = out_dir / "encrypted.xlsx"
    out.write_bytes(write_cfb({"EncryptionInfo": info, "EncryptedPackage": package}))
    return out


def truncated(out_dir: Path, base: Path) -> Path:
    """truncated.xlsx: the first 60% of base's bytes (an interrupted copy or upload); no central directory."""
    data = base.read_bytes()
    out = out_dir / "truncated.xlsx"
    out.write_bytes(data[:len(data) * 6 // 10])
    return out


def pdf_renamed(out_dir: Path, base: Path) -> Path:
    """pdf_renamed.xlsx: a small but real one-page PDF (the signed report) given an .xlsx name."""
    text = b"BT /F1 14 Tf 72 770 Td (Bao cao tu danh gia CQDT 2020 - Huyen Kbang) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    pdf = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (i, obj)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    out = out_dir / "pdf_renamed.xlsx"
    out.write_bytes(bytes(pdf))
    return out


def docx_renamed(out_dir: Path, base: Path) -> Path:
    """docx_renamed.xlsx: a minimal Word document (a zip, like xlsx, but no xl/workbook.xml)."""
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    decl = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    members = {
        "[Content_Types].xml": decl + (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'),
        "_rels/.rels": decl + (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>'),
        "word/document.xml": decl + (
            f'<w:document xmlns:w="{w}"><w:body><w:p><w:r><w:t>Báo cáo tự đánh giá mức độ Chính quyền điện tử '
            'năm 2020 — Huyện Kbang</w:t></w:r></w:p></w:body></w:document>'),
    }
    return _write_zip(out_dir / "docx_renamed.xlsx", {k: v.encode("utf-8") for k, v in members.items()})


def doc_renamed(out_dir: Path, base: Path) -> Path:
    """doc_renamed.xls: an OLE2 compound file with Word's streams (WordDocument, 1Table), not a Workbook."""
    fib = struct.pack("<HHHH", 0xA5EC, 0x00C1, 0, 0x0409) + _noise("fib", 1464)
    data = write_cfb({"WordDocument": fib, "1Table": _noise("table", 4096)})
    out = out_dir / "doc_renamed.xls"
    out.write_bytes(data)
    return out


def empty(out_dir: Path, base: Path) -> Path:
    """empty.xlsx: zero bytes (a failed download, or a file created and never saved)."""
    out = out_dir / "empty.xlsx"
    out.write_bytes(b"")
    return out


_TABLE_ROWS = [
    ("Mã", "Tiêu chí", "Điểm tối đa", "Điểm tự đánh giá"),
    ("SS.I.1", "Tỷ lệ máy tính/cán bộ công chức cấp huyện", "1", "1"),
    ("SS.I.2", "UBND cấp huyện có kết nối mạng truyền số liệu chuyên dùng", "1", "1"),
    ("SS.I.3", "Bộ phận tiếp nhận và trả kết quả hiện đại đã thực hiện việc chuyển giao qua bưu điện", "1", "0"),
]


def html_as_xls(out_dir: Path, base: Path) -> Path:
    """html_as_xls.xls: an HTML table page in UTF-8, as "Save as Web Page" and web exports write it."""
    rows = "\n".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in r) + "</tr>" for r in _TABLE_ROWS)
    page = ('<html xmlns:o="urn:schemas-microsoft-com:office:office" '
            'xmlns:x="urn:schemas-microsoft-com:office:excel" xmlns="http://www.w3.org/TR/REC-html40">\n'
            '<head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
            '<meta name="ProgId" content="Excel.Sheet"><!--[if gte mso 9]><xml><x:ExcelWorkbook>'
            '<x:ExcelWorksheets><x:ExcelWorksheet><x:Name>Tiêu chí</x:Name></x:ExcelWorksheet>'
            '</x:ExcelWorksheets></x:ExcelWorkbook></xml><![endif]--></head>\n'
            f'<body><table border="1">\n{rows}\n</table></body></html>\n')
    out = out_dir / "html_as_xls.xls"
    out.write_bytes(page.encode("utf-8"))
    return out


def csv_as_xls(out_dir: Path, base: Path) -> Path:
    """csv_as_xls.xls: UTF-8 CSV with a byte order mark (Excel's "CSV UTF-8"), given an .xls name."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(("Mã", "Tiêu chí", "Điểm tự đánh giá"))
    writer.writerows((r[0], r[1], r[3]) for r in _TABLE_ROWS[1:])
    out = out_dir / "csv_as_xls.xls"
    out.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))
    return out


def foreign_workbook(out_dir: Path, base: Path) -> Path:
    """bao_cao_tai_chinh.xlsx: a real workbook that is not our template (a budget report), from xlsxwriter."""
    out = out_dir / "bao_cao_tai_chinh.xlsx"
    wb = xlsxwriter.Workbook(str(out))
    wb.set_properties({"title": "Báo cáo tài chính", "author": "Phòng Tài chính - Kế hoạch",
                       "created": dt.datetime(2020, 11, 27, 8, 0, 0)})
    ws = wb.add_worksheet("Dự toán ngân sách")
    bold = wb.add_format({"bold": True})
    ws.write_row(0, 0, ("Dự toán ngân sách năm 2020 - Huyện Kbang",), bold)
    ws.write_row(2, 0, ("STT", "Nội dung", "Dự toán (triệu đồng)", "Thực hiện (triệu đồng)", "Tỷ lệ (%)"), bold)
    lines = [("Chi đầu tư phát triển", 85_000, 79_350), ("Chi thường xuyên", 312_400, 305_120),
             ("Chi ứng dụng công nghệ thông tin", 4_500, 4_120), ("Dự phòng ngân sách", 7_800, 2_300)]
    for i, (name, plan, done) in enumerate(lines):
        r = 3 + i
        ws.write_row(r, 0, (i + 1, name, plan, done))
        ws.write_formula(r, 4, f"=D{r + 1}/C{r + 1}*100", None, round(done / plan * 100, 2))
    total = 3 + len(lines)
    ws.write(total, 1, "Tổng cộng", bold)
    ws.write_formula(total, 2, f"=SUM(C4:C{total})", bold, sum(p for _, p, _ in lines))
    ws.write_formula(total, 3, f"=SUM(D4:D{total})", bold, sum(d for _, _, d in lines))
    wb.close()
    return out


def _edit_sheet(base: Path, out: Path, sheet: str, fn: Callable[[str, dict[str, tuple[str, str]]], str]) -> Path:
    """Rewrite one sheet's XML text with fn(xml, cells), everything else byte for byte."""
    member, xml = _sheet_xml(base, sheet)
    cells = _cells(xml, _shared_strings(base))
    return rewrite_member(base, out, member, lambda data: fn(data.decode("utf-8"), cells).encode("utf-8"))


def wrong_version(out_dir: Path, base: Path) -> Path:
    """<base>_version_2019.xlsx: base whose _meta says rulebook_version 2019.1 (and another rulebook_hash).

    Each value is changed where it lives: in place when inline or when its shared string is used by this
    cell only, else as a new shared string appended to sharedStrings.xml (uniqueCount + 1; count, the
    number of references, unchanged) that the cell is pointed at.
    """
    meta_member, meta_xml = _sheet_xml(base, META_SHEET)
    sst = _shared_strings(base)
    cells = _cells(meta_xml, sst)
    with zipfile.ZipFile(base) as zf:
        sheets = [zf.read(n) for n in zf.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
        sst_xml = zf.read("xl/sharedStrings.xml").decode("utf-8") if sst else ""
    meta = meta_xml.decode("utf-8")
    appended: list[str] = []
    for key, value in (("rulebook_version", WRONG_VERSION), ("rulebook_hash", WRONG_HASH)):
        ref = _value_ref(cells, key)
        cell = _find_cell(meta, ref).group(0)
        kind = cells[ref][0]
        if kind != "s":
            meta = _set_inline(meta, ref, value)
            continue
        index = int(re.search(r"<v>(\d+)</v>", cell).group(1))
        uses = sum(len(re.findall(rf'<c [^>]*t="s"[^>]*><v>{index}</v>'.encode(), x)) for x in sheets)
        if uses == 1:
            sis = list(re.finditer(r"<si>.*?</si>", sst_xml, flags=re.S))
            m = sis[index]
            sst_xml = sst_xml[:m.start()] + f"<si><t>{escape(value)}</t></si>" + sst_xml[m.end():]
        else:
            new_index = len(sst) + len(appended)
            appended.append(value)
            new_cell = cell.replace(f"<v>{index}</v>", f"<v>{new_index}</v>")
            meta = meta.replace(cell, new_cell, 1)
    if appended:
        end = sst_xml.rindex("</sst>")
        sst_xml = sst_xml[:end] + "".join(f"<si><t>{escape(v)}</t></si>" for v in appended) + sst_xml[end:]
        sst_xml = re.sub(r'uniqueCount="\d+"', f'uniqueCount="{len(sst) + len(appended)}"', sst_xml, count=1)
    edits: dict[str, Edit] = {meta_member: lambda _: meta.encode("utf-8")}
    if sst:
        edits["xl/sharedStrings.xml"] = lambda _: sst_xml.encode("utf-8")
    return rewrite_members(base, out_dir / _stem_name(base, "version_2019"), edits)


def million_rows(out_dir: Path, base: Path) -> Path:
    """<base>_million_rows.xlsx: base whose criteria sheet has a formatted empty row down to row 1,048,576
    and claims <dimension ref="A1:XFD1048576"/> (a clerk formatted whole columns). Still scoreable."""
    member, xml = _sheet_xml(base, CRITERIA_SHEET)
    text = _set_dimension(xml.decode("utf-8"), f"A1:{MAX_COL}{MAX_ROW}")
    first = _last_row(text) + 1
    head, tail = text.rsplit("</sheetData>", 1)

    def rows() -> Iterator[bytes]:
        yield head.encode("utf-8")
        step = 20_000
        for start in range(first, MAX_ROW + 1, step):
            yield "".join(f'<row r="{r}" s="1" customFormat="1" ht="15" customHeight="1"/>'
                          for r in range(start, min(start + step, MAX_ROW + 1))).encode("ascii")
        yield ("</sheetData>" + tail).encode("utf-8")

    return rewrite_member(base, out_dir / _stem_name(base, "million_rows"), member, lambda _: rows())


def _far_cell(out_dir: Path, base: Path, column: str, suffix: str) -> Path:
    ref = f"{column}{MAX_ROW}"

    def fn(xml: str, cells: dict) -> str:
        xml = _set_dimension(xml, f"A1:{ref}")
        return _append_row(xml, f'<row r="{MAX_ROW}">{_inline_cell(ref, FAR_TEXT)}</row>')

    return _edit_sheet(base, out_dir / _stem_name(base, suffix), CRITERIA_SHEET, fn)


def stray_far_cell(out_dir: Path, base: Path) -> Path:
    """<base>_far_cell.xlsx: base with the text FAR_TEXT at J1048576 of the criteria sheet. Still scoreable,
    but a reader that makes the sheet dense builds 10 columns x 1,048,576 rows."""
    return _far_cell(out_dir, base, "J", "far_cell")


def corner_cell(out_dir: Path, base: Path) -> Path:
    """<base>_corner_cell.xlsx: base with the text FAR_TEXT at XFD1048576 of the criteria sheet.

    python-calamine allocates the dense range A1:XFD1048576 (1.7e10 cells, ~550 GB) when the sheet is read
    and the process ABORTS ("memory allocation of ... bytes failed", SIGABRT): open it in a subprocess only.
    """
    return _far_cell(out_dir, base, MAX_COL, "corner_cell")


def office_lock(out_dir: Path, base: Path) -> Path:
    """~$<base name>: the 165-byte owner file Excel keeps next to an open workbook (user name, length
    prefixed, in ANSI padded with spaces to 54 bytes, then again in UTF-16LE, padded)."""
    user = "chidd"
    data = bytes([len(user)]) + user.encode("ascii").ljust(53, b" ")
    data += struct.pack("<H", len(user)) + user.encode("utf-16-le")
    data = data.ljust(165, b"\x20")
    out = out_dir / f"~${base.name}"
    out.write_bytes(data)
    return out


def libreoffice_lock(out_dir: Path, base: Path) -> Path:
    """.~lock.<base name>#: the lock file LibreOffice keeps next to an open document (one CSV line)."""
    out = out_dir / f".~lock.{base.name}#"
    out.write_bytes(b",chidd,KBANG-PC,26.11.2026 01:02,file:///C:/Users/chidd/AppData/Roaming/LibreOffice/4;")
    return out


def _criteria_rows(ws) -> tuple[dict[str, int], dict[str, int]]:  # noqa: ANN001
    """({column name: 1-based column}, {code: 1-based row}) of an openpyxl criteria sheet, by header title."""
    for row in ws.iter_rows(min_row=1, max_row=40):
        titles = {str(c.value).strip(): c.column for c in row if c.value is not None}
        if _COLUMN_TITLES["code"] in titles:
            cols = {name: next(col for t, col in titles.items() if t.startswith(title))
                    for name, title in _COLUMN_TITLES.items()}
            codes = {}
            for r in range(row[0].row + 1, ws.max_row + 1):
                code = ws.cell(r, cols["code"]).value
                if isinstance(code, str) and code.strip():
                    codes.setdefault(code.strip(), r)
            return cols, codes
    raise AssertionError("no header row with 'Mã'")


def _resave(base: Path, out: Path, fn: Callable[[object, dict[str, int], dict[str, int]], None],
            replace: Mapping[str, str] | None = None) -> Path:
    """Load base with openpyxl, let fn(criteria sheet, columns, codes) change it, save reproducibly.

    openpyxl keeps no cached formula values: every formula of the saved file has none, not only fn's. It
    writes every string inline (no sharedStrings.xml) and cuts strings to 32,767 characters, hence
    ``replace``: placeholder -> text put into the saved XML (see _normalize_saved).
    """
    wb = openpyxl.load_workbook(base)
    ws = wb[CRITERIA_SHEET]
    cols, codes = _criteria_rows(ws)
    fn(ws, cols, codes)
    wb.save(out)
    return _normalize_saved(out, replace)


def formula_no_cache(out_dir: Path, base: Path) -> Path:
    """<base>_formula.xlsx: base re-saved by openpyxl with the value, numerator and denominator cells of the
    ratio criteria FORMULA_CODES (SS.I.1, SS.I.13, SS.I.14) holding FORMULAS and no cached value."""
    def fn(ws, cols: dict[str, int], codes: dict[str, int]) -> None:  # noqa: ANN001
        for code in FORMULA_CODES:
            for column, formula in FORMULAS.items():
                ws.cell(codes[code], cols[column]).value = formula

    return _resave(base, out_dir / _stem_name(base, "formula"), fn)


def merged_inputs(out_dir: Path, base: Path) -> Path:
    """<base>_merged.xlsx: base re-saved by openpyxl with the value cell of MERGED_CODES (SS.I.2, SS.I.12)
    merged with the next column (the numerator); the value stays in the merge's first cell."""
    def fn(ws, cols: dict[str, int], codes: dict[str, int]) -> None:  # noqa: ANN001
        for code in MERGED_CODES:
            r, c = codes[code], cols["value"]
            ws.merge_cells(start_row=r, start_column=c, end_row=r, end_column=c + 1)

    return _resave(base, out_dir / _stem_name(base, "merged"), fn)


def _xml_escape_controls(text: str) -> str:
    """OOXML's escape for characters XML 1.0 cannot hold: _xHHHH_."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", lambda m: f"_x{ord(m.group(0)):04X}_", text)


def control_chars(out_dir: Path, base: Path) -> Path:
    """<base>_control_chars.xlsx: base re-saved by openpyxl with evidence cells holding LONG_TEXT (40,000
    characters, over Excel's 32,767 limit) at LONG_TEXT_CODE and CONTROL_TEXT (\\x01, \\x07, \\x1b) at
    CONTROL_TEXT_CODE. The unit name still reads as base's district.

    openpyxl refuses control characters, so the cell is given their _xHHHH_ escapes, which openpyxl writes
    verbatim and readers (Excel, python-calamine) turn back into the characters. openpyxl would cut the
    long text to 32,767 characters, so a placeholder is replaced by it in the saved XML.
    """
    placeholder = "LONG-TEXT-PLACEHOLDER-5f0c"

    def fn(ws, cols: dict[str, int], codes: dict[str, int]) -> None:  # noqa: ANN001
        ws.cell(codes[LONG_TEXT_CODE], cols["evidence"]).value = placeholder
        ws.cell(codes[CONTROL_TEXT_CODE], cols["evidence"]).value = _xml_escape_controls(CONTROL_TEXT)

    return _resave(base, out_dir / _stem_name(base, "control_chars"), fn, {placeholder: LONG_TEXT})


def _district_builder(key: str) -> Callable[[Path, Path], Path]:
    text = HOSTILE_DISTRICTS[key]

    def build(out_dir: Path, base: Path) -> Path:
        def fn(xml: str, cells: dict) -> str:
            return _set_inline(xml, _value_ref(cells, UNIT_NAME_LABEL), text)

        return _edit_sheet(base, out_dir / _stem_name(base, key), INFO_SHEET, fn)

    build.__name__ = build.__qualname__ = key
    build.__doc__ = (f"<base>_{key}.xlsx: base whose unit name (information sheet) is the string {text!r}, "
                     "an inline string and not a formula; _meta still names base's district.")
    return build


formula_district = _district_builder("formula_district")
plus_district = _district_builder("plus_district")
at_district = _district_builder("at_district")

def _built_once(build: Callable[[Path, Path], Path]) -> Callable[[Path, Path], Path]:
    """`build`, run once per test process for each base and copied after: the slow builders (the bombs
    stream a gigabyte through zlib, million_rows a million rows) are asked for the same file by several
    modules. The copy has the same name and bytes as a fresh build."""
    built: dict[Path, Path] = {}

    def copy(out_dir: Path, base: Path) -> Path:
        key = base.resolve()
        if key not in built:
            folder = tempfile.mkdtemp(prefix=f"hostile-{build.__name__}-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            built[key] = build(Path(folder), base)
        out_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copyfile(built[key], out_dir / built[key].name))

    copy.__name__ = build.__name__
    copy.__doc__ = build.__doc__
    return copy


_SLOW = (zip_bomb, zip_bomb_lying, million_rows)
BUILDERS: dict[str, Callable[[Path, Path], Path]] = {f.__name__: _built_once(f) if f in _SLOW else f for f in (
    zip_bomb, zip_bomb_lying, xml_bomb, encrypted, truncated, pdf_renamed, docx_renamed, doc_renamed, empty,
    html_as_xls, csv_as_xls, foreign_workbook, wrong_version, million_rows, stray_far_cell, corner_cell,
    office_lock, libreoffice_lock, formula_no_cache, merged_inputs, control_chars, formula_district,
    plus_district, at_district,
)}


def build_corpus(out_dir: Path, base: Path) -> dict[str, Path]:
    """Build every hostile file except the zip bombs (BOMBS) and corner_cell into out_dir: {builder: path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return {name: fn(out_dir, base) for name, fn in BUILDERS.items() if name not in BOMBS + DANGEROUS}


def sha256_tree(root: Path) -> dict[str, str]:
    """{path relative to root, '/'-separated: sha256 hex} of every file under root, hidden ones included."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h = hashlib.sha256()
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(MIB), b""):
                    h.update(chunk)
            out[path.relative_to(root).as_posix()] = h.hexdigest()
    return out
