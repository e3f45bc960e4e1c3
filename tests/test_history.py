"""Every run kept in DIR/history.sqlite, rank changes against the previous run or a baseline, the overview."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from kbang_egov import load_districts, run_batch, write_samples
from kbang_egov.cli import main
from kbang_egov.operations import pipeline
from kbang_egov.operations.pipeline import bundled_samples_dir
from kbang_egov.reporting import history
from kbang_egov.reporting.baseline import BaselineError, load_baseline
from kbang_egov.reporting.history import HISTORY_DB, list_runs
from kbang_egov.reporting.tables import overview
from kbang_egov.settings import Settings

A, B = "Huyện Mẫu 00001", "Huyện Mẫu 00002"


def _rows(out: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(out / HISTORY_DB) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def samples_night(tmp_path_factory, rb, districts):
    """(out, run): an output folder after one run over the bundled samples (no settings) and that run's
    result. Never changed: a test that runs over it, changes or breaks it works on `after_samples_night`."""
    out = tmp_path_factory.mktemp("samples-night") / "out"
    return out, run_batch(bundled_samples_dir(), out, rb, districts, workers=0)


@pytest.fixture()
def after_samples_night(samples_night, tmp_path):
    """(tmp_path/out, run): a copy of `samples_night`'s folder (links kept as links), the test's own to run
    over, change or break, and the result of the run that wrote it (the previous night)."""
    out, run = samples_night
    return shutil.copytree(out, tmp_path / "out", symlinks=True), run


@pytest.fixture(scope="module")
def tonight(tmp_path_factory) -> Path:
    """An inbox of three bundled samples (Ia Grai, Kbang, Pleiku) for the runs that follow a previous night: a
    run's history rows, its kill, its publishing and its comparison do not depend on how many returns it reads.
    Runs only read it."""
    inbox = tmp_path_factory.mktemp("tonight") / "inbox"
    inbox.mkdir()
    for name in ("Huyen_Ia_Grai", "Huyen_Kbang", "Thanh_pho_Pleiku"):
        shutil.copy2(bundled_samples_dir() / f"CQDT_2020_{name}.xlsx", inbox / f"CQDT_2020_{name}.xlsx")
    return inbox


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, rb):
    """Two synthetic districts that swap places between two nights (seeds 1 and 2), and between the nights
    a table of another part of the tool (the mail's) written into history.sqlite."""
    tmp = tmp_path_factory.mktemp("history")
    first_in, second_in = tmp / "night1", tmp / "night2"
    listed = write_samples(rb, first_in, count=2, seed=1).districts_file
    write_samples(rb, second_in, count=2, seed=2)
    districts = load_districts(listed)
    out = tmp / "out"
    first = run_batch(first_in, out, rb, districts, workers=0)
    with sqlite3.connect(out / HISTORY_DB) as conn:
        conn.execute("CREATE TABLE mail_sent (district TEXT, sent TEXT)")
        conn.execute("INSERT INTO mail_sent VALUES (?, ?)", (A, "2020-12-01"))
    first_ranking = pd.read_csv(out / "ranking.csv", encoding="utf-8-sig")
    second = run_batch(second_in, out, rb, districts, workers=0)
    return out, first, second, first_ranking, districts


def test_the_two_nights_swap_places(two_runs):
    _, first, second, _, _ = two_runs
    assert [(d.district, d.rank) for d in first.districts] == [(A, 1), (B, 2)]
    assert [(d.district, d.rank) for d in second.districts] == [(B, 1), (A, 2)]


def test_history_rows_after_two_runs(two_runs, rb):
    out, first, second, _, _ = two_runs
    assert _rows(out, "SELECT run_id, state, districts_ranked FROM runs ORDER BY seq") == [
        (first.run_id, "published", 2), (second.run_id, "published", 2)]
    for run in (first, second):
        n = len(rb.scored_criteria)
        assert _rows(out, "SELECT district, count(*) FROM scores WHERE run_id = ? GROUP BY district ORDER BY district",
                     run.run_id) == [(A, n), (B, n)]
        assert _rows(out, "SELECT district, rank, total FROM ranks WHERE run_id = ? ORDER BY rank", run.run_id) == [
            (d.district, d.rank, pytest.approx(d.total.scaled)) for d in run.districts]
        assert _rows(out, "SELECT count(*) FROM findings WHERE run_id = ?", run.run_id) == [(len(run.findings),)]
        assert _rows(out, "SELECT file, sha256 FROM files WHERE run_id = ? ORDER BY file", run.run_id) == sorted(
            (f.file, f.sha256) for f in run.files)
        parts = {(d.district, p.code): (d.subtotals[p.code].scaled, d.part_ranks[p.code])
                 for d in run.districts for p in rb.parts}
        got = _rows(out, "SELECT district, code, scaled, rank FROM subtotals WHERE run_id = ? AND level = 'part'",
                    run.run_id)
        assert {(d, c): (pytest.approx(s), r) for d, c, s, r in got} == parts
    # The other engineer's table is still there, with its row.
    assert _rows(out, "SELECT * FROM mail_sent") == [(A, "2020-12-01")]
    assert [r.run_id for r in list_runs(out)] == [first.run_id, second.run_id]


def test_rank_change_where_two_districts_swap(two_runs):
    out, _, second, first_ranking, _ = two_runs
    assert first_ranking["previous_rank"].isna().all() and first_ranking["rank_change"].isna().all()
    ranking = pd.read_csv(out / "ranking.csv", encoding="utf-8-sig").set_index("district")
    assert ranking.loc[B, ["rank", "previous_rank", "rank_change"]].tolist() == [1, 2, 1]  # up one
    assert ranking.loc[A, ["rank", "previous_rank", "rank_change"]].tolist() == [2, 1, -1]  # down one
    assert _rows(out, "SELECT district, previous_rank, rank_change FROM ranks WHERE run_id = ? ORDER BY rank",
                 second.run_id) == [(B, 2, 1), (A, 1, -1)]


def test_changes_sheet_shows_totals_parts_and_rank_before_and_now(two_runs):
    out, first, second, _, _ = two_runs
    sheet = pd.read_excel(out / "ranking.xlsx", sheet_name="Diễn biến", header=None, engine="calamine")
    header = next(i for i, row in sheet.iterrows() if "Đơn vị" in row.tolist())
    table = sheet.iloc[header + 1:header + 3]
    table.columns = sheet.iloc[header].tolist()
    table = table.set_index("Đơn vị")
    before = {d.district: d for d in first.districts}
    for d in second.districts:
        row = table.loc[d.district]
        assert (row["Hạng trước"], row["Hạng nay"], row["Thay đổi hạng"]) == (
            before[d.district].rank, d.rank, before[d.district].rank - d.rank)
        assert row["Tổng điểm trước"] == pytest.approx(before[d.district].total.scaled)
        assert row["Tổng điểm nay"] == pytest.approx(d.total.scaled)
        assert row["Thay đổi tổng điểm"] == pytest.approx(d.total.scaled - before[d.district].total.scaled, abs=0.01)


def _kill_at(monkeypatch, name: str, module: object = pipeline) -> None:
    """Make the run's step `name` stop the run as a kill would (SystemExit skips `except Exception`)."""
    def stop(*args, **kwargs):
        raise SystemExit(137)
    monkeypatch.setattr(module, name, stop)


@pytest.mark.parametrize("step", ["publish", "seal_run_folder", "keep_history"])
def test_a_run_stopped_before_it_publishes_leaves_the_history_as_it_was(after_samples_night, tonight, rb, districts,
                                                                         monkeypatch, step):
    out, first = after_samples_night
    before = {t: _rows(out, f"SELECT count(*) FROM {t}") for t in ("runs", "scores", "ranks", "findings")}
    with monkeypatch.context() as m:
        _kill_at(m, step)
        with pytest.raises(SystemExit):
            run_batch(tonight, out, rb, districts, workers=0)
    assert [r.run_id for r in list_runs(out, first.run_id)] == [first.run_id]  # what readers see
    again = run_batch(tonight, out, rb, districts, workers=0)
    assert again.comparison is not None and again.comparison.reference == first.run_id
    assert [r.run_id for r in list_runs(out)] == [first.run_id, again.run_id]
    after = {t: _rows(out, f"SELECT count(*) FROM {t} WHERE run_id = ?", first.run_id)
             for t in ("scores", "ranks", "findings")}
    assert after == {t: before[t] for t in after}  # the killed run's rows are gone, the first run's intact


def test_a_run_stopped_after_it_published_counts_as_published(after_samples_night, tonight, rb, districts,
                                                               monkeypatch):
    """Killed between the switch and marking its rows published: the outputs show it, so its rows count."""
    out, _ = after_samples_night
    with monkeypatch.context() as m:
        _kill_at(m, "mark_published", history)
        with pytest.raises(SystemExit):
            run_batch(tonight, out, rb, districts, workers=0)
    shown = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["run_id"]
    assert list_runs(out, shown)[-1].run_id == shown
    assert _rows(out, "SELECT state FROM runs WHERE run_id = ?", shown) == [("pending",)]
    again = run_batch(tonight, out, rb, districts, workers=0)
    assert again.comparison.reference == shown
    assert _rows(out, "SELECT state FROM runs ORDER BY seq") == [("published",)] * 3


def test_a_published_run_whose_mark_fails_still_succeeds(tmp_path, tonight, rb, districts, monkeypatch):
    """The outputs are published when marking fails (a full disk): the run says so and the next one settles it."""
    def fail(*args, **kwargs):
        raise history.HistoryError("disk full")
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        m.setattr(history, "mark_published", fail)
        run = run_batch(tonight, out, rb, districts, workers=0)
    assert any("disk full" in n for n in run.notices)
    assert [r.run_id for r in list_runs(out, run.run_id)] == [run.run_id]
    run_batch(tonight, out, rb, districts, workers=0)
    assert _rows(out, "SELECT state FROM runs ORDER BY seq") == [("published",)] * 2


def test_a_damaged_history_database_is_exit_3_and_publishes_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / HISTORY_DB).write_bytes(b"not a database" * 100)
    done = CliRunner().invoke(main, ["run", "--out", str(out)])
    assert done.exit_code == 3 and HISTORY_DB in done.output
    assert not (out / "ranking.xlsx").exists()


