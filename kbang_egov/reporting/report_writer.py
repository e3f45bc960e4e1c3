"""The consolidated outputs of a batch run: one Vietnamese workbook for officers, three CSVs for scripts.

Everything is written from the run's tables (tables.py: pandas DataFrames built from the RunResult);
nothing is scored or ranked here. Codes, names and maxima come from the rulebook so next year's criteria
need no change. Every file is written to a temporary name in its folder and renamed into place, so a
reader never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..forms.layout import column_letter
from ..operations.atomic import STAMP_FORMAT, write_replacing
from ..rules.findings import CONSEQUENCE, ERROR, REGISTRY, SEVERITY_VI, WARNING
from ..rules.results import COMPLETE, REJECTED, SCORED, SKIPPED_VI, SUPERSEDED, RunResult
from ..rules.rulebook import Rulebook, format_points
from ..text import printable
from .tables import NEAR, NO_COMPARISON_VI, SCORES_COLUMNS, RunTables, overview_facts, part_column, run_tables

RANKING_XLSX = "ranking.xlsx"
RANKING_CSV = "ranking.csv"
SCORES_CSV = "scores.csv"
FINDINGS_CSV = "findings.csv"

OVERVIEW_SHEET = "Tổng quan"
RANKING_SHEET = "Xếp hạng"
CHANGES_SHEET = "Diễn biến"
SCORES_SHEET = "Điểm chi tiết"
FINDINGS_SHEET = "Sai lệch"
FILES_SHEET = "Tệp lỗi"
STATS_SHEET = "Thống kê tiêu chí"
RUN_SHEET = "Thông tin lần chạy"
SHEETS = (OVERVIEW_SHEET, RANKING_SHEET, CHANGES_SHEET, SCORES_SHEET, FINDINGS_SHEET, FILES_SHEET, STATS_SHEET,
          RUN_SHEET)

RANKING_HEADER_ROW = 3  # 0-based: two title rows and the legend (what is rescaled) sit above the ranking table
DETAIL_HEADER_ROW = 2  # 0-based: the groups' and the criteria's names sit above the codes in Điểm chi tiết
DETAIL_PAIRS_PER_PAGE = 4  # criteria per printed page of Điểm chi tiết (A4 landscape at 85%)
CHANGES_HEADER_ROW = 3
CHART_TITLE = "Tổng điểm Chính quyền điện tử (quy đổi), theo phần"
NOT_SUBMITTED_VI = "Chưa nộp"
STATUS_COMPLETE_VI = "Hoàn chỉnh"
STATUS_TO_CORRECT_VI = "Cần sửa"
# Above the ranking's header: which figures are rescaled and which are plain sums, for every reader.
RANKING_LEGEND = ("Cột nhóm ({groups}) và 'Tổng cộng thẳng' cộng thẳng điểm chính thức của các tiêu chí. Cột phần "
                  "({parts}) và 'Tổng điểm' được quy đổi khi đơn vị có tiêu chí không áp dụng (điểm đạt / điểm "
                  "tối đa còn lại x điểm tối đa của phần) và dùng để xếp hạng; không có tiêu chí nào không áp "
                  "dụng thì bằng tổng cộng thẳng. 'Tổng tự khai' so với 'Tổng cộng thẳng'.")
NO_BAD_FILES_VI = "Không có tệp lỗi"

FILE_STATUS_VI = {
    SCORED: "Đã chấm",
    REJECTED: "Không chấm được",
    SUPERSEDED: "Bị thay thế bởi bản mới hơn",
}

# Short labels for the parts of the bundled rulebook; a part not listed here shows its rulebook name.
_PART_LABEL_VI = {"SS": "Điều kiện sẵn sàng", "KQ": "Kết quả"}

_MAX_CELL_TEXT = 32767  # Excel's limit on one cell's text
MAX_ROWS = 1_048_576  # Excel's rows per sheet
MAX_DETAIL_ROWS = MAX_ROWS - 1  # districts in Điểm chi tiết (below its header); more are in scores.csv
MAX_FINDING_ROWS = MAX_ROWS - 1  # findings in Sai lệch; more are in findings.csv
CSV_CHUNK = 100_000  # rows of a CSV converted to text at a time
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_DATE_FORMAT = "dd/mm/yyyy hh:mm"


class OutputError(Exception):
    """An output folder cannot be created or a file cannot be written; the message names the path."""


# --- public API ----------------------------------------------------------------------------------------


def write_outputs(run: RunResult, rulebook: Rulebook, out_dir: Path, tables: RunTables | None = None) -> list[Path]:
    """Write ranking.xlsx, ranking.csv, scores.csv and findings.csv into out_dir; return the paths written.

    The nightly run writes them into a folder of its own and publishes them together (publish.py). A file
    that cannot be replaced is written beside the old one with the run's time in its name, and the run's
    notices say so."""
    out = ensure_dir(Path(out_dir))
    tables = tables if tables is not None else run_tables(run, rulebook)
    return [write_ranking_workbook(run, rulebook, out / RANKING_XLSX, tables)] + write_csvs(run, rulebook, out,
                                                                                          tables)


def write_ranking_workbook(run: RunResult, rulebook: Rulebook, path: Path, tables: RunTables | None = None) -> Path:
    """Write the officers' workbook (ranking, detail, findings, bad files, statistics, run) to path."""
    path = Path(path)
    ensure_dir(path.parent)
    tables = tables if tables is not None else run_tables(run, rulebook)
    return _write_atomically(path, lambda tmp: _build_workbook(run, rulebook, tables, tmp), run)


