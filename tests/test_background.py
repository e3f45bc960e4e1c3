"""The forked helper that writes the CSVs beside the workbook: value, exception and death come back."""

from __future__ import annotations

import os

import pytest

from kbang_egov.background import Background
from kbang_egov.report_writer import OutputError

pytestmark = pytest.mark.skipif(os.name != "posix", reason="fork is POSIX")


def test_background_returns_its_value_from_another_process():
    job = Background(lambda: (os.getpid(), [1, 2, 3]))
    pid, value = job.result()
    assert value == [1, 2, 3] and pid != os.getpid()


def test_background_raises_its_exception_in_the_caller():
    def fail():
        raise OutputError("cannot write /x/scores.csv: Permission denied")

    with pytest.raises(OutputError, match="scores.csv: Permission denied"):
        Background(fail).result()


def test_background_killed_is_an_error_not_a_hang():
    with pytest.raises(RuntimeError, match="exit code -9"):
        Background(lambda: os.kill(os.getpid(), 9)).result()
