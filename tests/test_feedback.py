"""Feedback workbooks: the return rebuilt at the same addresses, every finding's comment at the cell
findings.csv names, the summary sheet's figures, a clean return without a comment, feedback.csv."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from kbang_egov.forms.template import Filled, write_template
from kbang_egov.operations import feedback_pass
from kbang_egov.operations.feedback_pass import CSV_COLUMNS, FEEDBACK_CSV, FEEDBACK_DIR
from kbang_egov.operations.pipeline import process_file, run_batch
from kbang_egov.reading.reader import read_sheets
from kbang_egov.reporting.feedback import CHECKED, SUMMARY_SHEET, figures_for, write_feedback
from kbang_egov.rules.districts import match_district
from kbang_egov.rules.results import RunResult
from workbooks import convert_all, make_profile


def full_marks(rb) -> Filled:
    """A return with every point earned and every self-score and subtotal right: no finding at all. A percent
    is typed as text with its sign ("70%"): a percent cell's 0.7 is read as 70% with a warning, as the reader
    cannot see the cell's format (percent-fraction, tested in test_checks and test_validate)."""
    values, own = {}, {}
    for c in rb.scored_criteria:
        if c.kind == "ratio":
            values[c.code] = {"numerator": 14, "denominator": 14}
        elif c.kind in ("yesno", "choice"):
            values[c.code] = {"value": max(c.options, key=lambda o: o.points).label}
        else:
            top = max(c.tiers, key=lambda t: t.points)
            v = top.ge if top.ge is not None else (top.gt + 1 if top.gt is not None else c.value.max)
            values[c.code] = {"value": f"{v:g}%" if c.value.unit == "%" else v}
        own[c.code] = c.max
    declared = {g.code: g.max for g in rb.groups} | {p.code: p.max for p in rb.parts} | {rb.total_code: rb.total_max}
    return Filled(values=values, self_scores=own, declared=declared)


def with_slips(rb) -> Filled:
    """Full marks with planted slips: a wrong self-score, an unparseable figure, a missing input, a wrong
    subtotal."""
    f = full_marks(rb)
    values = {k: dict(v) for k, v in f.values.items()}
    own = dict(f.self_scores)
    own["SS.I.2"] = 0.5  # self-score-mismatch
    values["SS.I.1"] = {"numerator": "ba mươi", "denominator": 14}  # input-unparseable
    values["KQ.II.1"] = {}  # input-missing
    declared = dict(f.declared)
    declared["SS.III"] = 9  # a wrong subtotal
    return Filled(values=values, self_scores=own, declared=declared)


def write_returns(folder: Path, rb, districts, broken: str = "broken.xlsx") -> Path:
    """Three returns in folder: kbang.xlsx with the planted slips, iapa.xlsx at full marks, and `broken`,
    which is no workbook."""
    write_template(rb, folder, match_district("Kbang", districts), districts, filled=with_slips(rb),
                   file_name="kbang.xlsx")
    write_template(rb, folder, match_district("Ia Pa", districts), districts, filled=full_marks(rb),
                   file_name="iapa.xlsx")
    (folder / broken).write_bytes(b"PK\x03\x04 not a workbook")
    return folder


@pytest.fixture(scope="module")
def returns(tmp_path_factory, rb, districts) -> Path:
    """The three returns of write_returns, written once for the module. Never changed: a test works on a copy
    (fixture `inbox`)."""
    return write_returns(tmp_path_factory.mktemp("returns") / "in", rb, districts)


@pytest.fixture()
def inbox(returns, tmp_path) -> Path:
    """tmp_path/in: a copy of the three returns (the same bytes), the test's own to change."""
    return shutil.copytree(returns, tmp_path / "in")


@pytest.fixture(scope="module")
def first_run(returns, tmp_path_factory, rb, districts) -> tuple[RunResult, Path]:
    """One run over the three returns (`returns`), its feedback written by a worker process (workers=1): its
    result and its output folder. Never changed: tests read it, or run over a copy (fixture `after_first_run`)."""
    out = tmp_path_factory.mktemp("first-run") / "out"
    return run_batch(returns, out, rb, districts, workers=1), out


