"""The generated template read back with openpyxl and python-calamine: codes, dropdowns, metadata, locking."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from openpyxl.worksheet.cell_range import CellRange

from kbang_egov.cli import main
from kbang_egov.forms.layout import COLUMNS, CRITERIA_SHEET, INFO_FIELDS, INFO_SHEET, META_SHEET, REQUIRED_COLUMNS
from kbang_egov.rules.rulebook import NOT_APPLICABLE, load_rulebook
from workbooks import calamine_rows, locate

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rb():
    return load_rulebook()


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("templates")
    result = CliRunner().invoke(main, ["template", "--out", str(out), "--district", "Kbang",
                                       "--district", "đak đoa"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def blank(out_dir: Path) -> Path:
    return out_dir / "CQDT_2020_mau.xlsx"


@pytest.fixture(scope="module")
def kbang(out_dir: Path) -> Path:
    return out_dir / "CQDT_2020_Huyen_Kbang.xlsx"


@pytest.fixture(scope="module")
def opened() -> Callable[[Path], openpyxl.Workbook]:
    """openpyxl's reading of a workbook, each loaded once for the module (a quarter of a second a load); the
    tests only read what it returns."""
    return functools.cache(openpyxl.load_workbook)


def test_file_names_carry_district_without_diacritics(out_dir: Path):
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "CQDT_2020_Huyen_Dak_Doa.xlsx", "CQDT_2020_Huyen_Kbang.xlsx", "CQDT_2020_mau.xlsx"]


def test_header_row_has_exactly_the_titles(kbang: Path):
    rows = calamine_rows(kbang, CRITERIA_SHEET)
    header, cols, _ = locate(rows)
    titles = [v for v in rows[header] if v != ""]
    assert titles == [title for _, title in COLUMNS]
    assert set(REQUIRED_COLUMNS) <= set(cols)


@pytest.mark.parametrize("reader", ["calamine", "openpyxl"])
def test_every_code_once_in_form_order(rb, kbang: Path, reader: str, opened):
    if reader == "calamine":
        rows = calamine_rows(kbang, CRITERIA_SHEET)
    else:
        ws = opened(kbang)[CRITERIA_SHEET]
        rows = [["" if v is None else v for v in r] for r in ws.iter_rows(values_only=True)]
    header, cols, codes = locate(rows)
    code_cells = [str(r[cols["code"]]) for r in rows[header + 1:] if str(r[cols["code"]]).strip()]
    assert len(code_cells) == len(set(code_cells))
    expected_criteria = [c.code for c in rb.criteria]
    assert [c for c in code_cells if c in rb.by_code] == expected_criteria
    totals = {g.code for g in rb.groups} | {p.code for p in rb.parts} | {rb.total_code}
    assert set(code_cells) == set(expected_criteria) | totals
    for c in rb.criteria:
        row = rows[codes[c.code]]
        assert row[cols["name"]] == c.name
        assert float(row[cols["max"]]) == c.max
    for g in rb.groups:
        assert float(rows[codes[g.code]][cols["max"]]) == g.max
    assert float(rows[codes["SS"]][cols["max"]]) == 60
    assert float(rows[codes["KQ"]][cols["max"]]) == 110
    assert float(rows[codes["TONG"]][cols["max"]]) == 170


def _validations(ws) -> dict[str, object]:
    """{A1 cell: DataValidation} for every single cell a validation covers."""
    out = {}
    for dv in ws.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            cr = CellRange(str(rng))
            for row in range(cr.min_row, cr.max_row + 1):
                for col in range(cr.min_col, cr.max_col + 1):
                    out[f"{openpyxl.utils.get_column_letter(col)}{row}"] = dv
    return out


def _list_labels(wb, formula: str) -> list[str]:
    """Labels a list validation offers, resolving its defined name to the hidden sheet range."""
    name = formula.lstrip("=")
    assert name in wb.defined_names, f"list source {formula} is not a defined name"
    (sheet, ref), = list(wb.defined_names[name].destinations)
    ws = wb[sheet]
    return [c.value for row in ws[ref.replace("$", "")] for c in row]


def test_every_dropdown_offers_the_seed_wording(rb, kbang: Path, opened):
    wb = opened(kbang)
    ws = wb[CRITERIA_SHEET]
    rows = calamine_rows(kbang, CRITERIA_SHEET)
    _, cols, codes = locate(rows)
    dvs = _validations(ws)
    letter = {name: openpyxl.utils.get_column_letter(i + 1) for name, i in cols.items()}
    for c in rb.criteria:
        r = codes[c.code] + 1
        dv = dvs.get(f"{letter['value']}{r}")
        na = [NOT_APPLICABLE] if c.not_applicable else []  # offered only where the rulebook accepts it
        if c.kind in ("yesno", "choice"):
            assert dv.type == "list", c.code
            assert _list_labels(wb, dv.formula1) == [o.label for o in c.options] + na, c.code
        elif c.kind == "ratio":
            if c.not_applicable:
                assert dv.type == "list" and _list_labels(wb, dv.formula1) == [NOT_APPLICABLE]
                assert c.not_applicable_note[:40] in dv.prompt, c.code
            else:
                assert dv is None, c.code
            for name in ("numerator", "denominator"):
                num = dvs[f"{letter[name]}{r}"]
                assert (num.type, num.operator, num.formula1) == ("decimal", "greaterThanOrEqual", "0"), c.code
                assert num.prompt and (c.numerator if name == "numerator" else c.denominator) in num.prompt
        else:
            assert dv.type == "custom" and (NOT_APPLICABLE in dv.formula1) == c.not_applicable, c.code
        if c.scored:
            s = dvs[f"{letter['self_score']}{r}"]
            assert (s.type, s.operator or "between", float(s.formula1), float(s.formula2)) == ("decimal", "between", 0, c.max)
    # The seed's long labels survive (a comma inside one label needs the hidden-sheet list).
    assert _list_labels(wb, dvs[f"{letter['value']}{codes['KQ.I.27'] + 1}"].formula1)[0] == \
        "Cập nhật kịp thời, đầy đủ danh sách và thông tin"


def test_percent_tier_cell_is_formatted_as_percent(kbang: Path, opened):
    rows = calamine_rows(kbang, CRITERIA_SHEET)
    _, cols, codes = locate(rows)
    ws = opened(kbang)[CRITERIA_SHEET]
    cell = ws.cell(row=codes["KQ.III.23"] + 1, column=cols["value"] + 1)
    assert "%" in cell.number_format


@pytest.mark.parametrize("reader", ["calamine", "openpyxl"])
def test_metadata_identifies_rulebook_and_district(rb, kbang: Path, blank: Path, reader: str, opened):
    def meta(path: Path) -> dict[str, str]:
        if reader == "calamine":
            return {r[0]: r[1] for r in calamine_rows(path, META_SHEET)}
        ws = opened(path)[META_SHEET]
        return {r[0]: r[1] for r in ws.iter_rows(values_only=True)}

    m = meta(kbang)
    assert m["template"] == "kbang-egov-template"
    assert (m["rulebook_id"], m["rulebook_version"], m["rulebook_hash"]) == (rb.id, rb.version, rb.hash)
    assert m["district"] == "Huyện Kbang"
    assert meta(blank)["district"] in ("", None)


def test_sheets_states_and_protection(kbang: Path, opened):
    """The metadata sheet is very hidden (no menu shows it); a renamed or deleted sheet is the reader's finding."""
    wb = opened(kbang)
    states = {ws.title: ws.sheet_state for ws in wb.worksheets}
    assert states == {"Hướng dẫn": "visible", "Thông tin chung": "visible", "Tiêu chí": "visible",
                      "Danh mục": "hidden", "_meta": "veryHidden"}
    for ws in wb.worksheets:
        assert ws.protection.sheet, ws.title
        assert not ws.protection.password, "filling must not need a password"


