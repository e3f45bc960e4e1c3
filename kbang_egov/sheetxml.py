"""Writing the rows of a very large sheet as worksheet XML directly, and splicing them into a workbook that
xlsxwriter wrote. xlsxwriter spends about 5 µs of Python per cell; the district x criterion matrix of a
national run holds millions of cells, so its rows are formatted here in one pass and xlsxwriter keeps
everything else (header, formats, filters, panes, conditional formats).
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape

from .layout import column_letter

MAX_ROWS = 1_048_576  # Excel's rows per sheet
ZIP64_FROM = 2**32 - 2**26  # bytes of one member (with a margin) from which ZIP64 is needed
ROWS_PER_CHUNK = 200  # rows of XML formatted before they are compressed and let go
_REPRS_KEPT = 100_000  # formatted numbers remembered while writing one sheet


def column_letters(count: int) -> list[str]:
    """A, B, ..., Z, AA, ... for the first `count` columns."""
    return [column_letter(col) for col in range(count)]


@dataclass
class Spliced:
    """Rows to append to one sheet of a workbook xlsxwriter wrote: XML chunks from rows_xml, the address of
    the sheet's last cell, and an upper bound of the rows' bytes (see splice_rows)."""

    rows: Iterable[bytes]
    last_ref: str
    size_hint: int = 0


def rows_xml(rows: Iterable[Sequence[object]], first_row: int, letters: Sequence[str],
             number_styles: Sequence[int], text_styles: Sequence[int],
             height: Callable[[Sequence[object]], float | None] | None = None) -> Iterator[bytes]:
    """<row> elements for rows of values starting at 0-based first_row, in chunks of ROWS_PER_CHUNK rows (a
    national matrix is hundreds of megabytes of XML: it is never held whole). Column j's numbers (and
    blanks) take the xf style number_styles[j], its text text_styles[j]; text is inline, so no
    shared-string table. `height` gives a row's height in points (None: Excel's default)."""
    parts: list[str] = []
    append = parts.append
    columns = list(zip([f'<c r="{letter}' for letter in letters],
                       [f'" s="{style}"/>' for style in number_styles],
                       [f'" s="{style}"><v>' for style in number_styles],
                       [f'" s="{style}" t="inlineStr"><is><t' for style in text_styles], strict=False))
    reprs: dict[float, str] = {}  # a matrix of points holds few distinct values: each is formatted once
    for i, cells in enumerate(rows, first_row + 1):
        ht = height(cells) if height is not None else None
        r = str(i)
        append(f'<row r="{r}" ht="{ht:g}" customHeight="1">' if ht else f'<row r="{r}">')
        # Each cell's XML is one f-string (one allocation), not a chain of concatenations.
        for (pre, blank, number, text), value in zip(columns, cells, strict=True):
            if value.__class__ is float:
                shown = reprs.get(value)
                if shown is None:
                    if not math.isfinite(value):
                        append(f"{pre}{r}{blank}")
                        continue
                    if len(reprs) >= _REPRS_KEPT:
                        reprs.clear()
                    shown = reprs[value] = repr(value)
                append(f"{pre}{r}{number}{shown}</v></c>")
            elif value is None:
                append(f"{pre}{r}{blank}")
            elif isinstance(value, str):
                space = ' xml:space="preserve"' if value[:1].isspace() or value[-1:].isspace() else ""
                append(f"{pre}{r}{text}{space}>{escape(value)}</t></is></c>")
            else:
                append(f"{pre}{r}{number}{value!r}</v></c>")
        append("</row>")
        if (i - first_row) % ROWS_PER_CHUNK == 0:
            yield "".join(parts).encode("utf-8")
            parts.clear()
    if parts:
        yield "".join(parts).encode("utf-8")


def splice_rows(source: BinaryIO, target: Path, sheets: dict[int, Spliced]) -> None:
    """Copy the .xlsx in `source` to `target`, appending to each sheet in `sheets` (by its 1-based number in
    the order xlsxwriter added the sheets) its rows after the ones xlsxwriter wrote, and setting the sheet's
    dimension to A1:last_ref. The rows are streamed into the compressed member as they come.

    ZIP64 is used only for a member whose size_hint says it may pass 4 GB, because Excel is strict about
    ZIP64 records it does not need."""
    members = {f"xl/worksheets/sheet{n}.xml": spliced for n, spliced in sheets.items()}
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            spliced = members.get(info.filename)
            if spliced is None:
                zout.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
                continue
            head, sep, tail = data.rpartition(b"</sheetData>")
            if not sep:  # xlsxwriter writes <sheetData/> for an empty sheet
                head, sep, tail = data.partition(b"<sheetData/>")
                head, sep = head + b"<sheetData>", b"</sheetData>"
            head = re.sub(rb'<dimension ref="[^"]*"/>', f'<dimension ref="A1:{spliced.last_ref}"/>'.encode(), head,
                          count=1)
            large = len(data) + spliced.size_hint >= ZIP64_FROM
            with zout.open(info.filename, "w", force_zip64=large) as out:
                out.write(head)
                for chunk in spliced.rows:
                    out.write(chunk)
                out.write(sep + tail)
