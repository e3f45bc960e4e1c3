"""The batch against a second hostile corpus (issue 16, its input half; tests/hostile2.py builds it): the
parent process never reads an input, whatever the worker died of; names the outputs cannot hold; absurd
numbers; a return that claims another district; other compression methods, other parts of the archive,
.ods and .xls variants; FIFOs, devices, sparse giants and a tree past PATH_MAX. The good returns beside
them are still ranked, ranking.xlsx loads, the inputs are unchanged and the exit code is 1."""

from __future__ import annotations

import builtins
import bz2
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import struct
import sys
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import python_calamine
from test_hostile_corpus import _probe

import hostile
import hostile2
from bench.procmem import measure
from kbang_egov.operations.pipeline import bundled_samples_dir, process_file, read_files, run_batch, settle_duplicates
from kbang_egov.reading import inbox as inbox_module
from kbang_egov.rules.results import REJECTED, SCORED, SUPERSEDED
from kbang_egov.text import file_label

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals, FIFOs, /proc and /dev are Linux's")

SAMPLES = sorted(bundled_samples_dir().glob("*.xlsx"))
KBANG = bundled_samples_dir() / "CQDT_2020_Huyen_Kbang.xlsx"
CHU_SE = bundled_samples_dir() / "CQDT_2020_Huyen_Chu_Se.xlsx"
# Characters no output may hold: XML 1.0's illegal ones, ESC, line breaks inside a value, bidi controls.
UNSAFE = ("\x1b", "\ufffe", "\uffff", "\u202e", "\x00")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """{builder: its file}: the second corpus built once from Kbang's sample. Read only: a test that needs these
    files in its own inbox copies them there (every builder writes the same bytes each time)."""
    folder = tmp_path_factory.mktemp("second")
    return {name: fn(folder, KBANG) for name, fn in hostile2.BUILDERS.items()}


@pytest.fixture(scope="module")
def outcomes(corpus, rb, districts) -> dict[str, object]:
    """Every file of the corpus read as the batch reads it, in workers (two of them would abort a reader)."""
    names = list(corpus)
    got = read_files([corpus[n] for n in names], next(iter(corpus.values())).parent, rb, districts, workers=2)
    return dict(zip(names, got, strict=True))


@contextlib.contextmanager
def _deadline(seconds: int):
    """Fail instead of hanging for ever (a FIFO opened for reading blocks until someone writes)."""
    def fail(signum, frame):  # noqa: ANN001
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --- the corpus is what it claims --------------------------------------------------------------------------

def _infos(path: Path) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: i for i in zf.infolist()}


def test_the_second_corpus_is_what_it_claims(corpus):
    sheet = hostile.sheet_member(KBANG, hostile.CRITERIA_SHEET)
    assert _infos(corpus["deflate64"])[sheet].compress_type == 9
    with pytest.raises(NotImplementedError):
        zipfile.ZipFile(corpus["deflate64"]).read(sheet)
    lying = _infos(corpus["bzip2_lying"])[sheet]
    assert (lying.compress_type, lying.file_size) == (zipfile.ZIP_BZIP2, hostile2.LYING_SIZE)
    data = corpus["bzip2_lying"].read_bytes()
    name_len, extra_len = struct.unpack_from("<HH", data, lying.header_offset + 26)
    start = lying.header_offset + 30 + name_len + extra_len
    inflater, inflated = bz2.BZ2Decompressor(), 0
    stream = data[start:start + lying.compress_size]
    while not inflater.eof:
        inflated += len(inflater.decompress(stream, hostile.MIB))
        stream = b""
    assert inflated > hostile2.BZIP2_INFLATED > 100 * hostile2.LYING_SIZE and lying.compress_size < 50_000
    assert _infos(corpus["lzma_strings"])["xl/sharedStrings.xml"].compress_type == zipfile.ZIP_LZMA
    assert all(i.flag_bits & 1 for i in _infos(corpus["zip_password"]).values())
    assert b"<!DOCTYPE" in zipfile.ZipFile(corpus["dtd_in_rels"]).read("xl/_rels/workbook.xml.rels")
    assert _infos(corpus["ods_bzip2"])["content.xml"].compress_type == zipfile.ZIP_BZIP2
    assert b"<!ENTITY" in zipfile.ZipFile(corpus["ods_dtd"]).read("content.xml")
    xml = zipfile.ZipFile(corpus["r_not_first"]).read(sheet)
    assert b'<c s="0" r="XFD1048576"' in xml and b'<c r="XFD' not in xml
    assert b"r = 'xfd01048576'" in zipfile.ZipFile(corpus["lowercase_reference"]).read(sheet)
    assert len(zipfile.ZipFile(corpus["regex_heavy_sheet"]).read(sheet)) > 3 * hostile.MIB
    assert len(zipfile.ZipFile(corpus["regex_heavy_workbook"]).read("xl/workbook.xml")) > 3 * hostile.MIB
    assert all(p.stat().st_size < 100_000 for p in corpus.values())
    # Pinned: of two members of one name calamine reads the last (the guard must cut that one), as zipfile does.
    assert [i.filename for i in zipfile.ZipFile(corpus["duplicate_member"]).infolist()].count(sheet) == 2
    far = python_calamine.CalamineWorkbook.from_path(str(corpus["duplicate_member"])).get_sheet_by_name(
        hostile.CRITERIA_SHEET)
    assert far.end == (hostile.MAX_ROW - 1, 9)


