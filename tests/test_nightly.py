"""The nightly run over whatever landed in the folder: hostile and broken files are reported with a code and
a place, good submissions are ranked, inputs stay as they were, and a killed run loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner

import hostile
from bench.procmem import measure
from kbang_egov.cli import main
from kbang_egov.operations.pipeline import bundled_samples_dir, process_file, read_files
from kbang_egov.reporting.runlog import keep_history
from kbang_egov.rules.districts import load_districts
from kbang_egov.rules.results import REJECTED, SCORED

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted(bundled_samples_dir().glob("*.xlsx"))
KBANG = bundled_samples_dir() / "CQDT_2020_Huyen_Kbang.xlsx"
posix_only = pytest.mark.skipif(sys.platform != "linux", reason="signals and /proc are Linux")

# Each bad input and the one finding that rejects it.
REJECTED_BY = {
    "zip_bomb": "file-too-large",
    "zip_bomb_lying": "file-too-large",
    "xml_bomb": "file-unsafe-xml",
    "encrypted": "file-encrypted",
    "truncated": "file-truncated",
    "pdf_renamed": "file-wrong-type",
    "docx_renamed": "file-wrong-type",
    "doc_renamed": "file-wrong-type",
    "empty": "file-empty",
    "html_as_xls": "file-wrong-type",
    "csv_as_xls": "file-wrong-type",
    "foreign_workbook": "file-not-template",
    "wrong_version": "template-version",
    "formula_district": "district-unknown",
    "plus_district": "district-unknown",
    "at_district": "district-unknown",
}
# Damaged but scoreable: still ranked, with located findings (or none).
SCORED_VARIANTS = ("million_rows", "stray_far_cell", "corner_cell", "formula_no_cache", "merged_inputs",
                   "control_chars")
LOCKS = ("office_lock", "libreoffice_lock")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    return {name: fn(folder, KBANG) for name, fn in hostile.BUILDERS.items()}


def _codes(outcome) -> list[tuple[str, str, str]]:
    return [(f.code, f.sheet, f.cell) for f in outcome.findings]


@pytest.mark.parametrize("name", sorted(REJECTED_BY))
def test_each_bad_file_is_rejected_with_its_code(corpus, rb, districts, name):
    o = process_file(corpus[name], corpus[name].name, rb, districts)
    assert o.record.status == REJECTED
    assert o.record.codes == (REJECTED_BY[name],)
    assert [f.code for f in o.findings if f.rejects] == [REJECTED_BY[name]]
    assert o.record.reason.startswith(o.findings[0].message[:20])


def test_a_zip_bomb_is_located_at_its_sheet(corpus, rb, districts):
    for name in hostile.BOMBS:
        [f] = process_file(corpus[name], corpus[name].name, rb, districts).findings
        assert (f.code, f.sheet, f.params["member"]) == ("file-too-large", hostile.CRITERIA_SHEET,
                                                         "xl/worksheets/sheet3.xml")


def test_wrong_version_and_unknown_district_are_located(corpus, rb, districts):
    o = process_file(corpus["wrong_version"], "v.xlsx", rb, districts)
    assert _codes(o) == [("template-version", "_meta", "")]
    o = process_file(corpus["formula_district"], "f.xlsx", rb, districts)
    [f] = o.findings
    assert (f.code, f.sheet, f.cell, f.district) == ("district-unknown", hostile.INFO_SHEET, "B5",
                                                      hostile.HOSTILE_DISTRICTS["formula_district"])


def test_a_million_formatted_rows_read_in_bounded_memory(corpus, rb, districts):
    o = process_file(corpus["million_rows"], "m.xlsx", rb, districts)
    same = process_file(KBANG, "k.xlsx", rb, districts)
    assert o.record.status == SCORED and _codes(o) == _codes(same)  # Kbang's own slips, nothing more
    assert o.result.total.scaled == same.result.total.scaled


def test_a_far_stray_cell_is_a_located_warning(corpus, rb, districts):
    o = process_file(corpus["stray_far_cell"], "s.xlsx", rb, districts)
    assert o.record.status == SCORED
    assert [(f.code, f.sheet, f.cell) for f in o.findings if f.code == "sheet-oversized"] == \
        [("sheet-oversized", hostile.CRITERIA_SHEET, "J1048576")]


def test_formulas_without_cached_values_are_missing_inputs_at_their_cells(corpus, rb, districts):
    o = process_file(corpus["formula_no_cache"], "f.xlsx", rb, districts)
    assert o.record.status == SCORED
    missing = {f.subject for f in o.findings if f.code == "input-missing"}
    assert missing == set(hostile.FORMULA_CODES)
    assert all("công thức" in f.message for f in o.findings if f.code == "input-missing")


def test_merged_input_cells_are_located(corpus, rb, districts):
    o = process_file(corpus["merged_inputs"], "m.xlsx", rb, districts)
    merged = [(f.subject, f.sheet) for f in o.findings if f.code == "cell-merged"]
    assert merged == [(code, hostile.CRITERIA_SHEET) for code in hostile.MERGED_CODES]


def test_a_cell_at_xfd1048576_is_cut_before_calamine_builds_the_grid(corpus, rb, districts):
    """calamine would allocate 1,048,576 x 16,384 cells and abort the process; the far cells are cut first."""
    o = process_file(corpus["corner_cell"], "c.xlsx", rb, districts)
    assert o.record.status == SCORED
    assert [(f.code, f.sheet, f.cell) for f in o.findings if f.code == "sheet-oversized"] == \
        [("sheet-oversized", hostile.CRITERIA_SHEET, "XFD1048576")]


def _abort_like_calamine(path, rel, *args, **kwargs):
    if rel.endswith("_corner_cell.xlsx"):
        os.write(2, b"memory allocation of 549755813888 bytes failed\n")
        os.abort()
    return process_file(path, rel, *args, **kwargs)


@posix_only
def test_a_file_that_aborts_its_worker_is_a_finding_at_its_far_cell(corpus, rb, districts, tmp_path, monkeypatch):
    """A native crash (what calamine did on XFD1048576 before the guard cut such cells) kills only the
    worker: the file is reported at its far cell and the next file is read by a fresh worker."""
    monkeypatch.setattr("kbang_egov.operations.pipeline.process_file", _abort_like_calamine)  # inherited by forked workers
    folder = tmp_path / "inbox"
    folder.mkdir()
    crash = hostile.corner_cell(folder, KBANG)
    good = folder / KBANG.name
    good.write_bytes(KBANG.read_bytes())
    outcomes = read_files([crash, good], folder, rb, districts, workers=1)
    [f] = outcomes[0].findings
    assert (f.code, f.sheet, f.cell) == ("file-crashed", hostile.CRITERIA_SHEET, "XFD1048576")
    assert "SIGABRT: memory allocation of 549755813888 bytes failed" in f.message
    assert outcomes[1].record.status == SCORED


def _mixed_folder(folder: Path) -> tuple[set[str], dict[str, str]]:
    """Good submissions for all 17 districts (6 of them as damaged-but-scoreable variants), every bad
    input, and two Office lock files. Returns (districts expected in the ranking, {bad file: its code})."""
    folder.mkdir()
    variant_bases = dict(zip(SCORED_VARIANTS, SAMPLES[:len(SCORED_VARIANTS)], strict=True))
    for name, base in variant_bases.items():
        sub = folder / name
        sub.mkdir()
        hostile.BUILDERS[name](sub, base)  # a subfolder each: the variants share file names
    for sample in SAMPLES[len(SCORED_VARIANTS):]:
        (folder / sample.name).write_bytes(sample.read_bytes())
    bad = {}
    for name, code in sorted(REJECTED_BY.items()):
        sub = folder / "xau" / name
        sub.mkdir(parents=True)
        path = hostile.BUILDERS[name](sub, KBANG)
        bad[path.relative_to(folder).as_posix()] = code
    for name in LOCKS:
        hostile.BUILDERS[name](folder, SAMPLES[-1])
    return {d.name for d in load_districts()}, bad


@posix_only
def test_one_night_over_everything(tmp_path, rb):
    inputs = tmp_path / "thu_muc_nhan"
    expected_districts, bad = _mixed_folder(inputs)
    before = hostile.sha256_tree(inputs)
    mtimes = {p: p.stat().st_mtime_ns for p in inputs.rglob("*")}
    out = tmp_path / "out"
    m = measure([sys.executable, "batch.py", "run", str(inputs), "--out", str(out), "--json"],
                log_path=str(tmp_path / "run.log"))
    log = (tmp_path / "run.log").read_text(encoding="utf-8", errors="replace")
    assert m["exit"] == 1, log
    assert max(m["tree_peak_mb"], m["wait4_maxrss_mb"]) < 500, m

    assert hostile.sha256_tree(inputs) == before  # not one byte changed, nothing added or removed
    assert {p: p.stat().st_mtime_ns for p in inputs.rglob("*")} == mtimes

    summary = json.loads(log[log.index("{"):])
    assert {r["district"] for r in summary["ranking"]} == expected_districts
    assert summary["files"]["skipped"] == {"lock": 2}
    assert {r["file"]: r["codes"] for r in summary["rejected"]} == {f: [c] for f, c in bad.items()}

    findings = pd.read_csv(out / "findings.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    for file, code in bad.items():
        rows = findings[findings["file"] == file]
        assert rows["finding"].tolist() == [code], file  # each bad file reported exactly once
    bad_sheet = pd.read_excel(out / "ranking.xlsx", sheet_name="Tệp lỗi", dtype=str, engine="calamine")
    assert sorted(bad_sheet.iloc[:, 0].dropna().tolist()) == sorted(bad)
    # '=...', '+...', '@...' typed as the unit name stay text in the workbook (no formula anywhere).
    wb = openpyxl.load_workbook(out / "ranking.xlsx")
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", (ws.title, c.coordinate, c.value)
    texts = {c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    assert hostile.HOSTILE_DISTRICTS["formula_district"] in texts
    assert not any(ch in t for t in texts for ch in "\x01\x07\x1b")


@posix_only
@pytest.mark.parametrize("moment", ["reading", "writing"])
def test_sigkill_mid_run_keeps_the_previous_ranking(after_one_night, moment):
    out = after_one_night
    previous = (out / "ranking.xlsx").read_bytes()
    proc = subprocess.Popen([sys.executable, "batch.py", "run", "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    lock = out / ".kbang_egov.lock"  # always there; it names its holder while a run holds it
    while time.monotonic() < deadline and proc.poll() is None:
        if lock.stat().st_size and (moment == "reading" or list(out.glob("runs/.tmp-*/*"))):
            break
        time.sleep(0.0005)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers, at once
    proc.wait()
    assert (out / "ranking.xlsx").read_bytes() == previous  # the new outputs were not published yet
    ranking = pd.read_excel(out / "ranking.xlsx", sheet_name="Xếp hạng", header=3, engine="calamine")
    assert len(ranking) == 17
    rerun = CliRunner().invoke(main, ["run", "--out", str(out), "--json"])  # the next night, in this process
    assert rerun.exit_code == 1, rerun.output
    assert any("stale lock" in n for n in json.loads(rerun.stdout)["notices"])


@posix_only
def test_a_read_only_ranking_does_not_stop_the_next_run(after_one_night):
    """A run never writes over a published file: it publishes a new run folder, so a ranking an officer made
    read-only (or has open) stays as it was, in the previous run's folder and in history."""
    out = after_one_night
    previous = (out / "ranking.xlsx").read_bytes()
    (out / "ranking.xlsx").chmod(0o444)
    done = CliRunner().invoke(main, ["run", "--out", str(out), "--json"])
    assert done.exit_code == 1, done.output
    summary = json.loads(done.stdout)
    assert summary["outputs"][0] == str(out / "ranking.xlsx") and summary["notices"] == []
    assert (out / "ranking.xlsx").read_bytes() != previous
    assert previous in {p.read_bytes() for p in (out / "runs").glob("*/ranking.xlsx")}
    assert previous in {p.read_bytes() for p in (out / "history").glob("ranking_*.xlsx")}
    assert len(pd.read_excel(out / "ranking.xlsx", sheet_name="Xếp hạng", header=3, engine="calamine")) == 17


