"""Ranking districts by their official total, ties sharing a rank (1, 2, 2, 4), and within each part."""

from __future__ import annotations

from collections.abc import Callable

from .results import DistrictResult
from .rulebook import Rulebook
from .text import normalize_text, strip_diacritics


def competition_ranks(values: list[float]) -> list[int]:
    """Ranks of values, highest first, equal values (to 2 decimals) sharing the best rank: 1, 2, 2, 4."""
    order = sorted(range(len(values)), key=lambda i: -round(values[i], 2))
    ranks = [0] * len(values)
    prev: float | None = None
    rank = 0
    for pos, i in enumerate(order, 1):
        v = round(values[i], 2)
        if v != prev:
            rank, prev = pos, v
        ranks[i] = rank
    return ranks


def _name_key(d: DistrictResult) -> str:
    return strip_diacritics(normalize_text(d.district))


def rank_districts(results: list[DistrictResult], rulebook: Rulebook) -> list[DistrictResult]:
    """The districts in rank order, with `rank` and `part_ranks` set; ties listed by name."""
    total: Callable[[DistrictResult], float] = lambda d: d.subtotals[rulebook.total_code].scaled  # noqa: E731
    ranked = sorted(results, key=lambda d: (-round(total(d), 2), _name_key(d)))
    for d, r in zip(ranked, competition_ranks([total(d) for d in ranked]), strict=True):
        d.rank = r
    for part in rulebook.parts:
        ranks = competition_ranks([d.subtotals[part.code].scaled for d in ranked])
        for d, r in zip(ranked, ranks, strict=True):
            d.part_ranks[part.code] = r
    return ranked
