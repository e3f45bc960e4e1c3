"""Sending: over SMTP (ssl, starttls, or plaintext to a loopback test server only), or, for a dry run,
one .eml file per message in an outbox folder. The password comes from the environment at login
(settings.MailServer.password) and is never part of a message, a log or an error."""

from __future__ import annotations

import csv
import hashlib
import io
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path, PurePath

from ..forms.template import write_template
from ..operations.atomic import write_atomically
from ..rules.districts import District, DistrictIndex
from ..rules.rulebook import Rulebook
from ..settings import LOOPBACK_HOSTS, MailServer, Settings
from ..text import printable
from .contacts import Contacts
from .ledger import Ledger
from .messages import feedback_message, template_message

TIMEOUT = 60  # seconds for one SMTP exchange


class SendError(Exception):
    """The server cannot be reached or refused a message; the message says which and why (never a password)."""


class SendingInputError(Exception):
    """What to send is not usable (a district without an address, no feedback table): nothing was sent."""


class Outgoing:
    """`with Outgoing(server, outbox) as out: out.send(msg, stem)`: SMTP when outbox is None, else .eml files."""

    def __init__(self, server: MailServer, outbox: Path | None = None) -> None:
        self.server, self.outbox = server, outbox
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> Outgoing:
        if self.outbox is not None:
            self.outbox.mkdir(parents=True, exist_ok=True)
        else:
            self._smtp = connect_smtp(self.server)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def send(self, msg: EmailMessage, stem: str) -> tuple[str, list[str]]:
        """Send msg (or write outbox/STEM.eml); returns where it went, for the log, and the recipients the
        server refused while it accepted others (the message went out: it is not sent again)."""
        if self.outbox is not None:
            target = self.outbox / f"{stem}.eml"
            write_atomically(target, lambda tmp: tmp.write_bytes(msg.as_bytes()))
            return str(target), []
        assert self._smtp is not None
        recipients = [a for _, a in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []))]
        try:
            refused = self._smtp.send_message(msg, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendError(f"máy chủ {self.server.host} từ chối mọi người nhận: {', '.join(exc.recipients)}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SendError(f"gửi thư qua {self.server.host}:{self.server.port} không được: {_reason(exc)}") from None
        accepted = [r for r in recipients if r not in refused]
        return f"{self.server.host}:{self.server.port} → {', '.join(accepted)}", sorted(refused)


def connect_smtp(server: MailServer) -> smtplib.SMTP:
    """A logged-in SMTP connection; SendError when the server cannot be used."""
    if not server.configured:
        raise SendError("chưa có máy chủ gửi thư: đặt [smtp] host trong tệp cấu hình hoặc --smtp-host")
    if server.security == "none" and server.host not in LOOPBACK_HOSTS:
        raise SendError(f"security 'none' chỉ dùng với 127.0.0.1, không với {server.host}")
    where = f"{server.host}:{server.port}"
    try:
        if server.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT)
            if server.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        if server.user:
            smtp.login(server.user, server.password())
    except smtplib.SMTPAuthenticationError:
        raise SendError(f"máy chủ {where} không chấp nhận tài khoản {server.user}: kiểm tra biến môi trường "
                        "KBANG_EGOV_SMTP_PASSWORD") from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise SendError(f"không kết nối được máy chủ gửi thư {where}: {_reason(exc)}") from None
    return smtp


def _reason(exc: BaseException) -> str:
    """The error without anything the session sent: smtplib's messages quote the server's reply only."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {text}"
    return getattr(exc, "strerror", None) or type(exc).__name__ + (f": {exc}" if str(exc) else "")


# --- the two sendings ----------------------------------------------------------------------------------

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
