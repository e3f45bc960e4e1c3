"""The run's second pass: a feedback workbook for every return, written in isolated workers after ranking.

The parent never reads a return's bytes (a hostile file can crash the reader): each worker re-reads its
return through the inbox, the guard and the reader, checks it is the file that was scored (its SHA-256), and
writes DIR/feedback/PhanHoi_<template stem>.xlsx. A feedback that fails is a finding on that file
(`feedback-failed`), never a failed run. DIR/feedback/feedback.csv lists what was written, for the mail.
"""

from __future__ import annotations

import csv
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..reading.inbox import InputError, read_input
from ..reading.reader import read_sheets
from ..reporting.feedback import (
    NOT_SCORED,
    RANKED,
    SUPERSEDED,
    Figures,
    feedback_file_name,
    figures_for,
    write_feedback,
)
from ..rules import results
from ..rules.findings import Finding, make_finding
from ..rules.results import GROUP, DistrictResult
from ..rules.rulebook import Rulebook
from ..text import ascii_slug
from .isolation import DEFAULT_TIMEOUT, Failure, InlinePool, IsolatedPool, default_workers

FEEDBACK_DIR = "feedback"
FEEDBACK_CSV = "feedback.csv"
CSV_COLUMNS = ("district", "feedback_file", "source_file", "source_sha256", "status")


@dataclass(frozen=True)
class FeedbackJob:
    """One feedback workbook to write: what a worker needs, as plain picklable data."""

    path: str  # the return, absolute; "" when it is not read again
    file: str  # relative to the inbox, as findings name it
    sha256: str  # what was scored: a return changed since is not annotated
    target: str  # the feedback workbook, absolute
    findings: tuple[Finding, ...]
    figures: Figures


def province_medians(ranked: Sequence[DistrictResult]) -> dict[str, float]:
    """The median of the ranked districts' official points per group, part and the total (as the feedback's
    'Điểm chính thức': groups achieved, parts and total rescaled)."""
    by_code: dict[str, list[float]] = {}
    for r in ranked:
        for code, s in r.subtotals.items():
            by_code.setdefault(code, []).append(s.achieved if s.level == GROUP else s.scaled)
    return {code: float(statistics.median(v)) for code, v in by_code.items() if v}


def plan_feedback(outcomes: Sequence, rulebook: Rulebook, folder: Path, inbox: Path,
                  ranked: Sequence[DistrictResult], run_label: str = "", status_scored: str = RANKED,
                  ) -> tuple[list[FeedbackJob], list[dict]]:
    """The workbooks to write for a run's file outcomes (pipeline.FileOutcome), and feedback.csv's rows.

    One workbook per district that sent a return: the ranked one named after the district's template, a
    return that was not scored named after its district (or its own file name when no district was read);
    a superseded file gets a row and no workbook (the district's workbook is about the file that was used).
    status_scored is what a scored return's status says (CHECKED for `validate`, which ranks nothing).
    Only ranked returns are read again (for their cells): a file that was not scored, perhaps a hostile one,
    gets a short workbook saying why and what to do."""
    medians = province_medians(ranked)
    ranks = {r.district: r.rank for r in ranked}
    taken: set[str] = set()
    jobs: list[FeedbackJob] = []
    order = sorted(range(len(outcomes)), key=lambda i: outcomes[i].result is None)  # ranked returns name first
    planned: dict[int, tuple[FeedbackJob | None, dict]] = {}
    for i in order:
        o = outcomes[i]
        rec = o.record
        if rec.file.endswith("/"):  # an unreadable folder, not a return
            continue
        district = o.district.name if o.district is not None else rec.district
        if o.result is not None:
            status = status_scored
        elif rec.status == results.SUPERSEDED:
            status = SUPERSEDED
        else:
            status = NOT_SCORED
        row = {"district": district, "feedback_file": "", "source_file": rec.file, "source_sha256": rec.sha256,
               "status": status}
        if status == SUPERSEDED:
            planned[i] = (None, row)
            continue
        stem = (Path(_template_name(rulebook, o.district)).stem if o.district is not None
                else f"tep_{ascii_slug(Path(rec.file).stem)[:80]}")
        name = _unused(feedback_file_name(stem), taken)
        row["feedback_file"] = name
        figures = figures_for(o.result, rulebook, file=rec.file, district=district, status=status,
                              rank=ranks.get(district, 0) if status == RANKED else 0, ranked=len(ranked),
                              medians=medians, reason=rec.reason, run_label=run_label)
        reread = o.result is not None  # a file not scored gets a short feedback: why, and what to do
        jobs.append(FeedbackJob(str(inbox / rec.file) if reread else "", rec.file, rec.sha256,
                                str(folder / name), tuple(o.findings), figures))
        planned[i] = (jobs[-1], row)
    rows = [planned[i][1] for i in sorted(planned)]
    return jobs, rows