def write_csvs(run: RunResult, rulebook: Rulebook, out_dir: Path, tables: RunTables | None = None) -> list[Path]:
    """Write ranking.csv, scores.csv and findings.csv into out_dir; return their paths."""
    out = ensure_dir(Path(out_dir))
    tables = tables if tables is not None else run_tables(run, rulebook)
    frames = ((RANKING_CSV, tables.ranking), (SCORES_CSV, tables.scores[list(SCORES_COLUMNS)]),
              (FINDINGS_CSV, tables.findings))
    return [_write_atomically(out / name, lambda tmp, f=frame: _write_csv(tmp, f), run) for name, frame in frames]


# --- the CSVs ------------------------------------------------------------------------------------------


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    """A UTF-8 CSV with a byte-order mark (Excel on Windows reads Vietnamese right only with it) and a header,
    every value as _csv_value shows it, lines ended as the csv module ends them. Converted and written CSV_CHUNK rows at a time: a national scores.csv as text would take a few hundred
    megabytes at once."""
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        for start in range(0, max(len(frame), 1), CSV_CHUNK):
            chunk = frame.iloc[start:start + CSV_CHUNK]
            shown = pd.DataFrame({c: _csv_column(chunk[c]) for c in frame.columns}, columns=frame.columns)
            shown.to_csv(fh, header=start == 0, index=False, lineterminator="\r\n")


def _csv_column(column: pd.Series) -> pd.Series:
    """A column as _csv_value shows it. Each distinct value is converted once: a national scores.csv has
    millions of rows and few distinct values in each column."""
    codes, uniques = pd.factorize(column)
    texts = np.array([_csv_value(v) for v in uniques] + [""], dtype=object)  # code -1: a missing value
    return pd.Series(texts[codes], index=column.index, dtype=object)


def _csv_value(v: object) -> str:
    """Numbers as plain decimals with a point (54.34, 60), blank for None or a non-finite number."""
    if v is None:
        return ""
    if isinstance(v, bool | np.bool_):
        return str(bool(v)).lower()
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        v = float(v)
        if not math.isfinite(v):
            return ""
        text = f"{v:.6f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    text = printable(str(v), _MAX_CELL_TEXT)
    # A spreadsheet opening the CSV would run '=...', '+...', '-...' or '@...' as a formula: keep it text.
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


# --- the workbook --------------------------------------------------------------------------------------


class _Formats:
    """The workbook's cell formats, made once (xlsxwriter keeps one record per format)."""

    def __init__(self, wb: Any) -> None:
        base = {"font_name": "Times New Roman", "font_size": 11, "valign": "top"}
        self.title = wb.add_format({**base, "bold": True, "font_size": 14})
        self.subtitle = wb.add_format({**base, "italic": True})
        self.legend = wb.add_format({**base, "italic": True, "text_wrap": True, "font_size": 10})
        self.header = wb.add_format({**base, "bold": True, "text_wrap": True, "valign": "vcenter",
                                     "align": "center", "bg_color": "#D9E1F2", "border": 1})
        self.text = wb.add_format(base)
        self.wrap = wb.add_format({**base, "text_wrap": True})
        self.left = wb.add_format({**base, "align": "left"})
        self.bold = wb.add_format({**base, "bold": True})
        self.int = wb.add_format({**base, "num_format": "0", "align": "center"})
        self.score = wb.add_format({**base, "num_format": "0.00"})
        self.bold_score = wb.add_format({**base, "num_format": "0.00", "bold": True})
        self.bytes = wb.add_format({**base, "num_format": "#,##0"})
        self.seconds = wb.add_format({**base, "num_format": "0.000"})
        self.date = wb.add_format({**base, "num_format": _DATE_FORMAT, "align": "left"})
        self.time = wb.add_format({**base, "num_format": "dd/mm/yyyy hh:mm:ss", "align": "left"})
        self.missing = wb.add_format({**base, "italic": True, "font_color": "#7F7F7F"})
        self.missing_wrap = wb.add_format({**base, "italic": True, "font_color": "#7F7F7F", "text_wrap": True})
        # A change: up (positive) as it is, down in red, no change as 0.
        self.change = wb.add_format({**base, "num_format": "+0;[Red]-0;0", "align": "center"})
        self.score_change = wb.add_format({**base, "num_format": "+0.00;[Red]-0.00;0.00"})
        small = {**base, "font_size": 9, "text_wrap": True, "border": 1, "bg_color": "#D9E1F2"}
        self.group_header = wb.add_format({**small, "bold": True, "align": "left", "valign": "vcenter"})
        self.name_header = wb.add_format({**small, "align": "left"})
        self.code_header = wb.add_format({**small, "bold": True, "align": "center", "valign": "vcenter"})
        # Conditional formats: Excel's own "light red fill with dark red text" and its amber twin.
        self.bad = wb.add_format({"bg_color": "#FFC7CE", "font_color": "#9C0006"})
        self.warn = wb.add_format({"bg_color": "#FFEB9C", "font_color": "#9C5700"})


