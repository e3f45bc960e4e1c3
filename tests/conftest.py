"""Fixtures many test modules share: the bundled rulebook and district list, loaded once per session."""

from __future__ import annotations

import copy

import pytest
import yaml

from kbang_egov.rules.districts import load_districts
from kbang_egov.rules.rulebook import default_rulebook_path, load_rulebook


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