@pytest.fixture()
def after_first_run(first_run, tmp_path) -> Path:
    """tmp_path/out: a copy of first_run's output folder (links kept as links), the previous night of a test that
    runs over it, changes it or breaks it."""
    return shutil.copytree(first_run[1], tmp_path / "out", symlinks=True)


def comments(path: Path) -> dict[tuple[str, str], str]:
    wb = openpyxl.load_workbook(path)
    return {(ws.title, c.coordinate): c.comment.text for ws in wb for row in ws.iter_rows() for c in row if c.comment}


def test_run_writes_a_feedback_per_return_with_comments_at_the_cells_findings_csv_names(first_run):
    _, out = first_run
    assert (out / FEEDBACK_DIR / FEEDBACK_CSV).read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8
    rows = list(csv.DictReader(open(out / FEEDBACK_DIR / FEEDBACK_CSV, encoding="utf-8-sig")))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_file = {r["source_file"]: r for r in rows}
    assert {f: (r["district"], r["feedback_file"], r["status"]) for f, r in by_file.items()} == {
        "broken.xlsx": ("", "PhanHoi_tep_broken.xlsx", "not-scored"),
        "iapa.xlsx": ("Huyện Ia Pa", "PhanHoi_CQDT_2020_Huyen_Ia_Pa.xlsx", "ranked"),
        "kbang.xlsx": ("Huyện Kbang", "PhanHoi_CQDT_2020_Huyen_Kbang.xlsx", "ranked"),
    }
    findings = pd.read_csv(out / "findings.csv", dtype=str, keep_default_na=False)
    kb = findings[(findings.file == "kbang.xlsx") & (findings.cell != "")]
    expected = {(r.sheet, r.cell) for r in kb.itertuples()}
    assert {"self-score-mismatch", "input-unparseable", "input-missing"} <= set(kb.finding)
    assert "SS.III" in set(kb[kb.finding.str.startswith("subtotal-")].code)
    got = comments(out / FEEDBACK_DIR / "PhanHoi_CQDT_2020_Huyen_Kbang.xlsx")
    assert set(got) == expected
    # the comment carries the official score beside the declared one
    mismatch = kb[kb.finding == "self-score-mismatch"].iloc[0]
    assert "0,5" in got[(mismatch.sheet, mismatch.cell)] and "SS.I.2" in got[(mismatch.sheet, mismatch.cell)]
    assert comments(out / FEEDBACK_DIR / "PhanHoi_CQDT_2020_Huyen_Ia_Pa.xlsx") == {}
    broken = openpyxl.load_workbook(out / FEEDBACK_DIR / "PhanHoi_tep_broken.xlsx")
    assert broken.sheetnames == [SUMMARY_SHEET]
    assert (out / "feedback").is_dir() and (out / "current" / "feedback" / FEEDBACK_CSV).is_file()


def test_the_copy_keeps_every_sheet_and_cell_at_its_address(tmp_path, inbox, rb):
    data = (inbox / "kbang.xlsx").read_bytes()
    sheets, finding = read_sheets(data, "kbang.xlsx")
    assert finding is None
    target = tmp_path / "fb.xlsx"
    write_feedback(target, sheets, [], figures_for(None, rb, file="kbang.xlsx", district="Huyện Kbang",
                                                   status=CHECKED))
    wb = openpyxl.load_workbook(target)
    assert wb.sheetnames == [SUMMARY_SHEET, *[s.name for s in sheets]]
    for s in sheets:
        ws = wb[s.name]
        for i, row in enumerate(s.rows):
            for j, v in enumerate(row):
                got = ws.cell(i + 1, j + 1).value
                assert (got if got is not None else "") == v, (s.name, i + 1, j + 1)
        assert ws.sheet_state == ("hidden" if s.hidden else "visible")


