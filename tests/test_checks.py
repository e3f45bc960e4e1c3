"""Checks: every criterion finding code, every messy-input form, subtotals, with codes, cells and values."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import pytest

from kbang_egov.reading.reader import Row, Submission, a1, read_submission
from kbang_egov.rules.checks import check_submission
from kbang_egov.rules.results import COMPUTED, NOT_APPLICABLE, TRUSTED, ZERO
from kbang_egov.rules.rulebook import NOT_APPLICABLE as NA_LABEL
from kbang_egov.rules.rulebook import load_rulebook

SAMPLES = sorted((Path(__file__).parent.parent / "kbang_egov" / "data" / "samples").glob("*.xlsx"))

COLS = {"code": 0, "value": 4, "numerator": 5, "denominator": 6, "self_score": 7, "evidence": 9}
LETTER = {name: a1(1, j)[:-1] for name, j in COLS.items()}


@pytest.fixture(scope="module")
def rb():
    return load_rulebook()


def make_submission(rb, cells: dict[str, dict], declared: dict[str, object] | None = None,
                    drop: tuple[str, ...] = ()) -> Submission:
    """A read submission laid out like the template: one row per code in rulebook order, subtotal rows after."""
    sub = Submission("f.xlsx", sheet="Tiêu chí", columns=dict(COLS))
    row = 5
    for c in rb.criteria:
        if c.code in drop:
            continue
        sub.rows[c.code] = Row(row, {"value": None, "numerator": None, "denominator": None, "self_score": None,
                                     "evidence": None, **cells.get(c.code, {})})
        row += 1
    for code in rb.subtotal_codes:
        sub.rows[code] = Row(row, {"self_score": (declared or {}).get(code)})
        row += 1
    return sub


def full_marks(rb) -> dict[str, dict]:
    """Inputs earning every point, each self-score equal to it."""
    out = {}
    for c in rb.scored_criteria:
        if c.kind == "ratio":
            out[c.code] = {"numerator": 14.0, "denominator": 14.0}
        elif c.kind in ("yesno", "choice"):
            out[c.code] = {"value": max(c.options, key=lambda o: o.points).label}
        else:
            top = max(c.tiers, key=lambda t: t.points)
            v = top.ge if top.ge is not None else (top.gt + 1 if top.gt is not None else c.value.max)
            out[c.code] = {"value": f"{v:g}%" if c.value.unit == "%" else float(v)}  # "70%": no reading to warn of
        out[c.code]["self_score"] = float(c.max)
    return out


def declared_full(rb) -> dict[str, float]:
    d = {g.code: float(g.max) for g in rb.groups}
    d.update({p.code: float(p.max) for p in rb.parts})
    d[rb.total_code] = float(rb.total_max)
    return d


def run_one(rb, code: str, given: dict, trust: bool = False):
    cells = full_marks(rb)
    cells[code] = {**cells[code], "numerator": None, "denominator": None, "value": None, **given}
    sub = make_submission(rb, cells, declared_full(rb))
    checked = check_submission(sub, rb, "Huyện Kbang", trust)
    result = next(r for r in checked.criteria if r.code == code)
    found = [(f.code, f.cell) for f in checked.findings if f.subject == code]
    return result, found, sub


def test_full_marks_have_no_findings(rb):
    sub = make_submission(rb, full_marks(rb), declared_full(rb))
    checked = check_submission(sub, rb)
    assert checked.findings == []
    assert checked.subtotals["TONG"].scaled == 170
    assert checked.subtotals["SS"].scaled == 60 and checked.subtotals["KQ"].scaled == 110


# (code, inputs typed, expected points, expected [(finding code, column)])
CASES = [
    # ratio: the seed's evidence fractions, rounded half up on the exact decimal
    ("KQ.III.1", {"numerator": 31.0, "denominator": 318.0, "self_score": 0.1}, 0.1, []),
    ("KQ.III.2", {"numerator": 3.0, "denominator": 318.0, "self_score": 0.01}, 0.01, []),
    ("KQ.III.3", {"numerator": 1405.0, "denominator": 3125.0, "self_score": 0.45}, 0.45, []),
    # numbers stored as text, decimal comma, grouping, stray spaces
    ("SS.I.1", {"numerator": " 31 ", "denominator": "318", "self_score": "0,1"}, 0.1, []),
    ("SS.I.13", {"numerator": "1.405", "denominator": "3.125", "self_score": "0.45"}, 0.45, []),
    ("SS.I.14", {"numerator": "17 000", "denominator": "20.000", "self_score": "0,85"}, 0.85, []),
    ("SS.I.15", {"numerator": "1.405.000", "denominator": "3,125,000", "self_score": 0.45}, 0.45, []),
    ("SS.I.16", {"numerator": "0,5", "denominator": "1", "self_score": 0.5}, 0.5, []),
    # a fraction in the evidence column when the inputs are blank
    ("SS.I.17", {"evidence": "03/318", "self_score": 0.01}, 0.01, [("ratio-from-evidence", "evidence")]),
    ("SS.I.18", {"evidence": " 31 / 318 ", "self_score": 0.1}, 0.1, [("ratio-from-evidence", "evidence")]),
    # ratio findings
    ("SS.I.19", {"numerator": 15.0, "denominator": 14.0, "self_score": 1.0}, 1.0,
     [("numerator-exceeds-denominator", "numerator")]),
    ("SS.I.20", {"numerator": 0.0, "denominator": 0.0, "self_score": 0.0}, 0.0, [("denominator-zero", "denominator")]),
    ("SS.I.21", {"numerator": "mười", "denominator": 14.0, "self_score": 0.0}, 0.0,
     [("input-unparseable", "numerator")]),
    ("SS.I.22", {"numerator": "85%", "denominator": 14.0, "self_score": 0.0}, 0.0,
     [("input-unparseable", "numerator")]),
    ("SS.I.23", {"numerator": None, "denominator": 14.0, "self_score": 0.0}, 0.0, [("input-missing", "numerator")]),
    ("SS.I.24", {"numerator": 3.0, "denominator": None, "self_score": 0.0}, 0.0, [("input-missing", "denominator")]),
    ("SS.I.25", {"self_score": 0.0}, 0.0, [("input-missing", "numerator")]),
    ("SS.I.26", {"numerator": -1.0, "denominator": 14.0, "self_score": 0.0}, 0.0, [("value-out-of-range", "numerator")]),
    ("SS.I.27", {"numerator": True, "denominator": 14.0, "self_score": 0.0}, 0.0, [("input-unparseable", "numerator")]),
    # self-scores
    ("SS.I.28", {"numerator": 17.0, "denominator": 20.0, "self_score": 0.86}, 0.85, [("self-score-mismatch", "self_score")]),
    ("SS.I.29", {"numerator": 17.0, "denominator": 20.0, "self_score": 0.854}, 0.85, []),  # within 0.005
    ("SS.I.30", {"numerator": 17.0, "denominator": 20.0, "self_score": None}, 0.85, [("self-score-missing", "self_score")]),
    ("SS.I.35", {"numerator": 17.0, "denominator": 20.0, "self_score": 1.5}, 0.85,
     [("self-score-out-of-range", "self_score")]),
    ("SS.I.36", {"numerator": 17.0, "denominator": 20.0, "self_score": -0.5}, 0.85,
     [("self-score-out-of-range", "self_score")]),
    ("SS.II.1", {"numerator": 17.0, "denominator": 20.0, "self_score": "tám"}, 0.85,
     [("input-unparseable", "self_score")]),
    ("SS.II.2", {"numerator": 17.0, "denominator": 20.0, "self_score": "85%"}, 0.85,
     [("input-unparseable", "self_score")]),
    # labels as clerks type them
    ("SS.I.2", {"value": "CÓ", "self_score": 1.0}, 1.0, []),
    ("SS.I.3", {"value": "  có  ", "self_score": 1.0}, 1.0, []),
    ("SS.I.4", {"value": unicodedata.normalize("NFD", "Có"), "self_score": 1.0}, 1.0, []),
    ("SS.I.5", {"value": unicodedata.normalize("NFD", "Không"), "self_score": 0.0}, 0.0, []),
    ("SS.I.6", {"value": "Co\u200b", "self_score": 1.0}, 0.0, [("option-unknown", "value")]),
    ("SS.I.7", {"value": "Đã có", "self_score": 1.0}, 0.0, [("option-unknown", "value")]),
    ("SS.I.8", {"value": 1.0, "self_score": 1.0}, 0.0, [("option-unknown", "value")]),
    ("SS.I.9", {"value": None, "self_score": 1.0}, 0.0, [("input-missing", "value")]),
    ("KQ.I.1", {"value": "không  ĐẦY đủ", "self_score": 0.5}, 0.5, []),
    # labels typed without diacritics: the one option they spell, with a warning
    ("SS.I.10", {"value": "co", "self_score": 1.0}, 1.0, [("option-accentless", "value")]),
    ("SS.I.11", {"value": " KHONG ", "self_score": 0.0}, 0.0, [("option-accentless", "value")]),
    ("KQ.I.2", {"value": "day du", "self_score": 1.0}, 1.0, [("option-accentless", "value")]),
    ("KQ.I.3", {"value": "Khong day du", "self_score": 0.5}, 0.5, [("option-accentless", "value")]),
    ("KQ.I.4", {"value": "khong dang tai", "self_score": 0.0}, 0.0, [("option-accentless", "value")]),
    ("KQ.I.7", {"value": "co day du", "self_score": 1.0}, 1.0, [("option-accentless", "value")]),
    ("KQ.I.17", {"value": "co", "self_score": 0.0}, 1.0,
     [("option-accentless", "value"), ("self-score-mismatch", "self_score")]),  # read as Có: scored as Có
    ("KQ.I.18", {"value": "co roi", "self_score": 1.0}, 0.0, [("option-unknown", "value")]),
    ("KQ.I.19", {"value": "day", "self_score": 1.0}, 0.0, [("option-unknown", "value")]),
    # tiers: counts, units, percents
    ("KQ.I.9", {"value": 4.0, "self_score": 1.0}, 1.0, []),
    ("KQ.I.10", {"value": "2", "self_score": 0.5}, 0.5, []),
    ("KQ.I.11", {"value": "1 bài", "self_score": 0.5}, 0.5, []),
    ("KQ.I.12", {"value": 2.5, "self_score": 1.0}, 0.0, [("value-out-of-range", "value")]),
    ("KQ.I.13", {"value": -1.0, "self_score": 0.0}, 0.0, [("value-out-of-range", "value")]),
    ("KQ.I.14", {"value": "nhiều", "self_score": 1.0}, 0.0, [("input-unparseable", "value")]),
    ("SS.III.8", {"value": "990", "self_score": 1.0}, 1.0, []),
    # a percent cell holds the fraction: read so, never silently (the reader cannot see the cell's format)
    ("KQ.III.23", {"value": 0.65, "self_score": 0.5}, 0.5, [("percent-fraction", "value")]),
    ("KQ.III.23", {"value": "65%", "self_score": 0.5}, 0.5, []),
    ("KQ.III.23", {"value": "65 %", "self_score": 0.5}, 0.5, []),
    ("KQ.III.23", {"value": "0,7", "self_score": 1.0}, 1.0, [("percent-fraction", "value")]),
    ("KQ.III.23", {"value": 45.0, "self_score": 0.0}, 0.0, [("percent-assumed", "value")]),
    ("KQ.III.23", {"value": 1.0, "self_score": 1.0}, 1.0, [("percent-fraction", "value")]),  # 1 is 100%, said so
    ("KQ.III.23", {"value": 0.0, "self_score": 0.0}, 0.0, []),  # 0 is 0% either way
    ("KQ.III.23", {"value": "1%", "self_score": 0.0}, 0.0, []),
    ("KQ.III.23", {"value": 0.005, "self_score": 0.0}, 0.0, []),  # 0.5% or 0.005%: 0 points either way
    ("KQ.III.23", {"value": 0.3, "self_score": 0.0}, 0.0, []),  # 30% or 0.3%: the same 0 points, nothing to say
    ("KQ.III.23", {"value": 250.0, "self_score": 1.0}, 0.0, [("value-out-of-range", "value")]),
]


@pytest.mark.parametrize(("code", "given", "points", "expected"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_criterion(rb, code, given, points, expected):
    result, found, sub = run_one(rb, code, given)
    assert result.score == points
    assert found == [(f, sub.cell(code, col)) for f, col in expected]


@pytest.mark.parametrize(("typed", "figure", "score"), [(0.95, 95.0, 1.0), (1.0, 100.0, 1.0), (0.5, 50.0, 0.5),
                                                      ("0,694", 69.4, 0.5), (0.6940000000000001, 69.4, 0.5)])
def test_a_bare_fraction_in_a_percent_criterion_is_read_as_a_percent_cell_and_said_so(rb, typed, figure, score):
    """1 typed in KQ.III.23 is 100% (what a percent cell holds for 100%): scored so, with a warning at the cell
    that carries how it was read."""
    result, _, sub = run_one(rb, "KQ.III.23", {"value": typed, "self_score": score})
    checked = check_submission(sub, rb)
    f = next(f for f in checked.findings if f.subject == "KQ.III.23")
    assert (f.code, f.severity, f.cell, f.params["percent"]) == ("percent-fraction", "warning",
                                                                 sub.cell("KQ.III.23", "value"), figure)
    assert result.score == score


def test_cell_addresses_follow_the_rows(rb):
    result, found, sub = run_one(rb, "SS.I.20", {"numerator": 0.0, "denominator": 0.0, "self_score": 0.0})
    row = sub.rows["SS.I.20"].row
    assert found == [("denominator-zero", f"G{row}")]
    assert result.row == row


def test_not_applicable_removes_the_criterion_and_rescales_the_part(rb):
    """KQ.III.16 accepts "Không áp dụng" (no dossier filed for the level-4 services): out of the maximum, the
    part rescaled, a warning at the cell saying so."""
    cells = full_marks(rb)
    cells["KQ.III.16"] = {"value": "Không áp dụng", "denominator": 0.0, "self_score": None}
    cells["KQ.III.15"] = {"numerator": 1.0, "denominator": 2.0, "self_score": 0.5}
    sub = make_submission(rb, cells, {**declared_full(rb), "KQ.III": 24.5, "KQ": 108.5, "TONG": 168.5})
    checked = check_submission(sub, rb)
    r = next(r for r in checked.criteria if r.code == "KQ.III.16")
    assert (r.source, r.score, r.applicable, r.status) == (NOT_APPLICABLE, 0.0, False, "not-applicable")
    kq = checked.subtotals["KQ"]
    assert (kq.achieved, kq.applicable_max) == (108.5, 109.0)
    assert kq.scaled == 109.5  # 108.5 / 109 x 110 = 109.495... -> 109.5
    assert checked.subtotals["KQ.III"].applicable_max == 25
    assert checked.subtotals["TONG"].scaled == 169.5 and checked.subtotals["TONG"].achieved == 168.5
    assert [(f.code, f.severity, f.cell) for f in checked.findings] == [
        ("not-applicable-accepted", "warning", sub.cell("KQ.III.16", "value"))]
    assert rb.criterion("KQ.III.16").not_applicable_note in checked.findings[0].message


@pytest.mark.parametrize("text", ["Không áp dụng", " KHÔNG ÁP DỤNG ", unicodedata.normalize("NFD", "Không áp dụng")])
def test_not_applicable_in_a_ratio_row_that_accepts_it(rb, text):
    result, found, sub = run_one(rb, "KQ.III.10", {"value": text, "denominator": 0.0, "self_score": None})
    assert result.source == NOT_APPLICABLE
    assert found == [("not-applicable-accepted", sub.cell("KQ.III.10", "value"))]


@pytest.mark.parametrize(("code", "column"), [("SS.I.1", "value"), ("SS.I.3", "value"), ("KQ.I.1", "value"),
                                              ("KQ.I.8", "value"), ("KQ.III.1", "numerator"),
                                              ("SS.I.26", "denominator")])
def test_not_applicable_refused_is_an_error_and_zero_inside_the_maximum(rb, code, column):
    """Ratio, yes/no, choice and tiers criteria that apply to every district: 'Không áp dụng' is an error at
    the cell holding it, the criterion scores 0 and the part is not rescaled. The self-score is not compared:
    the answer is the one thing to fix."""
    result, found, sub = run_one(rb, code, {column: "Không áp dụng", "self_score": 1.0})
    assert (result.score, result.source, result.status, result.applicable) == (0.0, ZERO, "invalid", True)
    assert found == [("not-applicable-refused", sub.cell(code, column))]
    cells = full_marks(rb)
    cells[code] = {"numerator": None, "denominator": None, "value": None, column: "Không áp dụng",
                   "self_score": None}
    checked = check_submission(make_submission(rb, cells), rb)
    part = checked.subtotals[rb.criterion(code).part]
    assert part.applicable_max == part.max and part.scaled == part.achieved == part.max - rb.criterion(code).max
    message = next(f.message for f in checked.findings if f.code == "not-applicable-refused")
    assert (rb.criterion(code).not_applicable_note or "mọi huyện") in message


@pytest.mark.parametrize(("typed", "at", "points"), [
    ({"numerator": 0.0, "denominator": 4.0}, "denominator", 0.0),  # a weak ratio under the mark: scored
    ({"numerator": 3.0, "denominator": 4.0}, "denominator", 0.75),
    ({"numerator": None, "denominator": 4.0}, "denominator", 0.0),
    ({"numerator": 2.0, "denominator": 0.0}, "numerator", 0.0),  # a count over nothing proves nothing
    ({"numerator": "5", "denominator": "0"}, "numerator", 0.0),  # typed as text, read as numbers
])
def test_not_applicable_beside_a_figure_that_says_it_applies_scores_the_figures(rb, typed, at, points):
    """A figure beside 'Không áp dụng' that says the criterion applies: an error at that figure, the figures
    scored as they stand, no rescaling."""
    result, found, sub = run_one(rb, "KQ.III.16", {"value": "Không áp dụng", **typed, "self_score": points})
    assert (result.score, result.applicable, result.source != NOT_APPLICABLE) == (points, True, True)
    assert found[0] == ("not-applicable-contradicted", sub.cell("KQ.III.16", at))
    assert "not-applicable-accepted" not in [f for f, _ in found]


@pytest.mark.parametrize("typed", [{}, {"numerator": 0.0}, {"numerator": 3.0}, {"evidence": "Không phát sinh"}])
def test_not_applicable_without_a_denominator_is_an_error_and_stays_in_the_maximum(rb, typed):
    """'Không áp dụng' with no denominator written: no proof. An error at the answer saying to write the
    denominator 0; the criterion keeps its maximum and scores 0, and the part is not rescaled."""
    cells = full_marks(rb)
    cells["KQ.III.16"] = {"value": "Không áp dụng", "numerator": None, "denominator": None, **typed,
                          "self_score": 0.0}
    sub = make_submission(rb, cells, {**declared_full(rb), "KQ.III": 24.0, "KQ": 109.0, "TONG": 169.0})
    checked = check_submission(sub, rb)
    r = next(r for r in checked.criteria if r.code == "KQ.III.16")
    assert (r.score, r.applicable, r.status, r.source) == (0.0, True, "missing", ZERO)
    assert [(f.code, f.severity, f.cell) for f in checked.findings if f.subject == "KQ.III.16"] == [
        ("not-applicable-unproven", "error", sub.cell("KQ.III.16", "value"))]
    kq = checked.subtotals["KQ"]
    assert (kq.achieved, kq.applicable_max, kq.scaled) == (109.0, 110.0, 109.0)
    # the self-score is not trusted in its place either: the answer is what is missing
    trusted = check_submission(make_submission(rb, {**cells, "KQ.III.16": {**cells["KQ.III.16"], "self_score": 1.0}}),
                               rb, trust_self_scores=True)
    assert next(r for r in trusted.criteria if r.code == "KQ.III.16").score == 0.0


def test_not_applicable_in_a_figure_cell_is_proven_by_the_other_figure(rb):
    """'Không áp dụng' typed in the numerator cell, the denominator 0 beside it: the answer and its proof."""
    result, found, sub = run_one(rb, "KQ.III.16", {"numerator": "Không áp dụng", "denominator": 0.0,
                                                   "self_score": 0.0})
    assert (result.source, found) == (NOT_APPLICABLE, [("not-applicable-accepted", sub.cell("KQ.III.16", "numerator"))])
    result, found, sub = run_one(rb, "KQ.III.16", {"denominator": "Không áp dụng", "self_score": 0.0})
    assert (result.source, found) == (ZERO, [("not-applicable-unproven", sub.cell("KQ.III.16", "denominator"))])


def test_points_claimed_on_a_criterion_taken_out_are_a_mismatch(rb):
    result, found, sub = run_one(rb, "KQ.III.16", {"value": "Không áp dụng", "denominator": 0.0, "self_score": 1.0})
    assert result.source == NOT_APPLICABLE
    assert found == [("not-applicable-accepted", sub.cell("KQ.III.16", "value")),
                     ("self-score-mismatch", sub.cell("KQ.III.16", "self_score"))]
    result, found, _ = run_one(rb, "KQ.III.16", {"value": "Không áp dụng", "denominator": 0.0, "self_score": 0.0})
    assert [f for f, _ in found] == ["not-applicable-accepted"]


@pytest.mark.parametrize(("code", "expected"), [("KQ.III.16", ["option-accentless", "not-applicable-accepted"]),
                                                ("SS.I.2", ["option-accentless", "not-applicable-refused"])])
def test_not_applicable_typed_without_diacritics(rb, code, expected):
    result, found, sub = run_one(rb, code, {"value": "khong ap dung", "denominator": 0.0, "self_score": None})
    assert found == [(f, sub.cell(code, "value")) for f in expected]


def test_zero_of_zero_where_not_applicable_is_accepted_is_a_warning(rb):
    """Kbang's KQ.III.16: 0 of 0 dossiers scores 0 inside the maximum, and the clerk is told to mark it."""
    result, found, sub = run_one(rb, "KQ.III.16", {"numerator": 0.0, "denominator": 0.0, "self_score": 0.0})
    assert (result.score, result.source, result.status, result.applicable) == (0.0, ZERO, "denominator-zero", True)
    assert found == [("zero-of-zero", sub.cell("KQ.III.16", "denominator"))]
    result, found, sub = run_one(rb, "KQ.III.16", {"numerator": 0.0, "denominator": 0.0, "self_score": 1.0})
    assert found == [("zero-of-zero", sub.cell("KQ.III.16", "denominator")),
                     ("self-score-mismatch", sub.cell("KQ.III.16", "self_score"))]
    # a count over nothing is no "nothing arose": still an error
    _, found, sub = run_one(rb, "KQ.III.16", {"numerator": 5.0, "denominator": 0.0, "self_score": 0.0})
    assert found == [("denominator-zero", sub.cell("KQ.III.16", "denominator"))]


