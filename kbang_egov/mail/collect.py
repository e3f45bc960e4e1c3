"""Collecting the returns: every workbook attached to a message in a Maildir or an IMAP folder saved into
the inbox folder under a safe name (district, date, short hash), once per distinct content, with the
sender matched to a district through the contacts and the return's own unit name checked against it.

Mail is only read: the IMAP folder is opened read-only (EXAMINE, BODY.PEEK), a Maildir only listed and
read, so nothing is deleted, moved or flagged. Nothing an attachment is called reaches the file system:
the saved name is built from the district's ASCII slug, the day received and the content's hash, so
`../../x.xlsx`, an absolute path or a reserved name cannot place a file anywhere but the inbox. The
reader's size limit and the guard's zip checks are applied before anything is written; each file is
written atomically with the time the province's server received it as its modification time (a run
computes lateness, and the latest of two returns, from it; the sender's Date header is used only when the
server gives no time).
A collect cut off mid-way (a lost connection) leaves only whole files, each in the ledger: the next
collect finds the rest and saves only what is missing.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import imaplib
import mailbox
import os
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from ..operations.atomic import STAMP_FORMAT, write_atomically
from ..operations.isolation import Failure, run_isolated
from ..reading.guard import screen
from ..reading.inbox import FILE_LIMIT
from ..reading.reader import read_submission
from ..rules.checks import identify_district
from ..rules.districts import District, DistrictIndex
from ..rules.rulebook import Rulebook
from ..settings import LOOPBACK_HOSTS, MailServer
from ..text import printable
from .contacts import Contacts, normalize_address
from .ledger import Collected, Ledger

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
WORKBOOK_TYPES = {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
                  "application/vnd.ms-excel.sheet.macroenabled.12": ".xlsm",
                  "application/vnd.ms-excel": ".xls",
                  "application/vnd.oasis.opendocument.spreadsheet": ".ods"}
# A message carries its attachments in base64 (4/3 of their size) plus its text: a message this large
# cannot hold a workbook the reader would accept, and is never fetched.
MESSAGE_LIMIT = FILE_LIMIT * 3 // 2 + 2**20
# The guard's findings that mean "do not even keep these bytes" (they inflate past the limits or hide an
# XML bomb); every other finding is the run's to report, so the file is kept and scored as the run says.
REFUSING_CODES = frozenset({"file-too-large", "file-unsupported-compression", "file-unsafe-xml"})
IMAP_TIMEOUT = 60
UNIT_NAME_TIMEOUT = 60  # seconds to read one attachment's unit name (the batch gives a file as long)
MAX_DEPTH = 20  # multiparts and forwarded messages nested in one another: a forward of a forward is 4 or 6
UNKNOWN = "unknown"
SUMMARY_NOTES = 12  # quarantined and refused files named on the screen; the log has them all

SAVED, DUPLICATE, QUARANTINED, REFUSED = "saved", "duplicate", "quarantined", "refused"
OUTCOME_VI = {SAVED: "đã lưu", DUPLICATE: "trùng", QUARANTINED: "cách ly", REFUSED: "từ chối"}  # as the log says


class CollectError(Exception):
    """The mailbox cannot be opened at all (no such Maildir, the IMAP server refuses the login, ...)."""


@dataclass(frozen=True)
class Incoming:
    """One message as the source gives it: its bytes, or None with its size when it is over the limit."""

    source_id: str  # "imap:INBOX/17" or "maildir:KEY", for the log
    data: bytes | None
    size: int
    received: dt.datetime | None = None  # when the province's server took it (IMAP INTERNALDATE, Maildir key)


@dataclass(frozen=True)
class Item:
    """What became of one workbook attachment (or of a message too large to fetch)."""

    outcome: str  # saved, duplicate, quarantined, refused
    original_name: str
    sender: str
    district: str  # the district it was saved for ('' when unknown)
    file: str  # where it is (saved, quarantined, or the earlier copy of a duplicate)
    reason: str  # for quarantined and refused: why, in Vietnamese
    source_id: str


@dataclass
class CollectReport:
    messages: int = 0
    items: list[Item] = field(default_factory=list)
    ignored: int = 0  # attachments that are not workbooks
    own: int = 0  # attachments of the province's own messages (templates, feedback): not returns
    interrupted: str = ""  # why the source stopped before its end ('' when it did not)
    log: Path | None = None

    def count(self, outcome: str) -> int:
        return sum(1 for i in self.items if i.outcome == outcome)


# --- sources ----------------------------------------------------------------------------------------


def maildir_messages(path: str | Path, limit: int = MESSAGE_LIMIT) -> Iterator[Incoming]:
    """Every message of a Maildir (new and cur), read and never changed, none of more than limit bytes read;
    CollectError when it is not a Maildir."""
    p = Path(path)
    if not all((p / sub).is_dir() for sub in ("new", "cur", "tmp")):
        raise CollectError(f"{p} không phải thư mục Maildir (cần các thư mục con new, cur, tmp)")
    box = mailbox.Maildir(p, factory=None, create=False)
    for key in sorted(box.keys()):
        try:
            f = box.get_file(key)
        except (KeyError, OSError):
            continue  # taken away by a mail client meanwhile: the next collect sees where it went
        try:
            data = f.read(limit + 1)
        finally:
            f.close()
        yield Incoming(f"maildir:{key}", data if len(data) <= limit else None, len(data), _delivered(key))


def connect_imap(server: MailServer) -> imaplib.IMAP4:
    """A logged-in IMAP connection; CollectError when the server cannot be used (never naming the password)."""
    if not server.configured:
        raise CollectError("chưa có máy chủ nhận thư: đặt [imap] host trong tệp cấu hình, --imap-host hoặc "
                           "dùng --maildir")
    if server.security == "none" and server.host not in LOOPBACK_HOSTS:
        raise CollectError(f"security 'none' chỉ dùng với 127.0.0.1, không với {server.host}")
    where = f"{server.host}:{server.port}"
    try:
        if server.security == "ssl":
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(server.host, server.port, ssl_context=ssl.create_default_context(),
                                                    timeout=IMAP_TIMEOUT)
        else:
            conn = imaplib.IMAP4(server.host, server.port, timeout=IMAP_TIMEOUT)
            if server.security == "starttls":
                conn.starttls(ssl_context=ssl.create_default_context())
    except (imaplib.IMAP4.error, OSError) as exc:
        raise CollectError(f"không kết nối được máy chủ nhận thư {where}: {_reason(exc)}") from None
    try:
        if server.user:
            conn.login(server.user, server.password())
    except imaplib.IMAP4.error:
        _close(conn)
        raise CollectError(f"máy chủ {where} không chấp nhận tài khoản {server.user}: kiểm tra biến môi trường "
                           "KBANG_EGOV_IMAP_PASSWORD") from None
    except OSError as exc:
        _close(conn)
        raise CollectError(f"mất kết nối với {where}: {_reason(exc)}") from None
    return conn


def imap_messages(server: MailServer, limit: int = MESSAGE_LIMIT) -> Iterator[Incoming]:
    """Every message of the IMAP folder, opened read-only (EXAMINE) and fetched with BODY.PEEK, so that no
    flag, no message and no folder changes; one message at a time, its size asked first (a message over
    limit bytes is not fetched)."""
    conn = connect_imap(server)
    try:
        folder = '"' + server.folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
        typ, data = conn.select(folder, readonly=True)
        if typ != "OK":
            raise CollectError(f"không mở được thư mục {server.folder} trên {server.host}: "
                               f"{_text(data)}")
        typ, data = conn.uid("SEARCH", None, "ALL")
        if typ != "OK":
            raise CollectError(f"không liệt kê được thư trong {server.folder}: {_text(data)}")
        for uid in (data[0] or b"").split():
            name = f"imap:{server.folder}/{uid.decode()}"
            typ, data = conn.uid("FETCH", uid, "(RFC822.SIZE INTERNALDATE)")
            line = data[0] if data and isinstance(data[0], bytes) else b""
            m = re.search(rb"RFC822\.SIZE (\d+)", line)
            if typ != "OK" or m is None:
                continue  # expunged by someone else meanwhile
            size, received = int(m.group(1)), _internal_date(line)
            if size > limit:
                yield Incoming(name, None, size, received)
                continue
            typ, data = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((d[1] for d in data or [] if isinstance(d, tuple)), None)
            if typ == "OK" and raw is not None:
                yield Incoming(name, raw, len(raw), received)
    finally:
        _close(conn)


def _internal_date(line: bytes) -> dt.datetime | None:
    parsed = imaplib.Internaldate2tuple(line) if b"INTERNALDATE" in line else None
    return dt.datetime.fromtimestamp(time.mktime(parsed), dt.UTC) if parsed else None


def _delivered(key: str) -> dt.datetime | None:
    """A Maildir file's delivery time: its unique name starts with it in seconds (the Maildir convention)."""
    head = key.split(".", 1)[0]
    return dt.datetime.fromtimestamp(int(head), dt.UTC) if head.isdigit() and len(head) <= 11 else None


