"""Cell values as clerks type them."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest

from kbang_egov.reading.values import clean_text, parse_fraction, parse_number


@pytest.mark.parametrize(("raw", "value", "percent"), [
    (0.85, 0.85, False), (31, 31.0, False), ("0,85", 0.85, False), ("0.85", 0.85, False), (" 31 ", 31.0, False),
    ("31\u00a0", 31.0, False), ("\u200b31", 31.0, False), ("1.405", 1405.0, False), ("20.000", 20000.0, False),
    ("0.125", 0.125, False), ("1,405", 1.405, False), ("1.405.000", 1405000.0, False),
    ("1,405,000", 1405000.0, False), ("1.405,5", 1405.5, False), ("1,405.5", 1405.5, False),
    ("1 405", 1405.0, False), ("85%", 85.0, True), ("85 %", 85.0, True), ("0,5%", 0.5, True),
    ("-3", -3.0, False), ("+3", 3.0, False), (",5", 0.5, False),
])
def test_numbers(raw, value, percent):
    p = parse_number(raw)
    assert (p.value, p.percent, p.error) == (value, percent, "")


@pytest.mark.parametrize("raw", [None, "", "   ", "\u200b"])
def test_blank(raw):
    assert parse_number(raw).blank


@pytest.mark.parametrize("raw", ["abc", "31/318", "1.2.3", "1,2,3", "1.405,5,2", True, dt.datetime(2020, 1, 1),
                                 float("nan"), float("inf"), "85%%", "=A1", "1e5x"])
def test_not_numbers(raw):
    p = parse_number(raw)
    assert p.value is None and p.error


def test_unit_suffix():
    assert parse_number("4 bài", unit="bài").value == 4
    assert parse_number("4 BÀI", unit="bài").value == 4
    assert parse_number("4 bài").error


@pytest.mark.parametrize(("raw", "expected"), [("31/318", (31.0, 318.0)), ("03/318", (3.0, 318.0)),
                                               (" 1405 / 3125 ", (1405.0, 3125.0)), ("H/", None), ("III/", None),
                                               ("Không phát sinh hồ sơ", None), (0.5, None), ("31/318 hồ sơ", None)])
def test_fractions(raw, expected):
    assert parse_fraction(raw) == expected


def test_clean_text():
    assert clean_text(unicodedata.normalize("NFD", " Có\t\n ")) == "Có"
    assert clean_text("a\x00b\x07c") == "a b c"


@pytest.mark.parametrize("raw", [1e300, -1e308, 10**16, 2**70, 1e15 + 2, "1" * 310, "1.000.000.000.000.001",
                                 "-99999999999999999", "1" * 310 + "%"])
def test_absurd_magnitudes_are_no_numbers(raw):
    """Beyond NUMBER_LIMIT a figure is a slip or an attack, and 1e300 x 10**9 overflows the exact sums."""
    p = parse_number(raw)
    assert p.value is None and p.too_large


@pytest.mark.parametrize("raw", [10**15, -(10**15), 1e15, "1.000.000.000.000.000"])
def test_the_limit_itself_is_a_number(raw):
    assert abs(parse_number(raw).value) == 1e15


def test_a_fraction_of_absurd_numbers_is_no_fraction():
    assert parse_fraction("1" * 310 + "/3") is None


def test_a_cell_reads_the_same_whatever_was_read_before():
    """Equal contents of other types or signs are other cells: 1 then TRUE, 0 then -0, '1' then 1."""
    assert parse_number(1).value == 1.0 and parse_number(True).error
    assert str(parse_number(0.0).value) == "0.0" and str(parse_number(-0.0).value) == "-0.0"
    assert parse_number(-0.0).text == parse_number(0.0).text == "0"
    assert parse_number("1").text == "1" and parse_number(1.0).text == "1"
    assert parse_number("4 bài", unit="bài").value == 4.0 and parse_number("4 bài").error
    long = "0" * 295 + "12345"  # long texts are read each time, not kept
    assert parse_number(long).value == float(long)
