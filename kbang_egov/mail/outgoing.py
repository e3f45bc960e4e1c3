"""The two sendings: each district's template before the round, and each district's feedback workbook
after a run; every message recorded in the ledger, so that none goes twice. The transport is smtp.py."""

from __future__ import annotations

import csv
import hashlib
import io
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path, PurePath

from ..forms.template import write_template
from ..rules.districts import District, DistrictIndex
from ..rules.rulebook import Rulebook
from ..settings import Settings
from ..text import printable
from .contacts import Contacts
from .ledger import Ledger
from .messages import feedback_message, template_message
from .smtp import Outgoing


class SendingInputError(Exception):
    """What to send is not usable (a district without an address, no feedback table): nothing was sent."""


TEMPLATE, FEEDBACK = "template", "feedback"
SENT, WRITTEN, SKIPPED = "sent", "written", "skipped"
FEEDBACK_CSV = Path("feedback") / "feedback.csv"
FEEDBACK_COLUMNS = ("district", "feedback_file", "source_file", "source_sha256", "status")
SENDABLE_STATUSES = ("ranked", "not-scored")  # a superseded return's feedback is not sent: its newer one is


@dataclass(frozen=True)
class Sent:
    """What became of one district's message."""

    district: str
    outcome: str  # sent, written (dry run), skipped
    where: str  # the server and recipients, or the .eml file
    reason: str = ""  # why it was skipped


def send_templates(rulebook: Rulebook, districts: list[District], chosen: list[District], contacts: Contacts,
                   settings: Settings, ledger: Ledger, out: Outgoing, resend: bool = False) -> list[Sent]:
    """Each chosen district its own template, attached to a Vietnamese message. A district already sent
    one (the ledger says so) is skipped unless resend; a dry run (out.outbox) records nothing."""
    missing = [d.name for d in chosen if d not in contacts.addresses]
    if missing:
        raise SendingInputError(f"danh bạ {contacts.source} không có địa chỉ của: {', '.join(missing)}")
    done: list[Sent] = []
    with tempfile.TemporaryDirectory(prefix="kbang-templates-") as work:
        for d in chosen:
            if not resend and out.outbox is None and ledger.was_sent(TEMPLATE, d.name):
                done.append(Sent(d.name, SKIPPED, "", "đã gửi trước đây (dùng --resend để gửi lại)"))
                continue
            path = write_template(rulebook, work, d, districts)
            recipients = list(contacts.addresses[d])
            msg = template_message(settings, d, recipients, path, rulebook.year)
            done.append(_deliver(out, ledger, msg, TEMPLATE, d, recipients, path, f"{TEMPLATE}_{d.slug}"))
    return done


def send_feedback(out_dir: Path, contacts: Contacts, settings: Settings, ledger: Ledger, out: Outgoing,
                  year: int, resend: bool = False) -> list[Sent]:
    """Each district its feedback workbook from the last run (DIR/feedback/feedback.csv), as a reply to
    the message its return came in when the ledger knows it. The same feedback is not sent twice unless
    resend."""
    table = out_dir / FEEDBACK_CSV
    try:
        text = table.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SendingInputError(f"không đọc được {table}: {exc.strerror or exc}; chạy 'batch.py run' trước để "
                                "có tệp phản hồi") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and not set(FEEDBACK_COLUMNS) <= set(rows[0]):
        raise SendingInputError(f"{table} thiếu cột: cần {','.join(FEEDBACK_COLUMNS)}")
    index = DistrictIndex(list(contacts.addresses))
    done: list[Sent] = []
    for row in rows:
        if row["status"] not in SENDABLE_STATUSES or not row["feedback_file"]:
            continue
        district = index.match(row["district"])
        label = printable(row["district"], 80)
        if district is None:
            done.append(Sent(label, SKIPPED, "", f"không có trong danh bạ {contacts.source}"))
            continue
        name = row["feedback_file"]
        path = table.parent / name
        # A bare name of a regular file in the feedback folder itself: never a link out of it.
        if PurePath(name).name != name or name in (".", "..") or path.is_symlink() or not path.is_file() \
                or path.resolve().parent != table.parent.resolve():
            done.append(Sent(district.name, SKIPPED, "", f"không có tệp phản hồi {printable(name, 80)}"))
            continue
        # One feedback per return: tonight's workbook can differ from last night's (its rank or the medians
        # moved) when the district sent nothing new, so what was answered is the return, not the attachment.
        answers = row["source_sha256"].strip().lower() or hashlib.sha256(path.read_bytes()).hexdigest()
        if not resend and out.outbox is None and ledger.was_sent(FEEDBACK, district.name, answers):
            done.append(Sent(district.name, SKIPPED, "", "đã gửi phản hồi cho bài nộp này (dùng --resend để gửi "
                                                         "lại)"))
            continue
        origin = ledger.collected(row["source_sha256"].strip().lower()) if row["source_sha256"] else None
        recipients = list(contacts.addresses[district])
        msg = feedback_message(settings, district, recipients, path, year, row["status"],
                               origin.message_id if origin else "", origin.subject if origin else "")
        done.append(_deliver(out, ledger, msg, FEEDBACK, district, recipients, path, f"{FEEDBACK}_{district.slug}",
                             answers))
    return done


def _deliver(out: Outgoing, ledger: Ledger, msg: EmailMessage, kind: str, district: District, recipients: list[str],
             path: Path, stem: str, answers: str = "") -> Sent:
    where, refused = out.send(msg, stem)
    if out.outbox is not None:
        return Sent(district.name, WRITTEN, where)
    ledger.record_sent(kind, district.name, [r for r in recipients if r not in refused], str(msg["Message-ID"]),
                       str(msg["Subject"]), path.name, hashlib.sha256(path.read_bytes()).hexdigest(), answers)
    return Sent(district.name, SENT, where, f"máy chủ từ chối địa chỉ {', '.join(refused)}" if refused else "")
