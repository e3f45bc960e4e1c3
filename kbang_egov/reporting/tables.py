"""The run's tables as pandas DataFrames, built from its results: files, scores (long form), subtotals,
ranking, findings, criterion statistics and the detail matrix. The report writer writes the CSVs and the
workbook's sheets from these frames; nothing is scored or ranked here (scoring.py scores, ranking.py ranks).

Values stay raw (floats, NaN where there is none); how a CSV or a cell shows them is the writer's business.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from itertools import chain

import numpy as np
import pandas as pd

from ..rules.results import COMPLETE, NOT_APPLICABLE, SCORED, SOURCES, STATUSES, FileRecord, RunResult
from ..rules.rulebook import Part, Rulebook, format_points_vi
from ..rules.scoring import DENOMINATOR_ZERO, OK

SCORES_COLUMNS = ("district", "code", "self_score", "score", "max", "gap", "source", "status", "detail",
                  "group", "part", "file", "row")
FINDINGS_COLUMNS = ("file", "sheet", "cell", "district", "code", "finding", "severity", "message", "follows")
FILES_COLUMNS = tuple(f.name for f in dataclasses.fields(FileRecord))
SUBTOTALS_COLUMNS = ("position", "district", "code", "level", "max", "applicable_max", "achieved", "scaled",
                     "self_sum", "declared", "gap")
STATS_COLUMNS = ("code", "name", "group", "max", "full", "partial", "zero", "not_applicable", "mean",
                 "self_wrong")
SELF, OFFICIAL = "self_score", "official"  # the two columns of each criterion in the detail matrix

NEAR = 0.005  # two scores closer than this are the same score: officials read them to 2 decimals
NOT_APPLICABLE_SHORT = "KAD"  # "Không áp dụng", as the template's list names it

# English column names of ranking.csv for the bundled rulebook's parts; others use the code in lower case.
_PART_COLUMN = {"SS": "readiness", "KQ": "results"}


@dataclasses.dataclass
class RunTables:
    """Every table of a run, built once for the workbook and the CSVs."""

    files: pd.DataFrame
    scores: pd.DataFrame
    ranking: pd.DataFrame
    findings: pd.DataFrame
    stats: pd.DataFrame
    detail: pd.DataFrame
    changes: pd.DataFrame


def run_tables(run: RunResult, rb: Rulebook) -> RunTables:
    """All of a run's tables; the statistics and the detail matrix are derived from the long scores."""
    scores = scores_frame(run, rb)
    ranking = ranking_frame(run, rb)
    return RunTables(files_frame(run), scores, ranking, findings_frame(run), criterion_stats_frame(scores, rb),
                     detail_frame(scores, run, rb), changes_frame(ranking, run, rb))


def criteria_frame(rb: Rulebook) -> pd.DataFrame:
    """The scored criteria in rulebook order: code, name, group, part, max."""
    return pd.DataFrame([(c.code, c.name, c.group, c.part, float(c.max)) for c in rb.scored_criteria],
                        columns=["code", "name", "group", "part", "max"])


def files_frame(run: RunResult) -> pd.DataFrame:
    """One row per input file, in path order, with what became of it (FileRecord's fields)."""
    return pd.DataFrame([[getattr(f, c) for c in FILES_COLUMNS] for f in run.files], columns=list(FILES_COLUMNS))


def findings_frame(run: RunResult) -> pd.DataFrame:
    """One row per finding, files in path order: the columns of findings.csv."""
    return pd.DataFrame([list(f.record().values()) for f in run.findings], columns=list(FINDINGS_COLUMNS))


