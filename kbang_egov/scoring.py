"""Scoring: the points a criterion earns from the district's raw figures, as a pure function.

Rounding is to 2 decimals, half away from zero, on the exact decimal value of the inputs, which is what
Excel's and LibreOffice's ROUND give for the template's live-score column (31/318 -> 0.1, 03/318 -> 0.01,
1405/3125 -> 0.45). Python's round() would round half to even and on binary floats.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from .rulebook import NOT_APPLICABLE, Criterion
from .text import normalize_text, strip_diacritics

# Status of a scored criterion; the batch turns every status but OK and NOT_APPLICABLE into a finding.
OK = "ok"
NOT_APPLICABLE_STATUS = "not-applicable"
MISSING = "missing"
INVALID = "invalid"  # a label that is not an option, a number outside the value's range, a non-integer count,
# or "Không áp dụng" where the rulebook does not accept it
NOT_APPLICABLE_REFUSED = f"'{NOT_APPLICABLE}' không được chấp nhận"  # the detail of that last case
DENOMINATOR_ZERO = "denominator-zero"


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
    """Round to 2 decimals, half away from zero, as Excel's ROUND does."""
    if isinstance(x, float):
        return _round_float(x)
    return _round_exact(x)


@functools.lru_cache(maxsize=4096)  # option and tier points, maxima and typed scores repeat in every return
def _round_float(x: float) -> float:
    return _round_exact(Fraction(repr(x)))  # the decimal the user typed, not the binary approximation


def _round_exact(x: Fraction | int) -> float:
    d = Decimal(x.numerator) / Decimal(x.denominator) if isinstance(x, Fraction) else Decimal(x)
    return float(d.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


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


def score_criterion(criterion: Criterion, given: CriterionInput) -> Score:
    """Points for one criterion from its inputs, by the criterion's rule. "Không áp dụng" takes the
    criterion out only where the rulebook accepts it; elsewhere it is an invalid answer (no points)."""
    if given.not_applicable or is_not_applicable(given.value):
        if not criterion.not_applicable:
            return Score(None, INVALID, NOT_APPLICABLE_REFUSED)
        return Score(None, NOT_APPLICABLE_STATUS, NOT_APPLICABLE)
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
    detail = f"{_show(num)}/{_show(den)}"
    if float(num).is_integer() and float(den).is_integer():  # counts, nearly always: exact in integers
        n, d = int(min(num, den)), int(den)  # capped: Tối đa <= Điểm tối đa
        return Score(count_points(n, d, *max_ratio(c)), OK, detail)
    ratio = min(_exact(num) / _exact(den), Fraction(1))
    return Score(round_points(ratio * _exact(c.max)), OK, detail)


def max_ratio(c: Criterion) -> tuple[int, int]:
    """The criterion's maximum as written, as an integer ratio (top, bottom): 0.5 is (1, 2)."""
    return _exact(c.max).as_integer_ratio()


def count_points(n: int, d: int, top: int, bottom: int) -> float:
    """Points for n of d counted (0 <= n <= d, d > 0) on a maximum of top / bottom, rounded half up to
    hundredths exactly, in integers."""
    a, b = n * top * 100, d * bottom  # the points x 100 = a / b
    return (2 * a + b) // (2 * b) / 100


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


@functools.lru_cache(maxsize=1024)
def _exact(x: float | int) -> Fraction:
    return Fraction(repr(x)) if isinstance(x, float) else Fraction(x)


def _show(x: float | int) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))