def test_messages_offer_not_applicable_only_where_it_is_accepted(rb):
    _, _, sub = run_one(rb, "SS.I.20", {"numerator": 0.0, "denominator": 0.0, "self_score": 0.0})
    checked = check_submission(sub, rb)
    refused = next(f for f in checked.findings if f.code == "denominator-zero")
    assert "không chấp nhận 'Không áp dụng'" in refused.message
    for code, accepted in (("SS.I.1", False), ("KQ.III.10", True)):
        _, _, sub = run_one(rb, code, {"numerator": None, "denominator": 9.0, "self_score": 0.0})
        missing = next(f for f in check_submission(sub, rb).findings if f.code == "input-missing")
        assert ("chấp nhận 'Không áp dụng'" in missing.message) == accepted


def test_missing_inputs_score_zero_or_the_trusted_self_score(rb):
    result, found, sub = run_one(rb, "SS.I.1", {"self_score": 0.7})
    assert (result.score, result.source) == (0.0, ZERO)
    result, found, sub = run_one(rb, "SS.I.1", {"self_score": 0.7}, trust=True)
    assert (result.score, result.source) == (0.7, TRUSTED)
    assert found == [("input-missing", sub.cell("SS.I.1", "numerator"))]  # still flagged
    # an unparseable input is not "missing": the self-score is not trusted
    result, _, _ = run_one(rb, "SS.I.1", {"numerator": "x", "denominator": 5.0, "self_score": 0.7}, trust=True)
    assert (result.score, result.source) == (0.0, ZERO)


