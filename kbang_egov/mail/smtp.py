"""The SMTP transport: a logged-in connection (ssl, starttls, or plaintext to a loopback test server only),
or, for a dry run, one .eml file per message in an outbox folder. The password comes from the environment
at login (settings.MailServer.password) and is never part of a message, a log or an error."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

from ..operations.atomic import write_atomically
from ..settings import LOOPBACK_HOSTS, MailServer

TIMEOUT = 60  # seconds for one SMTP exchange


class SendError(Exception):
    """The server cannot be reached or refused a message; the message says which and why (never a password)."""


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
