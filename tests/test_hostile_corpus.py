"""Sanity checks of the hostile corpus (tests/hostile.py): each file is what it claims to be, and what
python-calamine and openpyxl do with the worst of them is pinned, so an upgrade that changes it shows here.

Files that could hurt the test process (the XML bomb, the corner cell) are opened in a subprocess only.
"""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import defusedxml.common
import openpyxl
import pytest
import python_calamine

import hostile

BASE = Path(__file__).resolve().parents[1] / "kbang_egov" / "data" / "samples" / "CQDT_2020_Huyen_Kbang.xlsx"
CODES = ("SS.I.1", "SS.I.24", "KQ.IV.5", "TONG")  # first, middle and last rows of the criteria sheet


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return hostile.build_corpus(tmp_path_factory.mktemp("corpus"), BASE)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("bombs")
    return {name: hostile.BUILDERS[name](out, BASE) for name in hostile.BOMBS}


def _rows(path: Path, sheet: str, nrows: int | None = None) -> list[list]:
    s = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet)
    return s.to_python(nrows=nrows) if nrows else s.to_python()


def _criteria(path: Path, nrows: int | None = None) -> tuple[dict[str, int], dict[str, list]]:
    """({column title: index}, {code: row}) of the criteria sheet as python-calamine reads it."""
    rows = _rows(path, hostile.CRITERIA_SHEET, nrows)
    header = next(i for i, r in enumerate(rows) if "Mã" in r)
    cols = {str(t): j for j, t in enumerate(rows[header]) if t != ""}
    return cols, {str(r[0]): r for r in rows[header + 1:] if r[0] != ""}


def _key_values(path: Path, sheet: str) -> dict[str, object]:
    return {str(r[0]): r[1] for r in _rows(path, sheet) if len(r) > 1 and r[0] != ""}


# Opens a workbook with python-calamine and reads every sheet under an address-space limit, one JSON line per
# step, so a test sees how far it got even when the process aborts. VmHWM, not ru_maxrss: the latter keeps
# the parent's peak across exec.
PROBE = """
import json, resource, sys
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
import python_calamine
def say(**kw):
    print(json.dumps(kw, ensure_ascii=False), flush=True)
try:
    wb = python_calamine.CalamineWorkbook.from_path(sys.argv[1])
    say(step="opened")
    for name in wb.sheet_names:
        say(step="sheet", name=name, rows=len(wb.get_sheet_by_name(name).to_python(nrows=400)))
except Exception as e:
    say(step="error", type=type(e).__name__, message=str(e))
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]
say(step="end", peak_kib=int(peak))
"""


def _probe(path: Path, limit: int) -> tuple[int, list[dict], str]:
    """(return code, steps, stderr) of PROBE on path in a subprocess limited to ``limit`` bytes."""
    env = {**os.environ, "RUST_BACKTRACE": "0"}
    done = subprocess.run([sys.executable, "-c", PROBE, str(path), str(limit)], capture_output=True, text=True,
                          timeout=30, env=env)
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def _cfb_streams(data: bytes) -> dict[str, bytes]:
    """The root's streams read back through the header, FAT and directory: an independent check of write_cfb."""
    assert data[:8] == hostile.OLE_MAGIC
    major, _, sector_shift = struct.unpack_from("<HHH", data, 26)
    assert (major, sector_shift) == (3, 9)
    n_fat, first_dir = struct.unpack_from("<II", data, 44)
    (cutoff,) = struct.unpack_from("<I", data, 56)

    def sector(i: int) -> bytes:
        return data[512 * (i + 1):512 * (i + 2)]

    fat_sectors = struct.unpack_from(f"<{n_fat}I", data, 76)
    fat = [e for s in fat_sectors for e in struct.unpack("<128I", sector(s))]
    assert all(fat[s] == 0xFFFFFFFD for s in fat_sectors)

    def chain(start: int) -> bytes:
        out = []
        while start != 0xFFFFFFFE:
            out.append(sector(start))
            start = fat[start]
        return b"".join(out)

    directory = chain(first_dir)
    entries = [directory[i:i + 128] for i in range(0, len(directory), 128)]
    assert entries[0][66] == 5 and entries[0][:20].decode("utf-16-le") == "Root Entry"
    streams, todo = {}, [struct.unpack_from("<I", entries[0], 76)[0]]
    while todo:
        i = todo.pop()
        if i == 0xFFFFFFFF:
            continue
        e = entries[i]
        (name_len,) = struct.unpack_from("<H", e, 64)
        left, right, _ = struct.unpack_from("<III", e, 68)
        start, size = struct.unpack_from("<IQ", e, 116)
        assert e[66] == 2 and size >= cutoff, "a regular (not mini) stream"
        streams[e[:name_len - 2].decode("utf-16-le")] = chain(start)[:size]
        todo += [left, right]
    return streams


