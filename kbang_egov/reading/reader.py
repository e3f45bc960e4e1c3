"""Reading a returned workbook with python-calamine: the criteria rows by code, the columns by header title,
the information sheet by label and the template's version metadata. Nothing is scored here.

A district may insert rows, move columns, rename the criteria sheet, add notes or re-save the file in
LibreOffice, WPS or old Excel (.xls, .ods): the reader finds everything by title and code, never by position.
"""

from __future__ import annotations

import functools
import io
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

from ..forms.layout import (
    COLUMN_TITLES,
    CRITERIA_SHEET,
    INFO_FIELDS,
    INFO_SHEET,
    META_SHEET,
    TEMPLATE_MARK,
    column_letter,
    template_file_name,
)
from ..rules.findings import Finding, make_finding
from ..rules.rulebook import Rulebook
from ..text import normalize_text, strip_diacritics
from .guard import ROW_LIMIT, screen

SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
# Spreadsheet files that are not read (a template, a binary or another program's format): each is a finding
# that says what it is and how to save it as a return, never a file skipped without a word.
LOOKALIKE_SUFFIXES = {
    ".xlsb": "một sổ làm việc nhị phân Excel (.xlsb)",
    ".xltx": "một tệp mẫu Excel (.xltx)",
    ".xltm": "một tệp mẫu Excel có macro (.xltm)",
    ".xlt": "một tệp mẫu Excel 97-2003 (.xlt)",
    ".ots": "một tệp mẫu LibreOffice Calc (.ots)",
    ".fods": "một bảng tính LibreOffice dạng XML phẳng (.fods)",
    ".et": "một bảng tính WPS (.et)",
    ".ett": "một tệp mẫu WPS (.ett)",
    ".numbers": "một bảng tính Apple Numbers (.numbers)",
}
HEADER_SCAN_ROWS = 40  # the header row is in the first rows of the sheet
# Rows read from a criteria sheet (ROW_LIMIT, from guard): the template has ~200, a district may insert a
# few hundred more. A stray cell at row 1,048,576 must not make Python build a million rows.
INFO_ROWS, META_ROWS = 200, 50
# Columns a district types figures into: a merged cell over one of them hides the value of the others.
INPUT_COLUMNS = ("value", "numerator", "denominator", "self_score")
# Columns the batch cannot do without; name, scale, max and the live score are for people, not the batch.
READ_COLUMNS = ("code", "value", "numerator", "denominator", "self_score")
# Other titles clerks and older forms use for the same columns, compared after normalising.
_ALIASES = {
    "code": ("Mã tiêu chí", "Mã số", "STT"),
    "self_score": ("Điểm tự chấm", "Tự đánh giá", "Điểm tự đánh giá của đơn vị"),
    "evidence": ("Tài liệu kiểm chứng (ghi chú)", "Ghi chú", "Minh chứng"),
    "numerator": ("Tử số (a)",),
    "denominator": ("Mẫu số (b)",),
}


class ReadError(Exception):
    """The file cannot be opened as a workbook at all (the message is the reader's reason)."""

    def __init__(self, reason: str, code: str = "file-unreadable") -> None:
        super().__init__(reason)
        self.code = code  # the finding code that says best what is wrong


@dataclass
class Row:
    """The raw cells of one criterion or subtotal row, as the reader returned them."""

    row: int  # 1-based
    cells: dict[str, object]  # by column name: value, numerator, denominator, self_score, evidence


@dataclass
class Submission:
    """One workbook as read: where things are and what the cells hold, before any parsing or scoring."""

    file: str  # relative to the input folder, for findings
    sheet: str = ""  # the criteria sheet's name as found
    columns: dict[str, int] = field(default_factory=dict)  # column name -> 0-based index
    rows: dict[str, Row] = field(default_factory=dict)  # code -> first row holding it
    info: dict[str, object] = field(default_factory=dict)  # INFO_FIELDS name -> value
    info_cells: dict[str, str] = field(default_factory=dict)  # INFO_FIELDS name -> A1 of the value
    info_sheet: str = ""
    meta: dict[str, str] = field(default_factory=dict)  # _meta keys -> values
    findings: list[Finding] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return any(f.rejects for f in self.findings)

    def cell(self, code: str, column: str) -> str:
        """A1 address of a column in a code's row ('' when either is missing)."""
        r = self.rows.get(code)
        if r is None or column not in self.columns:
            return ""
        return a1(r.row, self.columns[column])


def a1(row: int, col: int) -> str:
    """A1 address from a 1-based row and a 0-based column."""
    return f"{column_letter(col)}{row}"


