"""Writing the rows of a very large sheet as worksheet XML directly, and splicing them into a workbook that
xlsxwriter wrote. xlsxwriter spends about 5 µs of Python per cell; the district x criterion matrix of a
national run holds millions of cells, so its rows are formatted here in one pass and xlsxwriter keeps
everything else (header, formats, filters, panes, conditional formats).
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from .layout import column_letter

MAX_ROWS = 1_048_576  # Excel's rows per sheet


def column_letters(count: int) -> list[str]:
    """A, B, ..., Z, AA, ... for the first `count` columns."""
    return [column_letter(col) for col in range(count)]


def rows_xml(rows: Iterable[Sequence[object]], first_row: int, letters: Sequence[str],
             number_styles: Sequence[int], text_styles: Sequence[int]) -> bytes:
    """<row> elements for rows of values starting at 0-based first_row. Column j's numbers (and blanks) take
    the xf style number_styles[j], its text text_styles[j]; text is inline, so no shared-string table."""
    parts: list[str] = []
    pre = [f'<c r="{letter}' for letter in letters]
    for i, cells in enumerate(rows, first_row + 1):
        parts.append(f'<row r="{i}">')
        for j, value in enumerate(cells):
            if value is None or (value.__class__ is float and not math.isfinite(value)):
                parts.append(f'{pre[j]}{i}" s="{number_styles[j]}"/>')
            elif isinstance(value, str):
                space = ' xml:space="preserve"' if value[:1].isspace() or value[-1:].isspace() else ""
                parts.append(f'{pre[j]}{i}" s="{text_styles[j]}" t="inlineStr"><is><t{space}>{escape(value)}</t></is></c>')
            else:
                parts.append(f'{pre[j]}{i}" s="{number_styles[j]}"><v>{value!r}</v></c>')
        parts.append("</row>")
    return "".join(parts).encode("utf-8")


def splice_rows(path: Path, sheet_number: int, rows: bytes, last_ref: str) -> None:
    """Append `rows` to the end of sheet `sheet_number`'s data (1-based, in the order xlsxwriter added the
    sheets) in the .xlsx at path, and set its dimension to A1:last_ref. The file is rewritten in place."""
    member = f"xl/worksheets/sheet{sheet_number}.xml"
    with zipfile.ZipFile(path) as zin:
        members = [(info, zin.read(info.filename)) for info in zin.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
        for info, data in members:
            if info.filename == member:
                head, sep, tail = data.rpartition(b"</sheetData>")
                if not sep:  # xlsxwriter writes <sheetData/> for an empty sheet
                    head, sep, tail = data.partition(b"<sheetData/>")
                    head, sep = head + b"<sheetData>", b"</sheetData>"
                data = head + rows + sep + tail
                data = re.sub(rb'<dimension ref="[^"]*"/>', f'<dimension ref="A1:{last_ref}"/>'.encode(), data, count=1)
            zout.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    Path(path).write_bytes(out.getvalue())
