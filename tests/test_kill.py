"""A run killed at any moment: the outputs in DIR all come from one run (its manifest says which), and
history.sqlite counts exactly the runs that were published, the ranking opens, no worker outlives the run, and whoever reads its output (`batch.py run | mail`) is not
left waiting. SIGTERM (systemd's stop) leaves no process behind either."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner

from kbang_egov.cli import main
from kbang_egov.operations.pipeline import bundled_samples_dir
from kbang_egov.operations.runlock import LOCK_NAME
from kbang_egov.reporting.history import list_runs

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted(bundled_samples_dir().glob("*.xlsx"))
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals, sessions and /proc are Linux's")

FOLDERS = 2  # output folders whose nights are killed side by side (each its own sequence of runs)
KILLS = 10  # SIGKILLs of a live run at random moments, in each folder (runs that finish first come on top)
TERMS = 2  # SIGTERMs, in each folder


def _session(sid: int) -> list[int]:
    """The live (not zombie) processes of a session: the run started with start_new_session has sid = pid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _assert_nothing_left(sid: int) -> None:
    deadline = time.monotonic() + 5
    while _session(sid) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = _session(sid)
    for pid in left:  # a failing test must not leave them spinning on a shared machine
        os.kill(pid, signal.SIGKILL)
    assert left == [], "a process of the killed run is still alive"


def _read_to_eof(proc: subprocess.Popen) -> bytes:
    """What the killed run wrote to stderr; fails when its pipes stay open (someone else holds them)."""
    try:
        return proc.communicate(timeout=10)[1] or b""
    except subprocess.TimeoutExpired:
        _assert_nothing_left(proc.pid)
        pytest.fail("the killed run's output pipe stayed open: a process it started holds it")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_one_run(out: Path) -> str:
    """Every output in DIR is the one the manifest names, the workbook says the same run id and opens, and
    the run's ranking has its dated copy; returns the run id."""
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert sorted(n for n in manifest["files"] if "/" not in n) == ["findings.csv", "ranking.csv", "ranking.xlsx",
                                                                     "scores.csv"]
    assert "feedback/feedback.csv" in manifest["files"]  # DIR/feedback is the same run's, file by file below
    for name, entry in manifest["files"].items():
        assert _sha256(out / name) == entry["sha256"], f"{name} is not from run {manifest['run_id']}"
    wb = openpyxl.load_workbook(out / "ranking.xlsx", read_only=True)
    run_sheet = {r[0]: r[1] for r in wb["Thông tin lần chạy"].iter_rows(max_col=2, values_only=True) if r[0]}
    assert run_sheet["Mã lần chạy"] == manifest["run_id"]
    assert len(pd.read_csv(out / "ranking.csv", encoding="utf-8-sig")) == manifest["districts_ranked"]
    history = {_sha256(p) for p in (out / "history").glob("ranking_*.xlsx")}
    assert manifest["files"]["ranking.xlsx"]["sha256"] in history
    runs = list_runs(out, manifest["run_id"])  # history.sqlite as its readers see it
    assert runs[-1].run_id == manifest["run_id"] and runs[-1].districts_ranked == manifest["districts_ranked"]
    with sqlite3.connect(out / "history.sqlite") as db:
        ranked = db.execute("SELECT count(*) FROM ranks WHERE run_id = ?", (manifest["run_id"],)).fetchone()[0]
    assert ranked == manifest["districts_ranked"]
    return manifest["run_id"]


def assert_history_is(out: Path, published: set[str]) -> None:
    """The runs history.sqlite counts are exactly those whose outputs were ever published: a killed run's
    rows never count, and no published run's rows are lost."""
    shown = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["run_id"]
    assert {r.run_id for r in list_runs(out, shown)} == published


