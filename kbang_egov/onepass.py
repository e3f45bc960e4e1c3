"""A workbook's sheets rearranged for python-calamine to read each in one pass instead of two.

python-calamine's get_sheet_by_name reads a sheet's XML twice: once for its cells, then again from the top
for its merged ranges, up to the first <mergeCells>, which every writer puts after the cells (the schema's
order). For the template's criteria sheet that second pass is a third of the read. The guard has each
sheet inflated up to the end of its cells anyway; when the merged ranges follow there plainly, calamine is
given that sheet again, stored (not compressed), as: what precedes the cells, the merged ranges, the cells,
and the root's end tag. From it calamine reads the same cells and the same merged ranges, and nothing that
was left out (data validations, page setup, ...) is read by it. Any doubt (a comment, CDATA, a merged range
among the cells, an archive this module does not rebuild exactly) leaves the sheet, or the file, as it was.

The file itself is never changed: these bytes exist only in the worker's memory.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class SheetHead:
    """A sheet member inflated up to the end of its first sheetData, and how to go on from there."""

    xml: bytes  # up to and including the end tag (all of the member when it has none)
    ended: bool  # whether the end tag was found
    after: bytes = b""  # what was inflated beyond it
    more: Iterator[bytes] | None = None  # the rest of the member a chunk at a time; None: `after` is all


_SHEET_DATA = re.compile(rb"<(?:\w+:)?sheetData[\s>/]")
_ROOT = re.compile(rb"<((?:\w+:)?worksheet)[\s>]")
_MERGE_START = re.compile(rb"<((?:\w+:)?)mergeCells[\s>/]")
# The merged ranges as Excel, LibreOffice and xlsxwriter write them: mergeCell elements and spaces, no more.
_MERGE_ELEMENT = re.compile(rb"<(\w+:)?mergeCells(?:\s[^<>]*)?>(?:\s*<(?:\1)?mergeCell\s[^<>]*/>)*\s*"
                            rb"</(?:\1)?mergeCells\s*>")
_MERGE_END = re.compile(rb"</(?:\w+:)?mergeCells\s*>")
# Elements that the schema puts after mergeCells: once one is seen, no merged ranges are coming.
_AFTER_MERGES = re.compile(rb"<(?:\w+:)?(?:phoneticPr|conditionalFormatting|dataValidations|hyperlinks|"
                           rb"printOptions|pageMargins|pageSetup|headerFooter|drawing|legacyDrawing|tableParts|"
                           rb"extLst)[\s>/]")
MERGE_LOOK = 256 * 1024  # bytes inflated beyond the cells, at most, while looking for the merged ranges
# A sheet is arranged only up to this size: the arranged copy is held in memory with the archive built around
# it, on top of calamine's own copy (a template's criteria sheet is 0.1 MB; a 5,000-row sheet about 2 MB).
ARRANGE_MAX = 16 * 2**20
_NO_MERGES = b'<mergeCells count="0"></mergeCells>'  # a start event calamine stops at: an empty list


def reordered(head: SheetHead) -> bytes | None:
    """The sheet as calamine is to read it (merged ranges first, then the cells), or None to leave it."""
    if not head.ended or len(head.xml) > ARRANGE_MAX or _has_markup_declaration(head.xml) \
            or b"mergeCells" in head.xml:
        return None  # a comment or CDATA may hide the real end; a merged range among the cells comes first
    cells = _SHEET_DATA.search(head.xml)
    root = _ROOT.search(head.xml, 0, cells.start()) if cells is not None else None
    if root is None:
        return None
    merges = _merge_element(head)
    if merges is None:
        return None
    return b"".join((head.xml[:cells.start()], merges, head.xml[cells.start():], b"</", root.group(1), b">"))


def _merge_element(head: SheetHead) -> bytes | None:
    """The first mergeCells element after the cells, _NO_MERGES when the whole member has none, None when
    that cannot be told plainly."""
    after, more = head.after, head.more
    while True:
        start = _MERGE_START.search(after)
        if start is not None and _MERGE_END.search(after, start.end()) is not None:
            found = _MERGE_ELEMENT.match(after, start.start())
            if found is None or _has_markup_declaration(after[:start.start()]):
                return None
            return found.group(0)
        if start is None and more is None:
            return None if _has_markup_declaration(after) else _NO_MERGES
        if start is None and _AFTER_MERGES.search(after) is not None:
            return None  # none in a valid sheet, but only calamine's pass to the end would know for sure
        chunk = next(more, None) if more is not None and len(after) <= MERGE_LOOK else None
        if chunk is None:
            return None
        after += chunk


def _has_markup_declaration(xml: bytes) -> bool:
    """Whether the XML holds '<!' (a comment, CDATA or a DTD): found by its rare '!' (memchr speed), not by
    its '<', which starts every element."""
    i = xml.find(b"!")
    while i != -1:
        if i and xml[i - 1] == 0x3C:
            return True
        i = xml.find(b"!", i + 1)
    return False


_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_CENTRAL = struct.Struct("<4s6H3L5HLL")  # central directory file header
_LOCAL = struct.Struct("<4s5H3L2H")  # local file header
_UTF8_NAME = 0x800
_ARCHIVE_MAX = 2**32 - 2**24  # offsets stay well inside 32 bits: no zip64 records to write


def with_stored_members(data: bytes, replaced: dict[str, bytes]) -> bytes | None:
    """The archive with these members' contents replaced, each stored uncompressed after the existing
    entries, and a new central directory; None when the archive is not one this rebuilds exactly (zip64,
    split, data after its end record, a name not found)."""
    if len(data) > _ARCHIVE_MAX:
        return None
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - _EOCD.size - 0xFFFF))
    if end < 0 or len(data) - end < _EOCD.size:
        return None
    _, disk, cd_disk, here, count, cd_size, cd_at, comment = _EOCD.unpack_from(data, end)
    if disk or cd_disk or here != count or cd_at + cd_size != end or end + _EOCD.size + comment != len(data):
        return None
    out, central, offset, done = [data[:cd_at]], [], cd_at, 0
    at = cd_at
    for _ in range(count):
        if data[at:at + 4] != b"PK\x01\x02":
            return None
        fields = _CENTRAL.unpack_from(data, at)
        flags, name_len, extra_len, comment_len = fields[3], fields[10], fields[11], fields[12]
        size = _CENTRAL.size + name_len + extra_len + comment_len
        raw_name = data[at + _CENTRAL.size:at + _CENTRAL.size + name_len]
        xml = replaced.get(raw_name.decode("utf-8" if flags & _UTF8_NAME else "cp437", "replace"))
        if xml is None:
            central.append(data[at:at + size])
        else:
            made_by, when, day, internal, external = fields[1], fields[5], fields[6], fields[14], fields[15]
            crc, length, keep = zlib.crc32(xml), len(xml), flags & _UTF8_NAME
            out += (_LOCAL.pack(b"PK\x03\x04", 20, keep, 0, when, day, crc, length, length, name_len, 0), raw_name,
                    xml)
            central += (_CENTRAL.pack(b"PK\x01\x02", made_by, 20, keep, 0, when, day, crc, length, length, name_len,
                                      0, 0, 0, internal, external, offset), raw_name)
            offset += _LOCAL.size + name_len + length
            done += 1
        at += size
    if at != end or done != len(replaced):
        return None
    directory = b"".join(central)
    out += (directory, _EOCD.pack(b"PK\x05\x06", 0, 0, count, count, len(directory), offset, 0))
    return b"".join(out)
