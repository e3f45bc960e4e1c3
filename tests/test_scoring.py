"""Pure scoring: points and status for one criterion from the district's raw figures."""

from __future__ import annotations

import dataclasses
import unicodedata
from fractions import Fraction

import pytest

from kbang_egov.forms.layout import cell_to_unit_value, unit_value_to_cell
from kbang_egov.rules.rulebook import Option, ValueSpec, load_rulebook
from kbang_egov.rules.scoring import (
    CONTRADICTED,
    DENOMINATOR_ZERO,
    INVALID,
    MISSING,
    NOT_APPLICABLE_REFUSED,
    NOT_APPLICABLE_STATUS,
    OK,
    PROVEN,
    UNPROVEN,
    CriterionInput,
    accentless_label,
    not_applicable_proof,
    round_points,
    score_criterion,
)


@pytest.fixture(scope="module")
def rb():
    return load_rulebook()


def ratio(rb, code, num, den):
    return score_criterion(rb.criterion(code), CriterionInput(numerator=num, denominator=den))


def value(rb, code, v):
    return score_criterion(rb.criterion(code), CriterionInput(value=v))


# ---------------------------------------------------------------------------------------------------------
# Ratios.


@pytest.mark.parametrize(("code", "num", "den", "points"), [
    ("KQ.III.1", 31, 318, 0.1),     # the seed's evidence "31/318" -> 0.1
    ("KQ.III.2", 3, 318, 0.01),     # "03/318" -> 0.01
    ("KQ.III.3", 1405, 3125, 0.45),  # "1405/3125" -> 0.45
])
def test_seed_evidence_ratios(rb, code, num, den, points):
    s = ratio(rb, code, num, den)
    assert (s.points, s.status) == (points, OK)
    assert s.detail == f"{num}/{den}"


@pytest.mark.parametrize(("num", "den", "points"), [
    (400, 318, 1.0),   # above 100% is capped at the maximum
    (318, 318, 1.0),
    (0, 318, 0.0),
    (1, 8, 0.13),      # 0.125: half away from zero, not half to even
    (57, 200, 0.29),   # 0.285: exact decimal, not the binary float 0.28499...
    (1, 200, 0.01),    # 0.005
    (3, 8, 0.38),      # 0.375
    (5, 8, 0.63),      # 0.625
    (1, 3, 0.33),
    (2, 3, 0.67),
    (0.5, 4, 0.13),    # float figures are read as the decimal typed
])
def test_ratio_points(rb, num, den, points):
    s = ratio(rb, "KQ.III.1", num, den)
    assert s.status == OK
    assert s.points == points


def test_ratio_cap_uses_max(rb):
    c = rb.criterion("KQ.III.1")
    assert score_criterion(c, CriterionInput(numerator=10**6, denominator=1)).points == c.max


@pytest.mark.parametrize(("num", "den", "status", "detail"), [
    (5, 0, DENOMINATOR_ZERO, "Mẫu số bằng 0"),
    (0, 0, DENOMINATOR_ZERO, "Mẫu số bằng 0"),
    (None, 318, MISSING, "Tử số"),
    (31, None, MISSING, "Mẫu số"),
    (None, None, MISSING, "Tử số"),
    (-1, 318, INVALID, "Tử số và Mẫu số không được âm"),
    (31, -318, INVALID, "Tử số và Mẫu số không được âm"),
    (-1, 0, INVALID, "Tử số và Mẫu số không được âm"),
])
def test_ratio_not_scored(rb, num, den, status, detail):
    s = ratio(rb, "KQ.III.1", num, den)
    assert s.points is None
    assert s.status == status
    assert s.detail == detail


# ---------------------------------------------------------------------------------------------------------
# Rounding.


@pytest.mark.parametrize(("x", "expected"), [
    (0.125, 0.13),
    (0.285, 0.29),
    (0.005, 0.01),
    (0.375, 0.38),
    (0.124, 0.12),
    (-0.125, -0.13),           # half away from zero on negatives too
    (Fraction(1, 8), 0.13),
    (Fraction(57, 200), 0.29),
    (Fraction(31, 318), 0.1),
    (Fraction(-1, 8), -0.13),
    (1, 1.0),
    (0, 0.0),
    (Fraction(87_885_000_000, 10**9), 87.89),  # sums of points, as subtotals round them
    (Fraction(-5_000_000, 10**9), -0.01),
    (Fraction(4_999_999, 10**9), 0.0),
    (Fraction(5 * 10**30 - 1, 10**33), 0.0),  # just below a half, beyond 28 significant digits: exact
])
def test_round_points(x, expected):
    assert round_points(x) == expected


