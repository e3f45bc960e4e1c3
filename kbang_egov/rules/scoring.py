"""Scoring: the points a criterion earns from the district's raw figures, as a pure function.

Rounding is to 2 decimals, half away from zero, on the exact decimal value of the inputs, which is what
Excel's and LibreOffice's ROUND give for the template's live-score column (31/318 -> 0.1, 03/318 -> 0.01,
1405/3125 -> 0.45). Python's round() would round half to even and on binary floats.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

from ..text import normalize_text, strip_diacritics
from .rulebook import NOT_APPLICABLE, Criterion

# Status of a scored criterion; the batch turns every status but OK and NOT_APPLICABLE into a finding.
OK = "ok"
NOT_APPLICABLE_STATUS = "not-applicable"
MISSING = "missing"
INVALID = "invalid"  # a label that is not an option, a number outside the value's range, a non-integer count,
# or "Không áp dụng" where the rulebook does not accept it
NOT_APPLICABLE_REFUSED = f"'{NOT_APPLICABLE}' không được chấp nhận"  # the detail of that last case
DENOMINATOR_ZERO = "denominator-zero"

# What the figures written beside "Không áp dụng" make of it (not_applicable_proof): a ratio's denominator
# written as 0, with nothing counted over it, proves there was nothing to count; no figure proves nothing;
# a denominator above 0 (or a count over 0) says the criterion applies.
PROVEN = "proven"
UNPROVEN = "unproven"
CONTRADICTED = "contradicted"


@dataclass(frozen=True)
class CriterionInput:
    """What a district entered for one criterion, already parsed from the cells.

    value: the option label (yesno, choice) or the number in the value's unit (tiers; percent as 0-100).
    numerator, denominator: the ratio's Tử số and Mẫu số.
    """

    value: float | str | None = None
    numerator: float | None = None
    denominator: float | None = None
    not_applicable: bool = False


@dataclass(frozen=True)
class Score:
    points: float | None  # None when the criterion earns nothing because of its status
    status: str
    detail: str = ""  # the matched option or tier label, or what was wrong


def round_points(x: Fraction | float | int) -> float:
    """Round to 2 decimals, half away from zero, as Excel's ROUND does, on the exact value: a float as the
    decimal it was typed as (0.285, not its binary approximation). The one rounding of points: criteria,
    subtotals and rescaled parts all come here."""
    n, d = _exact(x) if isinstance(x, float) else (x.numerator, x.denominator)
    return _round_ratio(n, d)


def _round_ratio(n: int, d: int) -> float:
    """n / d (d > 0) to hundredths, half away from zero, in integers: exact at any size."""
    q, r = divmod(abs(n) * 100, d)
    if 2 * r >= d:
        q += 1
    return -(q / 100) if n < 0 else q / 100


def is_not_applicable(value: object) -> bool:
    return isinstance(value, str) and normalize_text(value) == normalize_text(NOT_APPLICABLE)


def accentless_label(criterion: Criterion, value: object) -> str | None:
    """The one label, among the criterion's options and 'Không áp dụng', that `value` spells once diacritics
    and case are dropped ('co' is 'Có', 'khong day du' is 'Không đầy đủ'); None when it spells none, or
    more than one (then it stays an unknown option)."""
    if not isinstance(value, str):
        return None
    labels = (*(o.label for o in criterion.options), NOT_APPLICABLE)
    exact = normalize_text(value)
    for label in labels:
        if normalize_text(label) == exact:
            return label  # typed with its marks: no doubt
    key = _plain(value)
    hits = [label for label in labels if _plain(label) == key] if key else []
    return hits[0] if len(hits) == 1 else None


def _plain(text: str) -> str:
    return strip_diacritics(normalize_text(text))


def not_applicable_proof(criterion: Criterion, given: CriterionInput) -> str:
    """Whether the figures beside "Không áp dụng" prove it (PROVEN), are absent (UNPROVEN) or say the criterion
    applies (CONTRADICTED). Only a ratio can be proven: its denominator written as 0 ("no summons, no dossier
    in the year") with a numerator of 0 or none. No other kind has a figure that can show its absence, and the
    rulebook accepts "Không áp dụng" on ratios only."""
    num, den = given.numerator, given.denominator
    if criterion.kind != "ratio" or den is None:
        return UNPROVEN  # nothing written, or a count with no denominator: write the denominator (0 if none)
    if den == 0 and (num is None or num == 0):
        return PROVEN
    return CONTRADICTED


def score_criterion(criterion: Criterion, given: CriterionInput) -> Score:
    """Points for one criterion from its inputs, by the criterion's rule. "Không áp dụng" takes the
    criterion out only where the rulebook accepts it and the figures prove it (not_applicable_proof);
    without that proof the figures are scored as they stand (none: missing, 0 points inside the maximum);
    where the rulebook refuses it, it is an invalid answer (no points)."""
    if given.not_applicable or is_not_applicable(given.value):
        if not criterion.not_applicable:
            return Score(None, INVALID, NOT_APPLICABLE_REFUSED)
        if not_applicable_proof(criterion, given) == PROVEN:
            return Score(None, NOT_APPLICABLE_STATUS, NOT_APPLICABLE)
        given = CriterionInput(numerator=given.numerator, denominator=given.denominator)
    if criterion.kind == "ratio":
        return _score_ratio(criterion, given.numerator, given.denominator)
    if criterion.kind in ("yesno", "choice"):
        return _score_option(criterion, given.value)
    if criterion.kind == "tiers":
        return _score_tiers(criterion, given.value)
    raise ValueError(f"unknown kind {criterion.kind!r}")  # the rulebook loader makes this unreachable


def _score_ratio(c: Criterion, num: float | None, den: float | None) -> Score:
    if num is None or den is None:
        return Score(None, MISSING, "Tử số" if num is None else "Mẫu số")
    if not (math.isfinite(num) and math.isfinite(den)):
        return Score(None, INVALID, "Tử số và Mẫu số phải là số hữu hạn")
    if num < 0 or den < 0:
        return Score(None, INVALID, "Tử số và Mẫu số không được âm")
    if den == 0:
        return Score(None, DENOMINATOR_ZERO, "Mẫu số bằng 0")
    (a, b), (e, f), (top, bottom) = _exact(num), _exact(den), _exact(c.max)
    n, d = a * f, b * e  # num / den, exactly
    return Score(_round_ratio(min(n, d) * top, d * bottom), OK, f"{_show(num)}/{_show(den)}")  # capped at 1


def _score_option(c: Criterion, value: float | str | None) -> Score:
    if value is None or (isinstance(value, str) and not value.strip()):
        return Score(None, MISSING, "Giá trị")
    key = normalize_text(str(value))
    for opt in c.options:
        if normalize_text(opt.label) == key:
            return Score(round_points(opt.points), OK, opt.label)
    return Score(None, INVALID, f"'{value}' không phải một lựa chọn")


def _score_tiers(c: Criterion, value: float | str | None) -> Score:
    if value is None or (isinstance(value, str) and not value.strip()):
        return Score(None, MISSING, "Giá trị")
    if isinstance(value, str) or isinstance(value, bool):
        return Score(None, INVALID, f"'{value}' không phải là số")
    spec = c.value
    assert spec is not None
    if not math.isfinite(value):
        return Score(None, INVALID, f"{value} không phải là số hữu hạn")
    if spec.integer and not float(value).is_integer():
        return Score(None, INVALID, f"{_show(value)} không phải số nguyên")
    if value < spec.min or (spec.max is not None and value > spec.max):
        return Score(None, INVALID, f"{_show(value)} ngoài khoảng cho phép")
    for tier in c.tiers:
        if tier.contains(value):
            return Score(round_points(tier.points), OK, tier.label)
    return Score(None, INVALID, f"{_show(value)} không thuộc mức nào")  # unreachable for a valid rulebook


@functools.lru_cache(maxsize=4096)  # counts, points and maxima repeat in every return
def _exact(x: float | int) -> tuple[int, int]:
    """x as an integer ratio (numerator, denominator), a float as the decimal it was typed as: 0.1 is 1/10."""
    if isinstance(x, int) or x.is_integer():
        return int(x), 1
    return Fraction(repr(x)).as_integer_ratio()


def _show(x: float | int) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))