def _close(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (imaplib.IMAP4.error, OSError):
        try:
            conn.shutdown()
        except OSError:
            pass


def _text(data: object) -> str:
    if isinstance(data, list) and data and isinstance(data[0], bytes):
        return printable(data[0].decode("utf-8", "replace"), 200)
    return ""


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or printable(f"{type(exc).__name__}: {exc}", 200)


# --- collecting ------------------------------------------------------------------------------------


def collect_returns(messages: Iterator[Incoming], inbox: Path, quarantine: Path, contacts: Contacts,
                    rulebook: Rulebook, ledger: Ledger, own_addresses: tuple[str, ...] = (),
                    file_limit: int = FILE_LIMIT) -> CollectReport:
    """Save every workbook attached to the messages into inbox (known sender, matching unit) or quarantine;
    see the module's docstring. Files attached by own_addresses (the province's own templates and feedback,
    in the same mailbox or copied to it) are not returns: counted as own and skipped; a district's message
    the officer forwarded is still collected for that district. A source that fails mid-way (a lost
    connection) ends the collect with `interrupted` set: what was saved is whole and recorded, the next
    collect completes the rest."""
    own = {normalize_address(a) for a in own_addresses if a}
    inbox.mkdir(parents=True, exist_ok=True)
    quarantine.mkdir(parents=True, exist_ok=True)
    known = _hashes(inbox)
    report = CollectReport()
    while True:
        try:
            incoming = next(messages)
        except StopIteration:
            break
        except (imaplib.IMAP4.error, OSError, EOFError) as exc:
            report.interrupted = _reason(exc)
            break
        report.messages += 1
        if incoming.data is None:
            report.items.append(Item(REFUSED, "", "", "", "", f"thư lớn {_mb(incoming.size)}, quá giới hạn của "
                                     "một thư: không tải về", incoming.source_id))
            continue
        try:
            msg = message_from_bytes(incoming.data, policy=policy.default)
            parts = list(_attachments(msg, [_from(msg)]))
        except Exception as exc:  # noqa: BLE001 - one message the parser cannot take (nested thousands deep
            # raises RecursionError) must not stop the collect: it is reported, and the others are collected
            report.items.append(Item(REFUSED, "", "", "", "", f"thư không đọc được ({type(exc).__name__})",
                                     incoming.source_id))
            continue
        for part, senders in parts:
            if senders[-1] in own:
                report.own += 1
                continue
            senders = [x for x in senders if x not in own]
            try:
                item = _collect_part(part, senders, msg, incoming, inbox, quarantine, contacts, rulebook,
                                     ledger, known, file_limit)
            except OSError:
                raise  # the inbox or the ledger cannot be written: that stops the collect
            except Exception as exc:  # noqa: BLE001 - a part the email package cannot decode
                item = Item(REFUSED, "", "", "", "", f"tệp đính kèm không đọc được ({type(exc).__name__})",
                            incoming.source_id)
            if item is None:
                report.ignored += 1
            else:
                report.items.append(item)
    return report


def _from(msg: EmailMessage) -> str:
    try:
        return normalize_address(str(msg.get("From", "")))
    except (ValueError, TypeError):  # a From header the parser cannot make sense of
        return ""


def _attachments(msg: EmailMessage, senders: list[str], depth: int = 0) -> Iterator[tuple[EmailMessage, list[str]]]:
    """Every leaf part with a file name, with the senders of the messages it is nested in, outermost first
    (a forwarded message's own sender follows the forwarder's); nothing nested deeper than MAX_DEPTH."""
    if depth > MAX_DEPTH:
        return
    if not msg.is_multipart():  # a message that is nothing but its attachment
        if msg.get_filename() or msg.get_content_disposition() == "attachment":
            yield msg, senders
        return
    for part in msg.iter_parts():
        if part.get_content_type() == "message/rfc822":
            for inner in part.iter_parts():
                yield from _attachments(inner, [*senders, _from(inner)], depth + 1)
        elif part.is_multipart():
            yield from _attachments(part, senders, depth + 1)
        elif part.get_filename() or part.get_content_disposition() == "attachment":
            yield part, senders


def _suffix(part: EmailMessage) -> tuple[str, str]:
    """The attachment's decoded name (RFC 2231 / 2047 by the email policy) and its workbook suffix ('' when
    it is not a workbook)."""
    try:
        full = printable(part.get_filename() or "")
    except (ValueError, TypeError, LookupError):
        full = ""
    name = printable(full, 200)  # for the log and the ledger; the suffix is the full name's
    base = full.replace("\\", "/").rsplit("/", 1)[-1].rstrip(". ")  # ".xlsx" and "x.xlsx." are workbooks too
    suffix = "." + base.rsplit(".", 1)[-1].lower() if "." in base else ""
    if suffix in WORKBOOK_SUFFIXES:
        return name, suffix
    return name, (WORKBOOK_TYPES.get(part.get_content_type(), "") if not suffix else "")


_MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,250}>")  # printable ASCII without < > or spaces, in angle brackets


