"""The run's second pass: a feedback workbook for every return, written in isolated workers after ranking.

The parent never reads a return's bytes (a hostile file can crash the reader): each worker re-reads its
return through the inbox, the guard and the reader, checks it is the file that was scored (its SHA-256), and
writes DIR/feedback/PhanHoi_<template stem>.xlsx. A feedback that fails is a finding on that file
(`feedback-failed`), never a failed run. DIR/feedback/feedback.csv lists what was written, for the mail.

A workbook whose content key (content_key: everything it shows or is built from) is the one of a workbook the
previous published run wrote is copied from there instead of written again (reuse_previous): a nightly run
over returns that did not change writes no workbook.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import json
import os
import re
import stat
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

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
from .isolation import DEFAULT_TIMEOUT, Failure, InlinePool, IsolatedPool, open_pool

FEEDBACK_DIR = "feedback"
FEEDBACK_CSV = "feedback.csv"
CSV_COLUMNS = ("district", "feedback_file", "source_file", "source_sha256", "status", "content_key",
               "feedback_sha256")


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
               "status": status, "content_key": "", "feedback_sha256": ""}
        if status == SUPERSEDED:
            planned[i] = (None, row)
            continue
        stem = (Path(_template_name(rulebook, o.district)).stem if o.district is not None
                else f"tep_{ascii_slug(Path(rec.file).stem)[:80]}")
        name = _unused(feedback_file_name(stem), taken)
        row["feedback_file"] = name
        figures = figures_for(o.result, rulebook, file=rec.file, district=district, status=status,
                              rank=ranks.get(district, 0) if status == RANKED else 0, ranked=len(ranked),
                              medians=medians, reason=rec.reason, run_label=run_label,
                              findings=o.findings)
        reread = o.result is not None  # a file not scored gets a short feedback: why, and what to do
        jobs.append(FeedbackJob(str(inbox / rec.file) if reread else "", rec.file, rec.sha256,
                                str(folder / name), tuple(o.findings), figures))
        row["content_key"] = content_key(jobs[-1], rulebook.hash)
        planned[i] = (jobs[-1], row)
    rows = [planned[i][1] for i in sorted(planned)]
    return jobs, rows


def content_key(job: FeedbackJob, rulebook_hash: str) -> str:
    """SHA-256 of everything the job's workbook shows or is built from, serialised canonically: the tool (its
    version and its code) and the libraries that read the return and write the workbook, the rulebook, the
    return (its SHA-256, the name it was received under, whether its cells are copied), every finding and every
    figure (district, status, rank among how many, scores, medians, criteria taken out, reason).

    Not the run's label: the header names the run that wrote the workbook ("Bản này được lập ở lần chấm"),
    which stays true of a copy. Not the workbook's own file name (PhanHoi_..._2.xlsx), which it does not show:
    a copy is made under the job's name."""
    figures = _fields(job.figures, leave="run_label")
    findings = [_fields(f, leave="params") for f in job.findings]  # params only fill the message, which is there
    content = {"tool": _tool_identity(), "rulebook": rulebook_hash, "return": job.sha256, "file": job.file,
               "cells_copied": bool(job.path), "findings": findings, "figures": figures}
    # ASCII escapes: a file name in bytes that are not UTF-8 (surrogate escapes) serialises too.
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=_fields)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _fields(value: object, leave: str = "") -> dict | str:
    """A dataclass's fields by name, but `leave` (shallow: json serialises what they hold; dataclasses.asdict
    would deep-copy every value first, most of the key's time); anything else as its text."""
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.name != leave}
    return str(value)


