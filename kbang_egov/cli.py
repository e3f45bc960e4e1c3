"""The command line: a thin shell over the library. Parses options, calls one function, prints, exits."""

from __future__ import annotations

import functools
import json
import signal
import sys
import time
import traceback
from pathlib import Path

import click

from . import __version__

# Exit codes shared by every command (the nightly batch adds 1 = findings and 4 = no return found).
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_FATAL, EXIT_NO_RETURNS = 0, 1, 2, 3, 4


class FatalError(click.ClickException):
    """Something that stops the command: unreadable rulebook, output not writable."""

    exit_code = EXIT_FATAL


class NoReturnsError(click.ClickException):
    """The nightly run found no return to rank: nothing was published."""

    exit_code = EXIT_NO_RETURNS


def _load_rulebook(path: str | None):  # noqa: ANN202
    from .rules.rulebook import RulebookError, load_rulebook

    try:
        return load_rulebook(path)
    except RulebookError as exc:
        raise FatalError(f"bộ tiêu chí: {exc}") from exc


def _load_districts(path: str | None):  # noqa: ANN202
    from .rules.districts import DistrictListError, load_districts

    try:
        return load_districts(path)
    except DistrictListError as exc:
        raise FatalError(str(exc)) from exc


# Options several commands share, declared once.
_districts_option = click.option(
    "--districts", "districts_file", type=click.Path(dir_okay=False, exists=True),
    help="District list, one name per line (default: the 17 units of Gia Lai, 2020).")
_contacts_option = click.option(
    "--contacts", "contacts_file", type=click.Path(dir_okay=False, exists=True), required=True,
    help="CSV of district,email (several addresses separated by ';').")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kbang_egov")
@click.option("--rulebook", "rulebook_path", type=click.Path(dir_okay=False), envvar="KBANG_EGOV_RULEBOOK",
              help="Rulebook YAML file (default: the bundled 2020 rulebook).")
@click.option("--settings", "settings_path", type=click.Path(dir_okay=False), envvar="KBANG_EGOV_SETTINGS",
              help="Settings TOML file: province, year, deadline, mail servers (see settings.example.toml).")
@click.pass_context
def main(ctx: click.Context, rulebook_path: str | None, settings_path: str | None) -> None:
    """Rank districts' e-government self-assessments (Chính quyền điện tử cấp huyện).

    Exit codes: 0 success, 1 findings, 2 usage error, 3 fatal (e.g. a broken rulebook), 4 no return found
    (run).
    """
    from .settings import SettingsError, load_settings

    try:
        settings = load_settings(settings_path)
    except SettingsError as exc:
        raise FatalError(str(exc)) from exc
    ctx.obj = {"rulebook": rulebook_path, "settings": settings}


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table: readable listing; json: one object per criterion, for tools.")
@click.pass_obj
def rules(obj: dict, fmt: str) -> None:
    """Validate the rulebook and print its criteria."""
    from .rules.rulebook import format_points, rule_summary, rulebook_records

    rb = _load_rulebook(obj["rulebook"])
    if fmt == "json":
        click.echo(json.dumps(rulebook_records(rb), ensure_ascii=False, indent=2))
        return
    scored = rb.scored_criteria
    click.echo(f"{rb.title}")
    click.echo(f"{rb.id} {rb.version} ({rb.year}), hash {rb.hash[:12]}: {len(scored)} scored criteria, "
               f"{format_points(sum(c.max for c in scored))} points; source: {rb.source}")
    for part in rb.parts:
        click.echo(f"\n{part.code:<10} {format_points(part.max):>4}  {part.name}")
        for group in part.groups:
            click.echo(f"  {group.code:<8} {format_points(group.max):>4}  {group.name}")
            for c in group.criteria:
                flag = "" if c.scored else "  (không tính điểm)"
                flag += "  (chấp nhận 'Không áp dụng')" if c.not_applicable else ""
                click.echo(f"    {c.code:<10} {format_points(c.max):>3}  {c.kind:<6} {rule_summary(c)}{flag}")
                click.echo(f"{'':<26}{c.name}")
    click.echo(f"\n{rb.total_code:<10} {format_points(rb.total_max):>4}  {rb.total_name}")


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="input_templates", show_default=True,
              help="Folder to write the templates into.")
@click.option("--district", "names", multiple=True, metavar="NAME",
              help="Write a copy for this district, its name filled in and fixed (repeatable). "
                   "'Kbang' matches 'Huyện Kbang'.")
