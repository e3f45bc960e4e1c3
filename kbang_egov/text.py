"""Text as clerks and officers type it: one normal form for comparing, ASCII for file names, and reading
the UTF-8 data files an officer edits (with or without a byte-order mark)."""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

_CACHED_LENGTH = 200  # labels, headers and codes repeat in every return; long cell texts are not kept


def normalize_text(text: str) -> str:
    """NFC, case-folded, single spaces: 'CÓ', ' có ' and the decomposed (NFD) 'Có' compare equal."""
    text = str(text)
    return _normalize(text) if len(text) <= _CACHED_LENGTH else _normalize.__wrapped__(text)


@functools.lru_cache(maxsize=8192)
def _normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def strip_diacritics(text: str) -> str:
    """Vietnamese without diacritics: 'Đak Đoa' -> 'Dak Doa' (Đ/đ do not decompose in Unicode)."""
    text = str(text)
    return _strip(text) if len(text) <= _CACHED_LENGTH else _strip.__wrapped__(text)


@functools.lru_cache(maxsize=8192)
def _strip(text: str) -> str:
    text = unicodedata.normalize("NFD", text).replace("Đ", "D").replace("đ", "d")
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


def ascii_slug(text: str) -> str:
    """A file-name-safe ASCII form of a name: 'Huyện Đak Đoa' -> 'Huyen_Dak_Doa'."""
    plain = strip_diacritics(unicodedata.normalize("NFC", text))
    return re.sub(r"[^A-Za-z0-9]+", "_", plain).strip("_") or "don_vi"


def read_data_file(path: Path, what: str, error: type[Exception]) -> str:
    """The text of a UTF-8 data file; `error` (naming `what` and the path) when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text: {exc}") from exc


# C0 and C1 control characters but tab and newline: invalid in XML, and escape sequences in a terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str, limit: int | None = None) -> str:
    """Text from a file, safe to show anywhere: control characters dropped, clipped to `limit` characters
    with an ellipsis (a 40,000-character cell does not belong in a message)."""
    text = _CONTROL.sub("", text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