def _message_id(msg: EmailMessage) -> str:
    """The Message-ID a feedback can reply to, or '' when it is missing or not a plain <id@host> (it goes
    back into a header, where a line break or a stray bracket would forge other headers)."""
    try:
        value = str(msg.get("Message-ID", "")).strip()
    except (ValueError, TypeError):
        return ""
    return value if _MESSAGE_ID.fullmatch(value) else ""


def _message_date(msg: EmailMessage) -> dt.datetime | None:
    try:
        date = parsedate_to_datetime(str(msg.get("Date", "")))
        date = date if date.tzinfo is not None else date.replace(tzinfo=dt.UTC)
        date.timestamp()  # a year the platform cannot hold as a file time
    except (ValueError, TypeError, IndexError, OverflowError, OSError):
        return None
    return date


def _collect_part(part: EmailMessage, senders: list[str], msg: EmailMessage, incoming: Incoming, inbox: Path,
                  quarantine: Path, contacts: Contacts, rulebook: Rulebook, ledger: Ledger,
                  known: set[str], file_limit: int) -> Item | None:
    name, suffix = _suffix(part)
    if not suffix:
        return None
    sender = next((s for s in senders if contacts.district_of(s) is not None), senders[0] if senders else "")
    district = contacts.district_of(sender) if sender else None

    def item(outcome: str, file: str = "", reason: str = "") -> Item:
        return Item(outcome, name, sender, district.name if district else "", file, reason, incoming.source_id)

    try:
        data = part.get_payload(decode=True) or b""
    except (ValueError, TypeError):
        data = b""
    if len(data) > file_limit:
        return item(REFUSED, reason=f"tệp {_mb(len(data))}, quá giới hạn {_mb(file_limit)} của bộ đọc: không lưu")
    screened = screen(data, name or "tệp đính kèm", suffix)
    if screened.finding is not None and screened.finding.code in REFUSING_CODES:
        return item(REFUSED, reason=f"{screened.finding.code}: {screened.finding.message}")
    sha = hashlib.sha256(data).hexdigest()
    # When the return came in is the province's server's word (IMAP INTERNALDATE, the Maildir delivery
    # time), not the sender's: a Date header can be set to anything, earlier to look on time, later to look
    # like the latest return. The header is used only when the server gives no time.
    header_date = _message_date(msg)
    date = incoming.received or header_date
    reason = ""
    if district is None:
        reason = f"người gửi {sender or '(không rõ)'} không có trong danh bạ {contacts.source}"
    elif screened.finding is None:
        named = _return_district(screened.data, name, rulebook, contacts)
        if named and named != district.name:
            reason = (f"tệp là bài của {named} (theo tên đơn vị, hoặc theo mẫu khi tên để trống), không phải "
                      f"của {district.name}, đơn vị của người gửi {sender}")
    # Saved once: in the inbox once, whatever else came; bytes quarantined before (a clerk's personal
    # address, since added to the contacts) move up to the inbox when a known sender sends them.
    earlier = ledger.collected(sha)
    if sha in known or (earlier is not None and (earlier.quarantined <= bool(reason))):
        return item(DUPLICATE, earlier.file if earlier else "")
    folder = quarantine if reason else inbox
    target = _target(folder, district, date, sha, suffix)
    stamp = date.timestamp() if date else None

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)
        if stamp is not None:
            os.utime(tmp, (stamp, stamp))

    write_atomically(target, write)
    if not reason:
        known.add(sha)
    ledger.record_collected(Collected(
        sha, str(target), district.name if district else "", bool(reason), reason, sender,
        _message_id(msg), printable(str(msg.get("Subject", "")), 300),
        header_date.isoformat() if header_date else "", name,
        incoming.received.isoformat(timespec="seconds") if incoming.received else ""))
    return item(QUARANTINED if reason else SAVED, str(target), reason)


