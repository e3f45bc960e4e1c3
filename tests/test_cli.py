"""The CLI drives the library: exit codes and what it prints."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from kbang_egov.cli import main
from kbang_egov.rules.rulebook import default_rulebook_path


def test_rules_json_lists_170_scored_criteria():
    result = CliRunner().invoke(main, ["rules", "--format", "json"])
    assert result.exit_code == 0
    records = json.loads(result.output)
    scored = [r for r in records if r["scored"]]
    assert len(scored) == 170
    assert sum(r["max"] for r in scored if r["part"] == "SS") == 60
    assert sum(r["max"] for r in scored if r["part"] == "KQ") == 110
    by_code = {r["code"]: r for r in records}
    for r in records:
        assert {"code", "group", "name", "max", "kind", "inputs"} <= set(r)
    assert by_code["SS.I.2"]["options"] == [{"label": "Có", "points": 1}, {"label": "Không", "points": 0}]
    assert by_code["SS.III.9"]["tiers"] == [
        {"label": ">05 văn bản", "points": 1, "gt": 5},
        {"label": "03-05 văn bản", "points": 0.5, "ge": 3, "le": 5},
        {"label": "<03 văn bản", "points": 0, "lt": 3},
    ]
    assert by_code["SS.III.8"]["value"] == {"unit": "triệu đồng", "integer": False, "min": 0, "max": None}
    assert by_code["KQ.III.1"]["inputs"] == ["numerator", "denominator"]
    assert by_code["KQ.III.1"]["numerator"] and by_code["KQ.III.1"]["denominator"]


def test_rules_table_is_readable():
    result = CliRunner().invoke(main, ["rules"])
    assert result.exit_code == 0
    assert "170 scored criteria, 170 points" in result.output
    assert "SS.III.9" in result.output and "> 5: 1 | >= 3 và <= 5: 0,5 | < 3: 0" in result.output
    assert "KQ.I.32b" in result.output and "không tính điểm" in result.output


def test_broken_rulebook_stops_with_entry_and_field(tmp_path: Path):
    data = yaml.safe_load(default_rulebook_path().read_text(encoding="utf-8"))
    data["criteria"][0]["kind"] = "percentage"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(main, ["--rulebook", str(broken), "rules"])
    assert result.exit_code == 3
    assert "tiêu chí SS.I.1, trường 'kind': không có loại 'percentage'" in result.output


def test_unknown_district_is_a_usage_error(tmp_path: Path):
    result = CliRunner().invoke(main, ["template", "--out", str(tmp_path), "--district", "Hà Nội"])
    assert result.exit_code == 2
    assert "'Hà Nội' is not on the district list" in result.output
    assert not list(tmp_path.iterdir())


def test_template_default_writes_blank_only(tmp_path: Path):
    result = CliRunner().invoke(main, ["template", "--out", str(tmp_path)])
    assert result.exit_code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["CQDT_2020_mau.xlsx"]


def test_the_program_prints_everything_before_it_ends(one_night_run):
    _, done = one_night_run  # `python batch.py run --json`, a real process
    assert done.returncode == 1  # the bundled samples carry planted slips
    summary = json.loads(done.stdout)  # the whole JSON document: nothing is lost when the process ends
    assert summary["exit_code"] == 1
    assert all(Path(p).is_file() or Path(p).name == "feedback" and Path(p).is_dir() for p in summary["outputs"])
