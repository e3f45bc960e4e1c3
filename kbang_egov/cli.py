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
        raise FatalError(f"rulebook: {exc}") from exc


def _load_districts(path: str | None):  # noqa: ANN202
    from .rules.districts import DistrictListError, load_districts

    try:
        return load_districts(path)
    except DistrictListError as exc:
        raise FatalError(str(exc)) from exc


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
@click.option("--districts", "districts_file", type=click.Path(dir_okay=False, exists=True),
              help="District list, one name per line (default: the 17 units of Gia Lai, 2020).")
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
@click.option("--districts", "districts_file", type=click.Path(dir_okay=False, exists=True),
              help="District list, one name per line (default: the 17 units of Gia Lai, 2020).")
@click.option("--trust-self-scores", is_flag=True,
              help="Where a criterion's inputs are missing, take the district's self-score instead of 0 "
                   "(still reported as a finding).")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON instead of text.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Worker processes reading files (default: one per CPU; 0 reads in this process, "
                   "without crash isolation, for profiling).")
@click.option("--file-timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds one file may take to read and check before it is stopped and reported.")
@click.pass_obj
def run(obj: dict, input_dir: str | None, out_dir: str, districts_file: str | None, trust_self_scores: bool,
        as_json: bool, workers: int | None, file_timeout: float) -> None:
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
    source = Path(input_dir) if input_dir else bundled_samples_dir()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # systemd's stop: release the lock, remove temp files
    t0 = time.perf_counter()
    bar = _ProgressBar() if sys.stderr.isatty() and not as_json else None
    try:
        result = run_batch(source, Path(out_dir), rb, districts, trust_self_scores,
                           progress=functools.partial(_progress, bar), workers=workers, file_timeout=file_timeout)
    except (OutputError, LockHeld, LockError) as exc:
        raise FatalError(str(exc)) from exc
    except FolderClash as exc:
        raise click.BadParameter(str(exc), param_hint="--out") from exc
    except NoReturnsFound as exc:
        raise NoReturnsError(f"{exc.reason} Không có bài nộp nào được chấm; bảng xếp hạng và các tệp kết quả "
                             f"của lần chạy trước được giữ nguyên. Nhật ký: {exc.log}") from exc
    except Exception as exc:  # a failure nobody foresaw: exit 3, never 1, which a cron wrapper reads as findings
        traceback.print_exc()
        raise FatalError(f"the run stopped on an unexpected error ({type(exc).__name__}: {exc}); "
                         "the traceback above says where") from exc
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
@click.option("--districts", "districts_file", type=click.Path(dir_okay=False, exists=True),
              help="District list, one name per line (default: the 17 units of Gia Lai, 2020).")
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

    rb = _load_rulebook(obj["rulebook"])
    districts = _load_districts(districts_file)
    try:
        done = validate_files([Path(f) for f in files], rb, districts,
                              feedback=Path(feedback) if feedback else None, timeout=file_timeout)
    except FeedbackPathError as exc:
        raise click.BadParameter(str(exc), param_hint="--feedback") from exc
    except OSError as exc:
        raise FatalError(f"cannot write the annotated copy: {exc.strerror or exc} ({exc.filename})") from exc
    code = EXIT_FINDINGS if any(v.findings for v in done) else EXIT_OK
    if as_json:
        click.echo(json.dumps({"exit_code": code, "files": [v.record() for v in done]}, ensure_ascii=False,
                              indent=2))
    else:
        for v in done:
            for f in v.findings:
                where = f"{f.sheet}!{f.cell}" if f.cell else (f.sheet or "(cả tệp)")
                subject = f" {f.subject}" if f.subject else ""
                click.echo(f"  [{_SEVERITY_VI.get(f.severity, f.severity)}] {where}{subject} {f.code}: {f.message}")
            if v.feedback:
                click.echo(f"  Bản phản hồi: {v.feedback}")
            click.echo(v.verdict())
    sys.exit(code)


_SEVERITY_VI = {"error": "Lỗi", "warning": "Cảnh báo", "consequence": "Hệ quả"}


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