def test_computed_source(rb):
    result, _, _ = run_one(rb, "SS.I.1", {"numerator": 1.0, "denominator": 8.0, "self_score": 0.13})
    assert (result.score, result.source, result.gap) == (0.13, COMPUTED, 0.0)


def test_missing_row_scores_zero(rb):
    sub = make_submission(rb, full_marks(rb), declared_full(rb), drop=("SS.I.5",))
    checked = check_submission(sub, rb)
    r = next(r for r in checked.criteria if r.code == "SS.I.5")
    assert (r.score, r.row) == (0.0, 0)
    assert checked.subtotals["SS.I"].achieved == 35


# --- subtotals ---------------------------------------------------------------------------------------


def _seedlike(rb):
    """Full marks but one self-score slip of 0.34 in SS.I.1 (recomputed 0.66), like the seed's readiness."""
    cells = full_marks(rb)
    cells["SS.I.1"] = {"numerator": 33.0, "denominator": 50.0, "self_score": 0.66}
    return cells


def test_declared_subtotals_right_and_wrong(rb):
    cells = _seedlike(rb)
    declared = {**declared_full(rb), "SS.I": 35.66, "SS": 59, "TONG": 110}
    sub = make_submission(rb, cells, declared)
    checked = check_submission(sub, rb)
    found = {(f.code, f.subject, f.cell, f.severity) for f in checked.findings}
    assert found == {
        ("subtotal-arithmetic", "SS", sub.cell("SS", "self_score"), "error"),  # 59 vs own sum 59.66
        ("subtotal-consequence", "SS", sub.cell("SS", "self_score"), "consequence"),  # 59 vs recomputed 59.66
        ("subtotal-arithmetic", "TONG", sub.cell("TONG", "self_score"), "error"),
        ("subtotal-consequence", "TONG", sub.cell("TONG", "self_score"), "consequence"),
    }
    t = checked.subtotals["TONG"]
    assert (t.declared, t.self_sum, t.achieved, t.gap) == (110, 169, 169.66, -59.66)  # own sum: 59 + 110
    assert checked.subtotals["SS"].self_sum == 59.66  # own sum: the declared groups 35.66 + 14 + 10
    follows = {f.subject: f.follows for f in checked.findings if f.code == "subtotal-consequence"}
    ss, tong = sub.cell("SS", "self_score"), sub.cell("TONG", "self_score")
    assert follows == {"SS": (f"SS subtotal-arithmetic {ss}",),
                       "TONG": (f"TONG subtotal-arithmetic {tong}", f"SS subtotal-arithmetic {ss}")}