def test_only_input_cells_are_unlocked(rb, kbang: Path, opened):
    wb = opened(kbang)
    ws = wb[CRITERIA_SHEET]
    rows = calamine_rows(kbang, CRITERIA_SHEET)
    _, cols, codes = locate(rows)

    def locked(code: str, name: str) -> bool:
        return ws.cell(row=codes[code] + 1, column=cols[name] + 1).protection.locked

    for name in ("code", "name", "scale", "max", "live_score"):
        assert locked("SS.I.1", name) and locked("SS.I", name)
    for name in ("numerator", "denominator", "self_score", "evidence"):
        assert not locked("SS.I.1", name), name
    assert locked("SS.I.1", "value")  # a ratio that applies to every district takes no 'Không áp dụng'
    assert not locked("KQ.III.16", "value")  # ... and one that may not apply does
    assert locked("SS.I.2", "numerator")  # yes/no rows take no ratio
    assert not locked("SS.I", "self_score") and not locked("TONG", "self_score")
    assert locked("KQ.I.32b", "self_score")  # the unscored row takes no self-score
    assert ws.freeze_panes is not None and ws.page_setup.orientation == "landscape"
    assert ws.print_title_rows


def test_information_sheet_labels_and_fixed_district(kbang: Path, blank: Path, opened):
    for path, expected in ((kbang, "Huyện Kbang"), (blank, None)):
        wb = opened(path)
        ws = wb[INFO_SHEET]
        labels = {}
        for row in ws.iter_rows():
            if row[0].value:
                labels[row[0].value] = row[1]
        for _, label in INFO_FIELDS:
            assert label in labels, label
        name_cell = labels["Tên đơn vị"]
        assert name_cell.value == expected
        assert name_cell.protection.locked is (expected is not None)
        assert not labels["Thư điện tử"].protection.locked
    wb = opened(blank)
    dv = _validations(wb[INFO_SHEET])[labels["Tên đơn vị"].coordinate]
    names = _list_labels(wb, dv.formula1)
    assert len(names) == 17 and names[0] == "Thành phố Pleiku" and "Huyện Kbang" in names