def test_calamine_aborts_on_a_far_cell_whose_reference_is_not_first(corpus):
    """Pinned: what the guard's cut spares the workers (as corner_cell: the whole grid, then SIGABRT)."""
    code, steps, stderr = _probe(corpus["r_not_first"], 4 * hostile.GIB)
    assert code == -signal.SIGABRT, (code, steps, stderr[-2000:])


# --- each file's finding -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(hostile2.REJECTED_BY))
def test_each_bad_file_is_rejected_with_its_code(outcomes, name):
    o = outcomes[name]
    assert o.record.status == REJECTED and o.record.codes == (hostile2.REJECTED_BY[name],)
    assert len(o.record.sha256) == 64


@pytest.mark.parametrize(("name", "where"), [
    ("r_not_first", "XFD1048576"), ("lowercase_reference", "XFD1048576"), ("duplicate_member", "J1048576"),
    ("unreferenced_cells", hostile2.unreferenced_place(KBANG)), ("regex_heavy_sheet", hostile2.REGEX_FAR_CELL),
    ("regex_heavy_workbook", None),
])
def test_far_cells_however_written_are_cut_and_located(outcomes, rb, districts, name, where):
    o = outcomes[name]
    clean = process_file(KBANG, "k.xlsx", rb, districts)
    assert o.record.status == SCORED and o.result.total.scaled == clean.result.total.scaled
    assert [(f.sheet, f.cell) for f in o.findings if f.code == "sheet-oversized"] == \
        ([(hostile.CRITERIA_SHEET, where)] if where else [])


def test_absurd_numbers_are_located_findings_and_the_rest_is_scored(outcomes, rb, districts):
    o = outcomes["absurd_numbers"]
    assert o.record.status == SCORED
    found = sorted((f.code, f.cell) for f in o.findings if f.code in ("number-too-large", "input-unparseable"))
    assert found == [("input-unparseable", "H10"), ("input-unparseable", "H9"), ("number-too-large", "F7"),
                     ("number-too-large", "H202"), ("number-too-large", "H6"), ("number-too-large", "H8")]
    clean = process_file(KBANG, "k.xlsx", rb, districts).result.criteria
    got = o.result.criteria
    changed = {a.code for a, b in zip(got, clean, strict=True) if a.score != b.score}
    assert changed == {"SS.I.1"}  # its numerator is the 310-digit text: 0 points, the others as they were
    assert all(abs(s.achieved) < 1000 and abs(s.self_sum) < 1000 for s in o.result.subtotals.values())


def test_a_return_claiming_another_district_never_replaces_its_return(corpus, rb, districts, tmp_path):
    real = tmp_path / CHU_SE.name
    real.write_bytes(CHU_SE.read_bytes())
    os.utime(real, (1_600_000_000, 1_600_000_000))
    os.utime(corpus["impostor"], (1_700_000_000, 1_700_000_000))  # newer than Chư Sê's own
    got = [process_file(p, p.name, rb, districts) for p in (real, corpus["impostor"])]
    settle_duplicates(got)
    assert [(o.record.status, o.record.codes) for o in got] == [(SCORED, ()), (REJECTED, ("district-mismatch",))]
    [f] = got[1].findings
    assert (f.sheet, f.cell, f.params["name"], f.params["template"]) == \
        (hostile.INFO_SHEET, "B5", hostile2.IMPOSTOR_NAME, "Huyện Kbang")


