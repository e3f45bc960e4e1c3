"""The rulebook: the criteria, their groups and parts, loaded from a YAML data file and validated.

A broken rulebook is an exception (it stops the run): `RulebookError` names the entry and the field,
so an officer editing next year's file knows exactly what to fix.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from ..text import normalize_text, read_data_file

KINDS = ("ratio", "yesno", "choice", "tiers")
BOUND_KEYS = ("ge", "gt", "le", "lt")
DEFAULT_RULEBOOK = "cqdt_huyen_2020.yaml"

_TOP_FIELDS = {"id", "version", "year", "title", "source", "total", "parts", "groups", "criteria",
               "evidence_required"}
_TOTAL_FIELDS = {"code", "name", "max", "note"}
_PART_FIELDS = {"code", "name", "total_name", "max", "note"}
_GROUP_FIELDS = {"code", "part", "number", "name", "max", "note"}
_CRITERION_FIELDS = {
    "code", "group", "number", "section", "name", "max", "kind", "scored", "scale",
    "numerator", "denominator", "options", "value", "tiers", "note", "not_applicable", "evidence_required",
}
_KIND_FIELDS = {
    "ratio": {"scale", "numerator", "denominator"},
    "yesno": {"options"},
    "choice": {"options"},
    "tiers": {"value", "tiers"},
}
_VALUE_FIELDS = {"unit", "integer", "min", "max"}
_NOT_APPLICABLE_FIELDS = {"accepted", "note"}
# Points are compared as exact decimals so 0.1 + 0.2 style float noise never breaks a sum check.
_EPS = Fraction(1, 10**9)
_TOP = "bộ tiêu chí"  # the entry messages name for the file's top level


class RulebookError(Exception):
    """The rulebook file cannot be used; the message names the entry and the field."""

    def __init__(self, message: str, entry: str | None = None, field: str | None = None):
        self.entry = entry
        self.field = field
        where = ""
        if entry and field:
            where = f"{entry}, trường '{field}': "
        elif entry:
            where = f"{entry}: "
        super().__init__(where + message)


@dataclass(frozen=True)
class Option:
    label: str
    points: float


@dataclass(frozen=True)
class Tier:
    """One tier: points for a value inside the bounds (ge/gt lower, le/lt upper; None = open)."""

    label: str
    points: float
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def contains(self, value: float) -> bool:
        if self.ge is not None and not value >= self.ge:
            return False
        if self.gt is not None and not value > self.gt:
            return False
        if self.le is not None and not value <= self.le:
            return False
        if self.lt is not None and not value < self.lt:
            return False
        return True

    def bounds_text(self) -> str:
        parts = []
        for key, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            v = getattr(self, key)
            if v is not None:
                parts.append(f"{sym} {format_points(v)}")
        return " và ".join(parts) if parts else "mọi giá trị"


@dataclass(frozen=True)
class ValueSpec:
    """The number a district enters for a tiers criterion."""

    unit: str
    integer: bool
    min: float
    max: float | None


@dataclass(frozen=True)
class Criterion:
    code: str
    group: str
    part: str
    number: int | str
    name: str
    max: float
    kind: str
    scored: bool = True
    section: str | None = None
    scale: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    options: tuple[Option, ...] = ()
    value: ValueSpec | None = None
    tiers: tuple[Tier, ...] = ()
    note: str | None = None
    not_applicable: bool = False  # "Không áp dụng" accepted: the criterion then leaves the maximum
    not_applicable_note: str | None = None  # the ground, in Vietnamese: shown to officers and clerks
    # A score above 0 with an empty "Tài liệu kiểm chứng" is a warning (evidence-missing): the rulebook's
    # top-level evidence_required, or the criterion's own.
    evidence_required: bool = False

    def __hash__(self) -> int:
        # By code only (equal criteria have equal codes): scoring caches per criterion and value, and the
        # generated hash walked every option and tier on each lookup.
        return hash(self.code)

    def scale_text(self) -> str:
        """The scoring rule as shown in the template's Thang điểm column."""
        if self.kind == "ratio":
            return self.scale or f"Điểm = Tỷ lệ% x Điểm tối đa (Tối đa ≤ {format_points(self.max)} điểm)"
        items = self.options if self.kind in ("yesno", "choice") else self.tiers
        return "\n".join(f"{it.label}: {format_points_vi(it.points)}" for it in items)


