"""End to end: the sample submissions (the bundled ones, which are what the template writes: test_samples.py)
-> `batch.py run` -> the workbook and the CSVs read back with pandas, asserting values, finding codes and cells."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from kbang_egov.cli import main
from kbang_egov.forms import samples as sm
from kbang_egov.forms.layout import CRITERIA_SHEET
from kbang_egov.forms.template import template_file_name
from kbang_egov.operations.pipeline import bundled_samples_dir
from kbang_egov.reading.reader import a1
from kbang_egov.rules.rulebook import load_rulebook
from workbooks import calamine_rows, locate


@pytest.fixture(scope="module")
def rb():
    return load_rulebook()


@pytest.fixture(scope="module")
def batch(tmp_path_factory, rb):
    """The 17 default samples, run once through the CLI's default run (no input folder: the bundled samples,
    which are what write_samples writes: test_samples.py::test_bundled_samples_are_what_the_sample_command_writes):
    the samples and their paths, the --json summary, the exit code and the outputs read back. Never changed:
    tests only read it."""
    inp = bundled_samples_dir()
    out = tmp_path_factory.mktemp("out")
    samples = sm.build_samples(rb)
    written = sm.SampleSet([inp / template_file_name(rb, s.district) for s in samples], None, samples)
    res = CliRunner().invoke(main, ["run", "--out", str(out), "--json"])
    return {"written": written, "in": inp, "out": out, "summary": json.loads(res.output), "exit": res.exit_code,
            "ranking": pd.read_csv(out / "ranking.csv", encoding="utf-8-sig"), "scores": pd.read_csv(out / "scores.csv", encoding="utf-8-sig"),
            "findings": pd.read_csv(out / "findings.csv", keep_default_na=False, encoding="utf-8-sig"),
            "xlsx": pd.read_excel(out / "ranking.xlsx", sheet_name=None, engine="calamine", header=None)}


def _kbang_file(batch) -> Path:
    return next(p for p in batch["written"].paths if "Kbang" in p.name)


def _cell(path: Path, code: str, column: str) -> str:
    rows = calamine_rows(path, CRITERIA_SHEET)
    _, cols, codes = locate(rows)
    return a1(codes[code] + 1, cols[column])


def test_exit_code_and_summary(batch):
    assert batch["exit"] == 1  # the samples carry slips
    s = batch["summary"]
    assert s["exit_code"] == 1
    assert s["files"]["read"] == 17 and s["files"]["scored"] == 17
    assert s["not_submitted"] == []
    assert len(s["ranking"]) == 17
    assert [Path(p).name for p in s["outputs"]] == ["ranking.xlsx", "ranking.csv", "scores.csv", "findings.csv",
                                                     "feedback", "manifest.json"]


def test_kbang_totals(batch):
    r = batch["ranking"].set_index("district").loc["Huyện Kbang"]
    assert (r["readiness"], r["results"], r["total"]) == (54.34, 87.89, 142.23)
    assert (r["plain_total"], r["declared_total"], r["gap"]) == (142.23, 87.89, -54.34)
    assert (r["not_applicable"], r["max_removed"]) == (0, 0)  # KQ.III.16's 0 of 0 stays in the maximum
    # its two addition slips; 0 of 0 dossiers at KQ.III.16 (its 45%, 0.45 in the percent cell, scores 0 read
    # either way: nothing to say)
    assert (r["status"], r["errors"], r["warnings"]) == ("to-correct", 2, 1)
    assert (r["SS.I"], r["SS.II"], r["SS.III"]) == (32.01, 13.33, 9)
    assert (r["KQ.I"], r["KQ.II"], r["KQ.III"], r["KQ.IV"]) == (37, 36.88, 11.01, 3)


def test_kbang_findings_are_the_seeds_slips_and_nothing_else(batch):
    f = batch["findings"]
    k = f[f["district"] == "Huyện Kbang"]
    path = _kbang_file(batch)
    got = sorted(zip(k["finding"], k["code"], k["cell"], k["sheet"], strict=True))
    assert got == sorted([
        ("subtotal-arithmetic", "SS", _cell(path, "SS", "self_score"), CRITERIA_SHEET),  # 54 vs 54.34
        ("subtotal-consequence", "SS", _cell(path, "SS", "self_score"), CRITERIA_SHEET),
        ("subtotal-arithmetic", "TONG", _cell(path, "TONG", "self_score"), CRITERIA_SHEET),  # 87.89 vs 142.23
        ("subtotal-consequence", "TONG", _cell(path, "TONG", "self_score"), CRITERIA_SHEET),
        # 0 of 0 where "Không áp dụng" is accepted: a warning telling the clerk to mark it
        ("zero-of-zero", "KQ.III.16", _cell(path, "KQ.III.16", "denominator"), CRITERIA_SHEET),
    ])
    groups = {"SS.I", "SS.II", "SS.III", "KQ.I", "KQ.II", "KQ.III", "KQ.IV", "KQ"}
    assert not set(k["code"]) & groups  # the sums the seed gets right are not flagged
    ss = k[(k["code"] == "SS") & (k["finding"] == "subtotal-consequence")].iloc[0]
    tong = k[(k["code"] == "TONG") & (k["finding"] == "subtotal-consequence")].iloc[0]
    assert "54,34" in ss["message"] and "142,23" in tong["message"] and "87,89" in tong["message"]
    assert (ss["severity"], ss["follows"]) == ("consequence", f"SS subtotal-arithmetic {_cell(path, 'SS', 'self_score')}")


def test_one_slip_counts_as_one_error(batch):
    """Đức Cơ's one slip ('Đã có' typed in E14) is one error; its group, part and total follow from it."""
    f = batch["findings"]
    d = f[f["district"] == "Huyện Đức Cơ"]
    errors = d[d["severity"] == "error"]
    assert list(zip(errors["finding"], errors["cell"], strict=True)) == [("option-unknown", "E14")]
    consequences = d[d["severity"] == "consequence"]
    assert list(consequences["code"]) == ["SS.I", "SS", "TONG"]
    assert set(consequences["follows"]) == {"SS.I.8 option-unknown E14"}
    r = batch["ranking"].set_index("district").loc["Huyện Đức Cơ"]
    assert (r["errors"], r["status"]) == (1, "to-correct")


