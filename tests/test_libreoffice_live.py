"""The template tells the truth: on every messy form a clerk types (the reader's and the checks' cases), the
live score LibreOffice recalculates is the batch's points, or the visible marker; never a silent blank and
never another number."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import openpyxl
import pytest

from kbang_egov.forms.layout import CRITERIA_SHEET
from kbang_egov.forms.template import LIVE_MARK, write_template
from kbang_egov.operations.pipeline import process_file
from kbang_egov.rules.districts import match_district
from kbang_egov.rules.results import NOT_APPLICABLE as NA_SOURCE
from kbang_egov.rules.rulebook import NOT_APPLICABLE
from workbooks import calamine_rows, convert_all, locate

pytestmark = pytest.mark.libreoffice

NFD = unicodedata.normalize("NFD", "Có")
# Each criterion with the forms typed into its cells, one form per file: (value, numerator, denominator,
# evidence), None where the cell is left blank. Percent cells hold 0.65 for 65%.
MESSY: dict[str, list[tuple]] = {
    "SS.I.1": [(None, 31, 318, None), (None, " 31 ", 318, None), (None, "31", "318", None),
               (None, "1.405", "3.125", None), (None, 0, 0, None), (None, 12, None, None),
               (None, "9,7%", 318, None), (None, None, None, "12/14"), (None, 400, 318, None),
               (NOT_APPLICABLE, None, None, None), (None, -3, 10, None)],
    "KQ.III.16": [(NOT_APPLICABLE, None, None, None), ("khong ap dung", None, 0, None), (None, 0, 0, None),
                  (NOT_APPLICABLE, None, 5, None), (None, 3, 8, None), (None, "3", "8", None),
                  (None, None, None, None), (NOT_APPLICABLE, 2, 4, None), (None, 1, 1, None),
                  (NOT_APPLICABLE, 0, 0, None), (NOT_APPLICABLE, 5, 0, None)],
    "SS.I.2": [("Có", None, None, None), ("CÓ", None, None, None), ("co", None, None, None),
               (" Có ", None, None, None), (NFD, None, None, None), ("Yes", None, None, None),
               (1, None, None, None), ("Không", None, None, None), ("khong", None, None, None),
               (NOT_APPLICABLE, None, None, None), ("", None, None, None)],
    "KQ.I.1": [("Đầy đủ", None, None, None), ("Không đầy đủ", None, None, None),
               ("khong day du", None, None, None), ("day du", None, None, None),
               ("Không đăng tải", None, None, None), ("đầy đủ", None, None, None), ("x", None, None, None),
               ("  ", None, None, None), ("Đầy  đủ", None, None, None), (0.5, None, None, None),
               ("Không", None, None, None)],
    "KQ.I.5": [(12, None, None, None), ("12", None, None, None), ("12 tháng", None, None, None),
               (12.5, None, None, None), (-1, None, None, None), ("mười hai", None, None, None),
               (5, None, None, None), (13, None, None, None), ("5,0", None, None, None), (0, None, None, None),
               (11, None, None, None)],
    "KQ.III.23": [(0.65, None, None, None), ("65%", None, None, None), (65, None, None, None),
                  ("95%", None, None, None), (0.95, None, None, None), ("70", None, None, None),
                  (1.2, None, None, None), ("0,5", None, None, None), (0.5, None, None, None),
                  (1, None, None, None), (0.7, None, None, None)],
    "SS.III.8": [(500, None, None, None), ("500", None, None, None), ("500 triệu", None, None, None),
                 ("1.500", None, None, None), (99.5, None, None, None), ("100,5", None, None, None),
                 ("4", None, None, None), (-5, None, None, None), (100, None, None, None),
                 ("5%", None, None, None), (1e6, None, None, None)],
}
FORMS = len(next(iter(MESSY.values())))


def _fill(rb, template: Path, folder: Path) -> list[Path]:
    """The template with each form of every criterion typed in, raw (text stays text, numbers numbers), one
    file per form: folder/formNN.xlsx. The template is opened once; each form writes every cell of MESSY
    (None leaves it blank, as in the template)."""
    rows = calamine_rows(template, CRITERIA_SHEET)
    _, cols, codes = locate(rows)
    wb = openpyxl.load_workbook(template)
    ws = wb[CRITERIA_SHEET]
    for c in rb.scored_criteria:  # self-scores everywhere: a return, not a blank template sent back
        ws.cell(row=codes[c.code] + 1, column=cols["self_score"] + 1, value=0)
    filled = []
    for form in range(FORMS):
        for code, forms in MESSY.items():
            for name, v in zip(("value", "numerator", "denominator", "evidence"), forms[form], strict=True):
                ws.cell(row=codes[code] + 1, column=cols[name] + 1).value = v
        filled.append(folder / f"form{form:02d}.xlsx")
        wb.save(filled[-1])
    return filled


def test_the_live_score_is_the_batch_points_or_the_marker_on_every_messy_form(rb, districts, tmp_path, lo_profile):
    assert all(len(v) == FORMS for v in MESSY.values())
    template = write_template(rb, tmp_path / "tpl", match_district("Kbang", districts), districts)
    filled = _fill(rb, template, tmp_path)
    recalculated = convert_all(filled, "xlsx", tmp_path / "lo", lo_profile)
    marked, agreed = 0, 0
    for i, (path, lo_path) in enumerate(zip(filled, recalculated, strict=True)):
        outcome = process_file(path, path.name, rb, districts)  # the batch, on the clerk's own file
        by_code = {r.code: r for r in outcome.result.criteria}
        rows = calamine_rows(lo_path, CRITERIA_SHEET)
        _, cols, codes = locate(rows)
        for code, forms in MESSY.items():
            live = rows[codes[code]][cols["live_score"]]
            typed = [v for v in forms[i] if v is not None and str(v).strip()]
            official = by_code[code]
            where = (code, forms[i], live, official.score, official.source)
            if not typed:
                assert live == "", where  # nothing typed: nothing to say
            elif official.source == NA_SOURCE:
                assert live in (NOT_APPLICABLE, LIVE_MARK), where
            elif code == "KQ.III.23" and isinstance(forms[i][0], (int, float)):
                # a bare number in the percent cell: both sides read it the same way (a fraction up to 1,
                # the figure above), never the marker on one side and points on the other
                assert isinstance(live, float) and live == pytest.approx(official.score, abs=1e-9), where
                agreed += 1
            elif live == LIVE_MARK:
                marked += 1
            else:
                assert isinstance(live, float) and live == pytest.approx(official.score, abs=1e-9), where
                agreed += 1
    assert marked and agreed  # both sides are exercised