@dataclass(frozen=True)
class Group:
    code: str
    part: str
    number: str
    name: str
    max: float
    criteria: tuple[Criterion, ...]
    note: str | None = None


@dataclass(frozen=True)
class Part:
    code: str
    name: str
    total_name: str
    max: float
    groups: tuple[Group, ...]
    note: str | None = None


@dataclass(frozen=True)
class Rulebook:
    id: str
    version: str
    year: int
    title: str
    source: str
    total_code: str
    total_name: str
    total_max: float
    parts: tuple[Part, ...]
    hash: str
    path: str = field(default="", compare=False)

    @cached_property
    def groups(self) -> tuple[Group, ...]:
        return tuple(g for p in self.parts for g in p.groups)

    @cached_property
    def criteria(self) -> tuple[Criterion, ...]:
        """Every criterion, scored or not, in form order."""
        return tuple(c for g in self.groups for c in g.criteria)

    @cached_property
    def scored_criteria(self) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if c.scored)

    @cached_property
    def by_code(self) -> dict[str, Criterion]:
        return {c.code: c for c in self.criteria}

    def criterion(self, code: str) -> Criterion:
        return self.by_code[code]

    @cached_property
    def subtotal_codes(self) -> tuple[str, ...]:
        """Codes of the rows that carry a declared subtotal: groups, parts, then the total."""
        return (*(g.code for g in self.groups), *(p.code for p in self.parts), self.total_code)

    @cached_property
    def criteria_under(self) -> dict[str, tuple[str, ...]]:
        """The codes of the scored criteria under each group, part and the total."""
        under = {g.code: tuple(c.code for c in g.criteria if c.scored) for g in self.groups}
        for p in self.parts:
            under[p.code] = tuple(code for g in p.groups for code in under[g.code])
        under[self.total_code] = tuple(c.code for c in self.scored_criteria)
        return under

    @cached_property
    def code_keys(self) -> dict[str, str]:
        """{code as typed: rulebook code} for the criteria and subtotal rows: each code as written and
        normalised (case, spaces, Unicode), so a return's rows are found by one lookup each."""
        codes = [c.code for c in self.criteria] + list(self.subtotal_codes)
        keys = {normalize_text(code).upper(): code for code in codes}
        keys.update({code: code for code in codes})
        return keys

    @property
    def label(self) -> str:
        return f"{self.id} {self.version}"


def default_rulebook_path() -> Path:
    return Path(str(resources.files("kbang_egov") / "rulebooks" / DEFAULT_RULEBOOK))


def load_rulebook(path: str | Path | None = None) -> Rulebook:
    """Read, validate and return the rulebook at `path` (default: the bundled 2020 rulebook)."""
    import yaml  # lazy: only commands that need the rulebook pay for it

    p = Path(path) if path is not None else default_rulebook_path()
    text = read_data_file(p, "tệp bộ tiêu chí", RulebookError)
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in: ~10x faster
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader either way
    except yaml.YAMLError as exc:
        raise RulebookError(f"tệp bộ tiêu chí {p} không phải YAML hợp lệ: {exc}") from exc
    return build_rulebook(data, path=str(p))


