"""The run's outputs written from a hand-built RunResult and read back as data (pandas, openpyxl, zip)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from openpyxl.utils import get_column_letter

from kbang_egov.reporting import report_writer
from kbang_egov.reporting.report_writer import (
    DETAIL_HEADER_ROW,
    FILES_SHEET,
    FINDINGS_SHEET,
    RANKING_HEADER_ROW,
    RANKING_SHEET,
    RUN_SHEET,
    SCORES_SHEET,
    SHEETS,
    STATS_SHEET,
    OutputError,
    write_csvs,
    write_outputs,
    write_ranking_workbook,
)
from kbang_egov.reporting.tables import FINDINGS_COLUMNS
from kbang_egov.rules.findings import make_finding
from kbang_egov.rules.results import (
    COMPUTED,
    GROUP,
    NOT_APPLICABLE,
    PART,
    REJECTED,
    SCORED,
    SKIP_HIDDEN,
    SKIP_LOCK,
    SKIP_OTHER,
    SKIP_OUTPUT,
    SKIPPED_VI,
    SUPERSEDED,
    TOTAL,
    CriterionResult,
    DistrictResult,
    FileRecord,
    RunResult,
    SubtotalResult,
)
from kbang_egov.rules.rulebook import Rulebook, load_rulebook

KBANG = "Huyện Kbang"
FORMULA_NAME = '=HYPERLINK("http://x")'  # must come back as this text, never as a formula
AN_KHE = "Thị xã An Khê"
NOT_SUBMITTED = "Huyện Đak Pơ"
NA = None  # in an overrides map: the criterion is not applicable
WHEN = dt.datetime(2021, 3, 1, 8, 30)
BLANK_NOTE = "Đã gửi mẫu chưa điền (0/170 tiêu chí có số liệu): tệp dak_po.xlsx"


@pytest.fixture(scope="module")
def rb() -> Rulebook:
    return load_rulebook()


def make_district(rb: Rulebook, name: str, file: str, frac: float, overrides: dict[str, float | None],
                  self_overrides: dict[str, float | None], declared_total: float | None,
                  rank: int, findings: list) -> DistrictResult:
    """Every scored criterion at frac x max unless overridden; subtotals summed like the pipeline does."""
    crits = []
    for i, c in enumerate(rb.scored_criteria):
        v = overrides.get(c.code, c.max * frac)
        if c.code in overrides and v is NA:
            score, source, status, self_score = 0.0, NOT_APPLICABLE, "not-applicable", None
        else:
            score, source, status, self_score = float(v), COMPUTED, "ok", float(v)
        self_score = self_overrides.get(c.code, self_score)
        crits.append(CriterionResult(c.code, c.group, c.part, c.max, score, self_score, status, source,
                                     detail="1/2", row=i + 5))
    subtotals: dict[str, SubtotalResult] = {}
    total = achieved_all = applicable_all = 0.0
    for p in rb.parts:
        p_achieved = p_applicable = 0.0
        for g in p.groups:
            mine = [r for r in crits if r.group == g.code]
            achieved = sum(r.score for r in mine)
            applicable = sum(r.max for r in mine if r.applicable)
            subtotals[g.code] = SubtotalResult(g.code, GROUP, g.max, applicable, achieved, achieved,
                                               sum(r.self_score or 0 for r in mine), achieved)
            p_achieved += achieved
            p_applicable += applicable
        scaled = round(p_achieved * p.max / p_applicable, 2)
        subtotals[p.code] = SubtotalResult(p.code, PART, p.max, p_applicable, p_achieved, scaled, p_achieved, scaled)
        total += scaled
        achieved_all += p_achieved
        applicable_all += p_applicable
    subtotals[rb.total_code] = SubtotalResult(rb.total_code, TOTAL, rb.total_max, applicable_all,
                                              round(achieved_all, 2), round(total, 2), achieved_all, declared_total)
    return DistrictResult(name, file, "Tiêu chí", crits, subtotals, findings=findings, rank=rank,
                          part_ranks={p.code: rank for p in rb.parts})


@pytest.fixture(scope="module")
def run(rb: Rulebook) -> RunResult:
    """Kbang full marks (SS.I.2 not applicable, its total declared as the plain sum 169); the '=' district and
    An Khê tie for rank 2. Đak Pơ sent a blank template back.

    SS.I.1 is the controlled criterion: Kbang 1 (full), '=' 0.5 (partial, self-scored 1), An Khê 0 (zero).
    """
    f_mismatch = make_finding("self-score-mismatch", "b.xlsx", "Tiêu chí", "H5", FORMULA_NAME, "SS.I.1",
                              self_score=1, score=0.5, detail="1/2")
    f_missing = make_finding("subtotal-missing", "c.xlsx", "Tiêu chí", "H200", AN_KHE, rb.total_code,
                             what="tổng điểm", score=85)
    f_unmarked = make_finding("template-unmarked", "a.xlsx", "_meta", district=KBANG, template="mau.xlsx")
    f_unreadable = make_finding("file-unreadable", "hong.xlsx", reason="zip")
    kbang = make_district(rb, KBANG, "a.xlsx", 1.0, {"SS.I.2": NA}, {}, 169.0, 1, [f_unmarked])
    formula = make_district(rb, FORMULA_NAME, "b.xlsx", 0.5, {"SS.I.1": 0.5, "SS.I.2": 1.0, "SS.I.3": 0.0},
                            {"SS.I.1": 1.0}, 87.5, 2, [f_mismatch])
    an_khe = make_district(rb, AN_KHE, "c.xlsx", 0.5, {"SS.I.1": 0.0, "SS.I.2": 1.0, "SS.I.3": 0.5},
                           {"SS.I.1": None}, None, 2, [f_missing])
    files = [
        FileRecord("a.xlsx", "a" * 64, 1000, WHEN, SCORED, KBANG, seconds=0.01),
        FileRecord("b.xlsx", "b" * 64, 2000, WHEN, SCORED, FORMULA_NAME, seconds=0.02),
        FileRecord("c.xlsx", "c" * 64, 3000, WHEN, SCORED, AN_KHE, seconds=0.03),
        FileRecord("hong.xlsx", "d" * 64, 10, WHEN, REJECTED, "", f_unreadable.message, ("file-unreadable",)),
        FileRecord("kbang_cu.xlsx", "e" * 64, 900, dt.datetime(2021, 2, 1, 9, 0), SUPERSEDED, KBANG,
                   "Có bản mới hơn", ("district-duplicate",)),
    ]
    return RunResult(
        started=WHEN, finished=WHEN + dt.timedelta(seconds=3), input_dir="/data/nop", rulebook_id=rb.id,
        rulebook_version=rb.version, rulebook_hash=rb.hash, tool_version="0.1.0", trust_self_scores=False,
        districts=[kbang, formula, an_khe], files=files,
        findings=[f_unmarked, f_mismatch, f_missing, f_unreadable], not_submitted=[NOT_SUBMITTED],
        not_submitted_notes={NOT_SUBMITTED: BLANK_NOTE}, skipped={"lock": 1, "hidden": 0},
    )


@pytest.fixture(scope="module")
def out_dir(run: RunResult, rb: Rulebook, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("outputs") / "nested"
    paths = write_outputs(run, rb, out)
    assert [p.name for p in paths] == ["ranking.xlsx", "ranking.csv", "scores.csv", "findings.csv"]
    assert all(p.parent == out for p in paths)
    return out


@pytest.fixture(scope="module")
def workbook(out_dir: Path) -> openpyxl.Workbook:
    """ranking.xlsx as openpyxl reads it (styles, notes, filters), loaded once: the tests only read it."""
    return openpyxl.load_workbook(out_dir / "ranking.xlsx")


@pytest.fixture(scope="module")
def sheets(out_dir: Path) -> dict[str, pd.DataFrame]:
    got = pd.read_excel(out_dir / "ranking.xlsx", sheet_name=None, engine="calamine")
    got[SCORES_SHEET] = pd.read_excel(out_dir / "ranking.xlsx", sheet_name=SCORES_SHEET, header=DETAIL_HEADER_ROW,
                                      engine="calamine")
    return got


@pytest.fixture(scope="module")
def ranking(out_dir: Path) -> pd.DataFrame:
    return pd.read_excel(out_dir / "ranking.xlsx", sheet_name=RANKING_SHEET, header=RANKING_HEADER_ROW,
                         engine="calamine")


def total_column(df: pd.DataFrame) -> str:
    return next(c for c in df.columns if str(c).startswith("Tổng điểm"))


def test_sheets_in_order(sheets: dict[str, pd.DataFrame]):
    assert list(sheets) == list(SHEETS)


def test_no_temp_files_left(out_dir: Path):
    assert sorted(p.name for p in out_dir.iterdir()) == ["findings.csv", "ranking.csv", "ranking.xlsx",
                                                          "scores.csv"]


def test_ranking_sheet_ranks_ties_and_totals(ranking: pd.DataFrame, rb: Rulebook):
    ranked = ranking[pd.to_numeric(ranking["Hạng"], errors="coerce").notna()]
    assert ranked["Hạng"].astype(int).tolist() == [1, 2, 2]
    assert ranked["Đơn vị"].tolist() == [KBANG, FORMULA_NAME, AN_KHE]
    assert ranked[total_column(ranking)].tolist() == pytest.approx([170.0, 85.0, 85.0])
    assert ranked["Tổng cộng thẳng"].tolist() == pytest.approx([169.0, 85.0, 85.0])
    assert ranked["Chênh lệch"].tolist()[:2] == pytest.approx([0.0, 2.5])
    assert pd.isna(ranked["Chênh lệch"].tolist()[2])
    assert ranked["Số lỗi"].tolist() == [0, 1, 0]
    assert ranked["Số cảnh báo"].tolist() == [1, 0, 1]
    group_cols = [c for c in ranking.columns if str(c).split(" ")[0] in {g.code for g in rb.groups}]
    assert [str(c).split(" ")[0] for c in group_cols] == [g.code for g in rb.groups]


def test_ranking_sheet_lists_not_submitted_without_scores(ranking: pd.DataFrame):
    row = ranking[ranking["Đơn vị"] == NOT_SUBMITTED]
    assert len(row) == 1
    assert isinstance(row["Hạng"].iloc[0], str)
    assert pd.isna(row[total_column(ranking)].iloc[0])
    assert row["Tình trạng"].iloc[0] == BLANK_NOTE  # why: a blank template came back


def test_ranking_header_notes_hold_for_every_row(ranking: pd.DataFrame, rb: Rulebook, workbook: openpyxl.Workbook,
                                                 sheets: dict[str, pd.DataFrame]):
    """Kbang has a criterion taken out, the others none: each column is what its header and note say, on
    both kinds of row. Groups and 'Tổng cộng thẳng' are plain sums; parts and 'Tổng điểm' are rescaled
    (equal to the plain sums without criteria taken out); the gap is declared minus the plain sum."""
    ranked = ranking[pd.to_numeric(ranking["Hạng"], errors="coerce").notna()].set_index("Đơn vị")
    cols = {str(c).split(" ")[0]: c for c in ranking.columns}
    part_col = {p.code: next(c for c in ranking.columns if str(c).startswith(label))
                for p, label in zip(rb.parts, ("Điều kiện sẵn sàng", "Kết quả"), strict=True)}
    assert all("quy đổi" in str(c) for c in (*part_col.values(), total_column(ranking)))
    detail = sheets[SCORES_SHEET].set_index("Đơn vị")
    for name, row in ranked.iterrows():
        groups = {g.code: row[cols[g.code]] for g in rb.groups}
        plain = sum(groups.values())
        assert row["Tổng cộng thẳng"] == pytest.approx(plain), name
        kad = [c for c in rb.scored_criteria if detail.loc[name, f"{c.code} chính thức"] == "KAD"]
        assert row["Số tiêu chí không áp dụng"] == len(kad), name
        assert row["Điểm tối đa bỏ ra"] == pytest.approx(sum(c.max for c in kad)), name
        for p in rb.parts:
            part_plain = sum(groups[g.code] for g in p.groups)
            applicable = p.max - sum(c.max for c in kad if c.part == p.code)
            assert row[part_col[p.code]] == pytest.approx(round(part_plain * p.max / applicable, 2)), (name, p.code)
        assert row[total_column(ranking)] == pytest.approx(sum(row[part_col[p.code]] for p in rb.parts)), name
        if not pd.isna(row["Tổng tự khai"]):
            assert row["Chênh lệch"] == pytest.approx(row["Tổng tự khai"] - row["Tổng cộng thẳng"]), name
        assert row["Tình trạng"] == ("Hoàn chỉnh" if row["Số lỗi"] == 0 else f"Cần sửa ({int(row['Số lỗi'])} lỗi)")
    assert ranked.loc[KBANG, "Số tiêu chí không áp dụng"] == 1 and ranked.loc[AN_KHE, "Số tiêu chí không áp dụng"] == 0
    assert ranked.loc[KBANG, part_col["SS"]] == 60 and sum(ranked.loc[KBANG, cols[g]] for g in ("SS.I", "SS.II",
                                                                                                   "SS.III")) == 59
    assert ranked["Tình trạng"].tolist() == ["Hoàn chỉnh", "Cần sửa (1 lỗi)", "Hoàn chỉnh"]
    # The notes on the headers and the legend above them say so in words.
    ws = workbook[RANKING_SHEET]
    notes = {str(c.value): c.comment.text for c in ws[RANKING_HEADER_ROW + 1] if c.comment}
    assert "Cộng thẳng" in notes[str(cols["SS.I"])] and "không quy đổi" in notes[str(cols["SS.I"])]
    assert "quy đổi" in notes[str(part_col["SS"])].lower() and "bằng tổng cộng thẳng" in notes[str(part_col["SS"])]
    assert notes["Chênh lệch"] == "Tổng tự khai trừ Tổng cộng thẳng."
    assert "Không áp dụng" in notes["Số tiêu chí không áp dụng"]
    legend = ws.cell(RANKING_HEADER_ROW, 1).value
    assert "cộng thẳng" in legend and "quy đổi" in legend and "Tổng tự khai' so với 'Tổng cộng thẳng'" in legend


def test_formula_like_name_stays_text(workbook: openpyxl.Workbook):
    ws = workbook[RANKING_SHEET]
    cells = [c for row in ws.iter_rows() for c in row if c.value == FORMULA_NAME]
    assert cells and all(c.data_type == "s" for c in cells)
    assert not any(c.data_type == "f" for row in ws.iter_rows() for c in row)


def test_freeze_autofilter_and_chart(out_dir: Path, workbook: openpyxl.Workbook):
    wb = workbook
    for name in (RANKING_SHEET, FINDINGS_SHEET):
        assert wb[name].freeze_panes is not None
        assert wb[name].auto_filter.ref
    assert wb[RANKING_SHEET].freeze_panes == f"C{RANKING_HEADER_ROW + 2}"
    assert wb[RANKING_SHEET].auto_filter.ref.startswith(f"A{RANKING_HEADER_ROW + 1}:")
    with zipfile.ZipFile(out_dir / "ranking.xlsx") as z:
        assert "xl/charts/chart1.xml" in z.namelist()


def test_ranking_rows_keep_their_styles_and_the_chart_reads_the_table(out_dir: Path, workbook: openpyxl.Workbook):
    """Each column of the ranking keeps its format, the districts that did not submit follow after a blank
    row, the overview's chart stacks the parts of the table by name, and the sheet's dimension covers the
    rows."""
    ws = workbook[RANKING_SHEET]
    first = RANKING_HEADER_ROW + 2
    names = [ws.cell(r, 2).value for r in range(first, first + 3)]
    assert names == [KBANG, FORMULA_NAME, AN_KHE]
    assert ws.cell(first, 1).number_format == "0" and ws.cell(first, 2).font.b
    total = next(c.column for c in ws[RANKING_HEADER_ROW + 1] if str(c.value).startswith("Tổng điểm"))
    assert ws.cell(first, total).number_format == "0.00" and ws.cell(first, total).font.b
    assert (ws.cell(first + 4, 1).value, ws.cell(first + 4, 2).value) == ("Chưa nộp", NOT_SUBMITTED)
    assert ws.cell(first + 4, 1).font.i and ws.cell(first + 3, 1).value is None  # after a blank row
    with zipfile.ZipFile(out_dir / "ranking.xlsx") as z:
        chart = z.read("xl/charts/chart1.xml").decode()
    parts = [c.column_letter for c in ws[RANKING_HEADER_ROW + 1]
             if str(c.value).startswith(("Điều kiện sẵn sàng", "Kết quả"))]
    refs = re.findall(r"<c:f>([^<]*)</c:f>", chart)
    assert len(parts) == 2 and f"'{RANKING_SHEET}'!$B${first}:$B${first + 2}" in refs
    assert [r for r in refs if not r.startswith(f"'{RANKING_SHEET}'!$B")] == [
        f"'{RANKING_SHEET}'!${letter}${first}:${letter}${first + 2}" for letter in parts]
    assert f'<dimension ref="A1:{ws.cell(1, ws.max_column).column_letter}{first + 4}"/>' in z_sheet(out_dir)


def z_sheet(out_dir: Path) -> str:
    """The ranking sheet's XML (the second sheet: the overview comes first)."""
    with zipfile.ZipFile(out_dir / "ranking.xlsx") as z:
        return z.read(f"xl/worksheets/sheet{SHEETS.index(RANKING_SHEET) + 1}.xml").decode()