def open_workbook(data: bytes):  # noqa: ANN201 - python_calamine.CalamineWorkbook
    """Open workbook bytes with python-calamine; ReadError with the reason when it is not a workbook."""
    import python_calamine

    try:
        return python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:  # noqa: BLE001 - calamine's own error classes, and pyo3's PanicException
        raise ReadError(_reason(exc), _error_code(exc)) from exc


def _error_code(exc: BaseException) -> str:
    """calamine's PasswordError (an encrypted .xls) and a zip without its end record have their own codes."""
    name = type(exc).__name__
    text = str(exc)
    if name == "PasswordError" or "password" in text.lower():
        return "file-encrypted"
    if "EOCD" in text or "end of central directory" in text.lower():
        return "file-truncated"
    return "file-unreadable"


def read_submission(data: bytes, file: str, rulebook: Rulebook) -> Submission:
    """Read one workbook's bytes: criteria rows, information and metadata, with file-level findings."""
    sub = Submission(file)
    suffix = "." + file.rsplit(".", 1)[-1].lower() if "." in file else ""
    if suffix in LOOKALIKE_SUFFIXES:
        return Submission(file, findings=[make_finding("file-type-unsupported", file, kind=LOOKALIKE_SUFFIXES[suffix])])
    screened = screen(data, file, suffix)
    if screened.finding is not None:
        sub.findings.append(screened.finding)
        return sub
    try:
        wb = open_workbook(screened.data)
        sheets = _sheet_names(wb)
        _read_meta(wb, sheets, sub)
        _check_meta(sub, rulebook)
        if sub.rejected:
            return sub
        grid = _find_criteria(wb, sheets)
        if grid is None:
            sub.findings.append(make_finding("file-not-template", file, template=template_file_name(rulebook, None)))
            return sub
        sub.sheet = grid.name
        for sheet, cell in screened.far.items():
            sub.findings.append(make_finding("sheet-oversized", file, sheet=sheet, cell=cell, end=cell,
                                             limit=ROW_LIMIT))
        if grid.far is not None and grid.name not in screened.far:
            sub.findings.append(make_finding("sheet-oversized", file, sheet=grid.name, cell=grid.far,
                                             end=grid.far, limit=ROW_LIMIT))
        if sub.meta.get("template") != TEMPLATE_MARK:
            sub.findings.append(make_finding("template-unmarked", file, sheet=META_SHEET,
                                             template=template_file_name(rulebook, None)))
        _read_criteria(grid, sub, rulebook)
        if sub.rejected:
            return sub
        _read_info(wb, sheets, sub)
    except ReadError as exc:
        sub.findings.append(make_finding(exc.code, file, reason=str(exc)))
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:  # noqa: BLE001 - calamine's PanicException is a BaseException; one bad file
        sub.findings.append(make_finding("file-unreadable", file, reason=_reason(exc)))  # must not stop the run
    return sub


@dataclass
class SheetCells:
    """One sheet of a workbook as read, cell by cell from A1: for rebuilding it at the same addresses."""

    name: str
    rows: list[list]  # from A1, at most ROW_LIMIT rows
    hidden: bool = False
    cut: bool = False  # rows beyond the cell budget were left out


# Cells read for a copy of a whole workbook (the feedback): a return holds about 2,000; a sheet 16,384 columns
# wide must not make a worker build millions of empty cells.
SHEETS_CELL_LIMIT = 200_000


