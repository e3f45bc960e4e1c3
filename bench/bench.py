#!/usr/bin/env python3
"""Benchmark of the nightly batch: prints figures, never asserts timings.

Usage (from the repository root):

    python bench/bench.py --sizes 17,1000
    python bench/bench.py                      # sizes 17, 1000, 10000 (naive at 10000 takes ~10 min)
    python bench/bench.py --sizes 17,1000,10000 --naive-max 1000 --markdown --json bench/.work/figures.json

For each size N it generates N synthetic submissions with `python batch.py sample --out WORK/nN --count N`
(cached in --work, default bench/.work; reused while the stamp WORK/nN.stamp.json still matches the tool
and rulebook version; --fresh regenerates), then times, each in a fresh subprocess:

  RUN    `python batch.py run WORK/nN --out WORK/outN --districts WORK/nN/districts.txt`, end to end
         (exit 0 or 1 is success; 1 means findings);
  FLOOR  a bare python-calamine read of every sheet of the same files plus a bare xlsxwriter write of
         N x (scored criteria) numbers: what any tool built on these libraries must at least spend
         (`python bench/bench.py _floor DIR OUT ROWS COLS`);
  NAIVE  a clerk's loop: `pandas.read_excel(f, sheet_name=None, engine="openpyxl")` for each file
         (`python bench/bench.py _naive DIR`; --naive-max N skips it above N);
  PANDAS the same loop with pandas' calamine engine, `engine="calamine"`
         (`python bench/bench.py _naive DIR calamine`; also skipped above --naive-max);
  START  `python -c pass`, so the run can be reported beyond interpreter start-up.

Each timing is repeated --repeat times (default 3 below N=1000, 1 from N=1000) and the best is reported.
Peak memory is the whole process tree's RSS (the process and all its descendants, summed), sampled from
/proc every ~20 ms, cross-checked with the largest single-process maxrss from wait4() and
getrusage(RUSAGE_CHILDREN). Files are read once before timing, so every figure is with a warm page cache.
"""

from __future__ import annotations

import os
import sys

from procmem import SAMPLE_INTERVAL, has_children_files, measure  # bench/ is sys.path[0] when this file is run

# Only `os` and `sys` at module level: the _floor and _naive subprocesses import this file, and should pay
# for nothing but their own libraries (like the run, which pays for its own imports).

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SIZES = (17, 1000, 10000)
SEED = 2020  # the `batch.py sample` default; recorded in the stamp
MB = 1024 * 1024


# --------------------------------------------------------------------------------------------------------
# The subprocess bodies


def floor_main(in_dir: str, out_path: str, rows: int, cols: int) -> None:
    """Bare calamine read of every sheet of every .xlsx in in_dir, then a bare xlsxwriter write of rows x cols."""
    from python_calamine import CalamineWorkbook
    from xlsxwriter import Workbook

    files = sorted(os.path.join(in_dir, n) for n in os.listdir(in_dir) if n.lower().endswith(".xlsx"))
    cells = 0
    for f in files:
        wb = CalamineWorkbook.from_path(f)
        for name in wb.sheet_names:
            for row in wb.get_sheet_by_name(name).to_python():
                cells += len(row)
    book = Workbook(out_path)
    ws = book.add_worksheet()
    for r in range(rows):
        for c in range(cols):
            ws.write_number(r, c, (r * cols + c) * 0.25)
    book.close()
    print(f"floor: {len(files)} files, {cells} cells read, {rows * cols} numbers written")


def naive_main(in_dir: str, engine: str = "openpyxl") -> None:
    """What a clerk's script would do: pandas.read_excel with this engine, every sheet of every file."""
    import pandas

    files = sorted(os.path.join(in_dir, n) for n in os.listdir(in_dir) if n.lower().endswith(".xlsx"))
    sheets = 0
    for f in files:
        sheets += len(pandas.read_excel(f, sheet_name=None, engine=engine))
    print(f"naive ({engine}): {len(files)} files, {sheets} sheets")