@_districts_option
@click.option("--all-districts", is_flag=True, help="Write a copy for every district on the list.")
@click.pass_obj
def template(obj: dict, out_dir: str, names: tuple[str, ...], districts_file: str | None,
             all_districts: bool) -> None:
    """Write the blank standard template, and one copy per district when asked.

    With --districts FILE and no --district, a copy is written for every district in FILE.
    """
    from .forms.template import TemplateError, write_templates
    from .rules.districts import match_district

    rb = _load_rulebook(obj["rulebook"])
    districts = _load_districts(districts_file)
    chosen = []
    for name in names:
        d = match_district(name, districts)
        if d is None:
            listed = ", ".join(x.name for x in districts)
            raise click.BadParameter(f"'{name}' is not on the district list ({listed}).",
                                     param_hint="--district")
        chosen.append(d)
    if all_districts or (districts_file and not names):
        chosen = list(districts)
    try:
        paths = write_templates(rb, Path(out_dir), districts, chosen, settings=obj["settings"])
    except TemplateError as exc:
        raise FatalError(str(exc)) from exc
    for p in paths:
        click.echo(str(p))
    click.echo(f"{len(paths)} template(s) for {rb.id} {rb.version} written to {out_dir}", err=True)


@main.command()
@click.argument("input_dir", required=False, type=click.Path(file_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="output", show_default=True,
              help="Folder for ranking.xlsx, ranking.csv, scores.csv and findings.csv.")
@_districts_option
@click.option("--trust-self-scores", is_flag=True,
              help="Where a criterion's inputs are missing, take the district's self-score instead of 0 "
                   "(still reported as a finding).")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON instead of text.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Worker processes reading files (default: one per CPU; 0 reads in this process, "
                   "without crash isolation, for profiling).")
@click.option("--file-timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds one file may take to read and check before it is stopped and reported.")
@click.option("--baseline", "baseline_file", type=click.Path(dir_okay=False),
              help="Compare the ranking with this one (last year's ranking.csv or ranking.xlsx, or a published "
                   "table with district, total and rank columns) instead of the previous run in --out.")
@click.pass_obj
def run(obj: dict, input_dir: str | None, out_dir: str, districts_file: str | None, trust_self_scores: bool,
        as_json: bool, workers: int | None, file_timeout: float, baseline_file: str | None) -> None:
    """Score, check and rank every workbook under INPUT_DIR (default: the bundled sample submissions).

    Reads .xlsx, .xlsm, .xls and .ods files in INPUT_DIR and its subfolders, recomputes every criterion
    from the district's raw figures, flags every self-score and subtotal that does not match, and writes
    ranking.xlsx, ranking.csv, scores.csv, findings.csv and manifest.json into --out, all replaced together
    or not at all, a dated copy of the ranking under --out/history and a log under --out/logs. Input files
    are only read. Each file is read in a worker process, so a hostile file is reported and the run goes
    on. One run at a time per --out folder; --out may not be INPUT_DIR itself.

    \b
    Exit codes:
      0  every file scored, no findings
      1  findings (a slip in a submission, a file that could not be scored, a duplicate, ...)
      2  usage error (unknown option, --out is INPUT_DIR)
      3  fatal: broken rulebook or district list, output folder not writable, another run going on
      4  no return found: INPUT_DIR missing, unreadable or without workbooks; previous outputs kept
    """
    from .operations.pipeline import FolderClash, NoReturnsFound, bundled_samples_dir, run_batch
    from .operations.runlock import LockError, LockHeld
    from .reporting.report_writer import OutputError

    rb = _load_rulebook(obj["rulebook"])
    districts = _load_districts(districts_file)
    baseline = None
    if baseline_file:
        from .reporting.baseline import BaselineError, load_baseline

        try:
            baseline = load_baseline(baseline_file, districts, rb)
        except BaselineError as exc:
            raise click.BadParameter(str(exc), param_hint="--baseline") from exc
    source = Path(input_dir) if input_dir else bundled_samples_dir()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # systemd's stop: release the lock, remove temp files
    t0 = time.perf_counter()
    bar = _ProgressBar() if sys.stderr.isatty() and not as_json else None
    try:
        result = run_batch(source, Path(out_dir), rb, districts, trust_self_scores,
                           progress=functools.partial(_progress, bar), workers=workers, file_timeout=file_timeout,
                           settings=obj["settings"], baseline=baseline)
    except (OutputError, LockHeld, LockError) as exc:
        raise FatalError(str(exc)) from exc
    except FolderClash as exc:
        raise click.BadParameter(str(exc), param_hint="--out") from exc
    except NoReturnsFound as exc:
        raise NoReturnsError(f"{exc.reason} Không có bài nộp nào được chấm; bảng xếp hạng và các tệp kết quả "
                             f"của lần chạy trước được giữ nguyên. Nhật ký: {exc.log}") from exc
    except Exception as exc:  # a failure nobody foresaw: exit 3, never 1, which a cron wrapper reads as findings
        traceback.print_exc()
        raise FatalError(f"lần chạy dừng vì một lỗi không lường trước ({type(exc).__name__}: {exc}); "
                         "phần traceback ở trên cho biết lỗi ở đâu: gửi nó cho người bảo trì công cụ") from exc
    finally:
        if bar:
            bar.close()
    if _stop_signal:  # a SIGTERM whose SystemExit a finalizer swallowed (see _exit_on_sigterm)
        sys.exit(128 + _stop_signal)
    from .reporting.summary import summary_dict, summary_text

    code = EXIT_FINDINGS if result.findings else EXIT_OK
    if as_json:
        click.echo(json.dumps(summary_dict(result, code, time.perf_counter() - t0), ensure_ascii=False, indent=2))
    else:
        click.echo(summary_text(result, time.perf_counter() - t0))
    sys.exit(code)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@_districts_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of text.")
@click.option("--feedback", "feedback", type=click.Path(), default=None, metavar="PATH",
              help="Also write the annotated copy (the feedback workbook): a .xlsx path for one FILE, a folder "
                   "for several.")
@click.option("--file-timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds one file may take to read and check before it is stopped and reported.")
@click.pass_obj
def validate(obj: dict, files: tuple[str, ...], districts_file: str | None, as_json: bool, feedback: str | None,
             file_timeout: float) -> None:
    """Check returns before sending them: the batch's reading and checks, no ranking, no output folder.

    Prints every finding with its sheet and cell, and a one-line verdict per file. The files are only read.

    \b
    Exit codes:
      0  nothing to fix
      1  findings (or a file that cannot be scored)
      2  usage error (a file that does not exist, --feedback over a return)
      3  fatal: broken rulebook or district list, --feedback not writable
    """
    from .operations.validate import FeedbackPathError, validate_files
    from .rules.findings import SEVERITY_VI

    rb = _load_rulebook(obj["rulebook"])
    districts = _load_districts(districts_file)
    try:
        done = validate_files([Path(f) for f in files], rb, districts,
                              feedback=Path(feedback) if feedback else None, timeout=file_timeout)
    except FeedbackPathError as exc:
        raise click.BadParameter(str(exc), param_hint="--feedback") from exc
    except OSError as exc:
        raise FatalError(f"không ghi được bản phản hồi: {exc.strerror or exc} ({exc.filename}); chọn cho --feedback "
                         "một thư mục ghi được") from exc
    code = EXIT_FINDINGS if any(v.findings for v in done) else EXIT_OK
    if as_json:
        click.echo(json.dumps({"exit_code": code, "files": [v.record() for v in done]}, ensure_ascii=False,
                              indent=2))
    else:
        for v in done:
            for f in v.findings:
                where = f"{f.sheet}!{f.cell}" if f.cell else (f.sheet or "(cả tệp)")
                subject = f" {f.subject}" if f.subject else ""
                click.echo(f"  [{SEVERITY_VI.get(f.severity, f.severity)}] {where}{subject} {f.code}: {f.message}")
            if v.feedback:
                click.echo(f"  Bản phản hồi: {v.feedback}")
            click.echo(v.verdict())
    sys.exit(code)


_stop_signal = 0  # the signal that asked the run to stop, once one has


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Stop the run with 128 + signum. Python runs a handler wherever the main thread is, also inside an
    object's finalizer, which swallows the SystemExit: the signal is kept, and _progress and the end of
    `run` raise it again from a frame that does not."""
    global _stop_signal
    _stop_signal = signum
    raise SystemExit(128 + signum)


def _progress(bar: _ProgressBar | None, done: int, total: int, name: str) -> None:
    if _stop_signal:
        raise SystemExit(128 + _stop_signal)
    if bar is not None:
        bar.update(done, total, name)


class _ProgressBar:
    """click's progress bar on stderr, created once the number of files is known."""

    def __init__(self) -> None:
        self.bar = None
        self.done = 0

    def update(self, done: int, total: int, name: str) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="Đang chấm", file=sys.stderr,
                                         item_show_func=lambda _: None)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="output", show_default=True,
              help="The output folder of `run`, whose history.sqlite is read.")