# --- the baseline --------------------------------------------------------------------------------------


def _published_table(path: Path) -> Path:
    """A table as a province publishes it: a title, Vietnamese headers, names typed without 'Huyện'."""
    rows = [["BẢNG XẾP HẠNG CHÍNH QUYỀN ĐIỆN TỬ NĂM 2019", None, None, None],
            [None, None, None, None],
            ["STT", "Đơn vị", "Tổng điểm", "Xếp hạng"],
            [1, "Kbang", 120.5, 2],
            [2, "TP Pleiku", 150, 1],
            [3, "Thị xã An Khê", None, "Chưa nộp"]]
    pd.DataFrame(rows).to_excel(path, header=False, index=False)
    return path


def test_baseline_from_a_published_table(tmp_path, rb, districts):
    got = load_baseline(_published_table(tmp_path / "2019.xlsx"), districts, rb)
    assert got.ranks == {"Huyện Kbang": 2, "Thành phố Pleiku": 1, "Thị xã An Khê": None}
    assert got.totals == {"Huyện Kbang": 120.5, "Thành phố Pleiku": 150.0, "Thị xã An Khê": None}


def test_baseline_from_our_own_ranking_csv_and_xlsx(samples_night, rb, districts):
    out, run = samples_night
    want = {d.district: d.rank for d in run.districts}
    for name in ("ranking.csv", "ranking.xlsx"):
        got = load_baseline(out / name, districts, rb)
        assert got.ranks == want, name
        kbang = next(d for d in run.districts if d.district == "Huyện Kbang")
        assert got.parts["Huyện Kbang"] == {p.code: pytest.approx(kbang.subtotals[p.code].scaled, abs=0.01)
                                            for p in rb.parts}, name