def _build_workbook(run: RunResult, rb: Rulebook, tables: RunTables, path: Path) -> None:
    import xlsxwriter  # lazy: importing it costs time the CLI's other commands need not pay

    # constant_memory: each row goes to disk when the next one starts, so a national detail matrix (millions
    # of cells) is never held; every sheet is therefore written top to bottom.
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                         "strings_to_urls": False, "strings_to_numbers": False})
    try:
        fmt = _Formats(wb)
        sheets = {name: wb.add_worksheet(name) for name in SHEETS}
        parts_at = _write_ranking(sheets[RANKING_SHEET], fmt, run, rb, tables.ranking)
        _write_overview(wb, sheets[OVERVIEW_SHEET], fmt, run, rb, len(tables.ranking), parts_at)
        _write_changes(sheets[CHANGES_SHEET], fmt, run, rb, tables.changes)
        _write_scores(sheets[SCORES_SHEET], fmt, rb, tables.detail)
        _write_findings(sheets[FINDINGS_SHEET], fmt, rb, tables.findings)
        _write_bad_files(sheets[FILES_SHEET], fmt, tables.files)
        _write_stats(sheets[STATS_SHEET], fmt, tables.stats)
        _write_run(sheets[RUN_SHEET], fmt, run, tables.files)
    finally:
        wb.close()