@click.option("--district", "name", metavar="NAME",
              help="Show this district's total, parts and rank in every run ('Kbang' matches 'Huyện Kbang').")
def history(out_dir: str, name: str | None) -> None:
    """List the runs kept in --out/history.sqlite, or one district's path across them."""
    from .operations.publish import read_manifest
    from .reporting.history import HISTORY_DB, HistoryError, district_path, history_districts, list_runs
    from .reporting.summary import district_path_text, runs_text
    from .rules.districts import District, match_district

    out = Path(out_dir)
    if not (out / HISTORY_DB).is_file():
        raise click.BadParameter(f"{out / HISTORY_DB} không tồn tại: chưa có lần chạy nào ghi vào thư mục {out}",
                                 param_hint="--out")
    current = (read_manifest(out) or {}).get("run_id")
    try:
        if name is None:
            click.echo(runs_text(list_runs(out, current)))
            return
        known = [District(n) for n in history_districts(out)]
        district = match_district(name, known)
        if district is None:
            raise click.BadParameter(f"'{name}' không có trong lịch sử xếp hạng ({', '.join(d.name for d in known)}).",
                                     param_hint="--district")
        click.echo(district_path_text(district.name, district_path(out, district.name, current)))
    except HistoryError as exc:
        raise FatalError(str(exc)) from exc


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder to write the sample submissions into.")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="Write N synthetic districts (and their list, districts.txt) instead of the 17 of Gia Lai.")
@click.option("--seed", type=int, default=2020, show_default=True, help="Random seed: same seed, same files.")
@click.pass_obj
def sample(obj: dict, out_dir: str, count: int | None, seed: int) -> None:
    """Write realistic filled submissions through the standard template.

    By default one per Gia Lai district: Kbang filled from its 2020 report (self-scores and declared totals
    as printed), the others plausible, with a realistic share of slips. The bundled samples that
    `batch.py run` reads by default are written by this command.
    """
    from .forms.samples import SampleError, write_samples
    from .forms.template import TemplateError

    rb = _load_rulebook(obj["rulebook"])
    try:
        written = write_samples(rb, Path(out_dir), count=count, seed=seed)
    except (TemplateError, SampleError) as exc:
        raise FatalError(str(exc)) from exc
    extra = f" and {written.districts_file}" if written.districts_file else ""
    click.echo(f"{len(written.paths)} sample submission(s) written to {out_dir}{extra}", err=True)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table",
              show_default=True, help="markdown: the table in docs/findings.md; json: for tools.")
