"""The consolidated outputs of a batch run: one Vietnamese workbook for officers, three CSVs for scripts.

Everything is read from a RunResult and the rulebook; nothing is scored or ranked here. Codes, names and
maxima come from the rulebook so next year's criteria need no change. Every file is written to a
temporary name in its folder and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import itertools
import math
import numbers
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import STAMP_FORMAT, write_replacing
from .findings import ERROR, REGISTRY, SEVERITY_VI, WARNING, Finding
from .layout import column_letter
from .matrix import ScoreMatrix, score_matrix
from .results import (
    COMPUTED,
    NOT_APPLICABLE,
    REJECTED,
    SCORED,
    SOURCES,
    STATUSES,
    SUPERSEDED,
    TRUSTED,
    ZERO,
    DistrictResult,
    RunResult,
)
from .rulebook import Part, Rulebook, format_points
from .sheetxml import MAX_ROWS, Spliced, column_letters, rows_xml, splice_rows
from .text import printable

RANKING_XLSX = "ranking.xlsx"
RANKING_CSV = "ranking.csv"
SCORES_CSV = "scores.csv"
FINDINGS_CSV = "findings.csv"

RANKING_SHEET = "Xếp hạng"
SCORES_SHEET = "Điểm chi tiết"
FINDINGS_SHEET = "Sai lệch"
FILES_SHEET = "Tệp lỗi"
STATS_SHEET = "Thống kê tiêu chí"
RUN_SHEET = "Thông tin lần chạy"
SHEETS = (RANKING_SHEET, SCORES_SHEET, FINDINGS_SHEET, FILES_SHEET, STATS_SHEET, RUN_SHEET)

RANKING_HEADER_ROW = 3  # 0-based: two title rows and a blank row sit above the ranking table
CHART_TITLE = "Tổng điểm Chính quyền điện tử"
NOT_SUBMITTED_VI = "Chưa nộp"
NO_BAD_FILES_VI = "Không có tệp lỗi"

SOURCE_VI = {
    COMPUTED: "Tính lại từ số liệu",
    TRUSTED: "Lấy điểm tự đánh giá",
    ZERO: "Thiếu/sai số liệu: 0 điểm",
    NOT_APPLICABLE: "Không áp dụng",
}
FILE_STATUS_VI = {
    SCORED: "Đã chấm",
    REJECTED: "Không chấm được",
    SUPERSEDED: "Bị thay thế bởi bản mới hơn",
}
SKIPPED_VI = {"lock": "tệp khoá của Office", "hidden": "tệp ẩn"}

# Short labels for the parts of the bundled rulebook; a part not listed here shows its rulebook name.
_PART_LABEL_VI = {"SS": "Điều kiện sẵn sàng", "KQ": "Kết quả"}
# English column names of ranking.csv for the bundled rulebook's parts; others use the code in lower case.
_PART_COLUMN = {"SS": "readiness", "KQ": "results"}

SCORES_COLUMNS = ("district", "code", "self_score", "score", "max", "gap", "source", "status", "detail",
                  "group", "part", "file", "row")
FINDINGS_COLUMNS = ("file", "sheet", "cell", "district", "code", "finding", "severity", "message")

# Two scores closer than this are the same score: officials read them to 2 decimals.
_EPS = 0.005
_MAX_CELL_TEXT = 32767  # Excel's limit on one cell's text
MAX_DETAIL_ROWS = MAX_ROWS - 1  # districts in Điểm chi tiết (below its header); more are in scores.csv
NOT_APPLICABLE_SHORT = "KAD"  # "Không áp dụng", as the template's list names it
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_DATE_FORMAT = "dd/mm/yyyy hh:mm"
_XML_BYTES_PER_FINDING = 2 * (9 * 64 + 4 * 1000)  # a finding's row: nine cells, texts clipped to 1,000 characters
_XML_BYTES_PER_CELL = 96  # more than a detail cell's XML takes (about 35 bytes; a long name in column B)



class OutputError(Exception):
    """An output folder cannot be created or a file cannot be written; the message names the path."""


# --- public API ----------------------------------------------------------------------------------------


def write_outputs(run: RunResult, rulebook: Rulebook, out_dir: Path) -> list[Path]:
    """Write ranking.xlsx, ranking.csv, scores.csv and findings.csv into out_dir; return the paths written.

    A file that cannot be replaced is written beside the old one with the run's time in its name, and the
    run's notices say so."""
    out = ensure_dir(Path(out_dir))
    return [write_ranking_workbook(run, rulebook, out / RANKING_XLSX), *write_csvs(run, rulebook, out)]


