"""Sample returns: filled-in templates to try the nightly batch on, written through the real template builder.

Kbang's own 2020 return comes from data (`data/kbang_2020.yaml`, transcribed from report 406/BC-UBND).
Every other district, and any number of synthetic ones, gets a made-up but plausible return from a generator
seeded per district, so the same seed always gives the same files. Many returns carry the slips real returns
do (a self-score typed wrong, a subtotal added wrong, a label not in the list, ...) or untidy but valid typing
("0,85", "CÓ", " 31 "); each is recorded as a Slip, so tests and demos know what the batch must find.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import unicodedata
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import resources
from pathlib import Path

from ..operations.atomic import write_atomically
from ..rules.districts import District, district_key, load_districts
from ..rules.rulebook import NOT_APPLICABLE, Criterion, Rulebook, Tier
from ..rules.scoring import OK, CriterionInput, round_points, score_criterion
from ..text import ascii_slug, normalize_text, read_data_file, strip_diacritics
from .layout import INFO_LABELS, PERCENT_UNIT
from .template import Filled, TemplateError, template_file_name, write_template

KBANG_FILE = "kbang_2020.yaml"
KBANG_NAME = "Huyện Kbang"
DISTRICTS_FILE = "districts.txt"
SYNTHETIC_PREFIX = "Huyện Mẫu"
DEFAULT_SEED = 2020
PARALLEL_ABOVE = 50  # more files than this are written by a process pool (about 60 ms per file on one core)

# Slips: the return is wrong, and the batch must say so.
SELF_SCORE_WRONG = "self-score-wrong"  # rounded or typed wrong: 0.86 for 0.85, 1 for a "Không"
SELF_SCORE_MISSING = "self-score-missing"
INPUT_MISSING = "input-missing"  # a value, numerator or denominator left blank
SUBTOTAL_WRONG = "subtotal-wrong"  # a group or part total added (or rounded) wrong
TOTAL_RESULTS_ONLY = "total-results-only"  # the grand total is the results part alone, as in Kbang's report
NUMERATOR_EXCEEDS = "numerator-exceeds-denominator"
OPTION_UNKNOWN = "option-unknown"  # "Đã có": not a label of the list, even without its marks
DENOMINATOR_ZERO = "denominator-zero"  # 0 of 0: nothing to take a ratio of (a warning where "Không áp dụng" is accepted)
SLIP_KINDS = (SELF_SCORE_WRONG, SELF_SCORE_MISSING, INPUT_MISSING, SUBTOTAL_WRONG, TOTAL_RESULTS_ONLY,
              NUMERATOR_EXCEEDS, OPTION_UNKNOWN, DENOMINATOR_ZERO)

# Untidy but valid: the reader must accept these and score the return as if typed cleanly (the last two
# with a warning: "Không áp dụng" where the rulebook accepts it, a label typed without diacritics).
NOT_APPLICABLE_CHOSEN = "not-applicable"
DECIMAL_COMMA = "decimal-comma"  # "0,85" typed as text in a numeric cell
PERCENT_TEXT = "percent-text"  # "65%" typed as text in a percent cell
NUMBER_AS_TEXT = "number-as-text"  # " 31 " stored as text
LABEL_UPPER = "label-upper-case"  # "CÓ"
LABEL_NFD = "label-decomposed"  # "Có" in Unicode NFD, as some keyboards and PDFs give it
STRAY_SPACES = "stray-spaces"  # " Có ", "Đầy  đủ"
RATIO_IN_EVIDENCE = "ratio-in-evidence"  # "12/14" in the evidence column, numerator and denominator blank
LABEL_ACCENTLESS = "label-accentless"  # "co", "khong day du": one option once the marks are dropped
VALID_FORMS = (NOT_APPLICABLE_CHOSEN, DECIMAL_COMMA, PERCENT_TEXT, NUMBER_AS_TEXT, LABEL_UPPER, LABEL_NFD,
               STRAY_SPACES, RATIO_IN_EVIDENCE, LABEL_ACCENTLESS)

# What the generated districts carry, in turn: about a third are clean, two are untidy but valid.
_PLANS: tuple[tuple[str, ...], ...] = (
    (),
    (SELF_SCORE_WRONG, DECIMAL_COMMA),
    (),
    (SELF_SCORE_MISSING, INPUT_MISSING, LABEL_UPPER),
    (SUBTOTAL_WRONG, NUMBER_AS_TEXT, LABEL_ACCENTLESS),
    (),
    (TOTAL_RESULTS_ONLY, NOT_APPLICABLE_CHOSEN, DENOMINATOR_ZERO),
    (NUMERATOR_EXCEEDS, LABEL_NFD, STRAY_SPACES),
    (DECIMAL_COMMA, PERCENT_TEXT, NUMBER_AS_TEXT, LABEL_UPPER),
    (OPTION_UNKNOWN, RATIO_IN_EVIDENCE),
    (),
    (LABEL_NFD, STRAY_SPACES, RATIO_IN_EVIDENCE, NOT_APPLICABLE_CHOSEN),
    (SELF_SCORE_WRONG, SUBTOTAL_WRONG, INPUT_MISSING),
    (),
    (TOTAL_RESULTS_ONLY, SELF_SCORE_MISSING, PERCENT_TEXT),
    (OPTION_UNKNOWN, NUMERATOR_EXCEEDS, SELF_SCORE_WRONG),
)

_KBANG_TOP = {"district", "info", "declared", "slips", "criteria"}
_KBANG_ENTRY = {"self_score", "value", "numerator", "denominator", "evidence"}


class SampleError(Exception):
    """The sample data cannot be used (a broken Kbang file, a bad count)."""


@dataclass(frozen=True)
class Slip:
    kind: str  # one of SLIP_KINDS or VALID_FORMS
    code: str  # the criterion, group, part or total code it sits on
    typed: object = None  # what was typed, when that is the point ("Co", "0,85", ...)


@dataclass(frozen=True)
class Sample:
    """One district's return: what its workbook holds, and what is wrong or untidy in it."""

    district: District
    filled: Filled
    slips: tuple[Slip, ...] = ()

    @property
    def clean(self) -> bool:
        """No slip the batch must report (untidy but valid typing allowed)."""
        return not any(s.kind in SLIP_KINDS for s in self.slips)

    def kinds(self) -> set[str]:
        return {s.kind for s in self.slips}


