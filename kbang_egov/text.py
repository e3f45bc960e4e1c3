"""Text as clerks and officers type it: one normal form for comparing, ASCII for file names, and reading
the UTF-8 data files an officer edits (with or without a byte-order mark)."""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from pathlib import Path, PurePath, PurePosixPath

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
        raise error(f"không đọc được {what} {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} không phải văn bản UTF-8 ({exc}); lưu lại tệp với mã hóa UTF-8") from exc


# What no output can hold or show safely: C0 and C1 control characters (XML 1.0 forbids most of them, a
# terminal runs ESC sequences, a line break forges a line of the log), lone surrogates (no UTF-8 encodes
# them: a non-UTF-8 file name decoded with surrogateescape), noncharacters (U+FFFE and U+FFFF are not XML:
# Excel repairs the workbook, openpyxl refuses it), line and paragraph separators, and the bidirectional
# embeddings, overrides and isolates that reorder what a line of the log or a cell shows.
_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(chr(p + 0xFFFE) + chr(p + 0xFFFF) for p in range(0, 0x110000, 0x10000))
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff{_NONCHARACTERS}]")
_BREAKS = frozenset("\t\n\x0b\x0c\r\x85\u2028\u2029")  # whitespace: a space, so words stay apart


def _unsafe(m: re.Match[str]) -> str:
    return " " if m.group(0) in _BREAKS else ""


def printable(text: str, limit: int | None = None) -> str:
    """Text safe to write into every output (a workbook's XML 1.0, a CSV, the log, the terminal): the one
    sanitiser every string from a file or a file name passes on its way out. Tabs and line breaks become
    spaces, other control characters, surrogates, noncharacters and bidirectional controls are dropped, and
    the text is clipped to `limit` characters with an ellipsis (a 40,000-character cell does not belong in
    a message)."""
    if _UNSAFE.search(text) is not None:
        text = _UNSAFE.sub(_unsafe, text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


_NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def file_label(name: str) -> str:
    """A file or folder name as a person reads it, whatever bytes the file system holds (Python gives the
    bytes that are not UTF-8 as surrogates): UTF-8 as it is; other bytes as Windows' Vietnamese code page
    reads them (an old zip or a Windows share delivers "Báo cáo" so), else as \\xNN; a control character
    as '?', so that no two names differing in one look alike; then printable."""
    raw = os.fsencode(name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1258")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "backslashreplace")
    return printable(_NAME_CONTROL.sub("?", unicodedata.normalize("NFC", text)))


def path_label(path: PurePath) -> str:
    """A path as a person reads it: file_label of each part, joined by '/'."""
    parts = [file_label(part) for part in path.parts]
    return str(PurePosixPath(*parts)) if parts else ""