def test_cell_values():
    assert report_writer.cell_value(np.float64(1.5)).__class__ is float
    assert report_writer.cell_value(np.int64(3)).__class__ is int
    assert (report_writer.cell_value(True), report_writer.cell_value("a\x00b"), report_writer.cell_value(None)) \
        == ("Có", "ab", None)


def test_score_detail_sheet(sheets: dict[str, pd.DataFrame], rb: Rulebook):
    """One row per district in rank order; every scored criterion's self-score beside its official score."""
    df = sheets[SCORES_SHEET]
    codes = [c.code for c in rb.scored_criteria]
    assert list(df.columns) == ["Hạng", "Đơn vị"] + [f"{c} {x}" for c in codes for x in ("tự đánh giá", "chính thức")]
    assert df["Đơn vị"].tolist() == [KBANG, FORMULA_NAME, AN_KHE]
    assert df["Hạng"].tolist() == [1, 2, 2]
    row = df[df["Đơn vị"] == FORMULA_NAME].iloc[0]
    assert (row["SS.I.1 tự đánh giá"], row["SS.I.1 chính thức"]) == pytest.approx((1.0, 0.5))
    kbang = df[df["Đơn vị"] == KBANG].iloc[0]
    assert kbang["SS.I.2 chính thức"] == "KAD" and pd.isna(kbang["SS.I.2 tự đánh giá"])