def _start(inbox: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "batch.py", "run", str(inbox), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _moment(rng: random.Random, proc: subprocess.Popen, out: Path, longest: float) -> str:
    """Wait for a random moment of the run: a random time, or a random step of the writing (a new run folder
    begun, sealed, or published), whichever the dice choose; returns what was waited for."""
    what = rng.choice(["time", "time", "staging", "sealed", "published"])
    if what == "time":
        time.sleep(rng.uniform(0, longest))
        return what
    runs = out / "runs"
    before = set(os.listdir(runs)) if runs.is_dir() else set()
    current = os.readlink(out / "current") if (out / "current").is_symlink() else ""
    deadline = time.monotonic() + longest * 2
    while proc.poll() is None and time.monotonic() < deadline:
        new = set(os.listdir(runs)) - before if runs.is_dir() else set()
        if (what == "staging" and any(n.startswith(".tmp-") for n in new)
                or what == "sealed" and any(not n.startswith(".tmp-") for n in new)
                or what == "published" and os.readlink(out / "current") != current):
            break
        time.sleep(0.0002)
    time.sleep(rng.uniform(0, 0.003))
    return what


def _kill_nights(out: Path, work: Path, seed: int) -> set[str]:
    """Runs into `out`, one at a time, each over another random inbox of 1 to 5 returns (so every run's
    outputs differ), each but the first killed at a random moment, until KILLS SIGKILLs and then TERMS
    SIGTERMs have hit a live run. The first run, over 5 returns, is left to finish: it is the yardstick for
    the random moments. After every run the outputs in `out` are one run's; returns the ids of the runs
    published."""
    rng = random.Random(seed)
    ids = {assert_one_run(out)}
    kills, terms, moments, longest = 0, 0, [], 0.0
    for i in range(2 * (KILLS + TERMS) + 1):
        if terms == TERMS:
            break
        inbox = work / f"in{i}"
        inbox.mkdir(parents=True)
        for sample in rng.sample(SAMPLES, rng.randint(1, 5) if longest else 5):  # the yardstick: the largest
            shutil.copyfile(sample, inbox / sample.name)
        t0 = time.monotonic()
        proc = _start(inbox, out)
        if longest:
            moments.append(_moment(rng, proc, out, longest))
        else:
            proc.wait(timeout=120)
            longest = (time.monotonic() - t0) * 1.2
        sig = signal.SIGKILL if kills < KILLS else signal.SIGTERM
        if proc.poll() is None:  # a run that finished first is checked all the same
            os.kill(proc.pid, sig)
            kills, terms = kills + (sig == signal.SIGKILL), terms + (sig == signal.SIGTERM)
        err = _read_to_eof(proc)  # EOF on its stdout and stderr: nobody holds them open (`| mail` ends)
        _assert_nothing_left(proc.pid)
        assert proc.returncode in (0, 1, -signal.SIGKILL, 128 + signal.SIGTERM, -signal.SIGTERM), (seed, err)
        if proc.returncode == 128 + signal.SIGTERM:
            # SIGTERM releases the lock: the file never names this run (a run stopped before it took the lock
            # leaves the name of a killed one, for the next run's takeover notice)
            assert f'"pid": {proc.pid},' not in (out / LOCK_NAME).read_text(), (seed, err)
        ids.add(assert_one_run(out))
        assert_history_is(out, ids)
        assert b"Traceback" not in err, (seed, err)
        shutil.rmtree(inbox)
    assert (kills, terms) == (KILLS, TERMS), f"seed {seed}: too few runs were alive to be killed ({moments})"
    assert len(ids) > 1  # some runs did finish and replace the outputs: the assertions compared new files
    return ids


def test_random_kills_never_mix_two_runs_nor_leave_a_worker(tmp_path, one_night):
    """At least 20 SIGKILLs of the real batch (the parent only, as the OOM killer or `kill -9 PID` does) at
    random moments, and 4 SIGTERMs: the nights of two output folders, each a copy of one published night,
    are killed side by side (a thread each), so the machine works while one waits for its moment."""
    seed = int(os.environ.get("KILL_SEED", random.randrange(1 << 30)))
    outs = [shutil.copytree(one_night, tmp_path / f"out{k}", symlinks=True) for k in range(FOLDERS)]
    with concurrent.futures.ThreadPoolExecutor(FOLDERS) as pool:
        nights = [pool.submit(_kill_nights, out, tmp_path / f"work{k}", seed + k) for k, out in enumerate(outs)]
        published = [night.result() for night in nights]
    for out, ids in zip(outs, published, strict=True):
        done = CliRunner().invoke(main, ["run", "--out", str(out), "--json"])  # the next night, in this process
        assert done.exit_code == 1, done.output
        assert assert_one_run(out) == json.loads(done.stdout)["run_id"]
        assert_history_is(out, ids | {json.loads(done.stdout)["run_id"]})
        with sqlite3.connect(out / "history.sqlite") as db:  # the last run settled what killed runs left
            assert db.execute("SELECT count(*) FROM runs WHERE state != 'published'").fetchone()[0] == 0
        assert len(list((out / "runs").iterdir())) == 2  # the current run and the one before; no leftovers
        assert not list(out.glob(".tmp-*"))


HOLDING_THE_GIL = textwrap.dedent("""
    import os, re, sys
    from kbang_egov.operations.isolation import run_isolated

    def work(item):
        open(os.path.join(sys.argv[1], str(os.getpid())), "w").close()
        re.match(r"(a+)+$", "a" * 64 + "b")  # backtracks for ages without ever releasing the GIL

    for _ in run_isolated(work, [1, 2], workers=2, timeout=600):
        pass
""")


def test_workers_die_with_their_parent_even_mid_item(tmp_path):
    """The parent is killed while both workers are deep in an item that holds the GIL (where no watchdog
    thread in the worker could run): the kernel's parent-death signal ends them at once."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDING_THE_GIL, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 30
    while len(os.listdir(tmp_path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = [int(p) for p in os.listdir(tmp_path)]
    assert len(workers) == 2 and set(workers) <= set(_session(proc.pid))
    proc.kill()
    _read_to_eof(proc)
    _assert_nothing_left(proc.pid)


def test_sigterm_while_reading_stops_everything_and_publishes_nothing(after_one_night):
    """systemd's stop: the run ends with 143, its workers with it, the lock is released and the previous
    outputs stay as they were."""
    out = after_one_night
    before = assert_one_run(out)
    proc = _start(bundled_samples_dir(), out)
    deadline = time.monotonic() + 60
    while proc.poll() is None and len(_session(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)  # until its workers are reading
    assert proc.poll() is None and (out / LOCK_NAME).stat().st_size, "the run finished before it could be stopped"
    os.kill(proc.pid, signal.SIGTERM)
    err = _read_to_eof(proc)
    assert proc.returncode == 128 + signal.SIGTERM and b"Traceback" not in err, err
    _assert_nothing_left(proc.pid)
    assert (out / LOCK_NAME).read_text() == "" and assert_one_run(out) == before
    assert_history_is(out, {before})