def test_returns_saved_in_one_second_are_ordered_by_their_nanoseconds(rb, districts, tmp_path):
    newer, older = tmp_path / "a_moi.xlsx", tmp_path / "b_cu.xlsx"  # by name, b would win
    for p, ns in ((newer, 1_700_000_000_900_000_000), (older, 1_700_000_000_100_000_000)):
        p.write_bytes(KBANG.read_bytes())
        os.utime(p, ns=(ns, ns))
    got = [process_file(p, p.name, rb, districts) for p in (newer, older)]
    settle_duplicates(got)
    assert [o.record.status for o in got] == [SCORED, SUPERSEDED]
    assert got[1].findings[0].params["used"] == "a_moi.xlsx"


@pytest.mark.parametrize("suffix", [".xlsb", ".xltx", ".xltm", ".xlt", ".ots", ".fods", ".et", ".numbers"])
def test_look_alike_types_are_reported_not_skipped(rb, districts, tmp_path, suffix):
    p = tmp_path / f"bao_cao{suffix}"
    p.write_bytes(KBANG.read_bytes())
    from kbang_egov.reading.inbox import discover_files

    assert discover_files(tmp_path)[0] == [p]
    o = process_file(p, p.name, rb, districts)
    assert (o.record.status, o.record.codes, len(o.record.sha256)) == (REJECTED, ("file-type-unsupported",), 64)


# --- the parent process reads no input -------------------------------------------------------------------

def _crash_on(names: set[str]):  # noqa: ANN202
    """process_file, except that the worker dies (as calamine aborts) on the files named."""
    def process(path, rel, *args, **kwargs):  # noqa: ANN001, ANN202
        if Path(path).name in names:
            os.abort()
        return process_file(path, rel, *args, **kwargs)

    return process


def _forbid_in_parent(monkeypatch, folder: Path) -> None:
    """Any open or stat of a path under folder by this process raises; the workers it forks may."""
    parent, prefix = os.getpid(), str(folder)

    def guard(real):  # noqa: ANN001, ANN202
        def call(path, *args, **kwargs):  # noqa: ANN001, ANN202
            if os.getpid() == parent and isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(prefix):
                raise AssertionError(f"the parent touched {path}")
            return real(path, *args, **kwargs)

        return call

    for module, name in ((os, "open"), (os, "stat"), (os, "lstat"), (io, "open"), (builtins, "open")):
        monkeypatch.setattr(module, name, guard(getattr(module, name)))


CRASHING = {"corner_cell": "XFD1048576", "r_not_first": "XFD1048576", "deflate64": None, "bzip2_lying": None,
            "regex_heavy_sheet": "J6000"}


def test_after_a_crash_the_file_is_looked_at_by_a_worker_not_the_parent(corpus, rb, districts, tmp_path,
                                                                         monkeypatch):
    """What the parent once did itself after a worker died: hash the file, stat it, look for its far cell
    (Deflate64 raised NotImplementedError there, the lying bzip2 member inflated whole, the crafted sheet
    took minutes of regular expressions). Now a second worker does, within the same limits."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    paths = [hostile.corner_cell(folder, KBANG)] + \
        [shutil.copyfile(corpus[n], folder / corpus[n].name) for n in CRASHING if n != "corner_cell"]
    good = folder / SAMPLES[0].name
    good.write_bytes(SAMPLES[0].read_bytes())
    monkeypatch.setattr("kbang_egov.operations.pipeline.process_file", _crash_on({p.name for p in paths}))
    _forbid_in_parent(monkeypatch, folder)
    with _deadline(300):
        got = read_files([*paths, good], folder, rb, districts, workers=2, file_timeout=60)
    monkeypatch.undo()
    for path, o, where in zip(paths, got, CRASHING.values(), strict=False):
        [f] = o.findings
        assert (f.code, f.cell or None) == ("file-crashed", where), path.name
        assert "SIGABRT" in f.message
        st = path.stat()
        assert (o.record.sha256, o.record.size, o.record.modified_ns) == \
            (hashlib.sha256(path.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns)
    assert got[-1].record.status == SCORED


def test_a_fifo_swapped_in_while_the_worker_reads_blocks_nobody(rb, districts, tmp_path, monkeypatch):
    """The worker dies after the file became a FIFO: the parent used to open it to locate the crash, and
    blocked for ever holding the lock."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    swap = folder / "swap.xlsx"
    swap.write_bytes(KBANG.read_bytes())

    def process(path, rel, *args, **kwargs):  # noqa: ANN001, ANN202
        os.unlink(path)
        os.mkfifo(path)
        os.abort()

    monkeypatch.setattr("kbang_egov.operations.pipeline.process_file", process)
    _forbid_in_parent(monkeypatch, folder)
    with _deadline(120):
        [o] = read_files([swap], folder, rb, districts, workers=1, file_timeout=30)
    monkeypatch.undo()
    [f] = o.findings
    assert (f.code, f.cell, o.record.sha256, o.record.size) == ("file-crashed", "", "", 0)