def test_score_detail_sheet_highlights_each_gap(workbook: openpyxl.Workbook, rb: Rulebook):
    ws = workbook[SCORES_SHEET]
    [(ranges, rule)] = [(str(cf.sqref).split(), [r.formula[0] for r in cf.rules]) for cf in ws.conditional_formatting]
    official = [get_column_letter(4 + 2 * k) for k in range(len(rb.scored_criteria))]  # D, F, ...
    assert ranges == [f"{c}4:{c}6" for c in official]  # every official column, every district's row
    assert rule == ["AND(ISNUMBER(C4),ISNUMBER(D4),ABS(C4-D4)>0.005)"]  # D beside C, and so on across
    assert ws.freeze_panes == "C4" and ws.auto_filter.ref == f"A3:{ws.cell(3, ws.max_column).column_letter}6"
    # The criteria's names over their two columns, the groups' over their criteria.
    first = rb.scored_criteria[0]
    assert ws["C2"].value == first.name and "C2:D2" in {str(r) for r in ws.merged_cells.ranges}
    group = rb.groups[0]
    width = 2 * sum(1 for c in rb.scored_criteria if c.group == group.code)
    assert ws["C1"].value.startswith(group.code) and f"C1:{get_column_letter(2 + width)}1" in {
        str(r) for r in ws.merged_cells.ranges}


