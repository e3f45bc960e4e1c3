"""The registry of finding codes: stable, well-formed, every template renderable, docs/findings.md in step."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from kbang_egov.rules.findings import CONSEQUENCE, ERROR, REGISTRY, WARNING, codes_markdown, make_finding

FINDINGS_DOC = Path(__file__).resolve().parent.parent / "docs" / "findings.md"


@pytest.mark.parametrize("code", sorted(REGISTRY))
def test_code_is_kebab_case_and_renders(code):
    t = REGISTRY[code]
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", code)
    assert t.severity in (ERROR, WARNING, CONSEQUENCE)
    names = {n for _, n, _, _ in string.Formatter().parse(t.template) if n} - {"subject", "sheet", "district"}
    f = make_finding(code, "f.xlsx", "Tiêu chí", "H9", "Huyện Kbang", "SS.I.1", **{n: 0.85 for n in names})
    assert f.message.startswith("Ô H9: ")
    assert "{" not in f.message
    assert "0,85" in f.message or not names  # numbers shown with a decimal comma
    assert f.record() == {"file": "f.xlsx", "sheet": "Tiêu chí", "cell": "H9", "district": "Huyện Kbang",
                          "code": "SS.I.1", "finding": code, "severity": t.severity, "message": f.message,
                          "follows": ""}


def test_only_a_subtotal_that_follows_from_other_findings_is_a_consequence():
    assert [c for c, t in REGISTRY.items() if t.severity == CONSEQUENCE] == ["subtotal-consequence"]
    f = make_finding("subtotal-consequence", "f.xlsx", "Tiêu chí", "H6", "Huyện Đức Cơ", "SS.I",
                     follows=("SS.I.8 option-unknown E14",), declared=34.28, score=33.28, what="nhóm SS.I",
                     causes="SS.I.8 (ô E14)")
    assert (f.severity, f.follows, f.record()["follows"]) == (CONSEQUENCE, ("SS.I.8 option-unknown E14",),
                                                               "SS.I.8 option-unknown E14")


def test_rejecting_codes_are_errors():
    assert all(t.severity == ERROR for t in REGISTRY.values() if t.rejects)


def test_unknown_code_is_a_programming_error():
    with pytest.raises(KeyError):
        make_finding("no-such-code", "f.xlsx")


def test_findings_doc_table_is_generated_from_the_registry():
    assert codes_markdown() in FINDINGS_DOC.read_text(encoding="utf-8")