# ---------------------------------------------------------------------------------------------------------
# Options.


@pytest.mark.parametrize("typed", [
    "Có",
    unicodedata.normalize("NFD", "Có"),
    " có ",
    "CÓ",
    "có",
    "\tCó\n",
])
def test_option_matching_is_tolerant(rb, typed):
    s = value(rb, "SS.I.2", typed)
    assert (s.points, s.status, s.detail) == (1.0, OK, "Có")


@pytest.mark.parametrize(("code", "typed", "points", "label"), [
    ("SS.I.2", "không", 0.0, "Không"),
    ("KQ.I.1", "không  đầy  đủ", 0.5, "Không đầy đủ"),
    ("KQ.I.1", unicodedata.normalize("NFD", "Không đăng tải"), 0.0, "Không đăng tải"),
    ("KQ.I.7", "có đầy đủ", 1.0, "Có đầy đủ"),
    ("KQ.I.24", "DƯỚI 100% TTHC", 0.0, "dưới 100% TTHC"),
])
def test_option_labels_matched(rb, code, typed, points, label):
    s = value(rb, code, typed)
    assert (s.points, s.status, s.detail) == (points, OK, label)


@pytest.mark.parametrize(("code", "typed", "status"), [
    ("SS.I.2", "Co", INVALID),            # without diacritics is not the label
    ("SS.I.2", "Có đầy đủ", INVALID),
    ("SS.I.2", "Yes", INVALID),
    ("SS.I.2", 1, INVALID),
    ("KQ.I.7", "Có", INVALID),            # KQ.I.7's yes label is "Có đầy đủ"
    ("KQ.I.1", "Đầy", INVALID),
    ("SS.I.2", "", MISSING),
    ("SS.I.2", "   ", MISSING),
    ("SS.I.2", None, MISSING),
    ("KQ.I.1", "", MISSING),
])
def test_option_not_matched(rb, code, typed, status):
    s = value(rb, code, typed)
    assert s.points is None
    assert s.status == status


# ---------------------------------------------------------------------------------------------------------
# Không áp dụng, for every kind.

NA_CODES = ["SS.I.1", "SS.I.2", "KQ.I.1", "KQ.I.8"]  # ratio, yesno, choice, tiers
NA_GIVEN = [
    CriterionInput(value="Không áp dụng"),
    CriterionInput(value="KHÔNG ÁP DỤNG"),
    CriterionInput(value="  không   áp dụng "),
    CriterionInput(value=unicodedata.normalize("NFD", "Không áp dụng")),
    CriterionInput(not_applicable=True),
    CriterionInput(value=8, numerator=1, denominator=2, not_applicable=True),
]
NA_IDS = ["exact", "upper", "spaces", "nfd", "flag", "flag-overrides-figures"]


NA_MARKS = [dict(value="Không áp dụng"), dict(value="KHÔNG ÁP DỤNG"), dict(value="  không   áp dụng "),
            dict(value=unicodedata.normalize("NFD", "Không áp dụng")), dict(not_applicable=True)]


@pytest.mark.parametrize("mark", NA_MARKS, ids=NA_IDS[:5])
@pytest.mark.parametrize(("num", "den"), [(None, 0), (0, 0), (0.0, 0.0)])
def test_not_applicable_proven_by_a_denominator_of_zero_leaves_the_maximum(rb, mark, num, den):
    """KQ.III.16 accepts "Không áp dụng": proven by its denominator written as 0 (no dossier in the year)."""
    s = score_criterion(rb.criterion("KQ.III.16"), CriterionInput(**mark, numerator=num, denominator=den))
    assert (s.status, s.points) == (NOT_APPLICABLE_STATUS, None)


@pytest.mark.parametrize("mark", NA_MARKS, ids=NA_IDS[:5])
@pytest.mark.parametrize(("num", "den", "status", "points"), [
    (None, None, MISSING, None),  # no proof: stays in the maximum, 0 points
    (3, None, MISSING, None),  # a count without its denominator
    (None, 4, MISSING, None),  # a denominator above 0 says it applies; the numerator is missing
    (1, 4, OK, 0.25),  # the figures say it applies: scored as they stand
    (4, 4, OK, 1.0),
    (5, 0, DENOMINATOR_ZERO, None),  # a count over nothing proves nothing
    (-1, 0, INVALID, None),
    (0, -2, INVALID, None),
])
def test_not_applicable_without_its_proof_scores_the_figures(rb, mark, num, den, status, points):
    c = rb.criterion("KQ.III.16")
    s = score_criterion(c, CriterionInput(**mark, numerator=num, denominator=den))
    assert (s.status, s.points) == (status, points)
    assert s == score_criterion(c, CriterionInput(numerator=num, denominator=den))  # as if unmarked