def test_score_detail_rows_keep_their_styles(workbook: openpyxl.Workbook):
    """Every row: numbers in 0.00, KAD italic grey, names as text."""
    ws = workbook[SCORES_SHEET]
    for row in range(DETAIL_HEADER_ROW + 2, ws.max_row + 1):
        assert ws.cell(row, 2).data_type == "s"
        for cell in ws[row][2:]:
            if isinstance(cell.value, float):
                assert cell.number_format == "0.00", cell.coordinate
            elif cell.value == "KAD":
                assert cell.font.i and cell.font.color.rgb.endswith("7F7F7F"), cell.coordinate
    assert ws["B5"].value == FORMULA_NAME and ws["D5"].value == pytest.approx(0.5)


def test_findings_sheet(sheets: dict[str, pd.DataFrame], run: RunResult):
    df = sheets[FINDINGS_SHEET]
    assert list(zip(df["Tệp"], df["Mã lỗi"], df["Ô"].fillna(""), strict=True)) == [
        (f.file, f.code, f.cell) for f in run.findings]


def test_criterion_statistics(sheets: dict[str, pd.DataFrame]):
    df = sheets[STATS_SHEET].set_index("Mã")
    cols = ["Số đơn vị đạt tối đa", "Số đơn vị đạt một phần", "Số đơn vị 0 điểm", "Không áp dụng",
            "Số đơn vị tự chấm sai"]
    assert df.loc["SS.I.1", cols].astype(int).tolist() == [1, 1, 1, 0, 1]
    assert df.loc["SS.I.1", "Điểm trung bình"] == pytest.approx(0.5)
    assert df.loc["SS.I.2", cols].astype(int).tolist() == [2, 0, 0, 1, 0]
    assert df.loc["SS.I.2", "Điểm trung bình"] == pytest.approx(1.0)