# --------------------------------------------------------------------------------------------------------
# Measuring a subprocess: wall time, sampled process-tree RSS, wait4 maxrss


# Commands run as on a machine where Python caches compiled modules, its default: an environment that sets
# PYTHONDONTWRITEBYTECODE (this sandbox does) would make every run compile the package's source again.
RUN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def compile_package() -> None:
    """Write the bytecode caches of the package once, before anything is timed."""
    import subprocess

    subprocess.run([sys.executable, "-m", "compileall", "-q", "kbang_egov", "batch.py"], cwd=REPO, env=RUN_ENV,
                   check=True)


def best_of(cmd: list[str], repeat: int, ok_codes: tuple[int, ...], log_path: str | None = None,
            before_each=None) -> dict:
    """Repeat a measurement; best (minimum) time, largest peaks, every raw figure kept."""
    runs = []
    for _ in range(repeat):
        if before_each:
            before_each()
        m = measure(cmd, log_path, env=RUN_ENV)
        runs.append(m)
        if m["exit"] not in ok_codes:
            break
    good = [m for m in runs if m["exit"] in ok_codes]
    result = {
        "cmd": cmd,
        "ok": len(good) == len(runs),
        "exits": [m["exit"] for m in runs],
        "seconds": min(m["seconds"] for m in good) if good else None,
        "all_seconds": [m["seconds"] for m in runs],
        "tree_peak_mb": max(m["tree_peak_mb"] for m in runs),
        "wait4_maxrss_mb": max(m["wait4_maxrss_mb"] for m in runs),
        "max_procs": max(m["max_procs"] for m in runs),
        "runs": runs,
    }
    # The sampler can miss a spike between samples; a single process's maxrss is a lower bound of the tree's.
    result["peak_mb"] = max(result["tree_peak_mb"], result["wait4_maxrss_mb"])
    return result


# --------------------------------------------------------------------------------------------------------
# Inputs: generated once per size, cached under --work


GENERATOR_SOURCES = ("forms/template.py", "forms/samples.py", "forms/layout.py")  # under kbang_egov/


def tool_stamp(count: int) -> dict:
    sys.path.insert(0, REPO)
    import hashlib

    from kbang_egov import __version__
    from kbang_egov.rules.rulebook import load_rulebook

    rb = load_rulebook(None)
    # The inputs change when the template or the sample generator does, not only with the rulebook.
    generator = hashlib.sha256()
    for name in GENERATOR_SOURCES:
        with open(os.path.join(REPO, "kbang_egov", name), "rb") as fh:
            generator.update(fh.read())
    return {"tool_version": __version__, "rulebook_id": rb.id, "rulebook_version": rb.version,
            "rulebook_hash": rb.hash, "generator": generator.hexdigest()[:16], "count": count, "seed": SEED}


def scored_criteria_count() -> int:
    sys.path.insert(0, REPO)
    from kbang_egov.rules.rulebook import load_rulebook

    return len(load_rulebook(None).scored_criteria)


def _xlsx_files(folder: str) -> list[str]:
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.lower().endswith(".xlsx"))


def _safe_rmtree(folder: str, allowed) -> None:
    """Remove a folder the bench made; refuse if it holds anything the bench would not have put there."""
    import shutil

    if not os.path.isdir(folder):
        return
    for root, _dirs, names in os.walk(folder):
        for n in names:
            if not allowed(n):
                raise SystemExit(f"bench: refusing to delete {folder}: it holds {os.path.join(root, n)}, "
                                 "which the bench did not write; choose another --work")
    shutil.rmtree(folder)


def _input_file(name: str) -> bool:
    return name.lower().endswith(".xlsx") or name == "districts.txt"


def _output_file(name: str) -> bool:
    """What a run writes into --out: the outputs and their manifest, history copies, logs, temp files and its
    lock (the run folders under runs/ hold the same names)."""
    return (name.endswith((".xlsx", ".csv", ".json", ".tmp", ".log", ".sqlite", ".sqlite-journal", ".sqlite-wal",
                           ".sqlite-shm"))
            or name.startswith("."))