def write_ranking_workbook(run: RunResult, rulebook: Rulebook, path: Path) -> Path:
    """Write the officers' workbook (ranking, detail, findings, bad files, statistics, run) to path."""
    path = Path(path)
    ensure_dir(path.parent)
    return _write_atomically(path, lambda tmp: _build_workbook(run, rulebook, tmp), run)


def write_csvs(run: RunResult, rulebook: Rulebook, out_dir: Path) -> list[Path]:
    """Write ranking.csv, scores.csv and findings.csv into out_dir; return their paths."""
    out = ensure_dir(Path(out_dir))
    ranking = ranking_columns(rulebook)
    tables = (
        (RANKING_CSV, ranking, lambda: ([rec[k] for k in ranking] for rec in ranking_records(run, rulebook)), False),
        (SCORES_CSV, SCORES_COLUMNS, lambda: score_lines(run, rulebook), True),
        (FINDINGS_CSV, FINDINGS_COLUMNS, lambda: (list(f.record().values()) for f in run.findings), False),
    )
    paths = []
    for name, columns, rows, converted in tables:
        paths.append(_write_atomically(
            out / name, lambda tmp, c=columns, r=rows, cv=converted: _write_csv(tmp, c, r(), cv), run))
    return paths


# --- flat records (the CSVs) ---------------------------------------------------------------------------


def part_column(part: Part) -> str:
    """The English column name of a part in ranking.csv: readiness, results, or the code in lower case."""
    return _PART_COLUMN.get(part.code, part.code.lower())


def ranking_columns(rulebook: Rulebook) -> tuple[str, ...]:
    """The header of ranking.csv: parts and groups follow the rulebook, so next year's file needs no code change."""
    parts = [part_column(p) for p in rulebook.parts]
    return ("rank", "district", *parts, "total", "declared_total", "gap",
            *(f"rank_{p}" for p in parts), *(g.code for g in rulebook.groups), "errors", "warnings", "file")


def ranking_records(run: RunResult, rulebook: Rulebook) -> list[dict[str, Any]]:
    """One row per ranked district, in rank order; districts that did not submit are not ranked."""
    out = []
    for d in run.districts:
        total = d.subtotals.get(rulebook.total_code)
        rec: dict[str, Any] = {"rank": d.rank or None, "district": d.district}
        for p in rulebook.parts:
            rec[part_column(p)] = _scaled(d, p.code)
        rec["total"] = total.scaled if total else None
        rec["declared_total"] = total.declared if total else None
        rec["gap"] = total.gap if total else None
        for p in rulebook.parts:
            rec[f"rank_{part_column(p)}"] = d.part_ranks.get(p.code)
        for g in rulebook.groups:
            rec[g.code] = _scaled(d, g.code)
        rec.update(errors=d.errors, warnings=d.warnings, file=d.file)
        out.append(rec)
    return out


def score_lines(run: RunResult, rulebook: Rulebook) -> Iterator[str]:
    """scores.csv's rows as CSV lines: one per district and scored criterion, in rank then rulebook order.
    Millions of rows at national scale: what is the same for every district is converted once, and the
    numbers and details that repeat across districts are converted once each."""
    per_criterion = [(_csv_field(c.code), _csv_field(_csv_value(c.max)), _csv_field(c.group), _csv_field(c.part))
                     for c in rulebook.scored_criteria]
    statuses, sources = [_csv_field(x) for x in STATUSES], [_csv_field(x) for x in SOURCES]
    numbers: dict[float, str] = {}
    detail_texts: dict[str, str] = {}

    def number(v: float) -> str:
        text = numbers.get(v)
        if text is None:
            text = numbers[v] = _csv_field(_csv_value(v))
            if len(numbers) > 100_000:  # typed self-scores vary: keep the memo bounded
                numbers.clear()
        return text

    def detail(v: str) -> str:
        text = detail_texts.get(v)
        if text is None:
            text = detail_texts[v] = _csv_field(_csv_value(v))
            if len(detail_texts) > 100_000:  # free text in details: keep the memo bounded
                detail_texts.clear()
        return text

    codes = tuple(c.code for c in rulebook.scored_criteria)
    zero = number(0.0)
    for d in run.districts:
        t = d.criteria
        score, own, status, source, row = (t.score.tolist(), t.self_score.tolist(), t.status.tolist(),
                                           t.source.tolist(), t.row.tolist())
        details = t.detail
        head, tail = _csv_field(_csv_value(d.district)) + ",", "," + _csv_field(_csv_value(d.file)) + ","
        if t.frame.codes == codes:  # the usual case: every criterion, in rulebook order
            at: Sequence[int | None] = range(len(codes))
        else:
            index = {code: k for k, code in enumerate(t.frame.codes)}
            at = [index.get(code) for code in codes]
        for k, (code, max_points, group, part) in zip(at, per_criterion, strict=True):
            if k is None:
                yield f"{head}{code},,,{max_points},,,,,{group},{part}{tail}{_LINE_END}"
                continue
            s, o = score[k], own[k]
            official = numbers.get(s) or number(s)
            if o != o:  # nan: no self-score
                own_text = gap = ""
            else:
                own_text = numbers.get(o) or number(o)
                gap = zero if o == s else number(round(o - s, 2))
            text = details[k]
            shown = detail_texts.get(text) or detail(text)
            yield (f"{head}{code},{own_text},{official},{max_points},{gap},{sources[source[k]]},"
                   f"{statuses[status[k]]},{shown},{group},{part}{tail}{row[k] or ''}{_LINE_END}")


