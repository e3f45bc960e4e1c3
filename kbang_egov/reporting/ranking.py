"""Ranking districts by their official total, ties sharing a rank (1, 2, 2, 4), and within each part."""

from __future__ import annotations

import pandas as pd

from ..rules.results import DistrictResult
from ..rules.rulebook import Rulebook
from ..text import normalize_text, strip_diacritics


def rank_districts(results: list[DistrictResult], rulebook: Rulebook) -> list[DistrictResult]:
    """The districts in rank order, with `rank` and `part_ranks` set; ties listed by name.

    Totals and parts are compared as officials read them, to 2 decimals; equal ones share the best rank
    (`rank(method="min")`: 1, 2, 2, 4)."""
    total, parts = rulebook.total_code, [p.code for p in rulebook.parts]
    scaled = pd.DataFrame([[d.subtotals[c].scaled for c in (total, *parts)] for d in results],
                          columns=[total, *parts], dtype="float64").round(2)
    ranks = scaled.rank(method="min", ascending=False)
    names = pd.Series([strip_diacritics(normalize_text(d.district)) for d in results], dtype=object)
    order = scaled.assign(_name=names).sort_values([total, "_name"], ascending=[False, True]).index
    for i in order:
        d = results[i]
        d.rank = int(ranks.at[i, total])
        d.part_ranks = {p: int(ranks.at[i, p]) for p in parts}
    return [results[i] for i in order]
