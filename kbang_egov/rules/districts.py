"""The district list, and matching a name as a clerk types it against that list."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..text import ascii_slug, normalize_text, read_data_file, strip_diacritics

DEFAULT_DISTRICTS = "districts_gia_lai_2020.txt"
# Administrative prefixes, longest first, compared after normalize_text; "tp." and "tx." are common
# abbreviations in returns.
_PREFIXES = ("thành phố", "thị xã", "thị trấn", "huyện", "quận", "tp.", "tp", "tx.", "tx", "h.")


class DistrictListError(Exception):
    """The district list file cannot be used."""


@dataclass(frozen=True)
class District:
    name: str  # as listed, with its prefix: "Huyện Kbang"

    @property
    def key(self) -> str:
        return district_key(self.name)

    @property
    def slug(self) -> str:
        return ascii_slug(self.name)


@functools.lru_cache(maxsize=65536)  # every listed name is keyed once per run, whatever the number of files
def district_key(text: str) -> str:
    """The name without its Huyện / Thị xã / Thành phố prefix, normalised: the key districts match on.

    The prefix is recognised with or without diacritics ("Huyen Kbang"), and abbreviated ("TP Pleiku").
    """
    words = normalize_text(text).split()
    plain = strip_diacritics(" ".join(words)).split()
    for prefix in _PREFIXES:
        pw = strip_diacritics(prefix).split()
        if plain[: len(pw)] == pw and len(words) > len(pw):
            return " ".join(words[len(pw):])
        if prefix.endswith(".") and len(pw) == 1 and plain and plain[0].startswith(pw[0]) and len(plain[0]) > len(pw[0]):
            return " ".join([words[0][len(pw[0]):], *words[1:]])  # "tp.pleiku"
    return " ".join(words)


def default_districts_path() -> Path:
    return Path(str(resources.files("kbang_egov") / "data" / DEFAULT_DISTRICTS))


def load_districts(path: str | Path | None = None) -> list[District]:
    """Read a district list: one name per line, '#' comments and blank lines ignored."""
    p = Path(path) if path is not None else default_districts_path()
    text = read_data_file(p, "danh sách đơn vị", DistrictListError)
    districts: list[District] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        name = " ".join(unicodedata.normalize("NFC", line).split())
        if not name or name.startswith("#"):
            continue
        key = district_key(name)
        if key in seen:
            raise DistrictListError(f"{p}, dòng {lineno}: '{name}' đã có ở dòng {seen[key]}; xóa một trong "
                                    "hai dòng")
        seen[key] = lineno
        districts.append(District(name))
    if not districts:
        raise DistrictListError(f"danh sách đơn vị {p} không có tên đơn vị nào; ghi mỗi dòng một tên đơn vị")
    return districts


class DistrictIndex:
    """The district list keyed for matching: one dict lookup per typed name, whatever the list's length
    (a national run matches thousands of returns against thousands of names)."""

    def __init__(self, districts: Sequence[District]) -> None:
        self.districts = list(districts)
        self._exact: dict[str, District] = {}
        self._plain: dict[str, list[District]] = {}
        for d in self.districts:
            self._exact.setdefault(d.key, d)
            self._plain.setdefault(strip_diacritics(d.key), []).append(d)

    def match(self, text: str) -> District | None:
        """The listed district a typed name means, or None: exact key first, then ignoring diacritics."""
        key = district_key(text)
        if not key:
            return None
        if key in self._exact:
            return self._exact[key]
        hits = self._plain.get(strip_diacritics(key), [])
        return hits[0] if len(hits) == 1 else None


def match_district(text: str, districts: Sequence[District] | DistrictIndex) -> District | None:
    """The listed district a typed name means, or None: exact key first, then ignoring diacritics."""
    index = districts if isinstance(districts, DistrictIndex) else DistrictIndex(districts)
    return index.match(text)