_LINE_END = "\r\n"  # as the csv module ends lines
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def _csv_field(text: str) -> str:
    """One field as the csv module writes it (QUOTE_MINIMAL): quoted, with quotes doubled, only when needed."""
    return '"' + text.replace('"', '""') + '"' if _NEEDS_QUOTES.search(text) else text


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]] | Iterable[str],
               lines: bool = False) -> None:
    """A UTF-8 CSV with a header; with `lines`, rows are CSV lines already (see score_lines)."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        if lines:
            fh.writelines(rows)  # type: ignore[arg-type]
        else:
            writer.writerows([_csv_value(v) for v in row] for row in rows)  # type: ignore[union-attr]


def _csv_value(v: object) -> str:
    """Numbers as plain decimals with a point (54.34, 60), blank for None or a non-finite number."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
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
        # Conditional formats: Excel's own "light red fill with dark red text" and its amber twin.
        self.bad = wb.add_format({"bg_color": "#FFC7CE", "font_color": "#9C0006"})
        self.warn = wb.add_format({"bg_color": "#FFEB9C", "font_color": "#9C5700"})


def _build_workbook(run: RunResult, rb: Rulebook, path: Path) -> None:
    import xlsxwriter  # lazy: importing it costs time the CLI's other commands need not pay

    # xlsxwriter builds everything but the long sheets' rows in memory (a few MB at national scale); those
    # rows are then formatted as XML and streamed into the file as it is copied to path.
    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"strings_to_formulas": False, "strings_to_urls": False,
                                      "strings_to_numbers": False, "in_memory": True})
    try:
        fmt = _Formats(wb)
        ranking = wb.add_worksheet(RANKING_SHEET)
        ranking_rest = _write_ranking(wb, ranking, fmt, run, rb)
        scores = wb.add_worksheet(SCORES_SHEET)
        matrix = score_matrix(run.districts, rb)
        scores_rest = _write_scores(scores, fmt, run, rb, matrix)
        findings = wb.add_worksheet(FINDINGS_SHEET)
        findings_rest = _write_findings(findings, fmt, run)
        _write_bad_files(wb.add_worksheet(FILES_SHEET), fmt, run)
        _write_stats(wb.add_worksheet(STATS_SHEET), fmt, run, rb, matrix)
        _write_run(wb.add_worksheet(RUN_SHEET), fmt, run, rb)
    finally:
        with _stored_members():
            wb.close()
    sheets = wb.worksheets()
    splice_rows(buffer, path, {sheets.index(ranking) + 1: ranking_rest(), sheets.index(scores) + 1: scores_rest(),
                               sheets.index(findings) + 1: findings_rest()})


@contextlib.contextmanager
def _stored_members() -> Iterator[None]:
    """xlsxwriter deflates every member into the buffer and splice_rows then inflates and deflates each
    again: packed stored, the buffer costs no compression (0.02 s at N = 1,000). xlsxwriter has no option
    for it; it reads its module's ZIP_DEFLATED when it packs (a stored .xlsx is still valid)."""
    import xlsxwriter.workbook as packer

    if getattr(packer, "ZIP_DEFLATED", None) != zipfile.ZIP_DEFLATED:
        yield  # another xlsxwriter: the buffer stays deflated, which costs only time
        return
    packer.ZIP_DEFLATED = zipfile.ZIP_STORED
    try:
        yield
    finally:
        packer.ZIP_DEFLATED = zipfile.ZIP_DEFLATED