def test_summary_sheet_scores_rank_median_and_links(first_run):
    run, out = first_run
    ws = openpyxl.load_workbook(out / FEEDBACK_DIR / "PhanHoi_CQDT_2020_Huyen_Kbang.xlsx")[SUMMARY_SHEET]
    cells = {c.coordinate: c.value for row in ws.iter_rows() for c in row if c.value is not None}
    kbang = next(d for d in run.districts if d.district == "Huyện Kbang")
    assert any(isinstance(v, str) and f"{kbang.rank}/2" in v for v in cells.values())
    rows = {ws.cell(r, 1).value: r for r in range(1, ws.max_row + 1)}
    r = rows["SS.III"]
    assert ws.cell(r, 5).value == pytest.approx(kbang.subtotals["SS.III"].achieved)
    assert ws.cell(r, 6).value == 9  # declared
    assert ws.cell(r, 8).value == pytest.approx((10 + kbang.subtotals["SS.III"].achieved) / 2)  # median of two
    links = [c.hyperlink.location for row in ws.iter_rows() for c in row if c.hyperlink is not None]
    located = [f for f in kbang.findings if f.cell]
    assert sorted(links) == sorted(f"'{f.sheet}'!{f.cell}" for f in located)
    assert ws._charts  # noqa: SLF001 - openpyxl keeps a read sheet's charts there; the chart is there


def test_a_return_changed_after_scoring_gets_no_stale_feedback(tmp_path, inbox, rb, districts):
    from kbang_egov.operations.feedback_pass import plan_feedback, write_feedbacks

    o = process_file(inbox / "kbang.xlsx", "kbang.xlsx", rb, districts)
    jobs, rows = plan_feedback([o], rb, tmp_path / "fb", inbox, [o.result])
    (inbox / "kbang.xlsx").write_bytes((inbox / "iapa.xlsx").read_bytes())  # a new upload over it
    failed = write_feedbacks(jobs, rows, tmp_path / "fb", workers=0)
    assert [(f.code, f.file) for f in failed] == [("feedback-failed", "kbang.xlsx")]
    assert rows[0]["feedback_file"] == "" and not (tmp_path / "fb" / "PhanHoi_CQDT_2020_Huyen_Kbang.xlsx").exists()


@pytest.mark.libreoffice
def test_xls_and_ods_returns_get_comments_at_the_same_cells(tmp_path, inbox, rb, districts):
    conv = tmp_path / "conv"
    profile = make_profile(tmp_path / "profile")
    (inbox / "broken.xlsx").unlink()
    (inbox / "iapa.xlsx").unlink()
    xls = convert_all([inbox / "kbang.xlsx"], "xls", conv, profile)[0]
    ods = convert_all([inbox / "kbang.xlsx"], "ods", conv, profile)[0]
    for path in (xls, ods):
        one = tmp_path / path.suffix[1:]
        one.mkdir()
        path.rename(one / path.name)
        out = tmp_path / f"out{path.suffix}"
        run_batch(one, out, rb, districts, workers=1)
        findings = pd.read_csv(out / "findings.csv", dtype=str, keep_default_na=False)
        expected = {(r.sheet, r.cell) for r in findings.itertuples() if r.cell}
        assert {"self-score-mismatch", "input-unparseable"} <= set(findings.finding)
        got = comments(out / FEEDBACK_DIR / "PhanHoi_CQDT_2020_Huyen_Kbang.xlsx")
        assert set(got) == expected, path.suffix


