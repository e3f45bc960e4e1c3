"""The feedback workbook a district gets back after a round: its own return, every sheet and cell at the same
address (values only), each finding's cell highlighted with a Vietnamese comment, and a first sheet,
"Kết quả thẩm định", with the scores, the provisional rank, the criteria taken out, every finding linked to
its cell, and the district against the province's median per group.

A pure function of (the return's cells, its findings, the district's figures) -> a workbook, written with
xlsxwriter's public API; the pipeline calls it in isolated workers, `validate` for one file.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..forms.layout import column_index
from ..reading.guard import ROW_LIMIT
from ..reading.reader import SheetCells
from ..rules.findings import CONSEQUENCE, CRITERION, ERROR, REGISTRY, SEVERITY_VI, WARNING, Finding
from ..rules.results import GROUP, DistrictResult
from ..rules.rulebook import Rulebook, format_points_vi
from ..text import printable

SUMMARY_SHEET = "Kết quả thẩm định"
# What became of a return, as feedback.csv says it; CHECKED: read and checked alone, by `validate`.
RANKED, SUPERSEDED, NOT_SCORED, CHECKED = "ranked", "superseded", "not-scored", "checked"
FEEDBACK_PREFIX = "PhanHoi_"
COMMENT_LIMIT = 30000  # characters of one comment (Excel holds 32,767)
CELL_TEXT_LIMIT = 32767  # characters of one cell, Excel's limit
_SHEET_NAME_LIMIT = 31
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
_FILL = {ERROR: "#FFC7CE", WARNING: "#FFEB9C", CONSEQUENCE: "#DDEBF7"}

# What the summary sheet says of a district against the province's median of one group.
ABOVE, BELOW, LEVEL = "Điểm mạnh", "Điểm yếu", "Ngang trung vị"


@dataclass(frozen=True)
class ScoreLine:
    """One group, part or the total on the summary sheet."""

    code: str
    level: str  # GROUP, PART or TOTAL
    name: str
    max: float
    applicable_max: float
    official: float  # the recomputed points (parts rescaled to the full maximum)
    declared: float | None  # what the district wrote, None when blank
    median: float | None  # the province's median of the official points, None without a run


@dataclass(frozen=True)
class Figures:
    """What the feedback says of the district beyond its own cells (plain data, picklable for workers)."""

    district: str  # the listed name, or what the file says
    file: str  # the return, relative to the inbox
    status: str  # RANKED, SUPERSEDED or NOT_SCORED (feedback.csv's status), CHECKED for `validate`
    rank: int = 0  # provisional rank; 0 when not ranked (validate, or a file not scored)
    ranked: int = 0  # districts ranked in the run
    lines: tuple[ScoreLine, ...] = ()
    not_applicable: tuple[tuple[str, str, float], ...] = ()  # (code, name, max) taken out
    reason: str = ""  # why a file was not scored, or was superseded
    year: int = 0
    # The id of the run that writes the workbook, for the header: a later run whose figures are the same copies
    # the workbook as it is (feedback_pass.reuse_previous), so the header says since when the result stands.
    run_label: str = ""
    self_scores: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # code -> (official, own)


def figures_for(result: DistrictResult | None, rulebook: Rulebook, *, file: str, district: str, status: str,
                rank: int = 0, ranked: int = 0, medians: dict[str, float] | None = None, reason: str = "",
                run_label: str = "", findings: Iterable[Finding] | None = None) -> Figures:
    """The figures of one return: from its result when it was scored, else only why it was not. The official
    and declared score of the criteria `findings` name (what their comments quote); of every criterion
    without them. A national run holds the figures of every return at once: 170 scores each add up."""
    if result is None:
        return Figures(district, file, status, reason=reason, year=rulebook.year, run_label=run_label)
    names = {g.code: g.name for g in rulebook.groups}
    names.update({p.code: p.name for p in rulebook.parts})
    names[rulebook.total_code] = rulebook.total_name
    medians = medians or {}
    lines = []
    for code in rulebook.subtotal_codes:
        s = result.subtotals.get(code)
        if s is None:
            continue
        official = s.scaled if s.level != GROUP else s.achieved
        lines.append(ScoreLine(code, s.level, names.get(code, code), s.max, s.applicable_max, official, s.declared,
                               medians.get(code)))
    out = tuple((r.code, rulebook.criterion(r.code).name, r.max) for r in result.criteria if not r.applicable)
    named = None if findings is None else {f.subject for f in findings if f.subject}
    own = {r.code: (r.score, r.self_score) for r in result.criteria if named is None or r.code in named}
    return Figures(district, file, status, rank, ranked, tuple(lines), out, reason, rulebook.year, run_label, own)


def feedback_file_name(stem: str) -> str:
    """PhanHoi_<the district's template stem>.xlsx."""
    return f"{FEEDBACK_PREFIX}{stem}.xlsx"


