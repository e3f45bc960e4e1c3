"""The district x criterion matrix of a run as numpy arrays: what the detail sheet and the criterion
statistics read column by column, built once instead of walking every district's results per criterion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .results import DistrictResult
from .rulebook import Rulebook


@dataclass
class ScoreMatrix:
    """Rows are districts in the order given, columns the scored criteria in rulebook order."""

    codes: list[str]
    maxima: np.ndarray  # (criteria,) full points of each criterion
    score: np.ndarray  # (districts, criteria) official points, 0 when not applicable or without a result
    self_score: np.ndarray  # self-scores, nan when blank or unreadable or without a result
    applicable: np.ndarray  # bool: a result that counts towards the maximum
    present: np.ndarray  # bool: the district has a result for the criterion


def score_matrix(districts: Sequence[DistrictResult], rb: Rulebook) -> ScoreMatrix:
    criteria = rb.scored_criteria
    codes = [c.code for c in criteria]
    n, m = len(districts), len(codes)
    score = np.zeros((n, m))
    self_score = np.full((n, m), np.nan)
    applicable = np.zeros((n, m), dtype=bool)
    present = np.zeros((n, m), dtype=bool)
    column = {code: k for k, code in enumerate(codes)}
    aligned = tuple(codes)
    for i, d in enumerate(districts):
        t = d.criteria
        if t.frame.codes == aligned:  # the usual case; a partial result is placed by code
            ks: slice | list[int] = slice(None)
            rows: slice | list[int] = slice(None)
        else:
            found = [(j, column[code]) for j, code in enumerate(t.frame.codes) if code in column]
            rows, ks = [j for j, _ in found], [k for _, k in found]
        score[i, ks] = t.score[rows]
        self_score[i, ks] = t.self_score[rows]
        applicable[i, ks] = t.applicable[rows]
        present[i, ks] = True
    return ScoreMatrix(codes, np.array([c.max for c in criteria], dtype=float), score, self_score, applicable,
                       present)