@functools.cache
def _tool_identity() -> dict[str, str]:
    """The tool's version and a hash of its code (a change between releases must not reuse a workbook the old
    code wrote), and the versions of the libraries that read returns and write workbooks."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    package = Path(__file__).resolve().parent.parent
    code = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        code.update(source.relative_to(package).as_posix().encode() + b"\0" + source.read_bytes() + b"\0")
    identity = {"kbang_egov": __version__, "code": code.hexdigest()}
    for dist in ("xlsxwriter", "python-calamine"):
        try:
            identity[dist] = version(dist)
        except PackageNotFoundError:
            identity[dist] = ""
    return identity


def reuse_previous(jobs: Sequence[FeedbackJob], rows: list[dict], previous: Path,
                   manifest: Mapping | None) -> list[FeedbackJob]:
    """Copy to each job's target the workbook of the same content key from the previous published run's
    feedback folder `previous` (DIR/feedback), whose manifest is `manifest` (publish.read_manifest); returns
    the jobs still to write, and fills the copied rows' feedback_sha256.

    A workbook is copied only when that folder's feedback.csv is the one the manifest lists, gives the job's
    content key, and the file it names is a regular file there (no link) whose bytes still hash to what both
    feedback.csv and the manifest recorded. Anything else (no previous run, a missing or garbled csv, other
    columns, a file changed since) means the job is written: never a failed run."""
    found = _previous_workbooks(previous, manifest)
    if not found:
        return list(jobs)
    by_name = {row["feedback_file"]: row for row in rows if row.get("feedback_file")}
    todo = []
    for job in jobs:
        row = by_name.get(Path(job.target).name)
        recorded = found.get(row.get("content_key", "")) if row is not None else None
        data = _read_recorded(previous / recorded[0], *recorded[1:]) if recorded is not None else None
        if data is None:
            todo.append(job)
            continue
        Path(job.target).parent.mkdir(parents=True, exist_ok=True)
        Path(job.target).write_bytes(data)  # the bytes that were hashed, not the file again
        row["feedback_sha256"] = recorded[1]
    return todo


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _previous_workbooks(previous: Path, manifest: Mapping | None) -> dict[str, tuple[str, str, int]]:
    """content key -> (file name, SHA-256, bytes) of the workbooks the previous run's feedback.csv lists and
    its manifest vouches for; {} when either is missing or not as this tool writes them."""
    listed = manifest.get("files") if isinstance(manifest, Mapping) else None
    if not isinstance(listed, Mapping):
        return {}

    def vouched(name: str) -> tuple[str, int] | None:
        entry = listed.get(f"{FEEDBACK_DIR}/{name}")
        if not isinstance(entry, Mapping) or not isinstance(entry.get("bytes"), int):
            return None
        sha = entry.get("sha256")
        return (sha, entry["bytes"]) if isinstance(sha, str) and _SHA256.fullmatch(sha) else None

    table = vouched(FEEDBACK_CSV)
    data = _read_recorded(previous / FEEDBACK_CSV, *table) if table is not None else None
    if data is None:
        return {}
    try:
        reader = csv.DictReader(data.decode("utf-8-sig").splitlines())
        if not {"feedback_file", "content_key", "feedback_sha256"} <= set(reader.fieldnames or ()):
            return {}
        rows = list(reader)
    except (UnicodeDecodeError, csv.Error):
        return {}
    found: dict[str, tuple[str, str, int]] = {}
    for row in rows:
        name, key, sha = (row.get(k) or "" for k in ("feedback_file", "content_key", "feedback_sha256"))
        if not (name and PurePath(name).name == name and name not in (".", "..") and _SHA256.fullmatch(key)):
            continue
        got = vouched(name)
        if got is not None and got[0] == sha:
            found.setdefault(key, (name, *got))
    return found


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def _read_recorded(path: Path, sha256: str, size: int) -> bytes | None:
    """The bytes of path when it is a regular file (not a link, nor a pipe) of `size` bytes hashing to
    sha256, else None."""
    try:
        if path.is_symlink():
            return None
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size != size:
                return None
            data = fh.read(size + 1)
    except OSError:
        return None
    return data if len(data) == size and hashlib.sha256(data).hexdigest() == sha256 else None


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
    (its "feedback" task is feedback_task), else a pool of their own (this process when workers is 0).
    csv_name=None writes no feedback.csv (validate)."""
    folder.mkdir(parents=True, exist_ok=True)
    if pool is None and jobs:
        with open_pool({"feedback": feedback_task}, workers, len(jobs)) as own:
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
        for row in rows:  # what the next run checks a workbook against before it copies it
            if row["feedback_file"] and not row.get("feedback_sha256"):
                row["feedback_sha256"] = hashlib.sha256((folder / row["feedback_file"]).read_bytes()).hexdigest()
        with open(folder / csv_name, "w", encoding="utf-8-sig", newline="") as fh:
            w = csv.DictWriter(fh, CSV_COLUMNS)
            w.writeheader()
            w.writerows(rows)
    return failed


def feedback_task(job: FeedbackJob) -> str:
    """write_job, an exception turned into its reason (the worker goes on with the next job). A MemoryError
    goes up to the worker, which reports it and is replaced (isolation.py)."""
    try:
        return write_job(job)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - one feedback must not stop the others
        return f"{type(exc).__name__}: {_first_line(str(exc))}"


_SPACES = re.compile(r"\s+")


def _first_line(text: str) -> str:
    return _SPACES.sub(" ", text.strip().splitlines()[-1] if text.strip() else "")[:200]