def prepare_inputs(work: str, n: int, fresh: bool) -> dict:
    """WORK/nN with N submissions and districts.txt; reused when the stamp matches, else regenerated."""
    import json
    import time

    folder = os.path.join(work, f"n{n}")
    stamp_path = os.path.join(work, f"n{n}.stamp.json")
    want = tool_stamp(n)
    if not fresh and os.path.isdir(folder):
        try:
            with open(stamp_path, encoding="utf-8") as fh:
                have = json.load(fh)
        except (OSError, ValueError):
            have = None
        if (have == want and len(_xlsx_files(folder)) == n
                and os.path.isfile(os.path.join(folder, "districts.txt"))):
            return {"folder": folder, "generated": False, "seconds": None}
    _safe_rmtree(folder, _input_file)
    if os.path.exists(stamp_path):
        os.remove(stamp_path)
    os.makedirs(work, exist_ok=True)
    cmd = [sys.executable, "batch.py", "sample", "--out", folder, "--count", str(n), "--seed", str(SEED)]
    print(f"  generating {n} submissions: {' '.join(cmd[1:])}", flush=True)
    import subprocess

    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"bench: `batch.py sample` failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    found = len(_xlsx_files(folder))
    if found != n or not os.path.isfile(os.path.join(folder, "districts.txt")):
        raise SystemExit(f"bench: `batch.py sample --count {n}` wrote {found} .xlsx files (and districts.txt: "
                         f"{os.path.isfile(os.path.join(folder, 'districts.txt'))})")
    with open(stamp_path, "w", encoding="utf-8") as fh:
        json.dump(want, fh, indent=2)
    return {"folder": folder, "generated": True, "seconds": seconds}


def warm_cache(folder: str) -> int:
    total = 0
    for f in _xlsx_files(folder):
        with open(f, "rb") as fh:
            total += len(fh.read())
    return total


# --------------------------------------------------------------------------------------------------------
# Machine and tool info


def machine_info() -> dict:
    import platform
    import subprocess
    from importlib import metadata

    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "absent"

    def proc_field(path: str, key: str) -> str:
        try:
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith(key):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        git = f"{head}{' (uncommitted changes)' if dirty else ''}" if head else "?"
    except OSError:
        git = "?"
    stamp = tool_stamp(0)
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": proc_field("/proc/cpuinfo", "model name"),
        "mem_total": proc_field("/proc/meminfo", "MemTotal"),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "packages": {p: version(p) for p in ("python-calamine", "xlsxwriter", "openpyxl", "pandas")},
        "kbang_egov": stamp["tool_version"],
        "rulebook": f"{stamp['rulebook_id']} {stamp['rulebook_version']} hash {stamp['rulebook_hash'][:12]}",
        "git": git,
        "tree_rss_via": "/proc/<pid>/task/*/children" if has_children_files() else "scan of /proc/*/stat ppid",
    }


# --------------------------------------------------------------------------------------------------------
# Report

TARGETS = (
    # (N, label, key, comparison, limit)
    (1000, "run/floor <= 1.3 at N=1000", "run_floor", "<=", 1.3),
    (1000, "naive/run >= 15 at N=1000", "naive_run", ">=", 15.0),
    (1000, "pandas-calamine/run > 1 at N=1000", "pandas_run", ">", 1.0),
    (10000, "peak < 1 GB at N=10000", "run_peak_mb", "<", 1024.0),
    (17, "< 1 s beyond start-up at N=17", "run_beyond_startup", "<", 1.0),
)


def _verdict(value, op: str, limit: float) -> str:
    if value is None:
        return "n/a"
    ok = {"<=": value <= limit, ">=": value >= limit, "<": value < limit, ">": value > limit}[op]
    return "PASS" if ok else "MISS"


def _last_log_line(out_dir: str, prefix: str) -> str:
    """The line starting with prefix in the last run's log in out_dir, or ""."""
    logs = os.path.join(out_dir, "logs")
    try:
        newest = max((os.path.join(logs, n) for n in os.listdir(logs) if n.endswith(".log")), key=os.path.getmtime)
        with open(newest, encoding="utf-8") as fh:
            return next((ln for ln in fh if ln.startswith(prefix)), "")
    except (OSError, ValueError):
        return ""


