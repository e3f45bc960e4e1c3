"""Real client, end to end: sample returns re-saved by headless LibreOffice as .xlsx, .xls and .ods are
read by the batch exactly like the originals: same scores, same findings at the same cells."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from kbang_egov.operations.pipeline import bundled_samples_dir, run_batch
from kbang_egov.rules.districts import load_districts
from kbang_egov.rules.rulebook import load_rulebook
from workbooks import convert_all

pytestmark = pytest.mark.libreoffice

# Kbang (the seed), a district of untidy-but-valid typing and one with slips of several kinds.
FILES = ("CQDT_2020_Huyen_Kbang.xlsx", "CQDT_2020_Huyen_Dak_Po.xlsx", "CQDT_2020_Huyen_Phu_Thien.xlsx")


def _outputs(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    scores = pd.read_csv(out / "scores.csv", encoding="utf-8-sig").drop(columns=["file"]).sort_values(["district", "code"])
    findings = (pd.read_csv(out / "findings.csv", keep_default_na=False, encoding="utf-8-sig")
                [["district", "sheet", "cell", "code", "finding"]]
                .sort_values(["district", "cell", "code", "finding"]).reset_index(drop=True))
    ranking = pd.read_csv(out / "ranking.csv", encoding="utf-8-sig").drop(columns=["file"])
    return scores.reset_index(drop=True), findings, ranking


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    src = tmp_path_factory.mktemp("orig")
    for name in FILES:
        shutil.copy(bundled_samples_dir() / name, src / name)
    out = tmp_path_factory.mktemp("orig-out")
    run_batch(src, out, load_rulebook(), load_districts())
    return src, _outputs(out)


@pytest.mark.parametrize("fmt", ["xlsx", "xls", "ods"])
def test_resaved_by_libreoffice_scores_the_same(original, tmp_path, lo_profile, fmt):
    src, (scores, findings, ranking) = original
    inp = tmp_path / "in"
    convert_all([src / name for name in FILES], fmt, inp, lo_profile)
    assert sorted(p.suffix for p in inp.iterdir()) == [f".{fmt}"] * len(FILES)
    out = tmp_path / "out"
    run = run_batch(inp, out, load_rulebook(), load_districts())
    assert len(run.districts) == len(FILES)
    got_scores, got_findings, got_ranking = _outputs(out)
    pd.testing.assert_frame_equal(got_scores, scores, check_dtype=False)
    pd.testing.assert_frame_equal(got_findings, findings, check_dtype=False)
    pd.testing.assert_frame_equal(got_ranking, ranking, check_dtype=False)
    kbang = next(d for d in run.districts if d.district == "Huyện Kbang")
    assert (kbang.subtotals["SS"].scaled, kbang.total.scaled, kbang.total.declared) == (54.34, 142.23, 87.89)