def _write_ranking(wb: Any, ws: Any, fmt: _Formats, run: RunResult, rb: Rulebook) -> Callable[[], Spliced]:
    """Sheet 1: one row per ranked district, then the districts that did not submit, and a bar chart.

    xlsxwriter writes the titles, the header, the filter, the highlights and the chart; the returned
    function gives the rows for sheetxml.splice_rows (xlsxwriter took 4 µs a cell, a third of the
    workbook's time at N = 1,000)."""
    h = RANKING_HEADER_ROW
    _put(ws, 0, 0, f"KẾT QUẢ XẾP HẠNG NĂM {rb.year}", fmt.title)
    _put(ws, 1, 0, f"{rb.title} ({rb.label}); lần chạy kết thúc lúc {_naive(run.finished):%d/%m/%Y %H:%M}",
         fmt.subtitle)

    # (header, width, format, value of a district, comment on the header)
    columns: list[tuple[str, float, Any, Callable[[DistrictResult], object], str]] = [
        ("Hạng", 9, fmt.int, lambda d: d.rank or None, ""),
        ("Đơn vị", 26, fmt.bold, lambda d: d.district, ""),
    ]
    for g in rb.groups:
        columns.append((f"{g.code} (/{format_points(g.max)})", 10, fmt.score,
                        lambda d, c=g.code: _scaled(d, c), g.name))
    for p in rb.parts:
        columns.append((f"{_PART_LABEL_VI.get(p.code, p.name)} (/{format_points(p.max)})", 13, fmt.bold_score,
                        lambda d, c=p.code: _scaled(d, c), p.name))
        columns.append((f"Hạng {p.code}", 7, fmt.int, lambda d, c=p.code: d.part_ranks.get(c), ""))
    total_col = len(columns)
    columns += [
        (f"Tổng điểm (/{format_points(rb.total_max)})", 12, fmt.bold_score,
         lambda d: _scaled(d, rb.total_code), rb.total_name),
        ("Tổng tự khai", 11, fmt.score, lambda d: _declared(d, rb.total_code), ""),
        ("Chênh lệch", 11, fmt.score, lambda d: _gap(d, rb.total_code),
         "Tổng tự khai trừ tổng điểm chính thức"),
        ("Số lỗi", 8, fmt.int, lambda d: d.errors, ""),
        ("Số cảnh báo", 9, fmt.int, lambda d: d.warnings, ""),
        ("Tệp", 30, fmt.text, lambda d: d.file, ""),
    ]
    gap_col, err_col, warn_col = total_col + 2, total_col + 3, total_col + 4

    for j, (title, width, _, _, comment) in enumerate(columns):
        _put(ws, h, j, title, fmt.header)
        ws.set_column(j, j, width)
        if comment:
            ws.write_comment(h, j, comment, {"x_scale": 2})
    ws.set_row(h, 45)
    last = h + len(run.districts)
    last_col = len(columns) - 1
    ws.autofilter(h, 0, last, last_col)
    ws.freeze_panes(h + 1, 2)
    if run.districts:
        _highlight_nonzero(ws, h + 1, gap_col, last, gap_col, fmt.bad)
        _highlight_positive(ws, h + 1, err_col, last, err_col, fmt.bad)
        _highlight_positive(ws, h + 1, warn_col, last, warn_col, fmt.warn)

    def cells(d: DistrictResult) -> list[object]:
        return [_cell_value(c[3](d)) for c in columns]

    if run.districts:
        # The rows are spliced in after the workbook is closed, so the chart is given the values it caches
        # (what viewers that do not compute show) instead of reading them from cells xlsxwriter wrote.
        chart = wb.add_chart({"type": "bar"})
        chart.add_series({
            "name": CHART_TITLE,
            "categories": [ws.name, h + 1, 1, last, 1],
            "values": [ws.name, h + 1, total_col, last, total_col],
            "categories_data": [printable(d.district, _MAX_CELL_TEXT) for d in run.districts],
            "values_data": [_scaled(d, rb.total_code) for d in run.districts],
            "data_labels": {"value": True, "num_format": "0.00"},
        })
        chart.set_title({"name": CHART_TITLE})
        chart.set_legend({"none": True})
        chart.set_x_axis({"min": 0, "max": rb.total_max, "num_format": "0"})  # the value axis of a bar chart
        chart.set_y_axis({"reverse": True})  # rank 1 on top, as in the table
        chart.set_size({"width": 620, "height": max(300, 26 * len(run.districts) + 110)})
        ws.insert_chart(h, last_col + 2, chart)

    _print_setup(ws, header_row=h)
    styles = _xf_indices([c[2] for c in columns])
    missing = _xf_indices([fmt.missing, fmt.missing])
    letters = column_letters(len(columns))
    # After a blank row, outside the filter range: listed districts with no scored submission.
    end = f"{letters[-1]}{last + 2 + len(run.not_submitted) if run.not_submitted else last + 1}"

    def rest() -> Spliced:
        rows = rows_xml((cells(d) for d in run.districts), h + 1, letters, styles, styles)
        absent = rows_xml(([NOT_SUBMITTED_VI, printable(name, _MAX_CELL_TEXT)] for name in run.not_submitted),
                          last + 2, letters[:2], missing, missing)
        return Spliced(itertools.chain(rows, absent), end,
                       (len(run.districts) + len(run.not_submitted)) * len(columns) * _XML_BYTES_PER_CELL)

    return rest