@dataclass(frozen=True)
class SampleSet:
    paths: list[Path]  # one workbook per sample, in district order
    districts_file: Path | None  # the synthetic district list (count=N), for --districts
    samples: list[Sample] = field(default_factory=list)


# --- Kbang, from data --------------------------------------------------------------------------------


def kbang_data_path() -> Path:
    return Path(str(resources.files("kbang_egov") / "data" / KBANG_FILE))


def load_kbang_sample(rulebook: Rulebook, path: str | Path | None = None,
                      district: District | None = None) -> Sample:
    """Kbang's 2020 return from its data file, checked against the rulebook (every code, nothing else)."""
    import yaml

    p = Path(path) if path is not None else kbang_data_path()
    try:
        data = yaml.safe_load(read_data_file(p, "tệp bài nộp mẫu", SampleError))
    except yaml.YAMLError as exc:
        raise SampleError(f"the sample return {p} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or set(data) - _KBANG_TOP or "criteria" not in data:
        raise SampleError(f"{p}: expected a mapping with {', '.join(sorted(_KBANG_TOP))}")
    criteria = data["criteria"] or {}
    unknown = [code for code in criteria if code not in rulebook.by_code]
    missing = [c.code for c in rulebook.criteria if c.code not in criteria]
    if unknown or missing:
        raise SampleError(f"{p}: criteria not in the rulebook {rulebook.label}: {unknown}; missing: {missing}")
    totals = rulebook.subtotal_codes
    declared = data.get("declared") or {}
    info = data.get("info") or {}
    if set(declared) - set(totals) or set(info) - set(INFO_LABELS):
        raise SampleError(f"{p}: unknown subtotal codes {sorted(set(declared) - set(totals))} or information "
                          f"fields {sorted(set(info) - set(INFO_LABELS))}")
    values: dict[str, dict[str, object]] = {}
    self_scores: dict[str, object] = {}
    evidence: dict[str, str] = {}
    for code, entry in criteria.items():
        if not isinstance(entry, dict) or set(entry) - _KBANG_ENTRY:
            raise SampleError(f"{p}: criterion {code}: use the fields {', '.join(sorted(_KBANG_ENTRY))}")
        values[code] = {k: entry[k] for k in ("value", "numerator", "denominator") if k in entry}
        if "self_score" in entry:
            self_scores[code] = entry["self_score"]
        if "evidence" in entry:
            evidence[code] = str(entry["evidence"])
    slips = tuple(Slip(str(s["kind"]), str(s["code"])) for s in data.get("slips") or ())
    if any(s.kind not in SLIP_KINDS + VALID_FORMS for s in slips):
        raise SampleError(f"{p}: slips: use the kinds {', '.join(SLIP_KINDS + VALID_FORMS)}")
    filled = Filled(values=values, self_scores=self_scores, declared=dict(declared), info=dict(info),
                    evidence=evidence)
    return Sample(district or District(str(data.get("district", KBANG_NAME))), filled, slips)


# --- generated returns -------------------------------------------------------------------------------


def generate_sample(rulebook: Rulebook, district: District, rng: random.Random,
                    kinds: tuple[str, ...] = ()) -> Sample:
    """A plausible return for `district`, drawn from rng, carrying the slips and untidy forms in `kinds`."""
    unknown = [k for k in kinds if k not in _CRITERION_SLIPS and k not in _SUBTOTAL_SLIPS]
    if unknown:
        raise ValueError(f"unknown slip kinds {unknown}; use {', '.join(SLIP_KINDS + VALID_FORMS)}")
    draft = _Draft(rulebook, district, rng)
    for kind in kinds:
        if kind not in _SUBTOTAL_SLIPS:
            _CRITERION_SLIPS[kind](draft)
    draft.declare()
    for kind in kinds:
        if kind in _SUBTOTAL_SLIPS:
            _SUBTOTAL_SLIPS[kind](draft)
    return draft.sample()


def synthetic_districts(count: int) -> list[District]:
    """count made-up districts, "Huyện Mẫu 00001" ..., zero-padded so they sort in order."""
    if count < 1:
        raise SampleError(f"the number of sample districts must be at least 1, got {count}")
    width = max(5, len(str(count)))
    return [District(f"{SYNTHETIC_PREFIX} {i:0{width}d}") for i in range(1, count + 1)]


def build_samples(rulebook: Rulebook, districts: list[District] | None = None, count: int | None = None,
                  seed: int = DEFAULT_SEED) -> list[Sample]:
    """The returns write_samples writes, without writing them: Kbang from data, the others generated."""
    listed, _ = _sample_districts(districts, count)
    return [_make_sample(rulebook, job, seed) for job in _jobs(listed)]


def write_samples(rulebook: Rulebook, out_dir: str | Path, districts: list[District] | None = None,
                  count: int | None = None, seed: int = DEFAULT_SEED,
                  progress: Callable[[Path], None] | None = None, workers: int | None = None) -> SampleSet:
    """Write one filled-in template per district into out_dir.

    By default one per district of the default list (Kbang from its report, the others generated); with
    `count`, that many synthetic districts plus their list in out_dir/districts.txt. `progress` is called
    with each path as it is written. More than PARALLEL_ABOVE files are written by `workers` processes
    (default: one per CPU).
    """
    listed, synthetic = _sample_districts(districts, count)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TemplateError(f"không tạo được thư mục {out}: {exc.strerror or exc}; chọn thư mục khác bằng --out") from exc
    districts_file = _write_district_list(out, listed) if synthetic else None
    jobs = _jobs(listed)
    if workers is None:
        workers = 1 if len(jobs) <= PARALLEL_ABOVE else (os.cpu_count() or 1)
    paths: list[Path] = []
    samples: list[Sample] = []
    if workers <= 1:
        for job in jobs:
            path, sample = _write_job(rulebook, out, listed, seed, job)
            paths.append(path)
            samples.append(sample)
            if progress:
                progress(path)
    else:
        chunk = max(1, len(jobs) // (workers * 8))
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                 initargs=(rulebook, out, listed, seed)) as pool:
            for path, sample in pool.map(_run_worker_job, jobs, chunksize=chunk):
                paths.append(path)
                samples.append(sample)
                if progress:
                    progress(path)
    return SampleSet(paths, districts_file, samples)


# A job: (index in the district list, the district, its plan of slips or None for Kbang's real return).
_Job = tuple[int, District, tuple[str, ...] | None]


def _sample_districts(districts: list[District] | None, count: int | None) -> tuple[list[District], bool]:
    if count is not None:
        if districts is not None:
            raise SampleError("give either a district list or a count of synthetic districts, not both")
        return synthetic_districts(count), True
    return (list(districts) if districts is not None else load_districts()), False


def _jobs(districts: list[District]) -> list[_Job]:
    jobs: list[_Job] = []
    generated = 0
    kbang = district_key(KBANG_NAME)
    for i, d in enumerate(districts):
        if d.key == kbang:
            jobs.append((i, d, None))
        else:
            jobs.append((i, d, _PLANS[generated % len(_PLANS)]))
            generated += 1
    return jobs


def _make_sample(rb: Rulebook, job: _Job, seed: int) -> Sample:
    index, district, plan = job
    if plan is None:
        return load_kbang_sample(rb, district=district)
    return generate_sample(rb, district, random.Random(seed + index), plan)


def _write_job(rb: Rulebook, out: Path, listed: list[District], seed: int, job: _Job) -> tuple[Path, Sample]:
    sample = _make_sample(rb, job, seed)
    path = write_template(rb, out, sample.district, listed, filled=sample.filled,
                          file_name=template_file_name(rb, sample.district))
    return path, sample


_WORKER: tuple[Rulebook, Path, list[District], int] | None = None


def _init_worker(rb: Rulebook, out: Path, listed: list[District], seed: int) -> None:
    global _WORKER
    _WORKER = (rb, out, listed, seed)


def _run_worker_job(job: _Job) -> tuple[Path, Sample]:
    assert _WORKER is not None, "worker not initialised"
    rb, out, listed, seed = _WORKER
    return _write_job(rb, out, listed, seed, job)


def _write_district_list(out: Path, districts: list[District]) -> Path:
    """The synthetic districts, one per line, written atomically (load_districts reads it back)."""
    target = out / DISTRICTS_FILE
    text = "# Sample districts written by kbang_egov (python batch.py sample).\n"
    text += "".join(f"{d.name}\n" for d in districts)
    try:
        return write_atomically(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except OSError as exc:
        raise TemplateError(f"không ghi được {target}: {exc.strerror or exc}; tệp có đang mở trong Excel không?") from exc


# --- the generator ----------------------------------------------------------------------------------

# What a ratio's denominator counts, from its wording (compared without diacritics, lower case): the
# first rule whose words all occur wins. Next year's criteria fall back to a generic count.
_DENOMINATOR_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("x so xa",), "tthc_commune_all"),
    (("tong so ubnd cap xa",), "communes"),
    (("tham muu", "cap xa"), "communes"),
    (("chuyen trach cntt cap xa",), "communes"),
    (("chuyen trach cntt cap huyen",), "it_staff"),
    (("lanh dao cap xa",), "commune_leaders"),
    (("lanh dao ubnd huyen",), "leaders"),
    (("truong cac phong",), "heads"),
    (("buu dien van hoa",), "post_offices"),
    (("ho gia dinh",), "households"),
    (("dan so",), "population"),
    (("doanh nghiep",), "businesses"),
    (("tieu hoc",), "schools_primary"),
    (("thcs",), "schools_lower"),
    (("thpt",), "schools_upper"),
    (("don vi su nghiep",), "units"),
    (("vien chuc",), "civil_servants"),
    (("xa, phuong",), "staff_commune"),
    (("cap xa", "can bo cong chuc"), "staff_commune"),
    (("cap xa", "cbcc"), "staff_commune"),
    (("can bo cong chuc",), "staff_district"),
    (("cbcc",), "staff_district"),
    (("trieu tap",), "summons"),
    (("lay y kien",), "consultations"),
    (("ngay lam viec",), "working_days"),
    (("y kien",), "feedback"),
    (("cuoc hop cap tinh",), "meetings_province"),
    (("cuoc hop",), "meetings_commune"),
    (("ho so", "lien thong"), "linked_dossiers"),
    (("lien thong",), "linked_procedures"),
    (("tthc", "truc tuyen"), "online_procedures"),
    (("tthc cap xa",), "procedures_commune"),
    (("tthc",), "procedures_district"),
    (("ho so", "bcci"), "postal_dossiers"),
    (("ho so", "truc tuyen"), "online_dossiers"),
    (("ho so", "cap xa"), "dossiers_commune"),
    (("ho so",), "dossiers_district"),
    (("van ban", "cap xa"), "documents_from_communes"),
    (("van ban den",), "documents_in"),
    (("giao nhiem vu",), "assignments"),
    (("trinh",), "documents_submitted"),
    (("phong, ban",), "documents_out_offices"),
    (("van ban",), "documents_out"),
)