def test_each_run_keeps_a_dated_copy_and_a_log(after_one_night):
    out = after_one_night  # the shared night's copy and log, then one more real night
    proc = subprocess.run([sys.executable, "batch.py", "run", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    copies = sorted((out / "history").glob("ranking_*.xlsx"))
    assert len(copies) == 2
    assert len(pd.read_excel(copies[0], sheet_name="Xếp hạng", header=3, engine="calamine")) == 17
    logs = sorted((out / "logs").glob("run_*.log"))
    assert len(logs) == 2
    text = logs[-1].read_text(encoding="utf-8")
    assert "files read: 17; scored 17, rejected 0, superseded 0" in text
    assert "subtotal-consequence" in text and "timings (s): discover" in text


def test_runs_in_the_same_second_keep_a_copy_each(tmp_path):
    """Two runs that finish in the same second (the stamp has seconds) keep two copies, the second one's name
    with -2."""
    ranking = tmp_path / "ranking.xlsx"
    for content in (b"first", b"second"):
        ranking.write_bytes(content)
        keep_history([ranking], tmp_path / "out", "2020-12-15_020000")
    kept = tmp_path / "out" / "history"
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == {
        "ranking_2020-12-15_020000.xlsx": b"first", "ranking_2020-12-15_020000-2.xlsx": b"second"}


def _hang_on_corner(path, rel, *args, **kwargs):
    if rel.endswith("_corner_cell.xlsx"):
        time.sleep(60)
    return process_file(path, rel, *args, **kwargs)


@posix_only
def test_a_file_that_hangs_is_stopped_and_reported(rb, districts, tmp_path, monkeypatch):
    monkeypatch.setattr("kbang_egov.operations.pipeline.process_file", _hang_on_corner)  # inherited by forked workers
    folder = tmp_path / "inbox"
    folder.mkdir()
    hang = hostile.corner_cell(folder, KBANG)
    outcomes = read_files([hang], folder, rb, districts, workers=1, file_timeout=0.5)
    [f] = outcomes[0].findings
    assert (f.code, f.file) == ("file-timeout", hang.name)
    assert "quá 0,5 giây" in f.message and outcomes[0].record.codes == ("file-timeout",)