def test_instructions_sheet_in_vietnamese(kbang: Path):
    text = " ".join(str(r[0]) for r in calamine_rows(kbang, "Hướng dẫn"))
    assert "Tử số" in text and "Mẫu số" in text and NOT_APPLICABLE in text and "Điểm tự đánh giá" in text


def test_districts_file_writes_one_copy_each(tmp_path: Path):
    listing = tmp_path / "ds.txt"
    listing.write_text("# test list\nHuyện Kbang\nThị xã An Khê\nThành phố Pleiku\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["template", "--out", str(out), "--districts", str(listing)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "CQDT_2020_Huyen_Kbang.xlsx", "CQDT_2020_Thanh_pho_Pleiku.xlsx", "CQDT_2020_Thi_xa_An_Khe.xlsx",
        "CQDT_2020_mau.xlsx"]


def test_template_is_reproducible(rb, tmp_path: Path):
    from kbang_egov.forms.template import write_template

    a = write_template(rb, tmp_path / "a")
    b = write_template(rb, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()


def test_bundled_templates_match_the_rulebook(rb):
    files = sorted((REPO / "input_templates").glob("*.xlsx"))
    assert len(files) == 18, "blank template plus 17 districts; regenerate with python batch.py template --all-districts"
    for f in files:
        meta = {r[0]: r[1] for r in calamine_rows(f, META_SHEET)}
        assert meta["rulebook_hash"] == rb.hash, f"{f.name} is stale: regenerate it"


def test_option_lists_with_the_same_prefix_keep_their_own_labels(tmp_path: Path):
    import yaml

    from kbang_egov.forms.template import write_template
    from kbang_egov.rules.rulebook import build_rulebook, default_rulebook_path

    data = yaml.safe_load(default_rulebook_path().read_text(encoding="utf-8"))
    crit = next(c for c in data["criteria"] if c["code"] == "KQ.I.28")
    crit["options"] = [{"label": "Cập nhật kịp thời, đầy đủ danh sách và thông tin", "points": 1},
                       {"label": "Thiếu", "points": 0}]
    rb2 = build_rulebook(data)
    path = write_template(rb2, tmp_path)
    wb = openpyxl.load_workbook(path)
    rows = calamine_rows(path, CRITERIA_SHEET)
    _, cols, codes = locate(rows)
    dvs = _validations(wb[CRITERIA_SHEET])
    col = openpyxl.utils.get_column_letter(cols["value"] + 1)
    got = {code: dvs[f"{col}{codes[code] + 1}"].formula1 for code in ("KQ.I.27", "KQ.I.28")}
    assert got["KQ.I.27"] != got["KQ.I.28"]
    assert _list_labels(wb, got["KQ.I.28"]) == ["Cập nhật kịp thời, đầy đủ danh sách và thông tin", "Thiếu"]
    assert _list_labels(wb, got["KQ.I.27"])[1] == "Thiếu hoặc không có"


def _unit_dropdown(wb: openpyxl.Workbook) -> list[str] | None:
    """The names the unit-name cell offers, None without a dropdown there."""
    ws = wb[INFO_SHEET]
    label = dict(INFO_FIELDS)["unit_name"]
    row = next(c.row for r in ws.iter_rows() for c in r if c.value == label)
    dv = _validations(ws).get(f"B{row}")  # the value sits right of its label
    if dv is None or dv.type != "list":
        return None
    return _list_labels(wb, dv.formula1)


def test_the_unit_dropdown_is_in_the_blank_template_only(blank: Path, kbang: Path, opened):
    from kbang_egov.rules.districts import load_districts

    assert _unit_dropdown(opened(blank)) == [d.name for d in load_districts(None)]
    # A district's copy has its name written in: it does not carry the list (every return would).
    assert _unit_dropdown(opened(kbang)) is None
    assert "DS_DVHC" not in opened(kbang).defined_names


def test_a_list_too_long_to_choose_from_gets_no_dropdown(rb, tmp_path: Path):
    from kbang_egov.forms.template import UNIT_LIST_LIMIT, write_template
    from kbang_egov.rules.districts import District

    many = [District(f"Xã Số {i}") for i in range(UNIT_LIST_LIMIT + 1)]
    assert _unit_dropdown(openpyxl.load_workbook(write_template(rb, tmp_path / "a", None, many[:UNIT_LIST_LIMIT]))) \
        is not None
    assert _unit_dropdown(openpyxl.load_workbook(write_template(rb, tmp_path / "b", None, many))) is None


def _texts(wb: openpyxl.Workbook) -> list[str]:
    return [c.value for ws in wb for row in ws.iter_rows() for c in row if isinstance(c.value, str)]


def test_the_settings_say_where_and_when_to_send_and_their_absence_says_nothing(tmp_path: Path):
    settings = Path(__file__).resolve().parent.parent / "settings.example.toml"
    res = CliRunner().invoke(main, ["--settings", str(settings), "template", "--out", str(tmp_path / "with"),
                                    "--district", "Kbang"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["template", "--out", str(tmp_path / "without"), "--district", "Kbang"])
    assert res.exit_code == 0, res.output
    wb = openpyxl.load_workbook(tmp_path / "with" / "CQDT_2020_Huyen_Kbang.xlsx")
    with_settings = _texts(wb)
    without = _texts(openpyxl.load_workbook(tmp_path / "without" / "CQDT_2020_Huyen_Kbang.xlsx"))
    for sheet in (INFO_SHEET, CRITERIA_SHEET, "Hướng dẫn"):
        texts = [c.value for row in wb[sheet].iter_rows() for c in row if isinstance(c.value, str)]
        assert any("cqdt@stttt.gialai.gov.vn" in t and "15/12/2020" in t for t in texts), sheet
    assert not any("cqdt@stttt.gialai.gov.vn" in t or "15/12/2020" in t or "Nộp bài" in t for t in without)
    assert any("Gia Lai" in t for t in with_settings)


def test_the_unit_header_caches_the_district_name_for_viewers_that_do_not_recalculate(kbang: Path, blank: Path):
    assert calamine_rows(kbang, CRITERIA_SHEET)[1][0].startswith("Đơn vị: Huyện Kbang   |")
    assert calamine_rows(blank, CRITERIA_SHEET)[1][0].startswith("Đơn vị: (chưa điền")


def test_guide_rows_have_heights_for_their_wrapped_lines(kbang: Path, opened):
    ws = opened(kbang)["Hướng dẫn"]
    for row in ws.iter_rows():
        text = row[0].value or ""
        height = ws.row_dimensions[row[0].row].height
        assert height is not None and height >= 15 * (len(text) // 120 + 1), (row[0].row, text[:40])