def _write_scores(ws: Any, fmt: _Formats, run: RunResult, rb: Rulebook,
                  matrix: ScoreMatrix) -> Callable[[], Spliced]:
    """Sheet 2: one row per ranked district; for every scored criterion its self-score beside its official
    score, the official one highlighted where they differ. The long form (source, detail, row in the
    district's file) is scores.csv.

    A national run has millions of cells here: xlsxwriter writes the header and the first district, and the
    returned function, called after the workbook is closed, gives the other rows as XML for
    sheetxml.splice_rows, with the last cell's address (their styles are numbered by _xf_indices).
    """
    criteria = rb.scored_criteria
    headers = [("Hạng", 7), ("Đơn vị", 24)] + [
        (f"{c.code} {label}", 9) for c in criteria for label in ("tự đánh giá", "chính thức")]
    _write_header(ws, fmt, headers)
    districts = run.districts[:MAX_DETAIL_ROWS]
    rows = _score_rows(districts, matrix)
    number = [fmt.int, fmt.text] + [fmt.score] * (2 * len(criteria))
    text = [fmt.text, fmt.text] + [fmt.missing] * (2 * len(criteria))
    first = next(rows, None)
    for j, v in enumerate(first or ()):
        _put(ws, 1, j, v, text[j] if isinstance(v, str) else number[j])
    last = len(districts)
    _finish_table(ws, max(last, 1), len(headers) - 1, freeze_cols=2)
    letters = column_letters(len(headers))
    if last:
        for k in range(len(criteria)):
            own, official = letters[2 + 2 * k], letters[3 + 2 * k]
            ws.conditional_format(1, 3 + 2 * k, last, 3 + 2 * k, {
                "type": "formula", "format": fmt.bad,
                "criteria": f"=AND(ISNUMBER({own}2),ISNUMBER({official}2),ABS({own}2-{official}2)>{_EPS})"})

    number_xf, text_xf = _xf_indices(number), _xf_indices(text)

    def rest() -> Spliced:
        xml = rows_xml(rows, 2, letters, number_xf, text_xf)
        return Spliced(xml, f"{letters[-1]}{max(last, 1) + 1}", last * len(headers) * _XML_BYTES_PER_CELL)

    return rest


def _score_rows(districts: Sequence[DistrictResult], m: ScoreMatrix) -> Iterator[list[object]]:
    """The detail sheet's rows: rank, name, then self-score and official score per criterion (KAD where the
    criterion is not applicable, blank where there is no result). One row at a time: a national matrix
    as Python objects would take hundreds of megabytes."""
    width = 2 + 2 * len(m.codes)
    marked = ~m.applicable | ~m.present
    for i, d in enumerate(districts):
        row: list[object] = [None] * width
        row[0], row[1] = d.rank or None, printable(d.district, _MAX_CELL_TEXT)
        row[2::2] = m.self_score[i].tolist()
        official = m.score[i].tolist()
        if marked[i].any():
            for k in np.flatnonzero(marked[i]).tolist():
                official[k] = None if not m.present[i, k] else NOT_APPLICABLE_SHORT
        row[3::2] = official
        yield row


