"""The standard Excel template districts fill in, generated from the rulebook with xlsxwriter.

One sheet of criteria (one row per code, with a live score column), an information sheet, instructions,
a hidden sheet of dropdown lists and a very hidden metadata sheet that lets the batch recognise the
template and its rulebook version. Sheets are protected; only input cells are unlocked, with no password.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..operations.atomic import write_atomically
from ..rules.districts import District
from ..rules.rulebook import NOT_APPLICABLE, Criterion, Rulebook, Tier, format_points
from ..rules.scoring import (
    OK,
    PROVEN,
    CriterionInput,
    is_not_applicable,
    not_applicable_proof,
    round_points,
    score_criterion,
)
from ..text import ascii_slug
from .layout import (
    COLUMNS,
    CRITERIA_SHEET,
    GUIDE_SHEET,
    INFO_FIELDS,
    INFO_SHEET,
    LISTS_SHEET,
    META_SHEET,
    PERCENT_UNIT,
    TEMPLATE_FORMAT,
    TEMPLATE_MARK,
    column_letter,
    template_file_name,
    unit_value_to_cell,
)

if TYPE_CHECKING:
    from ..settings import Settings

COL = {name: i for i, (name, _) in enumerate(COLUMNS)}
HEADER_ROW = 3  # 0-based: row 4 in Excel
UNSCORED_TEXT = "Không tính điểm"
# What the live score shows where something is typed that its formula cannot score ('co', '95%' as text,
# '12 tháng', 150 in a percent cell, 0 of 0, ...): never a blank, which reads as "nothing to check". The batch
# reads many of these forms, each with a finding at its cell; the template does not guess at them.
LIVE_MARK = "Chưa tính"
UNIT_UNSET = "(chưa điền tên đơn vị ở trang Thông tin chung)"
_WIDTHS = {"code": 10, "name": 58, "scale": 30, "max": 9, "value": 16, "numerator": 11,
           "denominator": 11, "self_score": 12, "live_score": 11, "evidence": 30}


class TemplateError(Exception):
    """The template cannot be written (output folder not writable, ...)."""


@dataclass(frozen=True)
class Filled:
    """What a district typed into its template, cell by cell, for writing a filled-in copy (samples, tests).

    Values are exactly what a clerk typed: numbers, or text such as "0,85", " 31 ", "CÓ" or "65%", written as
    text so readers meet them as they come back from districts. Tiers numbers are figures in the value's unit
    (percent as 0-100) and land in the cell as the template stores them (65 -> 0.65 in a percent cell).

    values: {criterion code: {"value" | "numerator" | "denominator": typed content}}
    self_scores: {criterion code: the district's own score}
    declared: {group, part or total code: the declared subtotal}
    info: {information field name (layout.INFO_FIELDS): content}; a date stays a date cell
    evidence: {criterion code: evidence text}
    """

    values: dict[str, dict[str, object]] = field(default_factory=dict)
    self_scores: dict[str, object] = field(default_factory=dict)
    declared: dict[str, object] = field(default_factory=dict)
    info: dict[str, object] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)


def write_template(rulebook: Rulebook, out_dir: str | Path, district: District | None = None,
                   districts: list[District] | None = None, filled: Filled | None = None,
                   file_name: str | None = None, settings: Settings | None = None) -> Path:
    """Write one template (blank, or with `district` filled in and fixed) into out_dir; return its path.

    With `filled`, the input cells hold what a district typed (see Filled); `file_name` overrides the
    default name. `settings` (the officer's province, deadline and return address) are printed on the
    guide, the information sheet and the criteria sheet; absent ones are left out. The file is written to a temporary name in out_dir and renamed into place, so a reader
    never sees half a workbook.
    """
    if file_name is not None and (not file_name or Path(file_name).name != file_name):
        raise ValueError(f"file_name must be a bare file name, not {file_name!r}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TemplateError(f"không tạo được thư mục {out}: {exc.strerror or exc}; chọn thư mục khác bằng --out") from exc
    target = out / (file_name or template_file_name(rulebook, district))

    def build(tmp: Path) -> None:
        _build_workbook(rulebook, tmp, district, districts or [], filled, settings)

    try:
        return write_atomically(target, build)
    except OSError as exc:
        raise TemplateError(f"không ghi được {target}: {exc.strerror or exc}; tệp có đang mở trong Excel không?") from exc


def write_templates(rulebook: Rulebook, out_dir: str | Path, districts: list[District],
                    chosen: list[District] | None = None, settings: Settings | None = None) -> list[Path]:
    """The blank template plus one per chosen district (all of `districts` when chosen is None)."""
    paths = [write_template(rulebook, out_dir, None, districts, settings=settings)]
    for d in chosen if chosen is not None else districts:
        paths.append(write_template(rulebook, out_dir, d, districts, settings=settings))
    return paths


# --- building ---------------------------------------------------------------------------------------


def _build_workbook(rb: Rulebook, path: Path, district: District | None, districts: list[District],
                    filled: Filled | None = None, settings: Settings | None = None) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False})
    created = dt.datetime(rb.year, 1, 1)  # fixed, so the same rulebook gives the same file
    wb.set_properties({
        "title": rb.title, "subject": f"Phiếu tự đánh giá {rb.year}" + (f" - {district.name}" if district else ""),
        "author": "kbang_egov", "company": "", "comments": f"{rb.id} {rb.version}", "created": created,
    })
    fmt = _Formats(wb)
    guide = wb.add_worksheet(GUIDE_SHEET)
    info = wb.add_worksheet(INFO_SHEET)
    crit = wb.add_worksheet(CRITERIA_SHEET)
    lists = wb.add_worksheet(LISTS_SHEET)
    meta = wb.add_worksheet(META_SHEET)

    # The unit-name dropdown is for the blank template only (a district's copy has its name written in),
    # and only for a list a clerk can choose from: every return carries the list, and 10,000 names made
    # each file three times larger and four times slower to read.
    names = _write_lists(wb, lists, rb, districts, district is None and 0 < len(districts) <= UNIT_LIST_LIMIT)
    sending = submission_note(settings)
    info_name_cell = _write_info(info, fmt, rb, district, names, filled, sending)
    # the sheet title's cached text, so a viewer that does not recalculate (LibreOffice by default, previews)
    # shows what the formula gives: the district's name on its copy, what a clerk typed on a filled one
    unit_name = str((filled.info.get("unit_name") if filled else None) or (district.name if district else "") or "")
    _write_criteria(crit, fmt, rb, names, info_name_cell, filled, unit_name, sending)
    _write_guide(guide, fmt, rb, sending)
    _write_meta(meta, rb, district, created)

    crit.activate()
    lists.hide()
    meta.very_hidden()
    wb.close()


class _Formats:
    def __init__(self, wb) -> None:  # noqa: ANN001 - xlsxwriter Workbook
        base = {"font_name": "Times New Roman", "font_size": 11, "text_wrap": True, "valign": "top",
                "border": 1}
        self.title = wb.add_format({"font_name": "Times New Roman", "bold": True, "font_size": 14})
        self.subtitle = wb.add_format({"font_name": "Times New Roman", "italic": True, "font_size": 11})
        self.subtitle_wrap = wb.add_format({"font_name": "Times New Roman", "italic": True, "font_size": 11,
                                            "text_wrap": True, "valign": "top"})
        self.header = wb.add_format({**base, "bold": True, "align": "center", "valign": "vcenter",
                                     "bg_color": "#D9E1F2"})
        self.text = wb.add_format(base)
        self.center = wb.add_format({**base, "align": "center"})
        self.num = wb.add_format({**base, "align": "center", "num_format": "0.##"})
        self.live = wb.add_format({**base, "align": "center", "num_format": "0.00", "bg_color": "#E2EFDA"})
        self.grey = wb.add_format({**base, "bg_color": "#EDEDED"})
        self.input = wb.add_format({**base, "locked": False, "bg_color": "#FFF2CC"})
        self.input_num = wb.add_format({**base, "locked": False, "bg_color": "#FFF2CC", "num_format": "General"})
        self.input_pct = wb.add_format({**base, "locked": False, "bg_color": "#FFF2CC", "num_format": "0.0%"})
        self.input_score = wb.add_format({**base, "locked": False, "bg_color": "#FFF2CC", "num_format": "0.00",
                                          "align": "center"})
        self.input_date = wb.add_format({**base, "locked": False, "bg_color": "#FFF2CC",
                                         "num_format": "dd/mm/yyyy", "align": "left"})
        bold = {**base, "bold": True}
        self.group = wb.add_format({**bold, "bg_color": "#F2F2F2"})
        self.group_num = wb.add_format({**bold, "bg_color": "#F2F2F2", "align": "center", "num_format": "0.##"})
        self.group_live = wb.add_format({**bold, "bg_color": "#E2EFDA", "align": "center", "num_format": "0.00"})
        self.group_input = wb.add_format({**bold, "locked": False, "bg_color": "#FFF2CC", "align": "center",
                                          "num_format": "0.00"})
        self.part = wb.add_format({**bold, "bg_color": "#D9E1F2"})
        self.section = wb.add_format({**base, "italic": True, "bold": True})
        self.label = wb.add_format({**base, "bold": True})
        self.fixed = wb.add_format({**base, "bold": True, "bg_color": "#EDEDED"})
        self.mismatch = wb.add_format({"bg_color": "#F8CBAD", "font_color": "#9C0006"})
        self.plain = wb.add_format({"font_name": "Times New Roman", "font_size": 11, "text_wrap": True,
                                    "valign": "top"})


UNIT_LIST_LIMIT = 1000  # names offered in the blank template's unit dropdown: the ~700 district-level units fit


def _write_lists(wb, ws, rb: Rulebook, districts: list[District], offer_units: bool) -> dict[object, str]:  # noqa: ANN001
    """Dropdown lists on the hidden sheet, each behind a defined name (no 255-character limit, and labels
    may contain commas). Returns {list key: defined name}: "KAD" (not applicable only), "DVHC" (districts,
    when offer_units) and, for option lists, the tuple of labels itself, so two different lists can never
    share a name."""
    lists: dict[object, tuple[str, list[str]]] = {"KAD": ("KAD", [NOT_APPLICABLE])}
    used = {"KAD"}
    for c in rb.criteria:
        if c.kind in ("yesno", "choice"):
            labels = _option_labels(c)
            if labels not in lists:
                base = re.sub(r"[^A-Za-z0-9]", "", ascii_slug("_".join(o.label for o in c.options))).upper()[:30]
                base = base or "OPT"
                key, n = base, 1
                while key in used:
                    n += 1
                    key = f"{base}_{n}"
                used.add(key)
                lists[labels] = (key, list(labels))
    if offer_units:
        lists["DVHC"] = ("DVHC", [d.name for d in districts])
    names: dict[object, str] = {}
    for col, (lookup, (key, labels)) in enumerate(lists.items()):
        ws.write_string(0, col, key)
        for i, label in enumerate(labels, 1):
            ws.write_string(i, col, label)
        letter = column_letter(col)
        name = "DS_" + key
        wb.define_name(name, f"='{LISTS_SHEET}'!${letter}$2:${letter}${len(labels) + 1}")
        names[lookup] = name
    ws.protect()
    return names


def _option_labels(c: Criterion) -> tuple[str, ...]:
    """A dropdown's labels: the options, and 'Không áp dụng' where the rulebook accepts it."""
    return (*(o.label for o in c.options), *((NOT_APPLICABLE,) if c.not_applicable else ()))


def submission_note(settings: Settings | None) -> str:
    """Where and by when a return is sent, from the officer's settings, in Vietnamese; "" when the settings
    say neither (the template then says nothing of it rather than something false)."""
    if settings is None:
        return ""
    parts = []
    if settings.return_address:
        to = f" của {settings.sender_name}" if settings.sender_name else ""
        parts.append(f"gửi tệp đã điền về địa chỉ thư điện tử{to} {settings.return_address}")
    if settings.deadline:
        parts.append(f"hạn nộp {settings.deadline.strftime('%d/%m/%Y')}")
    if not parts:
        return ""
    where = f" (tỉnh {settings.province})" if settings.province else ""
    text = "; ".join(parts)
    return f"Nộp bài{where}: {text}."


def _write_info(ws, fmt: _Formats, rb: Rulebook, district: District | None,  # noqa: ANN001
                names: dict[object, str], filled: Filled | None = None, sending: str = "") -> str:
    """The information sheet (sections I and II of the form). Returns the A1 address of the unit name."""
    ws.set_column(0, 0, 40)
    ws.set_column(1, 1, 60)
    ws.write_string(0, 0, rb.title.upper(), fmt.title)
    ws.write_string(1, 0, f"Phiếu tự đánh giá năm {rb.year} ({rb.id} {rb.version})", fmt.subtitle)
    if sending:
        ws.write_string(2, 0, sending, fmt.subtitle)
    headings = {"unit_name": "I. THÔNG TIN CHUNG", "assessor": "II. THÔNG TIN LIÊN HỆ",
                "report_number": "III. BÁO CÁO"}
    row = 3
    name_cell = ""
    typed = filled.info if filled else {}
    for key, label in INFO_FIELDS:
        if key in headings:
            ws.write_string(row, 0, headings[key], fmt.title)
            row += 1
        ws.write_string(row, 0, label, fmt.label)
        if key == "unit_name":
            name_cell = f"B{row + 1}"
            if district:
                # fixed: the batch matches on it (a filled copy may carry what a clerk overwrote it with)
                ws.write_string(row, 1, str(typed.get(key) or district.name), fmt.fixed)
            else:
                _write_input(ws, row, 1, typed.get(key), fmt.input)
                if "DVHC" in names:
                    ws.data_validation(row, 1, row, 1, {
                        "validate": "list", "source": "=" + names["DVHC"],
                        "input_title": "Tên đơn vị", "input_message": "Chọn huyện, thị xã, thành phố trong danh sách.",
                        "error_title": "Tên đơn vị", "error_type": "warning",
                        "error_message": "Tên này không có trong danh sách đơn vị của tỉnh. Kiểm tra lại.",
                    })
        elif key == "report_date":
            _write_input(ws, row, 1, typed.get(key), fmt.input_date)
            ws.data_validation(row, 1, row, 1, {
                "validate": "date", "criteria": "between", "minimum": dt.date(rb.year - 1, 1, 1),
                "maximum": dt.date(rb.year + 2, 12, 31), "input_title": label,
                "input_message": "Ngày ký báo cáo, dạng ngày/tháng/năm, ví dụ 27/11/" + str(rb.year) + ".",
                "error_title": label, "error_message": "Nhập một ngày hợp lệ, ví dụ 27/11/" + str(rb.year) + ".",
            })
        else:
            _write_input(ws, row, 1, typed.get(key), fmt.input)
            if key == "email":
                ws.data_validation(row, 1, row, 1, {
                    "validate": "custom", "value": f'=ISNUMBER(SEARCH("@",B{row + 1}))',
                    "input_title": label, "input_message": "Địa chỉ thư điện tử công vụ, ví dụ ten.huyen@gialai.gov.vn.",
                    "error_title": label, "error_type": "warning", "error_message": "Địa chỉ thư điện tử phải có dấu @.",
                })
        row += 1
    ws.freeze_panes(3, 0)
    ws.protect("", {"format_columns": True, "format_rows": True})
    _print_setup(ws, rows=None, landscape=False)
    return name_cell


def _write_criteria(ws, fmt: _Formats, rb: Rulebook, names: dict[object, str],  # noqa: ANN001
                    info_name_cell: str, filled: Filled | None = None, unit_name: str = "",
                    sending: str = "") -> None:
    for name, _ in COLUMNS:
        ws.set_column(COL[name], COL[name], _WIDTHS[name])
    last_col = len(COLUMNS) - 1
    ws.merge_range(0, 0, 0, last_col, rb.title.upper(), fmt.title)
    ws.merge_range(1, 0, 1, last_col, "", fmt.subtitle)
    name_ref = f"\'{INFO_SHEET}\'!{info_name_cell}"
    ws.write_formula(1, 0, f'="Đơn vị: "&IF(TRIM({name_ref})="","{UNIT_UNSET}",{name_ref})&"   |   Năm đánh giá: '
                           f'{rb.year}   |   Bộ tiêu chí: {rb.id} {rb.version}"', fmt.subtitle,
                     f"Đơn vị: {unit_name.strip() and unit_name or UNIT_UNSET}   |   Năm đánh giá: {rb.year}   |   "
                     f"Bộ tiêu chí: {rb.id} {rb.version}")
    ws.set_row(2, 30)  # two lines: the wrapped instruction and, from the settings, where to send the return
    ws.merge_range(2, 0, 2, last_col, "Ô màu vàng là ô nhập liệu. Cột Điểm tạm tính tự tính từ số liệu đã nhập (ghi "
                          f"'{LIVE_MARK}' khi số liệu nhập chưa đúng dạng); ô Điểm tự đánh giá tô đỏ khi khác điểm "
                          "tạm tính." + (f" {sending}" if sending else ""), fmt.subtitle_wrap)
    for name, title in COLUMNS:
        ws.write_string(HEADER_ROW, COL[name], title, fmt.header)
    ws.set_row(HEADER_ROW, 32)

    row = HEADER_ROW + 1
    live = column_letter(COL["live_score"])
    part_rows: dict[str, int] = {}
    declared = filled.declared if filled else {}
    part_live: list[object] = []
    for part in rb.parts:
        ws.write_blank(row, 0, None, fmt.part)  # headings stay out of the code column readers scan
        ws.merge_range(row, 1, row, last_col, f"{part.name} ({format_points(part.max)} điểm)", fmt.part)
        row += 1
        group_rows: list[int] = []
        group_live: list[object] = []
        for group in part.groups:
            grow = row
            group_rows.append(grow)
            row += 1
            first = row
            criteria_live: list[object] = []
            for c in group.criteria:
                if c.section:
                    ws.write_blank(row, 0, None, fmt.section)
                    ws.merge_range(row, 1, row, last_col, c.section, fmt.section)
                    row += 1
                criteria_live.append(_write_criterion_row(ws, fmt, row, c, names, filled))
                row += 1
            group_live.append(_cached_sum(criteria_live, filled))
            _write_total_row(ws, fmt, grow, group.code, f"{group.number}. {group.name}", group.max,
                             f"=SUM({live}{first + 1}:{live}{row})", declared.get(group.code), group_live[-1])
        part_live.append(_cached_sum(group_live, filled))
        _write_total_row(ws, fmt, row, part.code, part.total_name, part.max,
                         "=" + "+".join(f"{live}{r + 1}" for r in group_rows), declared.get(part.code),
                         part_live[-1])
        part_rows[part.code] = row
        row += 1
    _write_total_row(ws, fmt, row, rb.total_code, rb.total_name, rb.total_max,
                     "=" + "+".join(f"{live}{r + 1}" for r in part_rows.values()), declared.get(rb.total_code),
                     _cached_sum(part_live, filled))
    last_row = row

    note_row = last_row + 2
    ws.merge_range(note_row, 1, note_row, last_col,
                   "Ghi chú: Các đơn vị có trách nhiệm cung cấp tài liệu kiểm chứng theo đúng từng tiêu chí bằng "
                   "các loại văn bản, hình ảnh, đường dẫn, số liệu trích dẫn, báo cáo... đồng thời tự chịu trách "
                   "nhiệm với kết quả của mình nếu tài liệu kiểm chứng không phù hợp.", fmt.plain)
    ws.set_row(note_row, 45)

    self_col = column_letter(COL["self_score"])
    first_data = HEADER_ROW + 2
    ws.conditional_format(HEADER_ROW + 1, COL["self_score"], last_row, COL["self_score"], {
        "type": "formula", "format": fmt.mismatch,
        "criteria": f"=OR(AND(ISNUMBER(${self_col}{first_data}),ISNUMBER(${live}{first_data}),"
                    f"ABS(${self_col}{first_data}-${live}{first_data})>0.005),"
                    f'AND(ISNUMBER(${self_col}{first_data}),${live}{first_data}="{LIVE_MARK}"))',
    })
    ws.conditional_format(HEADER_ROW + 1, COL["live_score"], last_row, COL["live_score"], {
        "type": "cell", "criteria": "==", "value": f'"{LIVE_MARK}"', "format": fmt.mismatch,
    })
    ws.freeze_panes(HEADER_ROW + 1, 2)
    ws.autofilter(HEADER_ROW, 0, last_row, last_col)
    ws.protect("", {"format_columns": True, "format_rows": True, "autofilter": True})
    _print_setup(ws, rows=(HEADER_ROW, HEADER_ROW), landscape=True)


def _write_criterion_row(ws, fmt: _Formats, row: int, c: Criterion, names: dict[object, str],  # noqa: ANN001
                         filled: Filled | None = None) -> object:
    """One criterion's row; returns the live score's cached value ("" when it shows nothing)."""
    typed = filled.values.get(c.code, {}) if filled else {}
    r = row + 1  # Excel's 1-based row in formulas
    ref = {name: f"{column_letter(COL[name])}{r}" for name, _ in COLUMNS}
    ws.write_string(row, COL["code"], c.code, fmt.center)
    ws.write_string(row, COL["name"], c.name, fmt.text)
    scale = c.scale_text()
    ws.write_string(row, COL["scale"], scale if c.scored else f"{UNSCORED_TEXT}.\n{scale}", fmt.text)
    ws.write_number(row, COL["max"], c.max, fmt.num)
    _write_input(ws, row, COL["evidence"], filled.evidence.get(c.code) if filled else None, fmt.input)

    is_pct = c.kind == "tiers" and c.value is not None and c.value.unit == PERCENT_UNIT
    value = typed.get("value")
    if c.kind == "tiers" and _is_number(value):
        value = unit_value_to_cell(c.value, value)
    if c.kind == "ratio" and not c.not_applicable and value is None:
        ws.write_blank(row, COL["value"], None, fmt.grey)  # a ratio's only answer there: not accepted here
    else:
        _write_input(ws, row, COL["value"], value, fmt.input_pct if is_pct else fmt.input)
    if c.kind == "ratio":
        _write_input(ws, row, COL["numerator"], typed.get("numerator"), fmt.input_num)
        _write_input(ws, row, COL["denominator"], typed.get("denominator"), fmt.input_num)
        for name, what in (("numerator", c.numerator or "Tử số của tỷ lệ"),
                           ("denominator", c.denominator or "Mẫu số của tỷ lệ")):
            ws.data_validation(row, COL[name], row, COL[name], {
                "validate": "decimal", "criteria": ">=", "value": 0,
                "input_title": _clip(("Tử số" if name == "numerator" else "Mẫu số") + ": " + c.code, 32),
                "input_message": _clip(f"{what}. Nhập số, không nhập %.", 255),
                "error_title": "Số không hợp lệ",
                "error_message": "Nhập một số không âm (ví dụ 31). Tử số không được lớn hơn Mẫu số.",
            })
        if c.not_applicable:
            _list_validation(ws, row, COL["value"], names["KAD"], c.code,
                             f"Để trống. Chọn '{NOT_APPLICABLE}' (và ghi mẫu số 0) khi: {c.not_applicable_note}")
    else:
        ws.write_blank(row, COL["numerator"], None, fmt.grey)
        ws.write_blank(row, COL["denominator"], None, fmt.grey)
        if c.kind in ("yesno", "choice"):
            labels = _option_labels(c)
            _list_validation(ws, row, COL["value"], names[labels], c.code, "Chọn: " + " / ".join(labels))
        else:
            _tier_validation(ws, row, c, ref["value"])

    cached: object = ""
    if c.scored:
        _write_input(ws, row, COL["self_score"], filled.self_scores.get(c.code) if filled else None,
                     fmt.input_score)
        ws.data_validation(row, COL["self_score"], row, COL["self_score"], {
            "validate": "decimal", "criteria": "between", "minimum": 0, "maximum": c.max,
            "input_title": "Điểm tự đánh giá",
            "input_message": f"Điểm đơn vị tự chấm, từ 0 đến {format_points(c.max)}, làm tròn 2 chữ số thập phân.",
            "error_title": "Điểm không hợp lệ", "error_message": f"Điểm phải từ 0 đến {format_points(c.max)}.",
        })
        cached = _live_value(c, typed, filled.evidence.get(c.code)) if filled else ""
        ws.write_formula(row, COL["live_score"], live_score_formula(c, ref), fmt.live, cached)
    else:
        ws.write_blank(row, COL["self_score"], None, fmt.grey)
        ws.write_string(row, COL["live_score"], UNSCORED_TEXT, fmt.grey)
    ws.set_row(row, _row_height(c.name, scale if c.scored else f"{UNSCORED_TEXT}.\n{scale}"))
    return cached


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _write_input(ws, row: int, col: int, value: object, cell_format) -> None:  # noqa: ANN001
    """An input cell as a clerk left it: blank, text (even text that looks like a number), a number or a date."""
    if value is None:
        ws.write_blank(row, col, None, cell_format)
    elif isinstance(value, str):
        ws.write_string(row, col, value, cell_format)
    elif isinstance(value, bool):
        ws.write_boolean(row, col, value, cell_format)
    elif isinstance(value, (dt.date, dt.datetime)):
        ws.write_datetime(row, col, value, cell_format)
    else:
        ws.write_number(row, col, value, cell_format)


def _live_value(c: Criterion, typed: dict[str, object], evidence: object = None) -> object:
    """What the live-score formula shows for these cells, cached so a viewer that does not recalculate shows it.

    The formula reads numbers only from numeric cells: text typed there ("0,85", " 31 ", "65%") shows blank.
    """
    value, num, den = typed.get("value"), typed.get("numerator"), typed.get("denominator")
    cells = (value, num, den, evidence) if c.kind == "ratio" else (value,)
    if all(x is None or (isinstance(x, str) and not x.strip()) for x in cells):
        return ""
    if is_not_applicable(value) and c.not_applicable and _proves_not_applicable(c, num, den):
        return NOT_APPLICABLE
    if c.kind == "ratio":
        if not (_is_number(num) and _is_number(den)):
            return LIVE_MARK
        given = CriterionInput(numerator=num, denominator=den)
    elif c.kind == "tiers":
        if not _is_number(value):
            return LIVE_MARK
        given = CriterionInput(value=value)
    else:
        given = CriterionInput(value=value)
    score = score_criterion(c, given)
    return score.points if score.status == OK else LIVE_MARK


def _proves_not_applicable(c: Criterion, num: object, den: object) -> bool:
    """scoring.not_applicable_proof on the cells as the live formula sees them: a number is read, a blank is
    none, a figure typed as text is read by no formula (so it proves nothing: NaN)."""
    def seen(x: object) -> float | None:
        if x is None or (isinstance(x, str) and not x.strip()):
            return None
        return float(x) if _is_number(x) else math.nan

    return not_applicable_proof(c, CriterionInput(numerator=seen(num), denominator=seen(den))) == PROVEN


def _cached_sum(values: list[object], filled: Filled | None) -> object:
    """A total's cached value: the sum of the numbers above it, as SUM gives it; 0 in an unfilled template."""
    if not filled:
        return 0
    return round_points(sum((Fraction(repr(float(v))) for v in values if _is_number(v)), Fraction(0)))


def _row_height(name: str, scale: str) -> float:
    """Points for a row whose wrapped name and scale must show in full (Excel does not autofit on open)."""
    per_line = 15

    def lines(text: str, width: int) -> int:
        return sum(max(1, -(-len(part) // width)) for part in text.split("\n"))

    return per_line * max(2, lines(name, _WIDTHS["name"] - 6), lines(scale, _WIDTHS["scale"] - 3)) + 3


def _write_total_row(ws, fmt: _Formats, row: int, code: str, name: str, mx: float, formula: str,  # noqa: ANN001
                     declared: object = None, cached: object = 0) -> None:
    ws.write_string(row, COL["code"], code, fmt.group)
    ws.write_string(row, COL["name"], name, fmt.group)
    ws.write_string(row, COL["scale"], "Tổng điểm", fmt.group)
    ws.write_number(row, COL["max"], mx, fmt.group_num)
    for name in ("value", "numerator", "denominator", "evidence"):
        ws.write_blank(row, COL[name], None, fmt.group)
    _write_input(ws, row, COL["self_score"], declared, fmt.group_input)
    ws.data_validation(row, COL["self_score"], row, COL["self_score"], {
        "validate": "decimal", "criteria": "between", "minimum": 0, "maximum": mx,
        "input_title": _clip(f"Tổng điểm tự đánh giá {code}", 32),
        "input_message": "Ghi tổng điểm tự đánh giá của đơn vị cho nhóm này, như trong báo cáo.",
        "error_title": "Điểm không hợp lệ", "error_message": f"Tổng điểm phải từ 0 đến {format_points(mx)}.",
    })
    ws.write_formula(row, COL["live_score"], formula, fmt.group_live, cached)


def _list_validation(ws, row: int, col: int, name: str, code: str, message: str) -> None:  # noqa: ANN001
    ws.data_validation(row, col, row, col, {
        "validate": "list", "source": "=" + name, "input_title": _clip(f"Giá trị: {code}", 32),
        "input_message": _clip(message, 255), "error_title": "Giá trị không hợp lệ",
        "error_message": _clip("Chọn một giá trị trong danh sách. " + message, 255),
    })


def _tier_validation(ws, row: int, c: Criterion, cell: str) -> None:  # noqa: ANN001
    spec = c.value
    assert spec is not None
    pct = spec.unit == PERCENT_UNIT
    lo = unit_value_to_cell(spec, spec.min)
    hi = None if spec.max is None else unit_value_to_cell(spec, spec.max)
    conds = [f"ISNUMBER({cell})", f"{cell}>={_num(lo)}"]
    if hi is not None:
        conds.append(f"{cell}<={_num(hi)}")
    if spec.integer:
        conds.append(f"INT({cell})={cell}")
    rng = f"từ {format_points(spec.min)}" + (f" đến {format_points(spec.max)}" if spec.max is not None else " trở lên")
    kind = "số nguyên " if spec.integer else "số "
    what = f"Nhập {kind}{spec.unit} ({rng})" if not pct else f"Nhập tỷ lệ phần trăm ({rng}%), ví dụ 65%"
    rule = f'AND({",".join(conds)})'
    if c.not_applicable:
        rule = f'OR({cell}="{NOT_APPLICABLE}",{rule})'
    ws.data_validation(row, COL["value"], row, COL["value"], {
        "validate": "custom", "value": f"={rule}",
        "input_title": _clip(f"Giá trị: {c.code}", 32),
        "input_message": _clip(f"{what}, hoặc gõ '{NOT_APPLICABLE}'." if c.not_applicable else f"{what}.", 255),
        "error_title": "Giá trị không hợp lệ", "error_message": _clip(f"{what}.", 255),
    })


def live_score_formula(c: Criterion, ref: dict[str, str]) -> str:
    """Excel formula of the points the criterion earns from its inputs; must agree with scoring. Blank while
    nothing is typed; LIVE_MARK where something typed cannot be scored by the formula."""
    v, n, d, e = ref["value"], ref["numerator"], ref["denominator"], ref["evidence"]
    # A ratio's evidence counts as typed: the batch may read "12/14" there when both figures are blank.
    typed = f'TRIM({v}&{n}&{d}&{e})=""' if c.kind == "ratio" else f'TRIM({v}&"")=""'
    return f'=IF({typed},"",{_live_body(c, v, n, d)})'


def _live_body(c: Criterion, v: str, n: str, d: str) -> str:
    """The live score's formula once something is typed: LIVE_MARK where it cannot score."""
    mark = f'"{LIVE_MARK}"'
    # "Không áp dụng" shows as such only where the rulebook accepts it (ratios only) and its proof is typed
    # beside it, as scoring.not_applicable_proof says: the denominator 0, the numerator blank or 0. Without
    # the proof the figures are scored as they stand ("Chưa tính" when there are none), as the batch does.
    na_test = (f'AND(TRIM({v})="{NOT_APPLICABLE}",ISNUMBER({d}),{d}=0,'
               f'OR(TRIM({n}&"")="",AND(ISNUMBER({n}),{n}=0)))')
    na = f'IF({na_test},"{NOT_APPLICABLE}",' if c.not_applicable else ""
    if c.kind == "ratio":
        body = (f'IF(AND(ISNUMBER({n}),ISNUMBER({d})),IF(AND({n}>=0,{d}>0),'
                f'ROUND(MIN({n}/{d},1)*{_num(c.max)},2),{mark}),{mark})')
    elif c.kind in ("yesno", "choice"):
        body = mark
        for opt in reversed(c.options):
            label = opt.label.replace('"', '""')
            body = f'IF(TRIM({v})="{label}",{_num(opt.points)},{body})'
    else:
        spec = c.value
        assert spec is not None
        # checks._percent_figure, in Excel: a percent cell's fraction (0.65, 1 for 100%) is the figure x 100; a
        # bare number above 1 is the figure typed without its sign (65), as the batch reads it
        x = f"IF({v}>1,{v},ROUND({v}*100,6))" if spec.unit == PERCENT_UNIT else v
        checks = [f"{x}>={_num(spec.min)}"]
        if spec.max is not None:
            checks.append(f"{x}<={_num(spec.max)}")
        if spec.integer:
            checks.append(f"INT({x})={x}")
        body = mark
        for tier in reversed(c.tiers):
            body = f"IF({_tier_condition(tier, x)},{_num(tier.points)},{body})"
        body = f'IF(ISNUMBER({v}),IF(AND({",".join(checks)}),{body},{mark}),{mark})'
    return f"{na}{body}{')' if na else ''}"


def _tier_condition(t: Tier, x: str) -> str:
    parts = [f"{x}{op}{_num(getattr(t, key))}" for key, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
             if getattr(t, key) is not None]
    if not parts:
        return "TRUE"
    return parts[0] if len(parts) == 1 else f"AND({','.join(parts)})"


def _write_guide(ws, fmt: _Formats, rb: Rulebook, sending: str = "") -> None:  # noqa: ANN001
    ws.set_column(0, 0, 110)
    n_scored = len(rb.scored_criteria)
    lines = [
        (f"HƯỚNG DẪN ĐIỀN PHIẾU TỰ ĐÁNH GIÁ MỨC ĐỘ CHÍNH QUYỀN ĐIỆN TỬ CẤP HUYỆN NĂM {rb.year}", fmt.title),
        (f"Bộ tiêu chí: {rb.title} ({rb.id}, phiên bản {rb.version}). Nguồn: {rb.source}.", fmt.plain),
        (sending, fmt.plain),
        ("1. Sheet 'Thông tin chung': điền tên đơn vị, địa chỉ, người thực hiện đánh giá, số và ngày báo cáo. "
         "Tên đơn vị đã in sẵn trên phiếu gửi riêng cho từng đơn vị: không sửa.", fmt.plain),
        (f"2. Sheet 'Tiêu chí': {n_scored} tiêu chí, mỗi tiêu chí một dòng có mã (cột 'Mã', ví dụ SS.I.1). "
         "Chỉ nhập vào các ô màu vàng.", fmt.plain),
        ("   - Tiêu chí tỷ lệ (Điểm = Tỷ lệ% x Điểm tối đa): nhập số liệu gốc vào 'Tử số' và 'Mẫu số' "
         "(ví dụ 31 và 318), không nhập tỷ lệ %. Tỷ lệ trên 100% được tính 100%: điểm không vượt quá điểm tối "
         "đa của tiêu chí.", fmt.plain),
        ("   - Tiêu chí Có/Không và tiêu chí lựa chọn: chọn trong danh sách ở cột 'Giá trị' "
         "(Có / Không, Đầy đủ / Không đầy đủ / Không đăng tải, ...).", fmt.plain),
        ("   - Tiêu chí theo mức: nhập con số vào cột 'Giá trị' (số bài viết, số tháng, số quý, số văn bản, "
         "ngân sách tính bằng triệu đồng, tỷ lệ %). Thang điểm ghi rõ từng mức.", fmt.plain),
        (_not_applicable_guide(rb), fmt.plain),
        ("3. Cột 'Điểm tự đánh giá': ghi điểm đơn vị tự chấm cho từng tiêu chí, và tổng điểm ở các dòng nhóm "
         "(SS.I, SS.II, ...), phần (SS, KQ) và tổng cộng (TONG), như trong báo cáo.", fmt.plain),
        ("4. Cột 'Điểm tạm tính' tự tính điểm từ số liệu đã nhập, theo đúng quy tắc Sở dùng để chấm. "
         f"Khi số liệu nhập chưa đúng dạng (chữ thay cho số, '95%' gõ như chữ, '12 tháng', mẫu số bằng 0, ...) "
         f"cột này ghi '{LIVE_MARK}': sửa lại ô nhập liệu. "
         "Ô 'Điểm tự đánh giá' chuyển màu đỏ khi khác điểm tạm tính hoặc khi điểm tạm tính chưa tính được: "
         "kiểm tra lại số liệu hoặc điểm.", fmt.plain),
        ("5. Cột 'Tài liệu kiểm chứng': ghi số, ngày văn bản, đường dẫn hoặc số liệu trích dẫn.", fmt.plain),
        ("6. Không đổi tên sheet, không xoá dòng hay cột, không sửa mã. Lưu tệp dạng .xlsx và gửi lại "
         "qua thư điện tử. Điểm chính thức do Sở tính lại từ số liệu; mọi sai lệch sẽ được báo lại.", fmt.plain),
        ("", fmt.plain),
        ("Mã nhóm: SS = Điều kiện sẵn sàng (SS.I hạ tầng, SS.II nhân lực, SS.III môi trường chính sách); "
         "KQ = Kết quả (KQ.I hiện diện, KQ.II tương tác, KQ.III giao dịch, KQ.IV chuyển đổi); "
         f"{rb.total_code} = tổng cộng.", fmt.plain),
    ]
    for i, (text, f) in enumerate(lines):
        ws.write_string(i, 0, text, f)
        # LibreOffice does not grow a wrapped row on open: each row gets the height of its lines
        ws.set_row(i, (22 if f is fmt.title else 15.75) * _guide_lines(text, GUIDE_LINE_CHARS))
    ws.protect()
    _print_setup(ws, rows=None, landscape=False)


GUIDE_LINE_CHARS = 105  # characters of 11-point Times New Roman in the guide's 110-wide column, with margin


def _guide_lines(text: str, width: int) -> int:
    """Lines a wrapped paragraph takes, breaking at spaces as a spreadsheet does."""
    lines, length = 1, 0
    for word in text.split(" "):
        if length and length + 1 + len(word) > width:
            lines, length = lines + 1, len(word)
        else:
            length += (1 if length else 0) + len(word)
    return lines


def _not_applicable_guide(rb: Rulebook) -> str:
    accepted = [c.code for c in rb.criteria if c.not_applicable]
    if not accepted:
        return f"   - Không tiêu chí nào được chọn '{NOT_APPLICABLE}': nhập số liệu thật (số 0 nếu chưa có)."
    return (f"   - '{NOT_APPLICABLE}' chỉ được chọn ở {len(accepted)} tiêu chí ({', '.join(accepted)}), đúng trường "
            "hợp ghi ở ô nhắc của tiêu chí, và phải ghi mẫu số 0 (không phát sinh) để chứng minh: khi đó tiêu chí "
            f"không tính vào điểm tối đa của đơn vị. Chọn '{NOT_APPLICABLE}' mà để trống mẫu số thì tiêu chí bị "
            "tính 0 điểm; mẫu số lớn hơn 0 thì tiêu chí được chấm theo số liệu. Ở mọi tiêu chí "
            f"khác, '{NOT_APPLICABLE}' bị tính 0 điểm: nhập số liệu thật (số 0 nếu chưa có).")


def _write_meta(ws, rb: Rulebook, district: District | None, created: dt.datetime) -> None:  # noqa: ANN001
    values = {
        "template": TEMPLATE_MARK, "template_format": TEMPLATE_FORMAT, "rulebook_id": rb.id,
        "rulebook_version": rb.version, "rulebook_hash": rb.hash, "rulebook_year": str(rb.year),
        "district": district.name if district else "", "generator": f"kbang_egov {__version__}",
        "generated_at": created.date().isoformat(),
    }
    for i, (key, value) in enumerate(values.items()):
        ws.write_string(i, 0, key)
        ws.write_string(i, 1, value)
    ws.protect()


def _print_setup(ws, rows: tuple[int, int] | None, landscape: bool) -> None:  # noqa: ANN001
    ws.set_paper(9)  # A4
    if landscape:
        ws.set_landscape()
    ws.set_margins(left=0.5, right=0.4, top=0.6, bottom=0.6)
    ws.fit_to_pages(1, 0)
    if rows:
        ws.repeat_rows(*rows)
    ws.set_footer("&CTrang &P/&N")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