def feedback_counts(out_dir: str) -> str:
    """What the last run's log says of its feedback workbooks: how many written, how many reused."""
    prefix = "feedback workbooks: "
    return _last_log_line(out_dir, prefix).removeprefix(prefix).strip() or "-"


def run_laps(out_dir: str) -> dict[str, float]:
    """The phases of the last run in out_dir, from its log's "timings (s):" line (discover, read_check, rank,
    feedback, write): what the feedback workbooks add is the `feedback` phase."""
    line = _last_log_line(out_dir, "timings (s): ")
    laps = {}
    for item in line.removeprefix("timings (s): ").strip().split(", "):
        name, _, value = item.rpartition(" ")
        if name:
            laps[name] = float(value)
    return laps


def figures_for(size: dict) -> dict:
    run, floor, naive, pandas = size["run"], size["floor"], size.get("naive"), size.get("pandas")
    run_s = run["seconds"] if run["ok"] else None
    floor_s = floor["seconds"] if floor["ok"] else None
    naive_s = naive["seconds"] if naive and naive["ok"] else None
    pandas_s = pandas["seconds"] if pandas and pandas["ok"] else None
    return {
        "n": size["n"],
        "files": size["files"],
        "run_s": run_s,
        "files_per_s": size["files"] / run_s if run_s else None,
        "run_beyond_startup": run_s - size["startup_s"] if run_s is not None else None,
        "feedback_s": size.get("laps", {}).get("feedback"),
        "rerun_s": size["rerun"]["seconds"] if size.get("rerun") and size["rerun"]["ok"] else None,
        "rerun_feedback_s": size.get("rerun_laps", {}).get("feedback"),
        "floor_s": floor_s,
        "naive_s": naive_s,
        "naive_skipped": naive is None,
        "pandas_s": pandas_s,
        "pandas_skipped": pandas is None,
        "run_floor": run_s / floor_s if run_s and floor_s else None,
        "naive_run": naive_s / run_s if run_s and naive_s else None,
        "pandas_run": pandas_s / run_s if run_s and pandas_s else None,
        "run_peak_mb": run["peak_mb"],
        "run_tree_peak_mb": run["tree_peak_mb"],
        "run_wait4_maxrss_mb": run["wait4_maxrss_mb"],
        "run_max_procs": run["max_procs"],
        "floor_peak_mb": floor["peak_mb"],
        "naive_peak_mb": naive["peak_mb"] if naive else None,
        "pandas_peak_mb": pandas["peak_mb"] if pandas else None,
        "run_failed": not run["ok"],
        "floor_failed": not floor["ok"],
        "naive_failed": bool(naive) and not naive["ok"],
        "pandas_failed": bool(pandas) and not pandas["ok"],
    }