def test_hostile_cells_and_sheet_names_stay_values_and_a_far_finding_is_listed_not_made(tmp_path, rb):
    from kbang_egov.reading.reader import SheetCells
    from kbang_egov.rules.findings import make_finding

    long_name = "Tiêu chí đánh giá năm 2020 (bản sửa lần 2)"  # .ods allows more than Excel's 31 characters
    sheets = [SheetCells("Tiêu chí: 2020/21", [["=HYPERLINK(\"http://x\",\"bấm\")", "\x01ký tự lạ", "x" * 40000]]),
              SheetCells(long_name, [[1.5, None, True]]),
              SheetCells(SUMMARY_SHEET, [["một trang cùng tên"]])]
    findings = [make_finding("input-missing", "f.ods", "Tiêu chí: 2020/21", "B1", what="Giá trị", score=0, how="."),
                make_finding("sheet-oversized", "f.ods", long_name, "XFD1048576", end="XFD1048576", limit=2000),
                make_finding("file-not-template", "f.ods", template="CQDT_2020_mau.xlsx")]
    target = tmp_path / "fb.xlsx"
    write_feedback(target, sheets, findings, figures_for(None, rb, file="f.ods", district="", status=CHECKED))
    wb = openpyxl.load_workbook(target)
    assert len(wb.sheetnames) == 4 and wb.sheetnames[0] == SUMMARY_SHEET
    first, second, third = (wb[n] for n in wb.sheetnames[1:])
    assert first["A1"].data_type == "s" and first["A1"].value.startswith("=HYPERLINK")  # text, never a formula
    assert len(first["C1"].value) == 32767
    assert first["B1"].comment is not None
    assert second.max_row == 1 and second.max_column == 3  # the far cell is not made: listed on the summary
    assert third["A1"].value == "một trang cùng tên"
    links = [c.hyperlink.location for row in wb[SUMMARY_SHEET].iter_rows() for c in row if c.hyperlink]
    assert f"'{second.title}'!XFD1048576" in links
    import zipfile

    with zipfile.ZipFile(target) as z:
        notes = [z.read(n).decode().count("<comment ") for n in z.namelist() if n.startswith("xl/comments")]
    assert sum(notes) == 1


def test_a_sheet_past_the_cell_budget_is_copied_in_part_and_the_summary_says_so(tmp_path, inbox, rb):
    sheets, _ = read_sheets((inbox / "kbang.xlsx").read_bytes(), "kbang.xlsx", cell_limit=1000)
    assert [s.cut for s in sheets][:3] == [False, False, True]  # the guide, the information, the criteria
    target = tmp_path / "fb.xlsx"
    write_feedback(target, sheets, [], figures_for(None, rb, file="kbang.xlsx", district="Huyện Kbang",
                                                   status=CHECKED))
    texts = [c.value for row in openpyxl.load_workbook(target)[SUMMARY_SHEET].iter_rows() for c in row
             if isinstance(c.value, str)]
    assert any("Tiêu chí" in t and "một phần" in t for t in texts)


# --- reuse: a workbook whose content did not change is copied from the previous published run ----------------

KBANG_FB, IAPA_FB, BROKEN_FB = ("PhanHoi_CQDT_2020_Huyen_Kbang.xlsx", "PhanHoi_CQDT_2020_Huyen_Ia_Pa.xlsx",
                                "PhanHoi_tep_broken.xlsx")


def feedback_rows(out: Path) -> dict[str, dict]:
    """feedback.csv's rows by workbook name."""
    with open(out / FEEDBACK_DIR / FEEDBACK_CSV, encoding="utf-8-sig") as fh:
        return {r["feedback_file"]: r for r in csv.DictReader(fh) if r["feedback_file"]}


def workbook_bytes(out: Path) -> dict[str, bytes]:
    return {name: (out / FEEDBACK_DIR / name).read_bytes() for name in feedback_rows(out)}


def header_run(out: Path, name: str) -> str:
    """The run id the workbook's header names (summary sheet, A3)."""
    return openpyxl.load_workbook(out / FEEDBACK_DIR / name)[SUMMARY_SHEET]["A3"].value.rsplit(": ", 1)[-1]


