"""Checking a read submission: parse every input as clerks type it, recompute every criterion by its rule,
sum groups, parts and the total, and yield a finding for every slip, located by sheet and cell.

Every check is a generator: it yields its findings in the order a person reads them and returns what it
computed (`points = yield from check(...)`); check_submission is the one report that collects them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

from ..forms.layout import COLUMN_TITLES, INFO_SHEET, PERCENT_UNIT, cell_to_unit_value
from ..reading.reader import Submission
from ..reading.values import NUMBER_LIMIT_TEXT, Parsed, is_blank, parse_fraction, parse_number, show
from ..text import normalize_text, printable
from .districts import District, DistrictIndex
from .findings import ERROR, REGISTRY, Finding, make_finding
from .results import COMPUTED, GROUP, NOT_APPLICABLE, PART, TOTAL, TRUSTED, ZERO, CriterionResult, SubtotalResult
from .rulebook import NOT_APPLICABLE as NA_LABEL
from .rulebook import Criterion, Rulebook, format_points_vi
from .scoring import (
    CONTRADICTED,
    DENOMINATOR_ZERO,
    INVALID,
    MISSING,
    NOT_APPLICABLE_REFUSED,
    NOT_APPLICABLE_STATUS,
    OK,
    PROVEN,
    CriterionInput,
    Score,
    accentless_label,
    is_not_applicable,
    not_applicable_proof,
    round_points,
    score_criterion,
)

TOLERANCE = 0.005  # self-scores are written to 2 decimals
# A return with fewer scored criteria filled in than this share (a figure, a label or a self-score) is a blank
# template sent back: one file-level finding, not ranked (under 17 of the 170 criteria here).
FILLED_PERCENT_MIN = 10
_INPUTS = ("value", "numerator", "denominator")
_TYPED = ("self_score", *_INPUTS)  # what makes a criterion filled in
_APPLIES_TO_ALL = "tiêu chí áp dụng cho mọi huyện, thị xã, thành phố."

T = TypeVar("T")
Check = Generator[Finding, None, T]  # a check: yields its findings, returns its result


@dataclass
class Checked:
    """A checked return: every criterion's result, every subtotal, and the findings, in order."""

    criteria: list[CriterionResult]
    subtotals: dict[str, SubtotalResult]
    findings: list[Finding]


def check_submission(sub: Submission, rb: Rulebook, district: str = "",
                     trust_self_scores: bool = False) -> Checked:
    """Score every criterion of a read submission and check its self-scores and declared subtotals."""
    findings: list[Finding] = []
    results = collect(check_criteria(sub, rb, district, trust_self_scores), findings)
    totals = subtotals(sub, rb, {r.code: r for r in results})
    findings += list(check_subtotals(sub, rb, totals, district, findings, results))  # reads the criteria's
    return Checked(results, totals, findings)


def collect(check: Check[T], findings: list[Finding]) -> T:
    """Run a check to its end: what it yields is appended to `findings`, what it returns is returned."""
    while True:
        try:
            findings.append(next(check))
        except StopIteration as done:
            return done.value


