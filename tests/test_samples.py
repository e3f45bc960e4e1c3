"""Sample returns: Kbang's transcribed 2020 return, the generated districts and their slips, the written files."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from fractions import Fraction
from pathlib import Path

import openpyxl
import pytest
import python_calamine

from kbang_egov.forms import samples as S
from kbang_egov.forms.layout import CRITERIA_SHEET, INFO_FIELDS, INFO_SHEET
from kbang_egov.forms.template import LIVE_MARK, Filled, template_file_name, write_template
from kbang_egov.operations.pipeline import bundled_samples_dir
from kbang_egov.rules.districts import District, load_districts
from kbang_egov.rules.rulebook import NOT_APPLICABLE, load_rulebook
from kbang_egov.rules.scoring import (
    DENOMINATOR_ZERO,
    INVALID,
    OK,
    CriterionInput,
    accentless_label,
    round_points,
    score_criterion,
)
from kbang_egov.text import normalize_text
from seed import seed_lines
from workbooks import calamine_rows, locate

KBANG_GROUP_SUMS = {"SS.I": 32.01, "SS.II": 13.33, "SS.III": 9, "KQ.I": 37, "KQ.II": 36.88, "KQ.III": 11.01,
                    "KQ.IV": 3}
KBANG_DECLARED = {"SS.I": 32.01, "SS.II": 13.33, "SS.III": 9, "SS": 54, "KQ.I": 37, "KQ.II": 36.88,
                  "KQ.III": 11.01, "KQ.IV": 3, "KQ": 87.89, "TONG": 87.89}


@pytest.fixture(scope="module")
def rb():
    return load_rulebook()


@pytest.fixture(scope="module")
def kbang(rb) -> S.Sample:
    return S.load_kbang_sample(rb)


@pytest.fixture(scope="module")
def default_set(rb, tmp_path_factory) -> S.SampleSet:
    return S.write_samples(rb, tmp_path_factory.mktemp("samples"))


@pytest.fixture(scope="module")
def three(rb, tmp_path_factory) -> S.SampleSet:
    """Three synthetic districts (count=3, the default seed) and their list, written in this process
    (workers=1) into a folder of their own. Never changed: tests only read it."""
    return S.write_samples(rb, tmp_path_factory.mktemp("three"), count=3, workers=1)


@pytest.fixture(scope="module")
def others(rb) -> list[S.Sample]:
    return [s for s in S.build_samples(rb) if s.district.name != S.KBANG_NAME]


def _sum(values) -> float:
    return round_points(sum((Fraction(repr(float(v))) for v in values), Fraction(0)))


def _input(typed: dict) -> CriterionInput:
    return CriterionInput(value=typed.get("value"), numerator=typed.get("numerator"),
                          denominator=typed.get("denominator"))


# --- Kbang's return, from the report -----------------------------------------------------------------


def _seed_self_scores() -> dict[str, float | None]:
    """The printed self-score (6th column) of every criterion row of Phụ lục II, read independently."""
    out: dict[str, float | None] = {}
    last = None
    for code, cells in seed_lines():
        score = cells[5].strip().split()[0] if len(cells) > 5 and cells[5].strip() else ""
        if code:
            last = code
            out[code] = float(score) if score else None  # "1 1": merged cells print the score twice
        elif last and out.get(last) is None and re.fullmatch(r"[\d.]+", score):
            out[last] = float(score)  # KQ.I.27 prints its score on the row's second line
    return out


def test_kbang_covers_every_criterion(rb, kbang: S.Sample):
    assert kbang.district == District("Huyện Kbang")
    assert set(kbang.filled.values) == set(rb.by_code)
    assert set(kbang.filled.self_scores) == {c.code for c in rb.scored_criteria}


def test_kbang_self_scores_are_the_printed_ones(rb, kbang: S.Sample):
    printed = _seed_self_scores()
    assert set(printed) == set(rb.by_code)
    for c in rb.scored_criteria:
        assert kbang.filled.self_scores[c.code] == printed[c.code], c.code
    assert "KQ.I.32b" not in kbang.filled.self_scores  # printed 1, but the row is unscored


def test_kbang_sums_and_declared_subtotals(rb, kbang: S.Sample):
    scores = kbang.filled.self_scores
    assert {g.code: _sum(scores[c.code] for c in g.criteria if c.scored) for g in rb.groups} == KBANG_GROUP_SUMS
    readiness = next(p for p in rb.parts if p.code == "SS")
    assert _sum(scores[c.code] for g in readiness.groups for c in g.criteria) == 54.34
    assert kbang.filled.declared == KBANG_DECLARED


def test_kbang_raw_figures_score_their_self_score(rb, kbang: S.Sample):
    for c in rb.scored_criteria:
        score = score_criterion(c, _input(kbang.filled.values[c.code]))
        if c.code == "KQ.III.16":
            assert score.status == DENOMINATOR_ZERO and kbang.filled.self_scores[c.code] == 0
        else:
            assert (score.status, score.points) == (OK, kbang.filled.self_scores[c.code]), c.code
    assert kbang.filled.values["KQ.I.32b"]["value"] == 4


def test_kbang_figures_from_the_report(kbang: S.Sample):
    v, ev = kbang.filled.values, kbang.filled.evidence
    assert (v["KQ.III.1"]["numerator"], v["KQ.III.1"]["denominator"]) == (31, 318)
    assert (v["KQ.III.2"]["numerator"], v["KQ.III.2"]["denominator"], ev["KQ.III.2"]) == (3, 318, "03/318")
    assert (v["KQ.III.3"]["numerator"], v["KQ.III.3"]["denominator"]) == (1405, 3125)
    assert (v["KQ.III.16"]["numerator"], v["KQ.III.16"]["denominator"]) == (0, 0)
    assert ev["KQ.III.16"] == "Không phát sinh hồ sơ"
    assert (ev["SS.I.2"], ev["SS.III.8"]) == ("H/", "III/")
    assert v["SS.III.8"]["value"] == 990
    assert v["KQ.III.23"]["value"] == 45 and kbang.filled.self_scores["KQ.III.23"] == 0


def test_kbang_information(kbang: S.Sample):
    info = kbang.filled.info
    assert info["unit_name"] == "Huyện Kbang"
    assert info["address"] == "78 Trần Hưng Đạo, thị trấn Kbang, huyện Kbang, tỉnh Gia Lai"
    assert (info["phone"], info["mobile"], info["email"]) == ("02693.834.812", "0984734579",
                                                               "chidd.kbang@gialai.gov.vn")
    assert (info["assessor"], info["position"]) == ("Đinh Đình Chi", "Trưởng phòng")
    assert info["office"] == "Phòng Văn hóa và Thông tin huyện Kbang"
    assert (info["report_number"], info["report_date"]) == ("406/BC-UBND", dt.date(2020, 11, 27))


def test_kbang_slips_hold(rb, kbang: S.Sample):
    assert {(s.kind, s.code) for s in kbang.slips} == {
        (S.SUBTOTAL_WRONG, "SS"), (S.TOTAL_RESULTS_ONLY, "TONG"), (S.DENOMINATOR_ZERO, "KQ.III.16")}
    _assert_slips_hold(rb, kbang)


def test_broken_kbang_file_names_the_problem(rb, tmp_path: Path):
    text = S.kbang_data_path().read_text(encoding="utf-8").replace("  KQ.IV.5:", "  KQ.IV.99:")
    broken = tmp_path / "kbang.yaml"
    broken.write_text(text, encoding="utf-8")
    with pytest.raises(S.SampleError, match=r"KQ\.IV\.99.*KQ\.IV\.5"):
        S.load_kbang_sample(rb, broken)


# --- generated returns ---------------------------------------------------------------------------------


def _number(typed: object) -> float | None:
    """A clerk's number as the reader is expected to take it: "0,85", " 31 " and "65%" are fine."""
    if typed is None or isinstance(typed, (int, float)):
        return typed
    text = str(typed).strip().replace(",", ".")
    return float(text[:-1]) if text.endswith("%") else float(text)