def rulebook_hash(data: Any) -> str:
    """SHA-256 of the rulebook's content (not its comments or layout), so any edit changes it."""
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def build_rulebook(data: Any, path: str = "") -> Rulebook:
    """Validate parsed rulebook data and build the immutable Rulebook."""
    if not isinstance(data, dict):
        raise RulebookError("bộ tiêu chí phải là một mapping có id, version, parts, groups và criteria")
    _check_fields(data, _TOP_FIELDS, _TOP, required=_TOP_FIELDS - {"source", "title", "evidence_required"})
    evidence_required = data.get("evidence_required", False)
    if not isinstance(evidence_required, bool):
        raise RulebookError(f"phải là true hoặc false, đang là {evidence_required!r}", _TOP, "evidence_required")
    rb_id = _text(data, "id", _TOP)
    version = str(_require(data, "version", _TOP))
    year = _require(data, "year", _TOP)
    if not isinstance(year, int) or isinstance(year, bool):
        raise RulebookError(f"phải là một năm (số nguyên), đang là {year!r}", _TOP, "year")

    total = _require(data, "total", _TOP)
    if not isinstance(total, dict):
        raise RulebookError("phải là một mapping có code, name và max", _TOP, "total")
    _check_fields(total, _TOTAL_FIELDS, "total", required={"code", "name", "max"})
    total_code = _text(total, "code", "total")
    total_max = _points(total, "max", "total")

    parts_raw = _list(data, "parts", _TOP)
    groups_raw = _list(data, "groups", _TOP)
    criteria_raw = _list(data, "criteria", _TOP)

    codes_seen: dict[str, str] = {total_code: "total"}

    def claim(code: str, entry: str) -> None:
        if code in codes_seen:
            raise RulebookError(f"mã '{code}' đã được dùng cho {codes_seen[code]}; mỗi mã chỉ dùng một lần", entry,
                                "code")
        codes_seen[code] = entry

    part_meta: dict[str, dict] = {}
    for i, raw in enumerate(parts_raw):
        entry = _entry_name("phần", i, raw)
        if not isinstance(raw, dict):
            raise RulebookError("phải là một mapping", entry)
        _check_fields(raw, _PART_FIELDS, entry, required={"code", "name", "max"})
        code = _text(raw, "code", entry)
        claim(code, entry)
        part_meta[code] = raw

    group_meta: dict[str, dict] = {}
    for i, raw in enumerate(groups_raw):
        entry = _entry_name("nhóm", i, raw)
        if not isinstance(raw, dict):
            raise RulebookError("phải là một mapping", entry)
        _check_fields(raw, _GROUP_FIELDS, entry, required={"code", "part", "number", "name", "max"})
        code = _text(raw, "code", entry)
        claim(code, entry)
        part = _text(raw, "part", entry)
        if part not in part_meta:
            raise RulebookError(f"không có phần '{part}'; các phần là {', '.join(part_meta)}", entry, "part")
        if code != f"{part}.{raw['number']}":
            raise RulebookError(f"mã phải là '{part}.{raw['number']}' (part.number)", entry, "code")
        group_meta[code] = raw

    crits_by_group: dict[str, list[Criterion]] = {g: [] for g in group_meta}
    for i, raw in enumerate(criteria_raw):
        crit = _build_criterion(raw, i, group_meta, evidence_required)
        claim(crit.code, f"tiêu chí {crit.code}")
        crits_by_group[crit.group].append(crit)

    parts: list[Part] = []
    for pcode, praw in part_meta.items():
        groups: list[Group] = []
        for gcode, graw in group_meta.items():
            if graw["part"] != pcode:
                continue
            entry = f"nhóm {gcode}"
            gmax = _points(graw, "max", entry)
            crits = tuple(crits_by_group[gcode])
            if not crits:
                raise RulebookError("không có tiêu chí nào; thêm tiêu chí hoặc xóa nhóm", entry)
            _check_sum(gmax, [c.max for c in crits if c.scored], entry, "các tiêu chí của nhóm")
            groups.append(Group(gcode, pcode, str(graw["number"]), _text(graw, "name", entry), gmax,
                                crits, graw.get("note")))
        entry = f"phần {pcode}"
        pmax = _points(praw, "max", entry)
        if not groups:
            raise RulebookError("không có nhóm nào; thêm nhóm hoặc xóa phần", entry)
        _check_sum(pmax, [g.max for g in groups], entry, "các nhóm của phần")
        parts.append(Part(pcode, _text(praw, "name", entry), str(praw.get("total_name") or praw["name"]),
                          pmax, tuple(groups), praw.get("note")))
    _check_sum(total_max, [p.max for p in parts], "total", "các phần")

    return Rulebook(
        id=rb_id, version=version, year=year, title=str(data.get("title") or rb_id),
        source=str(data.get("source") or ""), total_code=total_code, total_name=_text(total, "name", "total"),
        total_max=total_max, parts=tuple(parts), hash=rulebook_hash(data), path=path,
    )