def _template_name(rulebook: Rulebook, district) -> str:  # noqa: ANN001 - District
    from ..forms.template import template_file_name

    return template_file_name(rulebook, district)


def _unused(name: str, taken: set[str]) -> str:
    """name, or name with _2, _3, ... before its suffix when another feedback has it (case aside)."""
    stem, n, candidate = name.removesuffix(".xlsx"), 2, name
    while candidate.casefold() in taken:
        candidate, n = f"{stem}_{n}.xlsx", n + 1
    taken.add(candidate.casefold())
    return candidate


def write_job(job: FeedbackJob) -> str:
    """In a worker: re-read the return and write its feedback; returns "" when written, else why not."""
    sheets = []
    findings = list(job.findings)
    if job.path:
        try:
            got = read_input(Path(job.path))
        except InputError as exc:
            return f"không đọc lại được tệp ({exc.params.get('reason', exc.code)})"
        from hashlib import sha256

        if sha256(got.data).hexdigest() != job.sha256:
            return "tệp đã thay đổi sau khi được chấm; lần chạy sau sẽ chấm và phản hồi bản mới"
        sheets, finding = read_sheets(got.data, job.file)
        if finding is not None:
            return f"không đọc lại được tệp ({finding.message})"
    write_feedback(job.target, sheets, findings, job.figures)
    return ""


def write_feedbacks(jobs: Sequence[FeedbackJob], rows: list[dict], folder: Path, *, workers: int | None = None,
                    timeout: float = DEFAULT_TIMEOUT,
                    progress: Callable[[int, int, str], None] | None = None,
                    csv_name: str | None = FEEDBACK_CSV, pool: IsolatedPool | InlinePool | None = None,
                    ) -> list[Finding]:
    """Write every job's workbook in isolated workers and feedback.csv; a job that fails leaves no workbook
    and becomes a `feedback-failed` finding, its row's feedback_file blank. The workers are the run's `pool`
    (its "feedback" task is feedback_task), else a pool of their own: new interpreters (spawned, so that each
    holds only what it imports, not this process's tables), or this process when workers is 0.
    csv_name=None writes no feedback.csv (validate)."""
    folder.mkdir(parents=True, exist_ok=True)
    if pool is None and jobs:
        own = (InlinePool({"feedback": feedback_task}) if workers == 0 else
               IsolatedPool({"feedback": feedback_task}, max(1, min(workers or default_workers(), len(jobs))),
                            fresh=True))
        with own:
            return write_feedbacks(jobs, rows, folder, timeout=timeout, progress=progress, csv_name=csv_name,
                                   pool=own)
    done_jobs = pool.map("feedback", list(jobs), timeout) if jobs else iter(())
    failed: list[Finding] = []
    reasons: dict[str, str] = {}
    for done, (k, got) in enumerate(done_jobs, 1):
        job = jobs[k]
        if isinstance(got, Failure):
            reason = f"{got.kind}: {_first_line(got.detail)}" if got.detail else got.kind
        else:
            reason = got
        if reason:
            reasons[Path(job.target).name] = reason
            Path(job.target).unlink(missing_ok=True)  # a half-written workbook is no feedback
            failed.append(make_finding("feedback-failed", job.file, district=job.figures.district, reason=reason))
        if progress is not None:
            progress(done, len(jobs), job.file)
    for row in rows:
        if row["feedback_file"] in reasons:
            row["feedback_file"] = ""
    if csv_name is not None:
        with open(folder / csv_name, "w", encoding="utf-8-sig", newline="") as fh:
            w = csv.DictWriter(fh, CSV_COLUMNS)
            w.writeheader()
            w.writerows(rows)
    return failed


def feedback_task(job: FeedbackJob) -> str:
    """write_job, an exception turned into its reason (the worker goes on with the next job)."""
    try:
        return write_job(job)
    except Exception as exc:  # noqa: BLE001 - one feedback must not stop the others
        return f"{type(exc).__name__}: {_first_line(str(exc))}"


_SPACES = re.compile(r"\s+")


def _first_line(text: str) -> str:
    return _SPACES.sub(" ", text.strip().splitlines()[-1] if text.strip() else "")[:200]