def _return_district(data: bytes, name: str, rulebook: Rulebook, contacts: Contacts) -> str:
    """Whose return the file says it is, decided as the run decides it (rules.checks.identify_district: the
    unit name, else the district the template was made for): '' when it says none or cannot be read (the
    run then reports why). A return with its name cleared is still the template's district, so one district
    cannot send another's template to replace that district's return.

    Read in an isolated worker, as the batch reads every return: python-calamine is native code, and a
    hostile attachment that crashes or hangs it must cost this one check, not the rest of the collect."""
    job = functools.partial(_identify_return, rulebook=rulebook, districts=list(contacts.addresses))
    for _, outcome in run_isolated(job, [(data, name)], workers=1, timeout=UNIT_NAME_TIMEOUT):
        return "" if isinstance(outcome, Failure) else outcome
    return ""


def _identify_return(item: tuple[bytes, str], rulebook: Rulebook, districts: list[District]) -> str:
    data, name = item
    sub = read_submission(data, name or "tệp đính kèm", rulebook)
    if sub.rejected:
        return ""
    district, mismatch = identify_district(sub, DistrictIndex(districts))
    if mismatch is not None and mismatch.code == "district-mismatch":
        return str(mismatch.params.get("template", ""))  # the name typed over another district's template
    return district.name if district else ""