def _build_criterion(raw: Any, index: int, groups: dict[str, dict], evidence_required: bool = False) -> Criterion:
    entry = _entry_name("tiêu chí", index, raw)
    if not isinstance(raw, dict):
        raise RulebookError("phải là một mapping", entry)
    _check_fields(raw, _CRITERION_FIELDS, entry, required={"code", "group", "number", "name", "max", "kind"})
    code = _text(raw, "code", entry)
    group = _text(raw, "group", entry)
    if group not in groups:
        raise RulebookError(f"không có nhóm '{group}'; các nhóm là {', '.join(groups)}", entry, "group")
    number = raw["number"]
    if not code.startswith(f"{group}.{number}"):
        raise RulebookError(f"mã phải bắt đầu bằng '{group}.{number}' (group.number)", entry, "code")
    kind = raw["kind"]
    if kind not in KINDS:
        raise RulebookError(f"không có loại '{kind}'; dùng một trong {', '.join(KINDS)}", entry, "kind")
    for other, names in _KIND_FIELDS.items():
        if other != kind:
            for name in names - _KIND_FIELDS[kind]:
                if name in raw:
                    raise RulebookError(f"không dùng cho loại '{kind}'; xóa trường này", entry, name)
    scored = raw.get("scored", True)
    if not isinstance(scored, bool):
        raise RulebookError(f"phải là true hoặc false, đang là {scored!r}", entry, "scored")
    mx = _points(raw, "max", entry, allow_zero=not scored)
    if not scored and mx != 0:
        raise RulebookError("tiêu chí không tính điểm phải có max 0", entry, "max")

    options: tuple[Option, ...] = ()
    tiers: tuple[Tier, ...] = ()
    value: ValueSpec | None = None
    if kind in ("yesno", "choice"):
        options = _build_options(raw, entry, mx, kind)
    elif kind == "tiers":
        value = _build_value(raw, entry)
        tiers = _build_tiers(raw, entry, mx, value)
    for name in ("scale", "numerator", "denominator", "section", "note"):
        if name in raw and not isinstance(raw[name], str):
            raise RulebookError("phải là văn bản", entry, name)
    accepted, na_note = _build_not_applicable(raw, entry, scored, kind)
    evidence = raw.get("evidence_required", evidence_required)
    if not isinstance(evidence, bool):
        raise RulebookError(f"phải là true hoặc false, đang là {evidence!r}", entry, "evidence_required")
    return Criterion(
        code=code, group=group, part=str(groups[group]["part"]), number=number,
        name=_text(raw, "name", entry), max=mx, kind=kind, scored=scored, section=raw.get("section"),
        scale=raw.get("scale"), numerator=raw.get("numerator"), denominator=raw.get("denominator"),
        options=options, value=value, tiers=tiers, note=raw.get("note"),
        not_applicable=accepted, not_applicable_note=na_note, evidence_required=evidence and scored,
    )


def _build_not_applicable(raw: dict, entry: str, scored: bool, kind: str) -> tuple[bool, str | None]:
    """Whether "Không áp dụng" is accepted and on what ground. Absent: not accepted. Present: a mapping
    {accepted, note}, the note required either way (why a district may, or may not, leave it out).
    Accepted on ratios only: their denominator written as 0 proves it (scoring.not_applicable_proof); a
    yes/no, choice or tiers answer has no figure that could, so "none" belongs in its options or tiers."""
    if "not_applicable" not in raw:
        return False, None
    v = raw["not_applicable"]
    if not isinstance(v, dict):
        raise RulebookError("phải là một mapping {accepted: true hoặc false, note: lý do}", entry,
                            "not_applicable")
    for key in v:
        if key not in _NOT_APPLICABLE_FIELDS:
            raise RulebookError(f"không có trường '{key}'; dùng accepted và note", entry, f"not_applicable.{key}")
    accepted = v.get("accepted")
    if not isinstance(accepted, bool):
        raise RulebookError(f"phải là true hoặc false, đang là {accepted!r}", entry, "not_applicable.accepted")
    note = v.get("note")
    if not isinstance(note, str) or not note.strip():
        raise RulebookError("phải ghi lý do bằng văn bản", entry, "not_applicable.note")
    if accepted and not scored:
        raise RulebookError("tiêu chí không tính điểm không có điểm tối đa để loại ra", entry,
                             "not_applicable.accepted")
    if accepted and kind != "ratio":
        raise RulebookError("chỉ tiêu chí tỷ lệ (ratio) được chấp nhận 'Không áp dụng', vì chỉ mẫu số bằng 0 "
                            "chứng minh được là không phát sinh; với loại khác, ghi mức 'không có' vào thang điểm",
                            entry, "not_applicable.accepted")
    return accepted, " ".join(note.split())


