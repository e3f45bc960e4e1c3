"""The one sanitiser every string passes on its way into an output, and file names from any bytes."""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath
from xml.sax.saxutils import escape

import defusedxml.ElementTree as defused
import pytest

from kbang_egov.text import file_label, path_label, printable

# Characters XML 1.0 cannot hold (its Char production), and what this project keeps out besides.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@pytest.mark.parametrize(("raw", "shown"), [
    ("Huyện Kbang", "Huyện Kbang"),
    ("a\nb\r\nc\td", "a b  c d"),  # line breaks and tabs: spaces, so no line of the log is forged
    ("\x1b[31mđỏ\x1b[0m", "[31mđỏ[0m"),  # ESC dropped: no terminal or log viewer runs the sequence
    ("Kb\ufffeang\uffff", "Kbang"),  # noncharacters: XML 1.0 cannot hold them
    ("x\U0001fffey\U0010ffff", "xy"),
    ("a\ud800b\udcffc", "abc"),  # lone surrogates: no UTF-8 encodes them
    ("gnp\u202e.exe\u2066", "gnp.exe"),  # bidirectional controls reorder what a line shows
    ("a\u2028b\u2029c\x85d", "a b c d"),  # line and paragraph separators: str.splitlines() splits there
    ("\x7f\x80\x9f", ""),
])
def test_printable_keeps_only_what_every_output_holds(raw, shown):
    assert printable(raw) == shown


def test_printable_text_is_well_formed_xml_and_one_line():
    every = "".join(chr(c) for c in range(0x110000))
    text = printable(every)
    assert XML_ILLEGAL.search(text) is None
    assert len(text.splitlines()) == 1
    text.encode("utf-8")  # no surrogate left
    assert defused.fromstring(f"<t>{escape(text)}</t>".encode()).text == text


def test_printable_clips_with_an_ellipsis():
    assert printable("x" * 50, 10) == "x" * 9 + "…"


@pytest.mark.parametrize(("raw", "label"), [
    (b"B\xe1o c\xe1o.xlsx", "Báo cáo.xlsx"),  # Windows-1258, as an old zip or a Windows share delivers it
    ("Báo cáo.xlsx".encode(), "Báo cáo.xlsx"),
    ("Ba\u0301o.xlsx".encode(), "Báo.xlsx"),  # decomposed (macOS): NFC
    (b"x\x81y.xlsx", "x\\x81y.xlsx"),  # a byte Windows-1258 does not define either
    (b"a\nnotice: forged\x1b[2J.xlsx", "a?notice: forged?[2J.xlsx"),  # controls are marked, not dropped
    ("x\ufffe\u202e.xlsx".encode(), "x.xlsx"),
])
def test_a_file_name_from_any_bytes_is_shown_readably(raw, label):
    assert file_label(os.fsdecode(raw)) == label


def test_a_path_is_labelled_part_by_part():
    assert path_label(PurePosixPath(os.fsdecode(b"thu_muc/B\xe1o/k\n.xlsx"))) == "thu_muc/Báo/k?.xlsx"


def test_a_finding_holds_only_printable_text():
    """A crafted workbook's sheet name reaches the finding, its message, the outputs and the log."""
    from kbang_egov.rules.findings import make_finding

    f = make_finding("sheet-oversized", "f.xlsx", sheet="Trang\x1b[2J\ufffe\nx", cell="J9", end="J9", limit=5000)
    assert f.sheet == "Trang[2J x"
    assert printable(f.message) == f.message and "Trang[2J x" in f.message