def write_feedback(path: str | Path, sheets: Sequence[SheetCells], findings: Iterable[Finding],
                   figures: Figures) -> Path:
    """Write the feedback workbook to path: the summary sheet first, then the return's sheets (none for a
    file that could not be read) with every located finding commented at its cell."""
    import xlsxwriter

    path = Path(path)
    findings = list(findings)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False, "nan_inf_to_errors": True,
                                         "in_memory": True})  # no temporary file per part: a third of the time
    try:
        fmt = _Formats(wb)
        names = _sheet_names([s.name for s in sheets], reserved=SUMMARY_SHEET)
        summary = wb.add_worksheet(SUMMARY_SHEET)
        at_cell: dict[tuple[str, str], list[Finding]] = {}
        for f in findings:
            if f.sheet in names and _in_copy(f.cell):
                at_cell.setdefault((f.sheet, f.cell), []).append(f)
        for sheet in sheets:
            _write_copy(wb, fmt, sheet, names[sheet.name], at_cell, figures)
        cut = [names[s.name] for s in sheets if s.cut]
        _write_summary(wb, summary, fmt, findings, figures, names, cut)
        summary.activate()
    finally:
        wb.close()
    return path


class _Formats:
    def __init__(self, wb) -> None:  # noqa: ANN001 - xlsxwriter Workbook
        self.title = wb.add_format({"bold": True, "font_size": 14})
        self.bold = wb.add_format({"bold": True})
        self.head = wb.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True,
                                   "valign": "top"})
        self.cell = wb.add_format({"border": 1, "valign": "top", "text_wrap": True})
        self.num = wb.add_format({"border": 1, "valign": "top", "num_format": "0.00"})
        self.link = wb.add_format({"border": 1, "valign": "top", "font_color": "blue", "underline": 1})
        self.wrap = wb.add_format({"text_wrap": True, "valign": "top"})
        self.date = wb.add_format({"num_format": "dd/mm/yyyy"})
        self.datetime = wb.add_format({"num_format": "dd/mm/yyyy hh:mm"})
        self.time = wb.add_format({"num_format": "hh:mm:ss"})
        self.mark = {sev: wb.add_format({"bg_color": color, "border": 2, "border_color": "#C00000"})
                     for sev, color in _FILL.items()}
        self.mark_date = {sev: wb.add_format({"bg_color": color, "border": 2, "border_color": "#C00000",
                                              "num_format": "dd/mm/yyyy"}) for sev, color in _FILL.items()}


def _sheet_names(found: list[str], reserved: str) -> dict[str, str]:
    """The name each sheet of the return gets in the feedback: its own, unless Excel refuses it (too long,
    a character Excel forbids, which .ods allows) or it is the summary's; then a close, unique one."""
    out: dict[str, str] = {}
    taken = {reserved.casefold()}
    for name in found:
        fixed = _BAD_SHEET_CHARS.sub("_", name).strip("'")[:_SHEET_NAME_LIMIT] or "Trang"
        n = 1
        candidate = fixed
        while candidate.casefold() in taken:
            n += 1
            suffix = f" ({n})"
            candidate = fixed[: _SHEET_NAME_LIMIT - len(suffix)] + suffix
        taken.add(candidate.casefold())
        out[name] = candidate
    return out


_A1 = re.compile(r"([A-Z]{1,3})([0-9]{1,7})")


def _cell_index(cell: str) -> tuple[int, int] | None:
    """(row, column), 0-based, of an A1 address; None for none or a range."""
    m = _A1.fullmatch(cell or "")
    if m is None:
        return None
    col, row = column_index(m.group(1)), int(m.group(2))
    if not (1 <= row <= 1_048_576 and 1 <= col <= 16_384):
        return None
    return row - 1, col - 1