def _build_options(raw: dict, entry: str, mx: float, kind: str) -> tuple[Option, ...]:
    items = raw.get("options")
    if not isinstance(items, list) or len(items) < 2:
        raise RulebookError("cần một danh sách ít nhất hai phương án, mỗi phương án {label, points}", entry,
                             "options")
    if kind == "yesno" and len(items) != 2:
        raise RulebookError("tiêu chí loại yesno có đúng hai phương án (có, không)", entry, "options")
    out: list[Option] = []
    seen: set[str] = set()
    for j, item in enumerate(items, 1):
        where = f"options[{j}]"
        if not isinstance(item, dict) or set(item) != {"label", "points"}:
            raise RulebookError("mỗi phương án có đúng hai trường label và points", entry, where)
        label = item["label"]
        if not isinstance(label, str) or not label.strip():
            raise RulebookError("label phải là văn bản không rỗng", entry, f"{where}.label")
        key = normalize_text(label)
        if key in seen or key == normalize_text(NOT_APPLICABLE):
            raise RulebookError(f"label '{label}' bị dùng hai lần hoặc là nhãn dành riêng", entry, f"{where}.label")
        seen.add(key)
        pts = _number(item["points"], entry, f"{where}.points")
        if pts < 0 or pts > mx + 1e-9:
            raise RulebookError(f"points {format_points(pts)} phải từ 0 đến max {format_points(mx)}", entry,
                                f"{where}.points")
        out.append(Option(label, pts))
    if kind == "yesno" and max(o.points for o in out) != mx:
        raise RulebookError(f"phương án có phải cho điểm tối đa {format_points(mx)}", entry, "options")
    return tuple(out)


def _build_value(raw: dict, entry: str) -> ValueSpec:
    v = raw.get("value")
    if not isinstance(v, dict):
        raise RulebookError("cần {unit, integer, min[, max]}: con số đơn vị nhập vào", entry, "value")
    for key in v:
        if key not in _VALUE_FIELDS:
            raise RulebookError(f"không có trường '{key}'; dùng {', '.join(sorted(_VALUE_FIELDS))}", entry,
                                f"value.{key}")
    unit = v.get("unit")
    if not isinstance(unit, str) or not unit:
        raise RulebookError("phải là đơn vị tính bằng văn bản (bài, tháng, %, ...)", entry, "value.unit")
    integer = v.get("integer", False)
    if not isinstance(integer, bool):
        raise RulebookError("phải là true hoặc false", entry, "value.integer")
    lo = _number(v.get("min", 0), entry, "value.min")
    hi = v.get("max")
    hi = None if hi is None else _number(hi, entry, "value.max")
    if hi is not None and hi <= lo:
        raise RulebookError(f"max {format_points(hi)} phải lớn hơn min {format_points(lo)}", entry, "value.max")
    return ValueSpec(unit, integer, lo, hi)