# Groups where full marks were rare in 2020 (online transactions and transformation).
_HARD_GROUPS = ("KQ.III", "KQ.IV")

_SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương",
             "Đinh", "Phan", "Trương", "Rơ Châm", "Ksor", "Siu", "Rah Lan", "Nay")
_MIDDLE = ("Văn", "Thị", "Đình", "Minh", "Hữu", "Thanh", "Ngọc", "Quốc", "Xuân", "Đức")
_GIVEN = ("An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hùng", "Hương", "Lan", "Linh", "Nam", "Phong", "Quang",
          "Sơn", "Thảo", "Trung", "Tuấn", "Vy", "Yến", "Khánh", "Hạnh", "Tâm", "Blưih", "Hlơi")
_STREETS = ("Hùng Vương", "Trần Hưng Đạo", "Lê Lợi", "Quang Trung", "Nguyễn Huệ", "Phan Đình Phùng",
            "Lý Thường Kiệt", "Hai Bà Trưng", "Trường Chinh", "Nguyễn Tất Thành")
_POSITIONS = ("Trưởng phòng", "Phó Trưởng phòng", "Chuyên viên")


class _Draft:
    """A return being made up: mutable while slips are applied, then frozen into a Sample."""

    def __init__(self, rb: Rulebook, district: District, rng: random.Random) -> None:
        self.rb = rb
        self.district = district
        self.rng = rng
        self.values: dict[str, dict[str, object]] = {}
        self.self_scores: dict[str, object] = {}
        self.evidence: dict[str, str] = {}
        self.declared: dict[str, object] = {}
        self.slips: list[Slip] = []
        self.used: set[str] = set()  # criteria already carrying a slip, so two never pile up on one
        self.figures = _district_figures(rng)
        self.info = _district_info(district, rng)
        for c in rb.criteria:
            self._fill(c)

    # clean figures

    def _fill(self, c: Criterion) -> None:
        rng = self.rng
        hard = c.group in _HARD_GROUPS
        if c.kind == "ratio":
            den = self.denominator(c)
            draw = rng.random()
            if draw < (0.35 if hard else 0.75):
                num = den
            elif hard and draw < 0.65:
                num = 0
            else:
                num = min(den, round(den * rng.uniform(0.02 if hard else 0.6, 0.7 if hard else 0.99)))
            self.set(c, numerator=num, denominator=den)
            if hard and 0 < num < den and rng.random() < 0.5:
                self.evidence[c.code] = f"{num}/{den}"
        elif c.kind in ("yesno", "choice"):
            best = max(c.options, key=lambda o: o.points)
            others = [o for o in c.options if o is not best]
            pick = best if rng.random() < (0.6 if hard else 0.88) or not others else rng.choice(others)
            self.set(c, value=pick.label)
            if c.group.startswith("SS.III") and pick is best:
                self.evidence[c.code] = (f"Quyết định số {rng.randint(50, 2900)}/QĐ-UBND "
                                         f"ngày {rng.randint(1, 28)}/{rng.randint(1, 10)}/{self.rb.year}")
        else:
            best = max(c.tiers, key=lambda t: t.points)
            others = [t for t in c.tiers if t is not best]
            tier = best if rng.random() < (0.6 if hard else 0.85) or not others else rng.choice(others)
            self.set(c, value=_value_in_tier(c, tier, rng))

    def denominator(self, c: Criterion) -> int:
        text = strip_diacritics(normalize_text(c.denominator or ""))
        for words, key in _DENOMINATOR_RULES:
            if all(w in text for w in words):
                return self.figures[key]
        return self.rng.randint(10, 500)

    def set(self, c: Criterion, **typed: object) -> float | None:
        """Type these figures for c and a self-score equal to the points they earn; return the points."""
        self.values[c.code] = dict(typed)
        points = self.points(c)
        if c.scored:
            self.self_scores[c.code] = points
        return points

    def points(self, c: Criterion) -> float | None:
        typed = self.values.get(c.code, {})
        score = score_criterion(c, CriterionInput(value=typed.get("value"), numerator=typed.get("numerator"),
                                                  denominator=typed.get("denominator")))
        return score.points if score.status == OK else None

    # picking where a slip goes

    def pick(self, *kinds: str, where: Callable[[Criterion], bool] | None = None) -> Criterion | None:
        """A random scored criterion of these kinds, not yet carrying a slip, satisfying `where`."""
        pool = [c for c in self.rb.scored_criteria if c.code not in self.used and (not kinds or c.kind in kinds)
                and (where is None or where(c))]
        if not pool:
            return None
        c = self.rng.choice(pool)
        self.used.add(c.code)
        return c

    def fractional_ratio(self) -> Criterion | None:
        """A ratio criterion with figures giving a score with decimals (0.85, not 1), for slips about decimals."""
        c = self.pick("ratio", where=lambda c: (self.points(c) or 0) not in (0, c.max))
        if c is None:
            c = self.pick("ratio")
            if c is None:
                return None
            den = max(20, self.denominator(c))
            self.set(c, numerator=round(den * self.rng.uniform(0.55, 0.95)), denominator=den)
            self.evidence.pop(c.code, None)
            if self.points(c) in (0, c.max):
                self.set(c, numerator=17, denominator=20)
        return c

    def slip(self, kind: str, code: str, typed: object = None) -> None:
        self.slips.append(Slip(kind, code, typed))

    # subtotals

    def declare(self) -> None:
        """Declared subtotals as a careful clerk adds them up from the self-scores."""
        rb = self.rb
        for part in rb.parts:
            for g in part.groups:
                self.declared[g.code] = _add(self.self_scores.get(c.code) for c in g.criteria)
            self.declared[part.code] = _add(self.declared[g.code] for g in part.groups)
        self.declared[rb.total_code] = _add(self.declared[p.code] for p in rb.parts)

    def redeclare_above(self, group_code: str | None = None) -> None:
        """After a wrong group or part total, the clerk carries it on: parts and total from what is declared."""
        rb = self.rb
        for part in rb.parts:
            if group_code and any(g.code == group_code for g in part.groups):
                self.declared[part.code] = _add(self.declared[g.code] for g in part.groups)
        self.declared[rb.total_code] = _add(self.declared[p.code] for p in rb.parts)

    def sample(self) -> Sample:
        self_scores = {k: v for k, v in self.self_scores.items() if v is not None}
        filled = Filled(values=self.values, self_scores=self_scores, declared=self.declared, info=self.info,
                        evidence=self.evidence)
        return Sample(self.district, filled, tuple(self.slips))


