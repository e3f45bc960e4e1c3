"""What the mail loop has done, in DIR/history.sqlite beside the runs' tables: the messages sent
(`mail_sent`, so a rerun does not send twice) and the attachments collected (`mail_collected`, so the same
bytes are saved once and the feedback can reply to the message a return came in). Only these two tables
are created here; the database's other tables belong to the runs. Callers hold DIR's run lock."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

DATABASE = "history.sqlite"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS mail_sent (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,             -- 'template' or 'feedback'
        district TEXT NOT NULL,
        recipients TEXT NOT NULL,       -- ';'-separated
        message_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        attachment TEXT NOT NULL,       -- the attached file's name
        attachment_sha256 TEXT NOT NULL,
        answers_sha256 TEXT NOT NULL DEFAULT '',  -- feedback: the return it answers (one feedback per return)
        sent_at TEXT NOT NULL           -- ISO time, UTC
    )""",
    "CREATE INDEX IF NOT EXISTS mail_sent_kind_district ON mail_sent (kind, district)",
    """CREATE TABLE IF NOT EXISTS mail_collected (
        sha256 TEXT PRIMARY KEY,        -- of the attachment's bytes: each is saved once
        file TEXT NOT NULL,             -- where it was saved (absolute path)
        district TEXT NOT NULL,         -- '' when quarantined with no known district
        quarantined INTEGER NOT NULL,
        reason TEXT NOT NULL,           -- why it was quarantined ('' otherwise)
        sender TEXT NOT NULL,
        message_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        message_date TEXT NOT NULL,     -- the message's Date header, ISO (the sender's word)
        received_at TEXT NOT NULL,      -- when the province's server took it, ISO: the saved file's time
        original_name TEXT NOT NULL,
        collected_at TEXT NOT NULL
    )""",
)


@dataclass(frozen=True)
class Collected:
    """One row of mail_collected."""

    sha256: str
    file: str
    district: str
    quarantined: bool
    reason: str
    sender: str
    message_id: str
    subject: str
    message_date: str
    original_name: str
    received_at: str = ""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Ledger:
    """DIR/history.sqlite opened for the mail tables: `with Ledger(out_dir) as ledger:`."""

    def __init__(self, out_dir: str | Path) -> None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        self.path = Path(out_dir) / DATABASE
        self._db = sqlite3.connect(self.path, timeout=30)
        with self._db:
            for statement in _SCHEMA:
                self._db.execute(statement)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def was_sent(self, kind: str, district: str, answers_sha256: str | None = None) -> bool:
        """Whether a message of this kind went to this district (answering this very return, when given)."""
        sql, args = "SELECT 1 FROM mail_sent WHERE kind = ? AND district = ?", [kind, district]
        if answers_sha256 is not None:
            sql, args = sql + " AND answers_sha256 = ?", [*args, answers_sha256]
        return self._db.execute(sql + " LIMIT 1", args).fetchone() is not None

    def record_sent(self, kind: str, district: str, recipients: list[str], message_id: str, subject: str,
                    attachment: str, attachment_sha256: str, answers_sha256: str = "") -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO mail_sent (kind, district, recipients, message_id, subject, attachment, "
                "attachment_sha256, answers_sha256, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, district, ";".join(recipients), message_id, subject, attachment, attachment_sha256,
                 answers_sha256, _now()))

    def collected(self, sha256: str) -> Collected | None:
        row = self._db.execute(
            "SELECT sha256, file, district, quarantined, reason, sender, message_id, subject, message_date, "
            "original_name, received_at FROM mail_collected WHERE sha256 = ?", (sha256,)).fetchone()
        return Collected(*row[:3], bool(row[3]), *row[4:]) if row else None

    def record_collected(self, c: Collected) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO mail_collected (sha256, file, district, quarantined, reason, sender, "
                "message_id, subject, message_date, original_name, received_at, collected_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (c.sha256, c.file, c.district, int(c.quarantined), c.reason, c.sender, c.message_id, c.subject,
                 c.message_date, c.original_name, c.received_at, _now()))