def scores_frame(run: RunResult, rb: Rulebook) -> pd.DataFrame:
    """One row per ranked district and scored criterion, in rank then rulebook order: the columns of
    scores.csv, and `position`, the district's place in run.districts. A criterion missing from a
    district's results has a row with its code, maximum, group and part only.

    Text that repeats (district, code, group, part, source, status, file) is categorical: a national run
    has millions of rows here."""
    criteria = criteria_frame(rb)
    codes = tuple(criteria["code"])
    tables = [d.criteria for d in run.districts]
    sizes = [len(t) for t in tables]
    positions = np.repeat(np.arange(len(tables)), sizes)

    def joined(column: str, dtype: type) -> np.ndarray:
        return np.concatenate([getattr(t, column) for t in tables] or [np.empty(0, dtype)])

    long = pd.DataFrame({
        "position": positions,
        "code": pd.Categorical(list(chain.from_iterable(t.frame.codes for t in tables)), categories=codes),
        "self_score": joined("self_score", np.float64),
        "score": joined("score", np.float64),
        "source": pd.Categorical.from_codes(joined("source", np.uint8), categories=SOURCES),
        "status": pd.Categorical.from_codes(joined("status", np.uint8), categories=STATUSES),
        "detail": np.array(list(chain.from_iterable(t.detail for t in tables)), dtype=object),
        "row": joined("row", np.int32),
    })
    if any(t.frame.codes != codes for t in tables):
        # A district whose results come in another order or short of a criterion: placed by code.
        grid = pd.MultiIndex.from_product([range(len(tables)), criteria["code"].astype(long["code"].dtype)],
                                          names=["position", "code"])
        long = long.dropna(subset=["code"]).set_index(["position", "code"]).reindex(grid).reset_index()
    by_code = criteria.set_index("code")
    at = long["position"].to_numpy()
    return long.assign(
        district=pd.Categorical([d.district for d in run.districts])[at],
        max=long["code"].map(by_code["max"]).astype(float),
        gap=(long["self_score"] - long["score"]).round(2),
        group=long["code"].map(by_code["group"]).astype("category"),
        part=long["code"].map(by_code["part"]).astype("category"),
        file=pd.Categorical([d.file for d in run.districts])[at],
        row=long["row"].where(long["row"] > 0),  # 0: the row is missing
    )[["position", *SCORES_COLUMNS]]


def subtotals_frame(run: RunResult) -> pd.DataFrame:
    """One row per ranked district and subtotal (groups, parts, the total), in rank then rulebook order."""
    rows = [(i, d.district, s.code, s.level, s.max, s.applicable_max, s.achieved, s.scaled, s.self_sum,
             s.declared, s.gap) for i, d in enumerate(run.districts) for s in d.subtotals.values()]
    return pd.DataFrame(rows, columns=list(SUBTOTALS_COLUMNS))


def part_column(part: Part) -> str:
    """The English column name of a part in ranking.csv: readiness, results, or the code in lower case."""
    return _PART_COLUMN.get(part.code, part.code.lower())


def ranking_columns(rulebook: Rulebook) -> tuple[str, ...]:
    """The header of ranking.csv: parts and groups follow the rulebook, so next year's file needs no code change.

    Parts and total are rescaled where criteria are not applicable (the ranking's figures); plain_total and
    the groups are plain sums of the official scores, and the declared total compares with plain_total."""
    parts = [part_column(p) for p in rulebook.parts]
    return ("rank", "district", *parts, "total", "plain_total", "declared_total", "gap",
            *(f"rank_{p}" for p in parts), "previous_rank", "rank_change", *(g.code for g in rulebook.groups), "not_applicable", "max_removed",
            "status", "errors", "warnings", "file")


def ranking_frame(run: RunResult, rb: Rulebook) -> pd.DataFrame:
    """One row per ranked district in rank order (ranking.py ranked them), the columns of ranking.csv:
    parts and total rescaled, groups and plain_total plain sums, from the subtotals by pivot."""
    districts = run.districts
    codes = [rb.total_code, *(p.code for p in rb.parts), *(g.code for g in rb.groups)]
    wide = (subtotals_frame(run)
            .pivot(index="position", columns="code", values=["scaled", "achieved", "declared", "gap", "max",
                                                             "applicable_max"])
            .reindex(index=range(len(districts)),
                     columns=pd.MultiIndex.from_product([["scaled", "achieved", "declared", "gap", "max",
                                                          "applicable_max"], codes])))
    total = rb.total_code
    frame = pd.DataFrame({"rank": pd.Series([d.rank or None for d in districts], dtype="float64"),
                          "district": pd.Series([d.district for d in districts], dtype=object)})
    for p in rb.parts:
        frame[part_column(p)] = wide["scaled", p.code]
    frame["total"] = wide["scaled", total]
    frame["plain_total"] = wide["achieved", total]
    frame["declared_total"] = wide["declared", total]
    frame["gap"] = wide["gap", total]
    for p in rb.parts:
        frame[f"rank_{part_column(p)}"] = pd.Series([d.part_ranks.get(p.code) for d in districts], dtype="float64")
    previous = run.comparison.ranks if run.comparison is not None else {}
    frame["previous_rank"] = pd.Series([previous.get(d.district) for d in districts], dtype="float64")
    frame["rank_change"] = frame["previous_rank"] - frame["rank"]  # moving up is positive
    for g in rb.groups:
        frame[g.code] = wide["achieved", g.code]
    frame["not_applicable"] = [d.not_applicable for d in districts]
    frame["max_removed"] = (wide["max", total] - wide["applicable_max", total]).round(2)
    frame["status"] = [d.status for d in districts]
    frame["errors"] = [d.errors for d in districts]
    frame["warnings"] = [d.warnings for d in districts]
    frame["file"] = pd.Series([d.file for d in districts], dtype=object)
    return frame[list(ranking_columns(rb))]