def test_baseline_csv_as_excel_saves_it(tmp_path, rb, districts):
    """A title line above the header, semicolons and decimal commas (Excel in a Vietnamese locale), a BOM, a
    note row without figures, short rows."""
    path = tmp_path / "b.csv"
    path.write_bytes("Bảng xếp hạng 2019\n\nĐơn vị;Tổng điểm;Xếp hạng\nKbang;120,5;2\nTP Pleiku;150;1\n"
                     "Chư Sê;;\nGhi chú: số liệu tạm;;\nDak Doa\n".encode("utf-8-sig"))
    got = load_baseline(path, districts, rb)
    assert got.ranks == {"Huyện Kbang": 2, "Thành phố Pleiku": 1, "Huyện Chư Sê": None, "Huyện Đak Đoa": None}
    assert got.totals["Huyện Kbang"] == 120.5


def test_baseline_reads_vietnamese_numbers_as_the_returns_are_read(tmp_path, rb, districts):
    """'.' groups thousands and ',' is the decimal mark, as in the returns: "1.405" is 1405, never 1.405."""
    path = tmp_path / "b.csv"
    path.write_bytes("Đơn vị;Tổng điểm;Điều kiện sẵn sàng;Kết quả;Xếp hạng\n"
                     "Kbang;1.405,5;87,89;1.317,61;2\nTP Pleiku;1.405;50,5;99;1\n".encode("utf-8-sig"))
    got = load_baseline(path, districts, rb)
    assert got.ranks == {"Huyện Kbang": 2, "Thành phố Pleiku": 1}
    assert got.totals == {"Huyện Kbang": 1405.5, "Thành phố Pleiku": 1405.0}
    assert got.parts["Huyện Kbang"] == {"SS": pytest.approx(87.89), "KQ": pytest.approx(1317.61)}


