"""The nightly batch: find every workbook in a folder, read and check each, settle which file speaks for
which district, rank, and write the consolidated outputs. A bad file becomes findings; the run goes on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePath
from typing import Any, NamedTuple

from .. import __version__
from ..forms.layout import INFO_SHEET
from ..reading.guard import far_cell
from ..reading.inbox import InputError, discover_files, read_input
from ..reading.reader import read_submission
from ..reporting.ranking import rank_districts
from ..reporting.runlog import HISTORY_DIR, LOGS_DIR, keep_history, write_log
from ..rules.checks import (
    FILLED_PERCENT_MIN,
    check_submission,
    filled_criteria,
    filled_needed,
    identify_district,
    info_text,
)
from ..rules.districts import District, DistrictIndex
from ..rules.findings import Finding, make_finding
from ..rules.results import (
    REJECTED,
    SCORED,
    SUPERSEDED,
    Comparison,
    CriterionFrame,
    CriterionTable,
    DistrictResult,
    FileRecord,
    RunResult,
)
from ..rules.rulebook import Rulebook
from ..settings import Settings
from ..text import path_label, printable
from .atomic import STAMP_FORMAT, remove_temp_files
from .feedback_pass import FEEDBACK_DIR, feedback_task, plan_feedback, reuse_previous, write_feedbacks
from .isolation import CRASHED, DEFAULT_TIMEOUT, TIMEOUT, Failure, InlinePool, IsolatedPool, open_pool
from .publish import RUNS_DIR, check_layout, new_run_id, publish, read_manifest, seal_run_folder, start_run_folder
from .runlock import RunLock

Progress = Callable[[int, int, str], None]  # (files done, files in all, file just done)



def bundled_samples_dir() -> Path:
    """The sample submissions shipped with the package (written by `batch.py sample`)."""
    return Path(str(resources.files("kbang_egov") / "data" / "samples"))


@dataclass
class FileOutcome:
    """What reading and checking one file gave, before duplicates are settled."""

    record: FileRecord
    district: District | None = None
    result: DistrictResult | None = None
    findings: list[Finding] = field(default_factory=list)
    name_at: tuple[str, str] = ("", "")  # (sheet, A1 cell) of the unit name the district was read from
    note: str = ""  # why the district's file was read but not ranked (a blank template sent back)


def process_file(path: Path, rel: str, rulebook: Rulebook, districts: list[District] | DistrictIndex,
                 trust_self_scores: bool = False) -> FileOutcome:
    """Read, identify and check one workbook. Never raises for what is in the file."""
    start = time.perf_counter()
    if not isinstance(districts, DistrictIndex):
        districts = DistrictIndex(districts)
    try:
        got = read_input(path)
    except InputError as exc:
        f = make_finding(exc.code, rel, **exc.params)
        rec = FileRecord(rel, "", exc.file_size, _modified(exc.mtime_ns), REJECTED, reason=f.message, codes=(f.code,),
                         modified_ns=exc.mtime_ns)
        return FileOutcome(rec, findings=[f])
    data = got.data
    rec = FileRecord(rel, hashlib.sha256(data).hexdigest(), len(data), _modified(got.mtime_ns), SCORED,
                     modified_ns=got.mtime_ns)
    outcome = FileOutcome(rec)
    sub = read_submission(data, rel, rulebook)
    findings = list(sub.findings)
    district: District | None = None
    if not sub.rejected:
        district, finding = identify_district(sub, districts)
        if finding is not None:
            findings.append(finding)
    needed, total = filled_needed(rulebook), len(rulebook.scored_criteria)
    filled = filled_criteria(sub, rulebook, up_to=needed) if district else 0
    if district is None:
        rejecting = [f for f in findings if f.rejects]
        rec.status, rec.reason = REJECTED, rejecting[0].message if rejecting else ""
        rec.codes = tuple(f.code for f in rejecting)
        rec.district = info_text(sub.info.get("unit_name")) or info_text(sub.meta.get("district"))
        outcome.findings = findings
    elif filled < needed:
        # A blank template sent back: one finding, not ranked; the district stays among the not submitted.
        f = make_finding("file-not-filled", rel, sub.sheet, district=district.name, filled=filled, total=total,
                         share=round(100 * filled / total, 1), threshold=FILLED_PERCENT_MIN)
        rec.status, rec.reason, rec.codes, rec.district = REJECTED, f.message, (f.code,), district.name
        outcome.district, outcome.findings = district, [f]
        outcome.note = f"Đã gửi mẫu chưa điền ({filled}/{total} tiêu chí có số liệu): tệp {rel}"
    else:
        checked = check_submission(sub, rulebook, district.name, trust_self_scores)
        findings = [dataclasses.replace(f, district=district.name) for f in findings] + checked.findings
        info = {k: info_text(v) for k, v in sub.info.items()}
        outcome.result = DistrictResult(district.name, rel, sub.sheet,
                                        CriterionTable.of(checked.criteria),
                                        checked.subtotals, findings, info)
        outcome.district = district
        outcome.name_at = (sub.info_sheet or INFO_SHEET, sub.info_cells.get("unit_name", ""))
        outcome.findings = findings
        rec.district = district.name
    rec.seconds = round(time.perf_counter() - start, 4)
    return outcome


def settle_duplicates(outcomes: list[FileOutcome]) -> None:
    """Of several files for one district the newest (modification time to the nanosecond, then name) is
    scored; the others are superseded, each with one finding naming the file that was used."""
    by_district: dict[str, list[FileOutcome]] = {}
    for o in outcomes:
        if o.result is not None and o.district is not None:
            by_district.setdefault(o.district.name, []).append(o)
    for name, group in by_district.items():
        if len(group) < 2:
            continue
        group.sort(key=lambda o: (o.record.modified_ns, o.record.file), reverse=True)
        used = group[0]
        for o in group[1:]:
            f = make_finding("district-duplicate", o.record.file, *o.name_at, district=name, count=len(group),
                             used=used.record.file)
            o.result, o.findings = None, [f]
            o.record.status, o.record.reason, o.record.codes = SUPERSEDED, f.message, (f.code,)


def not_submitted_notes(outcomes: list[FileOutcome], ranked: set[str]) -> dict[str, str]:
    """For a listed district that is not ranked though a file of its was read: why (the first such file)."""
    notes: dict[str, str] = {}
    for o in outcomes:
        if o.note and o.district is not None and o.district.name not in ranked:
            notes.setdefault(o.district.name, o.note)
    return notes


def run_tasks(rulebook: Rulebook, districts: list[District], trust_self_scores: bool = False,
              ) -> dict[str, Callable[[Any], Any]]:
    """The tasks a run's workers do: read and check a return, look at one whose reading failed, write a
    feedback workbook. Given to the pool when its workers start (operations/isolation.py)."""
    return {"read": functools.partial(_process_item, rulebook=rulebook, districts=DistrictIndex(districts),
                                      trust_self_scores=trust_self_scores),
            "look": _look_at_failed, "feedback": feedback_task}


def read_files(paths: list[Path], root: Path, rulebook: Rulebook, districts: list[District],
               trust_self_scores: bool = False, progress: Progress | None = None, workers: int | None = None,
               file_timeout: float = DEFAULT_TIMEOUT, pool: IsolatedPool | InlinePool | None = None,
               ) -> list[FileOutcome]:
    """process_file for every path, each in a worker process (in parallel, one at a time per worker): a file
    that crashes its reader or overruns file_timeout becomes a finding and the others go on. workers=0
    reads in this process, without that protection (for profiling). `pool` (opened with run_tasks) is the
    run's, kept for its later passes; without it the files are read in a pool of their own.

    This process never reads a file's bytes: what a failed file's record needs (its hash, size and time,
    the far cell that may have crashed the reader) is looked up by a worker too, within the same limits."""
    if pool is None:
        with open_pool(run_tasks(rulebook, districts, trust_self_scores), workers, len(paths)) as own:
            return read_files(paths, root, rulebook, districts, trust_self_scores, progress, workers,
                              file_timeout, own)
    items = [(str(p), path_label(p.relative_to(root))) for p in paths]
    outcomes: list[FileOutcome | None] = [None] * len(items)
    failed: dict[int, Failure] = {}
    frames: dict[CriterionFrame, CriterionFrame] = {}
    for done, (i, got) in enumerate(pool.map("read", items, file_timeout), 1):
        if isinstance(got, FileOutcome):
            if got.result is not None:
                # A run's results name the same criteria: they share one copy of the codes, groups, parts and
                # maxima instead of holding one each (30 KB a district, 300 MB of a national run).
                table = got.result.criteria
                table.frame = frames.setdefault(table.frame, table.frame)
            outcomes[i] = got
        else:
            failed[i] = got
        if progress is not None:
            progress(done, len(items), items[i][1])
    if failed:
        order = sorted(failed)
        asked = [(items[i][0], items[i][1], failed[i].kind) for i in order]
        for k, got in pool.map("look", asked, file_timeout):
            i = order[k]
            outcomes[i] = _failed(items[i][1], failed[i], got if isinstance(got, _Looked) else None, file_timeout)
    return [o for o in outcomes if o is not None]


def _process_item(item: tuple[str, str], rulebook: Rulebook, districts: DistrictIndex,
                  trust_self_scores: bool) -> FileOutcome:
    path, rel = item
    return process_file(Path(path), rel, rulebook, districts, trust_self_scores)


class _Looked(NamedTuple):
    """What a worker found out about a file whose reading failed: its record, and its farthest cell."""

    record: FileRecord
    where: tuple[str, str] | None  # (sheet, A1 address)


def _look_at_failed(item: tuple[str, str, str]) -> _Looked:
    """In a worker: the record of a file whose reading failed (hash, size, time, read as process_file reads
    them) and, when its reader crashed, its farthest cell (a cell at XFD1048576 makes calamine abort)."""
    path, rel, kind = item
    try:
        got = read_input(Path(path))
    except InputError as exc:
        return _Looked(FileRecord(rel, "", exc.file_size, _modified(exc.mtime_ns), REJECTED, modified_ns=exc.mtime_ns),
                       None)
    rec = FileRecord(rel, hashlib.sha256(got.data).hexdigest(), len(got.data), _modified(got.mtime_ns), REJECTED,
                     modified_ns=got.mtime_ns)
    return _Looked(rec, far_cell(got.data) if kind == CRASHED else None)


def _modified(mtime_ns: int) -> dt.datetime:
    """A modification time as the outputs show it, to the second (the epoch for one no calendar holds)."""
    try:
        return dt.datetime.fromtimestamp(mtime_ns // 10**9)
    except (OverflowError, OSError, ValueError):
        return dt.datetime.fromtimestamp(0)


def _failed(rel: str, failure: Failure, looked: _Looked | None, timeout: float) -> FileOutcome:
    """The outcome of a file whose worker crashed, overran its time or raised: rejected, with the reason.
    `looked` is what a second worker found out about the file (None when that failed too)."""
    rec = looked.record if looked is not None else FileRecord(rel, "", 0, _modified(time.time_ns()), REJECTED)
    if failure.kind == TIMEOUT:
        f = make_finding("file-timeout", rel, limit=timeout)
    else:
        where = looked.where if looked is not None else None
        hint = f"Trang '{where[0]}' có dữ liệu ở tận ô {where[1]}; xoá các ô thừa đó. " if where else ""
        f = make_finding("file-crashed", rel, sheet=where[0] if where else "", cell=where[1] if where else "",
                         reason=failure.detail or failure.kind, hint=hint)
    rec.reason, rec.codes = f.message, (f.code,)
    return FileOutcome(rec, findings=[f])


class FolderClash(ValueError):
    """The output folder is the inbox: the outputs would sit among the returns, and a return called
    ranking.xlsx would be written over."""


class NoReturnsFound(Exception):
    """The inbox is missing, unreadable or holds no workbook: nothing was ranked and the previous outputs
    were left as they were. `reason` says why, in Vietnamese, for the operator; `log` is the run's log."""

    exit_code = 4  # what the CLI exits with (cli.EXIT_NO_RETURNS), also written in the log

    def __init__(self, reason: str, log: str) -> None:
        super().__init__(reason)
        self.reason, self.log = reason, log


