"""Every run kept: DIR/history.sqlite, the output folder's memory (stdlib sqlite3).

One row in `runs` per published run and its files, scores, subtotals, ranks and findings keyed by run_id
(the publish step's run id, as in manifest.json). The schema is in docs/operations.md.

The database changes with the other outputs or not at all. A run writes its rows in one transaction marked
`pending` and commits it just before the one rename that publishes its outputs (publish.py); once that
rename is done it marks the run `published`. A run killed before the commit leaves nothing (SQLite rolls the
transaction back); killed between the commit and the mark, it leaves a pending run that the next run (under
the lock, before anything else) settles by the manifest: the run the outputs show is marked published, any
other pending run is deleted. Readers count a pending run only when it is the one the manifest names, so
they see exactly the runs that were published, whatever moment a run was killed at.

Other parts of the tool keep their own tables in this file (the mail's `mail_sent`, ...): they are never
dropped or touched here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..rules.findings import CONSEQUENCE, ERROR, WARNING
from ..rules.results import PART, TOTAL, Comparison, RunResult
from .tables import RunTables, subtotals_frame

HISTORY_DB = "history.sqlite"
PENDING, PUBLISHED = "pending", "published"
BATCH = 1000  # rows per executemany call: a national run has 170,000 score rows
SQLITE_PATH_MAX = 512  # bytes of a path SQLite's unix VFS opens (its MAX_PATHNAME), measured with 3.40
_TIMEOUT = 30.0  # seconds to wait for another connection's write (the mail loop, `batch.py history`)

# The tables this module owns; CREATE IF NOT EXISTS, so another engineer's tables sit beside them untouched.
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY,            -- order of the runs in this folder
    run_id TEXT NOT NULL UNIQUE,        -- as in manifest.json and runs/RUN_ID
    state TEXT NOT NULL,                -- 'pending' until its outputs are published, then 'published'
    started TEXT NOT NULL, finished TEXT NOT NULL,  -- ISO 8601, local time
    input_dir TEXT, tool_version TEXT,
    rulebook_id TEXT, rulebook_version TEXT, rulebook_hash TEXT, trust_self_scores INTEGER,
    files_read INTEGER, districts_ranked INTEGER, not_submitted INTEGER,
    errors INTEGER, warnings INTEGER, consequences INTEGER,
    compared_with TEXT                  -- what rank_change is against: a run id, a baseline file, or NULL
);
CREATE TABLE IF NOT EXISTS files (
    run_id TEXT NOT NULL, file TEXT, district TEXT, status TEXT, sha256 TEXT, size INTEGER,
    modified TEXT, modified_ns INTEGER, codes TEXT, reason TEXT, seconds REAL
);
CREATE TABLE IF NOT EXISTS scores (
    run_id TEXT NOT NULL, district TEXT NOT NULL, code TEXT NOT NULL, self_score REAL, score REAL, max REAL,
    source TEXT, status TEXT
);
CREATE TABLE IF NOT EXISTS subtotals (
    run_id TEXT NOT NULL, district TEXT NOT NULL, code TEXT NOT NULL, level TEXT, max REAL,
    applicable_max REAL, achieved REAL, scaled REAL, self_sum REAL, declared REAL, gap REAL,
    rank INTEGER                        -- the rank within the part for a part, the overall rank for the total
);
CREATE TABLE IF NOT EXISTS ranks (
    run_id TEXT NOT NULL, district TEXT NOT NULL, rank INTEGER, total REAL, plain_total REAL,
    declared_total REAL, previous_rank INTEGER, rank_change INTEGER, status TEXT, errors INTEGER,
    warnings INTEGER, not_applicable INTEGER, file TEXT
);
CREATE TABLE IF NOT EXISTS findings (
    run_id TEXT NOT NULL, file TEXT, sheet TEXT, cell TEXT, district TEXT, code TEXT, finding TEXT,
    severity TEXT, message TEXT, follows TEXT
);
CREATE INDEX IF NOT EXISTS files_run ON files (run_id);
CREATE INDEX IF NOT EXISTS scores_run ON scores (run_id, district);
CREATE INDEX IF NOT EXISTS subtotals_run ON subtotals (run_id, district);
CREATE INDEX IF NOT EXISTS ranks_run ON ranks (run_id);
CREATE INDEX IF NOT EXISTS ranks_district ON ranks (district);
CREATE INDEX IF NOT EXISTS findings_run ON findings (run_id);
"""
RUN_TABLES = ("files", "scores", "subtotals", "ranks", "findings")  # keyed by run_id, beside `runs`