def test_a_folder_that_cannot_be_read_is_a_finding_of_the_run(tmp_path, rb, districts, monkeypatch):
    inbox = tmp_path / "inbox"
    (inbox / "khoa").mkdir(parents=True)
    (inbox / SAMPLES[0].name).write_bytes(SAMPLES[0].read_bytes())
    (inbox / "khoa" / SAMPLES[1].name).write_bytes(SAMPLES[1].read_bytes())
    real = inbox_module.open_dir

    def open_dir(base, parts=()):  # noqa: ANN001, ANN202
        if parts == ("khoa",):
            raise PermissionError(13, "Permission denied")
        return real(base, parts)

    monkeypatch.setattr(inbox_module, "open_dir", open_dir)
    run = run_batch(inbox, tmp_path / "out", rb, districts, workers=1)
    [rec] = [f for f in run.files if f.status == REJECTED]
    assert (rec.file, rec.codes) == ("khoa/", ("folder-unreadable",))
    assert [(f.code, f.file) for f in run.findings if f.code == "folder-unreadable"] == \
        [("folder-unreadable", "khoa/")]
    assert [d.file for d in run.districts] == [SAMPLES[0].name]
    assert "exit code: 1" in Path(run.log).read_text(encoding="utf-8")
    bad = pd.read_excel(tmp_path / "out" / "ranking.xlsx", sheet_name="Tệp lỗi", dtype=str, engine="calamine")
    assert bad.iloc[:, 0].tolist() == ["khoa/"]


def test_no_name_forges_or_garbles_a_line_of_the_summary_or_the_log(tmp_path, rb, districts):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / hostile2.FORGING_NAME).write_bytes(b"%PDF-1.4 not a workbook")  # rejected: named in both
    (inbox / os.fsdecode(hostile2.NON_UTF8_NAME)).write_bytes(SAMPLES[0].read_bytes())
    (inbox / hostile2.ILLEGAL_XML_NAME).write_bytes(SAMPLES[1].read_bytes())
    run = run_batch(inbox, tmp_path / "out", rb, districts, workers=1)
    from kbang_egov.reporting.summary import summary_text

    for text in (summary_text(run, 1.0), Path(run.log).read_text(encoding="utf-8")):
        lines = text.splitlines()
        assert not any(ch in text for ch in UNSAFE)
        assert not any(line.lower().startswith("notice: forged") for line in lines)
        assert any("dòng?notice: forged line?[31m.xlsx" in line for line in lines)
    assert sorted(d.file for d in run.districts) == ["Báo cáo.xlsx", "xgnp.xlsx"]


# --- one night over all of it ------------------------------------------------------------------------------

