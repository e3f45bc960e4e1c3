"""Fixtures many test modules share: the bundled rulebook and district list, loaded once per session."""

from __future__ import annotations

import compileall
import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kbang_egov.rules.districts import load_districts
from kbang_egov.rules.rulebook import default_rulebook_path, load_rulebook

ROOT = Path(__file__).resolve().parents[1]

# The longest modules, started first. pytest-xdist hands whole modules to its workers in collection order
# (pyproject.toml: --dist loadscope --no-loadscope-reorder); a long module handed out last would keep one
# core busy while the other has nothing left to do.
LONGEST_FIRST = ("test_kill.py", "test_nightly.py", "test_libreoffice_live.py", "test_feedback.py",
                 "test_history.py", "test_output_folder.py", "test_libreoffice_batch.py", "test_mail.py",
                 "test_batch.py", "test_hostile_second.py", "test_hostile_corpus.py")


def pytest_configure(config: pytest.Config) -> None:
    """Compile the package (and the tests' helper modules) once, before the test processes start: where
    PYTHONDONTWRITEBYTECODE is set (it is on the machine CI runs on) Python keeps no bytecode cache, and each
    of the dozens of interpreters the suite starts (xdist workers, every `python batch.py` a test starts)
    would compile every module again. Reading a cache is not affected by the variable; compileall writes it
    as pip does at install time. (pytest compiles the test modules themselves, for its assertions.)"""
    if not hasattr(config, "workerinput"):  # the controller, once; a tree it may not write in stays as it is
        compileall.compile_dir(ROOT / "kbang_egov", quiet=2)
        compileall.compile_dir(ROOT / "tests", maxlevels=0, quiet=2)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    first = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: first.get(item.path.name, len(first)))  # stable: each module stays in order


@pytest.fixture(scope="session")
def rb():
    return load_rulebook()


@pytest.fixture(scope="session")
def districts():
    return load_districts()


@pytest.fixture(scope="session")
def rulebook_data() -> dict:
    """The bundled rulebook file as parsed data, parsed once (the pure-Python YAML parser takes about 0.3 s)."""
    return yaml.safe_load(default_rulebook_path().read_text(encoding="utf-8"))


@pytest.fixture()
def raw(rulebook_data) -> dict:
    """The bundled rulebook file as plain parsed data, a fresh copy for each test to change."""
    return copy.deepcopy(rulebook_data)


@pytest.fixture(scope="session")
def one_night_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One real night over the bundled samples, started as cron starts it (`python batch.py run --json`), once
    per test process: its output folder and the finished process (exit code, stdout, stderr as text). Never
    changed: a test that needs a previous night copies the folder (fixture `after_one_night`)."""
    out = tmp_path_factory.mktemp("one-night") / "out"
    done = subprocess.run([sys.executable, "batch.py", "run", "--out", str(out), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # the bundled samples carry planted slips
    return out, done


@pytest.fixture(scope="session")
def one_night(one_night_run) -> Path:
    """The output folder of `one_night_run`: read it, never change it."""
    return one_night_run[0]


@pytest.fixture()
def after_one_night(one_night, tmp_path) -> Path:
    """tmp_path/out holding the outputs of one night over the bundled samples: a copy of `one_night` (links
    kept as links), the test's own to run over, change or break."""
    return shutil.copytree(one_night, tmp_path / "out", symlinks=True)


@pytest.fixture(scope="session")
def lo_profile(tmp_path_factory) -> Path:
    """One LibreOffice user profile per test process (its first start costs about a second more than the
    next ones). The tests of a process run one at a time, so it is never in use by two LibreOffices."""
    from workbooks import make_profile

    return make_profile(tmp_path_factory.mktemp("lo-profile"))