# --- the corpus as a whole ---------------------------------------------------------------------------------

def test_every_builder_writes_its_own_file(corpus: dict[str, Path], tmp_path: Path) -> None:
    expected = set(hostile.BUILDERS) - set(hostile.BOMBS) - set(hostile.DANGEROUS)
    assert set(corpus) == expected
    assert all(p.is_file() for p in corpus.values())
    assert len({p.name for p in corpus.values()}) == len(corpus), "file names are distinct"
    tree = hostile.sha256_tree(next(iter(corpus.values())).parent)
    assert set(tree) == {p.name for p in corpus.values()}  # hidden lock file included
    # Deterministic: the same bytes again (openpyxl's timestamps are normalised).
    assert hostile.sha256_tree(tmp_path) == {}
    hostile.build_corpus(tmp_path, BASE)
    assert hostile.sha256_tree(tmp_path) == tree


def test_misnamed_and_broken_files(corpus: dict[str, Path]) -> None:
    base = BASE.read_bytes()
    assert corpus["empty"].name == "empty.xlsx" and corpus["empty"].stat().st_size == 0
    assert base.startswith(corpus["truncated"].read_bytes())
    assert corpus["truncated"].stat().st_size == len(base) * 6 // 10
    pdf = corpus["pdf_renamed"].read_bytes()
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    startxref = int(re.search(rb"startxref\s+(\d+)", pdf).group(1))
    assert pdf[startxref:].startswith(b"xref")
    with zipfile.ZipFile(corpus["docx_renamed"]) as zf:
        assert {"[Content_Types].xml", "_rels/.rels", "word/document.xml"} <= set(zf.namelist())
        assert "xl/workbook.xml" not in zf.namelist()
    html = corpus["html_as_xls"].read_text(encoding="utf-8")
    assert 'xmlns:x="urn:schemas-microsoft-com:office:excel"' in html and "<td>Điểm tự đánh giá</td>" in html
    csv_bytes = corpus["csv_as_xls"].read_bytes()
    assert csv_bytes.startswith(b"\xef\xbb\xbfM\xc3\xa3,Ti\xc3\xaau ch\xc3\xad,\xc4\x90i\xe1\xbb\x83m t\xe1\xbb\xb1")
    assert corpus["office_lock"].name == f"~${BASE.name}" and corpus["office_lock"].stat().st_size == 165
    assert corpus["libreoffice_lock"].name == f".~lock.{BASE.name}#"
    assert corpus["libreoffice_lock"].read_text().startswith(",chidd,KBANG-PC,26.11.2026 01:02,file:///")
    assert python_calamine.CalamineWorkbook.from_path(str(corpus["foreign_workbook"])).sheet_names == [
        "Dự toán ngân sách"]