def _write_ranking(ws: Any, fmt: _Formats, run: RunResult, rb: Rulebook, ranking: pd.DataFrame
                   ) -> dict[str, int]:
    """Sheet 2: one row per ranked district, then the districts that did not submit. What a meeting needs
    comes first and is the print area (A4 landscape at a readable size); the groups and the file follow on
    screen. Returns the column of each part (by code), for the overview's chart."""
    h = RANKING_HEADER_ROW
    _put(ws, 0, 0, f"KẾT QUẢ XẾP HẠNG NĂM {run.year or rb.year}", fmt.title)
    _put(ws, 1, 0, f"{rb.title} ({rb.label}); lần chạy kết thúc lúc {_naive(run.finished):%d/%m/%Y %H:%M}",
         fmt.subtitle)

    # (header, width, format, ranking.csv's column or the values themselves, comment on the header): every
    # comment holds for every row, with criteria not applicable or without.
    status = pd.Series([_status_vi(s, e) for s, e in zip(ranking["status"], ranking["errors"], strict=True)],
                       dtype=object)
    compared = run.comparison.label if run.comparison is not None else NO_COMPARISON_VI
    columns: list[tuple[str, float, Any, str | pd.Series, str]] = [
        ("Hạng", 8, fmt.int, "rank", ""),  # wide enough for "Chưa nộp" below the table
        ("Đơn vị", 22, fmt.bold, "district", ""),
        ("Tình trạng", 15, fmt.text, status,
         "Hoàn chỉnh: không còn lỗi. Cần sửa: còn lỗi phải sửa (số lỗi trong ngoặc); cảnh báo và sai lệch "
         "tổng điểm chỉ do lỗi khác (hệ quả) không tính là lỗi."),
    ]
    parts_at = {}
    for p in rb.parts:
        parts_at[p.code] = len(columns)
        columns.append((f"{_PART_LABEL_VI.get(p.code, p.name)} (/{format_points(p.max)}, quy đổi)", 11,
                        fmt.bold_score, part_column(p),
                        f"{p.name}. Quy đổi: điểm đạt / điểm tối đa còn lại x {format_points(p.max)} khi đơn vị "
                        "có tiêu chí không áp dụng; bằng tổng cộng thẳng các nhóm khi không có."))
        columns.append((f"Hạng {p.code}", 6, fmt.int, f"rank_{part_column(p)}", ""))
    columns += [
        (f"Tổng điểm (/{format_points(rb.total_max)}, quy đổi)", 11, fmt.bold_score, "total",
         f"{rb.total_name}: tổng các phần đã quy đổi. Cột dùng để xếp hạng."),
        ("Hạng trước", 7, fmt.int, "previous_rank", f"Hạng của đơn vị trong {compared}; trống: khi đó chưa được "
                                                     "xếp hạng."),
        ("Thay đổi hạng", 8, fmt.change, "rank_change", "Hạng trước trừ hạng nay: +2 là lên hai bậc, -1 là xuống "
                                                         "một bậc."),
        ("Số lỗi", 6, fmt.int, "errors", "Lỗi còn phải sửa. Sai lệch tổng điểm chỉ do lỗi khác (hệ quả) không tính."),
        ("Số cảnh báo", 8, fmt.int, "warnings", ""),
        ("Số tiêu chí không áp dụng", 9, fmt.int, "not_applicable",
         "Số tiêu chí đơn vị chọn 'Không áp dụng' và bộ tiêu chí chấp nhận: bỏ khỏi điểm tối đa."),
    ]
    printed_cols = len(columns)  # the print area: what the director reads on paper, A4 landscape, readable
    columns += [
        ("Tổng cộng thẳng", 10, fmt.score, "plain_total",
         "Tổng điểm chính thức của mọi tiêu chí, không quy đổi: con số để so với Tổng tự khai."),
        ("Tổng tự khai", 9, fmt.score, "declared_total", f"Tổng đơn vị ghi ở dòng {rb.total_code} của phiếu."),
        ("Chênh lệch", 9, fmt.score, "gap", "Tổng tự khai trừ Tổng cộng thẳng."),
        ("Điểm tối đa bỏ ra", 8, fmt.score, "max_removed",
         "Tổng điểm tối đa của các tiêu chí không áp dụng; các phần được quy đổi trên phần còn lại."),
    ]
    for g in rb.groups:
        columns.append((f"{g.code} (/{format_points(g.max)})", 10, fmt.score, g.code,
                        f"{g.name}. Cộng thẳng điểm chính thức các tiêu chí của nhóm, không quy đổi; tiêu chí "
                        "không áp dụng không có điểm."))
    columns.append(("Tệp", 30, fmt.text, "file", ""))
    at = {values: j for j, (_, _, _, values, _) in enumerate(columns) if isinstance(values, str)}
    status_col, gap_col, na_col = 2, at["gap"], at["not_applicable"]
    err_col, warn_col = at["errors"], at["warnings"]
    last = h + len(ranking)
    last_col = len(columns) - 1

    legend = RANKING_LEGEND.format(groups=", ".join(g.code for g in rb.groups),
                                   parts=", ".join(_PART_LABEL_VI.get(p.code, p.name) for p in rb.parts))
    ws.set_row(h - 1, 42)
    ws.merge_range(h - 1, 0, h - 1, printed_cols - 1, legend, fmt.legend)
    _write_header(ws, fmt, [(title, width) for title, width, _, _, _ in columns], h)
    ws.set_row(h, 60)  # "Điều kiện sẵn sàng (/60, quy đổi)" wraps over four lines
    for j, (_, _, _, _, comment) in enumerate(columns):
        if comment:
            ws.write_comment(h, j, comment, {"x_scale": 2})
    table = pd.concat([ranking[values] if isinstance(values, str) else values for _, _, _, values, _ in columns],
                      axis=1)
    _write_rows(ws, h + 1, table, [cell_format for _, _, cell_format, _, _ in columns])
    # After a blank row, outside the filter range: listed districts with no scored submission.
    absent = pd.DataFrame([(NOT_SUBMITTED_VI, name, run.not_submitted_notes.get(name)) for name in run.not_submitted])
    _write_rows(ws, last + 2, absent, [fmt.missing] * 3)

    ws.autofilter(h, 0, last, last_col)
    ws.freeze_panes(h + 1, 2)
    if len(ranking):
        ws.conditional_format(h + 1, status_col, last, status_col, {
            "type": "text", "criteria": "begins with", "value": STATUS_TO_CORRECT_VI, "format": fmt.bad})
        _highlight_nonzero(ws, h + 1, gap_col, last, gap_col, fmt.bad)
        _highlight_positive(ws, h + 1, na_col, last, na_col, fmt.warn)
        _highlight_positive(ws, h + 1, err_col, last, err_col, fmt.bad)
        _highlight_positive(ws, h + 1, warn_col, last, warn_col, fmt.warn)
    _print_setup(ws, header_row=h)
    ws.print_area(0, 0, last + 1 + len(run.not_submitted), printed_cols - 1)
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    return parts_at


def _write_overview(wb: Any, ws: Any, fmt: _Formats, run: RunResult, rb: Rulebook, ranked: int,
                    parts_at: dict[str, int]) -> None:
    """Sheet 1, for the director: where and when, returns against the list, complete or to correct, the
    deadline and who is late, best and weakest, what the ranks are compared with; the chart beside. One
    A4 landscape page. The same facts, in the same words, as the run summary (tables.overview_facts)."""
    ws.set_column(0, 0, 20)
    ws.set_column(1, 1, 50)
    ws.set_column(2, 2, 1)
    _put(ws, 0, 0, f"TỔNG QUAN ĐÁNH GIÁ CHÍNH QUYỀN ĐIỆN TỬ CẤP HUYỆN NĂM {run.year or rb.year}", fmt.title)
    _put(ws, 1, 0, f"{rb.title} ({rb.label})", fmt.subtitle)
    rows = [(label, value, fmt.missing_wrap if not known else fmt.time if isinstance(value, dt.datetime)
             else fmt.left if isinstance(value, int) else fmt.wrap)
            for label, value, known in overview_facts(run, rb.year)]
    first = 3
    for i, (label, value, cell_fmt) in enumerate(rows):
        _put(ws, first + i, 0, label, fmt.bold)
        _put(ws, first + i, 1, value, cell_fmt)
        if isinstance(value, str) and len(value) > 50:
            ws.set_row(first + i, _wrapped_height(value, 50))
    note = first + len(rows) + 1
    _put(ws, note, 0, "Chi tiết: Xếp hạng, Diễn biến, Sai lệch (lỗi từng ô), Tệp lỗi.", fmt.subtitle)
    if ranked:
        chart = wb.add_chart({"type": "bar", "subtype": "stacked"})
        h = RANKING_HEADER_ROW
        for p in rb.parts:
            col = parts_at[p.code]
            chart.add_series({
                "name": _PART_LABEL_VI.get(p.code, p.name),
                "categories": [RANKING_SHEET, h + 1, 1, h + ranked, 1],
                "values": [RANKING_SHEET, h + 1, col, h + ranked, col],
                "gap": 60,
            })
        chart.set_title({"name": CHART_TITLE, "name_font": {"size": 11}})
        chart.set_legend({"position": "bottom"})
        chart.set_x_axis({"min": 0, "max": rb.total_max, "num_format": "0", "major_unit": 10})
        chart.set_y_axis({"reverse": True, "num_font": {"size": 10}})  # rank 1 on top, as in the table
        chart.set_size({"width": 520, "height": min(max(300, 18 * ranked + 100), 560)})
        ws.insert_chart(first, 3, chart)
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 1)  # one page, whatever the lists hold
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)


