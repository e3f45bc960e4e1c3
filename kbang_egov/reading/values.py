"""Cell values as clerks type them: decimal commas, percent strings, numbers stored as text, fractions.

Pure functions from what a reader returned for a cell (float, int, str, bool, date or None) to a number
or a label, with a reason when the cell cannot be read as what it should hold.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import unicodedata
from dataclasses import dataclass

# Characters that sneak in from copy-paste and web forms: zero-width spaces, byte-order marks, soft hyphens.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
# No figure of a return comes near this (a province's population, a count of documents, a self-score): a
# number beyond it is a slip or an attack, and it would overflow the exact sums (1e300 x 10**9 is no float).
NUMBER_LIMIT = 10**15
NUMBER_LIMIT_TEXT = "10^15"  # as messages show it
TOO_LARGE = "số quá lớn"
_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)*|[.,]\d+)")
_FRACTION = re.compile(r"(\d+(?:[.,]\d+)?)\s*/\s*(\d+(?:[.,]\d+)?)")
# Cell contents repeat in every return (counts, 0.5, labels): each distinct one of these is parsed once per
# process. A long text is parsed each time, so that a hostile file cannot fill the cache with megabytes, and
# so is zero, as -0.0 equals 0.0 without being it.
_REPEATING = (float, int, str, type(None))
_CACHED_LENGTH = 200


@dataclass(frozen=True)
class Parsed:
    """A cell read as a number: `value` None when blank; `error` says why it is not a number."""

    value: float | None = None
    error: str = ""
    percent: bool = False  # typed with a % sign: the value is the figure before the sign (85 for "85%")
    text: str = ""  # the cell as shown in messages

    @property
    def blank(self) -> bool:
        return self.value is None and not self.error

    @property
    def too_large(self) -> bool:
        return self.error == TOO_LARGE


def clean_text(raw: object) -> str:
    """The cell as text: NFC, invisible characters dropped, control characters and runs of spaces as one."""
    text = unicodedata.normalize("NFC", str(raw)).translate(_INVISIBLE)
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return " ".join(text.split())


def is_blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not clean_text(raw))


def show(raw: object, limit: int = 60) -> str:
    """A cell's content for a message, shortened: very long strings stay readable."""
    text = clean_text(raw) if isinstance(raw, str) else _show_number(raw)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_number(raw: object, unit: str = "") -> Parsed:
    """A number from a cell: 0.85, "0,85", " 31 ", "1.405.000", "1 405", "85%", "4 bài" (with unit "bài")."""
    if raw.__class__ not in _REPEATING or raw == 0 or (raw.__class__ is str and len(raw) > _CACHED_LENGTH):
        return _parse_number(raw, unit)
    return _parse_repeating(raw, unit)


@functools.lru_cache(maxsize=8192, typed=True)
def _parse_repeating(raw: object, unit: str) -> Parsed:
    return _parse_number(raw, unit)


def _parse_number(raw: object, unit: str) -> Parsed:
    if raw is None:
        return Parsed()
    if isinstance(raw, bool):
        return Parsed(error="giá trị đúng/sai (TRUE/FALSE), không phải số", text=str(raw).upper())
    if isinstance(raw, (int, float)):
        if isinstance(raw, float) and not math.isfinite(raw):
            return Parsed(error="không phải số hữu hạn", text=str(raw))
        if abs(raw) > NUMBER_LIMIT:
            return Parsed(error=TOO_LARGE, text=f"{raw:.6g}")  # 1e+300, not its 301 digits
        f = float(raw)
        return Parsed(f, text=_show_number(f))
    if isinstance(raw, (dt.date, dt.time, dt.timedelta)):
        return Parsed(error="ô đang ở dạng ngày/giờ, không phải số", text=str(raw))
    text = clean_text(raw)
    if not text:
        return Parsed()
    body = text
    if unit and body.casefold().endswith(" " + unit.casefold()):
        body = body[: -len(unit) - 1].strip()  # "4 bài": the unit the scale is counted in
    percent = body.endswith("%")
    if percent:
        body = body[:-1].strip()
    value = _number_from_text(body)
    if value is None:
        return Parsed(error="không phải số", text=text)
    if not abs(value) <= NUMBER_LIMIT:  # a 310-digit number reads as infinity
        return Parsed(error=TOO_LARGE, text=text)
    return Parsed(value, percent=percent, text=text)


def _number_from_text(text: str) -> float | None:
    """Vietnamese writing first: ',' is the decimal mark and '.' groups thousands ("1.405,5"), but a lone
    '.' before other than three digits is a decimal point ("0.85"), and "1,405,000" groups by commas."""
    t = text.replace(" ", "")
    if not t or not _NUMBER.fullmatch(t):
        return None
    sign = -1.0 if t.startswith("-") else 1.0
    t = t.lstrip("+-")
    if "," in t and "." in t:
        dec = "," if t.rfind(",") > t.rfind(".") else "."
        grp = "." if dec == "," else ","
        if t.count(dec) != 1:
            return None
        t = t.replace(grp, "").replace(dec, ".")
    elif t.count(",") > 1 or t.count(".") > 1:  # "1.405.000", "1,405,000": grouping only
        sep = "," if "," in t else "."
        groups = t.split(sep)
        if not all(len(g) == 3 for g in groups[1:]):
            return None
        t = t.replace(sep, "")
    elif "." in t and re.fullmatch(r"[1-9]\d{0,2}\.\d{3}", t):
        t = t.replace(".", "")  # "20.000": Vietnamese thousands grouping, not twenty
    else:
        t = t.replace(",", ".")  # one mark: a decimal comma or point ("0,85", "0.85")
    try:
        return sign * float(t)
    except ValueError:
        return None


def parse_fraction(raw: object) -> tuple[float, float] | None:
    """(numerator, denominator) when the cell holds just a fraction of numbers within NUMBER_LIMIT: "31/318",
    " 03 / 318 "."""
    if not isinstance(raw, str):
        return None
    m = _FRACTION.fullmatch(clean_text(raw))
    if not m:
        return None
    num, den = _number_from_text(m.group(1)), _number_from_text(m.group(2))
    if num is None or den is None or not (abs(num) <= NUMBER_LIMIT and abs(den) <= NUMBER_LIMIT):
        return None
    return num, den


def _show_number(x: object) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)
