"""Test helpers: read templates back by header title and code, fill them like a clerk, run LibreOffice."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest
import python_calamine

from kbang_egov.forms.layout import COLUMN_TITLES, CRITERIA_SHEET, unit_value_to_cell
from kbang_egov.rules.rulebook import Rulebook
from kbang_egov.rules.scoring import CriterionInput

TITLE_TO_NAME = {title: name for name, title in COLUMN_TITLES.items()}


def calamine_rows(path: Path, sheet: str) -> list[list]:
    return python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def locate(rows: list[list]) -> tuple[int, dict[str, int], dict[str, int]]:
    """(header row index, {column name: index}, {code: row index}) found by title and code, not position."""
    for i, row in enumerate(rows[:30]):
        titles = [str(v).strip() for v in row]
        if "Mã" in titles and "Điểm tự đánh giá" in titles:
            cols = {TITLE_TO_NAME[t]: j for j, t in enumerate(titles) if t in TITLE_TO_NAME}
            codes = {}
            for k, r in enumerate(rows[i + 1:], i + 1):
                code = str(r[cols["code"]]).strip()
                if code:
                    codes[code] = k
            return i, cols, codes
    raise AssertionError("no header row with 'Mã' and 'Điểm tự đánh giá'")


def example_inputs(rb: Rulebook) -> dict[str, dict]:
    """A filled example touching every kind, every option and every tier bound, plus edge cases.

    Values are what the clerk types into the cells: labels, numbers in the value's unit (percent as a
    figure), numerator/denominator.
    """
    ratio_cases = [(31, 318), (3, 318), (1405, 3125), (400, 318), (1, 8), (57, 200), (0, 5), (14, 14),
                   (0, 0), (None, 10), (28, 30), (3, 8)]
    out: dict[str, dict] = {}
    i = 0
    for c in rb.criteria:
        i += 1
        if c.kind == "ratio":
            num, den = ratio_cases[i % len(ratio_cases)]
            out[c.code] = {"numerator": num, "denominator": den}
        elif c.kind in ("yesno", "choice"):
            labels = [o.label for o in c.options]
            choice = labels[i % len(labels)]
            if i % 7 == 0:
                choice = choice.upper()  # clerks type in any case
            out[c.code] = {"value": choice}
        else:
            bounds = sorted({b for t in c.tiers for b in (t.ge, t.gt, t.le, t.lt) if b is not None})
            candidates = [c.value.min, *bounds, *(b + 1 for b in bounds), *(b - 0.01 for b in bounds
                                                                             if not c.value.integer)]
            if c.value.max is not None:
                candidates.append(c.value.max)
            candidates = [v for v in candidates
                          if v >= c.value.min and (c.value.max is None or v <= c.value.max)]
            out[c.code] = {"value": candidates[i % len(candidates)]}
    # A few explicit cases the LibreOffice comparison must cover.
    out["SS.III.8"] = {"value": 990}           # Kbang's budget, million đồng
    out["KQ.III.23"] = {"value": 70}           # exactly 70%: the top tier
    out["KQ.I.8"] = {"value": 13}              # more than 12 articles still scores 1
    out["KQ.I.2"] = {"value": "Không áp dụng"}     # refused there: no points, a blank live score
    out["KQ.III.16"] = {"value": "Không áp dụng", "denominator": 0}  # accepted there, proven: shown as such
    out["KQ.III.15"] = {"value": "Không áp dụng"}  # accepted there, without its proof: 0 points, 'Chưa tính'
    out["KQ.III.10"] = {"value": "Không áp dụng", "numerator": 3, "denominator": 4}  # contradicted: 3/4 scored
    out["SS.II.12"] = {"value": "Không áp dụng", "numerator": 0, "denominator": 0}  # proven, with a numerator 0
    out["SS.II.13"] = {"value": "Không áp dụng", "numerator": 2, "denominator": 0}  # a count over nothing
    out["SS.I.1"] = {"numerator": 31, "denominator": 318, "value": None}
    out["SS.I.13"] = {"numerator": 1, "denominator": 8}
    return out


def to_input(rb: Rulebook, code: str, given: dict) -> CriterionInput:
    return CriterionInput(value=given.get("value"), numerator=given.get("numerator"),
                          denominator=given.get("denominator"))


def fill_template(template: Path, out: Path, rb: Rulebook, inputs: dict[str, dict],
                  self_scores: dict[str, float] | None = None) -> Path:
    """Fill a template with openpyxl the way a clerk would, finding rows by code and columns by title."""
    rows = calamine_rows(template, CRITERIA_SHEET)
    _, cols, codes = locate(rows)
    wb = openpyxl.load_workbook(template)
    ws = wb[CRITERIA_SHEET]
    for code, given in inputs.items():
        r = codes[code] + 1
        c = rb.criterion(code)
        for name in ("value", "numerator", "denominator"):
            v = given.get(name)
            if v is None:
                continue
            if name == "value" and c.kind == "tiers" and not isinstance(v, str):
                v = unit_value_to_cell(c.value, v)
            ws.cell(row=r, column=cols[name] + 1, value=v)
    for code, score in (self_scores or {}).items():
        ws.cell(row=codes[code] + 1, column=cols["self_score"] + 1, value=score)
    wb.save(out)
    return out


# --- LibreOffice -----------------------------------------------------------------------------------

_RECALC_XCU = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def soffice() -> str:
    """Path of soffice, or skip (fail where KBANG_EGOV_REQUIRE_LIBREOFFICE is set, as in CI)."""
    path = shutil.which("soffice") or shutil.which("libreoffice")
    if path:
        return path
    if os.environ.get("KBANG_EGOV_REQUIRE_LIBREOFFICE"):
        pytest.fail("LibreOffice (soffice) is required here but not installed; .ci/run installs it")
    pytest.skip("LibreOffice (soffice) not installed")


def make_profile(directory: Path) -> Path:
    """A LibreOffice user profile that recalculates every formula on load (xlsxwriter caches 0)."""
    user = directory / "user"
    user.mkdir(parents=True, exist_ok=True)
    (user / "registrymodifications.xcu").write_text(_RECALC_XCU, encoding="utf-8")
    return directory


def convert(src: Path, fmt: str, outdir: Path, profile: Path) -> Path:
    """Open `src` in headless LibreOffice and save it as `fmt` (xlsx, xls, ods) into outdir."""
    return convert_all([src], fmt, outdir, profile)[0]


def convert_all(srcs: list[Path], fmt: str, outdir: Path, profile: Path) -> list[Path]:
    """convert() for several files in one LibreOffice start (which costs more than a small file's save).
    The profile must not be in use by another LibreOffice at the same time."""
    outdir.mkdir(parents=True, exist_ok=True)
    cmd = [soffice(), f"-env:UserInstallation={profile.resolve().as_uri()}", "--headless", "--calc",
           "--convert-to", fmt, "--outdir", str(outdir), *map(str, srcs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    outs = [outdir / (src.stem + "." + fmt) for src in srcs]
    assert proc.returncode == 0 and all(o.exists() for o in outs), f"soffice failed: {proc.stdout}\n{proc.stderr}"
    return outs
