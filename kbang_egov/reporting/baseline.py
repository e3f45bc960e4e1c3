"""A ranking to compare tonight's with (`batch.py run --baseline FILE`): last year's ranking.csv or
ranking.xlsx of ours, or a table the province published, with a district, a rank and (optionally) a total
and the parts, under English or Vietnamese headers ("Đơn vị", "Xếp hạng", "Tổng điểm").

The officer's own file, read in this process: it is not a district's return. Every district is matched
against the run's district list as returns are (rules/districts.match_district); a name that matches none
is an error naming it, never a silent gap in the comparison.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import pandas as pd

from ..reading.values import parse_number
from ..rules.districts import District, DistrictIndex
from ..rules.results import Comparison
from ..rules.rulebook import Rulebook
from ..text import normalize_text, strip_diacritics
from .tables import part_column

HEADER_ROWS_SEARCHED = 30  # a published table has a title above its header
MAX_BASELINE_BYTES = 50_000_000  # a national ranking.csv is a few MB
_DISTRICT = ("district", "don vi", "ten don vi", "don vi hanh chinh", "huyen", "ten huyen", "dia phuong")
_RANK = ("rank", "xep hang", "hang", "thu hang")
_TOTAL = ("total", "tong diem", "tong", "tong cong", "diem")
# Part labels as ranking.xlsx and published tables write them, by part code.
_PART_LABELS = {"SS": ("dieu kien san sang",), "KQ": ("ket qua",)}
SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")


class BaselineError(Exception):
    """The baseline file cannot be used: the message names the file, and the row or column, and what to do."""


def load_baseline(path: str | Path, districts: list[District], rulebook: Rulebook) -> Comparison:
    """The ranks, totals and parts of a baseline file, by listed district name."""
    p = Path(path)
    grid = _read_grid(p)
    header, columns = _find_header(grid, rulebook, p)
    index = DistrictIndex(districts)
    comparison = Comparison(label=f"tệp so sánh {p.name}", source="baseline", reference=str(p))
    unknown, seen = [], {}
    width = max(columns.values()) + 1
    for i in range(header + 1, len(grid)):
        row = list(grid[i]) + [None] * (width - len(grid[i]))  # a CSV's short rows
        name = _text(row[columns["district"]])
        if not name:
            continue
        district = index.match(name)
        if district is None:
            has_figures = _number(row[columns["rank"]]) is not None or (
                "total" in columns and _number(row[columns["total"]]) is not None)
            if has_figures:  # a row with neither a rank nor a total is a note or a title, not a district
                unknown.append(f"'{name}' (dòng {i + 1})")
            continue
        if district.name in seen:
            raise BaselineError(f"{p}: {district.name} có hai dòng ({seen[district.name]} và {i + 1}); "
                                "để lại một dòng cho mỗi đơn vị")
        seen[district.name] = i + 1
        comparison.ranks[district.name] = _rank(row[columns["rank"]])
        if "total" in columns:
            comparison.totals[district.name] = _number(row[columns["total"]])
        parts = {code: _number(row[j]) for code, j in columns.items() if code.startswith("part:")}
        comparison.parts[district.name] = {code[5:]: v for code, v in parts.items() if v is not None}
    if unknown:
        raise BaselineError(f"{p}: không có trong danh sách đơn vị: {', '.join(unknown[:20])}"
                            + (f" và {len(unknown) - 20} tên khác" if len(unknown) > 20 else "")
                            + "; sửa tên cho khớp danh sách (--districts) hoặc xoá các dòng không phải đơn vị")
    if not seen:
        raise BaselineError(f"{p}: không có dòng đơn vị nào dưới dòng tiêu đề")
    return comparison


def _read_grid(p: Path) -> list[list[object]]:
    """The file's cells as rows of values: a CSV (UTF-8 with or without BOM, comma or semicolon), or the
    first sheet of a workbook that has the columns (ranking.xlsx opens on its overview)."""
    try:
        if p.suffix.lower() == ".csv":
            return _read_csv(p)
        if p.suffix.lower() in SPREADSHEET_SUFFIXES:
            sheets = pd.read_excel(p, sheet_name=None, header=None, engine="calamine")
            return _pick_sheet(list(sheets.values()))
    except FileNotFoundError as exc:
        raise BaselineError(f"không tìm thấy tệp so sánh {p}") from exc
    except UnicodeDecodeError as exc:
        raise BaselineError(f"{p} không phải UTF-8: lưu lại bằng Excel dưới dạng 'CSV UTF-8', hoặc dùng tệp "
                            ".xlsx") from exc
    except (OSError, ValueError, csv.Error) as exc:
        raise BaselineError(f"không đọc được tệp so sánh {p}: {exc}") from exc
    raise BaselineError(f"{p}: tệp so sánh phải là .csv, .xlsx, .xls hoặc .ods")


def _read_csv(p: Path) -> list[list[object]]:
    """A CSV's rows as text, ragged rows kept (a title line above the header): comma, semicolon (Excel's
    in locales with a decimal comma) or tab, whichever the header uses."""
    with open(p, encoding="utf-8-sig", newline="") as fh:
        text = fh.read(MAX_BASELINE_BYTES + 1)
    if len(text) > MAX_BASELINE_BYTES:
        raise BaselineError(f"{p}: tệp so sánh quá lớn (hơn {MAX_BASELINE_BYTES // 1_000_000} MB)")
    lines = text.splitlines()
    head = next((line for line in lines[:HEADER_ROWS_SEARCHED] if max(map(line.count, ",;\t")) > 0), "")
    delimiter = max(",;\t", key=head.count)
    return [list(row) for row in csv.reader(io.StringIO(text), delimiter=delimiter)]


def _pick_sheet(frames: list[pd.DataFrame]) -> list[list[object]]:
    grids = [[list(r) for r in f.itertuples(index=False, name=None)] for f in frames]
    for grid in grids:
        for row in grid[:HEADER_ROWS_SEARCHED]:
            keys = {_key(v) for v in row}
            if keys & set(_DISTRICT) and keys & set(_RANK):
                return grid
    return grids[0] if grids else []


def _find_header(grid: list[list[object]], rb: Rulebook, p: Path) -> tuple[int, dict[str, int]]:
    """The header row (the first of the first rows naming a district column and a rank column) and where
    each known column is: district, rank, total, and part:CODE for the rulebook's parts."""
    parts = {p.code: {part_column(p), p.code.lower(), _key(p.name), *_PART_LABELS.get(p.code, ())}
             for p in rb.parts}
    for i, row in enumerate(grid[:HEADER_ROWS_SEARCHED]):
        keys = [_key(v) for v in row]
        columns: dict[str, int] = {}
        for j, key in enumerate(keys):
            for name, aliases in (("district", _DISTRICT), ("rank", _RANK), ("total", _TOTAL)):
                if key in aliases:
                    columns.setdefault(name, j)
            for code, aliases in parts.items():
                if key in aliases:
                    columns.setdefault(f"part:{code}", j)
        if "district" in columns and "rank" in columns:
            return i, columns
    raise BaselineError(f"{p}: không thấy dòng tiêu đề có cột đơn vị (district, Đơn vị) và cột hạng (rank, "
                        "Xếp hạng, Hạng) trong 30 dòng đầu")


def _key(value: object) -> str:
    """A header as compared: no parenthesised note ("Tổng điểm (/170, quy đổi)"), lower case, no diacritics."""
    text = re.sub(r"\(.*?\)", " ", normalize_text(_text(value)))
    return strip_diacritics(" ".join(text.split())).strip(" :.")


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return " ".join(str(value).split()).lstrip("'")  # our CSVs keep a leading '=' behind an apostrophe


def _number(value: object) -> float | None:
    """A figure as the clerks' returns are read (reading/values.parse_number: "1.405,5", "87,89", "1.405"
    is one thousand four hundred and five); None for a blank, a text or a percentage."""
    parsed = parse_number(_text(value) if isinstance(value, str) else value)
    return None if parsed.error or parsed.percent else parsed.value


def _rank(value: object) -> int | None:
    """A rank as a whole number; None where the table gives none ("Chưa nộp", blank)."""
    number = _number(value)
    return int(number) if number is not None and number >= 1 and number.is_integer() else None
