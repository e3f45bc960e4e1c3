"""The command line: a thin shell over the library. Parses options, calls one function, prints, exits."""

from __future__ import annotations

import json
from pathlib import Path

import click

from . import __version__

# Exit codes shared by every command (the nightly batch adds 1 = findings).
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_FATAL = 0, 1, 2, 3


class FatalError(click.ClickException):
    """Something that stops the command: unreadable rulebook, output not writable."""

    exit_code = EXIT_FATAL


def _load_rulebook(path: str | None):  # noqa: ANN202
    from .rulebook import RulebookError, load_rulebook

    try:
        return load_rulebook(path)
    except RulebookError as exc:
        raise FatalError(f"rulebook: {exc}") from exc


def _load_districts(path: str | None):  # noqa: ANN202
    from .districts import DistrictListError, load_districts

    try:
        return load_districts(path)
    except DistrictListError as exc:
        raise FatalError(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kbang_egov")
@click.option("--rulebook", "rulebook_path", type=click.Path(dir_okay=False), envvar="KBANG_EGOV_RULEBOOK",
              help="Rulebook YAML file (default: the bundled 2020 rulebook).")
@click.pass_context
def main(ctx: click.Context, rulebook_path: str | None) -> None:
    """Rank districts' e-government self-assessments (Chính quyền điện tử cấp huyện).

    Exit codes: 0 success, 1 findings, 2 usage error, 3 fatal (e.g. a broken rulebook).
    """
    ctx.obj = {"rulebook": rulebook_path}


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table: readable listing; json: one object per criterion, for tools.")
@click.pass_obj
def rules(obj: dict, fmt: str) -> None:
    """Validate the rulebook and print its criteria."""
    from .rulebook import format_points, rule_summary, rulebook_records

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
    from .districts import match_district
    from .template import TemplateError, write_templates

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
        paths = write_templates(rb, Path(out_dir), districts, chosen)
    except TemplateError as exc:
        raise FatalError(str(exc)) from exc
    for p in paths:
        click.echo(str(p))
    click.echo(f"{len(paths)} template(s) for {rb.id} {rb.version} written to {out_dir}", err=True)