# What python-calamine 0.9.1 says on opening each file that is no workbook (exact class, message excerpt).
CALAMINE_REJECTS = {
    "empty": ("ZipError", "invalid Zip archive: Could not find EOCD"),
    "truncated": ("ZipError", "invalid Zip archive: Could not find EOCD"),
    "pdf_renamed": ("ZipError", "invalid Zip archive: Could not find EOCD"),
    "office_lock": ("ZipError", "invalid Zip archive: Could not find EOCD"),
    "docx_renamed": ("CalamineError", "File not found 'word/_rels/workbook.xml.rels'"),
    "doc_renamed": ("CalamineError", "Cfb error: Cannot find Workbook stream"),
    "html_as_xls": ("CalamineError", "Cfb error: Invalid OLE (signature \\x3c\\x68\\x74\\x6d"),
    "csv_as_xls": ("CalamineError", "Cfb error: Invalid OLE (328 bytes is too small, signature \\xef\\xbb\\xbf"),
    "libreoffice_lock": ("CalamineError", "Cannot detect file format"),
    "encrypted": ("PasswordError", "Workbook is password protected"),  # it reads the CFB's stream names
}


@pytest.mark.parametrize("name", sorted(CALAMINE_REJECTS))
def test_calamine_rejects_on_open(corpus: dict[str, Path], name: str) -> None:
    kind, message = CALAMINE_REJECTS[name]
    with pytest.raises(python_calamine.CalamineError) as exc:
        python_calamine.CalamineWorkbook.from_path(str(corpus[name]))
    assert type(exc.value).__name__ == kind
    assert message in str(exc.value)


# --- OLE2 compound files -----------------------------------------------------------------------------------

def test_encrypted_is_a_compound_file_with_the_encryption_streams(corpus: dict[str, Path]) -> None:
    data = corpus["encrypted"].read_bytes()
    assert corpus["encrypted"].name == "encrypted.xlsx" and data.startswith(hostile.OLE_MAGIC)
    assert "EncryptionInfo".encode("utf-16-le") in data and "EncryptedPackage".encode("utf-16-le") in data
    streams = _cfb_streams(data)
    assert set(streams) == {"EncryptionInfo", "EncryptedPackage"}
    assert streams["EncryptionInfo"][:8] == struct.pack("<HHI", 4, 4, 0x40)  # agile
    assert b'<keyEncryptor uri="http://schemas.microsoft.com/office/2006/keyEncryptor/password">' in streams[
        "EncryptionInfo"]
    assert struct.unpack_from("<Q", streams["EncryptedPackage"])[0] == BASE.stat().st_size
    # python_calamine.PasswordError (a CalamineError): "Workbook is password protected".
    with pytest.raises(python_calamine.PasswordError, match="password protected"):
        python_calamine.CalamineWorkbook.from_path(str(corpus["encrypted"]))


def test_doc_renamed_is_a_word_compound_file(corpus: dict[str, Path]) -> None:
    data = corpus["doc_renamed"].read_bytes()
    assert corpus["doc_renamed"].suffix == ".xls" and data.startswith(hostile.OLE_MAGIC)
    assert "WordDocument".encode("utf-16-le") in data
    streams = _cfb_streams(data)
    assert set(streams) == {"WordDocument", "1Table"}
    assert streams["WordDocument"][:2] == b"\xec\xa5"  # the FIB's wIdent


# --- bombs -------------------------------------------------------------------------------------------------

def test_zip_bombs_declare_their_sizes(bombs: dict[str, Path]) -> None:
    member = hostile.sheet_member(BASE, hostile.CRITERIA_SHEET)
    for name, path in bombs.items():
        assert path.stat().st_size < 5 * hostile.MIB
        with zipfile.ZipFile(path) as zf:
            assert zf.namelist() == zipfile.ZipFile(BASE).namelist()
            info = zf.getinfo(member)
        if name == "zip_bomb":
            assert path.name == "bomb_zip.xlsx" and info.file_size >= hostile.GIB
        else:
            assert path.name == "bomb_zip_lying.xlsx" and info.file_size == hostile.LYING_SIZE
        assert info.compress_size < 5 * hostile.MIB


