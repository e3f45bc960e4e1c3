"""Checking a return the way it nearly always arrives, cheaply: a criterion whose cells are plain numbers
(or a listed label) and whose self-score agrees is scored here without building a finding context; every
other criterion goes to checks.check_criterion, which stays the reference for every result and message.

A criterion is taken here only when the reference would give status ok, source computed and no finding,
and its points are the reference's own: scoring.score_criterion (once per distinct label or tier figure,
cached). tests/test_fastpath.py compares the two on the samples and on random cells.

Numbers across all districts were also tried (numpy per rule kind, in the parent): on 2 cores the parent's
gathering of cells cost more than the workers saved, so each worker checks its own return, this way.
"""

from __future__ import annotations

import functools

from .checks import TOLERANCE, Checked, check_criterion, check_subtotals, subtotals
from .findings import Finding
from .layout import PERCENT_UNIT
from .reader import Row, Submission
from .results import COMPUTED, CriterionResult
from .rulebook import Criterion, Rulebook
from .scoring import OK, CriterionInput, Score, count_points, max_ratio, score_criterion
from .values import NUMBER_LIMIT


def check_submission_fast(sub: Submission, rb: Rulebook, district: str = "",
                          trust_self_scores: bool = False) -> Checked:
    """checks.check_submission's result, with clean criteria scored on the fast path."""
    findings: list[Finding] = []
    results = []
    rows = sub.rows
    for c, plan in _plans(rb):
        row = rows.get(c.code)
        r = _clean(c, plan, row) if row is not None else None
        results.append(r if r is not None else check_criterion(sub, c, district, trust_self_scores, findings))
    totals = subtotals(sub, rb, {r.code: r for r in results})
    check_subtotals(sub, rb, totals, district, findings, results)
    return Checked(results, totals, findings)


_RATIO, _TIERS, _OPTIONS = 0, 1, 2
_PLANS: dict[str, list[tuple[Criterion, tuple]]] = {}


def _plans(rb: Rulebook) -> list[tuple[Criterion, tuple]]:
    """(criterion, plan) for every scored criterion, made once per rulebook. A plan is what _clean needs:
    (kind, highest self-score accepted, the maximum as an integer ratio (scoring.max_ratio), whether a
    tier's figure is a percent)."""
    plans = _PLANS.get(rb.hash)
    if plans is None:
        plans = []
        for c in rb.scored_criteria:
            kind = {"ratio": _RATIO, "tiers": _TIERS}.get(c.kind, _OPTIONS)
            percent = c.value is not None and c.value.unit == PERCENT_UNIT
            plans.append((c, (kind, c.max + TOLERANCE, *max_ratio(c), percent)))
        _PLANS[rb.hash] = plans
    return plans


def _clean(c: Criterion, plan: tuple, row: Row) -> CriterionResult | None:
    """The criterion's result when it needs no finding, else None."""
    kind, highest, top, bottom, percent = plan
    cells = row.cells
    own = cells.get("self_score")
    if (own.__class__ is not float and own.__class__ is not int) or not 0 <= own <= highest:
        return None  # text, a date, bool, NaN, infinite, negative or over the maximum: the reference decides
    if kind == _RATIO:
        num, den = cells.get("numerator"), cells.get("denominator")
        if cells.get("value").__class__ is str:  # "Không áp dụng" there: the reference decides
            return None
        if (num.__class__ is not float and num.__class__ is not int) or \
                (den.__class__ is not float and den.__class__ is not int) or not 0 <= num <= den <= NUMBER_LIMIT:
            return None  # not numbers, NaN, infinite, negative, num > den or absurd (a finding)
        if den and (num.__class__ is int or num.is_integer()) and (den.__class__ is int or den.is_integer()):
            points = count_points(int(num), int(den), top, bottom)  # counts, nearly always
            detail = f"{int(num)}/{int(den)}"  # scoring._show of whole numbers
        else:
            score = score_criterion(c, CriterionInput(numerator=float(num), denominator=float(den)))
            if score.status != OK:
                return None
            points, detail = score.points, score.detail
    else:
        if cells.get("numerator").__class__ is str or cells.get("denominator").__class__ is str:
            return None
        value = cells.get("value")
        if kind == _TIERS:
            figure = _tier_figure(value, percent)
            score = _scored(c, figure) if figure is not None else None
        else:
            score = _scored(c, value) if value.__class__ is str and len(value) <= 100 else None
        if score is None or score.status != OK:
            return None
        points, detail = score.points, score.detail
    if points is None or abs(own - points) > TOLERANCE:
        return None
    return CriterionResult(c.code, c.group, c.part, c.max, float(points), float(own), OK, COMPUTED, detail,
                           row.row)


def _number(v: object) -> bool:
    """A number parse_number takes as it is: not bool, text or a date, finite and within NUMBER_LIMIT."""
    return (v.__class__ is float or v.__class__ is int) and -NUMBER_LIMIT <= v <= NUMBER_LIMIT


def _tier_figure(v: object, percent: bool) -> float | None:
    """The figure a tier compares, as checks._percent_figure reads a number cell; None where the reference
    adds a finding (1 < v <= 100 in a percent cell is percent-assumed) or the cell is not a number."""
    if not _number(v):
        return None
    f = float(v)
    if not percent or f > 100:
        return f
    return round(f * 100, 6) if f <= 1 else None


@functools.lru_cache(maxsize=8192)  # labels and tier figures repeat in every return
def _scored(c: Criterion, value: object) -> Score:
    return score_criterion(c, CriterionInput(value=value))