def _build_tiers(raw: dict, entry: str, mx: float, value: ValueSpec) -> tuple[Tier, ...]:
    items = raw.get("tiers")
    if not isinstance(items, list) or len(items) < 2:
        raise RulebookError("cần một danh sách ít nhất hai mức, mỗi mức {label, points, các cận}", entry, "tiers")
    tiers: list[Tier] = []
    for j, item in enumerate(items, 1):
        where = f"tiers[{j}]"
        if not isinstance(item, dict):
            raise RulebookError("phải là một mapping {label, points, ge/gt/le/lt}", entry, where)
        for key in item:
            if key not in {"label", "points", *BOUND_KEYS}:
                raise RulebookError(f"không có trường '{key}'; các cận là ge, gt, le, lt", entry, f"{where}.{key}")
        label = item.get("label")
        if not isinstance(label, str) or not label.strip():
            raise RulebookError("label phải là văn bản không rỗng", entry, f"{where}.label")
        pts = _number(item.get("points"), entry, f"{where}.points")
        if pts < 0 or pts > mx + 1e-9:
            raise RulebookError(f"points {format_points(pts)} phải từ 0 đến max {format_points(mx)}", entry,
                                f"{where}.points")
        bounds = {k: _number(item[k], entry, f"{where}.{k}") for k in BOUND_KEYS if k in item}
        if "ge" in bounds and "gt" in bounds or "le" in bounds and "lt" in bounds:
            raise RulebookError("ghi một cận dưới (ge hoặc gt) và một cận trên (le hoặc lt)", entry, where)
        tiers.append(Tier(label, pts, **bounds))
    _check_tier_cover(tiers, value, entry)
    return tuple(tiers)


def _check_tier_cover(tiers: list[Tier], value: ValueSpec, entry: str) -> None:
    """Tiers must cover the value's range [min, max] exactly once: no gap, no overlap."""
    inf = math.inf
    top = inf if value.max is None else value.max
    spans = []  # (lo, lo_closed, hi, hi_closed, index, tier), clipped to the value's range
    for j, t in enumerate(tiers, 1):
        lo, lo_c = (t.ge, True) if t.ge is not None else (t.gt, False) if t.gt is not None else (-inf, False)
        hi, hi_c = (t.le, True) if t.le is not None else (t.lt, False) if t.lt is not None else (inf, False)
        if value.integer:  # whole numbers: '> 5' is '>= 6', '< 3' is '<= 2'
            if lo != -inf:
                lo = math.ceil(lo) if lo_c else math.floor(lo) + 1
            if hi != inf:
                hi = math.floor(hi) if hi_c else math.ceil(hi) - 1
            lo_c = hi_c = True
        if lo < value.min:
            lo, lo_c = value.min, True
        if hi > top:
            hi, hi_c = top, value.max is not None
        if lo > hi or (lo == hi and not (lo_c and hi_c)):
            rng = f"{format_points(value.min)}..{format_points(value.max) if value.max is not None else 'không giới hạn'}"
            raise RulebookError(f"mức '{t.label}' ({t.bounds_text()}) nằm ngoài khoảng giá trị {rng}",
                                entry, f"tiers[{j}]")
        spans.append((lo, lo_c, hi, hi_c, j, t))
    spans.sort(key=lambda s: (s[0], not s[1]))
    first = spans[0]
    if first[0] > value.min or not first[1]:
        raise RulebookError(f"các mức để hở: không mức nào chứa {format_points(value.min)} "
                            f"dưới mức '{first[5].label}' ({first[5].bounds_text()})", entry, "tiers")
    for prev, cur in zip(spans, spans[1:], strict=False):
        p_hi, p_hc, c_lo, c_lc = prev[2], prev[3], cur[0], cur[1]
        if value.integer:
            gap, overlap = c_lo > p_hi + 1, c_lo <= p_hi
        else:
            gap = c_lo > p_hi or (c_lo == p_hi and not p_hc and not c_lc)
            overlap = c_lo < p_hi or (c_lo == p_hi and p_hc and c_lc)
        if overlap:
            raise RulebookError(f"mức '{prev[5].label}' ({prev[5].bounds_text()}) và mức '{cur[5].label}' "
                                f"({cur[5].bounds_text()}) chồng lên nhau", entry, f"tiers[{cur[4]}]")
        if gap:
            raise RulebookError(f"các mức để hở giữa mức '{prev[5].label}' ({prev[5].bounds_text()}) "
                                f"và mức '{cur[5].label}' ({cur[5].bounds_text()})", entry, "tiers")
    last = spans[-1]
    if last[2] < top or (value.max is not None and not last[3]):
        upto = format_points(value.max) if value.max is not None else "không giới hạn"
        raise RulebookError(f"các mức để hở trên mức '{last[5].label}' ({last[5].bounds_text()}); "
                            f"giá trị có thể lên tới {upto}", entry, "tiers")


NOT_APPLICABLE = "Không áp dụng"