def run_batch(input_dir: str | Path, out_dir: str | Path, rulebook: Rulebook, districts: list[District],
              trust_self_scores: bool = False, progress: Progress | None = None, workers: int | None = None,
              file_timeout: float = DEFAULT_TIMEOUT, settings: Settings | None = None,
              baseline: Comparison | None = None) -> RunResult:
    """Score every workbook under input_dir, rank the districts and publish the outputs in out_dir together
    (publish.py), with a dated copy under out_dir/history, the run's rows in out_dir/history.sqlite
    (reporting/history.py, published in the same step) and a log under out_dir/logs.

    settings gives the overview its province, year and deadline. The ranking's previous_rank and rank_change
    are against `baseline` when given (reporting/baseline.py reads one), else the previous run in history.sqlite.

    One run at a time per out_dir: LockHeld when another run holds it, LockError when it cannot be locked.
    FolderClash when out_dir is input_dir; NoReturnsFound (logged, nothing published) when input_dir holds
    no workbook; OutputError when out_dir cannot be written (nothing published then either)."""
    from ..reporting.history import HistoryError, mark_published, open_history, previous_run, record_run, settle_pending
    from ..reporting.report_writer import OutputError, ensure_dir, write_outputs
    from ..reporting.tables import run_tables

    started = dt.datetime.now().replace(microsecond=0)
    stamp, run_id = started.strftime(STAMP_FORMAT), new_run_id(started)
    root, out = Path(input_dir), Path(out_dir)
    if _same_folder(root, out):
        raise FolderClash(f"thư mục kết quả {out} chính là thư mục bài nộp: kết quả sẽ nằm lẫn với bài nộp; "
                          "chọn cho --out một thư mục bên cạnh hoặc bên trong thư mục bài nộp")
    out = ensure_dir(out)
    settings = settings if settings is not None else Settings()
    with RunLock(out) as lock, _history_errors(HistoryError, OutputError), contextlib.ExitStack() as stack:
        clock = _Clock()
        with _writing(out, OutputError):
            check_layout(out)
            leftovers = sum(remove_temp_files(d) for d in (out, out / RUNS_DIR, out / HISTORY_DIR, out / LOGS_DIR)
                            if d.is_dir())
        problem = inbox_problem(root)
        paths, skipped, unreadable = (([], {}, []) if problem
                                       else discover_files(root, exclude=out if _inside(out, root) else None))
        clock.lap("discover")
        run = RunResult(
            started=started, finished=started, input_dir=path_label(root), rulebook_id=rulebook.id,
            rulebook_version=rulebook.version, rulebook_hash=rulebook.hash, tool_version=__version__,
            trust_self_scores=trust_self_scores, districts=[], files=[], findings=[],
            not_submitted=[d.name for d in districts], skipped={k: v for k, v in skipped.items() if v},
            run_id=run_id, province=settings.province, year=settings.year, deadline=settings.deadline)
        if lock.stale is not None:
            run.notices.append(f"đã tiếp nhận khóa cũ (stale lock) {lock.path} do một lần chạy không còn nữa để lại "
                               f"({lock.stale.describe()})")
        if leftovers:
            run.notices.append(f"đã xóa {leftovers} tệp tạm do một lần chạy bị ngắt để lại trong {out}")
        if not paths:
            reason = problem or _empty_inbox(root, run.skipped, len(unreadable))
            run.notices.append(f"không có bài nộp nào: {reason} Không xếp hạng; các kết quả trong {out} được giữ "
                               "nguyên.")
            with _writing(out, OutputError):
                log = write_log(run, out, stamp, exit_code=NoReturnsFound.exit_code)
            raise NoReturnsFound(reason, str(log))
        with _writing(out, OutputError):  # opened once there is a night to record: an empty one leaves DIR as it was
            db = stack.enter_context(open_history(out))
        shown = (read_manifest(out) or {}).get("run_id")
        dropped = settle_pending(db, shown)  # what a run killed mid-publish left
        if dropped:
            run.notices.append(f"history.sqlite: đã xóa dữ liệu của {len(dropped)} lần chạy bị dừng trước khi công bố "
                               f"({', '.join(dropped)})")
        # One pool for the run's passes, forked now while this process is small: the feedback pass after the
        # ranking reuses its workers instead of starting new ones.
        pool = stack.enter_context(open_pool(run_tasks(rulebook, districts, trust_self_scores), workers, len(paths)))
        outcomes = read_files(paths, root.resolve(), rulebook, districts, trust_self_scores, progress, workers,
                              file_timeout, pool)
        outcomes += [_unreadable_folder(folder.relative_to(root.resolve()), reason) for folder, reason in unreadable]
        clock.lap("read_check")
        settle_duplicates(outcomes)
        scored = [o.result for o in outcomes if o.result is not None]
        run.districts = rank_districts(scored, rulebook)
        seen = {d.district for d in run.districts}
        run.files, run.findings = [o.record for o in outcomes], [f for o in outcomes for f in o.findings]
        run.not_submitted = [d.name for d in districts if d.name not in seen]
        run.not_submitted_notes = not_submitted_notes(outcomes, seen)
        run.comparison = baseline if baseline is not None else previous_run(db, shown)
        clock.lap("rank")
        with _writing(out, OutputError):
            staging = start_run_folder(out, run_id)
            _feedback_pass(run, outcomes, rulebook, root.resolve(), out, staging, pool, file_timeout)
            pool.close()  # its last pass: the workers' memory is given back before the ranking workbook is built
            clock.lap("feedback")
            tables = run_tables(run, rulebook)
            names = [p.name for p in write_outputs(run, rulebook, staging, tables)]
            folder = seal_run_folder(staging, _manifest(run))
            run.history = [str(p) for p in keep_history([folder / n for n in names], out, stamp)]
            clock.lap("write")
            run.finished = dt.datetime.now().replace(microsecond=0)
            record_run(db, run, tables)  # committed as pending: it counts once the switch below names it
            clock.lap("history")
            outputs, notices = publish(out, folder, [*names, FEEDBACK_DIR], stamp)
            try:
                mark_published(db, run_id)
            except HistoryError as exc:  # published all the same: the next run settles the mark by the manifest
                run.notices.append(f"history.sqlite: {exc}; lần chạy sau sẽ ghi nhận lần chạy này là đã công bố")
            run.outputs, run.notices = [str(p) for p in outputs], run.notices + notices
            clock.lap("publish")
            run.timings = clock.laps
            run.finished = dt.datetime.now().replace(microsecond=0)
            run.log = str(write_log(run, out, stamp, exit_code=1 if run.findings else 0))
    return run