def _write_changes(ws: Any, fmt: _Formats, run: RunResult, rb: Rulebook, changes: pd.DataFrame) -> None:
    """Sheet 3: rank, total and parts before and now, and the change, against the previous run or the
    baseline; a district ranked on one side only has blanks on the other."""
    h = CHANGES_HEADER_ROW
    _put(ws, 0, 0, "DIỄN BIẾN XẾP HẠNG", fmt.title)
    _put(ws, 1, 0, f"So sánh với {run.comparison.label}" if run.comparison is not None
         else "Chưa có gì để so sánh: đây là lần chạy đầu tiên trong thư mục kết quả (hoặc dùng --baseline TỆP).",
         fmt.subtitle)
    headers = [("Đơn vị", 22), ("Hạng trước", 7), ("Hạng nay", 7), ("Thay đổi hạng", 8),
               ("Tổng điểm trước", 9), ("Tổng điểm nay", 9), ("Thay đổi tổng điểm", 9)]
    formats = [fmt.bold, fmt.int, fmt.int, fmt.change, fmt.score, fmt.score, fmt.score_change]
    for p in rb.parts:
        label = _PART_LABEL_VI.get(p.code, p.name)
        headers += [(f"{label} trước", 9), (f"{label} nay", 9), (f"Thay đổi {label.lower()}", 9)]
        formats += [fmt.score, fmt.score, fmt.score_change]
    _write_header(ws, fmt, headers, h)
    _write_rows(ws, h + 1, changes, formats)
    ws.autofilter(h, 0, h + max(len(changes), 1), len(headers) - 1)
    ws.freeze_panes(h + 1, 1)
    _print_setup(ws, header_row=h)


def _write_scores(ws: Any, fmt: _Formats, rb: Rulebook, detail: pd.DataFrame) -> None:
    """Sheet 4: one row per ranked district; for every scored criterion its self-score beside its official
    score (KAD where not applicable), the official one highlighted where they differ. Above the codes, each
    criterion's name over its two columns and each group's name over its criteria. Printed landscape with
    the rank and district repeated on every page. The long form (source, detail, row in the district's file)
    is scores.csv."""
    criteria = rb.scored_criteria
    h = DETAIL_HEADER_ROW
    width = 10  # each of a criterion's two columns: its name wraps over 2 x 10 characters
    # Rows 0 and 1 are written whole before row 2 (the sheet is written top to bottom, constant_memory).
    ws.set_row(0, 30)
    _put(ws, 0, 1, "Nhóm tiêu chí", fmt.group_header)
    start = 2
    for g in rb.groups:
        n = 2 * sum(1 for c in criteria if c.group == g.code)
        if n:
            _merge(ws, 0, start, start + n - 1, f"{g.code}. {g.name}", fmt.group_header)
            start += n
    longest = max((len(c.name) for c in criteria), default=0)
    ws.set_row(1, min(12.0 * max(1, math.ceil(longest / (2 * width * 1.1))), 160))
    _put(ws, 1, 1, "Tiêu chí", fmt.group_header)
    for k, c in enumerate(criteria):
        _merge(ws, 1, 2 + 2 * k, 3 + 2 * k, c.name, fmt.name_header)
    ws.set_row(h, 30)
    for j, title in enumerate(["Hạng", "Đơn vị"] + [f"{c.code} {label}" for c in criteria
                                                    for label in ("tự đánh giá", "chính thức")]):
        _put(ws, h, j, title, fmt.code_header)
    ws.set_column(0, 0, 6)
    ws.set_column(1, 1, 22)
    ws.set_column(2, 1 + 2 * len(criteria), width)
    rows = detail.iloc[:MAX_DETAIL_ROWS - h]
    _write_rows(ws, h + 1, rows, [fmt.int, fmt.text] + [fmt.score] * (2 * len(criteria)),
                text_formats=[fmt.text, fmt.text] + [fmt.missing] * (2 * len(criteria)))
    last = h + len(rows)
    ws.autofilter(h, 0, max(last, h + 1), len(detail.columns) - 1)
    ws.freeze_panes(h + 1, 2)
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.set_print_scale(85)  # a readable size; the matrix runs over as many pages as it needs, across first
    ws.print_across()
    # A page break every DETAIL_PAIRS_PER_PAGE criteria, so no criterion's two columns are split over two pages.
    ws.set_v_pagebreaks([2 + 2 * k for k in range(DETAIL_PAIRS_PER_PAGE, len(criteria), DETAIL_PAIRS_PER_PAGE)])
    ws.repeat_rows(0, h)
    ws.repeat_columns(0, 1)
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    if len(rows) and criteria:
        # One rule over every official column; its formula is written for the first one (C beside D) and, as
        # in Excel, moves with each column of the ranges it applies to (E beside F, ...).
        first, end = h + 2, last + 1  # the first and last districts' rows, 1-based, as formulas name them
        columns = [column_letter(3 + 2 * k) for k in range(len(criteria))]
        ws.conditional_format(h + 1, 3, last, 3, {
            "type": "formula", "format": fmt.bad,
            "multi_range": " ".join(f"{c}{first}:{c}{end}" for c in columns),
            "criteria": f"=AND(ISNUMBER(C{first}),ISNUMBER(D{first}),ABS(C{first}-D{first})>{NEAR})"})