def _add(values: Iterable[object]) -> float:
    """The sum a clerk gets from typed scores ("0,85" counts as 0.85; blanks as 0), to 2 decimals."""
    total = Fraction(0)
    for v in values:
        if isinstance(v, str):
            v = float(v.strip().replace(",", "."))
        if v is not None:
            total += Fraction(repr(float(v)))
    return round_points(total)


def _district_figures(rng: random.Random) -> dict[str, int]:
    """The counts a district's ratios are taken of: communes, staff, households, documents, dossiers, ..."""
    communes = rng.randint(7, 20)
    households = rng.randint(9, 60) * 1000 + rng.randint(0, 999)
    procedures_commune = rng.randint(100, 130)
    dossiers_district = rng.randint(1500, 12000)
    return {
        "communes": communes,
        "commune_leaders": communes * 2,
        "staff_commune": communes * rng.randint(18, 24),
        "staff_district": rng.randint(60, 130),
        "civil_servants": rng.randint(40, 160),
        "it_staff": rng.randint(1, 3),
        "leaders": rng.randint(3, 5),
        "heads": rng.randint(12, 20),
        "units": rng.randint(5, 20),
        "post_offices": max(1, communes - rng.randint(0, 4)),
        "households": households,
        "population": round(households * rng.uniform(3.8, 4.6)),
        "businesses": rng.randint(60, 1500),
        "schools_primary": rng.randint(8, 40),
        "schools_lower": rng.randint(6, 25),
        "schools_upper": rng.randint(1, 6),
        "summons": rng.randint(4, 12),
        "consultations": rng.randint(5, 30),
        "working_days": rng.randint(245, 252),
        "feedback": rng.randint(10, 120),
        "meetings_commune": rng.randint(10, 50),
        "meetings_province": rng.randint(10, 50),
        "linked_dossiers": rng.randint(20, 400),
        "linked_procedures": rng.randint(5, 60),
        "online_procedures": rng.randint(20, 80),
        "procedures_commune": procedures_commune,
        "procedures_district": rng.randint(250, 330),
        "tthc_commune_all": procedures_commune * communes,
        "postal_dossiers": rng.randint(100, 2000),
        "online_dossiers": rng.randint(50, 3000),
        "dossiers_commune": rng.randint(4000, 30000),
        "dossiers_district": dossiers_district,
        "documents_from_communes": rng.randint(1500, 9000),
        "documents_in": rng.randint(2500, 15000),
        "assignments": rng.randint(100, 900),
        "documents_submitted": rng.randint(1500, 6000),
        "documents_out_offices": rng.randint(800, 5000),
        "documents_out": rng.randint(1200, 8000),
    }