def test_bad_files_sheet(sheets: dict[str, pd.DataFrame]):
    df = sheets[FILES_SHEET]
    assert df["Tệp"].tolist() == ["hong.xlsx", "kbang_cu.xlsx"]
    assert df["Mã lỗi"].tolist() == ["file-unreadable", "district-duplicate"]
    assert df["Trạng thái"].nunique() == 2
    assert df["Kích thước (byte)"].tolist() == [10, 900]
    assert pd.Timestamp(df["Ngày sửa"].iloc[1]) == pd.Timestamp(2021, 2, 1, 9, 0)


def test_bad_files_sheet_says_none(run: RunResult, rb: Rulebook, tmp_path: Path):
    clean = dataclasses.replace(run, files=[f for f in run.files if f.status == SCORED])
    path = write_ranking_workbook(clean, rb, tmp_path / "r.xlsx")
    df = pd.read_excel(path, sheet_name=FILES_SHEET, engine="calamine")
    assert len(df) == 1 and isinstance(df.iloc[0, 0], str)


def test_run_sheet_lists_every_file(out_dir: Path, run: RunResult):
    raw = pd.read_excel(out_dir / "ranking.xlsx", sheet_name=RUN_SHEET, header=None, engine="calamine")
    first = raw[0].tolist()
    assert set(f.file for f in run.files) <= set(first)
    assert run.rulebook_hash in raw[1].tolist()