def read_sheets(data: bytes, file: str, cell_limit: int = SHEETS_CELL_LIMIT) -> tuple[list[SheetCells], Finding | None]:
    """Every sheet of a workbook's bytes, screened as read_submission screens them; the finding that
    rejects the bytes instead (then no sheets). At most ROW_LIMIT rows a sheet and cell_limit cells in all,
    sheet by sheet in order: a sheet past the budget keeps the rows that fit (`cut`). Nothing is scored."""
    suffix = "." + file.rsplit(".", 1)[-1].lower() if "." in file else ""
    if suffix in LOOKALIKE_SUFFIXES:
        return [], make_finding("file-type-unsupported", file, kind=LOOKALIKE_SUFFIXES[suffix])
    screened = screen(data, file, suffix)
    if screened.finding is not None:
        return [], screened.finding
    try:
        wb = open_workbook(screened.data)
        hidden = {m.name: str(m.visible).rsplit(".", 1)[-1] != "Visible" for m in wb.sheets_metadata}
        out, left = [], cell_limit
        for name in _sheet_names(wb):
            sheet = _sheet(wb, name)
            end = sheet.end  # the last cell, 0-based: the grid runs from A1 to it
            height, width = (end[0] + 1, end[1] + 1) if end is not None else (0, 1)
            rows = min(ROW_LIMIT, height, left // width)
            grid = sheet.to_python(skip_empty_area=False, nrows=rows) if rows else []
            left -= rows * width
            out.append(SheetCells(name, grid, hidden.get(name, False), cut=rows < min(ROW_LIMIT, height)))
        return out, None
    except ReadError as exc:
        return [], make_finding(exc.code, file, reason=str(exc))
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:  # noqa: BLE001 - as in read_submission
        return [], make_finding("file-unreadable", file, reason=_reason(exc))


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _sheet_names(wb) -> list[str]:  # noqa: ANN001
    return list(wb.sheet_names)


def _sheet(wb, name: str):  # noqa: ANN001, ANN202 - python_calamine.CalamineSheet
    try:
        return wb.get_sheet_by_name(name)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:  # noqa: BLE001 - as in open_workbook
        raise ReadError(f"trang '{name}': {_reason(exc)}", _error_code(exc)) from exc


def _rows(wb, name: str, limit: int) -> list[list]:  # noqa: ANN001
    """The sheet's first `limit` rows from A1, whatever its size: bounded memory on a huge sheet."""
    return _sheet(wb, name).to_python(skip_empty_area=False, nrows=limit)


def _by_name(sheets: list[str], wanted: str) -> str | None:
    key = normalize_text(wanted)
    return next((s for s in sheets if normalize_text(s) == key), None)


def _read_meta(wb, sheets: list[str], sub: Submission) -> None:  # noqa: ANN001
    name = _by_name(sheets, META_SHEET)
    if name is None:
        return
    for row in _rows(wb, name, META_ROWS):
        if len(row) >= 2 and isinstance(row[0], str) and row[0].strip():
            sub.meta[row[0].strip()] = "" if row[1] is None else str(row[1]).strip()


def _check_meta(sub: Submission, rb: Rulebook) -> None:
    """Reject a template of another rulebook version; warn when it comes from an edited rulebook."""
    template = template_file_name(rb, None)
    if sub.meta.get("template") != TEMPLATE_MARK:
        return  # unmarked: reported once the criteria sheet is found, so a foreign file gets one finding
    found_id, found_version = sub.meta.get("rulebook_id", ""), sub.meta.get("rulebook_version", "")
    if (found_id, found_version) != (rb.id, rb.version):
        sub.findings.append(make_finding("template-version", sub.file, sheet=META_SHEET,
                                         found=f"{found_id} {found_version}".strip() or "không rõ",
                                         expected=f"{rb.id} {rb.version}", template=template))
    elif sub.meta.get("rulebook_hash") and sub.meta["rulebook_hash"] != rb.hash:
        sub.findings.append(make_finding("template-modified", sub.file, sheet=META_SHEET, version=rb.version,
                                         found=sub.meta["rulebook_hash"][:12], expected=rb.hash[:12],
                                         template=template))


def _title_key(text: object) -> str:
    if text is None:
        return ""
    return _text_key(text if text.__class__ is str else str(text))


@functools.lru_cache(maxsize=4096)  # titles and labels repeat in every return
def _text_key(text: str) -> str:
    return strip_diacritics(normalize_text(text))


_TITLE_TO_NAME: dict[str, str] = {}
for _name, _title in COLUMN_TITLES.items():
    _TITLE_TO_NAME[_title_key(_title)] = _name
    for _alias in _ALIASES.get(_name, ()):
        _TITLE_TO_NAME[_title_key(_alias)] = _name


def _header_columns(row: list) -> dict[str, int]:
    cols: dict[str, int] = {}
    for j, v in enumerate(row):
        if isinstance(v, str):
            name = _TITLE_TO_NAME.get(_title_key(v))
            if name and name not in cols:
                cols[name] = j
    return cols


@dataclass
class _Grid:
    """The criteria sheet as read: its first ROW_LIMIT rows and what lies beyond them."""

    rows: list[list]
    name: str
    header: int  # 0-based index of the header row
    far: str | None  # the sheet's last cell when it lies beyond ROW_LIMIT rows
    merged: list  # merged ranges ((row0, col0), (row1, col1)), 0-based, inclusive


def _find_criteria(wb, sheets: list[str]) -> _Grid | None:  # noqa: ANN001
    """The sheet with the criteria header: the template's name first, then any other sheet (a renamed
    sheet is still read)."""
    first = _by_name(sheets, CRITERIA_SHEET)
    order = ([first] if first else []) + [s for s in sheets if s != first and normalize_text(s) != META_SHEET]
    for name in order:
        sheet = _sheet(wb, name)
        grid = sheet.to_python(skip_empty_area=False, nrows=ROW_LIMIT)
        for i, row in enumerate(grid[:HEADER_SCAN_ROWS]):
            cols = _header_columns(row)
            if "code" in cols and "self_score" in cols:
                end = sheet.end
                far = a1(end[0] + 1, end[1]) if end is not None and end[0] >= ROW_LIMIT else None
                return _Grid(grid, name, i, far, list(sheet.merged_cell_ranges or []))
    return None


def _read_criteria(g: _Grid, sub: Submission, rb: Rulebook) -> None:
    grid, header = g.rows, g.header
    cols = _header_columns(grid[header])
    missing = [n for n in READ_COLUMNS if n not in cols]
    for name in missing:
        sub.findings.append(make_finding("column-missing", sub.file, sheet=sub.sheet, cell=a1(header + 1, 0),
                                         column=COLUMN_TITLES[name], row=header + 1))
    if missing:
        return
    sub.columns = cols
    known = rb.code_keys
    wanted = [(n, cols[n]) for n in ("value", "numerator", "denominator", "self_score", "evidence") if n in cols]
    code_col = cols["code"]
    names = [n for n, _ in wanted]
    last = max(j for _, j in wanted)
    pick = _picker([j for _, j in wanted])
    rows = sub.rows
    again: dict[str, list[int]] = {}  # code -> the rows after the first that hold it
    for i in range(header + 1, len(grid)):
        row = grid[i]
        raw = row[code_col] if code_col < len(row) else None
        if raw.__class__ is not str or not raw:
            continue
        code = known.get(raw)  # as the template wrote it, nearly always
        if code is None:
            code = known.get(normalize_text(raw).upper())
            if code is None:
                continue
        if code in rows:
            again.setdefault(code, []).append(i + 1)
        elif len(row) > last:  # calamine's grid is rectangular: nearly always
            rows[code] = Row(i + 1, {n: None if v == "" else v for n, v in zip(names, pick(row), strict=True)})
        else:
            rows[code] = Row(i + 1, {n: _cell(row, j) for n, j in wanted})
    for code in sorted(again, key=lambda c: rows[c].row):  # in the order the codes first appear
        later, used = again[code], rows[code].row
        listed = ", ".join(map(str, [used, *later]))
        for r in later:
            sub.findings.append(make_finding(
                "row-duplicated", sub.file, sheet=sub.sheet, cell=a1(r, code_col), subject=code,
                rows=listed, used=used))
    for c in rb.criteria:
        if c.scored and c.code not in sub.rows:
            sub.findings.append(make_finding("row-missing", sub.file, sheet=sub.sheet, subject=c.code))
    if g.merged:
        _check_merged(g.merged, sub)


def _check_merged(merged: list, sub: Submission) -> None:
    """One finding per merged range over a criterion's input cells: only its first cell keeps a value."""
    inputs = [sub.columns[n] for n in INPUT_COLUMNS if n in sub.columns]
    by_row = {r.row - 1: code for code, r in sub.rows.items()}
    for (r0, c0), (r1, c1) in merged:
        for r in range(r0, min(r1, r0 + ROW_LIMIT) + 1):
            code = by_row.get(r)
            hit = [j for j in inputs if c0 <= j <= c1]
            if code is not None and hit:
                rng = f"{a1(r0 + 1, c0)}:{a1(r1 + 1, c1)}"
                sub.findings.append(make_finding("cell-merged", sub.file, sheet=sub.sheet, cell=a1(r + 1, hit[0]),
                                                 subject=code, range=rng, first=a1(r0 + 1, c0)))
                break


def _picker(columns: list[int]) -> Callable[[list], tuple]:
    """A function giving a row's cells at these columns as a tuple (operator.itemgetter, always a tuple)."""
    get = operator.itemgetter(*columns)
    return get if len(columns) > 1 else lambda row: (get(row),)


def _cell(row: list, j: int) -> object:
    v = row[j] if j < len(row) else None
    return None if v == "" else v


def _read_info(wb, sheets: list[str], sub: Submission) -> None:  # noqa: ANN001
    """Information fields by label: the value is the first non-empty cell right of the label."""
    labels = {_title_key(label): name for name, label in INFO_FIELDS}
    order = [s for s in (_by_name(sheets, INFO_SHEET),) if s] + [s for s in sheets if s != sub.sheet]
    for name in dict.fromkeys(order):
        if normalize_text(name) == META_SHEET:
            continue
        found = False
        for i, row in enumerate(_rows(wb, name, INFO_ROWS)):
            for j, v in enumerate(row[:6]):
                field_name = labels.get(_title_key(v)) if isinstance(v, str) else None
                if field_name is None or field_name in sub.info:
                    continue
                for k in range(j + 1, len(row)):
                    if row[k] not in ("", None):
                        sub.info[field_name] = row[k]
                        sub.info_cells[field_name] = a1(i + 1, k)
                        break
                else:
                    sub.info_cells[field_name] = a1(i + 1, j + 1)
                found = True
        if found:
            sub.info_sheet = name
            return