def _merge(ws: Any, row: int, first_col: int, last_col: int, text: str, cell_format: Any) -> None:
    """A title over several columns of one row (one column: a plain cell; merge_range refuses one)."""
    if last_col > first_col:
        ws.merge_range(row, first_col, row, last_col, printable(text, _MAX_CELL_TEXT), cell_format)
    else:
        _put(ws, row, first_col, text, cell_format)


def _write_findings(ws: Any, fmt: _Formats, rb: Rulebook, findings: pd.DataFrame) -> None:
    """Sheet 5: every finding, with the district, sheet and cell where a person fixes it, the criterion's
    name and what to do; only the severity cell is coloured (errors red, warnings amber), so the rows stay
    readable. Those columns come first and are the print area (A4 landscape, readable); the finding's title
    and code and the file follow on screen."""
    headers = [("Đơn vị", 20), ("Trang tính", 11), ("Ô", 6), ("Mã", 9), ("Tiêu chí", 30), ("Mức độ", 9),
               ("Nội dung", 60), ("Loại lỗi", 28), ("Mã lỗi", 26), ("Tệp", 28)]
    printed, severity_col, name_col, message_col = 7, 5, 4, 6
    _write_header(ws, fmt, headers)
    rows = findings.iloc[:MAX_FINDING_ROWS]
    titles = {code: t.title for code, t in REGISTRY.items()}
    names = {c.code: c.name for c in rb.criteria}
    names.update({g.code: g.name for g in rb.groups})
    names.update({p.code: p.name for p in rb.parts})
    names[rb.total_code] = rb.total_name
    criterion = rows["code"].map(lambda c: names.get(c, "")).rename("name")
    table = pd.concat([rows[["district", "sheet", "cell", "code"]], criterion,
                       rows["severity"].map(lambda s: SEVERITY_VI.get(s, s)), rows["message"],
                       rows["finding"].map(titles), rows[["finding", "file"]]], axis=1)
    lines = pd.concat([rows["message"].str.len() / headers[message_col][1],
                       criterion.str.len() / headers[name_col][1]], axis=1).max(axis=1)
    formats = [fmt.text] * len(headers)
    formats[name_col] = formats[message_col] = fmt.wrap
    _write_rows(ws, 1, table, formats, heights=lines.map(lambda n: 15.0 * max(1, math.ceil(n / 1.1))))
    last = len(rows)
    _finish_table(ws, last, len(headers) - 1, freeze_cols=0)
    ws.print_area(0, 0, max(last, 1), printed - 1)
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    if last:
        letter = column_letter(severity_col)
        for level, cell_fmt in ((ERROR, fmt.bad), (WARNING, fmt.warn)):
            ws.conditional_format(1, severity_col, last, severity_col, {
                "type": "formula", "criteria": f'=${letter}2="{SEVERITY_VI[level]}"', "format": cell_fmt})


def _write_bad_files(ws: Any, fmt: _Formats, files: pd.DataFrame) -> None:
    """Sheet 4: files that were not scored (rejected) or lost to a newer file of the same district."""
    headers = [("Tệp", 30), ("Đơn vị", 22), ("Trạng thái", 26), ("Mã lỗi", 24), ("Lý do", 80),
               ("Kích thước (byte)", 12), ("Ngày sửa", 16), ("SHA-256", 66)]
    _write_header(ws, fmt, headers)
    bad = files[files["status"].isin([REJECTED, SUPERSEDED])]
    table = pd.concat([bad[["file", "district"]], bad["status"].map(lambda s: FILE_STATUS_VI.get(s, s)),
                       bad["codes"].map(", ".join), bad[["reason", "size", "modified", "sha256"]]], axis=1)
    _write_rows(ws, 1, table, [fmt.text, fmt.text, fmt.text, fmt.text, fmt.wrap, fmt.bytes, fmt.date, fmt.text],
                heights=bad["reason"].map(lambda text: _wrapped_height(text, headers[4][1])))
    if not len(bad):
        _put(ws, 1, 0, NO_BAD_FILES_VI, fmt.missing)
    _finish_table(ws, max(len(bad), 1), len(headers) - 1, freeze_cols=1)


