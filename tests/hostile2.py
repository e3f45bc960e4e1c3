"""A second corpus of hostile inputs (issue 16), built in code like tests/hostile.py: other compression methods
and other parts of the archive, .ods and .xls variants, far cells written the ways calamine still reads them,
files crafted to make regular expressions work for hours, absurd numbers, a return that claims another
district; and what an inbox holds besides workbooks (place_inbox_oddities): names the outputs cannot hold,
FIFOs, devices, sockets, links, sparse giants, a tree past PATH_MAX, look-alike file types.

Every builder is ``name(out_dir, base) -> Path`` and writes one file; ``base`` is a good filled return. The
builders in DANGEROUS make python-calamine abort the process that reads them whole, as corner_cell does.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import hostile
from hostile import CRITERIA_SHEET, INFO_SHEET, MAX_COL, MAX_ROW, MIB, UNIT_NAME_LABEL

DANGEROUS = ("r_not_first", "lowercase_reference")
LYING_SIZE = 300_000  # what bzip2_lying declares its criteria sheet inflates to
BZIP2_INFLATED = 64 * MIB  # what it does inflate to (12 GB took the parent down; 64 MB shows the lie)
IMPOSTOR_NAME = "Huyện Chư Sê"  # typed into Kbang's own template
ODD_UNIT_NAME = "Huyện Đà\ufffe Lạt\uffff\x1b[2J"  # not listed; U+FFFE, U+FFFF and an ESC sequence
# Cells of the Kbang sample's criteria sheet (A code, E value, F numerator, G denominator, H self-score).
ABSURD = {
    "H8": ("v", "1e300"),  # SS.I.2's self-score
    "F7": ("s", "1" * 310),  # SS.I.1's numerator, a 310-digit number typed as text
    "H9": ("v", "NaN"),  # SS.I.3's self-score
    "H10": ("v", "inf"),  # SS.I.4's self-score
    "H6": ("v", "1e16"),  # SS.I's declared subtotal
    "H202": ("v", "-1e308"),  # the declared total
}
UNREFERENCED = 300  # cells without a reference appended to a row: the last lands in column KN
REGEX_REPEAT = 250_000  # crafted start tags: ~3 MB of XML, deflated to a few KB
REGEX_RUN = 3 * MIB  # letters in one crafted tag
REGEX_FAR_CELL = "A6000"
SPARSE_SIZES = {"sparse_3gb.xlsx": 3 * 2**30, "sparse_30gb.xlsx": 30 * 2**30}

_ODS_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
           'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
           'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"')


# --- zip plumbing ------------------------------------------------------------------------------------------

def _copy_zip(base: Path, out: Path, edits: Mapping[str, Callable[[bytes], bytes | Iterable[bytes]]] | None = None,
              methods: Mapping[str, int] | None = None) -> Path:
    """base's zip member by member into out, each named member's bytes through its edit (bytes or chunks,
    streamed) and compressed with its method (zipfile's numbers), the others as they were."""
    edits, methods = edits or {}, methods or {}
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            new = hostile._clone(info)
            new.compress_type = methods.get(info.filename, info.compress_type)
            result = edits[info.filename](data) if info.filename in edits else data
            with dst.open(new, "w") as member:
                for chunk in [result] if isinstance(result, bytes) else result:
                    member.write(chunk)
    return out


def _central_entries(data: bytes) -> Iterator[tuple[int, int, str]]:
    """(central directory offset, local header offset, name) of each member of a plain 32-bit zip."""
    eocd = data.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", data, eocd + 12)
    pos = cd_offset
    while pos < cd_offset + cd_size:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        (local,) = struct.unpack_from("<I", data, pos + 42)
        yield pos, local, data[pos + 46:pos + 46 + name_len].decode("utf-8")
        pos += 46 + name_len + extra_len + comment_len


def _patch_headers(path: Path, fn: Callable[[bytearray, int, int, str], None]) -> None:
    """fn(data, central entry offset, local header offset, name) for every member, in place."""
    data = bytearray(path.read_bytes())
    for central, local, name in list(_central_entries(bytes(data))):
        fn(data, central, local, name)
    path.write_bytes(bytes(data))


# --- other compression methods and other parts of the archive ----------------------------------------------

def deflate64(out_dir: Path, base: Path) -> Path:
    """deflate64.xlsx: base whose criteria sheet says it is compressed with Deflate64 (method 9), which
    zipfile cannot read (NotImplementedError) and calamine does not know."""
    out = _copy_zip(base, out_dir / "deflate64.xlsx")
    member = hostile.sheet_member(base, CRITERIA_SHEET)

    def patch(data: bytearray, central: int, local: int, name: str) -> None:
        if name == member:
            struct.pack_into("<H", data, central + 10, 9)
            struct.pack_into("<H", data, local + 8, 9)

    _patch_headers(out, patch)
    return out


def bzip2_lying(out_dir: Path, base: Path) -> Path:
    """bzip2_lying.xlsx: base whose criteria sheet is bzip2-compressed, with BZIP2_INFLATED bytes of spaces
    after <sheetData>, and declares LYING_SIZE bytes. zipfile inflates such a member whole before it
    compares sizes; the file is ~30 KB."""
    member = hostile.sheet_member(base, CRITERIA_SHEET)

    def edit(data: bytes) -> Iterator[bytes]:
        i = data.index(b"<sheetData>") + len(b"<sheetData>")
        yield data[:i]
        for _ in range(BZIP2_INFLATED // MIB):
            yield b" " * MIB
        yield data[i:]

    out = _copy_zip(base, out_dir / "bzip2_lying.xlsx", {member: edit}, {member: zipfile.ZIP_BZIP2})
    hostile._patch_declared_size(out, member, LYING_SIZE)
    return out


def lzma_strings(out_dir: Path, base: Path) -> Path:
    """lzma_strings.xlsx: base with its shared strings compressed with LZMA (method 14)."""
    return _copy_zip(base, out_dir / "lzma_strings.xlsx", methods={"xl/sharedStrings.xml": zipfile.ZIP_LZMA})


def zip_password(out_dir: Path, base: Path) -> Path:
    """zip_password.xlsx: base with every member flagged as encrypted by a zip tool (bit 0), as 7-Zip or
    WinRAR leave a workbook zipped again with a password."""
    out = _copy_zip(base, out_dir / "zip_password.xlsx")

    def patch(data: bytearray, central: int, local: int, name: str) -> None:
        struct.pack_into("<H", data, central + 8, struct.unpack_from("<H", data, central + 8)[0] | 1)
        struct.pack_into("<H", data, local + 6, struct.unpack_from("<H", data, local + 6)[0] | 1)

    _patch_headers(out, patch)
    return out


def dtd_in_rels(out_dir: Path, base: Path) -> Path:
    """dtd_in_rels.xlsx: base whose workbook relationships (the part that maps sheets to members) declare
    entities, one of them used in a target."""
    def edit(data: bytes) -> bytes:
        body = data.decode("utf-8")
        decl = '<!DOCTYPE Relationships [<!ENTITY s "worksheets/sheet">]>'
        body = body.replace("<Relationships", decl + "<Relationships", 1)
        return body.replace('Target="worksheets/sheet', 'Target="&s;', 1).encode("utf-8")

    return _copy_zip(base, out_dir / "dtd_in_rels.xlsx", {"xl/_rels/workbook.xml.rels": edit})


def _ods(out: Path, content: bytes, method: int = zipfile.ZIP_DEFLATED) -> Path:
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
                'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                '</manifest:manifest>')
    with zipfile.ZipFile(out, "w") as zf:
        for name, data, how in (("mimetype", b"application/vnd.oasis.opendocument.spreadsheet", zipfile.ZIP_STORED),
                                ("META-INF/manifest.xml", manifest.encode(), zipfile.ZIP_DEFLATED),
                                ("content.xml", content, method)):
            info = zipfile.ZipInfo(name, hostile._FIXED_TIME)
            info.compress_type = how
            zf.writestr(info, data)
    return out


def _ods_content(rows: str, doctype: str = "") -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>' + doctype + f"<office:document-content {_ODS_NS}>"
            '<office:body><office:spreadsheet><table:table table:name="Tiêu chí">' + rows +
            "</table:table></office:spreadsheet></office:body></office:document-content>").encode("utf-8")


_ODS_HEADER = ('<table:table-row>' + "".join(
    f'<table:table-cell office:value-type="string"><text:p>{t}</text:p></table:table-cell>'
    for t in ("Mã", "Giá trị", "Tử số", "Mẫu số", "Điểm tự đánh giá")) + "</table:table-row>")


def ods_bzip2(out_dir: Path, base: Path) -> Path:
    """ods_bzip2.ods: a LibreOffice spreadsheet whose content.xml is bzip2-compressed."""
    return _ods(out_dir / "ods_bzip2.ods", _ods_content(_ODS_HEADER), zipfile.ZIP_BZIP2)


def ods_dtd(out_dir: Path, base: Path) -> Path:
    """ods_dtd.ods: a spreadsheet whose content.xml declares a billion-laughs entity and uses it in a cell."""
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
    row = '<table:table-row><table:table-cell office:value-type="string"><text:p>&i;</text:p></table:table-cell>' \
          "</table:table-row>"
    return _ods(out_dir / "ods_dtd.ods", _ods_content(_ODS_HEADER + row, f"<!DOCTYPE d [{entities}]>"))


def ods_repeated(out_dir: Path, base: Path) -> Path:
    """ods_repeated.ods: the criteria header, then a row repeated 1,048,575 times of 16,384 repeated cells
    and one value in the very last cell (ODS's way of writing XFD1048576)."""
    rows = (_ODS_HEADER + '<table:table-row table:number-rows-repeated="1048574">'
            '<table:table-cell table:number-columns-repeated="16384"/></table:table-row>'
            '<table:table-row><table:table-cell table:number-columns-repeated="16383"/>'
            '<table:table-cell office:value-type="float" office:value="1"/></table:table-row>')
    return _ods(out_dir / "ods_repeated.ods", _ods_content(rows))


def _biff_cfb() -> bytearray:
    bof = struct.pack("<HHHHII", 0x0809, 16, 0x0600, 0x0005, 0, 0)  # a BIFF8 workbook's first record
    return bytearray(hostile.write_cfb({"Workbook": bof + b"\0" * 5000}))


def xls_fat_loop(out_dir: Path, base: Path) -> Path:
    """xls_fat_loop.xls: an .xls compound file whose Workbook stream's sector chain loops back on itself."""
    data = _biff_cfb()
    directory = 1024  # write_cfb: the header, one FAT sector, then the directory
    entry = next(directory + 128 * i for i in range(4)
                 if data[directory + 128 * i:directory + 128 * i + 16] == "Workbook".encode("utf-16-le"))
    (start,) = struct.unpack_from("<I", data, entry + 116)
    struct.pack_into("<I", data, 512 + 4 * (start + 2), start)  # its third sector's successor is its first
    out = out_dir / "xls_fat_loop.xls"
    out.write_bytes(bytes(data))
    return out


def xls_sector_shift(out_dir: Path, base: Path) -> Path:
    """xls_sector_shift.xls: an .xls compound file claiming sectors of 2**30 bytes."""
    data = _biff_cfb()
    struct.pack_into("<H", data, 30, 30)
    out = out_dir / "xls_sector_shift.xls"
    out.write_bytes(bytes(data))
    return out


# --- far cells written the ways calamine still reads them --------------------------------------------------

def _far_row(out_dir: Path, base: Path, row_xml: str, suffix: str) -> Path:
    def fn(xml: str, cells: dict) -> str:
        return hostile._append_row(xml, row_xml)

    return hostile._edit_sheet(base, out_dir / hostile._stem_name(base, suffix), CRITERIA_SHEET, fn)


def r_not_first(out_dir: Path, base: Path) -> Path:
    """<base>_r_not_first.xlsx: base with text at XFD1048576 in a cell whose r attribute is not its first
    (`<c s="0" r="XFD1048576">`), which a guard looking for `<c r=` misses. Aborts calamine if read."""
    ref = f"{MAX_COL}{MAX_ROW}"
    return _far_row(out_dir, base, f'<row r="{MAX_ROW}"><c s="0" r="{ref}" t="inlineStr"><is><t>x</t></is></c></row>',
                    "r_not_first")


def lowercase_reference(out_dir: Path, base: Path) -> Path:
    """<base>_lowercase_ref.xlsx: base with text at XFD1048576 written `r = 'xfd01048576'` (lower case,
    single quotes, spaces, a leading zero), all of which calamine reads. Aborts calamine if read."""
    return _far_row(out_dir, base, f"<row r='0{MAX_ROW}'><c t=\"inlineStr\" r = '{MAX_COL.lower()}0{MAX_ROW}'>"
                                   "<is><t>x</t></is></c></row>", "lowercase_ref")


def duplicate_member(out_dir: Path, base: Path) -> Path:
    """<base>_duplicate_member.xlsx: base with its criteria sheet twice under one name, the second with text
    at J1048576. calamine reads the last of the two (as zipfile does): that is the one to cut."""
    member = hostile.sheet_member(base, CRITERIA_SHEET)
    out = out_dir / hostile._stem_name(base, "duplicate_member")
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(out, "w") as dst, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name
        for info in src.infolist():
            data = src.read(info)
            if info.filename == member:
                dst.writestr(hostile._clone(info), data)
                row = f'<row r="{MAX_ROW}">{hostile._inline_cell(f"J{MAX_ROW}", "x")}</row>'
                data = hostile._append_row(data.decode("utf-8"), row).encode("utf-8")
            dst.writestr(hostile._clone(info), data)
    return out


def unreferenced_cells(out_dir: Path, base: Path) -> Path:
    """<base>_unreferenced.xlsx: base with a row of UNREFERENCED text cells without r attributes after the
    last row: calamine puts each after the one before, the last in column KN."""
    def fn(xml: str, cells: dict) -> str:
        row = hostile._last_row(xml) + 1
        body = '<c t="inlineStr"><is><t>x</t></is></c>' * UNREFERENCED
        return hostile._append_row(xml, f'<row r="{row}">{body}</row>')

    return hostile._edit_sheet(base, out_dir / hostile._stem_name(base, "unreferenced"), CRITERIA_SHEET, fn)


def unreferenced_place(base: Path) -> str:
    """Where unreferenced_cells' last cell lands: column UNREFERENCED, the row after base's last."""
    _, xml = hostile._sheet_xml(base, CRITERIA_SHEET)
    return f"{_column_letter(UNREFERENCED)}{hostile._last_row(xml.decode('utf-8')) + 1}"


def _column_letter(n: int) -> str:
    letters = ""
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


# --- regular expressions made to work for hours ------------------------------------------------------------

def regex_heavy_sheet(out_dir: Path, base: Path) -> Path:
    """<base>_regex_sheet.xlsx: base whose criteria sheet has a value at REGEX_FAR_CELL (to be cut), then a
    comment of REGEX_REPEAT unclosed `<row r="9999">` tags: a pattern that looks for each row's `</row>`
    lazily reads to the end of the sheet from each of them (10,000 took 26 s, this many would take hours).
    calamine skips the comment: still a good return."""
    member = hostile.sheet_member(base, CRITERIA_SHEET)
    row = int(REGEX_FAR_CELL[1:])

    def edit(data: bytes) -> bytes:
        i = data.rindex(b"</sheetData>")
        far = f'<row r="{row}">{hostile._inline_cell(REGEX_FAR_CELL, "x")}</row>'.encode()
        return data[:i] + far + b"<!--" + b'<row r="9999">' * REGEX_REPEAT + b"-->" + data[i:]

    return _copy_zip(base, out_dir / hostile._stem_name(base, "regex_sheet"), {member: edit})


def regex_heavy_workbook(out_dir: Path, base: Path) -> Path:
    """<base>_regex_workbook.xlsx: base whose workbook.xml holds a comment with a `<sheet ` tag of REGEX_RUN
    letters: a pattern for an attribute name (`[\\w:]+\\s*=`) tried at each of them reads the rest of the
    run each time (40,000 letters took 44 s). calamine skips the comment: still a good return."""
    def edit(data: bytes) -> bytes:
        return data.replace(b"<sheets>", b"<sheets><!--<sheet " + b"a" * REGEX_RUN + b" -->", 1)

    return _copy_zip(base, out_dir / hostile._stem_name(base, "regex_workbook"), {"xl/workbook.xml": edit})


# --- values --------------------------------------------------------------------------------------------------

def absurd_numbers(out_dir: Path, base: Path) -> Path:
    """<base>_absurd.xlsx: base with the cells of ABSURD (1e300, a 310-digit text, NaN, infinity, 1e16,
    -1e308 as self-scores, a numerator and declared subtotals). Refs are the Kbang sample's."""
    def fn(xml: str, cells: dict) -> str:
        for ref, (kind, text) in ABSURD.items():
            m = hostile._find_cell(xml, ref)
            new = hostile._inline_cell(ref, text) if kind == "s" else f'<c r="{ref}"><v>{text}</v></c>'
            xml = xml[:m.start()] + new + xml[m.end():]
        return xml

    return hostile._edit_sheet(base, out_dir / hostile._stem_name(base, "absurd"), CRITERIA_SHEET, fn)


def _unit_name(out: Path, base: Path, text: str) -> Path:
    def fn(xml: str, cells: dict) -> str:
        return hostile._set_inline(xml, hostile._value_ref(cells, UNIT_NAME_LABEL), text)

    return hostile._edit_sheet(base, out, INFO_SHEET, fn)


def impostor(out_dir: Path, base: Path) -> Path:
    """impostor_chu_se.xlsx: base (made from Kbang's own template, whose _meta names Kbang) with the unit
    name changed to IMPOSTOR_NAME."""
    return _unit_name(out_dir / "impostor_chu_se.xlsx", base, IMPOSTOR_NAME)


def odd_unit_name(out_dir: Path, base: Path) -> Path:
    """odd_unit_name.xlsx: base whose unit name is ODD_UNIT_NAME (U+FFFE, U+FFFF, ESC, an unlisted name),
    and whose _meta names no district, so that the name is all there is."""
    out = _unit_name(out_dir / "odd_unit_name.tmp", base, hostile._xml_escape_controls(ODD_UNIT_NAME))
    meta_member, meta_xml = hostile._sheet_xml(out, hostile.META_SHEET)
    cells = hostile._cells(meta_xml, hostile._shared_strings(out))
    meta = hostile._set_inline(meta_xml.decode("utf-8"), hostile._value_ref(cells, "district"), "")
    final = hostile.rewrite_member(out, out_dir / "odd_unit_name.xlsx", meta_member, lambda _: meta.encode("utf-8"))
    out.unlink()
    return final


BUILDERS: dict[str, Callable[[Path, Path], Path]] = {f.__name__: f for f in (
    deflate64, bzip2_lying, lzma_strings, zip_password, dtd_in_rels, ods_bzip2, ods_dtd, ods_repeated,
    xls_fat_loop, xls_sector_shift, r_not_first, lowercase_reference, duplicate_member, unreferenced_cells,
    regex_heavy_sheet, regex_heavy_workbook, absurd_numbers, impostor, odd_unit_name,
)}
# What each rejected builder is rejected with (the others are scored).
REJECTED_BY = {
    "deflate64": "file-unsupported-compression",
    "bzip2_lying": "file-unsupported-compression",
    "lzma_strings": "file-unsupported-compression",
    "zip_password": "file-encrypted",
    "dtd_in_rels": "file-unsafe-xml",
    "ods_bzip2": "file-unsupported-compression",
    "ods_dtd": "file-unsafe-xml",
    "ods_repeated": "file-unreadable",  # calamine: "Cannot detect file format"
    "xls_fat_loop": "file-not-template",
    "xls_sector_shift": "file-unreadable",
    "impostor": "district-mismatch",
    "odd_unit_name": "district-unknown",
}
SCORED = tuple(name for name in BUILDERS if name not in REJECTED_BY)


# --- what an inbox holds besides workbooks -------------------------------------------------------------------

NON_UTF8_NAME = b"B\xe1o c\xe1o.xlsx"  # "Báo cáo.xlsx" in Windows-1258, as an old zip or share delivers it
FORGING_NAME = "dòng\nnotice: forged line\x1b[31m.xlsx"
ILLEGAL_XML_NAME = "x\ufffe\uffff\u202egnp.xlsx"
DEEP_PART = "thư mục " + "d" * 230  # one level of the deep tree: about 240 bytes
DEEP_LEVELS = 20  # about 4,900 bytes: past PATH_MAX (4,096)
ODD_ENTRIES = {  # name -> the code it is reported with
    "fifo.xlsx": "file-unreadable",
    "zero.xlsx": "file-unreadable",  # a symbolic link to /dev/zero
    "socket.xlsx": "file-unreadable",
    "dangling.xlsx": "file-unreadable",
    "loop.xlsx": "file-unreadable",
    "sparse_3gb.xlsx": "file-oversized",
    "sparse_30gb.xlsx": "file-oversized",
    "so_lam_viec.xlsb": "file-type-unsupported",
    "mau.xltx": "file-type-unsupported",
    "mau_macro.xltm": "file-type-unsupported",
    "wps.et": "file-type-unsupported",
}


def write_deep(root: Path, data: bytes, name: str = "sau.xlsx") -> tuple[str, ...]:
    """A file at DEEP_LEVELS folders of DEEP_PART under root, made through directory descriptors (its path
    is longer than the kernel takes); its parts relative to root."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(DEEP_LEVELS):
            os.mkdir(DEEP_PART, dir_fd=fd)
            sub = os.open(DEEP_PART, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = sub
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd)
        try:
            os.write(out, data)
        finally:
            os.close(out)
    finally:
        os.close(fd)
    return (DEEP_PART,) * DEEP_LEVELS + (name,)


def place_inbox_oddities(folder: Path, base: Path) -> socket.socket:
    """The entries of ODD_ENTRIES in folder; the socket is returned: its file exists while it is open."""
    os.mkfifo(folder / "fifo.xlsx")
    (folder / "zero.xlsx").symlink_to("/dev/zero")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(folder / "socket.xlsx"))
    (folder / "dangling.xlsx").symlink_to(folder / "gone.xlsx")
    (folder / "loop.xlsx").symlink_to(folder / "loop.xlsx")
    for name, size in SPARSE_SIZES.items():
        with open(folder / name, "wb") as fh:
            fh.write(base.read_bytes())
            fh.truncate(size)
    for name in ("so_lam_viec.xlsb", "mau.xltx", "mau_macro.xltm", "wps.et"):
        (folder / name).write_bytes(base.read_bytes())
    return sock


def fingerprint(root: Path, hash_limit: int = 64 * MIB) -> dict[tuple[str, ...], tuple]:
    """{parts: what the entry is} for everything under root, at any depth, without opening anything but
    regular files up to hash_limit bytes (hashed); bigger ones by size, blocks and time, others by kind,
    link target and time. Walked by directory descriptors, as the batch walks."""
    out: dict[tuple[str, ...], tuple] = {}

    def visit(fd: int, parts: tuple[str, ...]) -> None:
        for entry in sorted(os.scandir(fd), key=lambda e: e.name):
            st = entry.stat(follow_symlinks=False)
            key = (*parts, entry.name)
            if stat.S_ISDIR(st.st_mode):
                out[key] = ("dir", st.st_mtime_ns)
                sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                try:
                    visit(sub, key)
                finally:
                    os.close(sub)
            elif stat.S_ISLNK(st.st_mode):
                out[key] = ("link", os.readlink(entry.name, dir_fd=fd))
            elif stat.S_ISREG(st.st_mode) and st.st_size <= hash_limit:
                with os.fdopen(os.open(entry.name, os.O_RDONLY, dir_fd=fd), "rb") as fh:
                    out[key] = ("file", hashlib.sha256(fh.read()).hexdigest(), st.st_mtime_ns)
            else:
                out[key] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_blocks, st.st_mtime_ns)

    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        visit(top, ())
    finally:
        os.close(top)
    return out