def criterion_stats_frame(scores: pd.DataFrame, rb: Rulebook) -> pd.DataFrame:
    """Per scored criterion, in rulebook order: how many districts got full, partial or no points, took it
    out as not applicable, or self-scored it wrong, and the mean points where it applies (by groupby over
    the long scores)."""
    present = scores["source"].notna()
    applicable = present & (scores["source"] != NOT_APPLICABLE)
    near_max = scores["score"] >= scores["max"] - NEAR
    flags = pd.DataFrame({
        "code": scores["code"],
        "present": present,
        "applicable": applicable,
        "full": applicable & near_max,
        "zero": applicable & (scores["score"] < NEAR) & ~near_max,
        # As the checks flag it (self-score-mismatch): where the inputs were scored, or were 0 of 0 on a
        # criterion that may not apply. A missing or refused input is its own finding, not a wrong self-score.
        "self_wrong": present & ((scores["status"] == OK)
                                 | (scores["status"] == DENOMINATOR_ZERO) & (scores["source"] == NOT_APPLICABLE))
                      & ((scores["self_score"] - scores["score"]).abs() > NEAR),
        "points": scores["score"].where(applicable),
    })
    by_code = flags.groupby("code", observed=False)
    counts = by_code[["present", "applicable", "full", "zero", "self_wrong"]].sum()
    stats = criteria_frame(rb).set_index("code").join(counts).join(by_code["points"].mean().rename("mean"))
    stats["partial"] = stats["applicable"] - stats["full"] - stats["zero"]
    stats["not_applicable"] = stats["present"] - stats["applicable"]
    return stats.reset_index()[list(STATS_COLUMNS)]


def detail_frame(scores: pd.DataFrame, run: RunResult, rb: Rulebook) -> pd.DataFrame:
    """The detail matrix, one row per ranked district in rank order: rank, district, then for every scored
    criterion its self-score and its official score (KAD where not applicable, blank without a result),
    pivoted from the long scores. Columns: rank, district, (code, SELF), (code, OFFICIAL), ..."""
    official = scores["score"].astype(object).where(scores["source"] != NOT_APPLICABLE, NOT_APPLICABLE_SHORT)
    codes = [c.code for c in rb.scored_criteria]
    wide = (scores.assign(**{OFFICIAL: official})
            .pivot(index="position", columns="code", values=[SELF, OFFICIAL])
            .swaplevel(axis=1)
            .reindex(index=range(len(run.districts)),
                     columns=pd.MultiIndex.from_tuples([(c, v) for c in codes for v in (SELF, OFFICIAL)])))
    head = pd.DataFrame({("rank", ""): pd.Series([d.rank or None for d in run.districts], dtype="float64"),
                         ("district", ""): pd.Series([d.district for d in run.districts], dtype=object)})
    return pd.concat([head, wide], axis=1)



def changes_frame(ranking: pd.DataFrame, run: RunResult, rb: Rulebook) -> pd.DataFrame:
    """The `Diễn biến` table: every district ranked tonight (rank order) or in the comparison (then by its
    previous rank), with its rank, total and parts before and now and the change (now minus before; for the
    rank, before minus now, so moving up is positive). Empty without a comparison."""
    parts = [(p.code, part_column(p)) for p in rb.parts]
    columns = ["district", "previous_rank", "rank", "rank_change", "previous_total", "total", "total_change"]
    for _, name in parts:
        columns += [f"previous_{name}", name, f"{name}_change"]
    cmp = run.comparison
    if cmp is None:
        return pd.DataFrame(columns=columns)
    now = list(ranking["district"])
    gone = sorted((d for d in cmp.ranks if d not in set(now)),
                  key=lambda d: (cmp.ranks[d] is None, cmp.ranks[d] or 0, d))
    frame = pd.DataFrame({"district": pd.Series(now + gone, dtype=object)})
    current = ranking.set_index("district")
    frame["previous_rank"] = pd.Series([cmp.ranks.get(d) for d in frame["district"]], dtype="float64")
    frame["rank"] = frame["district"].map(current["rank"]).astype("float64")
    frame["rank_change"] = frame["previous_rank"] - frame["rank"]
    frame["previous_total"] = pd.Series([cmp.totals.get(d) for d in frame["district"]], dtype="float64")
    frame["total"] = frame["district"].map(current["total"]).astype("float64")
    frame["total_change"] = (frame["total"] - frame["previous_total"]).round(2)
    for code, name in parts:
        frame[f"previous_{name}"] = pd.Series([cmp.parts.get(d, {}).get(code) for d in frame["district"]],
                                              dtype="float64")
        frame[name] = frame["district"].map(current[name]).astype("float64")
        frame[f"{name}_change"] = (frame[name] - frame[f"previous_{name}"]).round(2)
    return frame[columns]