def _fmt(v, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


COLUMNS = (
    ("N", "n", "d"), ("files", "files", "d"), ("run s", "run_s", ".3f"), ("files/s", "files_per_s", ".0f"),
    ("run beyond start-up s", "run_beyond_startup", ".3f"), ("floor s", "floor_s", ".3f"),
    ("naive s", "naive_s", ".2f"), ("pandas-calamine s", "pandas_s", ".2f"), ("run/floor", "run_floor", ".2f"),
    ("naive/run", "naive_run", ".1f"), ("pandas-calamine/run", "pandas_run", ".1f"),
    ("run peak MB", "run_peak_mb", ".0f"),
)


def _row(fig: dict) -> list[str]:
    cells = []
    for _title, key, spec in COLUMNS:
        if key in ("naive_s", "pandas_s") and fig[key.replace("_s", "_skipped")]:
            cells.append("skipped")
        elif key in ("run_s", "floor_s", "naive_s", "pandas_s") and fig[key.replace("_s", "_failed")]:
            cells.append("FAILED")
        else:
            cells.append(_fmt(fig[key], spec))
    return cells


def target_lines(figs: list[dict]) -> list[tuple[str, str, str]]:
    """(label, measured, PASS/MISS/n/a) for every target; n/a when its N was not measured or failed."""
    by_n = {f["n"]: f for f in figs}
    lines = []
    for n, label, key, op, limit in TARGETS:
        fig = by_n.get(n)
        if fig is None:
            lines.append((label, f"N={n} not in --sizes", "n/a"))
        elif key in ("naive_run", "pandas_run") and fig[key.replace("_run", "_skipped")]:
            lines.append((label, "skipped", "n/a"))
        else:
            value = fig[key]
            unit = {"run_peak_mb": " MB", "run_beyond_startup": " s"}.get(key, "")
            spec = ".0f" if key == "run_peak_mb" else ".3f" if key == "run_beyond_startup" else ".2f"
            lines.append((label, _fmt(value, spec) + (unit if value is not None else ""), _verdict(value, op, limit)))
    return lines


def history_figures(out_dir: str) -> dict | None:
    """What writing the run's rows into history.sqlite cost the last run: its `history` phase (from the run's
    log), the rows written and the file's size. One run's rows; the file grows by about that much a night."""
    import re
    import sqlite3

    logs = sorted(os.listdir(os.path.join(out_dir, "logs"))) if os.path.isdir(os.path.join(out_dir, "logs")) else []
    db = os.path.join(out_dir, "history.sqlite")
    if not logs or not os.path.exists(db):
        return None
    with open(os.path.join(out_dir, "logs", logs[-1]), encoding="utf-8") as fh:
        found = re.search(r"timings \(s\):.*\bhistory ([\d.]+)", fh.read())
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 (our table names)
                for t in ("runs", "files", "scores", "subtotals", "ranks", "findings")}
    finally:
        conn.close()
    return {"seconds": float(found.group(1)) if found else None, "rows": rows, "mb": os.path.getsize(db) / MB}


def print_size(size: dict, fig: dict) -> None:
    print(f"\n=== N={fig['n']}: {fig['files']} files ===")
    rows = [(title, cell) for (title, _k, _s), cell in zip(COLUMNS[1:], _row(fig)[1:], strict=True)]
    rows += [
        ("  run tree peak MB (sampled)", _fmt(fig["run_tree_peak_mb"], ".0f")),
        ("  run largest process maxrss MB", _fmt(fig["run_wait4_maxrss_mb"], ".0f")),
        ("  run processes (max seen)", str(fig["run_max_procs"])),
        ("  of which feedback workbooks s", _fmt(fig.get("feedback_s"), ".3f")),
        ("second run, same inputs and --out s", _fmt(fig.get("rerun_s"), ".3f")),
        ("  of which feedback workbooks s (reused)", _fmt(fig.get("rerun_feedback_s"), ".3f")),
        ("  feedback workbooks", size.get("rerun_feedback", "-")),
        ("floor peak MB", _fmt(fig["floor_peak_mb"], ".0f")),
        ("naive peak MB", "skipped" if fig["naive_skipped"] else _fmt(fig["naive_peak_mb"], ".0f")),
        ("pandas-calamine peak MB", "skipped" if fig["pandas_skipped"] else _fmt(fig["pandas_peak_mb"], ".0f")),
        ("python start-up s", _fmt(size["startup_s"], ".3f")),
    ]
    history = size.get("history")
    if history:
        rows += [("history.sqlite write s (in run)", _fmt(history["seconds"], ".3f")),
                 ("  rows written", f"{sum(history['rows'].values()):,}"),
                 ("  file MB", _fmt(history["mb"], ".1f"))]
    width = max(len(t) for t, _ in rows)
    for title, cell in rows:
        print(f"  {title:<{width}}  {cell:>10}")
    for label, shown, verdict in target_lines([fig]):
        if "not in --sizes" not in shown:
            print(f"  target {label}: {shown} {verdict}")
    for what in ("run", "rerun", "floor", "naive", "pandas"):
        m = size.get(what)
        if m and not m["ok"]:
            print(f"  {what.upper()} FAILED: exit codes {m['exits']}; log: {size.get(what + '_log', '-')}")
            log = size.get(what + "_log")
            if log and os.path.exists(log):
                with open(log, encoding="utf-8", errors="replace") as fh:
                    tail = fh.read()[-1500:]
                print("    " + tail.replace("\n", "\n    "))