def test_a_district_with_criteria_taken_out_compares_its_declared_total_with_the_plain_sum(batch):
    """Ia Pa marks two criteria that accept it "Không áp dụng": its ranking total is rescaled, its declared
    total equals the plain sum, and the gap says so (0), with the two criteria and their maximum shown."""
    r = batch["ranking"].set_index("district").loc["Huyện Ia Pa"]
    assert (r["not_applicable"], r["max_removed"]) == (2, 2)
    assert r["total"] > r["plain_total"] and r["declared_total"] == r["plain_total"] and r["gap"] == 0
    assert (r["errors"], r["status"]) == (0, "complete")
    f = batch["findings"]
    assert sorted(f[(f["district"] == "Huyện Ia Pa") & (f["finding"] == "not-applicable-accepted")]["code"]) == \
        sorted(s.code for s in next(x for x in batch["written"].samples if x.district.name == "Huyện Ia Pa").slips
               if s.kind == sm.NOT_APPLICABLE_CHOSEN)


def test_kbang_seed_fractions(batch):
    s = batch["scores"]
    k = s[s["district"] == "Huyện Kbang"].set_index("code")
    assert (k.loc["KQ.III.1", "score"], k.loc["KQ.III.2", "score"], k.loc["KQ.III.3", "score"]) == (0.1, 0.01, 0.45)
    assert k.loc["SS.III.8", "score"] == 1
    assert len(s) == 17 * 170


def test_every_planted_slip_is_found(batch, rb):
    expected = {sm.SELF_SCORE_WRONG: "self-score-mismatch", sm.SELF_SCORE_MISSING: "self-score-missing",
                sm.INPUT_MISSING: "input-missing", sm.SUBTOTAL_WRONG: "subtotal-arithmetic",
                sm.TOTAL_RESULTS_ONLY: "subtotal-arithmetic", sm.NUMERATOR_EXCEEDS: "numerator-exceeds-denominator",
                sm.OPTION_UNKNOWN: "option-unknown", sm.DENOMINATOR_ZERO: "denominator-zero",
                sm.RATIO_IN_EVIDENCE: "ratio-from-evidence",
                # untidy but valid, and said so: a warning
                sm.NOT_APPLICABLE_CHOSEN: "not-applicable-accepted", sm.LABEL_ACCENTLESS: "option-accentless"}
    f = batch["findings"]
    found = set(zip(f["district"], f["code"], f["finding"], strict=True))
    checked = 0
    for sample in batch["written"].samples:
        for slip in sample.slips:
            if slip.kind in expected:
                code = expected[slip.kind]
                if slip.kind == sm.DENOMINATOR_ZERO and rb.criterion(slip.code).not_applicable:
                    code = "zero-of-zero"  # 0 of 0 where "Không áp dụng" is accepted (Kbang's KQ.III.16)
                assert (sample.district.name, slip.code, code) in found, slip
                checked += 1
            else:  # untidy but valid: no finding on that criterion
                assert not [x for x in found if x[:2] == (sample.district.name, slip.code)], slip
    assert checked >= 20