def _write_stats(ws: Any, fmt: _Formats, stats: pd.DataFrame) -> None:
    """Sheet 5: criterion statistics across districts (tables.criterion_stats_frame's columns, in order)."""
    headers = [("Mã", 10), ("Tiêu chí", 60), ("Nhóm", 8), ("Điểm tối đa", 9), ("Số đơn vị đạt tối đa", 11),
               ("Số đơn vị đạt một phần", 11), ("Số đơn vị 0 điểm", 11), ("Không áp dụng", 11),
               ("Điểm trung bình", 11), ("Số đơn vị tự chấm sai", 11)]
    _write_header(ws, fmt, headers)
    _write_rows(ws, 1, stats, [fmt.text, fmt.text, fmt.text, fmt.score, fmt.int, fmt.int, fmt.int, fmt.int,
                               fmt.score, fmt.int])
    _finish_table(ws, len(stats), len(headers) - 1, freeze_cols=2)
    if len(stats):
        _highlight_positive(ws, 1, 6, len(stats), 6, fmt.warn)
        _highlight_positive(ws, 1, 9, len(stats), 9, fmt.bad)


def _write_run(ws: Any, fmt: _Formats, run: RunResult, files: pd.DataFrame) -> None:
    """Sheet 6: what was run on what, so a ranking can be traced and reproduced; then every input file."""
    for j, width in enumerate((36, 66, 16, 16, 26, 24, 14)):
        ws.set_column(j, j, width)
    rejected = sum(1 for f in run.files if f.status == REJECTED)
    superseded = sum(1 for f in run.files if f.status == SUPERSEDED)
    skipped = ", ".join(f"{SKIPPED_VI.get(k, k)}: {n}" for k, n in run.skipped.items() if n)
    rows: list[tuple[str, object, Any, str]] = [
        ("Thời gian bắt đầu", run.started, fmt.time, ""),
        ("Thời gian kết thúc", run.finished, fmt.time, ""),
        ("Mã lần chạy", run.run_id, fmt.text, "trùng với run_id trong manifest.json của lần chạy"),
        ("Thư mục đầu vào", run.input_dir, fmt.text, ""),
        ("Bộ tiêu chí", f"{run.rulebook_id} {run.rulebook_version}", fmt.text, ""),
        ("Mã băm bộ tiêu chí", run.rulebook_hash, fmt.text, ""),
        ("Phiên bản công cụ", run.tool_version, fmt.text, ""),
        ("Tin điểm tự đánh giá khi thiếu số liệu", "Có" if run.trust_self_scores else "Không", fmt.text, ""),
        ("Số tệp đọc", len(run.files), fmt.left, ""),
        ("Số đơn vị được xếp hạng", len(run.districts), fmt.left, ""),
        ("Số tệp lỗi", rejected, fmt.left, ""),
        ("Số tệp bị thay thế", superseded, fmt.left, ""),
        ("Chưa nộp", len(run.not_submitted), fmt.left,
         ", ".join(f"{n} ({run.not_submitted_notes[n]})" if n in run.not_submitted_notes else n
                   for n in run.not_submitted)),
        ("Số tệp bỏ qua", sum(run.skipped.values()), fmt.left, skipped),
        ("Số lỗi", run.count(ERROR), fmt.left, ""),
        ("Số cảnh báo", run.count(WARNING), fmt.left, ""),
        ("Số sai lệch hệ quả (không tính lỗi)", run.count(CONSEQUENCE), fmt.left, ""),
    ]
    for i, (label, value, cell_fmt, note) in enumerate(rows):
        _put(ws, i, 0, label, fmt.bold)
        _put(ws, i, 1, value, cell_fmt)
        if note:
            _put(ws, i, 2, note, fmt.text)

    h = len(rows) + 1
    headers = ("Tệp", "SHA-256", "Kích thước (byte)", "Ngày sửa", "Trạng thái", "Đơn vị", "Thời gian xử lý (s)")
    ws.set_row(h, 30)
    for j, title in enumerate(headers):
        _put(ws, h, j, title, fmt.header)
    table = pd.concat([files[["file", "sha256", "size", "modified"]],
                       files["status"].map(lambda s: FILE_STATUS_VI.get(s, s)), files[["district", "seconds"]]], axis=1)
    _write_rows(ws, h + 1, table, [fmt.text, fmt.text, fmt.bytes, fmt.date, fmt.text, fmt.text, fmt.seconds])
    # No frozen rows here: the key/value block above the table would eat the screen.
    ws.autofilter(h, 0, h + len(files), len(headers) - 1)
    _print_setup(ws, header_row=None)


# --- cell helpers --------------------------------------------------------------------------------------