def _district_info(district: District, rng: random.Random) -> dict[str, object]:
    """The information sheet: a plausible assessor with an official e-mail, address, report number and date."""
    surname, middle, given = rng.choice(_SURNAMES), rng.choice(_MIDDLE), rng.choice(_GIVEN)
    initials = "".join(w[0] for w in f"{surname} {middle}".split())
    place = ascii_slug(district.key).replace("_", "").lower()  # "chuse", as in chidd.kbang@gialai.gov.vn
    local = ascii_slug(f"{given}{initials}").replace("_", "").lower()
    words = district.name.split()
    n_prefix = max(0, len(words) - len(district.key.split()))
    where = " ".join([*(w.lower() for w in words[:n_prefix]), *words[n_prefix:]])  # "huyện Chư Sê"
    return {
        "unit_name": district.name,
        "address": f"{rng.randint(1, 250)} {rng.choice(_STREETS)}, {where}, tỉnh Gia Lai",
        "phone": f"02693.{rng.randint(800, 899)}.{rng.randint(100, 999)}",
        "assessor": f"{surname} {middle} {given}",
        "office": f"Phòng Văn hóa và Thông tin {where}",
        "position": rng.choice(_POSITIONS),
        "mobile": f"09{rng.randint(10000000, 99999999)}",
        "email": f"{local}.{place}@gialai.gov.vn",
        "report_number": f"{rng.randint(150, 650)}/BC-UBND",
        "report_date": dt.date(2020, 11, rng.randint(10, 30)),
    }