def _night_inbox(inbox: Path, corpus: dict[str, Path]) -> tuple[dict[str, str], dict[str, str], list]:
    """The inbox of the night: every district's good return, twelve of them under hostile names, places or
    forms, beside every bad file of the second corpus (copied from `corpus`) and every odd entry. Returns
    ({district file as the outputs name it: its stem's sample}, {bad file: its code}, things to close)."""
    inbox.mkdir()
    others = [s for s in SAMPLES if s not in (KBANG, CHU_SE)]
    used: dict[str, Path] = {}

    def put(name: str | bytes, sample: Path, folder: Path = inbox) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        raw = os.path.join(os.fsencode(folder), name if isinstance(name, bytes) else os.fsencode(name))
        with open(raw, "wb") as fh:
            fh.write(sample.read_bytes())
        label = "/".join(file_label(os.fsdecode(p)) for p in os.path.relpath(raw, os.fsencode(inbox)).split(b"/"))
        used[label] = sample
        return Path(os.fsdecode(raw))

    put(hostile2.NON_UTF8_NAME, others[0])
    put(hostile2.FORGING_NAME, others[1])
    put(hostile2.ILLEGAL_XML_NAME, others[2])
    deep = hostile2.write_deep(inbox, others[3].read_bytes())
    used["/".join(deep)] = others[3]
    when = 1_700_000_000 * 10**9
    for name, ns in (("a_moi.xlsx", when + 900_000_000), ("b_cu.xlsx", when + 100_000_000)):
        os.utime(put(name, others[4]), ns=(ns, ns))
    del used["b_cu.xlsx"]
    put(others[5].stem + ".xls", others[5])  # an .xlsx under an .xls name
    variants = [name for name in hostile2.SCORED if name != "absurd_numbers"]  # that one is Kbang's own
    for name, sample in zip(variants, others[6:12], strict=True):
        folder = inbox / "bien_the" / name
        folder.mkdir(parents=True)
        used[hostile2.BUILDERS[name](folder, sample).relative_to(inbox).as_posix()] = sample
    for sample in others[12:]:
        put(sample.name, sample)
    put(CHU_SE.name, CHU_SE)
    (inbox / "kbang").mkdir()
    used["kbang/" + hostile2.absurd_numbers(inbox / "kbang", KBANG).name] = KBANG
    bad = {}
    (inbox / "xau").mkdir()
    for name, code in hostile2.REJECTED_BY.items():
        bad["xau/" + shutil.copyfile(corpus[name], inbox / "xau" / corpus[name].name).name] = code
    os.utime(inbox / "xau" / "impostor_chu_se.xlsx", (2_000_000_000, 2_000_000_000))  # the newest of all
    (inbox / "la").mkdir()
    sock = hostile2.place_inbox_oddities(inbox / "la", KBANG)
    bad.update({f"la/{name}": code for name, code in hostile2.ODD_ENTRIES.items()})
    bad["b_cu.xlsx"] = "district-duplicate"
    return {label: sample.stem for label, sample in used.items()}, bad, [sock]


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_one_night_over_the_second_corpus(corpus, tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    used, bad, keep = _night_inbox(inbox, corpus)
    before = hostile2.fingerprint(inbox)
    try:
        with _deadline(600):
            m = measure([sys.executable, "batch.py", "run", str(inbox), "--out", str(out), "--json"],
                        log_path=str(tmp_path / "run.log"))
    finally:
        for sock in keep:
            sock.close()
    text = (tmp_path / "run.log").read_text(encoding="utf-8", errors="replace")
    assert m["exit"] == 1, text[-3000:]
    assert max(m["tree_peak_mb"], m["wait4_maxrss_mb"]) < 500, m  # the 3 GB and 30 GB files were not read
    assert hostile2.fingerprint(inbox) == before  # not a byte, a name or a time changed

    summary = json.loads(text[text.index("{"):])
    assert not any(ch in value for value in _strings(summary) for ch in UNSAFE)
    assert len(summary["ranking"]) == 17
    ranked = {r["file"]: r["district"] for r in summary["ranking"]}
    assert set(ranked) == set(used), set(ranked) ^ set(used)
    assert {"Báo cáo.xlsx", "dòng?notice: forged line?[31m.xlsx", "xgnp.xlsx", "a_moi.xlsx"} <= set(ranked)
    assert ranked["CQDT_2020_Huyen_Chu_Se.xlsx"] == "Huyện Chư Sê"  # its own return, not the impostor
    assert {r["file"]: r["codes"] for r in summary["rejected"]} == {f: [c] for f, c in bad.items()}

    # Everything an officer or a script reads holds only what XML 1.0, CSV and a log line can hold.
    wb = openpyxl.load_workbook(out / "ranking.xlsx")  # openpyxl refuses malformed XML
    texts = [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert "Báo cáo.xlsx" in texts and any("Đà Lạt" in t for t in texts)
    assert not any(ch in t for t in texts for ch in UNSAFE)
    for name in ("ranking.csv", "scores.csv", "findings.csv"):
        body = (out / name).read_text(encoding="utf-8-sig")
        assert not any(ch in body for ch in UNSAFE), name
        assert len(pd.read_csv(out / name, dtype=str, encoding="utf-8-sig"))
    [log] = (out / "logs").glob("run_*.log")
    lines = log.read_text(encoding="utf-8").splitlines()
    assert not any(ch in line for line in lines for ch in UNSAFE)
    assert not any(line.startswith("notice: forged") for line in lines)
    assert "exit code: 1" in lines
