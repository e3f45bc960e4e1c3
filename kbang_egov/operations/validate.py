"""Checking returns before they are sent: the batch's own reading and checks on one or more files, each in an
isolated worker, with no ranking and no output folder. The files are only read; the one thing written is the
annotated copy (the feedback workbook) when asked for.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..reporting.feedback import CHECKED
from ..rules.districts import District
from ..rules.findings import ERROR, WARNING, Finding
from ..rules.results import SCORED
from ..rules.rulebook import Rulebook, format_points_vi
from .feedback_pass import plan_feedback, write_feedbacks
from .isolation import DEFAULT_TIMEOUT, InlinePool, IsolatedPool, open_pool
from .pipeline import FileOutcome, read_files, run_tasks

# A return's verdict: nothing to fix, only warnings to look at, errors to correct, or not scored at all.
OK, TO_LOOK, TO_FIX, NOT_SCORED = "ok", "warnings", "errors", "not-scored"
VERDICT_VI = {OK: "ĐẠT", TO_LOOK: "NÊN XEM LẠI", TO_FIX: "CẦN SỬA", NOT_SCORED: "KHÔNG CHẤM ĐƯỢC"}


class FeedbackPathError(ValueError):
    """--feedback names a place the annotated copies cannot go (an input file, a file for several)."""


@dataclass
class Validated:
    """One return as the batch would see it, alone."""

    file: str  # as findings name it (relative to the files' common folder)
    district: str
    status: str  # OK, TO_LOOK, TO_FIX or NOT_SCORED
    findings: list[Finding]
    total: float | None  # the official total (rescaled), None when not scored
    total_max: float
    reason: str = ""  # why it was not scored
    feedback: str = ""  # the annotated copy written, or ""

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == WARNING)

    def verdict(self) -> str:
        """One line, in Vietnamese."""
        head = f"{self.file}: {VERDICT_VI[self.status]}"
        if self.status == NOT_SCORED:
            return f"{head}: {self.reason or 'tệp không được chấm'}"
        score = f"điểm tính lại {format_points_vi(round(self.total or 0, 2))}/{format_points_vi(self.total_max)}"
        if self.status == OK:
            return f"{head}: {self.district}, không có sai lệch; {score}. Có thể gửi."
        return (f"{head}: {self.district}, {self.errors} lỗi, {self.warnings} cảnh báo; {score}. "
                + ("Sửa các lỗi rồi kiểm tra lại trước khi gửi." if self.status == TO_FIX
                   else "Xem các cảnh báo; có thể gửi."))

    def record(self) -> dict:
        """What --json prints for the file."""
        return {"file": self.file, "district": self.district, "status": self.status, "verdict": self.verdict(),
                "errors": self.errors, "warnings": self.warnings, "total": self.total, "total_max": self.total_max,
                "feedback": self.feedback, "findings": [f.record() for f in self.findings]}


def validate_files(paths: Sequence[Path], rulebook: Rulebook, districts: list[District], *,
                   feedback: Path | None = None, workers: int | None = None,
                   timeout: float = DEFAULT_TIMEOUT) -> list[Validated]:
    """Read and check each file as the batch does (process_file, in isolated workers; workers=0 in this
    process) and, with `feedback`, write each one's annotated copy: a file path for one return, a folder
    (created when missing) for several. FeedbackPathError when that place is an input file or a file for
    several returns; OSError when it cannot be written."""
    paths = [Path(p) for p in paths]
    root = Path(os.path.commonpath([p.resolve().parent for p in paths]))
    targets = _feedback_targets(paths, feedback) if feedback is not None else None
    with open_pool(run_tasks(rulebook, districts), workers, len(paths)) as pool:  # one pool for both passes
        outcomes = read_files([p.resolve() for p in paths], root, rulebook, districts, file_timeout=timeout,
                              pool=pool)
        done = [_validated(o, rulebook) for o in outcomes]
        if targets is not None:
            _write_feedbacks(done, outcomes, targets, paths, rulebook, root, timeout, pool)
    return done


def _write_feedbacks(done: list[Validated], outcomes: list[FileOutcome], targets: tuple[Path, Path | None],
                     paths: list[Path], rulebook: Rulebook, root: Path, timeout: float,
                     pool: IsolatedPool | InlinePool) -> None:
    """Each return's annotated copy at its target; a copy that fails becomes its file's finding."""
    folder, named = targets
    jobs, rows = plan_feedback(outcomes, rulebook, folder, root, [], status_scored=CHECKED)
    if named is not None:  # one return, its copy at the path given
        jobs = [dataclasses.replace(job, target=str(named)) for job in jobs]
    inputs = {os.path.realpath(p) for p in paths}
    clash = [job.target for job in jobs if os.path.realpath(job.target) in inputs]
    if clash:
        raise FeedbackPathError(f"{clash[0]} is one of the returns; give the annotated copies another folder")
    folder.mkdir(parents=True, exist_ok=True)
    failed = write_feedbacks(jobs, rows, folder, timeout=timeout, csv_name=None, pool=pool)
    by_file = {f.file: f for f in failed}
    written = {job.file: job.target for job in jobs}
    for v in done:
        if v.file in by_file:
            v.findings.append(by_file[v.file])
            v.status = _status(v.findings, scored=v.total is not None)
        else:
            v.feedback = written.get(v.file, "")


def _feedback_targets(paths: list[Path], feedback: Path) -> tuple[Path, Path | None]:
    """(folder, file path or None) for the annotated copies; refuses to write over an input."""
    inputs = {os.path.realpath(p) for p in paths}
    if len(paths) == 1 and not feedback.is_dir():
        if os.path.realpath(feedback) in inputs:
            raise FeedbackPathError(f"{feedback} is the return itself; give the annotated copy another name")
        if feedback.suffix.lower() != ".xlsx":
            raise FeedbackPathError(f"{feedback}: the annotated copy is an .xlsx workbook; end its name with .xlsx")
        return feedback.parent, feedback
    if feedback.exists() and not feedback.is_dir():
        raise FeedbackPathError(f"{feedback} is a file: for several returns give a folder")
    return feedback, None


def _validated(o: FileOutcome, rulebook: Rulebook) -> Validated:
    scored = o.result is not None
    district = o.result.district if scored else (o.district.name if o.district else o.record.district)
    total = o.result.total.scaled if scored else None
    status = _status(o.findings, scored=scored and o.record.status == SCORED)
    return Validated(o.record.file, district, status, list(o.findings), total, rulebook.total_max,
                     reason="" if scored else o.record.reason)


def _status(findings: list[Finding], scored: bool) -> str:
    if not scored:
        return NOT_SCORED
    if any(f.severity == ERROR for f in findings):
        return TO_FIX
    return TO_LOOK if findings else OK
