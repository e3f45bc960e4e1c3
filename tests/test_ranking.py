"""Ranking: competition ranks (1, 2, 2, 4) on totals and parts read to 2 decimals, ties listed by name."""

from __future__ import annotations

import pytest

from kbang_egov.reporting.ranking import rank_districts
from kbang_egov.rules.results import PART, TOTAL, DistrictResult, SubtotalResult
from kbang_egov.rules.rulebook import Rulebook, load_rulebook


@pytest.fixture(scope="module")
def rb() -> Rulebook:
    return load_rulebook()


def district(rb: Rulebook, name: str, parts: dict[str, float]) -> DistrictResult:
    subtotals = {code: SubtotalResult(code, PART, 100, 100, v, v, v, v) for code, v in parts.items()}
    total = sum(parts.values())
    subtotals[rb.total_code] = SubtotalResult(rb.total_code, TOTAL, 170, 170, total, total, total, total)
    return DistrictResult(name, f"{name}.xlsx", "Tiêu chí", [], subtotals)


def test_ties_share_the_best_rank_and_are_listed_by_name(rb: Rulebook):
    ss, kq = (p.code for p in rb.parts)
    districts = [
        district(rb, "Thị xã Ayun Pa", {ss: 40.0, kq: 60.0}),
        district(rb, "Huyện Đak Pơ", {ss: 50.0, kq: 50.004}),  # 100.00 to 2 decimals: tied with Ayun Pa
        district(rb, "Huyện Chư Sê", {ss: 30.0, kq: 40.0}),
        district(rb, "Huyện Ia Pa", {ss: 60.0, kq: 60.0}),
        district(rb, "Huyện An Khê", {ss: 50.0, kq: 49.996}),  # 100.00 too
    ]
    ranked = rank_districts(districts, rb)
    # Tied names in order of their letters without diacritics: "huyen an khe", "huyen dak po", "thi xa ...".
    assert [(d.district, d.rank) for d in ranked] == [
        ("Huyện Ia Pa", 1), ("Huyện An Khê", 2), ("Huyện Đak Pơ", 2), ("Thị xã Ayun Pa", 2), ("Huyện Chư Sê", 5)]
    assert [d.part_ranks[ss] for d in ranked] == [1, 2, 2, 4, 5]
    assert [d.part_ranks[kq] for d in ranked] == [1, 3, 3, 1, 5]  # 50.004 and 49.996 are both 50.00


def test_no_district_no_rank(rb: Rulebook):
    assert rank_districts([], rb) == []