def test_clean_districts_have_no_findings(batch):
    clean = [s.district.name for s in batch["written"].samples if not s.slips and s.district.name != "Huyện Kbang"]
    assert len(clean) >= 4
    f = batch["findings"]
    # a percent cell's fraction is read as a percent with a warning: the reader cannot see the cell's format
    said = f[f["district"].isin(clean)]
    assert set(zip(said["finding"], said["code"], strict=True)) <= {("percent-fraction", "KQ.III.23")}


def test_ranking_csv_is_ranked_with_shared_ranks(batch):
    r = batch["ranking"]
    assert list(r.columns[:8]) == ["rank", "district", "readiness", "results", "total", "plain_total",
                                   "declared_total", "gap"]
    assert list(r["total"]) == sorted(r["total"], reverse=True)
    for i in range(1, len(r)):
        prev, cur = r.iloc[i - 1], r.iloc[i]
        assert cur["rank"] == (prev["rank"] if cur["total"] == prev["total"] else i + 1)


def test_workbook_sheets_and_ranking(batch):
    x = batch["xlsx"]
    assert list(x) == ["Tổng quan", "Xếp hạng", "Diễn biến", "Điểm chi tiết", "Sai lệch", "Tệp lỗi",
                       "Thống kê tiêu chí", "Thông tin lần chạy"]
    sheet = x["Xếp hạng"]
    header = next(i for i in range(10) if sheet.iloc[i, 0] == "Hạng")
    table = sheet.iloc[header + 1: header + 18]
    table.columns = list(sheet.iloc[header])
    kbang = table[table["Đơn vị"] == "Huyện Kbang"].iloc[0]
    total_col = next(c for c in table.columns if str(c).startswith("Tổng điểm"))
    assert kbang[total_col] == 142.23
    assert kbang["Tổng tự khai"] == 87.89
    assert len(x["Sai lệch"]) - 1 == len(batch["findings"])
    assert len(x["Điểm chi tiết"]) - 3 == 17 and len(x["Điểm chi tiết"].columns) == 2 + 2 * 170


def test_findings_csv_columns(batch):
    assert list(batch["findings"].columns) == ["file", "sheet", "cell", "district", "code", "finding", "severity",
                                               "message", "follows"]
    assert set(batch["findings"]["severity"]) == {"error", "warning", "consequence"}