@pytest.mark.parametrize(("num", "den", "proof"), [
    (None, 0, PROVEN), (0, 0, PROVEN), (None, None, UNPROVEN), (7, None, UNPROVEN),
    (0, 3, CONTRADICTED), (2, 0, CONTRADICTED), (None, 0.5, CONTRADICTED)])
def test_not_applicable_proof(rb, num, den, proof):
    assert not_applicable_proof(rb.criterion("KQ.III.16"), CriterionInput(value="Không áp dụng", numerator=num,
                                                                         denominator=den)) == proof


@pytest.mark.parametrize("code", ["SS.I.2", "KQ.I.1", "KQ.I.8"])  # yesno, choice, tiers
def test_no_figure_proves_not_applicable_outside_a_ratio(rb, code):
    """The rulebook accepts "Không áp dụng" on ratios only; were another kind to accept it, nothing typed there
    proves it, and the answer is scored as missing (no rescaling)."""
    c = dataclasses.replace(rb.criterion(code), not_applicable=True, not_applicable_note="Lý do.")
    given = CriterionInput(value="Không áp dụng", numerator=0, denominator=0)
    assert not_applicable_proof(c, given) == UNPROVEN
    assert score_criterion(c, given).status == MISSING


@pytest.mark.parametrize("code", NA_CODES)
@pytest.mark.parametrize("given", NA_GIVEN, ids=NA_IDS)
def test_not_applicable_where_the_rule_refuses_it_earns_nothing(rb, code, given):
    s = score_criterion(rb.criterion(code), given)
    assert (s.status, s.points, s.detail) == (INVALID, None, NOT_APPLICABLE_REFUSED)


def test_kbang_no_dossier_criterion_accepts_not_applicable_with_its_zero(rb):
    s = score_criterion(rb.criterion("KQ.III.16"), CriterionInput(value="Không áp dụng", denominator=0))
    assert s.status == NOT_APPLICABLE_STATUS
    s = score_criterion(rb.criterion("KQ.III.16"), CriterionInput(value="Không áp dụng"))
    assert (s.status, s.points) == (MISSING, None)


def test_kinds_covered_by_not_applicable(rb):
    assert sorted(rb.criterion(c).kind for c in NA_CODES) == ["choice", "ratio", "tiers", "yesno"]


@pytest.mark.parametrize(("code", "typed", "label"), [
    ("SS.I.2", "co", "Có"), ("SS.I.2", " KHONG ", "Không"), ("KQ.I.1", "day du", "Đầy đủ"),
    ("KQ.I.1", "Khong day du", "Không đầy đủ"), ("KQ.I.1", "không day du", "Không đầy đủ"),
    ("KQ.I.7", "co day du", "Có đầy đủ"), ("SS.I.1", "khong ap dung", "Không áp dụng"),
    ("SS.I.2", "Có", "Có"),  # typed right: the same label
    ("SS.I.2", "co roi", None), ("SS.I.2", "Đã có", None), ("SS.I.2", "", None), ("SS.I.2", 1.0, None),
    ("KQ.I.1", "day", None), ("SS.I.1", "co", None),  # a ratio has no options
])
def test_accentless_label(rb, code, typed, label):
    assert accentless_label(rb.criterion(code), typed) == label


def test_accentless_label_that_spells_two_options_is_none(rb):
    """'co' spells both 'Có' and 'Cỏ' once the marks are dropped: it is not guessed."""
    c = rb.criterion("SS.I.2")
    two = dataclasses.replace(c, options=(Option("Có", 1.0), Option("Cỏ", 0.0)))
    assert accentless_label(two, "co") is None
    assert accentless_label(two, "Cỏ") == "Cỏ"  # typed with its marks: no doubt
    assert score_criterion(two, CriterionInput(value="co")).status == INVALID


# ---------------------------------------------------------------------------------------------------------
# Tiers.