def _target(folder: Path, district: District | None, date: dt.datetime | None, sha: str, suffix: str) -> Path:
    """folder/<district slug>_<YYYYMMDD>_<sha256[:8]><suffix>: built only from safe parts, never from the
    attachment's own name."""
    day = date.strftime("%Y%m%d") if date else "00000000"
    slug = district.slug if district else UNKNOWN
    for length in (8, 16, 64):
        target = folder / f"{slug}_{day}_{sha[:length]}{suffix}"
        if not target.exists():
            return target
    return target


def _hashes(folder: Path) -> set[str]:
    """sha256 of every regular file in folder and below (what is already there counts as collected)."""
    found = set()
    for p in folder.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink() and p.stat().st_size <= FILE_LIMIT:
                found.add(hashlib.sha256(p.read_bytes()).hexdigest())
        except OSError:
            continue
    return found


# --- the log and the summary -------------------------------------------------------------------------


def write_collect_log(report: CollectReport, out_dir: Path, source: str) -> Path:
    """DIR/logs/collect_<stamp>.log: one line per attachment, for the operator."""
    now = dt.datetime.now()
    folder = out_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"nhận thư {now.isoformat(timespec='seconds')} từ {source}",
             f"{report.messages} thư: lưu {report.count(SAVED)}, trùng {report.count(DUPLICATE)}, "
             f"cách ly {report.count(QUARANTINED)}, từ chối {report.count(REFUSED)}, "
             f"tệp đính kèm khác bỏ qua {report.ignored}, tệp do chính Sở gửi đi bỏ qua {report.own}"]
    if report.interrupted:
        lines.append(f"bị ngắt: {report.interrupted}; chạy lại collect để nhận nốt")
    for i in report.items:
        outcome = OUTCOME_VI.get(i.outcome, i.outcome)
        lines.append("\t".join(printable(x) for x in (outcome, i.source_id, i.sender, i.district, i.original_name,
                                                        i.file, i.reason)))
    target = folder / f"collect_{now.strftime(STAMP_FORMAT)}.log"
    write_atomically(target, lambda tmp: tmp.write_text("\n".join(lines) + "\n", encoding="utf-8"))
    report.log = target
    return target


