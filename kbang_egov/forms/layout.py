"""The standard template's layout: sheet names, column titles and information labels, in one place.

Readers find columns by these titles and rows by code, never by position; the template writer places them.
"""

from __future__ import annotations

from ..rules.districts import District
from ..rules.rulebook import Rulebook, ValueSpec

TEMPLATE_MARK = "kbang-egov-template"
TEMPLATE_FORMAT = "1"

GUIDE_SHEET = "Hướng dẫn"
INFO_SHEET = "Thông tin chung"
CRITERIA_SHEET = "Tiêu chí"
LISTS_SHEET = "Danh mục"
META_SHEET = "_meta"

# (snake_case name, header title) in the template's column order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("code", "Mã"),
    ("name", "Tiêu chí"),
    ("scale", "Thang điểm"),
    ("max", "Điểm tối đa"),
    ("value", "Giá trị"),
    ("numerator", "Tử số"),
    ("denominator", "Mẫu số"),
    ("self_score", "Điểm tự đánh giá"),
    ("live_score", "Điểm tạm tính"),
    ("evidence", "Tài liệu kiểm chứng"),
)
COLUMN_TITLES = {name: title for name, title in COLUMNS}
# Columns a submission must have; the live score is a convenience the batch never reads.
REQUIRED_COLUMNS = tuple(name for name, _ in COLUMNS if name != "live_score")

# (snake_case name, label in column A of the information sheet); the value is in the next column.
INFO_FIELDS: tuple[tuple[str, str], ...] = (
    ("unit_name", "Tên đơn vị"),
    ("address", "Địa chỉ"),
    ("phone", "Số điện thoại"),
    ("fax", "Fax"),
    ("assessor", "Họ và tên người thực hiện đánh giá"),
    ("office", "Bộ phận công tác"),
    ("position", "Chức vụ"),
    ("mobile", "Điện thoại di động"),
    ("email", "Thư điện tử"),
    ("report_number", "Số báo cáo"),
    ("report_date", "Ngày báo cáo"),
)
INFO_LABELS = {name: label for name, label in INFO_FIELDS}

PERCENT_UNIT = "%"


def cell_to_unit_value(spec: ValueSpec, cell: float) -> float:
    """The number a tiers criterion scores on, from its cell: a percent cell holds 0.65 for 65%."""
    if spec.unit == PERCENT_UNIT:
        return round(cell * 100, 6)
    return cell


def unit_value_to_cell(spec: ValueSpec, value: float) -> float:
    """Inverse of cell_to_unit_value: what to write in the cell for a figure in the value's unit."""
    if spec.unit == PERCENT_UNIT:
        return value / 100
    return value


def column_letter(col: int) -> str:
    """Excel's letters for a 0-based column: 0 -> A, 25 -> Z, 26 -> AA, 16383 -> XFD."""
    letters, n = "", col + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def column_index(letters: str | bytes) -> int:
    """The 1-based column of Excel's letters: A -> 1, IV -> 256, XFD -> 16384."""
    n = 0
    for ch in letters.encode() if isinstance(letters, str) else letters:
        n = n * 26 + ch - 64
    return n


def template_file_name(rulebook: Rulebook, district: District | None) -> str:
    """The template's file name, ready to attach to an email: no diacritics, no spaces. Here rather than in
    template.py because the reader names it in its findings without importing the writer."""
    stem = f"CQDT_{rulebook.year}"
    return f"{stem}_{district.slug}.xlsx" if district else f"{stem}_mau.xlsx"