@pytest.mark.parametrize(("code", "v", "status"), [
    ("KQ.I.8", 7.5, INVALID),      # articles are whole numbers
    ("KQ.I.8", 8.0, OK),           # a whole float is a whole number
    ("KQ.I.5", 13, INVALID),       # at most 12 months
    ("KQ.I.5", 12, OK),
    ("KQ.I.9", -1, INVALID),       # counts are not negative
    ("KQ.I.29", 5, INVALID),       # at most 4 quarters
    ("KQ.III.23", 100.01, INVALID),
    ("KQ.III.23", -0.01, INVALID),
    ("KQ.III.23", 69.5, OK),       # a percent need not be whole
    ("SS.III.8", 123.45, OK),
    ("KQ.I.8", "8", INVALID),      # a string is not a number
    ("KQ.I.8", "tám bài", INVALID),
    ("KQ.I.8", True, INVALID),
    ("KQ.I.8", None, MISSING),
    ("KQ.I.8", "", MISSING),
    ("KQ.I.8", "  ", MISSING),
])
def test_tier_value_checks(rb, code, v, status):
    s = value(rb, code, v)
    assert s.status == status
    if status == OK:
        assert s.points is not None
    else:
        assert s.points is None


def test_non_finite_figures_are_invalid(rb):
    nan, inf = float("nan"), float("inf")
    for code, given in [
        ("KQ.I.8", CriterionInput(value=nan)),
        ("KQ.I.8", CriterionInput(value=inf)),
        ("KQ.III.1", CriterionInput(numerator=nan, denominator=318)),
        ("KQ.III.1", CriterionInput(numerator=31, denominator=inf)),
    ]:
        s = score_criterion(rb.criterion(code), given)
        assert (s.points, s.status) == (None, INVALID), (code, given)


def test_non_finite_percent_is_invalid(rb):
    s = value(rb, "KQ.III.23", float("nan"))
    assert (s.points, s.status) == (None, INVALID)


def test_tier_points_and_label(rb):
    s = value(rb, "KQ.III.23", 69.5)
    assert (s.points, s.detail) == (0.5, "Từ 50% đến dưới 70%")
    s = value(rb, "SS.III.8", 123.45)
    assert (s.points, s.detail) == (0.5, "100 -<500tr")


def test_unscored_criterion_scores_zero(rb):
    s = value(rb, "KQ.I.32b", 4)
    assert (s.points, s.status) == (0.0, OK)


# ---------------------------------------------------------------------------------------------------------
# Percent cells.


def test_percent_cell_to_unit_value(rb):
    spec = rb.criterion("KQ.III.23").value
    assert spec.unit == "%"
    assert cell_to_unit_value(spec, 0.7) == 70.0
    assert cell_to_unit_value(spec, 0.57) == 57.0   # 0.57 * 100 is 56.99999999999999 as a float
    assert cell_to_unit_value(spec, 0.29) == 29.0
    assert cell_to_unit_value(spec, 1) == 100.0
    assert cell_to_unit_value(spec, 0.695) == 69.5


def test_percent_cell_scores_on_its_tier(rb):
    c = rb.criterion("KQ.III.23")
    assert score_criterion(c, CriterionInput(value=cell_to_unit_value(c.value, 0.7))).points == 1.0
    assert score_criterion(c, CriterionInput(value=cell_to_unit_value(c.value, 0.57))).points == 0.5


@pytest.mark.parametrize(("code", "cell"), [("KQ.I.8", 7), ("SS.III.8", 990), ("SS.III.8", 0.57),
                                            ("KQ.I.5", 12)])
def test_other_units_unchanged(rb, code, cell):
    spec = rb.criterion(code).value
    assert spec.unit != "%"
    assert cell_to_unit_value(spec, cell) == cell
    assert unit_value_to_cell(spec, cell) == cell


def test_unit_value_to_cell_inverse():
    spec = ValueSpec(unit="%", integer=False, min=0, max=100)
    assert unit_value_to_cell(spec, 70) == 0.7
    assert cell_to_unit_value(spec, unit_value_to_cell(spec, 57)) == 57.0


def test_ratio_of_counts_in_integers_agrees_with_exact_fractions(rb):
    """Counts of any size round as the exact fraction of the maximum does, half up."""
    import random
    from fractions import Fraction

    from kbang_egov.rules.scoring import CriterionInput, round_points, score_criterion

    rng = random.Random(2020)
    ratios = [c for c in rb.scored_criteria if c.kind == "ratio"]
    for _ in range(5000):
        c = rng.choice(ratios)
        den = rng.randint(1, 4000)
        num = rng.randint(0, den + 50)
        got = score_criterion(c, CriterionInput(numerator=float(num), denominator=float(den))).points
        assert got == round_points(min(Fraction(num, den), Fraction(1)) * Fraction(repr(c.max))), (c.code, num, den)
    # a half exactly at the second decimal rounds up: 1/8 of 1 point is 0.125 -> 0.13
    one = next(c for c in ratios if c.max == 1)
    assert score_criterion(one, CriterionInput(numerator=1.0, denominator=8.0)).points == 0.13
