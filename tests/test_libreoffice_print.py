"""The workbook as the officer prints it: LibreOffice renders ranking.xlsx to PDF, and the ranking's text is
at least 8 pt on one A4 landscape page, the overview on one page before it, Sai lệch at least 8 pt too."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zlib

import pytest

from workbooks import convert

pytestmark = pytest.mark.libreoffice

A4_LANDSCAPE = (841.9, 595.3)  # points


def page_texts(pdf) -> list[str]:
    """Each page's text (poppler's pdftotext ends every page with a form feed)."""
    tool = shutil.which("pdftotext")
    if tool is None:
        if os.environ.get("KBANG_EGOV_REQUIRE_LIBREOFFICE"):
            pytest.fail("pdftotext (Debian: poppler-utils) is required here but not installed; .ci/run installs it")
        pytest.skip("pdftotext (Debian: poppler-utils) not installed; .ci/run installs it")
    text = subprocess.run([tool, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return text.split("\f")[:-1]


def page_font_sizes(pdf: bytes) -> list[list[float]]:
    """The size of every run of text on each page, in points as printed: LibreOffice writes each run with
    `/Fn SIZE Tf` in page units, the print scale already applied. Pages in the order of their objects."""
    streams = {}
    # An object's dictionary never runs into the next object (a page's, which has no stream, would otherwise
    # lend its number to the stream after it), and a stream is its /Length bytes, whatever they hold.
    for m in re.finditer(rb"(\d+) 0 obj\s*<<((?:(?!endobj).)*?)>>\s*stream\r?\n", pdf, re.S):
        length = re.search(rb"/Length\s+(\d+)\b(?!\s+\d+\s+R)", m.group(2))  # direct, or "3 0 R":
        ref = re.search(rb"/Length\s+(\d+)\s+0\s+R", m.group(2))  # LibreOffice writes it as an object
        if ref and not length:
            length = re.search(rb"\b%s 0 obj\s*(\d+)\s*endobj" % ref.group(1), pdf)
        data = (pdf[m.end():m.end() + int(length.group(1))] if length
                else pdf[m.end():pdf.index(b"endstream", m.end())])
        try:
            streams[int(m.group(1))] = zlib.decompressobj().decompress(data)  # the end of line after it aside
        except zlib.error:
            continue
    pages = [int(n) for n in re.findall(rb"/Type\s*/Page\b(?!s).*?/Contents\s*(\d+)\s+0\s+R", pdf, re.S)]
    return [[float(s) for s in re.findall(rb"/F\d+\s+([\d.]+)\s+Tf", streams.get(p, b""))] for p in pages]


def test_ranking_prints_at_a_readable_size_and_the_overview_on_one_page(tmp_path, one_night, districts, lo_profile):
    pdf = convert(one_night / "ranking.xlsx", "pdf", tmp_path / "pdf", lo_profile)
    texts, sizes = page_texts(pdf), page_font_sizes(pdf.read_bytes())
    assert len(texts) == len(sizes) > 3
    assert "TỔNG QUAN" in texts[0] and "KẾT QUẢ XẾP HẠNG" in texts[1]  # the overview is one page
    ranking = texts[1]
    assert all(d.name in ranking for d in districts)  # the whole ranking on its page ...
    assert "Số cảnh" in ranking and "DIỄN BIẾN" in texts[2]  # ... its last printed column too, and no more
    assert sizes[1] and min(sizes[1]) >= 8.0, sorted(sizes[1])[:5]
    findings = [i for i, text in enumerate(texts) if "Mức độ" in text and "Nội dung" in text]
    assert findings and all(min(sizes[i]) >= 8.0 for i in findings)  # Sai lệch, each of its pages
    size = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf.read_bytes())
    assert (float(size.group(1)), float(size.group(2))) == pytest.approx(A4_LANDSCAPE, abs=1)
