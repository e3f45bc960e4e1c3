"""Checking many submissions at once: every criterion is scored per rule kind across all districts with
numpy, and only the cells that need a finding go through the scalar checker (checks.py), which stays the
reference for every message. A return as the template means it (numbers in the number cells, a listed
label in the dropdowns, a self-score that agrees) costs no per-cell Python beyond gathering its values.

Agreement with the reference is by construction and by test: a cell is "clean" here only when the scalar
path would give status ok, source computed and no finding; its points are what scoring.score_criterion
gives (options and tiers are scored once per distinct value with it, ratios of counts in integers exactly
as _score_ratio does); everything else is handed to checks.check_criterion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .checks import TOLERANCE, Checked, check_criterion, check_subtotals, subtotals
from .findings import Finding
from .layout import PERCENT_UNIT
from .reader import Submission
from .results import COMPUTED, CriterionResult
from .rulebook import Criterion, Rulebook
from .scoring import OK, CriterionInput, Score, _exact, _show, is_not_applicable, score_criterion

_INPUTS = {"ratio": ("numerator", "denominator"), "yesno": ("value",), "choice": ("value",), "tiers": ("value",)}
_SAFE = 2**53  # counts above this are not exact in a float; such ratios go to the scalar path


def check_many(entries: Sequence[tuple[Submission, str]], rb: Rulebook, trust_self_scores: bool = False,
               ) -> list[Checked]:
    """check_submission(sub, rb, district, trust_self_scores) for every (sub, district), vectorised."""
    n = len(entries)
    criteria = rb.scored_criteria
    results: list[list[CriterionResult | None]] = [[None] * len(criteria) for _ in range(n)]
    dirty = np.zeros((n, len(criteria)), dtype=bool)
    for k, c in enumerate(criteria):
        rows = [sub.rows.get(c.code) for sub, _ in entries]
        selfs = _numbers([r.cells.get("self_score") if r else None for r in rows])
        points, detail = _score_column(c, rows)
        ok = ~np.isnan(points) & ~np.isnan(selfs)
        with np.errstate(invalid="ignore"):
            ok &= (selfs >= 0) & (selfs <= c.max + TOLERANCE) & (np.abs(selfs - points) <= TOLERANCE)
        dirty[:, k] = ~ok
        group, part, mx = c.group, c.part, c.max
        pts, own = points.tolist(), selfs.tolist()
        for i in np.flatnonzero(ok).tolist():
            results[i][k] = CriterionResult(c.code, group, part, mx, pts[i], own[i], OK, COMPUTED, detail(i),
                                            rows[i].row)
    out = []
    for i, (sub, district) in enumerate(entries):
        findings: list[Finding] = []
        row = results[i]
        for k in np.flatnonzero(dirty[i]).tolist():
            row[k] = check_criterion(sub, criteria[k], district, trust_self_scores, findings)
        done: list[CriterionResult] = row  # type: ignore[assignment] - every cell is now filled
        totals = subtotals(sub, rb, {r.code: r for r in done})
        check_subtotals(sub, rb, totals, district, findings)
        out.append(Checked(done, totals, findings))
    return out


def _not_applicable(cells: dict[str, object]) -> bool:
    """checks.check_criterion's test, with the common case (no text in the input cells) kept cheap."""
    return any(v.__class__ is str and is_not_applicable(v)
               for v in (cells.get("value"), cells.get("numerator"), cells.get("denominator")))


def _numbers(raw: list[object]) -> np.ndarray:
    """Plain finite numbers as floats; anything else (blank, text, TRUE, dates) is nan: the scalar path's."""
    return np.array([float(v) if (v.__class__ is float or v.__class__ is int) and math.isfinite(v) else math.nan
                     for v in raw])


def _score_column(c: Criterion, rows: list) -> tuple[np.ndarray, object]:
    """Points per district for one criterion (nan where the cell needs the scalar path) and detail(i)."""
    cells = [r.cells if r else None for r in rows]
    na = np.array([cs is not None and _not_applicable(cs) for cs in cells], dtype=bool)
    if c.kind == "ratio":
        num = _numbers([cs.get("numerator") if cs else None for cs in cells])
        den = _numbers([cs.get("denominator") if cs else None for cs in cells])
        points = _ratio_points(c, num, den)
        points[na] = math.nan
        nums, dens = num.tolist(), den.tolist()
        shown = {v: _show(v) for v in {*nums, *dens} if not math.isnan(v)}  # counts repeat across districts
        return points, lambda i: f"{shown[nums[i]]}/{shown[dens[i]]}"
    raw = [cs.get("value") if cs else None for cs in cells]
    if c.kind == "tiers":
        spec = c.value
        assert spec is not None
        figure = {v: _tier_figure(v, spec.unit == PERCENT_UNIT) for v in set(_numbers(raw).tolist())}
        keys: list[object] = [figure.get(v) for v in _numbers(raw).tolist()]
    else:
        keys = [v if isinstance(v, str) else None for v in raw]
    scored = {}
    for v in set(keys):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        s = score_criterion(c, CriterionInput(value=v))
        if s.status == OK and s.points is not None:
            scored[v] = s
    points = np.array([scored[v].points if v in scored else math.nan for v in keys], dtype=float)
    points[na] = math.nan
    labels: list[Score | None] = [scored.get(v) for v in keys]
    return points, lambda i: labels[i].detail if labels[i] else ""


def _tier_figure(v: float, percent: bool) -> float | None:
    """The figure a tier compares, as checks._percent_figure reads a number cell; None where that adds a
    finding (1 < v <= 100 in a percent cell is percent-assumed) or the cell is not a number."""
    if math.isnan(v):
        return None
    if not percent or v > 100:
        return v
    return round(v * 100, 6) if v <= 1 else None


def _ratio_points(c: Criterion, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Tỷ lệ% x Điểm tối đa, capped, rounded half up to 2 decimals, for counts: _score_ratio's integer path.
    Non-integer or very large figures, zero or negative ones are nan (the scalar path decides)."""
    top, bottom = _exact(c.max).as_integer_ratio()
    with np.errstate(invalid="ignore"):
        ok = ((num >= 0) & (den > 0) & (num <= den) & (np.floor(num) == num) & (np.floor(den) == den)
              & (den * 200 * max(top, bottom) < _SAFE))
    n = np.where(ok, num, 0).astype(np.int64)
    d = np.where(ok, den, 1).astype(np.int64)
    a, b = n * (top * 100), d * bottom
    points = ((2 * a + b) // (2 * b)) / 100
    return np.where(ok, points, math.nan)
