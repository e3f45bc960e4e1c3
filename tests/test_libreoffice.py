"""Real client: headless LibreOffice opens the templates and recalculates the live score column, which must
agree with the Python scoring the batch uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbang_egov.forms.layout import CRITERIA_SHEET, META_SHEET
from kbang_egov.forms.template import LIVE_MARK, write_template
from kbang_egov.rules.districts import load_districts, match_district
from kbang_egov.rules.rulebook import NOT_APPLICABLE, load_rulebook
from kbang_egov.rules.scoring import round_points, score_criterion
from workbooks import calamine_rows, convert_all, example_inputs, fill_template, locate, to_input

pytestmark = pytest.mark.libreoffice


@pytest.fixture(scope="module")
def rb():
    return load_rulebook()


@pytest.fixture(scope="module")
def templates(rb, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("tpl")
    kbang = match_district("Kbang", load_districts())
    return {"blank": write_template(rb, out, None, load_districts()), "kbang": write_template(rb, out, kbang)}


@pytest.fixture(scope="module")
def resaved(rb, templates, lo_profile, tmp_path_factory) -> dict[str, Path]:
    """The blank and Kbang templates, and Kbang's filled with example_inputs, each opened and saved by
    LibreOffice (which recalculates every formula), in one LibreOffice start."""
    filled = fill_template(templates["kbang"], tmp_path_factory.mktemp("filled") / "filled.xlsx", rb,
                           example_inputs(rb))
    sources = {**templates, "filled": filled}
    return dict(zip(sources, convert_all(list(sources.values()), "xlsx", tmp_path_factory.mktemp("lo"),
                                         lo_profile), strict=True))


@pytest.mark.parametrize("which", ["blank", "kbang"])
def test_libreoffice_opens_template(rb, resaved, which):
    path = resaved[which]
    rows = calamine_rows(path, CRITERIA_SHEET)
    _, cols, codes = locate(rows)
    assert set(c.code for c in rb.criteria) <= set(codes)
    # Nothing entered yet: every criterion's live score is blank and every sum is 0.
    assert all(rows[codes[c.code]][cols["live_score"]] == "" for c in rb.scored_criteria)
    assert rows[codes["TONG"]][cols["live_score"]] == 0
    meta = {r[0]: r[1] for r in calamine_rows(path, META_SHEET)}
    assert meta["rulebook_hash"] == rb.hash
    assert meta["district"] == ("Huyện Kbang" if which == "kbang" else "")
    if which == "kbang":
        assert rows[1][0].startswith("Đơn vị: Huyện Kbang")  # recalculated from the information sheet


def test_live_scores_equal_python_scoring(rb, resaved):
    inputs = example_inputs(rb)  # what the filled template holds
    rows = calamine_rows(resaved["filled"], CRITERIA_SHEET)
    _, cols, codes = locate(rows)

    expected_group: dict[str, float] = {}
    kinds_seen, statuses_seen = set(), set()
    for c in rb.scored_criteria:
        score = score_criterion(c, to_input(rb, c.code, inputs[c.code]))
        live = rows[codes[c.code]][cols["live_score"]]
        kinds_seen.add(c.kind)
        statuses_seen.add(score.status)
        if score.points is None:
            typed = any(v is not None for v in inputs[c.code].values())
            assert live == (NOT_APPLICABLE if score.status == "not-applicable" else LIVE_MARK if typed else ""), \
                (c.code, inputs[c.code], live, score)
        else:
            assert isinstance(live, float) and live == pytest.approx(score.points, abs=1e-9), \
                (c.code, inputs[c.code], live, score)
        expected_group[c.group] = expected_group.get(c.group, 0) + (score.points or 0)
    assert kinds_seen == {"ratio", "yesno", "choice", "tiers"}
    assert {"ok", "not-applicable", "denominator-zero", "missing", "invalid"} <= statuses_seen

    for g in rb.groups:
        assert rows[codes[g.code]][cols["live_score"]] == pytest.approx(round_points(expected_group[g.code]))
    for p in rb.parts:
        want = sum(expected_group[g.code] for g in p.groups)
        assert rows[codes[p.code]][cols["live_score"]] == pytest.approx(want, abs=1e-6)
    assert rows[codes["TONG"]][cols["live_score"]] == pytest.approx(sum(expected_group.values()), abs=1e-6)

    # The seed's own evidence and the decisions on bounds, as LibreOffice computes them.
    live = {code: rows[codes[code]][cols["live_score"]] for code in ("SS.I.1", "SS.I.13", "SS.III.8",
                                                                    "KQ.III.23", "KQ.I.8", "KQ.I.2",
                                                                    "KQ.III.16", "KQ.III.15", "KQ.III.10",
                                                                    "SS.II.12", "SS.II.13")}
    assert live == {"SS.I.1": 0.1, "SS.I.13": 0.13, "SS.III.8": 1.0, "KQ.III.23": 1.0, "KQ.I.8": 1.0,
                    "KQ.I.2": LIVE_MARK, "KQ.III.16": NOT_APPLICABLE, "KQ.III.15": LIVE_MARK, "KQ.III.10": 0.75,
                    "SS.II.12": NOT_APPLICABLE, "SS.II.13": LIVE_MARK}