def _clean_input(rb, code: str, typed: dict, evidence: str | None) -> CriterionInput:
    c = rb.criterion(code)
    value = typed.get("value")
    if c.kind == "tiers" and isinstance(value, str) and normalize_text(value) != normalize_text(NOT_APPLICABLE):
        value = _number(value)
    if c.kind in ("yesno", "choice") and isinstance(value, str):
        value = accentless_label(c, value) or value  # "co": read as "Có", with a warning
    num, den = _number(typed.get("numerator")), _number(typed.get("denominator"))
    if c.kind == "ratio" and num is None and den is None and evidence and re.fullmatch(r"\d+/\d+", evidence):
        num, den = (float(x) for x in evidence.split("/"))
    return CriterionInput(value=value, numerator=num, denominator=den)


def _assert_slips_hold(rb, sample: S.Sample) -> None:
    """Every recorded slip is really in the data, and nothing outside the slips is wrong."""
    f = sample.filled
    slips = {(s.kind, s.code) for s in sample.slips}
    typed_in = {(s.kind, s.code): s.typed for s in sample.slips}
    wrong_codes = {s.code for s in sample.slips if s.kind in S.SLIP_KINDS}
    for c in rb.scored_criteria:
        typed = f.values.get(c.code, {})
        score = score_criterion(c, _clean_input(rb, c.code, typed, f.evidence.get(c.code)))
        self_score = f.self_scores.get(c.code)
        if (S.SELF_SCORE_WRONG, c.code) in slips:
            assert score.status == OK and _number(self_score) != score.points, c.code
        if (S.SELF_SCORE_MISSING, c.code) in slips:
            assert self_score is None and score.status == OK, c.code
        if (S.INPUT_MISSING, c.code) in slips:
            assert typed_in[S.INPUT_MISSING, c.code] not in typed, c.code
            assert score.status == "missing" and self_score is not None, c.code
        if (S.NUMERATOR_EXCEEDS, c.code) in slips:
            assert typed["numerator"] > typed["denominator"] and score.points == c.max == self_score, c.code
        if (S.OPTION_UNKNOWN, c.code) in slips:
            assert score.status == INVALID and accentless_label(c, typed["value"]) is None, c.code
        if (S.DENOMINATOR_ZERO, c.code) in slips:
            assert typed["denominator"] == 0 and score.status == DENOMINATOR_ZERO, c.code
        if (S.NOT_APPLICABLE_CHOSEN, c.code) in slips:
            assert typed == {"value": NOT_APPLICABLE, "denominator": 0} and self_score is None and c.not_applicable, c.code
            assert score.status == "not-applicable", c.code
        if (S.DECIMAL_COMMA, c.code) in slips:
            cell = self_score if isinstance(self_score, str) else typed.get("value")
            assert isinstance(cell, str) and "," in cell, c.code
        if (S.PERCENT_TEXT, c.code) in slips:
            assert isinstance(typed["value"], str) and typed["value"].endswith("%"), c.code
        if (S.NUMBER_AS_TEXT, c.code) in slips:
            assert any(isinstance(typed.get(k), str) and typed[k].strip().isdigit()
                       for k in ("numerator", "denominator")), c.code
        label = typed.get("value")
        if (S.LABEL_UPPER, c.code) in slips:
            assert label == label.upper() and label not in [o.label for o in c.options], c.code
        if (S.LABEL_NFD, c.code) in slips:
            assert label != unicodedata.normalize("NFC", label), c.code
        if (S.STRAY_SPACES, c.code) in slips:
            assert label != " ".join(label.split()), c.code
        if (S.LABEL_ACCENTLESS, c.code) in slips:
            assert label not in [o.label for o in c.options] and label.isascii() and score.status == OK, c.code
        if (S.RATIO_IN_EVIDENCE, c.code) in slips:
            assert not {"numerator", "denominator"} & set(typed) and "/" in f.evidence[c.code], c.code
        if c.code not in wrong_codes and (S.NOT_APPLICABLE_CHOSEN, c.code) not in slips:
            assert score.status == OK and _number(self_score) == score.points, (sample.district.name, c.code)

    declared = f.declared
    for part in rb.parts:
        for g in part.groups:
            added = _sum(_number(f.self_scores.get(c.code)) or 0 for c in g.criteria if c.scored)
            assert (declared[g.code] != added) == ((S.SUBTOTAL_WRONG, g.code) in slips), g.code
        added = _sum(declared[g.code] for g in part.groups)
        assert (declared[part.code] != added) == ((S.SUBTOTAL_WRONG, part.code) in slips), part.code
    if (S.TOTAL_RESULTS_ONLY, rb.total_code) in slips:
        assert declared[rb.total_code] == declared["KQ"]
    else:
        assert declared[rb.total_code] == _sum(declared[p.code] for p in rb.parts)