def codes(fmt: str) -> None:
    """List the finding codes the batch reports, with severity and meaning."""
    from .rules.findings import REGISTRY, codes_markdown

    if fmt == "markdown":
        click.echo(codes_markdown())
    elif fmt == "json":
        click.echo(json.dumps([{"code": t.code, "severity": t.severity, "level": t.level, "title": t.title,
                                "rejects_file": t.rejects, "template": t.template} for t in REGISTRY.values()],
                              ensure_ascii=False, indent=2))
    else:
        for t in REGISTRY.values():
            click.echo(f"{t.code:<32} {t.severity:<8} {t.level:<10} {t.title}")


# --- the mail loop -----------------------------------------------------------------------------------

def _smtp_options(f):  # noqa: ANN001, ANN202 - a click decorator
    for opt in reversed((
        click.option("--smtp-host", help="SMTP server (overrides [smtp] host in the settings file)."),
        click.option("--smtp-port", type=click.IntRange(1, 65535), help="SMTP port."),
        click.option("--smtp-user", help="SMTP login; the password is read from KBANG_EGOV_SMTP_PASSWORD."),
        click.option("--smtp-security", type=click.Choice(["ssl", "starttls", "none"]),
                     help="ssl, starttls, or none (127.0.0.1 only)."),
        click.option("--dry-run", is_flag=True, help="Write one .eml per message into --outbox instead of sending."),
        click.option("--outbox", type=click.Path(file_okay=False),
                     help="Folder for the .eml files of --dry-run (default: OUT/outbox)."),
        click.option("--resend", is_flag=True, help="Send again what the history database says was sent."),
    )):
        f = opt(f)
    return f


def _mail_setup(obj: dict, contacts_file: str, districts_file: str | None):  # noqa: ANN202
    from .mail.contacts import ContactsError, load_contacts

    districts = _load_districts(districts_file)
    try:
        contacts = load_contacts(contacts_file, districts)
    except ContactsError as exc:
        raise click.BadParameter(str(exc), param_hint="--contacts") from exc
    return obj["settings"], districts, contacts


