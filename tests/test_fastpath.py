"""check_submission_fast agrees with check_submission (the reference) on results, subtotals and findings,
for real returns and for thousands of random cells of every kind."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from test_checks import make_submission

from kbang_egov import fastpath
from kbang_egov.checks import check_submission
from kbang_egov.fastpath import check_submission_fast
from kbang_egov.reader import read_submission
from kbang_egov.rulebook import NOT_APPLICABLE

SAMPLES = sorted((Path(__file__).parent.parent / "kbang_egov" / "data" / "samples").glob("*.xlsx"))


def _same(rb, subs, trust=False):
    entries = [(s, f"Huyện {i}") for i, s in enumerate(subs)]
    got = [check_submission_fast(s, rb, d, trust) for s, d in entries]
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
    assert sum(len(c.findings) for c in got) == 55  # the planted slips and Kbang's own totals, found here too


def _random_cell(rng: random.Random, kind: str, c) -> dict:
    """Cells as districts type them: mostly right, often slightly wrong, sometimes nonsense."""
    def number():
        return rng.choice([rng.randint(0, 400) * 1.0, rng.randint(0, 400), rng.random() * 50, -3.0, 0.0,
                           float("inf"), float(2**60), True, "31", "1.405", "4 bài", "85%", "", " ", None,
                           "abc", NOT_APPLICABLE, 5e15, 1e300, float("nan"), "9" * 310])
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
                                                                            NOT_APPLICABLE, "Có ", "co",
                                                                            "day du", "khong ap dung"])
    else:
        unit_percent = c.value.unit == "%"
        v = rng.choice([rng.randint(0, 15) * 1.0, rng.random(), rng.random() * 100, 150.0, 0.655, -1.0,
                        1.0, 0.7])
        cells["value"] = v if unit_percent or rng.random() < 0.8 else number()
    if rng.random() < 0.03:  # "Không áp dụng" in a cell the rule does not read
        cells["numerator" if kind != "ratio" else "value"] = NOT_APPLICABLE
    if kind == "ratio" and c.not_applicable and rng.random() < 0.2:  # where the rule accepts it
        cells["value"] = rng.choice([NOT_APPLICABLE, "khong ap dung"])
        if rng.random() < 0.5:
            cells["numerator"] = cells["denominator"] = rng.choice([None, 0.0, 5.0])
    return cells


def _random_self_score(rng: random.Random, points_hint: float, mx: float):
    return rng.choice([points_hint, points_hint, round(rng.random() * mx, 2), mx, mx + 0.004, mx + 1, -0.5,
                       None, "0,5", "abc", True, 0.0, 1e300])


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


def test_a_clean_return_needs_no_scalar_check(rb, monkeypatch):
    """The point of the vector path: a return without slips never calls the per-cell checker."""
    kbang = next(p for p in SAMPLES if "Kbang" not in p.name)
    sub = read_submission(kbang.read_bytes(), kbang.name, rb)
    calls = []
    real = fastpath.check_criterion
    monkeypatch.setattr(fastpath, "check_criterion", lambda *a: calls.append(a[1].code) or real(*a))
    checked = check_submission_fast(sub, rb, "X")
    flagged = {f.subject for f in checked.findings}
    assert set(calls) == flagged & {c.code for c in rb.scored_criteria}
    assert len(calls) < len(rb.scored_criteria) // 4