def test_the_others_carry_every_kind_of_slip(others: list[S.Sample]):
    assert len(others) == 16
    kinds = set().union(*(s.kinds() for s in others))
    assert set(S.SLIP_KINDS) <= kinds
    assert set(S.VALID_FORMS) <= kinds


def test_about_a_third_are_clean(others: list[S.Sample]):
    untouched = [s for s in others if not s.slips]
    clean = [s for s in others if s.clean]
    assert 5 <= len(untouched) and len(untouched) < len(clean) < len(others)


def test_every_slip_is_in_the_data(rb, others: list[S.Sample]):
    for sample in others:
        _assert_slips_hold(rb, sample)


def test_generated_information_is_filled(others: list[S.Sample]):
    for s in others:
        info = s.filled.info
        assert {k for k, _ in INFO_FIELDS} - {"fax"} <= set(info), s.district.name
        assert info["unit_name"] == s.district.name
        assert re.fullmatch(r"[a-z]+\.[a-z0-9]+@gialai\.gov\.vn", info["email"]), info["email"]
        assert isinstance(info["report_date"], dt.date)


def test_generator_is_seeded(rb):
    d = District("Huyện Chư Sê")
    plan = (S.SELF_SCORE_WRONG, S.LABEL_NFD)
    a = S.generate_sample(rb, d, S.random.Random(5), plan)
    b = S.generate_sample(rb, d, S.random.Random(5), plan)
    c = S.generate_sample(rb, d, S.random.Random(6), plan)
    assert a == b
    assert a.filled.values != c.filled.values