def _server(settings, kind: str, host: str | None, port: int | None, security: str | None, user: str | None,  # noqa: ANN001
            folder: str | None = None):  # noqa: ANN202
    from .settings import SettingsError, mail_server

    base = getattr(settings, kind)
    try:
        return mail_server(kind, host or base.host, port or (base.port if not host and not security else 0),
                           security or base.security, user if user is not None else base.user,
                           (folder or base.folder) if kind == "imap" else None)
    except SettingsError as exc:
        raise click.BadParameter(str(exc), param_hint=f"--{kind}-host") from exc


_SENT_VI = {"sent": "Đã gửi", "written": "Đã ghi", "skipped": "Bỏ qua"}


def _echo_sent(done: list, what: str) -> None:
    for s in done:
        tail = (f" ({s.where})" if s.where else "") + (f": {s.reason}" if s.reason else "")
        click.echo(f"{_SENT_VI[s.outcome]} {what} {s.district}{tail}")
    counts = {k: sum(1 for s in done if s.outcome == k) for k in ("sent", "written", "skipped")}
    click.echo(f"{what.capitalize()}: gửi {counts['sent']}, ghi ra tệp .eml {counts['written']}, "
               f"bỏ qua {counts['skipped']}.")


def _run_sending(obj: dict, out_dir: str, dry_run: bool, outbox: str | None, smtp: tuple, send) -> list:  # noqa: ANN001
    from .mail.ledger import Ledger
    from .mail.messages import MessageError
    from .mail.outgoing import SendingInputError
    from .mail.smtp import Outgoing, SendError
    from .operations.runlock import LockError, LockHeld, RunLock

    if outbox and not dry_run:
        raise click.BadParameter("--outbox goes with --dry-run", param_hint="--outbox")
    server = _server(obj["settings"], "smtp", *smtp)
    box = Path(outbox or Path(out_dir) / "outbox") if dry_run else None
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        with RunLock(Path(out_dir)), Ledger(out_dir) as ledger, Outgoing(server, box) as out:
            return send(ledger, out)
    except SendError as exc:
        raise FatalError(f"{exc}. Chạy lại lệnh khi máy chủ đã sẵn sàng: những đơn vị đã gửi được ghi lại và "
                         "không bị gửi lần nữa") from exc
    except (SendingInputError, MessageError, LockHeld, LockError, OSError) as exc:
        raise FatalError(str(exc)) from exc


@main.command("send-templates")
@_contacts_option
@click.option("--district", "names", multiple=True, metavar="NAME",
              help="Send to this district only (repeatable; default: every district in --contacts).")
@_districts_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="output", show_default=True,
              help="Output folder whose history.sqlite records what was sent.")
@_smtp_options
@click.pass_obj
def send_templates_command(obj: dict, contacts_file: str, names: tuple[str, ...], districts_file: str | None,
                           out_dir: str, smtp_host: str | None, smtp_port: int | None, smtp_user: str | None,
                           smtp_security: str | None, dry_run: bool, outbox: str | None, resend: bool) -> None:
    """Email each district its own template, with what to fill, the deadline and where to send it back.

    A district already sent its template (OUT/history.sqlite) is skipped unless --resend.
    """
    from .mail.outgoing import send_templates
    from .rules.districts import match_district

    settings, districts, contacts = _mail_setup(obj, contacts_file, districts_file)
    rb = _load_rulebook(obj["rulebook"])
    chosen = []
    for name in names:
        d = match_district(name, districts)
        if d is None:
            raise click.BadParameter(f"'{name}' is not on the district list.", param_hint="--district")
        if d not in contacts.addresses:
            raise click.BadParameter(f"'{d.name}' has no address in {contacts_file}: add a line "
                                     f"'{d.name},<email>'.", param_hint="--district")
        chosen.append(d)
    chosen = chosen or [d for d in districts if d in contacts.addresses]
    done = _run_sending(obj, out_dir, dry_run, outbox, (smtp_host, smtp_port, smtp_security, smtp_user),
                        lambda ledger, out: send_templates(rb, districts, chosen, contacts, settings, ledger, out,
                                                           resend))
    _echo_sent(done, "mẫu")


@main.command("send-feedback")
@_contacts_option
@_districts_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="output", show_default=True,
              help="The run's output folder: its feedback/feedback.csv lists what to send.")