def test_run_sheet_names_every_kind_of_skipped_file(run: RunResult, rb: Rulebook, tmp_path: Path):
    """Every kind of skipped file shows the label the run summary uses, never its raw key."""
    counts = {SKIP_LOCK: 1, SKIP_HIDDEN: 2, SKIP_OTHER: 3, SKIP_OUTPUT: 4}
    path = write_ranking_workbook(dataclasses.replace(run, skipped=counts), rb, tmp_path / "r.xlsx")
    raw = pd.read_excel(path, sheet_name=RUN_SHEET, header=None, engine="calamine")
    row = raw[raw[0] == "Số tệp bỏ qua"].iloc[0]
    assert row[1] == 10
    assert row[2] == ", ".join(f"{SKIPPED_VI[k]}: {n}" for k, n in counts.items())


def test_ranking_csv(out_dir: Path, rb: Rulebook):
    df = pd.read_csv(out_dir / "ranking.csv", keep_default_na=False, dtype=str, encoding="utf-8-sig")
    assert list(df.columns) == ["rank", "district", "readiness", "results", "total", "plain_total",
                                "declared_total", "gap", "rank_readiness", "rank_results", "previous_rank",
                                "rank_change", *(g.code for g in rb.groups), "not_applicable", "max_removed", "status",
                                "errors", "warnings", "file"]
    assert df["rank"].tolist() == ["1", "2", "2"]
    assert df["plain_total"].tolist() == ["169", "85", "85"]  # the figure the declared total compares with
    assert df["SS.I"].tolist() == ["35", "18", "18"]  # groups: plain sums (Kbang's SS.I.2 taken out)
    assert (df["not_applicable"].tolist(), df["max_removed"].tolist()) == (["1", "0", "0"], ["1", "0", "0"])
    assert df["status"].tolist() == ["complete", "to-correct", "complete"]
    assert df["errors"].tolist() == ["0", "1", "0"]
    # A spreadsheet opening the CSV would run '=...' as a formula: it is written with a leading apostrophe.
    assert df["district"].tolist() == [KBANG, "'" + FORMULA_NAME, AN_KHE]
    assert df["total"].tolist() == ["170", "85", "85"]
    assert df["readiness"].tolist() == ["60", "30", "30"]
    assert df["declared_total"].tolist() == ["169", "87.5", ""]
    assert df["gap"].tolist() == ["0", "2.5", ""]
    assert NOT_SUBMITTED not in df["district"].tolist()


