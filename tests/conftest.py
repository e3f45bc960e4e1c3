"""Fixtures many test modules share: the bundled rulebook and district list, loaded once per session."""

from __future__ import annotations

import pytest

from kbang_egov.rules.districts import load_districts
from kbang_egov.rules.rulebook import load_rulebook


@pytest.fixture(scope="session")
def rb():
    return load_rulebook()


@pytest.fixture(scope="session")
def districts():
    return load_districts()
