"""What a run leaves behind besides its outputs: a dated copy of the ranking under DIR/history/ (last week's
ranking is never lost when tonight's replaces it) and a plain-text log under DIR/logs/ for the operator.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..operations.atomic import write_atomically
from ..rules.findings import ERROR, WARNING
from ..rules.results import REJECTED, SCORED, SUPERSEDED, RunResult
from ..text import printable

HISTORY_DIR, LOGS_DIR = "history", "logs"
KEPT_OUTPUTS = ("ranking.xlsx", "ranking.csv")  # the details are in ranking.xlsx; the CSVs can be large
SLOWEST_SHOWN = 5


def keep_history(outputs: list[Path], out_dir: Path, stamp: str) -> list[Path]:
    """Copy the ranking outputs to DIR/history/NAME_STAMP.EXT."""
    folder = Path(out_dir) / HISTORY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    kept = []
    for src in outputs:
        name = next((k for k in KEPT_OUTPUTS if src.name == k or src.name.startswith(Path(k).stem + "-")), None)
        if name is None:
            continue
        target = _unused(folder, Path(name).stem, stamp, Path(name).suffix)
        kept.append(write_atomically(target, lambda tmp, s=src: shutil.copyfile(s, tmp)))
    return kept


def keep_replaced(path: Path, out_dir: Path, stamp: str) -> Path:
    """Keep a file that is about to be replaced as DIR/history/STEM_replaced_STAMP.EXT: a hard link where
    the file system allows it (no copy), else a copy. A link is kept as the link it is."""
    folder = Path(out_dir) / HISTORY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    target = _unused(folder, f"{path.stem}_replaced", stamp, path.suffix)
    try:
        os.link(path, target, follow_symlinks=False)
    except OSError:
        write_atomically(target, lambda tmp: shutil.copyfile(path, tmp, follow_symlinks=False))
    return target


def _unused(folder: Path, stem: str, stamp: str, suffix: str) -> Path:
    """folder/STEM_STAMP.SUFFIX, or with -2, -3, ... when a run in the same second took that name."""
    target, n = folder / f"{stem}_{stamp}{suffix}", 2
    while target.exists():
        target, n = folder / f"{stem}_{stamp}-{n}{suffix}", n + 1
    return target


def write_log(run: RunResult, out_dir: Path, stamp: str, exit_code: int) -> Path:
    """Write DIR/logs/run_STAMP.log: files read, skipped, rejected, findings by code, timings, outputs."""
    folder = Path(out_dir) / LOGS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    target = _unused(folder, "run", stamp, ".log")
    text = log_text(run, exit_code)
    return write_atomically(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def log_text(run: RunResult, exit_code: int) -> str:
    files = run.files
    by_status = {s: [f for f in files if f.status == s] for s in (SCORED, REJECTED, SUPERSEDED)}
    lines = [
        f"kbang_egov {run.tool_version} run {run.started.isoformat(sep=' ')} .. {run.finished.isoformat(sep=' ')}",
        f"exit code: {exit_code}",
        f"run id: {run.run_id}",
        f"input: {run.input_dir}",
        f"rulebook: {run.rulebook_id} {run.rulebook_version} ({run.rulebook_hash[:12]})"
        + (", self-scores trusted where inputs are missing" if run.trust_self_scores else ""),
        f"files read: {len(files)}; scored {len(by_status[SCORED])}, rejected {len(by_status[REJECTED])}, "
        f"superseded {len(by_status[SUPERSEDED])}",
        "skipped: " + (", ".join(f"{n} {k}" for k, n in run.skipped.items()) or "none"),
        f"districts ranked: {len(run.districts)}; not submitted: {', '.join(run.not_submitted) or 'none'}",
        f"findings: {run.count(ERROR)} error(s), {run.count(WARNING)} warning(s)",
    ]
    lines += [f"  {code:<34}{n:>7}" for code, n in run.codes().items()]
    lines.append("timings (s): " + ", ".join(f"{k} {v:.3f}" for k, v in run.timings.items()))
    lines.append(f"feedback workbooks: {run.feedback_written} written, {run.feedback_reused} reused unchanged from "
                 "the previous run")
    slow = sorted(files, key=lambda f: f.seconds, reverse=True)[:SLOWEST_SHOWN]
    if slow:
        lines.append("slowest files: " + ", ".join(f"{f.file} {f.seconds:.3f}" for f in slow))
    for f in by_status[REJECTED] + by_status[SUPERSEDED]:
        lines.append(f"{f.status}: {f.file} [{', '.join(f.codes)}] {f.reason}")
    for note in run.notices:
        lines.append(f"notice: {note}")
    lines += [f"output: {p}" for p in run.outputs]
    lines += [f"history: {p}" for p in run.history]
    # A file name, a sheet name or a reason holds whatever the file held: no line break or ESC of theirs
    # may forge or garble a line of the log.
    return "\n".join(printable(line) for line in lines) + "\n"