# A finding far outside any return's table (data at XFD1048576, `sheet-oversized`) is listed on the summary
# sheet and not commented at its cell: a cell there would give the feedback the used range the district
# must remove, and cost its writer hundreds of megabytes.
COMMENT_ROWS, COMMENT_COLUMNS = ROW_LIMIT, 1024


def _in_copy(cell: str) -> bool:
    at = _cell_index(cell)
    return at is not None and at[0] < COMMENT_ROWS and at[1] < COMMENT_COLUMNS


def _worst(found: list[Finding]) -> str:
    for sev in (ERROR, WARNING, CONSEQUENCE):
        if any(f.severity == sev for f in found):
            return sev
    return WARNING


def comment_text(found: list[Finding], figures: Figures) -> str:
    """The comment at one cell: each finding's message (what is wrong and how to fix it), and for a
    criterion the official score beside the declared one."""
    lines = []
    for f in found:
        lines.append(f"[{SEVERITY_VI.get(f.severity, f.severity)}] {f.message}")
    subjects = dict.fromkeys(f.subject for f in found if REGISTRY[f.code].level == CRITERION and f.subject)
    for code in subjects:
        got = figures.self_scores.get(code)
        if got is not None:
            official, own = got
            lines.append(f"{code}: điểm tính lại {format_points_vi(official)}; điểm tự đánh giá "
                         f"{'(trống)' if own is None else format_points_vi(own)}.")
    return "\n".join(lines)[:COMMENT_LIMIT]


def _write_copy(wb, fmt: _Formats, sheet: SheetCells, name: str,  # noqa: ANN001
                at_cell: dict[tuple[str, str], list[Finding]], figures: Figures) -> None:
    ws = wb.add_worksheet(name)
    widths: dict[int, int] = {}
    for i, row in enumerate(sheet.rows):
        for j, v in enumerate(row):
            if v is None or v == "":
                continue
            _write_value(ws, i, j, v, None, fmt)
            widths[j] = max(widths.get(j, 0), min(len(str(v)), 60))
    for j, w in widths.items():
        ws.set_column(j, j, max(8, w + 1) if w < 60 else 60, fmt.wrap if w >= 60 else None)
    for (sheet_name, cell), found in at_cell.items():
        if sheet_name != sheet.name:
            continue
        i, j = _cell_index(cell)  # type: ignore[misc] - checked when at_cell was built
        v = sheet.rows[i][j] if i < len(sheet.rows) and j < len(sheet.rows[i]) else None
        sev = _worst(found)
        _write_value(ws, i, j, v, sev, fmt)
        ws.write_comment(i, j, comment_text(found, figures), {"x_scale": 3, "y_scale": 2.5})
    if sheet.hidden:
        ws.hide()


def _write_value(ws, i: int, j: int, v: object, severity: str | None, fmt: _Formats) -> None:  # noqa: ANN001
    """One cell as read, by its type (a district's text is never a formula or a link here)."""
    mark = fmt.mark[severity] if severity else None
    if v is None or v == "":
        ws.write_blank(i, j, None, mark)
    elif isinstance(v, bool):
        ws.write_boolean(i, j, v, mark)
    elif isinstance(v, (int, float)):
        ws.write_number(i, j, v, mark)
    elif isinstance(v, dt.datetime):
        ws.write_datetime(i, j, v, fmt.mark_date[severity] if severity else fmt.datetime)
    elif isinstance(v, dt.date):
        ws.write_datetime(i, j, dt.datetime.combine(v, dt.time()), fmt.mark_date[severity] if severity else fmt.date)
    elif isinstance(v, dt.time):
        ws.write_datetime(i, j, v, mark or fmt.time)
    else:
        ws.write_string(i, j, printable(str(v), CELL_TEXT_LIMIT) if not isinstance(v, str) else v[:CELL_TEXT_LIMIT],
                        mark)