def test_a_group_added_wrong_is_flagged_once_where_it_was_made(rb):
    """SS.I declared 35 (its self-scores add to 36), carried up consistently into SS 59 and TONG 169: one
    error, where it was made; the sums above follow from it."""
    sub = make_submission(rb, full_marks(rb), {**declared_full(rb), "SS.I": 35, "SS": 59, "TONG": 169})
    checked = check_submission(sub, rb)
    assert sorted((f.code, f.subject) for f in checked.findings) == [
        ("subtotal-arithmetic", "SS.I"), ("subtotal-consequence", "SS"), ("subtotal-consequence", "SS.I"),
        ("subtotal-consequence", "TONG")]
    assert [f.code for f in checked.findings if f.severity == "error"] == ["subtotal-arithmetic"]
    cell = sub.cell("SS.I", "self_score")
    assert {f.follows for f in checked.findings if f.code == "subtotal-consequence"} == {
        (f"SS.I subtotal-arithmetic {cell}",)}


def test_one_slip_is_one_error(rb):
    """Đức Cơ's return: 'Đã có' typed in SS.I.8, self-scored 1 and carried into every sum. One error at E14;
    SS.I, SS and TONG differ from the recomputation only because of it: consequences naming it."""
    cells = full_marks(rb)
    cells["SS.I.8"] = {"value": "Đã có", "self_score": 1.0}
    sub = make_submission(rb, cells, declared_full(rb))
    checked = check_submission(sub, rb, "Huyện Đức Cơ")
    cell = sub.cell("SS.I.8", "value")
    assert [(f.code, f.subject, f.severity) for f in checked.findings] == [
        ("option-unknown", "SS.I.8", "error"), ("subtotal-consequence", "SS.I", "consequence"),
        ("subtotal-consequence", "SS", "consequence"), ("subtotal-consequence", "TONG", "consequence")]
    for f in checked.findings[1:]:
        assert f.follows == (f"SS.I.8 option-unknown {cell}",)
        assert f"SS.I.8 (ô {cell}" in f.message
    assert (checked.subtotals["SS.I"].declared, checked.subtotals["SS.I"].achieved) == (36, 35)