@pytest.mark.parametrize("name", ["ranking.csv", "scores.csv", "findings.csv"])
def test_csvs_start_with_a_byte_order_mark(out_dir: Path, name: str):
    """Excel on Windows reads a CSV as UTF-8 only when it starts with the BOM; without it, Vietnamese is garbled."""
    body = (out_dir / name).read_bytes()
    assert body.startswith(b"\xef\xbb\xbf") and not body.startswith(b"\xef\xbb\xbf" * 2)
    assert body[3:].decode("utf-8").split(",")[0] in ("rank", "district", "file")


def test_scores_csv(out_dir: Path, rb: Rulebook):
    df = pd.read_csv(out_dir / "scores.csv", keep_default_na=False, dtype=str, encoding="utf-8-sig")
    assert list(df.columns) == ["district", "code", "self_score", "score", "max", "gap", "source", "status",
                                "detail", "group", "part", "file", "row"]
    assert len(df) == 3 * len(rb.scored_criteria)
    row = df[(df["district"] == KBANG) & (df["code"] == "SS.I.2")].iloc[0]
    assert (row["self_score"], row["score"], row["gap"], row["source"]) == ("", "0", "", NOT_APPLICABLE)
    row = df[(df["district"] == "'" + FORMULA_NAME) & (df["code"] == "SS.I.1")].iloc[0]
    assert (row["self_score"], row["score"], row["max"], row["gap"]) == ("1", "0.5", "1", "0.5")


def test_findings_csv(out_dir: Path, run: RunResult):
    df = pd.read_csv(out_dir / "findings.csv", keep_default_na=False, dtype=str, encoding="utf-8-sig")
    assert tuple(df.columns) == FINDINGS_COLUMNS
    assert list(zip(df["file"], df["cell"], df["code"], df["finding"], strict=True)) == [
        (f.file, f.cell, f.subject, f.code) for f in run.findings]


def test_output_dir_that_is_a_file_raises(run: RunResult, rb: Rulebook, tmp_path: Path):
    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match=re.escape(str(blocker))):
        write_outputs(run, rb, blocker)
    with pytest.raises(OutputError):
        write_csvs(run, rb, blocker / "sub")