def _value_in_tier(c: Criterion, tier: Tier, rng: random.Random) -> float | int:
    """A figure inside the tier (and the value's range): whole numbers, percents to one decimal."""
    spec = c.value
    assert spec is not None
    step = Fraction(1, 10) if spec.unit == PERCENT_UNIT and not spec.integer else Fraction(1)
    lo = Fraction(repr(float(spec.min)))
    if tier.ge is not None:
        lo = max(lo, Fraction(repr(tier.ge)))
    if tier.gt is not None:
        lo = max(lo, Fraction(repr(tier.gt)) + step)
    hi = None if spec.max is None else Fraction(repr(float(spec.max)))
    if tier.le is not None:
        hi = Fraction(repr(tier.le)) if hi is None else min(hi, Fraction(repr(tier.le)))
    if tier.lt is not None:
        top = Fraction(repr(tier.lt)) - step
        hi = top if hi is None else min(hi, top)
    if hi is None:
        hi = lo + max(4, lo * 3)  # open-ended top tier: up to about four times its bound
    steps = int((hi - lo) / step)
    x = lo + step * rng.randint(0, max(0, steps))
    return int(x) if x.denominator == 1 else float(x)


# --- slips --------------------------------------------------------------------------------------------


def _self_score_wrong(d: _Draft) -> None:
    c = d.fractional_ratio()
    if c is not None:  # rounded or typed 0.01 off: 0.86 for 0.85
        points = d.points(c) or 0
        wrong = round_points(Fraction(repr(points)) + (Fraction(1, 100) if points < c.max else -Fraction(1, 100)))
        d.self_scores[c.code] = wrong
        d.slip(SELF_SCORE_WRONG, c.code, wrong)
    c = d.pick("yesno", "choice")
    if c is not None:  # the lowest option chosen, yet full points claimed
        worst = min(c.options, key=lambda o: o.points)
        d.set(c, value=worst.label)
        d.self_scores[c.code] = c.max
        d.slip(SELF_SCORE_WRONG, c.code, c.max)