def test_a_second_run_reuses_every_workbook_and_a_changed_return_gets_a_new_one(first_run, after_first_run, inbox,
                                                                                rb, districts):
    import hashlib

    first, out = first_run[0], after_first_run
    rows1, bytes1 = feedback_rows(out), workbook_bytes(out)
    assert set(rows1) == {KBANG_FB, IAPA_FB, BROKEN_FB}
    assert (first.feedback_written, first.feedback_reused) == (3, 0)
    for name, row in rows1.items():
        assert len(row["content_key"]) == 64 and row["feedback_sha256"] == hashlib.sha256(bytes1[name]).hexdigest()

    second = run_batch(inbox, out, rb, districts, workers=0)
    assert second.run_id != first.run_id
    assert (second.feedback_written, second.feedback_reused) == (0, 3)
    assert workbook_bytes(out) == bytes1
    assert {n: (r["content_key"], r["feedback_sha256"]) for n, r in feedback_rows(out).items()} == \
        {n: (r["content_key"], r["feedback_sha256"]) for n, r in rows1.items()}
    assert header_run(out, KBANG_FB) == first.run_id  # the run that wrote it: true of the copy

    # Kbang sends its return again with another wrong self-score: its findings change, not its points.
    slips = with_slips(rb)
    write_template(rb, inbox, match_district("Kbang", districts), districts, file_name="kbang.xlsx",
                   filled=Filled(slips.values, {**slips.self_scores, "SS.I.2": 0.25}, slips.declared))
    third = run_batch(inbox, out, rb, districts, workers=0)
    rows3, bytes3 = feedback_rows(out), workbook_bytes(out)
    assert (third.feedback_written, third.feedback_reused) == (1, 2)
    assert rows3[KBANG_FB]["content_key"] != rows1[KBANG_FB]["content_key"] and bytes3[KBANG_FB] != bytes1[KBANG_FB]
    assert rows3[KBANG_FB]["feedback_sha256"] == hashlib.sha256(bytes3[KBANG_FB]).hexdigest()
    assert header_run(out, KBANG_FB) == third.run_id
    assert {n: bytes3[n] for n in (IAPA_FB, BROKEN_FB)} == {n: bytes1[n] for n in (IAPA_FB, BROKEN_FB)}
    assert header_run(out, IAPA_FB) == first.run_id
    log = Path(third.log).read_text(encoding="utf-8")
    assert "feedback workbooks: 1 written, 2 reused" in log


def test_a_previous_workbook_changed_or_made_a_link_is_written_again(tmp_path, after_first_run, inbox, rb, districts):
    out = after_first_run
    before = workbook_bytes(out)
    published = (out / FEEDBACK_DIR).resolve()
    tampered = bytearray(before[KBANG_FB])
    tampered[len(tampered) // 2] ^= 0xFF  # same size, one byte another
    (published / KBANG_FB).write_bytes(bytes(tampered))
    elsewhere = tmp_path / "elsewhere.xlsx"
    elsewhere.write_bytes(before[IAPA_FB])  # the very bytes recorded, but through a link out of the folder
    (published / IAPA_FB).unlink()
    (published / IAPA_FB).symlink_to(elsewhere)
    again = run_batch(inbox, out, rb, districts, workers=0)
    assert (again.feedback_written, again.feedback_reused) == (2, 1)
    after = workbook_bytes(out)
    assert after[BROKEN_FB] == before[BROKEN_FB]
    for name in (KBANG_FB, IAPA_FB):
        assert after[name] != before[name] and header_run(out, name) == again.run_id
        assert not (out / FEEDBACK_DIR / name).is_symlink()
    assert openpyxl.load_workbook(out / FEEDBACK_DIR / KBANG_FB).sheetnames[0] == SUMMARY_SHEET


def test_a_rank_change_writes_the_workbooks_whose_figures_changed(after_first_run, inbox, rb, districts):
    out = after_first_run
    rows1, bytes1 = feedback_rows(out), workbook_bytes(out)
    write_template(rb, inbox, match_district("Chư Sê", districts), districts, filled=full_marks(rb),
                   file_name="chuse.xlsx")  # a new district, better than Kbang
    run = run_batch(inbox, out, rb, districts, workers=0)
    rows2, bytes2 = feedback_rows(out), workbook_bytes(out)
    ranks = {d.district: d.rank for d in run.districts}
    assert ranks["Huyện Kbang"] == 3
    ws = openpyxl.load_workbook(out / FEEDBACK_DIR / KBANG_FB)[SUMMARY_SHEET]
    assert "3/3" in ws["A4"].value
    for name in (KBANG_FB, IAPA_FB):  # rank or ranked count and medians changed
        assert rows2[name]["content_key"] != rows1[name]["content_key"] and bytes2[name] != bytes1[name]
    assert bytes2[BROKEN_FB] == bytes1[BROKEN_FB]  # not ranked: nothing it shows changed
    assert (run.feedback_written, run.feedback_reused) == (3, 1)


def forge(out: Path, name: str, data: bytes) -> None:
    """Put data in the published feedback folder and make the published manifest vouch for it, as if a run
    had written it (what only a run, or someone who rewrites the manifest, can do)."""
    import hashlib
    import json

    (out / FEEDBACK_DIR / name).write_bytes(data)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"][f"{FEEDBACK_DIR}/{name}"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize("previous", ["csv-missing", "csv-garbled", "csv-not-vouched", "columns-missing",
                                      "sha-not-recorded", "no-manifest", "manifest-garbled"])