class HistoryError(Exception):
    """history.sqlite cannot be opened or written (not a database, read-only, disk full): the message names
    the file and what to do."""


@contextlib.contextmanager
def open_history(out: Path) -> Iterator[sqlite3.Connection]:
    """DIR/history.sqlite, created with the schema when missing; closed on leaving. OSError (with the
    system's reason: a name too long, a read-only disk) when the file cannot be opened for writing."""
    path = Path(out) / HISTORY_DB
    # SQLite would only say "unable to open database file": ask the system first, for its reason. SQLite
    # opens no path past SQLITE_PATH_MAX bytes, its journal (NAME-journal, beside the database) included.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o644))
    journal = os.fsencode(os.path.abspath(path)) + b"-journal"
    if len(journal) >= SQLITE_PATH_MAX:
        raise OSError(errno.ENAMETOOLONG, f"{os.strerror(errno.ENAMETOOLONG)}: SQLite chỉ mở được đường dẫn "
                      f"dài tối đa {SQLITE_PATH_MAX} byte; chọn cho --out một thư mục có đường dẫn ngắn hơn", os.fsdecode(journal))
    try:
        conn = sqlite3.connect(path, timeout=_TIMEOUT)
    except sqlite3.Error as exc:
        raise HistoryError(f"không mở được {path}: {exc}") from exc
    try:
        with _errors(path):
            conn.executescript(SCHEMA)
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def _errors(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise HistoryError(f"không ghi được {path} ({exc}); kiểm tra ổ đĩa còn chỗ và tệp không bị khoá ghi") from exc
        raise HistoryError(f"{path} đang bị một chương trình khác giữ ({exc}) quá {_TIMEOUT:.0f} giây: đóng "
                           "chương trình đang mở nó (trình xem cơ sở dữ liệu) rồi chạy lại") from exc
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"không dùng được {path} ({exc}); nếu tệp bị hỏng, chuyển nó ra chỗ khác, lần chạy "
                           "sau sẽ tạo tệp mới (bảng xếp hạng các lần chạy trước vẫn được giữ trong history/)"
                           ) from exc


def settle_pending(conn: sqlite3.Connection, current_run_id: str | None) -> list[str]:
    """Settle what a killed run left (call under the run lock, before reading the history): the pending run
    the outputs show (`current_run_id`, from the manifest) is published; any other pending run is deleted
    with its rows. Returns the run ids deleted."""
    with _errors(Path(_db_path(conn))), conn:
        pending = [r for (r,) in conn.execute("SELECT run_id FROM runs WHERE state = ?", (PENDING,))]
        dropped = [r for r in pending if r != current_run_id]
        if current_run_id in pending:
            conn.execute("UPDATE runs SET state = ? WHERE run_id = ?", (PUBLISHED, current_run_id))
        for run_id in dropped:
            for table in RUN_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))  # noqa: S608 (our own names)
            conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
    return dropped


def _db_path(conn: sqlite3.Connection) -> str:
    return next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")


def _published(current_run_id: str | None) -> tuple[str, tuple]:
    """The WHERE clause of the runs a reader counts: published, or pending but shown by the manifest."""
    return "(state = ? OR run_id = ?)", (PUBLISHED, current_run_id or "")