def _feedback_pass(run: RunResult, outcomes: list[FileOutcome], rulebook: Rulebook, root: Path, out: Path,
                   staging: Path, pool: IsolatedPool | InlinePool, file_timeout: float) -> None:
    """The feedback workbooks into staging/feedback: copied from the previous published run where their content
    is the same, else written by the pool's workers. Its jobs (each with a district's findings and figures)
    end with this call, before the ranking workbook is built: a national run holds one or the other."""
    jobs, rows = plan_feedback(outcomes, rulebook, staging / FEEDBACK_DIR, root, run.districts, run.run_id)
    todo = reuse_previous(jobs, rows, out / FEEDBACK_DIR, read_manifest(out))
    failed = write_feedbacks(todo, rows, staging / FEEDBACK_DIR, timeout=file_timeout, pool=pool)
    run.findings += failed
    run.feedback_written, run.feedback_reused = len(todo) - len(failed), len(jobs) - len(todo)


def inbox_problem(root: Path) -> str | None:
    """Why root cannot be read as an inbox at all (missing, not a folder, unreadable), in Vietnamese for the
    operator; None when it can be listed."""
    try:
        with os.scandir(root):
            return None
    except FileNotFoundError:
        return f"Thư mục nhận bài {root} không tồn tại (ổ mạng chưa được gắn, hoặc đường dẫn sai)."
    except NotADirectoryError:
        return f"{root} không phải là thư mục nhận bài mà là một tệp."
    except OSError as exc:
        return f"Không đọc được thư mục nhận bài {root}: {exc.strerror or exc}."