def test_duplicate_and_unknown_district_and_not_submitted(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    written = [Path(shutil.copy(p, inp)) for p in sorted(bundled_samples_dir().glob("*.xlsx"))]  # the 17 samples
    kbang = next(p for p in written if "Kbang" in p.name)
    older = inp / "cu" / kbang.name
    older.parent.mkdir()
    shutil.copy(kbang, older)
    import os
    os.utime(older, (1_500_000_000, 1_500_000_000))
    pleiku = next(p for p in written if "Pleiku" in p.name)
    pleiku.unlink()
    (inp / "~$" f"{kbang.name}").write_bytes(b"lock")
    res = CliRunner().invoke(main, ["run", str(inp), "--out", str(out), "--json"])
    s = json.loads(res.output)
    assert res.exit_code == 1
    assert s["not_submitted"] == ["Thành phố Pleiku"]
    assert s["files"]["superseded"] == 1 and s["files"]["skipped"] == {"lock": 1}
    f = pd.read_csv(out / "findings.csv", keep_default_na=False, encoding="utf-8-sig")
    dup = f[f["finding"] == "district-duplicate"]
    assert list(zip(dup["file"], dup["district"], strict=True)) == [(f"cu/{kbang.name}", "Huyện Kbang")]
    assert "Thành phố Pleiku" not in set(pd.read_csv(out / "ranking.csv", encoding="utf-8-sig")["district"])
    sheet = pd.read_excel(out / "ranking.xlsx", sheet_name="Xếp hạng", engine="calamine", header=None)
    row = sheet[sheet.iloc[:, 1] == "Thành phố Pleiku"]
    assert list(row.iloc[:, 0]) == ["Chưa nộp"]


def test_trust_self_scores(tmp_path, batch):
    """A missing input scores 0; with --trust-self-scores, the district's self-score. The flag acts on each
    return alone: the trusted run reads only the samples that miss an input, the plain run is `batch`'s."""
    written = batch["written"]
    missing = {(s.district.name, slip.code): path for s, path in zip(written.samples, written.paths, strict=True)
               for slip in s.slips if slip.kind == sm.INPUT_MISSING}
    assert missing
    inp = tmp_path / "in"
    inp.mkdir()
    for path in set(missing.values()):
        shutil.copy(path, inp)
    runs = {False: batch["scores"].set_index(["district", "code"])}
    out = tmp_path / "trust"
    CliRunner().invoke(main, ["run", str(inp), "--out", str(out), "--trust-self-scores"])
    runs[True] = pd.read_csv(out / "scores.csv", encoding="utf-8-sig").set_index(["district", "code"])
    for key in missing:
        plain, trusted = runs[False].loc[key], runs[True].loc[key]
        assert plain["score"] == 0 and plain["source"] == "zero"
        assert trusted["source"] == "self-score" and trusted["score"] == trusted["self_score"]


def test_default_run_reads_the_bundled_samples(batch):
    s = batch["summary"]  # `run` with no input folder
    assert s["input_dir"] == str(bundled_samples_dir().resolve())
    assert s["files"]["scored"] == 17
    kbang = next(r for r in s["ranking"] if r["district"] == "Huyện Kbang")
    assert (kbang["SS"], kbang["total"], kbang["declared_total"]) == (54.34, 142.23, 87.89)
    assert (kbang["plain_total"], kbang["gap"], kbang["not_applicable"], kbang["status"], kbang["errors"]) == (
        142.23, -54.34, 0, "to-correct", 2)
    assert s["findings"]["consequence"] == s["findings"]["by_code"]["subtotal-consequence"] > 0


def test_usage_and_fatal_exit_codes(tmp_path):
    not_a_folder = tmp_path / "a.txt"
    not_a_folder.write_text("x")
    res = CliRunner().invoke(main, ["run", str(not_a_folder), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    res = CliRunner().invoke(main, ["run", "--no-such-option"])
    assert res.exit_code == 2
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = CliRunner().invoke(main, ["run", str(bundled_samples_dir()), "--out", str(blocker / "out")])
    assert res.exit_code == 3
    assert str(blocker) in res.output  # names the path it cannot create


def test_empty_folder_exits_4_and_writes_no_ranking(tmp_path):
    """An empty night is not a ranking of 17 districts that did not submit (see test_output_folder.py)."""
    (tmp_path / "in").mkdir()
    res = CliRunner().invoke(main, ["run", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--json"])
    assert res.exit_code == 4
    assert not (tmp_path / "out" / "ranking.xlsx").exists()


def test_self_scored_wrong_counts_the_mismatches_the_checks_flag(batch):
    """`Số đơn vị tự chấm sai` per criterion is the number of self-score-mismatch findings on it: a missing
    or refused input (0 points, its own finding) is not counted as a wrong self-score too."""
    out = batch["out"]  # a run over the bundled samples
    findings = pd.read_csv(out / "findings.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    flagged = findings[findings["finding"] == "self-score-mismatch"].groupby("code").size()
    stats = pd.read_excel(out / "ranking.xlsx", sheet_name="Thống kê tiêu chí", engine="calamine").set_index("Mã")
    counted = stats["Số đơn vị tự chấm sai"].astype(int)
    assert counted[counted > 0].sort_index().to_dict() == flagged.sort_index().to_dict()
    missing = findings[findings["finding"].isin(["input-missing", "not-applicable-refused"])]["code"]
    assert len(missing) > 0  # the samples carry such slips, and they are not in the count
