"""`batch.py validate`: the batch's reading and checks for a clerk, no ranking, no output folder; exit codes,
printed cells, --json, the annotated copy, and the returns only read."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from test_feedback import full_marks, write_returns

from kbang_egov.cli import main
from kbang_egov.forms.template import write_template
from kbang_egov.operations.pipeline import process_file
from kbang_egov.reporting.feedback import SUMMARY_SHEET
from kbang_egov.rules.districts import match_district


@pytest.fixture(scope="module")
def written(tmp_path_factory, rb, districts) -> Path:
    """kbang.xlsx, iapa.xlsx and hong.xlsx (write_returns), written once for the module. Never changed: a test
    works on a copy (fixture `returns`)."""
    return write_returns(tmp_path_factory.mktemp("written") / "gui", rb, districts, broken="hong.xlsx")


@pytest.fixture()
def returns(written, tmp_path) -> Path:
    """tmp_path/gui: a copy of the three returns (the same bytes), the test's own to validate, rename or guard."""
    return shutil.copytree(written, tmp_path / "gui")


def _invoke(*args: str):
    return CliRunner().invoke(main, ["validate", *args])


def _sha(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_a_clean_return_exits_0_with_its_verdict(returns):
    res = _invoke(str(returns / "iapa.xlsx"))
    assert res.exit_code == 0, res.output
    assert res.output.strip().splitlines() == [res.output.strip()]  # one line: the verdict
    assert res.output.startswith("iapa.xlsx: ĐẠT")


def test_a_percent_cells_fraction_is_read_as_a_percent_and_said_so(tmp_path, rb, districts):
    """70% typed into the template's percent cell is stored as 0.7; the reader cannot see the format, so it
    reads 70% and says so at the cell: a warning, the return still scores full marks and may be sent."""
    import dataclasses

    filled = full_marks(rb)
    filled = dataclasses.replace(filled, values={**filled.values, "KQ.III.23": {"value": 70}})  # the cell: 0.7
    path = write_template(rb, tmp_path, match_district("Ia Pa", districts), districts, filled=filled,
                          file_name="iapa.xlsx")
    o = process_file(path, path.name, rb, districts)
    assert [(f.code, f.severity, f.params["percent"]) for f in o.findings] == [("percent-fraction", "warning", 70.0)]
    assert o.result.total.scaled == 170
    res = _invoke(str(path))
    assert res.exit_code == 1 and "KQ.III.23 percent-fraction" in res.output
    assert res.output.strip().splitlines()[-1].startswith("iapa.xlsx: NÊN XEM LẠI")


def test_findings_exit_1_and_are_printed_with_sheet_and_cell(returns, rb, districts):
    before = _sha(returns)
    res = _invoke(str(returns / "kbang.xlsx"))
    assert res.exit_code == 1, res.output
    expected = process_file(returns / "kbang.xlsx", "kbang.xlsx", rb, districts).findings  # the batch's own
    assert expected
    lines = res.output.splitlines()
    for f in expected:
        where = f"{f.sheet}!{f.cell}" if f.cell else f.sheet
        assert any(where in line and f.code in line for line in lines), (f.code, where)
    assert lines[-1].startswith("kbang.xlsx: CẦN SỬA")
    assert _sha(returns) == before and sorted(p.name for p in returns.iterdir()) == sorted(before)  # only read


def test_json_lists_every_file_with_its_findings(returns, rb, districts):
    res = _invoke(str(returns / "kbang.xlsx"), str(returns / "iapa.xlsx"), str(returns / "hong.xlsx"), "--json")
    assert res.exit_code == 1, res.output
    data = json.loads(res.output)
    assert data["exit_code"] == 1
    by_file = {f["file"]: f for f in data["files"]}
    assert {k: v["status"] for k, v in by_file.items()} == {"kbang.xlsx": "errors", "iapa.xlsx": "ok",
                                                           "hong.xlsx": "not-scored"}
    expected = process_file(returns / "kbang.xlsx", "kbang.xlsx", rb, districts).findings
    assert [(f["finding"], f["sheet"], f["cell"]) for f in by_file["kbang.xlsx"]["findings"]] == \
        [(f.code, f.sheet, f.cell) for f in expected]
    assert by_file["iapa.xlsx"]["findings"] == [] and by_file["iapa.xlsx"]["total"] == rb.total_max


def test_feedback_for_one_file_is_the_annotated_copy_at_the_path_given(returns, tmp_path, rb, districts):
    target = tmp_path / "ban_sua" / "kbang_phan_hoi.xlsx"
    target.parent.mkdir()
    res = _invoke(str(returns / "kbang.xlsx"), "--feedback", str(target))
    assert res.exit_code == 1, res.output
    assert sorted(p.name for p in target.parent.iterdir()) == ["kbang_phan_hoi.xlsx"]  # no feedback.csv
    wb = openpyxl.load_workbook(target)
    got = {(ws.title, c.coordinate) for ws in wb for row in ws.iter_rows() for c in row if c.comment}
    expected = process_file(returns / "kbang.xlsx", "kbang.xlsx", rb, districts).findings
    assert got == {(f.sheet, f.cell) for f in expected if f.cell}
    summary = [c.value for row in wb[SUMMARY_SHEET].iter_rows() for c in row if isinstance(c.value, str)]
    assert any("chưa xếp hạng" in v for v in summary)
    assert not any("Xếp hạng tạm thời" in v for v in summary)


def test_feedback_for_several_files_is_a_folder(returns, tmp_path):
    res = _invoke(str(returns / "kbang.xlsx"), str(returns / "iapa.xlsx"), "--feedback", str(tmp_path / "fb"))
    assert res.exit_code == 1, res.output
    assert sorted(p.name for p in (tmp_path / "fb").iterdir()) == ["PhanHoi_CQDT_2020_Huyen_Ia_Pa.xlsx",
                                                                  "PhanHoi_CQDT_2020_Huyen_Kbang.xlsx"]


@pytest.mark.parametrize("case", ["missing-file", "folder-as-file", "feedback-over-the-return",
                                  "feedback-file-for-several", "feedback-named-as-a-return"])
def test_usage_errors_exit_2(returns, tmp_path, case):
    before = _sha(returns)
    args = {
        "missing-file": [str(returns / "khong_co.xlsx")],
        "folder-as-file": [str(returns)],
        "feedback-over-the-return": [str(returns / "kbang.xlsx"), "--feedback", str(returns / "kbang.xlsx")],
        "feedback-file-for-several": [str(returns / "kbang.xlsx"), str(returns / "iapa.xlsx"), "--feedback",
                                      str(returns / "iapa.xlsx")],
        "feedback-named-as-a-return": [str(returns / "PhanHoi_CQDT_2020_Huyen_Kbang.xlsx"), str(returns / "iapa.xlsx"),
                                       "--feedback", str(returns)],
    }[case]
    if case == "feedback-named-as-a-return":  # a return saved under its feedback's name, copies beside it
        (returns / "kbang.xlsx").rename(returns / "PhanHoi_CQDT_2020_Huyen_Kbang.xlsx")
        before = _sha(returns)
    res = _invoke(*args)
    assert res.exit_code == 2, res.output
    assert _sha(returns) == before


def test_fatal_errors_exit_3(returns, tmp_path):
    bad = tmp_path / "rb.yaml"
    bad.write_text("id: [", encoding="utf-8")
    res = CliRunner().invoke(main, ["--rulebook", str(bad), "validate", str(returns / "kbang.xlsx")])
    assert res.exit_code == 3, res.output
    blocker = tmp_path / "a_file"
    blocker.write_text("x", encoding="utf-8")
    res = _invoke(str(returns / "kbang.xlsx"), "--feedback", str(blocker / "fb.xlsx"))
    assert res.exit_code == 3, res.output
