"""The end-of-run summary the CLI prints: one screen of text for the operator, or a dict for --json."""

from __future__ import annotations

from ..rules.findings import CONSEQUENCE, ERROR, WARNING
from ..rules.results import PART, REJECTED, SUPERSEDED, RunResult
from ..text import printable

MAX_ROWS = 20  # ranking rows shown; the workbook has them all


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def summary_dict(run: RunResult, exit_code: int, seconds: float) -> dict:
    """The summary as plain data (what --json prints)."""
    parts = _part_codes(run)
    return {
        "exit_code": exit_code,
        "run_id": run.run_id,
        "seconds": round(seconds, 3),
        "input_dir": run.input_dir,
        "rulebook": {"id": run.rulebook_id, "version": run.rulebook_version, "hash": run.rulebook_hash},
        "files": {"read": len(run.files), "scored": len(run.districts),
                  "rejected": sum(1 for f in run.files if f.status == REJECTED),
                  "superseded": sum(1 for f in run.files if f.status == SUPERSEDED),
                  "skipped": run.skipped},
        "findings": {"error": run.count(ERROR), "warning": run.count(WARNING),
                     "consequence": run.count(CONSEQUENCE), "by_code": run.codes()},
        "ranking": [
            {"rank": d.rank, "district": d.district, "file": d.file,
             **{p: d.subtotals[p].scaled for p in parts},
             "total": d.total.scaled, "plain_total": d.total.achieved, "declared_total": d.total.declared,
             "gap": d.total.gap, "not_applicable": d.not_applicable, "max_removed": d.max_removed,
             "status": d.status, "errors": d.errors, "warnings": d.warnings}
            for d in run.districts
        ],
        "rejected": [{"file": f.file, "district": f.district, "codes": list(f.codes), "reason": f.reason}
                     for f in run.files if f.status in (REJECTED, SUPERSEDED)],
        "not_submitted": run.not_submitted,
        "not_submitted_notes": run.not_submitted_notes,
        "outputs": run.outputs,
        "history": run.history,
        "log": run.log,
        "notices": run.notices,
    }


def _part_codes(run: RunResult) -> list[str]:
    if not run.districts:
        return []
    return [s.code for s in run.districts[0].subtotals.values() if s.level == PART]


def summary_text(run: RunResult, seconds: float) -> str:
    """One screen: counts, findings by code, the ranking's head, files not scored, outputs."""
    lines: list[str] = []
    rejected = [f for f in run.files if f.status == REJECTED]
    superseded = [f for f in run.files if f.status == SUPERSEDED]
    lines.append(f"kbang_egov {run.tool_version}: {run.rulebook_id} {run.rulebook_version}, "
                 f"{len(run.files)} file(s) in {run.input_dir} ({seconds:.1f} s)")
    skipped = ", ".join(f"{n} {k}" for k, n in run.skipped.items())
    lines.append(f"Ranked {len(run.districts)} district(s); {len(rejected)} file(s) not scored, "
                 f"{len(superseded)} superseded" + (f"; skipped: {skipped}" if skipped else ""))
    lines.append(f"Findings: {run.count(ERROR)} error(s), {run.count(WARNING)} warning(s), "
                 f"{run.count(CONSEQUENCE)} consequence(s) of other findings (not counted as errors)")
    for code, n in run.codes().items():
        lines.append(f"  {code:<32}{n:>6}")
    if run.districts:
        parts = _part_codes(run)
        head = f"{'Rank':>4}  {'District':<22}" + "".join(f"{p:>8}" for p in parts)
        lines.append("")
        lines.append(head + f"{'Total':>8}{'Sum':>8}{'Declared':>10}{'Gap':>8}{'N/A':>4}{'Err':>5}{'Warn':>5}")
        for d in run.districts[:MAX_ROWS]:
            lines.append(f"{d.rank:>4}  {d.district[:22]:<22}"
                         + "".join(f"{d.subtotals[p].scaled:>8.2f}" for p in parts)
                         + f"{d.total.scaled:>8.2f}{d.total.achieved:>8.2f}{_fmt(d.total.declared):>10}"
                         + f"{_fmt(d.total.gap):>8}{d.not_applicable:>4}{d.errors:>5}{d.warnings:>5}")
        lines.append("  (parts and Total rescaled where criteria are not applicable; Sum is the plain sum the "
                     "declared total and Gap compare with)")
        if len(run.districts) > MAX_ROWS:
            lines.append(f"  ... {len(run.districts) - MAX_ROWS} more in ranking.xlsx")
    for f in (rejected + superseded)[:MAX_ROWS]:
        lines.append(f"Not scored: {f.file}: {', '.join(f.codes)}")
    if len(rejected) + len(superseded) > MAX_ROWS:
        lines.append(f"  ... {len(rejected) + len(superseded) - MAX_ROWS} more in ranking.xlsx (Tệp lỗi)")
    if run.not_submitted:
        lines.append("Not submitted (Chưa nộp): " + ", ".join(
            f"{n} ({run.not_submitted_notes[n]})" if n in run.not_submitted_notes else n for n in run.not_submitted))
    if run.outputs:
        lines.append("Written: " + ", ".join(run.outputs))
    if run.log:
        lines.append(f"Log: {run.log}")
    for note in run.notices:
        lines.append(f"Notice: {note}")
    return "\n".join(printable(line) for line in lines)  # nothing a file held may forge or garble a line