def test_subtotal_arithmetic_right_but_self_scores_wrong(rb):
    cells = full_marks(rb)
    cells["SS.I.1"] = {"numerator": 2.0, "denominator": 3.0, "self_score": 1.0}  # recomputed 0.67
    sub = make_submission(rb, cells, declared_full(rb))
    checked = check_submission(sub, rb)
    sums = sorted((f.code, f.subject) for f in checked.findings if f.subject in ("SS.I", "SS", "TONG"))
    assert sums == [("subtotal-consequence", "SS"), ("subtotal-consequence", "SS.I"),
                    ("subtotal-consequence", "TONG")]
    assert [f.code for f in checked.findings if f.severity == "error"] == ["self-score-mismatch"]


def test_a_difference_no_finding_explains_stays_an_error(rb):
    """Ten self-scores each within 0.005 of their points (0.854 for 0.85: not flagged) add up to 0.04: the
    group's mismatch follows from nothing reported, so it is the error."""
    cells = full_marks(rb)
    for code in ("SS.I.1", *(f"SS.I.{k}" for k in range(13, 22))):  # ten ratios
        cells[code] = {"numerator": 17.0, "denominator": 20.0, "self_score": 0.854}
    sub = make_submission(rb, cells, {**declared_full(rb), "SS.I": 34.54, "SS": 58.54, "TONG": 168.54})
    checked = check_submission(sub, rb)
    assert checked.subtotals["SS.I"].achieved == 34.5
    assert [(f.code, f.subject, f.severity) for f in checked.findings] == [
        ("subtotal-mismatch", "SS.I", "error"), ("subtotal-consequence", "SS", "consequence"),
        ("subtotal-consequence", "TONG", "consequence")]
    cell = sub.cell("SS.I", "self_score")
    assert checked.findings[1].follows == (f"SS.I subtotal-mismatch {cell}",)
    # with an addition slip on top, the unexplained part still leaves the mismatch an error of its own
    sub = make_submission(rb, cells, {**declared_full(rb), "SS.I": 35.54, "SS": 59.54, "TONG": 169.54})
    checked = check_submission(sub, rb)
    assert [(f.code, f.subject, f.severity) for f in checked.findings] == [
        ("subtotal-arithmetic", "SS.I", "error"), ("subtotal-mismatch", "SS.I", "error"),
        ("subtotal-consequence", "SS", "consequence"), ("subtotal-consequence", "TONG", "consequence")]


