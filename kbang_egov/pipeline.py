"""The nightly batch: find every workbook in a folder, read and check each, settle which file speaks for
which district, rank, and write the consolidated outputs. A bad file becomes findings; the run goes on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from . import __version__
from .atomic import STAMP_FORMAT, remove_temp_files
from .checks import FILLED_PERCENT_MIN, check_submission, filled_criteria, filled_needed
from .districts import District, DistrictIndex
from .findings import Finding, make_finding
from .guard import far_cell
from .isolation import CRASHED, DEFAULT_TIMEOUT, TIMEOUT, Failure, run_isolated
from .layout import INFO_SHEET
from .ranking import rank_districts
from .reader import SUFFIXES, Submission, read_submission
from .results import REJECTED, SCORED, SUPERSEDED, CriterionTable, DistrictResult, FileRecord, RunResult
from .rulebook import Rulebook
from .runlock import RunLock
from .runlog import HISTORY_DIR, LOGS_DIR, keep_history, write_log
from .text import normalize_text, printable

Progress = Callable[[int, int, str], None]  # (files done, files in all, file just done)

INFO_TEXT_LIMIT = 500  # characters kept of one information field (unit name, reporter, ...)

# Why a file in the folder was not read as a submission.
SKIP_LOCK, SKIP_HIDDEN, SKIP_OTHER, SKIP_OUTPUT = "lock", "hidden", "other", "output"


def bundled_samples_dir() -> Path:
    """The sample submissions shipped with the package (written by `batch.py sample`)."""
    return Path(str(resources.files("kbang_egov") / "data" / "samples"))


def discover_files(input_dir: Path, exclude: Path | None = None) -> tuple[list[Path], dict[str, int]]:
    """Workbooks under input_dir in path order, and counts of what was skipped and why.

    Office lock files (~$name.xlsx, .~lock.name#) and hidden files or folders are never submissions; nor
    is anything under `exclude` (the output folder, when it sits inside the input folder).
    """
    found: list[Path] = []
    skipped = {SKIP_LOCK: 0, SKIP_HIDDEN: 0, SKIP_OTHER: 0, SKIP_OUTPUT: 0}
    root = input_dir.resolve()
    out = exclude.resolve() if exclude is not None else None
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(root)
        if out is not None and path.is_relative_to(out):
            skipped[SKIP_OUTPUT] += 1
        elif rel.name.startswith(("~$", ".~lock.")):
            skipped[SKIP_LOCK] += 1
        elif any(part.startswith(".") for part in rel.parts):
            skipped[SKIP_HIDDEN] += 1
        elif path.suffix.lower() not in SUFFIXES:
            skipped[SKIP_OTHER] += 1
        else:
            found.append(path)
    return found, skipped


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
        stat = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        f = make_finding("file-unreadable", rel, reason=exc.strerror or str(exc))
        rec = FileRecord(rel, "", 0, dt.datetime.now(), REJECTED, reason=f.message, codes=(f.code,))
        return FileOutcome(rec, findings=[f])
    rec = FileRecord(rel, hashlib.sha256(data).hexdigest(), len(data),
                     dt.datetime.fromtimestamp(stat.st_mtime).replace(microsecond=0), SCORED)
    outcome = FileOutcome(rec)
    sub = read_submission(data, rel, rulebook)
    findings = list(sub.findings)
    district: District | None = None
    if not sub.rejected:
        district, finding = _identify(sub, districts)
        if finding is not None:
            findings.append(finding)
    needed, total = filled_needed(rulebook), len(rulebook.scored_criteria)
    filled = filled_criteria(sub, rulebook, up_to=needed) if district else 0
    if district is None:
        rejecting = [f for f in findings if f.rejects]
        rec.status, rec.reason = REJECTED, rejecting[0].message if rejecting else ""
        rec.codes = tuple(f.code for f in rejecting)
        rec.district = str(sub.info.get("unit_name") or sub.meta.get("district") or "")
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
        info = {k: _info_text(v) for k, v in sub.info.items()}
        outcome.result = DistrictResult(district.name, rel, sub.sheet,
                                        CriterionTable.of(checked.criteria),
                                        checked.subtotals, findings, info)
        outcome.district = district
        outcome.name_at = (sub.info_sheet or INFO_SHEET, sub.info_cells.get("unit_name", ""))
        outcome.findings = findings
        rec.district = district.name
    rec.seconds = round(time.perf_counter() - start, 4)
    return outcome


def _identify(sub: Submission, districts: DistrictIndex) -> tuple[District | None, Finding | None]:
    """The listed district a submission is for: the information sheet's unit name, else the template's."""
    raw = sub.info.get("unit_name")
    text = _info_text(raw) or sub.meta.get("district", "")
    sheet = sub.info_sheet or INFO_SHEET
    cell = sub.info_cells.get("unit_name", "")
    if not normalize_text(text):
        return None, make_finding("district-missing", sub.file, sheet=sheet, cell=cell)
    district = districts.match(text)
    if district is None:
        known = _known_names(districts.districts)
        return None, make_finding("district-unknown", sub.file, sheet=sheet, cell=cell, district=text,
                                  name=text, known=known)
    return district, None


KNOWN_NAMES_SHOWN = 20  # a national list has thousands of names: a message names the first few


def _known_names(districts: list[District]) -> str:
    names = [d.name for d in districts[:KNOWN_NAMES_SHOWN]]
    more = len(districts) - len(names)
    return ", ".join(names) + (f" và {more} đơn vị khác trong tệp danh sách" if more > 0 else "")


def _info_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.strftime("%d/%m/%Y") if v.time() == dt.time() else v.strftime("%d/%m/%Y %H:%M")
    if isinstance(v, dt.date):
        return v.strftime("%d/%m/%Y")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return printable(" ".join(str(v).split()), INFO_TEXT_LIMIT)


def settle_duplicates(outcomes: list[FileOutcome]) -> None:
    """Of several files for one district the newest (modification time, then name) is scored; the others
    are superseded, each with one finding naming the file that was used."""
    by_district: dict[str, list[FileOutcome]] = {}
    for o in outcomes:
        if o.result is not None and o.district is not None:
            by_district.setdefault(o.district.name, []).append(o)
    for name, group in by_district.items():
        if len(group) < 2:
            continue
        group.sort(key=lambda o: (o.record.modified, o.record.file), reverse=True)
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


def read_files(paths: list[Path], root: Path, rulebook: Rulebook, districts: list[District],
               trust_self_scores: bool = False, progress: Progress | None = None, workers: int | None = None,
               file_timeout: float = DEFAULT_TIMEOUT) -> list[FileOutcome]:
    """process_file for every path, each in a worker process (in parallel, one at a time per worker): a file
    that crashes its reader or overruns file_timeout becomes a finding and the others go on. workers=0
    reads in this process, without that protection (for profiling)."""
    items = [(str(p), p.relative_to(root).as_posix()) for p in paths]
    func = functools.partial(_process_item, rulebook=rulebook, districts=DistrictIndex(districts),
                             trust_self_scores=trust_self_scores)
    outcomes: list[FileOutcome | None] = [None] * len(items)
    results = (enumerate(map(func, items)) if workers == 0
               else run_isolated(func, items, workers=workers, timeout=file_timeout))
    for done, (i, got) in enumerate(results, 1):
        path, rel = items[i]
        outcomes[i] = got if isinstance(got, FileOutcome) else _failed(Path(path), rel, got, file_timeout)
        if progress is not None:
            progress(done, len(items), rel)
    return [o for o in outcomes if o is not None]


def _process_item(item: tuple[str, str], rulebook: Rulebook, districts: DistrictIndex,
                  trust_self_scores: bool) -> FileOutcome:
    path, rel = item
    return process_file(Path(path), rel, rulebook, districts, trust_self_scores)


def _failed(path: Path, rel: str, failure: Failure, timeout: float) -> FileOutcome:
    """The outcome of a file whose worker crashed, overran its time or raised: rejected, with the reason."""
    try:
        data = path.read_bytes()
        stat = path.stat()
        rec = FileRecord(rel, hashlib.sha256(data).hexdigest(), len(data),
                         dt.datetime.fromtimestamp(stat.st_mtime).replace(microsecond=0), REJECTED)
    except OSError:
        data, rec = b"", FileRecord(rel, "", 0, dt.datetime.now().replace(microsecond=0), REJECTED)
    if failure.kind == TIMEOUT:
        f = make_finding("file-timeout", rel, limit=timeout)
    else:
        where = far_cell(data) if failure.kind == CRASHED else None
        hint = f"Trang '{where[0]}' có dữ liệu ở tận ô {where[1]}; xoá các ô thừa đó. " if where else ""
        f = make_finding("file-crashed", rel, sheet=where[0] if where else "", cell=where[1] if where else "",
                         reason=failure.detail or failure.kind, hint=hint)
    rec.reason, rec.codes = f.message, (f.code,)
    return FileOutcome(rec, findings=[f])


def run_batch(input_dir: str | Path, out_dir: str | Path, rulebook: Rulebook, districts: list[District],
              trust_self_scores: bool = False, progress: Progress | None = None, workers: int | None = None,
              file_timeout: float = DEFAULT_TIMEOUT) -> RunResult:
    """Score every workbook under input_dir, rank the districts and write the outputs into out_dir, with a
    dated copy under out_dir/history and a log under out_dir/logs. One run at a time per out_dir: LockHeld
    when another run holds it; OutputError when out_dir cannot be written."""
    from .report_writer import OutputError, ensure_dir, write_outputs

    started = dt.datetime.now().replace(microsecond=0)
    stamp = started.strftime(STAMP_FORMAT)
    root, out = Path(input_dir), ensure_dir(Path(out_dir))
    with RunLock(out) as lock, _no_cyclic_gc():
        clock = _Clock()
        leftovers = sum(remove_temp_files(d) for d in (out, out / HISTORY_DIR, out / LOGS_DIR) if d.is_dir())
        paths, skipped = discover_files(root, exclude=out)
        clock.lap("discover")
        outcomes = read_files(paths, root.resolve(), rulebook, districts, trust_self_scores, progress, workers,
                              file_timeout)
        clock.lap("read_check")
        settle_duplicates(outcomes)
        scored = [o.result for o in outcomes if o.result is not None]
        ranked = rank_districts(scored, rulebook)
        seen = {d.district for d in ranked}
        run = RunResult(
            started=started, finished=started, input_dir=str(root), rulebook_id=rulebook.id,
            rulebook_version=rulebook.version, rulebook_hash=rulebook.hash, tool_version=__version__,
            trust_self_scores=trust_self_scores, districts=ranked, files=[o.record for o in outcomes],
            findings=[f for o in outcomes for f in o.findings],
            not_submitted=[d.name for d in districts if d.name not in seen],
            not_submitted_notes=not_submitted_notes(outcomes, seen),
            skipped={k: v for k, v in skipped.items() if v},
        )
        if lock.stale is not None:
            run.notices.append(f"took over the stale lock {lock.path} left by a run that is gone "
                               f"({lock.stale.describe()})")
        if leftovers:
            run.notices.append(f"removed {leftovers} temporary file(s) left in {out} by an interrupted run")
        clock.lap("rank")
        written = write_outputs(run, rulebook, out)
        run.outputs = [str(p) for p in written]
        try:
            run.history = [str(p) for p in keep_history(written, out, stamp)]
            clock.lap("write")
            run.timings = clock.laps
            run.finished = dt.datetime.now().replace(microsecond=0)
            run.log = str(write_log(run, out, stamp, exit_code=1 if run.findings else 0))
        except OSError as exc:
            raise OutputError(f"cannot keep the history or the log in {out}: {exc.strerror or exc}") from exc
    return run


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The run builds millions of small objects and no reference cycles worth collecting: Python's cyclic
    collector would walk all of them again and again as they accumulate (quadratic at national scale)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            # The run's objects go to the oldest generation first: re-enabled, the collector would walk all
            # of them as young ones at the next allocation (18 ms at N = 1,000, ten times that at 10,000).
            gc.freeze()
            gc.unfreeze()
            gc.enable()


class _Clock:
    """Seconds spent in each phase of a run, for the log."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._t, 3)
        self._t = now