def _empty_inbox(root: Path, skipped: dict[str, int], unreadable: int = 0) -> str:
    others = f" ({sum(skipped.values())} tệp khác bị bỏ qua)" if skipped else ""
    if unreadable:
        others += f" ({unreadable} thư mục con không đọc được)"
    return f"Thư mục nhận bài {root} không có tệp bảng tính nào (.xlsx, .xlsm, .xls, .ods){others}."


def _same_folder(a: Path, b: Path) -> bool:
    """Whether a and b are one folder, by path or, both existing, by identity (a bind mount, a link)."""
    try:
        return _real(a) == _real(b) or (a.is_dir() and b.is_dir() and os.path.samefile(a, b))
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    """Whether path lies inside folder (the output folder inside the inbox: its files are not returns)."""
    p, f = _real(path), _real(folder)
    return p != f and p.is_relative_to(f)


def _real(path: Path) -> Path:
    # os.path.realpath, unlike Path.resolve() before Python 3.13, gives a link loop back instead of raising.
    return Path(os.path.realpath(path))


def _manifest(run: RunResult) -> dict:
    """What manifest.json says of the run besides its files' hashes."""
    # A folder name in bytes that are not UTF-8 (surrogate escapes) is shown byte by byte, as \xe1.
    input_dir = os.fsencode(run.input_dir).decode("utf-8", "backslashreplace")
    return {"run_id": run.run_id, "started": run.started.isoformat(), "input_dir": input_dir,
            "tool_version": run.tool_version,
            "rulebook": {"id": run.rulebook_id, "version": run.rulebook_version, "hash": run.rulebook_hash},
            "files_read": len(run.files), "districts_ranked": len(run.districts)}