@pytest.mark.parametrize(("raw", "code"), [(None, "subtotal-missing"), ("", "subtotal-missing"),
                                           ("năm mươi", "input-unparseable"), ("36,00", None), (" 36 ", None)])
def test_declared_subtotal_forms(rb, raw, code):
    sub = make_submission(rb, full_marks(rb), {**declared_full(rb), "SS.I": raw})
    checked = check_submission(sub, rb)
    found = [(f.code, f.cell) for f in checked.findings]
    assert found == ([(code, sub.cell("SS.I", "self_score"))] if code else [])


# --- blank returns ---------------------------------------------------------------------------------------


def test_filled_criteria_counts_what_was_typed(rb):
    from kbang_egov.rules.checks import filled_criteria, filled_needed

    assert filled_needed(rb) == 17  # 10% of 170, rounded up
    assert filled_criteria(make_submission(rb, {}), rb) == 0
    assert filled_criteria(make_submission(rb, full_marks(rb)), rb) == 170
    assert filled_criteria(make_submission(rb, full_marks(rb)), rb, up_to=17) == 17
    cells = {"SS.I.1": {"evidence": "31/318"},  # evidence alone is not a filled criterion
             "SS.I.2": {"value": " \u200b "},  # nor spaces and invisible characters
             "SS.I.3": {"value": 0.0},  # a 0 is a 0
             "SS.I.4": {"self_score": 1.0},  # a self-score alone is
             "SS.I.5": {"value": "Không áp dụng"}}
    assert filled_criteria(make_submission(rb, cells, declared_full(rb)), rb) == 3


