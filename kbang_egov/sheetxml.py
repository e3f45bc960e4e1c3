"""Writing the rows of a very large sheet as worksheet XML directly, and splicing them into a workbook that
xlsxwriter wrote. xlsxwriter spends about 5 µs of Python per cell; the district x criterion matrix of a
national run holds millions of cells, so its rows are formatted here in one pass and xlsxwriter keeps
everything else (header, formats, filters, panes, conditional formats).
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape

from .layout import column_letter

MAX_ROWS = 1_048_576  # Excel's rows per sheet
ZIP64_FROM = 2**32 - 2**26  # bytes of one member (with a margin) from which ZIP64 is needed
ROWS_PER_CHUNK = 200  # rows of XML formatted before they are compressed and let go


def column_letters(count: int) -> list[str]:
    """A, B, ..., Z, AA, ... for the first `count` columns."""
    return [column_letter(col) for col in range(count)]


def rows_xml(rows: Iterable[Sequence[object]], first_row: int, letters: Sequence[str],
             number_styles: Sequence[int], text_styles: Sequence[int]) -> Iterator[bytes]:
    """<row> elements for rows of values starting at 0-based first_row, in chunks of ROWS_PER_CHUNK rows (a
    national matrix is hundreds of megabytes of XML: it is never held whole). Column j's numbers (and
    blanks) take the xf style number_styles[j], its text text_styles[j]; text is inline, so no
    shared-string table."""
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
        if (i - first_row) % ROWS_PER_CHUNK == 0:
            yield "".join(parts).encode("utf-8")
            parts.clear()
    if parts:
        yield "".join(parts).encode("utf-8")


def splice_rows(source: BinaryIO, target: Path, sheet_number: int, rows: Iterable[bytes], last_ref: str,
                size_hint: int = 0) -> None:
    """Copy the .xlsx in `source` to `target`, appending `rows` to the end of sheet `sheet_number`'s data
    (1-based, in the order xlsxwriter added the sheets) and setting its dimension to A1:last_ref. The rows
    are streamed into the compressed member as they come.

    size_hint is an upper bound of the rows' bytes: ZIP64 is used only when it may pass 4 GB, because
    Excel is strict about ZIP64 records it does not need."""
    member = f"xl/worksheets/sheet{sheet_number}.xml"
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename != member:
                zout.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
                continue
            head, sep, tail = data.rpartition(b"</sheetData>")
            if not sep:  # xlsxwriter writes <sheetData/> for an empty sheet
                head, sep, tail = data.partition(b"<sheetData/>")
                head, sep = head + b"<sheetData>", b"</sheetData>"
            head = re.sub(rb'<dimension ref="[^"]*"/>', f'<dimension ref="A1:{last_ref}"/>'.encode(), head, count=1)
            large = len(data) + size_hint >= ZIP64_FROM
            with zout.open(info.filename, "w", force_zip64=large) as out:
                out.write(head)
                for chunk in rows:
                    out.write(chunk)
                out.write(sep + tail)