def _lines(text: str, width: int) -> int:
    """Lines a wrapped text takes in a column about `width` characters wide (LibreOffice does not grow a
    row to its wrapped text by itself)."""
    return max(1, -(-len(text) // width))


def _points(x: float | None) -> str:
    return "" if x is None else format_points_vi(round(x, 2))


def _write_summary(wb, ws, fmt: _Formats, findings: list[Finding], fig: Figures,  # noqa: ANN001
                   names: dict[str, str], cut: Sequence[str] = ()) -> None:
    ws.set_column(0, 0, 12)
    ws.set_column(1, 1, 60)
    ws.set_column(2, 8, 13)
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)
    ws.write_string(0, 0, f"Kết quả thẩm định Bộ tiêu chí Chính quyền điện tử{f' năm {fig.year}' if fig.year else ''}",
                    fmt.title)
    ws.write_string(1, 0, f"Đơn vị: {fig.district or '(chưa xác định)'}", fmt.bold)
    ws.write_string(2, 0, f"Tệp đã nhận: {fig.file}" + (f"   |   Bản này được lập ở lần chấm: {fig.run_label}" if fig.run_label else ""))
    row = 3
    if fig.status == SUPERSEDED:
        ws.write_string(row, 0, f"Tệp này không được chấm: {fig.reason}", fmt.bold)
    elif fig.status == NOT_SCORED:
        ws.write_string(row, 0, f"Tệp không được chấm: {fig.reason or 'xem các lỗi dưới đây.'}", fmt.bold)
    elif fig.rank:
        ws.write_string(row, 0, f"Xếp hạng tạm thời: {fig.rank}/{fig.ranked} (theo các báo cáo đã nhận đến lần chấm "
                                "này; có thể thay đổi khi các đơn vị gửi lại).", fmt.bold)
    else:
        ws.write_string(row, 0, "Xếp hạng: chưa xếp hạng (tệp được kiểm tra riêng, chưa so với các đơn vị khác).",
                        fmt.bold)
    row += 1
    errors = sum(1 for f in findings if f.severity == ERROR)
    warnings = sum(1 for f in findings if f.severity == WARNING)
    verdict = ("Không có lỗi cần sửa." if not errors else
               f"Có {errors} lỗi cần sửa; sửa trong tệp mẫu đã điền (không sửa trong tệp phản hồi này) rồi gửi lại.")
    ws.write_string(row, 0, f"{verdict} Cảnh báo cần xem: {warnings}.")
    if cut:
        row += 1
        ws.write_string(row, 0, "Tệp quá lớn nên các trang sau chỉ được chép một phần vào bản phản hồi này: "
                                f"{', '.join(cut)}. Xem đầy đủ trong tệp gốc.")
    row += 2
    if fig.lines:
        row = _write_scores(wb, ws, fmt, fig, row)
    if fig.not_applicable:
        ws.write_string(row, 0, "Tiêu chí không áp dụng (bỏ khỏi điểm tối đa)", fmt.bold)
        row += 1
        for j, title in enumerate(("Mã", "Tiêu chí", "Điểm tối đa bỏ ra")):
            ws.write_string(row, j, title, fmt.head)
        ws.set_row(row, 30)  # the last title wraps over two lines
        row += 1
        for code, name, mx in fig.not_applicable:
            ws.write_string(row, 0, code, fmt.cell)
            ws.write_string(row, 1, name, fmt.cell)
            ws.write_number(row, 2, mx, fmt.num)
            ws.set_row(row, 15 * _lines(name, 58))  # wrapped in column B, as the scores' names above
            row += 1
        row += 1
    ws.write_string(row, 0, f"Các sai lệch ({len(findings)})", fmt.bold)
    row += 1
    # The message in the wide column B, as the scores' names above: the other columns stay narrow for both.
    titles = ("STT", "Nội dung", "Mức độ", "Mã lỗi", "Tiêu chí", "Trang", "Ô")
    for j, title in enumerate(titles):
        ws.write_string(row, j, title, fmt.head)
    row += 1
    if not findings:
        ws.write_string(row, 0, "Không có sai lệch nào.")
    for n, f in enumerate(findings, 1):
        ws.write_number(row, 0, n, fmt.cell)
        ws.write_string(row, 2, SEVERITY_VI.get(f.severity, f.severity), fmt.cell)
        ws.write_string(row, 3, f.code, fmt.cell)
        ws.write_string(row, 4, f.subject, fmt.cell)
        ws.write_string(row, 5, f.sheet, fmt.cell)
        target = names.get(f.sheet)
        if target is not None:
            where = f.cell if _cell_index(f.cell) is not None else "A1"
            sheet_ref = target.replace("'", "''")
            ws.write_url(row, 6, f"internal:'{sheet_ref}'!{where}", fmt.link, string=f.cell or "(trang)",
                         tip="Đến ô này")
        else:
            ws.write_string(row, 6, f.cell, fmt.cell)
        ws.write_string(row, 1, f.message[:CELL_TEXT_LIMIT], fmt.cell)
        ws.set_row(row, 15 * min(_lines(f.message, 62), 27))
        row += 1
    ws.freeze_panes(0, 0)


def _write_scores(wb, ws, fmt: _Formats, fig: Figures, row: int) -> int:  # noqa: ANN001
    ws.write_string(row, 0, "Điểm theo nhóm, phần và tổng", fmt.bold)
    row += 1
    titles = ("Mã", "Nội dung", "Điểm tối đa", "Điểm tối đa áp dụng", "Điểm chính thức (tính lại)",
              "Điểm đơn vị ghi", "Chênh lệch", "Trung vị toàn tỉnh", "So với trung vị")
    for j, title in enumerate(titles):
        ws.write_string(row, j, title, fmt.head)
    ws.set_row(row, 45)
    row += 1
    first = row
    strong, weak = [], []
    for line in fig.lines:
        ws.write_string(row, 0, line.code, fmt.cell)
        ws.write_string(row, 1, line.name, fmt.cell)
        ws.set_row(row, 15 * _lines(line.name, 58))
        ws.write_number(row, 2, line.max, fmt.num)
        ws.write_number(row, 3, line.applicable_max, fmt.num)
        ws.write_number(row, 4, round(line.official, 2), fmt.num)
        if line.declared is None:
            ws.write_string(row, 5, "(trống)", fmt.cell)
            ws.write_blank(row, 6, None, fmt.cell)
        else:
            ws.write_number(row, 5, line.declared, fmt.num)
            ws.write_number(row, 6, round(line.declared - line.official, 2), fmt.num)
        if line.median is None:
            ws.write_string(row, 7, "chưa xếp hạng", fmt.cell)
            ws.write_blank(row, 8, None, fmt.cell)
        else:
            ws.write_number(row, 7, round(line.median, 2), fmt.num)
            gap = round(line.official - line.median, 2)
            said = ABOVE if gap > 0 else BELOW if gap < 0 else LEVEL
            ws.write_string(row, 8, said, fmt.cell)
            if line.level == GROUP:
                (strong if gap > 0 else weak if gap < 0 else []).append(f"{line.code} ({_points(gap)})")
        row += 1
    row += 1
    if any(line.median is not None for line in fig.lines):
        ws.write_string(row, 0, f"{ABOVE} (nhóm cao hơn trung vị toàn tỉnh): {', '.join(strong) or 'không có'}.")
        ws.write_string(row + 1, 0, f"{BELOW} (nhóm thấp hơn trung vị toàn tỉnh): {', '.join(weak) or 'không có'}.")
        row += 3
    groups = [k for k, line in enumerate(fig.lines) if line.level == GROUP]
    if groups and groups == list(range(len(groups))):  # the groups come first, in one block
        chart = wb.add_chart({"type": "column"})
        g_last = first + len(groups) - 1
        chart.add_series({"name": "Điểm chính thức", "categories": [ws.name, first, 0, g_last, 0],
                          "values": [ws.name, first, 4, g_last, 4]})
        if any(fig.lines[k].median is not None for k in groups):
            chart.add_series({"name": "Trung vị toàn tỉnh", "categories": [ws.name, first, 0, g_last, 0],
                              "values": [ws.name, first, 7, g_last, 7]})
        chart.add_series({"name": "Điểm tối đa", "categories": [ws.name, first, 0, g_last, 0],
                          "values": [ws.name, first, 2, g_last, 2]})
        chart.set_title({"name": "Điểm theo nhóm so với trung vị toàn tỉnh"})
        chart.set_size({"width": 620, "height": 260})
        ws.insert_chart(row, 1, chart)
        row += 14
    return row