def _write_findings(ws: Any, fmt: _Formats, run: RunResult) -> Callable[[], Spliced]:
    """Sheet 3: every finding, with the file, sheet and cell where a person fixes it.

    Tens of thousands of rows at national scale: xlsxwriter writes the header and the first finding; the
    returned function, called after the workbook is closed, gives the other rows for sheetxml.splice_rows."""
    headers = [("Tệp", 28), ("Trang tính", 14), ("Ô", 7), ("Đơn vị", 22), ("Mã", 10), ("Mã lỗi", 26),
               ("Loại lỗi", 30), ("Mức độ", 10), ("Nội dung", 90)]
    _write_header(ws, fmt, headers)
    styles = [fmt.text] * 8 + [fmt.wrap]
    message_width = headers[8][1]

    def row_of(f: Finding) -> list[object]:
        t = REGISTRY.get(f.code)
        values = (f.file, f.sheet, f.cell, f.district, f.subject, f.code, t.title if t else "",
                  SEVERITY_VI.get(f.severity, f.severity), f.message)
        return [printable(v, _MAX_CELL_TEXT) or None for v in values]  # blank, not an empty string

    if run.findings:
        for j, v in enumerate(row_of(run.findings[0])):
            _put(ws, 1, j, v, styles[j])
        ws.set_row(1, _wrapped_height(run.findings[0].message, message_width))
    last = len(run.findings)
    _finish_table(ws, last, len(headers) - 1, freeze_cols=0)
    if last:
        # Whole rows coloured by severity: column H holds Mức độ.
        for severity, cell_fmt in ((ERROR, fmt.bad), (WARNING, fmt.warn)):
            ws.conditional_format(1, 0, last, len(headers) - 1, {
                "type": "formula", "criteria": f'=$H2="{SEVERITY_VI[severity]}"', "format": cell_fmt})

    xf = _xf_indices(styles)

    def rest() -> Spliced:
        rows = (row_of(f) for f in run.findings[1:])
        xml = rows_xml(rows, 2, column_letters(len(headers)), xf, xf,
                       height=lambda cells: _wrapped_height(str(cells[8] or ""), message_width))
        return Spliced(xml, f"{column_letter(len(headers) - 1)}{max(last, 1) + 1}", last * _XML_BYTES_PER_FINDING)

    return rest


def _write_bad_files(ws: Any, fmt: _Formats, run: RunResult) -> None:
    """Sheet 4: files that were not scored (rejected) or lost to a newer file of the same district."""
    headers = [("Tệp", 30), ("Đơn vị", 22), ("Trạng thái", 26), ("Mã lỗi", 24), ("Lý do", 80),
               ("Kích thước (byte)", 12), ("Ngày sửa", 16), ("SHA-256", 66)]
    _write_header(ws, fmt, headers)
    bad = [f for f in run.files if f.status in (REJECTED, SUPERSEDED)]
    for i, f in enumerate(bad, 1):
        values: list[tuple[object, Any]] = [
            (f.file, fmt.text), (f.district, fmt.text), (FILE_STATUS_VI.get(f.status, f.status), fmt.text),
            (", ".join(f.codes), fmt.text), (f.reason, fmt.wrap), (f.size, fmt.bytes),
            (f.modified, fmt.date), (f.sha256, fmt.text)]
        for j, (v, cell_fmt) in enumerate(values):
            _put(ws, i, j, v, cell_fmt)
        ws.set_row(i, _wrapped_height(f.reason, headers[4][1]))
    if not bad:
        _put(ws, 1, 0, NO_BAD_FILES_VI, fmt.missing)
    _finish_table(ws, max(len(bad), 1), len(headers) - 1, freeze_cols=1)


