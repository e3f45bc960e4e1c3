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
import math

from .checks import TOLERANCE, Checked, check_criterion, check_subtotals, subtotals
from .findings import Finding
from .layout import PERCENT_UNIT
from .reader import Row, Submission
from .results import COMPUTED, CriterionResult
from .rulebook import Criterion, Rulebook
from .scoring import OK, CriterionInput, Score, score_criterion

_SAFE = 2**53  # counts above this are not exact in a float: the reference decides


def check_submission_fast(sub: Submission, rb: Rulebook, district: str = "",
                          trust_self_scores: bool = False) -> Checked:
    """checks.check_submission's result, with clean criteria scored on the fast path."""
    findings: list[Finding] = []
    results = []
    for c in rb.scored_criteria:
        row = sub.rows.get(c.code)
        r = _clean(c, row) if row is not None else None
        results.append(r if r is not None else check_criterion(sub, c, district, trust_self_scores, findings))
    totals = subtotals(sub, rb, {r.code: r for r in results})
    check_subtotals(sub, rb, totals, district, findings)
    return Checked(results, totals, findings)


def _number(v: object) -> bool:
    return (v.__class__ is float or v.__class__ is int) and math.isfinite(v)  # not bool, text, dates


def _clean(c: Criterion, row: Row) -> CriterionResult | None:
    """The criterion's result when it needs no finding, else None."""
    cells = row.cells
    others = ("value",) if c.kind == "ratio" else ("numerator", "denominator")
    if any(cells.get(x).__class__ is str for x in others):  # "Không áp dụng" there: the reference decides
        return None
    own = cells.get("self_score")
    if not _number(own) or own < 0 or own > c.max + TOLERANCE:
        return None
    if c.kind == "ratio":
        num, den = cells.get("numerator"), cells.get("denominator")
        if not (_number(num) and _number(den)) or not 0 <= num <= den < _SAFE:  # num > den: a finding
            return None
        score = score_criterion(c, CriterionInput(numerator=float(num), denominator=float(den)))
    elif c.kind == "tiers":
        figure = _tier_figure(cells.get("value"), c.value is not None and c.value.unit == PERCENT_UNIT)
        score = _scored(c, figure) if figure is not None else None
    else:
        value = cells.get("value")
        score = _scored(c, value) if value.__class__ is str and len(value) <= 100 else None
    if score is None or score.status != OK or score.points is None or abs(own - score.points) > TOLERANCE:
        return None
    return CriterionResult(c.code, c.group, c.part, c.max, float(score.points), float(own), OK, COMPUTED,
                           score.detail, row.row)


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