def test_a_previous_feedback_folder_not_as_written_means_every_workbook_is_written(after_first_run, inbox, rb,
                                                                                  districts, previous):
    out = after_first_run
    table = out / FEEDBACK_DIR / FEEDBACK_CSV
    text = table.read_text(encoding="utf-8-sig")
    if previous == "csv-missing":
        table.unlink()
    elif previous == "csv-garbled":
        forge(out, FEEDBACK_CSV, b"\xff\xfe\x00garbage\x00\n\"unclosed,")
    elif previous == "csv-not-vouched":  # edited by hand: the manifest's hash no longer matches
        table.write_text(text.replace("ranked", "ranked "), encoding="utf-8-sig")
    elif previous == "columns-missing":
        kept = pd.read_csv(table, dtype=str, keep_default_na=False).drop(columns=["content_key"])
        forge(out, FEEDBACK_CSV, kept.to_csv(index=False).encode("utf-8-sig"))
    elif previous == "sha-not-recorded":
        kept = pd.read_csv(table, dtype=str, keep_default_na=False).assign(feedback_sha256="")
        forge(out, FEEDBACK_CSV, kept.to_csv(index=False).encode("utf-8-sig"))
    elif previous == "no-manifest":
        (out / "manifest.json").resolve().unlink()
    else:
        (out / "manifest.json").resolve().write_text("{\"files\": [1, 2", encoding="utf-8")
    again = run_batch(inbox, out, rb, districts, workers=0)
    assert (again.feedback_written, again.feedback_reused) == (3, 0)
    assert {header_run(out, name) for name in feedback_rows(out)} == {again.run_id}



def test_without_links_the_feedback_moved_into_the_folder_is_reused_too(tmp_path, inbox, rb, districts, monkeypatch):
    import errno

    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr("kbang_egov.operations.publish.os.symlink", no_links)
    out = tmp_path / "out"
    first = run_batch(inbox, out, rb, districts, workers=0)
    assert not (out / FEEDBACK_DIR).is_symlink()
    before = workbook_bytes(out)
    second = run_batch(inbox, out, rb, districts, workers=0)
    assert (second.feedback_written, second.feedback_reused) == (0, 3)
    assert workbook_bytes(out) == before and header_run(out, KBANG_FB) == first.run_id


@pytest.mark.parametrize("error", [MemoryError, ValueError])
def test_a_memory_error_while_writing_feedback_goes_up_to_the_worker(monkeypatch, error):
    """Any other exception is that workbook's reason and the worker goes on; a MemoryError goes up, so that
    the worker reports it and is replaced (tests/test_isolation.py)."""
    def fail(job):  # noqa: ANN001, ANN202
        raise error("no room")

    monkeypatch.setattr(feedback_pass, "write_job", fail)
    if error is MemoryError:
        with pytest.raises(MemoryError):
            feedback_pass.feedback_task(None)
    else:
        assert feedback_pass.feedback_task(None) == "ValueError: no room"