def _unreadable_folder(rel: PurePath, reason: str) -> FileOutcome:
    """A folder of the inbox that could not be listed: its returns are not lost in silence."""
    name = (path_label(rel) or ".") + "/"  # "./": the inbox itself
    f = make_finding("folder-unreadable", name, reason=printable(reason))
    rec = FileRecord(name, "", 0, _modified(time.time_ns()), REJECTED, reason=f.message, codes=(f.code,))
    return FileOutcome(rec, findings=[f])


@contextlib.contextmanager
def _history_errors(error: type[Exception], into: type[Exception]) -> Iterator[None]:
    """history.sqlite that cannot be used stops the run as an output that cannot be written does (exit 3)."""
    try:
        yield
    except error as exc:
        raise into(str(exc)) from exc


@contextlib.contextmanager
def _writing(out: Path, error: type[Exception]) -> Iterator[None]:
    """Any OSError while preparing or writing the outputs becomes `error` (the CLI's exit 3), naming what
    failed, instead of a traceback."""
    try:
        yield
    except OSError as exc:
        what = f" ({exc.filename})" if exc.filename else ""
        raise error(f"không ghi được kết quả vào {out}: {exc.strerror or exc}{what}; kiểm tra ổ đĩa còn chỗ và "
                    "thư mục kết quả ghi được") from exc


class _Clock:
    """Seconds spent in each phase of a run, for the log."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._t, 3)
        self._t = now