@pytest.mark.parametrize("rows, where", [
    ([["district", "rank"], ["Huyện Kbang", 1], ["Huyện Không Có", 2]], "Huyện Không Có"),
    ([["Đơn vị", "Tổng điểm"], ["Huyện Kbang", 100]], "Xếp hạng"),
    ([["district", "rank"], ["Kbang", 1], ["Huyện Kbang", 2]], "Huyện Kbang"),
])
def test_a_baseline_that_cannot_be_used_is_a_clear_error(tmp_path, rb, districts, rows, where):
    path = tmp_path / "b.csv"
    pd.DataFrame(rows).to_csv(path, header=False, index=False)
    with pytest.raises(BaselineError, match=where):
        load_baseline(path, districts, rb)
    done = CliRunner().invoke(main, ["run", "--out", str(tmp_path / "out"), "--baseline", str(path)])
    assert done.exit_code == 2 and where in done.output


def test_run_with_a_baseline_compares_with_it(tmp_path, after_samples_night, tonight):
    path = _published_table(tmp_path / "2019.xlsx")
    out, _ = after_samples_night  # a previous run the baseline replaces
    done = CliRunner().invoke(main, ["run", str(tonight), "--out", str(out), "--baseline", str(path), "--json"])
    assert done.exit_code == 1, done.output
    summary = json.loads(done.output)
    assert summary["compared_with"] == {"source": "baseline", "reference": str(path)}
    by = {r["district"]: r for r in summary["ranking"]}
    assert (by["Huyện Kbang"]["previous_rank"], by["Huyện Kbang"]["rank_change"]) == (2, 2 - by["Huyện Kbang"]["rank"])
    assert by["Huyện Ia Grai"]["previous_rank"] is None and by["Huyện Ia Grai"]["rank_change"] is None
    ranking = pd.read_csv(out / "ranking.csv", encoding="utf-8-sig").set_index("district")
    assert ranking.loc["Thành phố Pleiku", "previous_rank"] == 1
    assert _rows(out, "SELECT compared_with FROM runs ORDER BY seq DESC LIMIT 1") == [(str(path),)]


# --- the overview ----------------------------------------------------------------------------------------