def collect_summary(report: CollectReport, inbox: Path, quarantine: Path) -> str:
    """One screen, in Vietnamese, for the officer."""
    lines = [f"Đã đọc {report.messages} thư: lưu {report.count(SAVED)} tệp mới vào {inbox}, "
             f"{report.count(DUPLICATE)} tệp trùng (đã có), {report.count(QUARANTINED)} tệp cách ly, "
             f"{report.count(REFUSED)} tệp từ chối, {report.ignored} tệp đính kèm khác bỏ qua"
             + (f", {report.own} tệp do chính Sở gửi đi bỏ qua." if report.own else ".")]
    saved = sorted({i.district for i in report.items if i.outcome in (SAVED, DUPLICATE) and i.district})
    if saved:
        lines.append(f"Đơn vị đã có bài nộp: {len(saved)} ({', '.join(saved)}).")
    notes = []
    for i in report.items:
        if i.outcome == QUARANTINED:
            notes.append(f"  Cách ly {Path(i.file).name} ({printable(i.original_name, 60)}): {printable(i.reason, 160)}")
        elif i.outcome == REFUSED:
            notes.append(f"  Từ chối {printable(i.original_name, 60) or i.source_id} từ {printable(i.sender, 80) or '?'}: "
                         f"{printable(i.reason, 160)}")
    lines += notes[:SUMMARY_NOTES]
    if len(notes) > SUMMARY_NOTES:
        lines.append(f"  ... và {len(notes) - SUMMARY_NOTES} tệp khác: xem nhật ký")
    if report.count(QUARANTINED):
        lines.append(f"Tệp cách ly nằm trong {quarantine}, không được chấm; kiểm tra rồi thêm người gửi vào danh bạ "
                     "hoặc chuyển tệp vào thư mục bài nộp.")
    if report.interrupted:
        lines.append(f"Việc nhận thư bị ngắt ({report.interrupted}): chạy lại collect để nhận nốt; tệp đã lưu "
                     "không bị lưu lại lần nữa.")
    if report.log:
        lines.append(f"Nhật ký: {report.log}")
    return "\n".join(lines)