def _check_sum(declared: float, items: list[float], entry: str, what: str) -> None:
    total = sum((Fraction(str(x)) for x in items), Fraction(0))
    if abs(total - Fraction(str(declared))) > _EPS:
        raise RulebookError(f"max là {format_points(declared)} nhưng {what} cộng lại được "
                            f"{format_points(float(total))}", entry, "max")


def _entry_name(kind: str, index: int, raw: Any) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("code"), str):
        return f"{kind} {raw['code']}"
    return f"{kind} #{index + 1}"


def _check_fields(raw: dict, allowed: set[str], entry: str, required: set[str]) -> None:
    for key in raw:
        if key not in allowed:
            raise RulebookError(f"không có trường '{key}'; các trường được dùng: {', '.join(sorted(allowed))}", entry,
                                str(key))
    for key in sorted(required):
        if key not in raw or raw[key] is None:
            raise RulebookError("bị thiếu", entry, key)


def _require(raw: dict, key: str, entry: str) -> Any:
    if key not in raw or raw[key] is None:
        raise RulebookError("bị thiếu", entry, key)
    return raw[key]


def _text(raw: dict, key: str, entry: str) -> str:
    v = _require(raw, key, entry)
    if not isinstance(v, str) or not v.strip():
        raise RulebookError(f"phải là văn bản không rỗng, đang là {v!r}", entry, key)
    return v.strip()


def _list(raw: dict, key: str, entry: str) -> list:
    v = _require(raw, key, entry)
    if not isinstance(v, list) or not v:
        raise RulebookError("phải là một danh sách không rỗng", entry, key)
    return v


def _number(v: Any, entry: str, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise RulebookError(f"phải là một số, đang là {v!r}", entry, key)
    return float(v)


def _points(raw: dict, key: str, entry: str, allow_zero: bool = False) -> float:
    v = _number(_require(raw, key, entry), entry, key)
    if v < 0 or (v == 0 and not allow_zero):
        raise RulebookError(f"phải là số điểm dương, đang là {format_points(v)}", entry, key)
    return v


def format_points(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def format_points_vi(x: float) -> str:
    """Points as the form prints them: decimal comma (0,5)."""
    return format_points(x).replace(".", ",")


def criterion_record(c: Criterion) -> dict[str, Any]:
    """One criterion as plain data: what `batch.py rules --format json` prints and tools fill from."""
    rec: dict[str, Any] = {
        "code": c.code, "part": c.part, "group": c.group, "number": c.number, "section": c.section,
        "name": c.name, "max": c.max, "scored": c.scored, "kind": c.kind, "scale": c.scale_text(),
    }
    if c.kind == "ratio":
        rec["inputs"] = ["numerator", "denominator"]
        rec["numerator"] = c.numerator
        rec["denominator"] = c.denominator
    else:
        rec["inputs"] = ["value"]
    if c.options:
        rec["options"] = [{"label": o.label, "points": o.points} for o in c.options]
    if c.value is not None:
        rec["value"] = {"unit": c.value.unit, "integer": c.value.integer, "min": c.value.min, "max": c.value.max}
        rec["tiers"] = [
            {"label": t.label, "points": t.points,
             **{k: getattr(t, k) for k in BOUND_KEYS if getattr(t, k) is not None}}
            for t in c.tiers
        ]
    rec["note"] = c.note
    rec["not_applicable"] = {"accepted": c.not_applicable, "note": c.not_applicable_note}
    rec["evidence_required"] = c.evidence_required
    return rec


def rulebook_records(rb: Rulebook) -> list[dict[str, Any]]:
    return [criterion_record(c) for c in rb.criteria]


def rule_summary(c: Criterion) -> str:
    """A one-line rule for the readable table: 'Tử số/Mẫu số x 1', 'Có 1 | Không 0', '>= 8: 1 | ...'."""
    if c.kind == "ratio":
        return f"Tử số/Mẫu số x {format_points(c.max)} (≤ {format_points(c.max)})"
    if c.options:
        return " | ".join(f"{o.label} {format_points_vi(o.points)}" for o in c.options)
    unit = c.value.unit if c.value else ""
    return f"[{unit}] " + " | ".join(f"{t.bounds_text()}: {format_points_vi(t.points)}" for t in c.tiers)