def test_lying_bomb_inflates_past_its_claim(bombs: dict[str, Path]) -> None:
    path = bombs["zip_bomb_lying"]
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(hostile.sheet_member(BASE, hostile.CRITERIA_SHEET))
        # Read in bounded pieces, zipfile stops at the claim and then checks the CRC. (zf.read(info) would
        # inflate the whole gigabyte in one call before cutting it to the claim: 2 GiB of memory.)
        with pytest.raises(zipfile.BadZipFile, match="Bad CRC-32"), zf.open(info) as member:
            while member.read(hostile.MIB):
                pass
    data = path.read_bytes()
    assert data[info.header_offset + 22:info.header_offset + 26] == struct.pack("<I", hostile.LYING_SIZE)
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    stream = data[start:start + info.compress_size]
    inflater, inflated, limit = zlib.decompressobj(-15), 0, hostile.LYING_SIZE + 10 * hostile.MIB
    while stream and inflated <= limit:
        inflated += len(inflater.decompress(stream, hostile.MIB))
        stream = inflater.unconsumed_tail
    assert inflated > limit


def test_calamine_refuses_the_xml_bomb_without_expanding_it(corpus: dict[str, Path]) -> None:
    """Pinned: quick-xml expands no DTD entity, so python-calamine fails on opening (it reads the shared
    strings then) with XmlError "at 0..0: unrecognized entity `&lol9;`", quickly and in a few MiB."""
    code, steps, stderr = _probe(corpus["xml_bomb"], hostile.GIB)
    assert code == 0, stderr
    assert [s["step"] for s in steps] == ["error", "end"]
    assert steps[0]["type"] == "XmlError" and "unrecognized entity `&lol9;`" in steps[0]["message"]
    assert steps[-1]["peak_kib"] < 200 * 1024


def test_calamine_on_zip_bombs(bombs: dict[str, Path]) -> None:
    """Pinned: python-calamine has no bomb guard of its own. It trusts the declared size (the lying bomb
    fails, cheaply, with XmlError "I/O error: File is larger than its declared uncompressed size") but
    inflates an honest bomb: the gigabyte of whitespace becomes one buffered XML text (~1 GiB resident,
    3 s), and with less memory than that the process ABORTS ("memory allocation of ... bytes failed")."""
    code, steps, stderr = _probe(bombs["zip_bomb_lying"], hostile.GIB)
    assert code == 0, stderr
    error = next(s for s in steps if s["step"] == "error")
    assert error["type"] == "XmlError" and "File is larger than its declared uncompressed size" in error["message"]
    assert steps[-1]["peak_kib"] < 200 * 1024

    code, steps, stderr = _probe(bombs["zip_bomb"], 512 * hostile.MIB)
    assert code == -signal.SIGABRT, (code, steps, stderr[-2000:])
    assert [s.get("name") for s in steps] == [None, "Hướng dẫn", "Thông tin chung"]  # dies in the criteria
    assert re.search(r"memory allocation of \d+ bytes failed", stderr), stderr[-2000:]


def test_openpyxl_refuses_the_xml_bomb(corpus: dict[str, Path]) -> None:
    assert openpyxl.xml.DEFUSEDXML is True
    # openpyxl wraps defusedxml's refusal: ValueError("Unable to read workbook: could not read strings ...")
    # raised from EntitiesForbidden(name='lol').
    with pytest.raises(ValueError, match="could not read strings") as exc:
        openpyxl.load_workbook(corpus["xml_bomb"])
    assert isinstance(exc.value.__cause__, defusedxml.common.EntitiesForbidden)


# --- far cells and many rows -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["million_rows", "stray_far_cell"])
def test_far_rows_leave_the_criteria_readable(corpus: dict[str, Path], name: str) -> None:
    _, codes = _criteria(corpus[name], nrows=400)
    assert all(code in codes for code in CODES)
    assert _key_values(corpus[name], hostile.INFO_SHEET)[hostile.UNIT_NAME_LABEL] == "Huyện Kbang"


