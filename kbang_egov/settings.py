"""The officer's settings: one TOML file for the province, the year, the deadline and the mail servers.

Read once by the CLI and passed down as a plain value. Passwords are never in the file: they come from the
environment (`KBANG_EGOV_SMTP_PASSWORD`, `KBANG_EGOV_IMAP_PASSWORD`) at the moment a connection needs them,
so no settings object, log or error message can carry one. The documented example is settings.example.toml.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECURITY_CHOICES = ("ssl", "starttls", "none")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
PASSWORD_ENV = {"smtp": "KBANG_EGOV_SMTP_PASSWORD", "imap": "KBANG_EGOV_IMAP_PASSWORD"}
DEFAULT_PORTS = {("smtp", "ssl"): 465, ("smtp", "starttls"): 587, ("smtp", "none"): 25,
                 ("imap", "ssl"): 993, ("imap", "starttls"): 143, ("imap", "none"): 143}


class SettingsError(Exception):
    """The settings file cannot be used: the message names the key and says how to fix it."""


@dataclass(frozen=True)
class MailServer:
    """One mail server: where it is and how to talk to it. The password is looked up only when connecting."""

    kind: str  # "smtp" or "imap"
    host: str = ""
    port: int = 0
    security: str = "ssl"
    user: str = ""
    folder: str = "INBOX"  # IMAP only

    @property
    def configured(self) -> bool:
        return bool(self.host)

    def password(self) -> str:
        """The password from the environment ('' when unset: a loopback test server needs none)."""
        return os.environ.get(PASSWORD_ENV[self.kind], "")


@dataclass(frozen=True)
class Settings:
    """What the officer sets once a year. Every field has an empty default: a run needs none of them."""

    province: str = ""
    year: int | None = None
    deadline: dt.date | None = None
    return_address: str = ""  # where districts send their returns
    sender_name: str = ""
    sender_address: str = ""
    smtp: MailServer = field(default_factory=lambda: MailServer("smtp"))
    imap: MailServer = field(default_factory=lambda: MailServer("imap"))
    source: str = ""  # the file it came from, for messages


_TOP = {"province", "year", "deadline", "return_address", "sender", "smtp", "imap"}
_SENDER = {"name", "address"}
_SERVER = {"host", "port", "security", "user", "folder"}


def load_settings(path: str | Path | None) -> Settings:
    """Read a settings file; None gives the empty settings. Raises SettingsError on anything it cannot use."""
    if path is None:
        return Settings()
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise SettingsError(f"không đọc được tệp cấu hình {p}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"tệp cấu hình {p} không đúng cú pháp TOML: {exc}") from exc
    return build_settings(data, str(p))


def build_settings(data: dict[str, Any], source: str = "") -> Settings:
    """Settings from the parsed TOML tables, every key checked."""
    _refuse_passwords(data, "")
    _known(data, _TOP, "")
    sender = _table(data, "sender")
    _known(sender, _SENDER, "sender.")
    year = data.get("year")
    if year is not None and (not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2100):
        raise SettingsError(f"year: cần một năm như 2020, không phải {year!r}")
    deadline = data.get("deadline")
    if deadline is not None and not (isinstance(deadline, dt.date) and not isinstance(deadline, dt.datetime)):
        raise SettingsError(f"deadline: cần một ngày dạng 2020-12-15 (không đặt trong ngoặc kép), không phải {deadline!r}")
    return Settings(
        province=_text(data, "province"), year=year, deadline=deadline,
        return_address=_text(data, "return_address"),
        sender_name=_text(sender, "name", "sender."), sender_address=_text(sender, "address", "sender."),
        smtp=_server(_table(data, "smtp"), "smtp"), imap=_server(_table(data, "imap"), "imap"), source=source)


def mail_server(kind: str, host: str = "", port: int = 0, security: str = "ssl", user: str = "",
                folder: str = "INBOX") -> MailServer:
    """A server checked as the file's are (security known, plaintext only on loopback): for command-line values."""
    return _server({k: v for k, v in {"host": host, "port": port or None, "security": security, "user": user,
                                      "folder": folder}.items() if v is not None}, kind)


def _server(table: dict[str, Any], kind: str) -> MailServer:
    _known(table, _SERVER if kind == "imap" else _SERVER - {"folder"}, f"{kind}.")
    host = _text(table, "host", f"{kind}.")
    security = _text(table, "security", f"{kind}.") or "ssl"
    if security not in SECURITY_CHOICES:
        raise SettingsError(f"{kind}.security: chọn một trong {', '.join(SECURITY_CHOICES)}, không phải {security!r}")
    if security == "none" and host and host not in LOOPBACK_HOSTS:
        raise SettingsError(f"{kind}.security = 'none' chỉ dùng được với máy chủ 127.0.0.1 (thử nghiệm); "
                            f"máy chủ {host} cần 'ssl' hoặc 'starttls' để mật khẩu không đi dạng rõ")
    port = table.get("port", DEFAULT_PORTS[(kind, security)])
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise SettingsError(f"{kind}.port: cần một số cổng từ 1 đến 65535, không phải {port!r}")
    return MailServer(kind, host, port, security, _text(table, "user", f"{kind}."),
                      _text(table, "folder", f"{kind}.") or "INBOX")


def _refuse_passwords(data: dict[str, Any], prefix: str) -> None:
    for key, value in data.items():
        if "pass" in key.lower():
            raise SettingsError(f"{prefix}{key}: mật khẩu không ghi trong tệp cấu hình; đặt biến môi trường "
                                f"{PASSWORD_ENV['smtp']} hoặc {PASSWORD_ENV['imap']}")
        if isinstance(value, dict):
            _refuse_passwords(value, f"{prefix}{key}.")


def _known(table: dict[str, Any], allowed: set[str], prefix: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SettingsError(f"khóa không dùng được: {', '.join(prefix + k for k in unknown)} "
                            f"(các khóa hợp lệ: {', '.join(sorted(allowed))})")


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise SettingsError(f"{key}: cần một bảng [{key}], không phải {value!r}")
    return value


def _text(table: dict[str, Any], key: str, prefix: str = "") -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise SettingsError(f"{prefix}{key}: cần một chuỗi trong ngoặc kép, không phải {value!r}")
    return value.strip()