def _self_score_missing(d: _Draft) -> None:
    c = d.pick()
    if c is not None:
        d.self_scores[c.code] = None
        d.slip(SELF_SCORE_MISSING, c.code)


def _input_missing(d: _Draft) -> None:
    c = d.pick()
    if c is None:
        return
    cell = d.rng.choice(("numerator", "denominator")) if c.kind == "ratio" else "value"
    d.values[c.code].pop(cell, None)  # the self-score stays: the clerk scored, then forgot the figure
    d.evidence.pop(c.code, None)
    d.slip(INPUT_MISSING, c.code, cell)


def _numerator_exceeds(d: _Draft) -> None:
    c = d.pick("ratio")
    if c is None:
        return
    den = max(2, d.denominator(c))
    num = den + d.rng.randint(1, max(1, den // 10))
    d.set(c, numerator=num, denominator=den)  # scores the capped maximum, as the clerk claims
    d.evidence.pop(c.code, None)
    d.slip(NUMERATOR_EXCEEDS, c.code, f"{num}/{den}")


def _option_unknown(d: _Draft) -> None:
    for _ in range(d.rng.randint(1, 2)):
        c = d.pick("yesno", "choice")
        if c is None:
            return
        label = str(d.values[c.code].get("value"))
        typed = f"Đã {label[:1].lower()}{label[1:]}"  # "Đã có": no label, with or without its marks
        d.values[c.code]["value"] = typed
        d.slip(OPTION_UNKNOWN, c.code, typed)


def _denominator_zero(d: _Draft) -> None:
    # Where "Không áp dụng" is refused (0 of 0 is an error there): no online dossier, say.
    c = d.pick("ratio", where=lambda c: not c.not_applicable and
               "ho so" in strip_diacritics(normalize_text(c.denominator or "")))
    c = c or d.pick("ratio", where=lambda c: not c.not_applicable)
    if c is not None:  # nothing received, so nothing to take a share of; the clerk scores it 0
        d.set(c, numerator=0, denominator=0)
        d.self_scores[c.code] = 0
        d.evidence[c.code] = "Không phát sinh hồ sơ"
        d.slip(DENOMINATOR_ZERO, c.code)


def _not_applicable(d: _Draft) -> None:
    for _ in range(2):
        c = d.pick(where=lambda c: c.not_applicable)  # only where the rulebook accepts it
        if c is None:
            return
        d.values[c.code] = {"value": NOT_APPLICABLE, "denominator": 0}  # its proof: nothing to count
        d.self_scores[c.code] = None
        d.evidence.pop(c.code, None)
        d.slip(NOT_APPLICABLE_CHOSEN, c.code, NOT_APPLICABLE)


def _decimal_comma(d: _Draft) -> None:
    c = d.fractional_ratio()
    if c is not None:
        typed = f"{d.points(c):.2f}".rstrip("0").replace(".", ",")
        d.self_scores[c.code] = typed
        d.slip(DECIMAL_COMMA, c.code, typed)
    c = d.pick("tiers", where=lambda c: c.value is not None and not c.value.integer and c.value.unit != PERCENT_UNIT)
    if c is not None:  # a budget typed "750,5"
        value = d.values[c.code].get("value")
        typed = f"{value},5"
        d.values[c.code]["value"] = typed
        d.self_scores[c.code] = score_criterion(c, CriterionInput(value=float(value) + 0.5)).points
        d.slip(DECIMAL_COMMA, c.code, typed)


def _percent_text(d: _Draft) -> None:
    c = d.pick("tiers", where=lambda c: c.value is not None and c.value.unit == PERCENT_UNIT)
    if c is not None:
        value = round(float(d.values[c.code]["value"]))
        d.set(c, value=value)
        typed = f"{value}%"
        d.values[c.code]["value"] = typed
        d.slip(PERCENT_TEXT, c.code, typed)


def _number_as_text(d: _Draft) -> None:
    for _ in range(d.rng.randint(1, 2)):
        c = d.pick("ratio")
        if c is None:
            return
        name = d.rng.choice(("numerator", "denominator"))
        typed = f" {d.values[c.code][name]} "
        d.values[c.code][name] = typed
        d.slip(NUMBER_AS_TEXT, c.code, typed)


def _relabel(kind: str, change: Callable[[str], str]) -> Callable[[_Draft], None]:
    def apply(d: _Draft) -> None:
        for _ in range(d.rng.randint(1, 3)):
            c = d.pick("yesno", "choice", where=lambda c: change(str(d.values[c.code].get("value"))) !=
                       str(d.values[c.code].get("value")))
            if c is None:
                return
            typed = change(str(d.values[c.code]["value"]))
            d.values[c.code]["value"] = typed
            d.slip(kind, c.code, typed)
    return apply


def _spaced(label: str) -> str:
    return f" {label.replace(' ', '  ', 1)} " if " " in label else f" {label}  "


def _ratio_in_evidence(d: _Draft) -> None:
    c = d.pick("ratio", where=lambda c: d.values[c.code].get("denominator"))
    if c is not None:
        typed = d.values[c.code]
        fraction = f"{typed.pop('numerator')}/{typed.pop('denominator')}"
        d.evidence[c.code] = fraction
        d.slip(RATIO_IN_EVIDENCE, c.code, fraction)


def _subtotal_wrong(d: _Draft) -> None:
    rb, rng = d.rb, d.rng
    part = rng.choice(rb.parts)
    if rng.random() < 0.5 and not float(d.declared[part.code]).is_integer():  # rounded, as Kbang's 54
        d.declared[part.code] = float(round(d.declared[part.code]))
        d.redeclare_above()
        d.slip(SUBTOTAL_WRONG, part.code, d.declared[part.code])
        return
    group = rng.choice(part.groups)
    delta = Fraction(rng.choice((-100, -50, -10, 10, 50, 100)), 100)
    value = Fraction(repr(float(d.declared[group.code]))) + delta
    if value < 0:
        value += 2 * abs(delta)
    d.declared[group.code] = round_points(value)
    d.redeclare_above(group.code)
    d.slip(SUBTOTAL_WRONG, group.code, d.declared[group.code])


def _total_results_only(d: _Draft) -> None:
    results = d.rb.parts[-1].code
    d.declared[d.rb.total_code] = d.declared[results]
    d.slip(TOTAL_RESULTS_ONLY, d.rb.total_code, d.declared[results])


_CRITERION_SLIPS: dict[str, Callable[[_Draft], None]] = {
    SELF_SCORE_WRONG: _self_score_wrong,
    SELF_SCORE_MISSING: _self_score_missing,
    INPUT_MISSING: _input_missing,
    NUMERATOR_EXCEEDS: _numerator_exceeds,
    OPTION_UNKNOWN: _option_unknown,
    DENOMINATOR_ZERO: _denominator_zero,
    NOT_APPLICABLE_CHOSEN: _not_applicable,
    DECIMAL_COMMA: _decimal_comma,
    PERCENT_TEXT: _percent_text,
    NUMBER_AS_TEXT: _number_as_text,
    LABEL_UPPER: _relabel(LABEL_UPPER, str.upper),
    LABEL_NFD: _relabel(LABEL_NFD, lambda s: unicodedata.normalize("NFD", s)),
    STRAY_SPACES: _relabel(STRAY_SPACES, _spaced),
    LABEL_ACCENTLESS: _relabel(LABEL_ACCENTLESS, lambda s: strip_diacritics(s).lower()),
    RATIO_IN_EVIDENCE: _ratio_in_evidence,
}
_SUBTOTAL_SLIPS: dict[str, Callable[[_Draft], None]] = {
    SUBTOTAL_WRONG: _subtotal_wrong,
    TOTAL_RESULTS_ONLY: _total_results_only,
}