def _write_rows(ws: Any, first_row: int, table: pd.DataFrame, formats: Sequence[Any],
                text_formats: Sequence[Any] | None = None, heights: pd.Series | None = None) -> None:
    """Write a table's rows from first_row down, column j in formats[j] (its text in text_formats[j] when
    given), each row `heights` points high when given (xlsxwriter cannot autofit rows)."""
    texts = formats if text_formats is None else text_formats
    shown = heights.tolist() if heights is not None else None
    for i, row in enumerate(table.itertuples(index=False, name=None)):
        for j, value in enumerate(row):
            _put(ws, first_row + i, j, value, texts[j] if value.__class__ is str else formats[j])
        if shown is not None:
            ws.set_row(first_row + i, shown[i])


def _put(ws: Any, row: int, col: int, value: object, cell_format: Any = None) -> None:
    """Write one value by its type, as cell_value gives it: text always as text (a district's '=...' or
    '+84...' stays text), numbers as numbers, None, an empty text or a non-finite number as a blank cell
    that keeps its format; a date as a date."""
    if value.__class__ is float:  # most cells: a score
        if math.isfinite(value):
            ws.write_number(row, col, value, cell_format)
        else:
            ws.write_blank(row, col, None, cell_format)
        return
    if isinstance(value, dt.datetime):
        ws.write_datetime(row, col, _naive(value), cell_format)
        return
    value = cell_value(value)
    if value is None or value == "" or (value.__class__ is float and not math.isfinite(value)):
        ws.write_blank(row, col, None, cell_format)
    elif value.__class__ is str:
        ws.write_string(row, col, value, cell_format)
    else:
        ws.write_number(row, col, value, cell_format)


def cell_value(value: object) -> object:
    """A value as a cell holds it: text made printable, a bool as Có/Không, numbers as Python's own."""
    if value is None or value.__class__ is float or value.__class__ is int:
        return value
    if isinstance(value, bool | np.bool_):
        return "Có" if value else "Không"
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return printable(value if isinstance(value, str) else str(value), _MAX_CELL_TEXT)


def _naive(when: dt.datetime) -> dt.datetime:
    """Excel has no time zones: show an aware time in the machine's local time."""
    return when.astimezone().replace(tzinfo=None) if when.tzinfo is not None else when


def _wrapped_height(text: str, width: float) -> float:
    """Row height for text wrapped in a column `width` characters wide: xlsxwriter cannot autofit rows."""
    lines = sum(max(1, math.ceil(len(line) / max(width * 1.1, 1))) for line in (text or "").split("\n"))
    return 15.0 * max(1, lines)


def _write_header(ws: Any, fmt: _Formats, headers: Sequence[tuple[str, float]], row: int = 0) -> None:
    ws.set_row(row, 45)
    for j, (title, width) in enumerate(headers):
        _put(ws, row, j, title, fmt.header)
        ws.set_column(j, j, width)


def _finish_table(ws: Any, last_row: int, last_col: int, freeze_cols: int) -> None:
    """Autofilter over a table whose header is row 0, and keep the header (and key columns) in view."""
    ws.autofilter(0, 0, last_row, last_col)
    ws.freeze_panes(1, freeze_cols)
    _print_setup(ws, header_row=0)


def _print_setup(ws: Any, header_row: int | None) -> None:
    """Landscape, one page wide, header repeated: these sheets get printed for meetings."""
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)
    if header_row is not None:
        ws.repeat_rows(header_row)


def _highlight_nonzero(ws: Any, r1: int, c1: int, r2: int, c2: int, cell_fmt: Any) -> None:
    # Blank cells compare as 0, so a missing declared value is not flagged here.
    ws.conditional_format(r1, c1, r2, c2, {"type": "cell", "criteria": "!=", "value": 0, "format": cell_fmt})


def _highlight_positive(ws: Any, r1: int, c1: int, r2: int, c2: int, cell_fmt: Any) -> None:
    ws.conditional_format(r1, c1, r2, c2, {"type": "cell", "criteria": ">", "value": 0, "format": cell_fmt})


def _status_vi(status: str, errors: int) -> str:
    """A district's status as the director reads it: complete, or to be corrected with the errors left."""
    return STATUS_COMPLETE_VI if status == COMPLETE else f"{STATUS_TO_CORRECT_VI} ({errors} lỗi)"


# --- files ---------------------------------------------------------------------------------------------


def ensure_dir(path: Path) -> Path:
    """Create the output folder; OutputError naming it when that fails."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"không tạo được thư mục kết quả {path}: {exc.strerror or exc}; chọn cho --out một thư "
                          "mục ghi được") from exc
    return path


def _write_atomically(target: Path, write: Callable[[Path], None], run: RunResult) -> Path:
    try:
        path, notice = write_replacing(target, write, run.started.strftime(STAMP_FORMAT))
    except OSError as exc:
        raise OutputError(f"không ghi được {target}: {exc.strerror or exc}; kiểm tra ổ đĩa còn chỗ và thư mục kết "
                          "quả ghi được") from exc
    if notice:
        run.notices.append(notice)
    return path