def test_far_cell_sizes(corpus: dict[str, Path]) -> None:
    """Pinned: empty formatted rows add nothing to python-calamine's range, one far cell makes it dense
    (10 x 1,048,576 cells, ~330 MB while the sheet is held)."""
    sheets = {name: python_calamine.CalamineWorkbook.from_path(str(corpus[name])).get_sheet_by_name(
        hostile.CRITERIA_SHEET) for name in ("million_rows", "stray_far_cell")}
    assert (sheets["million_rows"].height, sheets["million_rows"].width) == (204, 10)
    assert sheets["stray_far_cell"].end == (hostile.MAX_ROW - 1, 9)
    member = hostile.sheet_member(BASE, hostile.CRITERIA_SHEET)
    base_xml = zipfile.ZipFile(BASE).read(member)
    with zipfile.ZipFile(corpus["million_rows"]) as zf:
        xml = zf.read(member)
    assert b'<dimension ref="A1:XFD1048576"/>' in xml
    last = max(int(n) for n in re.findall(rb'<row r="(\d+)"', base_xml))
    assert xml.count(b"<row ") == base_xml.count(b"<row ") + hostile.MAX_ROW - last
    assert xml.endswith(zipfile.ZipFile(BASE).read(member).split(b"</sheetData>")[1])


def test_corner_cell_aborts_calamine(tmp_path: Path) -> None:
    """Pinned: reading a sheet with a cell at XFD1048576 aborts the process (SIGABRT) with Rust's "memory
    allocation of 549755813888 bytes failed" (the dense range, 16384 x 1048576 cells of 32 bytes). The
    probe's 4 GiB address-space limit makes that so even where the kernel would promise 550 GB."""
    path = hostile.corner_cell(tmp_path, BASE)
    assert path.name == f"{BASE.stem}_corner_cell.xlsx"
    code, steps, stderr = _probe(path, 4 * hostile.GIB)
    assert code == -signal.SIGABRT, (code, steps, stderr[-2000:])
    assert [s.get("name") for s in steps] == [None, "Hướng dẫn", "Thông tin chung"]  # dies in the criteria
    assert re.search(r"memory allocation of \d+ bytes failed", stderr), stderr[-2000:]


# --- changed values ----------------------------------------------------------------------------------------

def test_wrong_version(corpus: dict[str, Path]) -> None:
    path = corpus["wrong_version"]
    meta, base_meta = _key_values(path, hostile.META_SHEET), _key_values(BASE, hostile.META_SHEET)
    assert meta["rulebook_version"] == "2019.1" and meta["rulebook_hash"] == hostile.WRONG_HASH
    assert base_meta["rulebook_hash"] != hostile.WRONG_HASH
    assert {k: v for k, v in meta.items() if k not in ("rulebook_version", "rulebook_hash")} == {
        k: v for k, v in base_meta.items() if k not in ("rulebook_version", "rulebook_hash")}
    changed = {hostile.sheet_member(BASE, hostile.META_SHEET), "xl/sharedStrings.xml"}
    with zipfile.ZipFile(path) as zf, zipfile.ZipFile(BASE) as zb:
        assert zf.namelist() == zb.namelist()
        assert [n for n in zb.namelist() if zf.read(n) != zb.read(n) and n not in changed] == []


def test_wrong_version_appends_a_shared_string_used_elsewhere(tmp_path: Path) -> None:
    """When the version's shared string is also used by another cell, that cell keeps reading 2020.1."""
    sst = hostile._shared_strings(BASE)
    index = sst.index("2020.1")
    info = hostile.sheet_member(BASE, hostile.INFO_SHEET)
    shared = tmp_path / "shared.xlsx"
    hostile.rewrite_member(BASE, shared, info, lambda data: re.sub(
        rb'<c r="B8" s="6"/>', f'<c r="B8" s="6" t="s"><v>{index}</v></c>'.encode(), data))
    assert _key_values(shared, hostile.INFO_SHEET)["Fax"] == "2020.1"
    out = tmp_path / "out"
    out.mkdir()
    path = hostile.wrong_version(out, shared)
    assert _key_values(path, hostile.INFO_SHEET)["Fax"] == "2020.1"
    assert _key_values(path, hostile.META_SHEET)["rulebook_version"] == "2019.1"
    sst_xml = zipfile.ZipFile(path).read("xl/sharedStrings.xml").decode()
    assert f'uniqueCount="{len(sst) + 1}"' in sst_xml and sst_xml.endswith("<si><t>2019.1</t></si></sst>")