@dataclasses.dataclass(frozen=True)
class Overview:
    """The figures of `Tổng quan` and of the run summary, computed once so both say the same."""

    expected: int  # districts on the list
    received: int  # ranked tonight
    not_submitted: tuple[str, ...]
    complete: int  # ranked with no error left
    to_correct: int
    deadline: dt.date | None  # from the settings; None when not set
    late: tuple[tuple[str, dt.datetime], ...]  # ranked returns saved after the deadline's day: (district, time)
    best: tuple[tuple[str, float], ...]  # rank 1 (ties share it)
    weakest: tuple[tuple[str, float], ...]  # the last rank
    files_not_scored: int


def overview(run: RunResult) -> Overview:
    """What the director reads first: returns against the list, complete or to correct, late, best, weakest.

    Late is a ranked return whose file was last modified after the end of the deadline's day (local time):
    the mail collector sets a saved attachment's time to the message's Date, so it holds for mailed returns."""
    by_file = {f.file: f for f in run.files}
    late: list[tuple[str, dt.datetime]] = []
    if run.deadline is not None:
        end = dt.datetime.combine(run.deadline, dt.time.max).timestamp()
        for d in run.districts:
            record = by_file.get(d.file)
            if record is not None and record.modified_ns / 1e9 > end:
                late.append((d.district, record.modified))
    totals = [(d.district, d.total.scaled, d.rank) for d in run.districts]
    last = max((r for _, _, r in totals), default=None)
    return Overview(
        expected=len(run.districts) + len(run.not_submitted), received=len(run.districts),
        not_submitted=tuple(run.not_submitted),
        complete=sum(1 for d in run.districts if d.status == COMPLETE),
        to_correct=sum(1 for d in run.districts if d.status != COMPLETE),
        deadline=run.deadline, late=tuple(late),
        best=tuple((n, s) for n, s, r in totals if r == 1),
        weakest=tuple((n, s) for n, s, r in totals if r == last and last != 1),
        files_not_scored=sum(1 for f in run.files if f.status != SCORED))


NOT_SET_VI = "chưa đặt (khai báo {key} trong tệp cấu hình --settings)"
NO_COMPARISON_VI = "chưa có lần chạy trước để so sánh"
NAMES_LISTED = 30  # names listed in one fact; a national list has thousands, the sheets have them all


def overview_facts(run: RunResult, default_year: int | None = None, view: Overview | None = None
                   ) -> list[tuple[str, object, bool]]:
    """The overview as (label, value, known) in the order `Tổng quan` shows them and the summary prints
    them: one wording for both. `known` is False where the settings do not say (shown as such); the year
    is the settings', else default_year (the rulebook's)."""
    view = view if view is not None else overview(run)
    notes = run.not_submitted_notes
    late = "; ".join(f"{n} (tệp sửa lúc {when:%d/%m/%Y %H:%M})" for n, when in view.late[:NAMES_LISTED])
    return [
        ("Tỉnh", run.province or NOT_SET_VI.format(key="province"), bool(run.province)),
        ("Năm đánh giá", run.year or default_year, True),
        ("Bộ tiêu chí", f"{run.rulebook_id} {run.rulebook_version}", True),
        ("Thời gian chạy", run.started, True),
        ("Mã lần chạy", run.run_id, True),
        ("Số đơn vị đã nộp", f"{view.received}/{view.expected}", True),
        ("Chưa nộp", _listed([f"{n} ({notes[n]})" if n in notes else n for n in view.not_submitted]) or "Không",
         True),
        ("Hoàn chỉnh", view.complete, True),
        ("Cần sửa", view.to_correct, True),
        ("Tệp không chấm được", view.files_not_scored, True),
        ("Hạn nộp", f"{view.deadline:%d/%m/%Y}" if view.deadline else NOT_SET_VI.format(key="deadline"),
         view.deadline is not None),
        ("Nộp muộn", (late + _more(len(view.late)) or "Không") if view.deadline else "chưa biết: chưa đặt hạn nộp",
         view.deadline is not None),
        ("Cao nhất", _listed([f"{n} ({format_points_vi(s)} điểm)" for n, s in view.best]), True),
        ("Thấp nhất", _listed([f"{n} ({format_points_vi(s)} điểm)" for n, s in view.weakest]), True),
        ("So sánh hạng với", run.comparison.label if run.comparison else NO_COMPARISON_VI, True),
    ]


def _listed(items: list[str]) -> str:
    return "; ".join(items[:NAMES_LISTED]) + _more(len(items))


def _more(count: int) -> str:
    return f" và {count - NAMES_LISTED} đơn vị khác" if count > NAMES_LISTED else ""