def criterion_stats(run: RunResult, rb: Rulebook, matrix: ScoreMatrix | None = None) -> list[dict[str, Any]]:
    """Per scored criterion: how many districts got full, partial or no points, and how many self-scored wrong.

    Shows which criteria districts struggle with or misread, across the province. Counted over the whole
    matrix at once: a national run has thousands of districts per criterion.
    """
    m = matrix if matrix is not None else score_matrix(run.districts, rb)
    app, score = m.applicable, m.score
    full_mask = app & (score >= m.maxima - _EPS)
    zero_mask = app & (score < _EPS) & (score < m.maxima - _EPS)
    n_app = app.sum(axis=0)
    sums = np.where(app, score, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore"):
        wrong = (~np.isnan(m.self_score) & (np.abs(m.self_score - score) > _EPS) & m.present).sum(axis=0)
    out = []
    for k, c in enumerate(rb.scored_criteria):
        full, zero, applicable = int(full_mask[:, k].sum()), int(zero_mask[:, k].sum()), int(n_app[k])
        out.append({
            "code": c.code, "name": c.name, "group": c.group, "max": c.max,
            "full": full, "partial": applicable - full - zero, "zero": zero,
            "not_applicable": int(m.present[:, k].sum()) - applicable,
            "mean": float(sums[k]) / applicable if applicable else None,
            "self_wrong": int(wrong[k]),
        })
    return out


def _write_stats(ws: Any, fmt: _Formats, run: RunResult, rb: Rulebook, matrix: ScoreMatrix) -> None:
    """Sheet 5: criterion statistics across districts."""
    headers = [("Mã", 10), ("Tiêu chí", 60), ("Nhóm", 8), ("Điểm tối đa", 9), ("Số đơn vị đạt tối đa", 11),
               ("Số đơn vị đạt một phần", 11), ("Số đơn vị 0 điểm", 11), ("Không áp dụng", 11),
               ("Điểm trung bình", 11), ("Số đơn vị tự chấm sai", 11)]
    _write_header(ws, fmt, headers)
    stats = criterion_stats(run, rb, matrix)
    keys = ("code", "name", "group", "max", "full", "partial", "zero", "not_applicable", "mean", "self_wrong")
    formats = (fmt.text, fmt.text, fmt.text, fmt.score, fmt.int, fmt.int, fmt.int, fmt.int, fmt.score, fmt.int)
    for i, s in enumerate(stats, 1):
        for j, (k, f) in enumerate(zip(keys, formats, strict=True)):
            _put(ws, i, j, s[k], f)
    _finish_table(ws, len(stats), len(headers) - 1, freeze_cols=2)
    if stats:
        _highlight_positive(ws, 1, 6, len(stats), 6, fmt.warn)
        _highlight_positive(ws, 1, 9, len(stats), 9, fmt.bad)


def _write_run(ws: Any, fmt: _Formats, run: RunResult, rb: Rulebook) -> None:
    """Sheet 6: what was run on what, so a ranking can be traced and reproduced; then every input file."""
    for j, width in enumerate((36, 66, 16, 16, 26, 24, 14)):
        ws.set_column(j, j, width)
    rejected = sum(1 for f in run.files if f.status == REJECTED)
    superseded = sum(1 for f in run.files if f.status == SUPERSEDED)
    skipped = ", ".join(f"{SKIPPED_VI.get(k, k)}: {n}" for k, n in run.skipped.items() if n)
    rows: list[tuple[str, object, Any, str]] = [
        ("Thời gian bắt đầu", run.started, fmt.time, ""),
        ("Thời gian kết thúc", run.finished, fmt.time, ""),
        ("Thư mục đầu vào", run.input_dir, fmt.text, ""),
        ("Bộ tiêu chí", f"{run.rulebook_id} {run.rulebook_version}", fmt.text, ""),
        ("Mã băm bộ tiêu chí", run.rulebook_hash, fmt.text, ""),
        ("Phiên bản công cụ", run.tool_version, fmt.text, ""),
        ("Tin điểm tự đánh giá khi thiếu số liệu", "Có" if run.trust_self_scores else "Không", fmt.text, ""),
        ("Số tệp đọc", len(run.files), fmt.left, ""),
        ("Số đơn vị được xếp hạng", len(run.districts), fmt.left, ""),
        ("Số tệp lỗi", rejected, fmt.left, ""),
        ("Số tệp bị thay thế", superseded, fmt.left, ""),
        ("Chưa nộp", len(run.not_submitted), fmt.left, ", ".join(run.not_submitted)),
        ("Số tệp bỏ qua", sum(run.skipped.values()), fmt.left, skipped),
        ("Số lỗi", run.count(ERROR), fmt.left, ""),
        ("Số cảnh báo", run.count(WARNING), fmt.left, ""),
    ]
    for i, (label, value, cell_fmt, note) in enumerate(rows):
        _put(ws, i, 0, label, fmt.bold)
        _put(ws, i, 1, value, cell_fmt)
        if note:
            _put(ws, i, 2, note, fmt.text)

    h = len(rows) + 1
    headers = ("Tệp", "SHA-256", "Kích thước (byte)", "Ngày sửa", "Trạng thái", "Đơn vị", "Thời gian xử lý (s)")
    for j, title in enumerate(headers):
        _put(ws, h, j, title, fmt.header)
    ws.set_row(h, 30)
    for i, f in enumerate(run.files, h + 1):
        values: list[tuple[object, Any]] = [
            (f.file, fmt.text), (f.sha256, fmt.text), (f.size, fmt.bytes), (f.modified, fmt.date),
            (FILE_STATUS_VI.get(f.status, f.status), fmt.text), (f.district, fmt.text), (f.seconds, fmt.seconds)]
        for j, (v, cell_fmt) in enumerate(values):
            _put(ws, i, j, v, cell_fmt)
    # No frozen rows here: the key/value block above the table would eat the screen.
    ws.autofilter(h, 0, h + len(run.files), len(headers) - 1)
    _print_setup(ws, header_row=None)


# --- cell helpers --------------------------------------------------------------------------------------


def _put(ws: Any, row: int, col: int, value: object, cell_fmt: Any = None) -> None:
    """Write one value by its type, as _cell_value gives it: text always as text (a district's '=...' or
    '+84...' stays text), numbers as numbers, None or a non-finite number as a blank cell that keeps its
    format; a date as a date."""
    if isinstance(value, dt.datetime):
        ws.write_datetime(row, col, _naive(value), cell_fmt)
        return
    value = _cell_value(value)
    if value is None or (value.__class__ is float and not math.isfinite(value)):
        ws.write_blank(row, col, None, cell_fmt)
    elif value.__class__ is str:
        ws.write_string(row, col, value, cell_fmt)
    else:
        ws.write_number(row, col, value, cell_fmt)


def _cell_value(value: object) -> object:
    """A value as a cell holds it, for _put and for the rows spliced in by sheetxml.rows_xml: text made
    printable, a bool as Có/Không, numbers as Python's own (a numpy float's repr is no number in XML)."""
    if value is None or value.__class__ is float or value.__class__ is int:
        return value
    if isinstance(value, bool | np.bool_):
        return "Có" if value else "Không"
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return printable(value if isinstance(value, str) else str(value), _MAX_CELL_TEXT)


def _xf_indices(formats: Sequence[Any]) -> list[int]:
    """The style numbers of formats used in rows spliced in as XML, taken before the workbook is closed.
    xlsxwriter numbers a format when a cell it writes first uses it, and writes styles.xml with those
    only; a format only the spliced rows use (KAD's grey italic when no other cell has it) would otherwise
    have no number. _get_xf_index is what xlsxwriter itself calls for each cell it writes."""
    return [f._get_xf_index() for f in formats]


def _naive(when: dt.datetime) -> dt.datetime:
    """Excel has no time zones: show an aware time in the machine's local time."""
    return when.astimezone().replace(tzinfo=None) if when.tzinfo is not None else when


def _wrapped_height(text: str, width: float) -> float:
    """Row height for text wrapped in a column `width` characters wide: xlsxwriter cannot autofit rows."""
    lines = sum(max(1, math.ceil(len(line) / max(width * 1.1, 1))) for line in (text or "").split("\n"))
    return 15.0 * max(1, lines)


def _write_header(ws: Any, fmt: _Formats, headers: Sequence[tuple[str, float]]) -> None:
    for j, (title, width) in enumerate(headers):
        _put(ws, 0, j, title, fmt.header)
        ws.set_column(j, j, width)
    ws.set_row(0, 45)


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


def _scaled(d: DistrictResult, code: str) -> float | None:
    s = d.subtotals.get(code)
    return s.scaled if s else None


def _declared(d: DistrictResult, code: str) -> float | None:
    s = d.subtotals.get(code)
    return s.declared if s else None


def _gap(d: DistrictResult, code: str) -> float | None:
    s = d.subtotals.get(code)
    return s.gap if s else None


# --- files ---------------------------------------------------------------------------------------------


def ensure_dir(path: Path) -> Path:
    """Create the output folder; OutputError naming it when that fails."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {path}: {exc.strerror or exc}") from exc
    return path


def _write_atomically(target: Path, write: Callable[[Path], None], run: RunResult) -> Path:
    try:
        path, notice = write_replacing(target, write, run.started.strftime(STAMP_FORMAT))
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    if notice:
        run.notices.append(notice)
    return path
