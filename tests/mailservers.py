"""Real mail servers on loopback for the mail-loop tests: aiosmtpd (SMTP, in this process) delivering into a
Maildir that Dovecot (Debian's dovecot-imapd, its own config and base_dir in a temporary folder) serves over
IMAP, plaintext on 127.0.0.1 only. Ports are picked free, so pytest-xdist workers never clash.

Nothing here can reach another host: both servers listen on 127.0.0.1, and the SMTP handler delivers every
message into the local Maildir whatever its recipients (it relays nothing).
"""

from __future__ import annotations

import mailbox
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

HOST = "127.0.0.1"
IMAP_USER = "cqdt"
IMAP_PASSWORD = "loopback-only"  # a test account on a server that listens on 127.0.0.1 only


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)


def missing_servers() -> str:
    """What is missing to run the servers ('' when nothing): Debian's dovecot-imapd, PyPI's aiosmtpd."""
    if dovecot_binary() is None:
        return "dovecot (Debian package dovecot-imapd)"
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        return "aiosmtpd (pip install -r requirements-dev.txt)"
    return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class MaildirHandler:
    """aiosmtpd handler: every accepted message goes into the Maildir, as Dovecot's user can read it."""

    def __init__(self, maildir: Path, uid: int, gid: int) -> None:
        self.maildir, self.uid, self.gid = maildir, uid, gid
        self.received: list[tuple[str, list[str]]] = []  # (envelope sender, recipients) per message
        self.refuse: set[str] = set()  # recipients refused at RCPT, as a provider refuses an unknown mailbox

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: ANN001
        if address.lower() in self.refuse:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001 - aiosmtpd's handler API
        box = mailbox.Maildir(self.maildir, create=False)
        key = box.add(envelope.original_content or envelope.content)  # the bytes as they came, unparsed
        path = self.maildir / "new" / key
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


@dataclass
class MailServers:
    """The running pair: SMTP at smtp_port, IMAP at imap_port, both on 127.0.0.1, one Maildir behind them."""

    root: Path
    maildir: Path
    smtp_port: int
    imap_port: int
    handler: MaildirHandler
    _controller: object
    _dovecot: subprocess.Popen | None

    def messages(self) -> list:
        """Every message delivered so far, parsed (email.message.EmailMessage), in delivery order."""
        box = mailbox.Maildir(self.maildir, create=False)
        found = []
        for sub in ("new", "cur"):
            for p in sorted((self.maildir / sub).iterdir(), key=lambda p: p.stat().st_mtime_ns):
                found.append((p.stat().st_mtime_ns, message_from_bytes(p.read_bytes(), policy=policy.default)))
        del box
        return [m for _, m in sorted(found, key=lambda x: x[0])]

    def clear(self) -> None:
        """Empty the Maildir (between tests sharing the servers)."""
        for sub in ("new", "cur"):
            for p in (self.maildir / sub).iterdir():
                p.unlink()

    def stop(self) -> None:
        self._controller.stop()
        if self._dovecot is not None and self._dovecot.poll() is None:
            self._dovecot.send_signal(signal.SIGTERM)
            try:
                self._dovecot.wait(10)
            except subprocess.TimeoutExpired:
                self._dovecot.kill()
                self._dovecot.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def _accounts() -> tuple[str, str, int, int, str]:
    """Dovecot's login user, internal user, and the mail user's uid/gid and name: non-root when we are root
    (Dovecot refuses to run its login process as root), ourselves otherwise."""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        return "dovenull", "dovecot", nobody.pw_uid, nobody.pw_gid, "nobody"
    me = pwd.getpwuid(os.geteuid())
    return me.pw_name, me.pw_name, me.pw_uid, me.pw_gid, me.pw_name


_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# The tests log in wrongly on purpose: no delay after a failure, and no penalty for the address after it
# (anvil's auth penalty delayed the next test's good login by 4 s).
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
mail_location = maildir:{maildir}
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  inet_listener http {{
    port = 0
  }}
}}
"""


def start_mail_servers() -> MailServers:
    """Start aiosmtpd and Dovecot on free loopback ports; RuntimeError with Dovecot's log when it fails."""
    from aiosmtpd.controller import Controller

    binary = dovecot_binary()
    if binary is None:
        raise FileNotFoundError("dovecot")
    login_user, internal_user, uid, gid, _ = _accounts()
    root = Path(tempfile.mkdtemp(prefix="kbang-mail-"))
    os.chmod(root, 0o755)  # the mail user must reach the Maildir
    maildir = root / "Maildir"
    mailbox.Maildir(maildir, create=True)
    (root / "home").mkdir()
    if os.geteuid() == 0:
        for p in (maildir, maildir / "new", maildir / "cur", maildir / "tmp", root / "home"):
            os.chown(p, uid, gid)
    (root / "passwd").write_text(f"{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}\n", encoding="utf-8")
    imap_port = free_port()
    config = root / "dovecot.conf"
    config.write_text(_CONFIG.format(root=root, maildir=maildir, login_user=login_user,
                                     internal_user=internal_user, uid=uid, gid=gid, imap_port=imap_port),
                      encoding="utf-8")
    handler = MaildirHandler(maildir, uid, gid)
    smtp_port = free_port()
    controller = Controller(handler, hostname=HOST, port=smtp_port)
    controller.start()
    proc = subprocess.Popen([binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    servers = MailServers(root, maildir, smtp_port, imap_port, handler, controller, proc)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection((HOST, imap_port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return servers
        except OSError:
            time.sleep(0.1)
    err = proc.stderr.read().decode(errors="replace") if proc.poll() is not None and proc.stderr else ""
    log = (root / "dovecot.log").read_text(errors="replace") if (root / "dovecot.log").exists() else ""
    servers.stop()
    raise RuntimeError(f"dovecot did not start on 127.0.0.1:{imap_port}: {err}\n{log}")


class CuttingProxy:
    """A loopback TCP proxy to one server that cuts every connection once the server has sent `cut_after`
    bytes: a connection lost mid-fetch, as a flaky provincial link loses it."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        import threading

        self.target_port, self.cut_after = target_port, cut_after
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((HOST, self.target_port))
            threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.cut_after), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while limit is None or sent < limit:
                chunk = src.recv(4096 if limit is None else min(4096, limit - sent))
                if not chunk:
                    break
                dst.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._listener.close()