def test_unknown_slip_kind_is_refused(rb):
    with pytest.raises(ValueError, match="typo"):
        S.generate_sample(rb, District("Huyện Chư Sê"), S.random.Random(1), ("typo",))


# --- written workbooks ---------------------------------------------------------------------------------


def _cells(path: Path) -> dict[str, list[list]]:
    return {sheet: calamine_rows(path, sheet) for sheet in (CRITERIA_SHEET, INFO_SHEET)}


def test_one_workbook_per_district(default_set: S.SampleSet, rb):
    names = sorted(p.name for p in default_set.paths)
    assert names == sorted(f"CQDT_2020_{d.slug}.xlsx" for d in load_districts())
    assert len(names) == 17 and "CQDT_2020_Huyen_Kbang.xlsx" in names
    assert sorted(p.name for p in default_set.paths[0].parent.iterdir()) == names  # no temporary files left
    assert default_set.districts_file is None
    assert [s.district for s in default_set.samples] == load_districts()


def test_bundled_samples_are_what_the_sample_command_writes(default_set: S.SampleSet, rb):
    """The bundled samples are regenerated by `batch.py sample --out kbang_egov/data/samples`: every sheet of
    every one holds what write_samples writes, and build_samples gives the samples it writes (test_batch runs
    over the bundled files and takes their slips from build_samples)."""
    bundled = sorted(p.name for p in bundled_samples_dir().glob("*.xlsx"))
    assert bundled == sorted(p.name for p in default_set.paths)
    for p in default_set.paths:
        assert _every_sheet(p) == _every_sheet(bundled_samples_dir() / p.name), p.name
    assert S.build_samples(rb) == default_set.samples


def _every_sheet(path: Path) -> dict[str, list[list]]:
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    return {name: book.get_sheet_by_name(name).to_python() for name in book.sheet_names}


def test_kbang_workbook_holds_the_report(default_set: S.SampleSet):
    path = next(p for p in default_set.paths if p.name == "CQDT_2020_Huyen_Kbang.xlsx")
    rows = calamine_rows(path, CRITERIA_SHEET)
    _, cols, codes = locate(rows)

    def cell(code: str, name: str):
        return rows[codes[code]][cols[name]]

    assert (cell("KQ.III.1", "numerator"), cell("KQ.III.1", "denominator")) == (31, 318)
    assert cell("KQ.III.2", "evidence") == "03/318"
    assert cell("SS.III.8", "value") == 990
    assert cell("KQ.III.23", "value") == pytest.approx(0.45)  # a percent cell holds the fraction
    assert (cell("SS", "self_score"), cell("TONG", "self_score")) == (54, 87.89)
    # Cached live scores, shown before any recalculation.
    # KQ.III.16 is 0 of 0: the live score shows its marker, never a silent blank
    assert (cell("KQ.III.1", "live_score"), cell("KQ.III.16", "live_score")) == (0.1, LIVE_MARK)
    assert (cell("SS", "live_score"), cell("TONG", "live_score")) == (54.34, 142.23)
    info = {r[0]: r[1] for r in calamine_rows(path, INFO_SHEET) if r[0]}
    assert info["Tên đơn vị"] == "Huyện Kbang"
    assert info["Ngày báo cáo"] == dt.date(2020, 11, 27)


def test_typed_text_stays_text(default_set: S.SampleSet):
    """"0,85", " 31 ", NFD labels: the cell holds exactly what was typed, as text."""
    seen = 0
    for sample, path in zip(default_set.samples, default_set.paths, strict=True):
        rows = calamine_rows(path, CRITERIA_SHEET)
        _, cols, codes = locate(rows)
        for slip in sample.slips:
            if slip.kind in (S.DECIMAL_COMMA, S.NUMBER_AS_TEXT, S.LABEL_NFD, S.LABEL_UPPER, S.STRAY_SPACES,
                             S.PERCENT_TEXT, S.OPTION_UNKNOWN, S.LABEL_ACCENTLESS):
                row = rows[codes[slip.code]]
                assert slip.typed in [row[cols[n]] for n in ("value", "numerator", "denominator", "self_score")]
                seen += 1
    assert seen >= 10