@_smtp_options
@click.pass_obj
def send_feedback_command(obj: dict, contacts_file: str, districts_file: str | None, out_dir: str,
                          smtp_host: str | None, smtp_port: int | None, smtp_user: str | None,
                          smtp_security: str | None, dry_run: bool, outbox: str | None, resend: bool) -> None:
    """Email each district its feedback workbook from the last run, as a reply to its return when known.

    The same feedback is not sent twice unless --resend.
    """
    from .mail.outgoing import send_feedback

    settings, _, contacts = _mail_setup(obj, contacts_file, districts_file)
    year = settings.year or _load_rulebook(obj["rulebook"]).year
    done = _run_sending(obj, out_dir, dry_run, outbox, (smtp_host, smtp_port, smtp_security, smtp_user),
                        lambda ledger, out: send_feedback(Path(out_dir), contacts, settings, ledger, out, year,
                                                          resend))
    _echo_sent(done, "phản hồi")


@main.command()
@_contacts_option
@click.option("--inbox", "inbox_dir", type=click.Path(file_okay=False), required=True,
              help="Folder to save the returned workbooks into (the folder `run` reads).")
@click.option("--quarantine", "quarantine_dir", type=click.Path(file_okay=False),
              help="Folder for files from unknown senders (default: a 'quarantine' folder beside --inbox).")
@click.option("--maildir", type=click.Path(file_okay=False, exists=True),
              help="Read a Maildir folder instead of an IMAP server.")
@click.option("--imap-host", help="IMAP server (overrides [imap] host in the settings file).")
@click.option("--imap-port", type=click.IntRange(1, 65535), help="IMAP port.")
@click.option("--imap-user", help="IMAP login; the password is read from KBANG_EGOV_IMAP_PASSWORD.")
@click.option("--imap-security", type=click.Choice(["ssl", "starttls", "none"]),
              help="ssl, starttls, or none (127.0.0.1 only).")
@click.option("--imap-folder", help="IMAP folder to read (default INBOX).")
@_districts_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="output", show_default=True,
              help="Output folder: history.sqlite records what was collected, logs/ gets the collect log.")
@click.pass_obj
def collect(obj: dict, contacts_file: str, inbox_dir: str, quarantine_dir: str | None, maildir: str | None,
            imap_host: str | None, imap_port: int | None, imap_user: str | None, imap_security: str | None,
            imap_folder: str | None, districts_file: str | None, out_dir: str) -> None:
    """Save every workbook attached to the mail into INBOX under a safe name, once per content.

    Mail is only read (never deleted, moved or flagged). The sender must be in --contacts and the return's
    unit name must be the sender's district; other files go to the quarantine folder, reported, not scored.

    \b
    Exit codes: 0 done, 1 something quarantined or refused, 3 the mailbox could not be read or the
    connection was lost (run collect again: it completes the work).
    """
    from .mail.collect import (
        CollectError,
        collect_returns,
        collect_summary,
        imap_messages,
        maildir_messages,
        write_collect_log,
    )
    from .mail.ledger import Ledger
    from .operations.runlock import LockError, LockHeld, RunLock

    settings, _, contacts = _mail_setup(obj, contacts_file, districts_file)
    rb = _load_rulebook(obj["rulebook"])
    inbox = Path(inbox_dir)
    quarantine = Path(quarantine_dir) if quarantine_dir else inbox.resolve().parent / "quarantine"
    if quarantine.resolve().is_relative_to(inbox.resolve()):
        raise click.BadParameter("the quarantine folder may not be inside --inbox (run would score it)",
                                 param_hint="--quarantine")
    if maildir:
        messages, source = maildir_messages(maildir), f"Maildir {maildir}"
    else:
        server = _server(settings, "imap", imap_host, imap_port, imap_security, imap_user, imap_folder)
        messages, source = imap_messages(server), f"IMAP {server.host}:{server.port}/{server.folder}"
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        with RunLock(Path(out_dir)), Ledger(out_dir) as ledger:
            report = collect_returns(messages, inbox, quarantine, contacts, rb, ledger,
                                     (settings.sender_address, settings.return_address))
            write_collect_log(report, Path(out_dir), source)
    except (CollectError, LockHeld, LockError, OSError) as exc:
        raise FatalError(str(exc)) from exc
    click.echo(collect_summary(report, inbox, quarantine))
    if report.interrupted:
        sys.exit(EXIT_FATAL)
    sys.exit(EXIT_FINDINGS if report.count("quarantined") or report.count("refused") else EXIT_OK)