# --- whole returns -------------------------------------------------------------------------------------


def test_bundled_samples(rb):
    subs = [read_submission(p.read_bytes(), p.name, rb) for p in SAMPLES]
    checked = [check_submission(s, rb, "Huyện X") for s in subs]
    assert sum(len(c.findings) for c in checked) == 67  # the planted slips, Kbang's own totals, 12 percent cells of 50% or more


def _random_cell(rng: random.Random, c) -> dict:
    """Cells as districts type them: mostly right, often slightly wrong, sometimes nonsense."""
    def number():
        return rng.choice([rng.randint(0, 400) * 1.0, rng.randint(0, 400), rng.random() * 50, -3.0, 0.0,
                           float("inf"), float(2**60), True, "31", "1.405", "4 bài", "85%", "", " ", None,
                           "abc", NA_LABEL])
    cells: dict = {}
    if c.kind == "ratio":
        if rng.random() < 0.7:
            d = rng.randint(0, 400)
            cells["numerator"], cells["denominator"] = float(rng.randint(0, d + 5)), float(d)
        else:
            cells["numerator"], cells["denominator"] = number(), number()
        if rng.random() < 0.05:
            cells["numerator"] = cells["denominator"] = None
            cells["evidence"] = "31/318"
    elif c.kind in ("yesno", "choice"):
        labels = [o.label for o in c.options]
        cells["value"] = rng.choice(labels + [x.upper() for x in labels] + ["khong", 1.0, None, "", NA_LABEL,
                                                                            "Có ", "co", "day du", "khong ap dung"])
    else:
        v = rng.choice([rng.randint(0, 15) * 1.0, rng.random(), rng.random() * 100, 150.0, 0.655, -1.0, 1.0, 0.7])
        cells["value"] = v if c.value.unit == "%" or rng.random() < 0.8 else number()
    if rng.random() < 0.03:  # "Không áp dụng" in a cell the rule does not read
        cells["numerator" if c.kind != "ratio" else "value"] = NA_LABEL
    if c.kind == "ratio" and c.not_applicable and rng.random() < 0.2:  # where the rule accepts it
        cells["value"] = rng.choice([NA_LABEL, "khong ap dung"])
        if rng.random() < 0.5:
            cells["numerator"] = cells["denominator"] = rng.choice([None, 0.0, 5.0])
    cells["self_score"] = rng.choice([c.max, 0.0, round(rng.random() * c.max, 2), c.max + 0.004, c.max + 1, -0.5,
                                      None, "0,5", "abc", True])
    return cells