def test_overview_figures_against_the_run(tmp_path, rb, districts):
    """Kbang left out, Pleiku's return saved after the deadline's day, one more saved on the day itself."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    on_time = dt.datetime(2020, 12, 10, 8).timestamp()
    for f in bundled_samples_dir().glob("*.xlsx"):
        if "Kbang" not in f.name:
            (inbox / f.name).write_bytes(f.read_bytes())
            os.utime(inbox / f.name, (on_time, on_time))
    late = dt.datetime(2020, 12, 16, 0, 0, 1).timestamp()
    os.utime(next(inbox.glob("*Pleiku*")), (late, late))
    last_minute = dt.datetime(2020, 12, 15, 23, 59).timestamp()
    os.utime(next(inbox.glob("*An_Khe*")), (last_minute, last_minute))
    settings = Settings(province="Gia Lai", year=2020, deadline=dt.date(2020, 12, 15))
    run = run_batch(inbox, tmp_path / "out", rb, districts, workers=0, settings=settings)
    view = overview(run)
    assert (view.expected, view.received, view.not_submitted) == (17, 16, ("Huyện Kbang",))
    assert view.complete + view.to_correct == 16
    assert view.complete == sum(1 for d in run.districts if d.errors == 0)
    assert [n for n, _ in view.late] == ["Thành phố Pleiku"]
    assert view.best == ((run.districts[0].district, run.districts[0].total.scaled),)
    assert [n for n, _ in view.weakest] == [d.district for d in run.districts if d.rank == run.districts[-1].rank]
    sheet = pd.read_excel(tmp_path / "out" / "ranking.xlsx", sheet_name=None, header=None, engine="calamine")
    assert next(iter(sheet)) == "Tổng quan"
    facts = {row[0]: row[1] for row in sheet["Tổng quan"].itertuples(index=False) if isinstance(row[0], str)}
    assert facts["Tỉnh"] == "Gia Lai" and facts["Năm đánh giá"] == 2020
    assert facts["Số đơn vị đã nộp"] == "16/17"
    assert facts["Chưa nộp"] == "Huyện Kbang"
    assert facts["Hoàn chỉnh"] == view.complete and facts["Cần sửa"] == view.to_correct
    assert facts["Hạn nộp"] == "15/12/2020"
    assert facts["Nộp muộn"].startswith("Thành phố Pleiku")


def test_overview_without_settings_says_what_it_does_not_know(samples_night):
    out, run = samples_night
    assert overview(run).deadline is None and overview(run).late == ()
    sheet = pd.read_excel(out / "ranking.xlsx", sheet_name="Tổng quan", header=None, engine="calamine")
    facts = {row[0]: row[1] for row in sheet.itertuples(index=False) if isinstance(row[0], str)}
    assert "chưa đặt" in facts["Hạn nộp"] and "chưa đặt" in facts["Tỉnh"]


def test_history_command_lists_runs_and_one_districts_path(two_runs):
    out, first, second, _, _ = two_runs
    done = CliRunner().invoke(main, ["history", "--out", str(out)])
    assert done.exit_code == 0 and first.run_id in done.output and second.run_id in done.output
    done = CliRunner().invoke(main, ["history", "--out", str(out), "--district", "mẫu 00002"])
    assert done.exit_code == 0, done.output
    lines = [line for line in done.output.splitlines() if line.startswith(("2", first.run_id[:4]))]
    assert [line.split()[0] for line in lines] == [first.run_id, second.run_id]
    assert lines[1].split()[3:5] == ["1", "+1"]  # rank 1 the second night, up one
    done = CliRunner().invoke(main, ["history", "--out", str(out), "--district", "Nowhere"])
    assert done.exit_code == 2


def test_history_command_without_a_database(tmp_path):
    done = CliRunner().invoke(main, ["history", "--out", str(tmp_path)])
    assert done.exit_code == 2 and HISTORY_DB in done.output


def test_history_command_before_the_first_run(tmp_path):
    """The mail's commands may create history.sqlite (their tables) before any run."""
    with sqlite3.connect(tmp_path / HISTORY_DB) as conn:
        conn.execute("CREATE TABLE mail_sent (district TEXT)")
    assert list_runs(tmp_path) == []
    assert CliRunner().invoke(main, ["history", "--out", str(tmp_path)]).exit_code == 0
    assert CliRunner().invoke(main, ["history", "--out", str(tmp_path), "--district", "Kbang"]).exit_code == 2



KILLED_MID_WRITE = """
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA cache_size = 1")  # pages spill to the file mid-transaction: the journal is hot
db.execute("BEGIN")
db.execute("UPDATE runs SET state = 'pending'")
db.executemany("INSERT INTO findings (run_id) VALUES (?)", [("x",)] * 20000)
os.kill(os.getpid(), 9)  # killed mid-transaction: history.sqlite-journal stays beside the database
"""


def test_history_reads_what_was_committed_after_a_run_killed_while_it_wrote(after_samples_night):
    out, first = after_samples_night
    subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(out / "history.sqlite")], check=False)
    assert (out / "history.sqlite-journal").exists()
    assert [r.run_id for r in list_runs(out)] == [first.run_id]  # not "attempt to write a readonly database"
    assert _rows(out, "SELECT state FROM runs") == [("published",)]
