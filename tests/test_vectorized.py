"""check_many (numpy, per rule kind across districts) agrees with check_submission (the scalar reference)
on results, subtotals and findings, for real returns and for thousands of random cells of every kind."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from kbang_egov import vectorized
from kbang_egov.checks import check_submission
from kbang_egov.reader import read_submission
from kbang_egov.rulebook import NOT_APPLICABLE
from kbang_egov.vectorized import check_many

from test_checks import make_submission

SAMPLES = sorted((Path(__file__).parent.parent / "kbang_egov" / "data" / "samples").glob("*.xlsx"))


def _same(rb, subs, trust=False):
    entries = [(s, f"Huyện {i}") for i, s in enumerate(subs)]
    got = check_many(entries, rb, trust)
    want = [check_submission(s, rb, d, trust) for s, d in entries]
    for (sub, _), g, w in zip(entries, got, want, strict=True):
        assert g.criteria == w.criteria, sub.file
        assert g.subtotals == w.subtotals, sub.file
        assert [(f.code, f.cell, f.subject, f.message) for f in g.findings] == \
               [(f.code, f.cell, f.subject, f.message) for f in w.findings], sub.file
    return got


def test_bundled_samples_agree(rb):
    subs = [read_submission(p.read_bytes(), p.name, rb) for p in SAMPLES]
    got = _same(rb, subs)
    assert sum(len(c.findings) for c in got) == 50  # the planted slips and Kbang's own totals, found here too


def _random_cell(rng: random.Random, kind: str, c) -> dict:
    """Cells as districts type them: mostly right, often slightly wrong, sometimes nonsense."""
    def number():
        return rng.choice([rng.randint(0, 400) * 1.0, rng.randint(0, 400), rng.random() * 50, -3.0, 0.0,
                           float("inf"), float(2**60), True, "31", "1.405", "4 bài", "85%", "", " ", None,
                           "abc", NOT_APPLICABLE])
    cells: dict = {}
    if kind == "ratio":
        if rng.random() < 0.7:
            d = rng.randint(0, 400)
            cells["numerator"], cells["denominator"] = float(rng.randint(0, d + 5)), float(d)
        else:
            cells["numerator"], cells["denominator"] = number(), number()
        if rng.random() < 0.05:
            cells["numerator"] = cells["denominator"] = None
            cells["evidence"] = "31/318"
    elif kind in ("yesno", "choice"):
        labels = [o.label for o in c.options]
        cells["value"] = rng.choice(labels + [x.upper() for x in labels] + ["khong", 1.0, None, "",
                                                                            NOT_APPLICABLE, "Có "])
    else:
        unit_percent = c.value.unit == "%"
        v = rng.choice([rng.randint(0, 15) * 1.0, rng.random(), rng.random() * 100, 150.0, 0.655, -1.0,
                        1.0, 0.7])
        cells["value"] = v if unit_percent or rng.random() < 0.8 else number()
    return cells


def _random_self_score(rng: random.Random, points_hint: float, mx: float):
    return rng.choice([points_hint, points_hint, round(rng.random() * mx, 2), mx, mx + 0.004, mx + 1, -0.5,
                       None, "0,5", "abc", True, 0.0])


@pytest.mark.parametrize("trust", [False, True])
def test_random_returns_agree(rb, trust):
    rng = random.Random(2020 + trust)
    subs = []
    for i in range(60):
        cells = {}
        for c in rb.scored_criteria:
            cell = _random_cell(rng, c.kind, c)
            cell["self_score"] = _random_self_score(rng, c.max if rng.random() < 0.5 else 0.0, c.max)
            cells[c.code] = cell
        declared = {code: rng.choice([None, 10.0, "abc", 54.34]) for code in rb.subtotal_codes}
        drop = tuple(rng.sample([c.code for c in rb.scored_criteria], 2)) if i % 7 == 0 else ()
        sub = make_submission(rb, cells, declared, drop)
        sub.file = f"r{i}.xlsx"
        subs.append(sub)
    got = _same(rb, subs, trust)
    statuses = {r.status for c in got for r in c.criteria}
    assert statuses == {"ok", "missing", "invalid", "denominator-zero", "not-applicable"}


def test_ratio_points_agree_with_the_exact_path(rb):
    """The integer ratio kernel against score_criterion for 20,000 random counts on every ratio maximum."""
    from kbang_egov.scoring import CriterionInput, score_criterion

    rng = np.random.default_rng(7)
    ratios = [c for c in rb.scored_criteria if c.kind == "ratio"]
    for c in {c.max: c for c in ratios}.values():
        den = rng.integers(1, 10**7, 20000).astype(float)
        num = np.floor(den * rng.random(20000))
        got = vectorized._ratio_points(c, num, den)
        want = [score_criterion(c, CriterionInput(numerator=n, denominator=d)).points
                for n, d in zip(num.tolist(), den.tolist(), strict=True)]
        assert got.tolist() == want, c.code


def test_a_clean_return_needs_no_scalar_check(rb, monkeypatch):
    """The point of the vector path: a return without slips never calls the per-cell checker."""
    kbang = next(p for p in SAMPLES if "Kbang" not in p.name)
    sub = read_submission(kbang.read_bytes(), kbang.name, rb)
    calls = []
    real = vectorized.check_criterion
    monkeypatch.setattr(vectorized, "check_criterion", lambda *a: calls.append(a[1].code) or real(*a))
    [checked] = check_many([(sub, "X")], rb)
    flagged = {f.subject for f in checked.findings}
    assert set(calls) == flagged & {c.code for c in rb.scored_criteria}
    assert len(calls) < len(rb.scored_criteria) // 4
