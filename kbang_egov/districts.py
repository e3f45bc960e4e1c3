"""The district list, and matching a name as a clerk types it against that list."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .text import ascii_slug, normalize_text, read_data_file, strip_diacritics

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
    text = read_data_file(p, "the district list", DistrictListError)
    districts: list[District] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        name = " ".join(unicodedata.normalize("NFC", line).split())
        if not name or name.startswith("#"):
            continue
        key = district_key(name)
        if key in seen:
            raise DistrictListError(f"{p}, line {lineno}: '{name}' is already listed on line {seen[key]}")
        seen[key] = lineno
        districts.append(District(name))
    if not districts:
        raise DistrictListError(f"the district list {p} names no district")
    return districts


def match_district(text: str, districts: list[District]) -> District | None:
    """The listed district a typed name means, or None: exact key first, then ignoring diacritics."""
    key = district_key(text)
    if not key:
        return None
    for d in districts:
        if d.key == key:
            return d
    plain = strip_diacritics(key)
    hits = [d for d in districts if strip_diacritics(d.key) == plain]
    return hits[0] if len(hits) == 1 else None
