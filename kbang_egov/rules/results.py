"""What a run produces, as plain data: per criterion, per subtotal, per district, per file, per run.

The pipeline fills these; the report writer and the CLI only read them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np

from .findings import ERROR, WARNING, Finding
from .scoring import DENOMINATOR_ZERO, INVALID, MISSING, NOT_APPLICABLE_STATUS, OK

# How a criterion's official score was obtained.
COMPUTED = "computed"  # from the district's raw figures, by the rule
TRUSTED = "self-score"  # inputs missing, self-score taken (--trust-self-scores)
ZERO = "zero"  # inputs missing or invalid: 0 points
NOT_APPLICABLE = "not-applicable"  # removed from the maximum

# Levels of a subtotal.
GROUP, PART, TOTAL = "group", "part", "total"

# Where a ranked district stands: no error left, or errors to correct (consequences and warnings aside).
COMPLETE, TO_CORRECT = "complete", "to-correct"

# What became of an input file.
SCORED = "scored"
REJECTED = "rejected"  # cannot be scored: unreadable, not the template, unknown district, ...
SUPERSEDED = "superseded"  # a newer file of the same district was scored

# Files in the input folder that are not read at all, and what the officer reads for each (the run summary
# and the workbook's run sheet both name them with these labels).
SKIP_LOCK, SKIP_HIDDEN, SKIP_OTHER, SKIP_OUTPUT = "lock", "hidden", "other", "output"
SKIPPED_VI = {SKIP_LOCK: "tệp khoá của Office", SKIP_HIDDEN: "tệp ẩn", SKIP_OTHER: "tệp không phải bảng tính",
              SKIP_OUTPUT: "tệp trong thư mục kết quả"}


@dataclass
class CriterionResult:
    code: str
    group: str
    part: str
    max: float
    score: float  # official points (0 when not applicable; see `source`)
    self_score: float | None  # as the district wrote it, None when blank or unreadable
    status: str  # scoring status: ok, not-applicable, missing, invalid, denominator-zero
    source: str  # COMPUTED, TRUSTED, ZERO or NOT_APPLICABLE
    detail: str = ""  # the matched option or tier, the fraction, or what was wrong
    row: int = 0  # 1-based sheet row, 0 when the row is missing

    @property
    def applicable(self) -> bool:
        return self.source != NOT_APPLICABLE

    @property
    def gap(self) -> float | None:
        """Self-score minus official score, rounded to 2 decimals; None without a self-score."""
        return None if self.self_score is None else round(self.self_score - self.score, 2)


# Scoring statuses, the order of CriterionTable's status column.
STATUSES = (OK, NOT_APPLICABLE_STATUS, MISSING, INVALID, DENOMINATOR_ZERO)
SOURCES = (COMPUTED, TRUSTED, ZERO, NOT_APPLICABLE)


@dataclass(frozen=True)
class CriterionFrame:
    """What a table of criterion results has in common across districts: the criteria, in order."""

    codes: tuple[str, ...]
    groups: tuple[str, ...]
    parts: tuple[str, ...]
    maxima: tuple[float, ...]


class CriterionTable(Sequence[CriterionResult]):
    """One district's criterion results as columns: a national run holds millions of results, and as objects
    they took 82 KB per district against about 6 KB here. Reads as a sequence of CriterionResult (made on
    access); tables.py reads the columns directly.
    """

    __slots__ = ("frame", "score", "self_score", "status", "source", "detail", "row")

    def __init__(self, frame: CriterionFrame, score: np.ndarray, self_score: np.ndarray, status: np.ndarray,
                 source: np.ndarray, detail: tuple[str, ...], row: np.ndarray) -> None:
        self.frame = frame
        self.score = score  # float64 official points
        self.self_score = self_score  # float64, nan where the district wrote none
        self.status = status  # uint8 index into STATUSES
        self.source = source  # uint8 index into SOURCES
        self.detail = detail  # the matched option or tier, the fraction, or what was wrong
        self.row = row  # int32 sheet row, 0 when missing

    @classmethod
    def of(cls, results: Sequence[CriterionResult]) -> CriterionTable:
        """The results as a table."""
        if isinstance(results, CriterionTable):
            return results
        return cls(
            CriterionFrame(tuple(r.code for r in results), tuple(r.group for r in results),
                           tuple(r.part for r in results), tuple(float(r.max) for r in results)),
            np.array([r.score for r in results], dtype=np.float64),
            np.array([np.nan if r.self_score is None else r.self_score for r in results], dtype=np.float64),
            np.array([_STATUS_INDEX[r.status] for r in results], dtype=np.uint8),
            np.array([_SOURCE_INDEX[r.source] for r in results], dtype=np.uint8),
            tuple(r.detail for r in results),
            np.array([r.row for r in results], dtype=np.int32),
        )

    @property
    def applicable(self) -> np.ndarray:
        return self.source != _SOURCE_INDEX[NOT_APPLICABLE]

    def __len__(self) -> int:
        return len(self.frame.codes)

    @overload
    def __getitem__(self, i: int) -> CriterionResult: ...
    @overload
    def __getitem__(self, i: slice) -> list[CriterionResult]: ...
    def __getitem__(self, i: int | slice) -> CriterionResult | list[CriterionResult]:
        if isinstance(i, slice):
            return self._results(self.detail, range(*i.indices(len(self))))
        return self._results(self.detail, (i,))[0]

    def __iter__(self) -> Iterator[CriterionResult]:
        return iter(self._results(self.detail, range(len(self))))

    def _results(self, detail: tuple[str, ...], ks: Sequence[int]) -> list[CriterionResult]:
        f = self.frame
        out = []
        for i in ks:
            own = float(self.self_score[i])
            out.append(CriterionResult(f.codes[i], f.groups[i], f.parts[i], f.maxima[i], float(self.score[i]),
                                       None if own != own else own, STATUSES[self.status[i]],
                                       SOURCES[self.source[i]], detail[i], int(self.row[i])))
        return out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CriterionTable | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CriterionTable({len(self)} criteria)"


_STATUS_INDEX = {s: i for i, s in enumerate(STATUSES)}
_SOURCE_INDEX = {s: i for i, s in enumerate(SOURCES)}


@dataclass
class SubtotalResult:
    """A group, a part or the grand total of one district."""

    code: str
    level: str  # GROUP, PART or TOTAL
    max: float  # full maximum from the rulebook
    applicable_max: float  # maximum without the criteria marked not applicable
    achieved: float  # sum of official criterion scores
    scaled: float  # official subtotal: parts rescaled to the full maximum, total = sum of scaled parts
    self_sum: float  # the district's own arithmetic: its declared subtotals one level down, else its self-scores
    declared: float | None  # the subtotal the district wrote, None when blank or unreadable
    cell: str = ""  # A1 of the declared subtotal
    below: tuple[str, ...] = ()  # codes of the subtotals one level down (groups of a part, parts of the total)

    @property
    def gap(self) -> float | None:
        """Declared minus the recomputed sum, rounded to 2 decimals. Against `achieved`, not `scaled`: the
        district declares the plain sum, so a rescaled part is not a slip."""
        return None if self.declared is None else round(self.declared - self.achieved, 2)


@dataclass
class DistrictResult:
    district: str  # the listed name, "Huyện Kbang"
    file: str  # relative to the input folder
    sheet: str  # the criteria sheet's name as found
    criteria: CriterionTable  # a list of CriterionResult is turned into one
    subtotals: dict[str, SubtotalResult]  # by code: groups, parts, the total
    findings: list[Finding] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=dict)  # information sheet, by layout.INFO_FIELDS name
    rank: int = 0
    part_ranks: dict[str, int] = field(default_factory=dict)  # by part code

    def __post_init__(self) -> None:
        self.criteria = CriterionTable.of(self.criteria)

    @property
    def total(self) -> SubtotalResult:
        return next(s for s in self.subtotals.values() if s.level == TOTAL)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def errors(self) -> int:
        return self.count(ERROR)

    @property
    def warnings(self) -> int:
        return self.count(WARNING)

    @property
    def status(self) -> str:
        """COMPLETE when no error is left, else TO_CORRECT (see `errors` for how many)."""
        return TO_CORRECT if self.errors else COMPLETE

    @property
    def not_applicable(self) -> int:
        """How many criteria were taken out as not applicable (accepted by the rulebook)."""
        return int((~self.criteria.applicable).sum())

    @property
    def max_removed(self) -> float:
        """The maximum those criteria took out of the total."""
        t = self.total
        return round(t.max - t.applicable_max, 2)


@dataclass
class FileRecord:
    """One input file and what became of it."""

    file: str  # relative to the input folder
    sha256: str
    size: int
    modified: dt.datetime
    status: str  # SCORED, REJECTED or SUPERSEDED
    district: str = ""  # the listed district, or the name the file gives when it is not on the list
    reason: str = ""  # for REJECTED and SUPERSEDED: the message of the finding that decided it
    codes: tuple[str, ...] = ()  # finding codes that rejected the file
    seconds: float = 0.0  # time spent reading and checking it
    modified_ns: int = 0  # the modification time to the nanosecond: two returns saved in one second differ


@dataclass
class Comparison:
    """What tonight's ranking is compared with: the previous run in DIR's history.sqlite, or a baseline file
    (last year's ranking). By listed district name; a district absent from it has no previous rank."""

    label: str  # in Vietnamese, for the workbook and the summary: "lần chạy trước (...)", "tệp so sánh ..."
    source: str  # "history" or "baseline"
    reference: str  # the previous run's id, or the baseline file's path
    ranks: dict[str, int | None] = field(default_factory=dict)
    totals: dict[str, float | None] = field(default_factory=dict)
    parts: dict[str, dict[str, float]] = field(default_factory=dict)  # district -> part code -> scaled points


@dataclass
class RunResult:
    started: dt.datetime
    finished: dt.datetime
    input_dir: str
    rulebook_id: str
    rulebook_version: str
    rulebook_hash: str
    tool_version: str
    trust_self_scores: bool
    districts: list[DistrictResult]  # scored, ranked (rank 1 first)
    files: list[FileRecord]  # every input file, in path order
    findings: list[Finding]  # every finding, files in path order
    not_submitted: list[str]  # listed districts without a scored submission
    # why a district among them is there though a file of its was read (a blank template sent back)
    not_submitted_notes: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # {"lock": n, "hidden": n}
    outputs: list[str] = field(default_factory=list)  # paths written
    history: list[str] = field(default_factory=list)  # dated copies kept under DIR/history
    log: str = ""  # the run's log under DIR/logs
    notices: list[str] = field(default_factory=list)  # what the operator should know (stale lock, fallback)
    timings: dict[str, float] = field(default_factory=dict)  # seconds by phase
    run_id: str = ""  # names the run's folder under DIR/runs and its manifest
    comparison: Comparison | None = None  # what previous_rank and rank_change are against
    province: str = ""  # from the officer's settings, for the overview ("" when not set)
    year: int | None = None
    deadline: dt.date | None = None
    feedback_written: int = 0  # feedback workbooks written by this run
    feedback_reused: int = 0  # copied unchanged from the previous run's (their content key is the same)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def codes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.code] = out.get(f.code, 0) + 1
        return dict(sorted(out.items()))
