"""A district's criterion results held as columns (results.CriterionTable): the same results as the objects
the checker makes, and across a pickle (a worker's answer)."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np

from kbang_egov.rules import scoring
from kbang_egov.rules.results import (
    COMPUTED,
    NOT_APPLICABLE,
    SOURCES,
    STATUSES,
    TRUSTED,
    ZERO,
    CriterionResult,
    CriterionTable,
    DistrictResult,
)


def _results() -> list[CriterionResult]:
    return [
        CriterionResult("SS.I.1", "SS.I", "SS", 1.0, 0.5, 1.0, "ok", COMPUTED, "1/2", 7),
        CriterionResult("SS.I.2", "SS.I", "SS", 2.0, 0.0, None, "not-applicable", NOT_APPLICABLE, "Không áp dụng", 8),
        CriterionResult("SS.I.3", "SS.I", "SS", 1.5, 1.25, 1.25, "missing", TRUSTED, "", 9),
        CriterionResult("KQ.I.1", "KQ.I", "KQ", 3.0, 0.0, -2.0, "denominator-zero", ZERO, "0/0", 0),
        CriterionResult("KQ.I.2", "KQ.I", "KQ", 1.0, 0.0, 0.0, "invalid", ZERO, "Có thể", 12),
    ]


def test_the_table_reads_back_the_results_it_was_made_of():
    results = _results()
    table = CriterionTable.of(results)
    assert list(table) == results
    assert table[1] == results[1] and table[1].self_score is None and table[1].gap is None
    assert table[-1] == results[-1]
    assert table[1:3] == results[1:3]
    assert table == results
    assert table.applicable.tolist() == [True, False, True, True, True]
    assert np.isnan(table.self_score[1]) and table.row.tolist() == [7, 8, 9, 0, 12]


def test_a_pickled_table_is_the_same():
    table = CriterionTable.of(_results())
    back = pickle.loads(pickle.dumps(table))
    assert back == table
    assert back.frame == table.frame
    assert back.detail == table.detail


def test_details_holding_the_separator_cross_too():
    results = _results()
    results[0] = dataclasses.replace(results[0], detail="a\x1fb")
    table = CriterionTable.of(results)
    back = pickle.loads(pickle.dumps(table))
    assert back.detail == table.detail and back[0].detail == "a\x1fb"
    empty = pickle.loads(pickle.dumps(CriterionTable.of([])))
    assert len(empty) == 0 and empty.detail == ()


def test_a_district_result_holds_its_criteria_as_a_table():
    d = DistrictResult("Huyện Kbang", "a.xlsx", "Tiêu chí", _results(), {})
    assert isinstance(d.criteria, CriterionTable)
    assert d.criteria[0].code == "SS.I.1" and len(d.criteria) == 5


def test_every_status_and_source_has_a_column_code():
    assert {scoring.OK, scoring.NOT_APPLICABLE_STATUS, scoring.MISSING, scoring.INVALID,
            scoring.DENOMINATOR_ZERO} == set(STATUSES)
    assert set(SOURCES) == {COMPUTED, TRUSTED, ZERO, NOT_APPLICABLE}