@pytest.mark.parametrize("trust", [False, True])
def test_random_returns(rb, trust):
    """Thousands of random cells of every kind: each criterion gets one result, inside its maximum, and every
    criterion that earns nothing for want of a valid answer says why at its own row."""
    rng = random.Random(2020 + trust)
    statuses = set()
    for i in range(60):
        cells = {c.code: _random_cell(rng, c) for c in rb.scored_criteria}
        declared = {code: rng.choice([None, 10.0, "abc", 54.34]) for code in rb.subtotal_codes}
        drop = tuple(rng.sample([c.code for c in rb.scored_criteria], 2)) if i % 7 == 0 else ()
        sub = make_submission(rb, cells, declared, drop)
        checked = check_submission(sub, rb, "Huyện X", trust)
        assert [r.code for r in checked.criteria] == [c.code for c in rb.scored_criteria]
        rows = {f.subject: set() for f in checked.findings}
        for f in checked.findings:
            rows[f.subject].add(int(f.cell.lstrip("ABCDEFGHIJ")))
        for r in checked.criteria:
            statuses.add(r.status)
            assert 0 <= r.score <= r.max, r
            assert (r.source == COMPUTED) == (r.status == "ok"), r
            assert (r.source == NOT_APPLICABLE) == (r.status == "not-applicable"), r
            if r.code in drop:
                assert (r.row, r.score, r.code in rows) == (0, 0.0, False)
                continue
            assert rows.get(r.code, {r.row}) == {r.row}, r  # findings at the criterion's own row
            if r.status not in ("ok", "not-applicable"):
                assert r.code in rows, r
                assert r.source in ((ZERO, TRUSTED) if trust else (ZERO,)), r
                assert r.source == TRUSTED or r.score == 0, r
        t = checked.subtotals[rb.total_code]
        assert t.achieved == round(sum(checked.subtotals[p.code].achieved for p in rb.parts), 2)
    assert statuses == {"ok", "missing", "invalid", "denominator-zero", "not-applicable"}


def test_evidence_missing_is_a_warning_at_the_evidence_cell_when_the_rulebook_requires_it(rb):
    import dataclasses

    from kbang_egov.rules.rulebook import Rulebook  # noqa: F401 - the type replaced below

    def requiring(rb, flag):
        parts = tuple(dataclasses.replace(p, groups=tuple(
            dataclasses.replace(g, criteria=tuple(dataclasses.replace(c, evidence_required=flag and c.scored)
                                                 for c in g.criteria)) for g in p.groups)) for p in rb.parts)
        return dataclasses.replace(rb, parts=parts)

    cells = full_marks(rb)
    cells["SS.I.1"]["evidence"] = "Quyết định số 12/QĐ-UBND"
    cells["SS.I.2"] = {**cells["SS.I.2"], "value": None, "self_score": 0.0}  # 0 points: nothing to prove
    sub = make_submission(rb, cells, declared_full(rb))
    strict = check_submission(sub, requiring(rb, True))
    missing = [(f.subject, f.cell, f.severity) for f in strict.findings if f.code == "evidence-missing"]
    assert len(missing) == len(rb.scored_criteria) - 2
    assert ("SS.I.3", f"{LETTER['evidence']}{sub.rows['SS.I.3'].row}", "warning") in missing
    assert not {"SS.I.1", "SS.I.2"} & {s for s, _, _ in missing}
    assert not [f for f in check_submission(sub, requiring(rb, False)).findings if f.code == "evidence-missing"]


@pytest.mark.parametrize(("typed", "expected"), [
    # a count over nothing: the one slip is the answer against the figures, not a zero denominator as well
    ({"numerator": 2.0, "denominator": 0.0}, [("not-applicable-contradicted", "numerator")]),
    # the proof is there (denominator 0); the unreadable count is the slip, not a missing denominator
    ({"numerator": "abc", "denominator": 0.0}, [("input-unparseable", "numerator")]),
])
def test_a_slip_beside_not_applicable_is_reported_once_at_its_own_cell(rb, typed, expected):
    result, found, sub = run_one(rb, "KQ.III.16", {"value": "Không áp dụng", **typed, "self_score": 0.0})
    assert found == [(code, sub.cell("KQ.III.16", column)) for code, column in expected]
    assert (result.score, result.applicable) == (0.0, True)