def print_summary(figs: list[dict], markdown: bool) -> None:
    titles = [t for t, _k, _s in COLUMNS]
    rows = [_row(f) for f in figs]
    targets = target_lines(figs)
    if markdown:
        print("\n| " + " | ".join(titles) + " |")
        print("|" + "|".join("---:" for _ in titles) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        print("\n| target | measured | |")
        print("|---|---:|---|")
        for label, shown, verdict in targets:
            print(f"| {label} | {shown} | {verdict} |")
        return
    widths = [max(len(t), *(len(r[i]) for r in rows)) for i, t in enumerate(titles)]
    print("\n" + "  ".join(t.rjust(w) for t, w in zip(titles, widths, strict=True)))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    print("\nTargets (for reference; the bench asserts nothing):")
    for label, shown, verdict in targets:
        print(f"  {verdict:<5} {label:<36} {shown}")


# --------------------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str]):
    import argparse

    def sizes(text: str) -> list[int]:
        try:
            out = [int(x) for x in text.split(",") if x.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from exc
        if not out or any(n < 1 for n in out):
            raise argparse.ArgumentTypeError("sizes must be positive integers")
        return out

    p = argparse.ArgumentParser(description="Benchmark `batch.py run` against a bare floor and a naive loop.",
                                epilog="Prints figures; asserts nothing.")
    p.add_argument("--sizes", type=sizes, default=list(DEFAULT_SIZES), help="comma-separated N (default 17,1000,10000)")
    p.add_argument("--work", default=os.path.join(REPO, "bench", ".work"),
                   help="cache folder for the generated inputs and outputs (default bench/.work)")
    p.add_argument("--fresh", action="store_true", help="regenerate the inputs even if the cache is current")
    p.add_argument("--repeat", type=int, default=None,
                   help="repetitions per timing, best reported (default 3 for N<1000, 1 for N>=1000)")
    p.add_argument("--naive-max", type=int, default=None, help="skip the two pandas.read_excel loops for N above this")
    p.add_argument("--markdown", action="store_true", help="print the summary as Markdown tables")
    p.add_argument("--json", dest="json_path", help="save the raw figures to this file")
    args = p.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def main(argv: list[str]) -> int:
    import json
    import shlex

    args = parse_args(argv)
    work = os.path.abspath(args.work)
    py = sys.executable
    print("command: " + shlex.join([os.path.basename(py), *sys.argv]))
    info = machine_info()
    print(f"machine: {info['cpu_count']} CPUs ({info['cpus_usable']} usable), {info['cpu_model']}, "
          f"{info['mem_total']} RAM; {info['platform']}")
    print(f"python {info['python']}; " + ", ".join(f"{k} {v}" for k, v in info["packages"].items())
          + f"; kbang_egov {info['kbang_egov']}, {info['rulebook']}; git {info['git']}")
    print(f"work folder: {work}; tree RSS via {info['tree_rss_via']}, every {SAMPLE_INTERVAL * 1000:.0f} ms")
    cols = scored_criteria_count()
    compile_package()
    print("bytecode: compiled once before timing; commands run without PYTHONDONTWRITEBYTECODE")

    startup = best_of([py, "-c", "pass"], 5, (0,))
    print(f"python start-up (`python -c pass`, best of 5): {startup['seconds']:.3f} s, "
          f"{startup['peak_mb']:.0f} MB")
    sizes_out, figs = [], []
    for n in args.sizes:
        repeat = args.repeat or (3 if n < 1000 else 1)
        print(f"\nN={n} (repeat {repeat}, best reported)", flush=True)
        gen = prepare_inputs(work, n, args.fresh)
        folder = gen["folder"]
        if gen["generated"]:
            print(f"  generation: {gen['seconds']:.1f} s (not part of the figures)")
        else:
            print(f"  inputs: reusing {folder} (stamp current; --fresh to regenerate)")
        files = len(_xlsx_files(folder))
        size_bytes = warm_cache(folder)
        out_dir = os.path.join(work, f"out{n}")
        floor_out = os.path.join(work, f"floor{n}.xlsx")
        size = {"n": n, "files": files, "input_mb": size_bytes / MB, "repeat": repeat, "generation": gen,
                "startup_s": startup["seconds"], "run_log": os.path.join(work, f"run{n}.log"),
                "rerun_log": os.path.join(work, f"rerun{n}.log"),
                "floor_log": os.path.join(work, f"floor{n}.log"), "naive_log": os.path.join(work, f"naive{n}.log"),
                "pandas_log": os.path.join(work, f"pandas{n}.log")}

        def clear_out(out_dir=out_dir):
            _safe_rmtree(out_dir, _output_file)

        print("  run ...", end=" ", flush=True)
        size["run"] = best_of([py, "batch.py", "run", folder, "--out", out_dir, "--districts",
                               os.path.join(folder, "districts.txt")], repeat, (0, 1), size["run_log"], clear_out)
        print(_fmt(size["run"]["seconds"], ".3f") + " s", flush=True)
        size["history"] = history_figures(out_dir)
        size["laps"] = run_laps(out_dir)
        if size["laps"]:
            print("  run phases (s, from the run's log): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in size["laps"].items()), flush=True)
        # The nightly case: the same returns again into the same --out, whose feedback workbooks are copied
        # from the run before instead of written (their content keys are the same).
        print("  second run (same inputs, same --out) ...", end=" ", flush=True)
        size["rerun"] = best_of([py, "batch.py", "run", folder, "--out", out_dir, "--districts",
                                 os.path.join(folder, "districts.txt")], 1, (0, 1), size["rerun_log"])
        print(_fmt(size["rerun"]["seconds"], ".3f") + " s", flush=True)
        size["rerun_laps"], size["rerun_feedback"] = run_laps(out_dir), feedback_counts(out_dir)
        if size["rerun_laps"]:
            print("  second run phases (s): " + ", ".join(f"{k} {v:.3f}" for k, v in size["rerun_laps"].items())
                  + f"; feedback workbooks {size['rerun_feedback']}", flush=True)
        print("  floor ...", end=" ", flush=True)
        size["floor"] = best_of([py, os.path.abspath(__file__), "_floor", folder, floor_out, str(files), str(cols)],
                                repeat, (0,), size["floor_log"])
        print(_fmt(size["floor"]["seconds"], ".3f") + " s", flush=True)
        for what, engine in (("naive", "openpyxl"), ("pandas", "calamine")):
            if args.naive_max is not None and n > args.naive_max:
                size[what] = None
                print(f"  {what}: skipped (N > --naive-max {args.naive_max})")
                continue
            print(f"  {what} ...", end=" ", flush=True)
            size[what] = best_of([py, os.path.abspath(__file__), "_naive", folder, engine], repeat, (0,),
                                 size[what + "_log"])
            print(_fmt(size[what]["seconds"], ".2f") + " s", flush=True)
        fig = figures_for(size)
        size["figures"] = fig
        print_size(size, fig)
        sizes_out.append(size)
        figs.append(fig)

    print_summary(figs, args.markdown)
    failed = [s["n"] for s in sizes_out
              if not all(s[k]["ok"] for k in ("run", "rerun", "floor", "naive", "pandas") if s.get(k))]
    if failed:
        print(f"\nFAILURES at N={', '.join(map(str, failed))}: see the logs above.")
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump({"command": sys.argv, "machine": info, "scored_criteria": cols, "startup": startup,
                       "sizes": sizes_out}, fh, indent=2, default=str)
        print(f"\nraw figures saved to {args.json_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "_floor":
        floor_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) >= 2 and sys.argv[1] == "_naive":
        naive_main(*sys.argv[2:4])
    else:
        sys.exit(main(sys.argv[1:]))