def test_failed_rename_leaves_no_temp_file(run: RunResult, rb: Rulebook, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch):
    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("kbang_egov.operations.atomic.os.replace", refuse)
    with pytest.raises(OutputError, match="ranking.xlsx"):
        write_outputs(run, rb, tmp_path)
    with pytest.raises(OutputError, match="ranking.csv"):
        write_csvs(run, rb, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_scores_csv_quotes_what_needs_quoting(run: RunResult, rb: Rulebook, tmp_path: Path):
    """Details and a district name holding commas, quotes and line breaks come back as they were written
    (line breaks as spaces, '=...' behind an apostrophe), one line per criterion."""
    from kbang_egov.rules.results import CriterionTable

    d = dataclasses.replace(run.districts[1], district='Huyện "Mới", Gia Lai', file="thư mục/b,1.xlsx")
    t = d.criteria
    tricky = ('a, b', 'nói "có"', "dòng 1\ndòng 2", "=1+1", " cách ", "\r")
    shown = ('a, b', 'nói "có"', "dòng 1 dòng 2", "'=1+1", " cách ", " ")
    d.criteria = CriterionTable(t.frame, t.score, t.self_score, t.status, t.source,
                                tuple(tricky[k % len(tricky)] for k in range(len(t))), t.row)
    write_csvs(dataclasses.replace(run, districts=[run.districts[0], d]), rb, tmp_path)
    df = pd.read_csv(tmp_path / "scores.csv", keep_default_na=False, dtype=str, encoding="utf-8-sig")
    assert len(df) == 2 * len(rb.scored_criteria)
    mine = df[df["district"] == 'Huyện "Mới", Gia Lai']
    assert mine["detail"].tolist() == [shown[k % len(shown)] for k in range(len(t))]
    assert set(mine["file"]) == {"thư mục/b,1.xlsx"}
    assert mine["row"].tolist() == [str(r) for r in t.row.tolist()]


def test_scores_csv_places_a_partial_result_by_code(run: RunResult, rb: Rulebook, tmp_path: Path):
    """A district whose results come in another order, one criterion short, gets the same rows as the full
    one in rulebook order, and a row with only the code, maximum, group and part for the missing one."""
    from kbang_egov.rules.results import CriterionTable

    full = run.districts[0]
    dropped = rb.scored_criteria[5]
    partial = dataclasses.replace(full, criteria=CriterionTable.of(
        [r for r in reversed(list(full.criteria)) if r.code != dropped.code]))
    write_csvs(dataclasses.replace(run, districts=[full]), rb, tmp_path / "full")
    write_csvs(dataclasses.replace(run, districts=[partial]), rb, tmp_path / "partial")
    want, got = (pd.read_csv(tmp_path / name / "scores.csv", keep_default_na=False, dtype=str, encoding="utf-8-sig")
                 for name in ("full", "partial"))
    assert len(got) == len(want) == len(rb.scored_criteria)
    assert got["code"].tolist() == want["code"].tolist() == [c.code for c in rb.scored_criteria]
    differ = got[(got != want).any(axis=1)]
    assert differ.to_dict("records") == [{
        "district": full.district, "code": dropped.code, "self_score": "", "score": "", "max": f"{dropped.max:g}",
        "gap": "", "source": "", "status": "", "detail": "", "group": dropped.group, "part": dropped.part,
        "file": full.file, "row": ""}]


def test_kad_keeps_its_style_when_the_first_district_has_none(run: RunResult, rb: Rulebook, tmp_path: Path):
    """KAD's grey italic when the first district has no KAD and every listed district submitted (no other
    cell uses that format)."""
    later = dataclasses.replace(run, districts=[run.districts[1], run.districts[0]], not_submitted=[])
    path = write_ranking_workbook(later, rb, tmp_path / "ranking.xlsx")
    ws = openpyxl.load_workbook(path)[SCORES_SHEET]
    kad = [c for c in ws[DETAIL_HEADER_ROW + 3] if c.value == "KAD"]
    assert kad and all(c.font.i and c.font.color.rgb.endswith("7F7F7F") for c in kad)


def test_findings_rows_wrap_long_messages(run: RunResult, rb: Rulebook, tmp_path: Path):
    long = make_finding("file-unreadable", "x.xlsx", reason="lý do rất dài " * 40)
    more = dataclasses.replace(run, findings=run.findings + [long])
    path = write_ranking_workbook(more, rb, tmp_path / "ranking.xlsx")
    ws = openpyxl.load_workbook(path)[FINDINGS_SHEET]
    last = ws.max_row
    assert last == len(more.findings) + 1
    header = {c.value: c.column for c in ws[1]}
    message, sheet, code = header["Nội dung"], header["Trang tính"], header["Mã lỗi"]
    assert ws.cell(last, message).value == long.message and ws.cell(last, message).alignment.wrap_text
    assert ws.row_dimensions[last].height >= 60  # several wrapped lines
    assert ws.cell(last, sheet).value is None  # a whole-file finding has no sheet: a blank cell
    assert [ws.cell(r, code).value for r in range(2, last + 1)] == [f.code for f in more.findings]