def test_same_seed_same_cells(rb, three: S.SampleSet, tmp_path: Path):
    a = three
    b = S.write_samples(rb, tmp_path / "b", count=3, seed=S.DEFAULT_SEED)
    c = S.write_samples(rb, tmp_path / "c", count=3, seed=S.DEFAULT_SEED + 1)
    assert [p.name for p in a.paths] == [p.name for p in b.paths]
    assert [_cells(p) for p in a.paths] == [_cells(p) for p in b.paths]
    assert [_cells(p) for p in a.paths] != [_cells(p) for p in c.paths]


def test_count_writes_synthetic_districts_and_their_list(three: S.SampleSet):
    result, folder = three, three.paths[0].parent
    assert [p.name for p in result.paths] == [f"CQDT_2020_Huyen_Mau_0000{i}.xlsx" for i in range(1, 4)]
    assert result.districts_file == folder / "districts.txt"
    listed = load_districts(result.districts_file)
    assert [d.name for d in listed] == [f"Huyện Mẫu 0000{i}" for i in range(1, 4)]
    assert [s.district for s in result.samples] == listed
    assert sorted(p.name for p in folder.iterdir()) == sorted([p.name for p in result.paths] + ["districts.txt"])


def test_process_pool_writes_the_same_files(rb, three: S.SampleSet, tmp_path: Path):
    one = three  # workers=1
    two = S.write_samples(rb, tmp_path / "two", count=3, workers=2)
    assert [_cells(p) for p in one.paths] == [_cells(p) for p in two.paths]
    assert one.samples == two.samples


def test_count_and_districts_are_exclusive(rb, tmp_path: Path):
    with pytest.raises(S.SampleError):
        S.write_samples(rb, tmp_path, districts=load_districts(), count=2)
    with pytest.raises(S.SampleError):
        S.write_samples(rb, tmp_path, count=0)


# --- write_template(filled=...) ------------------------------------------------------------------------


def test_filled_template_writes_typed_cells(rb, tmp_path: Path):
    filled = Filled(values={"SS.I.1": {"numerator": " 31 ", "denominator": 318}, "SS.I.2": {"value": "CÓ"},
                            "KQ.III.23": {"value": 65}, "SS.III.8": {"value": "0,85"}},
                    self_scores={"SS.I.1": "0,1", "SS.I.2": 1}, declared={"SS.I": 1.1},
                    info={"email": "a@gialai.gov.vn", "report_date": dt.date(2020, 11, 27)},
                    evidence={"SS.I.1": "31/318"})
    path = write_template(rb, tmp_path, District("Huyện Kbang"), filled=filled, file_name="nop.xlsx")
    assert path == tmp_path / "nop.xlsx"
    rows = calamine_rows(path, CRITERIA_SHEET)
    _, cols, codes = locate(rows)
    row = rows[codes["SS.I.1"]]
    assert [row[cols[n]] for n in ("numerator", "denominator", "self_score", "live_score", "evidence")] == [
        " 31 ", 318, "0,1", LIVE_MARK, "31/318"]  # " 31 " typed as text: the template says it cannot score it
    assert [rows[codes["SS.I.2"]][cols[n]] for n in ("value", "self_score", "live_score")] == ["CÓ", 1, 1]
    assert rows[codes["KQ.III.23"]][cols["value"]] == pytest.approx(0.65)
    assert rows[codes["SS.III.8"]][cols["value"]] == "0,85"
    assert rows[codes["SS.I"]][cols["self_score"]] == 1.1
    ws = openpyxl.load_workbook(path)[INFO_SHEET]
    dates = [r[1] for r in ws.iter_rows(values_only=True) if r[0] == "Ngày báo cáo"]
    assert dates == [dt.datetime(2020, 11, 27)]  # a real date cell, not text


def test_file_name_must_be_a_bare_name(rb, tmp_path: Path):
    with pytest.raises(ValueError):
        write_template(rb, tmp_path, file_name="../x.xlsx")


def test_sample_file_names_are_the_district_copies(rb):
    d = District("Huyện Đak Đoa")
    assert template_file_name(rb, d) == "CQDT_2020_Huyen_Dak_Doa.xlsx"
