"""The bundled rulebook against the seed form (Phụ lục II of 406/BC-UBND), and the loader's validation."""

from __future__ import annotations

import copy

import pytest
import yaml

from kbang_egov.rules.rulebook import (
    RulebookError,
    build_rulebook,
    default_rulebook_path,
    load_rulebook,
    rulebook_hash,
)
from kbang_egov.rules.scoring import OK, CriterionInput, score_criterion
from seed import seed_lines

GROUP_SIZES = {
    "SS.I": 36, "SS.II": 14, "SS.III": 10,
    "KQ.I": 40, "KQ.II": 39, "KQ.III": 26, "KQ.IV": 5,
}


@pytest.fixture(scope="module")
def rb():
    return load_rulebook()


def _collapse(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------------------
# An independent reading of the seed's criteria tables.



def _seed_kind(cells: list[str]) -> str:
    """The kind the seed's Thang điểm / Điểm cells imply."""
    scale = cells[2].strip() if len(cells) > 2 else ""
    points = cells[3].strip() if len(cells) > 3 else ""
    if "Tỷ lệ%" in points:
        return "ratio"
    if scale.startswith("Đầy đủ và kịp thời"):  # KQ.I.5, KQ.I.6, KQ.I.8: counts of months / articles
        return "tiers"
    if scale.startswith("Có"):  # "Có", "Có Không", "Có đầy đủ"
        return "yesno"
    if scale in ("Đầy đủ", "Không đầy đủ", "100% TTHC") or scale.startswith("Cập nhật kịp thời"):
        return "choice"
    return "tiers"  # ">=1", ">05 văn bản", "4", "Trên 70%", ">= 4 bài", ...


def parse_seed_rows() -> list[tuple[str, str, str]]:
    """(code, name, kind) for every numbered criterion row of the seed, in form order."""
    return [(code, cells[1], _seed_kind(cells)) for code, cells in seed_lines() if code]


SEED_ROWS = parse_seed_rows()


def test_seed_parser_reads_every_row():
    codes = [c for c, _, _ in SEED_ROWS]
    assert len(codes) == 171
    assert len(set(codes)) == 171
    assert codes[0] == "SS.I.1"
    assert codes[-1] == "KQ.IV.5"
    assert codes.index("KQ.I.32b") == codes.index("KQ.I.32") + 1
    groups = {}
    for c in codes:
        g = c.rsplit(".", 1)[0]
        groups[g] = groups.get(g, 0) + 1
    assert groups == {**GROUP_SIZES, "KQ.I": 41}


@pytest.mark.parametrize(("code", "name", "kind"), SEED_ROWS, ids=[r[0] for r in SEED_ROWS])
def test_seed_row_is_in_rulebook(rb, code, name, kind):
    assert code in rb.by_code, f"seed row {code} has no rulebook entry"
    c = rb.criterion(code)
    assert _collapse(c.name) == _collapse(name)
    assert c.kind == kind


def test_rulebook_has_no_criterion_outside_the_seed(rb):
    assert [c.code for c in rb.criteria] == [c for c, _, _ in SEED_ROWS]


# ---------------------------------------------------------------------------------------------------------
# Totals, groups and codes.


def test_bundled_rulebook_counts(rb):
    assert len(rb.criteria) == 171
    assert len(rb.scored_criteria) == 170
    assert [c.code for c in rb.criteria if not c.scored] == ["KQ.I.32b"]


def test_part_and_total_maxima(rb):
    assert [(p.code, p.max) for p in rb.parts] == [("SS", 60), ("KQ", 110)]
    for p in rb.parts:
        scored_sum = sum(c.max for g in p.groups for c in g.criteria if c.scored)
        assert scored_sum == p.max
    assert sum(c.max for c in rb.scored_criteria) == 170
    assert rb.total_max == 170
    assert rb.total_code == "TONG"


@pytest.mark.parametrize(("group", "expected"), sorted(GROUP_SIZES.items()))
def test_group_maxima(rb, group, expected):
    g = next(g for g in rb.groups if g.code == group)
    assert g.max == expected
    assert sum(c.max for c in g.criteria if c.scored) == expected


def test_codes_are_exactly_the_form_numbers(rb):
    expected = []
    for group, n in GROUP_SIZES.items():
        for i in range(1, n + 1):
            expected.append(f"{group}.{i}")
            if (group, i) == ("KQ.I", 32):
                expected.append("KQ.I.32b")
    assert [c.code for c in rb.criteria] == expected
    assert [g.code for g in rb.groups] == list(GROUP_SIZES)


def test_every_criterion_belongs_to_its_group_and_part(rb):
    for g in rb.groups:
        for c in g.criteria:
            assert c.group == g.code
            assert c.part == g.part
            assert c.code.startswith(f"{g.code}.{c.number}")


# ---------------------------------------------------------------------------------------------------------
# Bounds read exactly from the Thang điểm column.

BOUND_CASES = [
    # SS.III.9: ">05 văn bản" 1, "03-05 văn bản" 0,5, "<03 văn bản" 0
    ("SS.III.9", 0, 0), ("SS.III.9", 2, 0), ("SS.III.9", 3, 0.5), ("SS.III.9", 5, 0.5), ("SS.III.9", 6, 1),
    # SS.III.8: budget in million đồng, ">=500tr" 1, "100 -<500tr" 0,5, "<100tr" 0
    ("SS.III.8", 0, 0), ("SS.III.8", 99.99, 0), ("SS.III.8", 100, 0.5), ("SS.III.8", 499.99, 0.5),
    ("SS.III.8", 500, 1), ("SS.III.8", 990, 1),
    # KQ.III.23: percent; decision: exactly 70 is in the top tier
    ("KQ.III.23", 0, 0), ("KQ.III.23", 49.99, 0), ("KQ.III.23", 50, 0.5), ("KQ.III.23", 69.99, 0.5),
    ("KQ.III.23", 70, 1), ("KQ.III.23", 100, 1),
    # KQ.I.8: "8-12 bài" 1 (12 not a cap), "3-7 bài" 0,5, "<3 bài" 0
    ("KQ.I.8", 0, 0), ("KQ.I.8", 2, 0), ("KQ.I.8", 3, 0.5), ("KQ.I.8", 7, 0.5), ("KQ.I.8", 8, 1),
    ("KQ.I.8", 12, 1), ("KQ.I.8", 20, 1),
    # KQ.I.9: ">= 4 bài" 1, "1-3 bài" 0,5, "0 bài" 0
    ("KQ.I.9", 0, 0), ("KQ.I.9", 1, 0.5), ("KQ.I.9", 3, 0.5), ("KQ.I.9", 4, 1),
    # KQ.I.15: ">= 12 bài" 1, "4-11 bài" 0,5, "<4 bài" 0
    ("KQ.I.15", 3, 0), ("KQ.I.15", 4, 0.5), ("KQ.I.15", 11, 0.5), ("KQ.I.15", 12, 1),
    # KQ.I.5 and KQ.I.6: months
    ("KQ.I.5", 0, 0), ("KQ.I.5", 4, 0), ("KQ.I.5", 5, 0.5), ("KQ.I.5", 11, 0.5), ("KQ.I.5", 12, 1),
    ("KQ.I.6", 0, 0), ("KQ.I.6", 4, 0), ("KQ.I.6", 5, 0.5), ("KQ.I.6", 11, 0.5), ("KQ.I.6", 12, 1),
    # KQ.I.29: quarters "4" 1, "2-3" 0,5, "0-1" 0
    ("KQ.I.29", 0, 0), ("KQ.I.29", 1, 0), ("KQ.I.29", 2, 0.5), ("KQ.I.29", 3, 0.5), ("KQ.I.29", 4, 1),
    # SS.I.12: scanners ">=1" 1, "Không" 0
    ("SS.I.12", 0, 0), ("SS.I.12", 1, 1), ("SS.I.12", 5, 1),
]


@pytest.mark.parametrize(("code", "value", "points"), BOUND_CASES,
                         ids=[f"{c}={v}" for c, v, _ in BOUND_CASES])
def test_tier_bounds(rb, code, value, points):
    c = rb.criterion(code)
    assert c.kind == "tiers"
    s = score_criterion(c, CriterionInput(value=value))
    assert s.status == OK
    assert s.points == points
    assert s.detail == next(t.label for t in c.tiers if t.contains(value))


@pytest.mark.parametrize(("code", "options"), [
    ("KQ.I.1", [("Đầy đủ", 1), ("Không đầy đủ", 0.5), ("Không đăng tải", 0)]),
    ("KQ.I.7", [("Có đầy đủ", 1), ("Không", 0)]),
    ("KQ.I.21", [("Có đầy đủ", 1), ("Không", 0)]),
    ("KQ.I.27", [("Cập nhật kịp thời, đầy đủ danh sách và thông tin", 1), ("Thiếu hoặc không có", 0)]),
    ("KQ.I.24", [("100% TTHC", 1), ("dưới 100% TTHC", 0)]),
    ("SS.I.2", [("Có", 1), ("Không", 0)]),
])
def test_option_labels(rb, code, options):
    c = rb.criterion(code)
    assert [(o.label, o.points) for o in c.options] == options
    for label, pts in options:
        s = score_criterion(c, CriterionInput(value=label))
        assert (s.status, s.points, s.detail) == (OK, pts, label)


@pytest.mark.parametrize(("code", "kind"), [
    ("KQ.I.7", "yesno"), ("KQ.I.21", "yesno"), ("KQ.I.1", "choice"), ("KQ.I.20", "choice"),
    ("KQ.I.24", "choice"), ("KQ.I.27", "choice"), ("KQ.I.5", "tiers"), ("KQ.I.6", "tiers"),
    ("KQ.I.8", "tiers"), ("KQ.III.23", "tiers"), ("SS.III.8", "tiers"), ("KQ.III.1", "ratio"),
])
def test_kinds_of_ambiguous_rows(rb, code, kind):
    assert rb.criterion(code).kind == kind


# ---------------------------------------------------------------------------------------------------------
# Decisions are recorded.


@pytest.mark.parametrize("code", ["KQ.I.6", "KQ.I.8", "KQ.III.23", "KQ.I.32", "KQ.I.32b", "SS.I.31"])
def test_decisions_have_a_note(rb, code):
    note = rb.criterion(code).note
    assert isinstance(note, str)
    assert note.strip() != ""


NOT_APPLICABLE_ACCEPTED = {"SS.I.24", "SS.I.25", "SS.II.3", "SS.II.12", "SS.II.13", "SS.III.10", "KQ.III.10",
                           "KQ.III.15", "KQ.III.16"}


def test_not_applicable_is_accepted_only_where_the_rulebook_says_with_its_ground(rb):
    assert {c.code for c in rb.criteria if c.not_applicable} == NOT_APPLICABLE_ACCEPTED
    for c in rb.criteria:
        if c.not_applicable:
            assert c.kind == "ratio" and "mẫu số bằng 0" in c.not_applicable_note, c.code
    # Plainly applicable criteria a district tried to take out: refused, most with the ground written down.
    for code in ("SS.I.3", "SS.I.26", "SS.II.1", "KQ.III.1", "KQ.I.27", "KQ.III.11", "KQ.III.14", "SS.II.5"):
        c = rb.criterion(code)
        assert not c.not_applicable and c.not_applicable_note, code
    assert (rb.criterion("SS.I.1").not_applicable, rb.criterion("SS.I.1").not_applicable_note) == (False, None)


def test_rules_json_carries_the_not_applicable_rule(rb):
    from kbang_egov.rules.rulebook import criterion_record

    assert criterion_record(rb.criterion("KQ.III.16"))["not_applicable"] == {
        "accepted": True, "note": rb.criterion("KQ.III.16").not_applicable_note}
    assert criterion_record(rb.criterion("SS.I.1"))["not_applicable"] == {"accepted": False, "note": None}


def test_second_row_32_is_unscored(rb):
    c = rb.criterion("KQ.I.32b")
    assert c.scored is False
    assert c.max == 0
    assert c.number == 32
    assert all(t.points == 0 for t in c.tiers)
    assert c not in rb.scored_criteria
    assert rb.criterion("KQ.I.32").scored is True
    assert rb.criterion("KQ.I.32").max == 1


def test_criteria_under_each_subtotal_and_codes_as_typed(rb):
    """The scored criteria under each group, part and the total (KQ.I.32b, unscored, under none); and every
    criterion and subtotal code found as a clerk may retype it."""
    under = rb.criteria_under
    assert set(under) == set(rb.subtotal_codes)
    assert under["SS.I"] == tuple(c.code for c in rb.groups[0].criteria)
    assert under["KQ"] == tuple(c.code for c in rb.scored_criteria if c.part == "KQ")
    assert under[rb.total_code] == tuple(c.code for c in rb.scored_criteria) and len(under["TONG"]) == 170
    assert "KQ.I.32b" not in under["KQ.I"]
    keys = rb.code_keys
    assert (keys["SS.I.1"], keys["KQ.I.32B"], keys["KQ.III"], keys["TONG"]) == ("SS.I.1", "KQ.I.32b", "KQ.III", "TONG")
    assert set(keys.values()) == {c.code for c in rb.criteria} | set(rb.subtotal_codes)


def test_group_note_explains_kq_i(rb):
    g = next(g for g in rb.groups if g.code == "KQ.I")
    assert g.note and "32" in g.note


# ---------------------------------------------------------------------------------------------------------
# Broken rulebooks.


def _crit(data: dict, code: str) -> dict:
    return next(c for c in data["criteria"] if c.get("code") == code)


def _group(data: dict, code: str) -> dict:
    return next(g for g in data["groups"] if g["code"] == code)


def _part(data: dict, code: str) -> dict:
    return next(p for p in data["parts"] if p["code"] == code)


def _unknown_kind(d):
    _crit(d, "SS.I.1")["kind"] = "percent"


def _overlap(d):
    _crit(d, "SS.III.9")["tiers"][1]["le"] = 6


def _gap(d):
    _crit(d, "SS.III.9")["tiers"][2]["lt"] = 2


def _gap_above(d):
    top = _crit(d, "KQ.I.8")["tiers"][0]
    top["ge"] = 8
    top["le"] = 12


def _group_max(d):
    _group(d, "SS.I")["max"] = 35


def _part_max(d):
    _part(d, "SS")["max"] = 61


def _total_max(d):
    d["total"]["max"] = 171


def _duplicate(d):
    crits = d["criteria"]
    crits.insert(1, copy.deepcopy(crits[0]))


def _unknown_field(d):
    _crit(d, "SS.I.1")["maxx"] = 1


def _missing_name(d):
    del _crit(d, "SS.I.1")["name"]


def _option_above_max(d):
    _crit(d, "KQ.I.1")["options"][0]["points"] = 2


def _unknown_group(d):
    _crit(d, "SS.I.1")["group"] = "SS.IX"


def _three_yesno_options(d):
    _crit(d, "SS.I.2")["options"].append({"label": "Một phần", "points": 0.5})


def _tier_points_above_max(d):
    _crit(d, "KQ.I.9")["tiers"][0]["points"] = 1.5


def _unscored_with_max(d):
    _crit(d, "KQ.I.32b")["max"] = 1


def _field_of_other_kind(d):
    _crit(d, "SS.I.2")["scale"] = "Có 1 Không 0"


def _duplicate_option_label(d):
    _crit(d, "KQ.I.1")["options"][2]["label"] = " đầy  ĐỦ "


def _reserved_option_label(d):
    _crit(d, "KQ.I.1")["options"][2]["label"] = "Không áp dụng"


def _tier_both_lower_bounds(d):
    _crit(d, "KQ.I.9")["tiers"][0]["gt"] = 3


def _tier_outside_range(d):
    _crit(d, "KQ.I.29")["tiers"][0]["ge"] = 5


def _yesno_without_max_option(d):
    _crit(d, "SS.I.2")["options"][0]["points"] = 0.5


def _group_code_mismatch(d):
    _group(d, "SS.II")["number"] = "V"


def _unknown_part(d):
    _group(d, "SS.I")["part"] = "XX"


def _year_text(d):
    d["year"] = "2020"


def _na_not_a_mapping(d):
    _crit(d, "SS.I.1")["not_applicable"] = True


def _na_accepted_text(d):
    _crit(d, "SS.I.1")["not_applicable"] = {"accepted": "yes", "note": "Không có cán bộ."}


def _na_without_note(d):
    _crit(d, "SS.I.1")["not_applicable"] = {"accepted": True}


def _na_blank_note(d):
    _crit(d, "KQ.III.16")["not_applicable"]["note"] = "  "


def _na_unknown_field(d):
    _crit(d, "KQ.III.16")["not_applicable"]["ground"] = "x"


def _na_on_unscored(d):
    _crit(d, "KQ.I.32b")["not_applicable"] = {"accepted": True, "note": "Không có báo cáo."}


BROKEN = [
    ("unknown-kind", _unknown_kind, "tiêu chí SS.I.1", "kind"),
    ("overlapping-tiers", _overlap, "tiêu chí SS.III.9", "tiers[1]"),
    ("gap-in-tiers", _gap, "tiêu chí SS.III.9", "tiers"),
    ("gap-above-top-tier", _gap_above, "tiêu chí KQ.I.8", "tiers"),
    ("group-max", _group_max, "nhóm SS.I", "max"),
    ("part-max", _part_max, "phần SS", "max"),
    ("total-max", _total_max, "total", "max"),
    ("duplicate-code", _duplicate, "tiêu chí SS.I.1", "code"),
    ("unknown-field", _unknown_field, "tiêu chí SS.I.1", "maxx"),
    ("missing-name", _missing_name, "tiêu chí SS.I.1", "name"),
    ("option-above-max", _option_above_max, "tiêu chí KQ.I.1", "options[1].points"),
    ("unknown-group", _unknown_group, "tiêu chí SS.I.1", "group"),
    ("yesno-three-options", _three_yesno_options, "tiêu chí SS.I.2", "options"),
    ("tier-points-above-max", _tier_points_above_max, "tiêu chí KQ.I.9", "tiers[1].points"),
    ("unscored-with-max", _unscored_with_max, "tiêu chí KQ.I.32b", "max"),
    ("field-of-other-kind", _field_of_other_kind, "tiêu chí SS.I.2", "scale"),
    ("duplicate-option-label", _duplicate_option_label, "tiêu chí KQ.I.1", "options[3].label"),
    ("reserved-option-label", _reserved_option_label, "tiêu chí KQ.I.1", "options[3].label"),
    ("tier-two-lower-bounds", _tier_both_lower_bounds, "tiêu chí KQ.I.9", "tiers[1]"),
    ("tier-outside-range", _tier_outside_range, "tiêu chí KQ.I.29", "tiers[1]"),
    ("yesno-without-max-option", _yesno_without_max_option, "tiêu chí SS.I.2", "options"),
    ("group-code-mismatch", _group_code_mismatch, "nhóm SS.II", "code"),
    ("unknown-part", _unknown_part, "nhóm SS.I", "part"),
    ("year-not-a-number", _year_text, "bộ tiêu chí", "year"),
    ("not-applicable-not-a-mapping", _na_not_a_mapping, "tiêu chí SS.I.1", "not_applicable"),
    ("not-applicable-accepted-text", _na_accepted_text, "tiêu chí SS.I.1", "not_applicable.accepted"),
    ("not-applicable-without-note", _na_without_note, "tiêu chí SS.I.1", "not_applicable.note"),
    ("not-applicable-blank-note", _na_blank_note, "tiêu chí KQ.III.16", "not_applicable.note"),
    ("not-applicable-unknown-field", _na_unknown_field, "tiêu chí KQ.III.16", "not_applicable.ground"),
    ("not-applicable-on-unscored", _na_on_unscored, "tiêu chí KQ.I.32b", "not_applicable.accepted"),
    # no figure of a yes/no, choice or tiers answer can prove "nothing arose": ratios only
    *((f"not-applicable-on-{code}", lambda d, code=code: _crit(d, code).update(
        not_applicable={"accepted": True, "note": "Lý do."}), f"tiêu chí {code}", "not_applicable.accepted")
      for code in ("SS.I.2", "KQ.I.1", "KQ.I.8")),
    ("evidence-required-text", lambda d: d.update(evidence_required="yes"), "bộ tiêu chí", "evidence_required"),
    ("evidence-required-criterion-text", lambda d: _crit(d, "SS.I.1").update(evidence_required=1),
     "tiêu chí SS.I.1", "evidence_required"),
]


@pytest.mark.parametrize(("mutate", "entry", "field"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_rulebook(raw, mutate, entry, field):
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(RulebookError) as exc:
        build_rulebook(data)
    assert exc.value.entry == entry
    assert exc.value.field == field
    assert str(exc.value).startswith(f"{entry}, trường '{field}': ")


def test_unmutated_copy_builds(raw):
    """The broken cases start from a valid rulebook: the copy itself builds."""
    rb = build_rulebook(copy.deepcopy(raw))
    assert len(rb.criteria) == 171


def test_evidence_required_is_a_rulebook_setting_with_a_per_criterion_override(raw):
    assert not any(c.evidence_required for c in build_rulebook(copy.deepcopy(raw)).criteria)  # absent: not required
    data = copy.deepcopy(raw)
    data["evidence_required"] = True
    _crit(data, "SS.I.1")["evidence_required"] = False
    rb = build_rulebook(data)
    assert [c.code for c in rb.scored_criteria if not c.evidence_required] == ["SS.I.1"]
    assert not rb.criterion("KQ.I.32b").evidence_required  # unscored: nothing to prove


def test_not_a_mapping():
    with pytest.raises(RulebookError) as exc:
        build_rulebook(["criteria"])
    assert exc.value.entry is None
    assert exc.value.field is None


def test_load_invalid_yaml(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("id: [unclosed\ncriteria: {\n", encoding="utf-8")
    with pytest.raises(RulebookError, match="không phải YAML hợp lệ"):
        load_rulebook(p)


def test_load_missing_file(tmp_path):
    p = tmp_path / "x.yaml"
    with pytest.raises(RulebookError, match="không đọc được tệp bộ tiêu chí"):
        load_rulebook(p)


def test_load_not_utf8(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_bytes("id: Chính quyền\n".encode("utf-16"))
    with pytest.raises(RulebookError, match="không phải văn bản UTF-8"):
        load_rulebook(p)


def test_load_broken_file_names_entry(tmp_path, raw):
    data = copy.deepcopy(raw)
    _group_max(data)
    p = tmp_path / "x.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(RulebookError) as exc:
        load_rulebook(p)
    assert (exc.value.entry, exc.value.field) == ("nhóm SS.I", "max")


# ---------------------------------------------------------------------------------------------------------
# The rulebook hash.


def test_hash_is_stable_across_loads(rb):
    again = load_rulebook()
    assert again.hash == rb.hash
    assert len(rb.hash) == 64
    raw = yaml.safe_load(default_rulebook_path().read_text(encoding="utf-8"))
    assert rulebook_hash(raw) == rb.hash
    assert build_rulebook(raw).hash == rb.hash


def test_hash_ignores_comments_and_layout(tmp_path, rb):
    text = default_rulebook_path().read_text(encoding="utf-8")
    p = tmp_path / "x.yaml"
    p.write_text("# an extra comment\n\n" + text + "\n# trailing comment\n", encoding="utf-8")
    assert load_rulebook(p).hash == rb.hash


def _set(code, key, value):
    def mutate(d):
        _crit(d, code)[key] = value
    return mutate


def _set_option(code, index, key, value):
    def mutate(d):
        _crit(d, code)["options"][index][key] = value
    return mutate


def _set_tier(code, index, key, value):
    def mutate(d):
        _crit(d, code)["tiers"][index][key] = value
    return mutate


def _set_value(code, key, value):
    def mutate(d):
        _crit(d, code)["value"][key] = value
    return mutate


def _move_budget_bound(d):
    tiers = _crit(d, "SS.III.8")["tiers"]
    tiers[0]["ge"] = 600
    tiers[1]["lt"] = 600


def _raise_max(d):
    _crit(d, "SS.I.1")["max"] = 2
    _group(d, "SS.I")["max"] = 37
    _part(d, "SS")["max"] = 61
    d["total"]["max"] = 171


HASH_CHANGES = [
    ("code", _set("SS.I.1", "code", "SS.I.1a")),
    ("name", _set("SS.I.1", "name", "Tỷ lệ máy tính/cán bộ công chức cấp huyện.")),
    ("kind", _set("KQ.I.20", "kind", "yesno")),
    ("scale", _set("SS.I.1", "scale", "Điểm = Tỷ lệ% x Điểm tối đa")),
    ("numerator", _set("SS.I.1", "numerator", "Số máy tính")),
    ("denominator", _set("SS.I.1", "denominator", "Số cán bộ")),
    ("section", _set("SS.I.1", "section", "Chuyên mục mới")),
    ("note", _set("SS.III.9", "note", "Another reading.")),
    ("note-added", _set("SS.I.1", "note", "A note.")),
    ("max", _raise_max),
    ("option-label", _set_option("KQ.I.1", 2, "label", "Không công bố")),
    ("option-points", _set_option("KQ.I.1", 1, "points", 0.25)),
    ("tier-label", _set_tier("SS.III.9", 0, "label", "> 5 văn bản")),
    ("tier-points", _set_tier("SS.III.9", 1, "points", 0.25)),
    ("tier-bound", _move_budget_bound),
    ("value-unit", _set_value("SS.III.8", "unit", "nghìn đồng")),
    ("value-max", _set_value("KQ.I.8", "max", 100)),
    ("not-applicable-added", _set("SS.I.1", "not_applicable", {"accepted": True, "note": "Lý do."})),
    ("not-applicable-refused", _set("KQ.III.16", "not_applicable", {"accepted": False, "note": "Lý do."})),
]


@pytest.mark.parametrize("mutate", [h[1] for h in HASH_CHANGES], ids=[h[0] for h in HASH_CHANGES])
def test_hash_changes_with_any_criterion_field(raw, rb, mutate):
    data = copy.deepcopy(raw)
    mutate(data)
    changed = build_rulebook(data)  # still a valid rulebook
    assert changed.hash != rb.hash
