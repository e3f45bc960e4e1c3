"""The settings file: every key checked, passwords refused, plaintext only on loopback."""

import datetime as dt
from pathlib import Path

import pytest

from kbang_egov.settings import SettingsError, build_settings, load_settings, mail_server

REPO = Path(__file__).resolve().parent.parent


def test_the_example_in_the_repository_loads():
    s = load_settings(REPO / "settings.example.toml")
    assert (s.province, s.year, s.deadline) == ("Gia Lai", 2020, dt.date(2020, 12, 15))
    assert (s.smtp.host, s.smtp.port, s.smtp.security) == ("mail.gialai.gov.vn", 587, "starttls")
    assert (s.imap.port, s.imap.security, s.imap.folder) == (993, "ssl", "INBOX")
    assert s.sender_name.startswith("Sở Thông tin")


def test_no_file_gives_empty_settings():
    s = load_settings(None)
    assert (s.province, s.year, s.deadline, s.smtp.configured) == ("", None, None, False)


@pytest.mark.parametrize("data, key", [
    ({"smtp": {"host": "127.0.0.1", "password": "x"}}, "smtp.password"),
    ({"imap_pass": "x"}, "imap_pass"),
    ({"provinse": "Gia Lai"}, "provinse"),
    ({"smtp": {"host": "mail.example.vn", "security": "none"}}, "smtp.security"),
    ({"imap": {"security": "tls"}}, "imap.security"),
    ({"smtp": {"port": 70000}}, "smtp.port"),
    ({"deadline": "2020-12-15"}, "deadline"),
    ({"year": "2020"}, "year"),
    ({"sender": "x"}, "sender"),
])
def test_what_cannot_be_used_is_refused_naming_the_key(data, key):
    with pytest.raises(SettingsError) as info:
        build_settings(data)
    assert key in str(info.value)


def test_a_password_in_the_file_is_never_echoed():
    with pytest.raises(SettingsError) as info:
        build_settings({"smtp": {"password": "s3cret-value"}})
    assert "s3cret-value" not in str(info.value)


def test_ports_default_by_security_and_passwords_come_from_the_environment(monkeypatch):
    s = build_settings({"smtp": {"host": "127.0.0.1", "security": "none"}, "imap": {"host": "h", "security": "ssl"}})
    assert (s.smtp.port, s.imap.port) == (25, 993)
    monkeypatch.setenv("KBANG_EGOV_IMAP_PASSWORD", "pw")
    assert s.imap.password() == "pw" and "pw" not in repr(s)


def test_command_line_servers_are_checked_as_the_files_are():
    with pytest.raises(SettingsError):
        mail_server("imap", host="10.0.0.5", security="none")
    assert mail_server("imap", host="127.0.0.1", port=1143, security="none").port == 1143


def test_a_broken_file_names_itself(tmp_path):
    bad = tmp_path / "s.toml"
    bad.write_text("province = \n", encoding="utf-8")
    with pytest.raises(SettingsError) as info:
        load_settings(bad)
    assert str(bad) in str(info.value)