def previous_run(conn: sqlite3.Connection, current_run_id: str | None = None) -> Comparison | None:
    """The last published run's ranks, totals and parts, to compare tonight's ranking with; None without one."""
    where, args = _published(current_run_id)
    with _errors(Path(_db_path(conn))):
        row = conn.execute(f"SELECT run_id, finished FROM runs WHERE {where} ORDER BY seq DESC LIMIT 1",  # noqa: S608
                           args).fetchone()
        if row is None:
            return None
        run_id, finished = row
        ranks = conn.execute("SELECT district, rank, total FROM ranks WHERE run_id = ?", (run_id,)).fetchall()
        parts = conn.execute("SELECT district, code, scaled FROM subtotals WHERE run_id = ? AND level = ?",
                             (run_id, PART)).fetchall()
    comparison = Comparison(label=f"lần chạy trước ({_when(finished)}, mã {run_id})", source="history",
                            reference=run_id)
    for district, rank, total in ranks:
        comparison.ranks[district] = rank
        comparison.totals[district] = total
    for district, code, scaled in parts:
        comparison.parts.setdefault(district, {})[code] = scaled
    return comparison


def _when(iso: str) -> str:
    """An ISO time as the officer reads it: 27/11/2026 01:30."""
    try:
        return pd.Timestamp(iso).strftime("%d/%m/%Y %H:%M")
    except ValueError:
        return iso


def record_run(conn: sqlite3.Connection, run: RunResult, tables: RunTables) -> None:
    """Write the run's rows in one transaction, state pending (see the module's docstring)."""
    comparison = run.comparison
    with _errors(Path(_db_path(conn))), conn:
        conn.execute(
            "INSERT INTO runs (run_id, state, started, finished, input_dir, tool_version, rulebook_id, "
            "rulebook_version, rulebook_hash, trust_self_scores, files_read, districts_ranked, not_submitted, "
            "errors, warnings, consequences, compared_with) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?)",
            (run.run_id, PENDING, run.started.isoformat(), run.finished.isoformat(), run.input_dir,
             run.tool_version, run.rulebook_id, run.rulebook_version, run.rulebook_hash, int(run.trust_self_scores),
             len(run.files), len(run.districts), len(run.not_submitted), run.count(ERROR), run.count(WARNING),
             run.count(CONSEQUENCE), comparison.reference if comparison else None))
        files = tables.files.assign(modified=tables.files["modified"].map(lambda t: t.isoformat()),
                                    codes=tables.files["codes"].map(", ".join))
        _insert(conn, "files", run.run_id, files[["file", "district", "status", "sha256", "size", "modified",
                                                  "modified_ns", "codes", "reason", "seconds"]])
        _insert(conn, "scores", run.run_id, tables.scores[["district", "code", "self_score", "score", "max",
                                                           "source", "status"]])
        subtotals = subtotals_frame(run)
        rank_of = {(d.district, code): r for d in run.districts for code, r in d.part_ranks.items()}
        rank_of.update({(d.district, s.code): d.rank for d in run.districts for s in d.subtotals.values()
                        if s.level == TOTAL})
        subtotals["rank"] = [rank_of.get(k) for k in zip(subtotals["district"], subtotals["code"], strict=True)]
        _insert(conn, "subtotals", run.run_id, subtotals[["district", "code", "level", "max", "applicable_max",
                                                          "achieved", "scaled", "self_sum", "declared", "gap",
                                                          "rank"]])
        _insert(conn, "ranks", run.run_id, tables.ranking[["district", "rank", "total", "plain_total",
                                                           "declared_total", "previous_rank", "rank_change",
                                                           "status", "errors", "warnings", "not_applicable",
                                                           "file"]])
        _insert(conn, "findings", run.run_id, tables.findings)


def mark_published(conn: sqlite3.Connection, run_id: str) -> None:
    """The run's outputs are published: its rows count for readers from now on."""
    with _errors(Path(_db_path(conn))), conn:
        conn.execute("UPDATE runs SET state = ? WHERE run_id = ?", (PUBLISHED, run_id))


def _insert(conn: sqlite3.Connection, table: str, run_id: str, frame: pd.DataFrame) -> None:
    """The frame's rows, run_id first, in executemany batches of BATCH rows; NaN and pandas' NA as NULL."""
    columns = ", ".join(["run_id", *frame.columns])
    marks = ", ".join("?" * (len(frame.columns) + 1))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608 (our own table and column names)
    rows = (_row(run_id, values) for values in frame.itertuples(index=False, name=None))
    for chunk in _chunks(rows, BATCH):
        conn.executemany(sql, chunk)