def test_formula_no_cache(corpus: dict[str, Path]) -> None:
    path = corpus["formula_no_cache"]
    assert path.name == f"{BASE.stem}_formula.xlsx"
    cols, codes = _criteria(path)
    _, base_codes = _criteria(BASE)
    titles = {"value": "Giá trị", "numerator": "Tử số", "denominator": "Mẫu số"}
    ws = openpyxl.load_workbook(path)[hostile.CRITERIA_SHEET]
    for code in hostile.FORMULA_CODES:
        assert isinstance(base_codes[code][cols["Tử số"]], float)  # a ratio row with figures in base
        for title in titles.values():
            assert codes[code][cols[title]] == ""  # no cached value: python-calamine reads an empty cell
        row = next(r for r in ws.iter_rows() if r[0].value == code)
        assert [row[cols[t]].value for t in titles.values()] == list(hostile.FORMULAS.values())
    assert openpyxl.load_workbook(path, read_only=True)[hostile.META_SHEET].sheet_state == "veryHidden"
    assert _key_values(path, hostile.META_SHEET) == _key_values(BASE, hostile.META_SHEET)


def test_merged_inputs(corpus: dict[str, Path]) -> None:
    path = corpus["merged_inputs"]
    cols, codes = _criteria(path)
    _, base_codes = _criteria(BASE)
    with zipfile.ZipFile(path) as zf:
        xml = zf.read(hostile.sheet_member(BASE, hostile.CRITERIA_SHEET)).decode()
    merges = set(re.findall(r'<mergeCell ref="([A-Z]+\d+:[A-Z]+\d+)"', xml))
    for code in hostile.MERGED_CODES:
        row = next(i for i, r in enumerate(_rows(path, hostile.CRITERIA_SHEET), 1) if r[0] == code)
        assert f"E{row}:F{row}" in merges
        assert codes[code][cols["Giá trị"]] == base_codes[code][cols["Giá trị"]] != ""
        assert codes[code][cols["Tử số"]] == ""


def test_control_chars(corpus: dict[str, Path]) -> None:
    path = corpus["control_chars"]
    cols, codes = _criteria(path)
    evidence = cols["Tài liệu kiểm chứng"]
    assert codes[hostile.LONG_TEXT_CODE][evidence] == hostile.LONG_TEXT and len(hostile.LONG_TEXT) == 40_000
    assert codes[hostile.CONTROL_TEXT_CODE][evidence] == hostile.CONTROL_TEXT  # \x01, \x07, \x1b come back
    assert {"\x01", "\x07", "\x1b"} <= set(codes[hostile.CONTROL_TEXT_CODE][evidence])
    assert _key_values(path, hostile.INFO_SHEET)[hostile.UNIT_NAME_LABEL] == "Huyện Kbang"


@pytest.mark.parametrize("name", sorted(hostile.HOSTILE_DISTRICTS))
def test_hostile_district_names_are_strings(corpus: dict[str, Path], name: str) -> None:
    path = corpus[name]
    assert _key_values(path, hostile.INFO_SHEET)[hostile.UNIT_NAME_LABEL] == hostile.HOSTILE_DISTRICTS[name]
    assert _key_values(path, hostile.META_SHEET)["district"] == "Huyện Kbang"
    with zipfile.ZipFile(path) as zf:
        xml = zf.read(hostile.sheet_member(BASE, hostile.INFO_SHEET)).decode()
    cell = re.search(r'<c r="B5"[^>]*>.*?</c>', xml).group(0)
    assert 't="inlineStr"' in cell and "<f>" not in cell