def filled_needed(rb: Rulebook) -> int:
    """How many scored criteria a return must have filled in to be scored (FILLED_PERCENT_MIN, rounded up)."""
    return -(-len(rb.scored_criteria) * FILLED_PERCENT_MIN // 100)


def filled_criteria(sub: Submission, rb: Rulebook, up_to: int | None = None) -> int:
    """How many scored criteria carry anything typed in an input or self-score cell (evidence aside),
    counting no further than `up_to` (enough to know a return is filled in)."""
    n = 0
    for c in rb.scored_criteria:
        row = sub.rows.get(c.code)
        if row is None:
            continue
        cells = row.cells
        for name in _TYPED:
            v = cells.get(name)
            if v is not None and (v.__class__ is not str or not is_blank(v)):
                n += 1
                break
        if n == up_to:
            break
    return n


class _Ctx:
    """Where one criterion's cells are, and how its findings are made."""

    def __init__(self, sub: Submission, c: Criterion, district: str) -> None:
        self.sub, self.c, self.district = sub, c, district
        row = sub.rows.get(c.code)
        self.cells = row.cells if row else {}
        self.row = row.row if row else 0

    def at(self, column: str) -> str:
        return self.sub.cell(self.c.code, column)

    def finding(self, code: str, column: str, **params: object) -> Finding:
        return make_finding(code, self.sub.file, self.sub.sheet, self.at(column), self.district, self.c.code,
                            **params)


def check_criteria(sub: Submission, rb: Rulebook, district: str, trust: bool) -> Check[list[CriterionResult]]:
    """Every scored criterion, in form order: yields their findings, returns their results."""
    results = []
    for c in rb.scored_criteria:
        results.append((yield from check_criterion(sub, c, district, trust)))
    return results


def check_criterion(sub: Submission, c: Criterion, district: str, trust: bool) -> Check[CriterionResult]:
    """One criterion of one submission: yields its findings, returns its result."""
    ctx = _Ctx(sub, c, district)
    self_score = yield from _self_score(ctx)
    if not ctx.row:  # the row is missing: reported by the reader
        return CriterionResult(c.code, c.group, c.part, c.max, 0.0, None, MISSING, ZERO, "", 0)
    marked = _not_applicable_mark(ctx)
    if marked is not None:
        column, accentless = marked
        if accentless:
            yield ctx.finding("option-accentless", column, text=show(ctx.cells.get(column)), label=NA_LABEL)
        if not c.not_applicable:
            return (yield from _not_applicable_refused(ctx, self_score, column))
        ctx.cells = {**ctx.cells, column: None}  # the answer, not a figure: the figures are what proves it

    given, reported = yield from _inputs(ctx)
    if marked is not None:
        proof = not_applicable_proof(c, given)
        if proof == PROVEN and not reported:
            return (yield from _not_applicable_accepted(ctx, self_score, marked[0]))
        given = CriterionInput(numerator=given.numerator, denominator=given.denominator)  # scored as they stand
        if proof != PROVEN:  # else a figure was unreadable, and is reported as such
            yield from _not_applicable_unproven(ctx, marked[0], given, proof, score_criterion(c, given))
            reported = True  # the finding says what to write: no input-missing or denominator-zero as well
    score = score_criterion(c, given)
    if score.status == INVALID and c.kind in ("yesno", "choice"):
        label = accentless_label(c, given.value)
        if label is not None:  # 'co', 'khong day du': one option once the marks are dropped
            yield ctx.finding("option-accentless", "value", text=show(ctx.cells.get("value")), label=label)
            given = CriterionInput(value=label)
            score = score_criterion(c, given)
    zero_of_zero = score.status == DENOMINATOR_ZERO and c.not_applicable and given.numerator == 0
    if score.status == OK:
        points, source = float(score.points), COMPUTED
        if c.kind == "ratio" and given.numerator is not None and given.numerator > given.denominator:
            yield ctx.finding("numerator-exceeds-denominator", "numerator", numerator=given.numerator,
                              denominator=given.denominator)
    else:
        trusted = trust and score.status == MISSING and not reported and self_score is not None and 0 <= self_score <= c.max
        points, source = (self_score, TRUSTED) if trusted else (0.0, ZERO)
        if not reported:
            yield from _status_finding(ctx, score.status, score.detail, given, points, trusted)

    if c.evidence_required and points > 0 and "evidence" in sub.columns and is_blank(ctx.cells.get("evidence")):
        yield ctx.finding("evidence-missing", "evidence", score=points)
    if self_score is None:
        if is_blank(ctx.cells.get("self_score")):  # else unreadable, and reported as such
            yield ctx.finding("self-score-missing", "self_score", score=points)
    elif (yield from _check_range(ctx, self_score)) and (score.status == OK or zero_of_zero) and \
            abs(self_score - points) > TOLERANCE:
        yield ctx.finding("self-score-mismatch", "self_score", self_score=self_score, score=points,
                          detail=score.detail)
    return CriterionResult(c.code, c.group, c.part, c.max, points, self_score, score.status, source,
                           score.detail, ctx.row)


def _not_applicable_mark(ctx: _Ctx) -> tuple[str, bool] | None:
    """The input cell that answers "Không áp dụng", and whether it was typed without diacritics."""
    for name in _INPUTS:
        if is_not_applicable(ctx.cells.get(name)):
            return name, False
    for name in _INPUTS:
        if accentless_label(ctx.c, ctx.cells.get(name)) == NA_LABEL:
            return name, True
    return None


def _not_applicable_accepted(ctx: _Ctx, self_score: float | None, column: str) -> Check[CriterionResult]:
    """"Không áp dụng" where the rulebook accepts it, proven by a denominator of 0: out of the maximum, with a
    warning that gives its ground; points self-scored on it are a mismatch."""
    c = ctx.c
    in_range = self_score is None or (yield from _check_range(ctx, self_score))
    yield ctx.finding("not-applicable-accepted", column, not_applicable=NA_LABEL, ground=c.not_applicable_note,
                      max=c.max, part=c.part)
    if self_score is not None and in_range and self_score > TOLERANCE:  # points claimed on what is out
        yield ctx.finding("self-score-mismatch", "self_score", self_score=self_score, score=0.0, detail=NA_LABEL)
    return CriterionResult(c.code, c.group, c.part, c.max, 0.0, self_score, NOT_APPLICABLE_STATUS, NOT_APPLICABLE,
                           NA_LABEL, ctx.row)


def _not_applicable_unproven(ctx: _Ctx, column: str, given: CriterionInput, proof: str, score: Score) -> Check[None]:
    """"Không áp dụng" where the rulebook accepts it but the figures do not prove it: without figures, an error
    at the answer saying to write the denominator 0; beside a figure that says the criterion applies, an
    error at that figure. Either way the criterion stays in the maximum and scores what the figures give."""
    c = ctx.c
    ground = c.not_applicable_note
    den = c.denominator or "mẫu số"
    if proof == CONTRADICTED:
        at = "numerator" if given.denominator == 0 else "denominator"
        figure = (f"tử số ghi {show(given.numerator)} trong khi mẫu số bằng 0" if at == "numerator" else
                  f"mẫu số ghi {show(given.denominator)}, khác 0")
        yield ctx.finding("not-applicable-contradicted", at, not_applicable=NA_LABEL, figure=figure,
                          score=score.points or 0.0, ground=ground)
    else:
        yield ctx.finding("not-applicable-unproven", column, not_applicable=NA_LABEL, denominator=den, ground=ground)


def _not_applicable_refused(ctx: _Ctx, self_score: float | None, column: str) -> Check[CriterionResult]:
    """"Không áp dụng" where the rulebook refuses it: an error at the cell, 0 points inside the maximum. The
    self-score is not compared: the one thing to fix is the answer, then the figures are scored."""
    c = ctx.c
    if self_score is not None:
        yield from _check_range(ctx, self_score)
    yield ctx.finding("not-applicable-refused", column, not_applicable=NA_LABEL,
                      ground=c.not_applicable_note or _APPLIES_TO_ALL)
    return CriterionResult(c.code, c.group, c.part, c.max, 0.0, self_score, INVALID, ZERO, NOT_APPLICABLE_REFUSED,
                           ctx.row)


def _self_score(ctx: _Ctx) -> Check[float | None]:
    if not ctx.row:
        return None
    p = parse_number(ctx.cells.get("self_score"))
    if p.error or p.percent:
        yield ctx.finding(_not_a_number(p), "self_score", text=p.text, what="điểm",
                          how="Ghi điểm bằng số, ví dụ 0,85.", limit=NUMBER_LIMIT_TEXT)
        return None
    return p.value


def _not_a_number(p: Parsed) -> str:
    """The code for a cell that gives no number: an absurd magnitude (1e300, a 310-digit text) has its own,
    and is never summed."""
    return "number-too-large" if p.too_large else "input-unparseable"


def _check_range(ctx: _Ctx, self_score: float) -> Check[bool]:
    if self_score < 0 or self_score > ctx.c.max + TOLERANCE:
        yield ctx.finding("self-score-out-of-range", "self_score", self_score=self_score, max=ctx.c.max)
        return False
    return True


def _inputs(ctx: _Ctx) -> Check[tuple[CriterionInput, bool]]:
    """The parsed inputs, and whether a finding about them was already reported (unparseable cells)."""
    c = ctx.c
    if c.kind == "ratio":
        num, num_bad = yield from _number(ctx, "numerator", "Tử số")
        den, den_bad = yield from _number(ctx, "denominator", "Mẫu số")
        if num is None and den is None and not (num_bad or den_bad):
            frac = parse_fraction(ctx.cells.get("evidence"))
            if frac is not None:
                num, den = frac
                yield ctx.finding("ratio-from-evidence", "evidence", fraction=show(ctx.cells.get("evidence")))
        return CriterionInput(numerator=num, denominator=den), num_bad or den_bad
    raw = ctx.cells.get("value")
    if c.kind in ("yesno", "choice"):
        if isinstance(raw, str) or raw is None:
            return CriterionInput(value=raw), False
        return CriterionInput(value=show(raw)), False  # a number where a label belongs: not an option
    spec = c.value
    assert spec is not None
    p = parse_number(raw, unit=spec.unit if spec.unit != PERCENT_UNIT else "")
    if p.error:
        yield ctx.finding(_not_a_number(p), "value", text=p.text, what=f"số ({spec.unit})", how=_how_tiers(c), limit=NUMBER_LIMIT_TEXT)
        return CriterionInput(), True
    if p.value is None:
        return CriterionInput(), False
    value = p.value
    if spec.unit == PERCENT_UNIT:
        value = yield from _percent_figure(ctx, p)
    elif p.percent:
        yield ctx.finding("input-unparseable", "value", text=p.text, what=f"số ({spec.unit})", how=_how_tiers(c))
        return CriterionInput(), True
    return CriterionInput(value=value), False


def _percent_figure(ctx: _Ctx, p: Parsed) -> Check[float]:
    """A percent tier's figure (65 for 65%): a percent-formatted cell holds 0.65, "65%" is typed as text;
    a bare number above 1 can only be the figure typed without its sign. The reader cannot see a cell's
    number format, so a bare number in (0, 1] is read as a percent cell's fraction, never silently where the
    reading decides the points: 1 typed in a plain cell would otherwise be 100% (not 1%) without a word.
    Where both readings score the same (0.3 is 30% or 0.3%: 0 points either way) nothing is said. The
    template's live score reads both the same way (template.live_score_formula)."""
    assert p.value is not None
    if p.percent:
        return p.value
    if p.value <= 1:
        figure = cell_to_unit_value(ctx.c.value, p.value)
        if p.value > 0 and score_criterion(ctx.c, CriterionInput(value=figure)).points != \
                score_criterion(ctx.c, CriterionInput(value=p.value)).points:
            yield ctx.finding("percent-fraction", "value", text=p.value, percent=figure)  # 0,694 as Excel shows it
        return figure
    if p.value <= 100:
        yield ctx.finding("percent-assumed", "value", text=p.text)
    return p.value


def _number(ctx: _Ctx, column: str, label: str) -> Check[tuple[float | None, bool]]:
    p = parse_number(ctx.cells.get(column))
    if p.error or p.percent:
        yield ctx.finding(_not_a_number(p), column, text=p.text, what=f"số ({label})",
                          how=f"Nhập {label.lower()} bằng số, ví dụ 31; không nhập % hay chữ.", limit=NUMBER_LIMIT_TEXT)
        return None, True
    return p.value, False


def _how_tiers(c: Criterion) -> str:
    spec = c.value
    assert spec is not None
    if spec.unit == PERCENT_UNIT:
        return "Nhập tỷ lệ phần trăm, ví dụ 65%."
    return f"Nhập số {spec.unit} (chỉ con số, không kèm chữ), ví dụ {_example_figure(c)}."


def _example_figure(c: Criterion) -> str:
    """A figure of the criterion's own scale for a message's example: the bound of its best tier (12 months,
    500 million đồng), never a number that means nothing in that unit."""
    top = max(c.tiers, key=lambda t: t.points)
    step = 1 if c.value is not None and c.value.integer else 0.5
    bound = top.ge if top.ge is not None else (top.gt + step if top.gt is not None else top.le)
    if bound is None or bound <= 0:
        bound = c.value.max if c.value is not None and c.value.max else 1
    return format_points_vi(bound)


# calamine reads a formula saved without its result (openpyxl, some web exports) as an empty cell.
FORMULA_HINT = " Nếu ô đã có công thức, mở tệp bằng Excel và lưu lại để lưu kết quả của công thức."


def _status_finding(ctx: _Ctx, status: str, detail: str, given: CriterionInput, points: float,
                    trusted: bool) -> Check[None]:
    c = ctx.c
    if status == MISSING:
        if c.kind == "ratio":
            column = "numerator" if given.numerator is None else "denominator"
            what = f"{COLUMN_TITLES[column]} ({getattr(c, column) or 'của tỷ lệ'})"
            how = "Nhập số vào cột Tử số và Mẫu số."
        else:
            column, what = "value", "Giá trị"
            how = ("Chọn một giá trị trong danh sách." if c.kind != "tiers" else _how_tiers(c))
        how += FORMULA_HINT
        if c.not_applicable:
            how += (f" Tiêu chí chấp nhận '{NA_LABEL}' khi: {c.not_applicable_note} Khi đó chọn '{NA_LABEL}' và ghi "
                    "mẫu số 0.")
        if trusted:
            how += " Điểm tự đánh giá được tạm dùng (--trust-self-scores)."
        yield ctx.finding("input-missing", column, what=what, score=points, how=how)
    elif status == DENOMINATOR_ZERO and c.not_applicable and given.numerator == 0:
        yield ctx.finding("zero-of-zero", "denominator", not_applicable=NA_LABEL, ground=c.not_applicable_note)
    elif status == DENOMINATOR_ZERO:
        how = (f"Nếu trong năm không phát sinh, ghi tử số 0, giữ mẫu số 0 và chọn '{NA_LABEL}' ở cột Giá trị."
               if c.not_applicable else
               f"Tiêu chí này không chấp nhận '{NA_LABEL}': {c.not_applicable_note or _APPLIES_TO_ALL}")
        yield ctx.finding("denominator-zero", "denominator", denominator=c.denominator or "mẫu số", how=how)
    elif status == INVALID and c.kind in ("yesno", "choice"):
        options = " / ".join(o.label for o in c.options)
        yield ctx.finding("option-unknown", "value", text=show(ctx.cells.get("value")), options=options)
    elif status == INVALID:
        column = "value" if c.kind == "tiers" else "numerator"
        shown = show(ctx.cells.get(column)) if c.kind == "tiers" else f"{given.numerator}/{given.denominator}"
        yield ctx.finding("value-out-of-range", column, text=shown, detail=detail, expected=_expected(c))


def _expected(c: Criterion) -> str:
    if c.kind == "ratio":
        return "tử số và mẫu số là số không âm"
    spec = c.value
    assert spec is not None
    kind = "số nguyên" if spec.integer else "số"
    hi = f" đến {format_points_vi(spec.max)}" if spec.max is not None else " trở lên"
    return f"{kind} từ {format_points_vi(spec.min)}{hi} ({spec.unit})"


# --- subtotals --------------------------------------------------------------------------------------------


_SCALE = 10**9  # points are summed as integer billionths: exact for every decimal a person types


def _points(n: int) -> float:
    """Integer billionths as points rounded to 2 decimals."""
    return round_points(Fraction(n, _SCALE))


def _sum(values: Iterable[float]) -> float:
    """The sum as Excel shows it at 2 decimals, without binary drift (0.1 + 0.2 is 0.3)."""
    return _points(sum(round(float(v) * _SCALE) for v in values))


def subtotals(sub: Submission, rb: Rulebook, by_code: dict[str, CriterionResult]) -> dict[str, SubtotalResult]:
    """Sums per group, part (rescaled when criteria are not applicable) and total; declared values unread.

    A group sums its criteria; a part's achieved points are its groups' (as shown, to 2 decimals) and the
    total's its parts'; maxima and self-scores are summed over the criteria. Each criterion's figures are
    turned into billionths once and the levels add the integers."""
    totals: dict[str, SubtotalResult] = {}
    part_totals: list[SubtotalResult] = []
    all_applicable = all_own = 0
    for part in rb.parts:
        group_totals = []
        part_applicable = part_own = 0
        for group in part.groups:
            achieved = applicable = own = 0
            for c in group.criteria:
                if not c.scored:
                    continue
                r = by_code[c.code]
                if r.source != NOT_APPLICABLE:
                    achieved += round(r.score * _SCALE)
                    applicable += round(r.max * _SCALE)
                if r.self_score is not None:
                    own += round(r.self_score * _SCALE)
            points = _points(achieved)
            g = _subtotal(sub, group.code, GROUP, group.max, applicable, points, points, own, [])
            totals[group.code] = g
            group_totals.append(g)
            part_applicable += applicable
            part_own += own
        achieved_points = _sum([g.achieved for g in group_totals])
        p = _subtotal(sub, part.code, PART, part.max, part_applicable, achieved_points, achieved_points, part_own,
                      group_totals)
        p.scaled = _rescaled(p)
        totals[part.code] = p
        part_totals.append(p)
        all_applicable += part_applicable
        all_own += part_own
    t = _subtotal(sub, rb.total_code, TOTAL, rb.total_max, all_applicable, _sum([p.achieved for p in part_totals]),
                  _sum([p.scaled for p in part_totals]), all_own, part_totals)
    totals[rb.total_code] = t
    return totals


def check_subtotals(sub: Submission, rb: Rulebook, totals: dict[str, SubtotalResult], district: str,
                    found: Sequence[Finding], criteria: Iterable[CriterionResult]) -> Check[None]:
    """Parse each declared subtotal into `totals`, then flag it against the district's own arithmetic and the
    recomputed sum; `found` is what the criteria's checks yielded.

    The district's own arithmetic is the level below as the district wrote it: a group's self-scores, a
    part's declared groups, the declared parts for the total (its self-scores where a level below is
    blank). So a slip is flagged where it was made, not again at every level above it: a declared subtotal
    that differs from the recomputed one only because of findings below it (or its own addition slip) is a
    consequence, listed with the findings it follows from and not counted as an error.
    """
    names = {g.code: f"nhóm {g.code} ({g.name})" for g in rb.groups}
    names.update({p.code: f"phần {p.code} ({p.name})" for p in rb.parts})
    names[rb.total_code] = "toàn bộ tiêu chí"
    results = {r.code: r for r in criteria}
    flagged: dict[str, list[Finding]] = {}  # criterion code: its findings (the reader's row-missing included)
    for f in (*sub.findings, *found):
        if f.subject in results:
            flagged.setdefault(f.subject, []).append(f)
    causes: dict[str, list[Finding]] = {}  # subtotal code: what its difference from the recomputation follows from
    for s in totals.values():  # groups first, so parts see their groups' declared values
        yield from _check_subtotal(sub, s, names[s.code], district)
        below = [totals[c] for c in s.below]
        by_declared = bool(below) and all(b.declared is not None for b in below)
        if by_declared:
            s.self_sum = _sum([b.declared for b in below])
        mine: list[Finding] = []
        if s.declared is not None and abs(s.declared - s.self_sum) > TOLERANCE:
            mine.append(make_finding("subtotal-arithmetic", sub.file, sub.sheet, s.cell, district, s.code,
                                     what=names[s.code], declared=s.declared, self_sum=s.self_sum))
            yield mine[0]
        if s.declared is None or abs(s.declared - s.achieved) <= TOLERANCE:
            continue
        below_causes, residual = (_causes_of_children(below, causes) if by_declared else
                                  _causes_of_criteria(rb.criteria_under[s.code], results, flagged))
        mine += below_causes
        if mine and abs(residual) <= TOLERANCE:
            yield make_finding("subtotal-consequence", sub.file, sub.sheet, s.cell, district, s.code,
                               follows=tuple(f"{f.subject} {f.code} {f.cell}".strip() for f in mine),
                               what=names[s.code], declared=s.declared, score=s.achieved, causes=_causes_text(mine))
        else:  # a difference no finding explains: this mismatch is the error the levels above follow from
            mismatch = make_finding("subtotal-mismatch", sub.file, sub.sheet, s.cell, district, s.code,
                                    what=names[s.code], declared=s.declared, score=s.achieved)
            yield mismatch
            mine.append(mismatch)
        causes[s.code] = mine


def _causes_of_children(below: list[SubtotalResult], causes: dict[str, list[Finding]]) -> tuple[list[Finding], float]:
    """What a subtotal summed from its declared children follows from: the causes of each child that differs
    from its recomputation; and the sum of the differences no finding reports (children within tolerance)."""
    found: list[Finding] = []
    residual = 0.0
    for b in below:
        assert b.declared is not None
        if abs(b.declared - b.achieved) > TOLERANCE:
            found += causes[b.code]
        else:
            residual += b.declared - b.achieved
    return found, residual


def _causes_of_criteria(codes: tuple[str, ...], results: dict[str, CriterionResult],
                        flagged: dict[str, list[Finding]]) -> tuple[list[Finding], float]:
    """What a subtotal summed from self-scores follows from: the findings (errors first) on each criterion
    whose self-score differs from its points; and the sum of the differences no finding reports."""
    found: list[Finding] = []
    residual = 0.0
    for code in codes:
        r = results.get(code)
        if r is None:
            continue
        diff = (r.self_score or 0.0) - r.score
        on = flagged.get(code, []) if abs(diff) > TOLERANCE else []
        if on:
            found += [f for f in on if f.severity == ERROR] or on
        else:  # within the tolerance, or a difference no finding reports
            residual += diff
    return found, residual


CAUSES_SHOWN = 5  # findings named in a consequence's message; findings.csv's follows column has them all


def _causes_text(found: list[Finding]) -> str:
    shown = [f"{f.subject} (ô {f.cell}: {REGISTRY[f.code].title})" if f.cell else f"{f.subject} "
             f"({REGISTRY[f.code].title})" for f in found[:CAUSES_SHOWN]]
    more = len(found) - len(shown)
    return "; ".join(shown) + (f" và {more} lỗi khác" if more > 0 else "")


def _rescaled(s: SubtotalResult) -> float:
    """Achieved points over the applicable maximum, brought back to the full maximum (as provinces publish)."""
    if s.applicable_max == s.max:
        return s.achieved
    if not s.applicable_max:
        return 0.0
    return round_points(Fraction(repr(s.achieved)) / Fraction(repr(s.applicable_max)) * Fraction(repr(s.max)))


def _subtotal(sub: Submission, code: str, level: str, mx: float, applicable: int, achieved: float, scaled: float,
              own: int, below: list[SubtotalResult]) -> SubtotalResult:
    """applicable and own are billionths: the applicable maximum and the sum of the self-scores."""
    # The declared subtotal is parsed and checked in _check_subtotal.
    return SubtotalResult(code, level, float(mx), _points(applicable), achieved, scaled, _points(own), None,
                          sub.cell(code, "self_score"), tuple(b.code for b in below))


def _check_subtotal(sub: Submission, s: SubtotalResult, what: str, district: str) -> Check[None]:
    """Read the declared subtotal into s.declared; flag it when blank or not a number."""
    row = sub.rows.get(s.code)
    raw = row.cells.get("self_score") if row else None

    def finding(code: str, **params: object) -> Finding:
        return make_finding(code, sub.file, sub.sheet, s.cell, district, s.code, **{"what": what, **params})

    if is_blank(raw):
        yield finding("subtotal-missing", score=s.achieved)
        return
    p = parse_number(raw)
    if p.error or p.percent:
        yield finding(_not_a_number(p), text=p.text, what="tổng điểm", how="Ghi tổng điểm bằng số, ví dụ 54,34.", limit=NUMBER_LIMIT_TEXT)
        return
    s.declared = p.value


# --- whose return it is ---------------------------------------------------------------------------------

INFO_TEXT_LIMIT = 500  # characters kept of one information field (unit name, reporter, ...)


def identify_district(sub: Submission, districts: DistrictIndex) -> tuple[District | None, Finding | None]:
    """The listed district a submission is for: the information sheet's unit name, else the template's."""
    raw = sub.info.get("unit_name")
    text = info_text(raw) or info_text(sub.meta.get("district"))
    sheet = sub.info_sheet or INFO_SHEET
    cell = sub.info_cells.get("unit_name", "")
    if not normalize_text(text):
        return None, make_finding("district-missing", sub.file, sheet=sheet, cell=cell)
    district = districts.match(text)
    if district is None:
        known = _known_names(districts.districts)
        return None, make_finding("district-unknown", sub.file, sheet=sheet, cell=cell, district=text,
                                  name=text, known=known)
    # The template made for one district, with another's name typed in: whose return is it? Scored as the
    # typed name, it would replace that district's own return (the newest file wins).
    made_for = districts.match(sub.meta["district"]) if normalize_text(sub.meta.get("district", "")) else None
    if made_for is not None and made_for.name != district.name:
        return None, make_finding("district-mismatch", sub.file, sheet=sheet, cell=cell, district=text,
                                  name=text, template=made_for.name)
    return district, None


KNOWN_NAMES_SHOWN = 20  # a national list has thousands of names: a message names the first few


def _known_names(districts: list[District]) -> str:
    names = [d.name for d in districts[:KNOWN_NAMES_SHOWN]]
    more = len(districts) - len(names)
    return ", ".join(names) + (f" và {more} đơn vị khác trong tệp danh sách" if more > 0 else "")


def info_text(v: object) -> str:
    """An information cell as text: dates as dd/mm/yyyy, whole numbers without '.0', spaces collapsed."""
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.strftime("%d/%m/%Y") if v.time() == dt.time() else v.strftime("%d/%m/%Y %H:%M")
    if isinstance(v, dt.date):
        return v.strftime("%d/%m/%Y")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return printable(" ".join(str(v).split()), INFO_TEXT_LIMIT)