def _row(run_id: str, values: tuple) -> tuple:
    return (run_id, *(_sql_value(v) for v in values))


def _sql_value(v: object) -> object:
    """A cell as SQLite stores it: None for NaN or NA, Python's int, float or str."""
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
        if isinstance(v, float) and v != v:
            return None
    if isinstance(v, bool | int | float | str):
        return v
    return str(v)


def _chunks(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    chunk: list[tuple] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- reading it back: `batch.py history` ------------------------------------------------------------------


@dataclass(frozen=True)
class RunRow:
    """One published run, as `batch.py history` lists it."""

    run_id: str
    started: str
    finished: str
    rulebook: str
    files_read: int
    districts_ranked: int
    not_submitted: int
    errors: int
    warnings: int


@dataclass(frozen=True)
class DistrictStep:
    """One district in one run: its total, parts and rank (None where it was not ranked that night)."""

    run_id: str
    finished: str
    rank: int | None
    total: float | None
    parts: dict[str, float]
    status: str | None
    errors: int | None


def list_runs(out: Path, current_run_id: str | None = None) -> list[RunRow]:
    """The published runs of DIR, oldest first (a pending run counts only when the manifest names it)."""
    where, args = _published(current_run_id)
    with _runs_of(out) as conn:
        if conn is None:
            return []
        rows = conn.execute(
            "SELECT run_id, started, finished, rulebook_id || ' ' || rulebook_version, files_read, "
            f"districts_ranked, not_submitted, errors, warnings FROM runs WHERE {where} ORDER BY seq",  # noqa: S608
            args).fetchall()
    return [RunRow(*r) for r in rows]


def district_path(out: Path, district: str, current_run_id: str | None = None) -> list[DistrictStep]:
    """One district across the published runs of DIR, oldest first: total, parts and rank each night."""
    where, args = _published(current_run_id)
    with _runs_of(out) as conn:
        if conn is None:
            return []
        runs = conn.execute(f"SELECT run_id, finished FROM runs WHERE {where} ORDER BY seq", args).fetchall()  # noqa: S608
        ranks = {r[0]: r[1:] for r in conn.execute(
            "SELECT run_id, rank, total, status, errors FROM ranks WHERE district = ?", (district,))}
        parts: dict[str, dict[str, float]] = {}
        for run_id, code, scaled in conn.execute(
                "SELECT run_id, code, scaled FROM subtotals WHERE district = ? AND level = ?", (district, PART)):
            parts.setdefault(run_id, {})[code] = scaled
    steps = []
    for run_id, finished in runs:
        rank, total, status, errors = ranks.get(run_id, (None, None, None, None))
        steps.append(DistrictStep(run_id, finished, rank, total, parts.get(run_id, {}), status, errors))
    return steps


@contextlib.contextmanager
def _runs_of(out: Path) -> Iterator[sqlite3.Connection | None]:
    """DIR's history opened read-only, or None when no run has written one yet."""
    path = Path(out) / HISTORY_DB
    if not path.is_file():
        yield None
        return
    with _read_only(path) as conn:
        yield conn if _has_runs(conn) else None


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """path opened for reading. A run killed while it wrote leaves NAME-journal, which the next connection
    must roll back (SQLite's recovery: the database as last committed) and a read-only one may not: then it is
    opened read-write, never created, and this reader writes nothing else."""
    mode = "rw" if Path(f"{path}-journal").exists() else "ro"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=_TIMEOUT)
    except sqlite3.Error as exc:
        raise HistoryError(f"không mở được {path}: {exc}") from exc
    try:
        with _errors(path):
            yield conn
    finally:
        conn.close()


def history_districts(out: Path) -> list[str]:
    """Every district ranked in some run of DIR, by name."""
    with _read_only(Path(out) / HISTORY_DB) as conn:
        if not _has_runs(conn):
            return []
        return [n for (n,) in conn.execute("SELECT DISTINCT district FROM ranks ORDER BY district")]


def _has_runs(conn: sqlite3.Connection) -> bool:
    """Whether a run ever wrote here: the mail's commands may create the file before the first run."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ranks'").fetchone() is not None
