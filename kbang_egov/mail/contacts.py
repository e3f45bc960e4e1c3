"""The district contacts: a CSV of `district,email`, several addresses separated by ';', each district
matched against the district list as everywhere else. An address is a district's identity when its
return comes in, so an address listed for two districts, a name the list does not know, or a malformed
address is an error, never a guess."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path

from ..rules.districts import District, DistrictIndex
from ..text import printable, strip_diacritics

_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


class ContactsError(Exception):
    """The contacts file cannot be used: the message names the line and says how to fix it."""


@dataclass(frozen=True)
class Contacts:
    """Each district's addresses, and the way back from an address to its district."""

    addresses: dict[District, tuple[str, ...]]
    source: str = ""

    def district_of(self, address: str) -> District | None:
        """The district an address (any case, with or without a display name) belongs to, or None."""
        wanted = normalize_address(address)
        for district, listed in self.addresses.items():
            if wanted in listed:
                return district
        return None


def normalize_address(text: str) -> str:
    """The bare address, lower case: 'Văn thư <VT@Kbang.gov.vn>' -> 'vt@kbang.gov.vn'."""
    return parseaddr(text)[1].strip().lower()


def load_contacts(path: str | Path, districts: Sequence[District]) -> Contacts:
    """Read the contacts CSV (UTF-8, with or without a BOM; a header row `district,email`)."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ContactsError(f"không đọc được tệp danh bạ {p}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ContactsError(f"tệp danh bạ {p} không phải UTF-8; lưu lại bằng 'CSV UTF-8'") from exc
    return parse_contacts(text, districts, str(p))


def parse_contacts(text: str, districts: Sequence[District], source: str = "") -> Contacts:
    index = DistrictIndex(districts)
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [strip_diacritics(c.strip().lower()) for c in rows[0][:2]] != ["district", "email"]:
        raise ContactsError(f"{source}: dòng đầu phải là tiêu đề 'district,email'")
    found: dict[District, tuple[str, ...]] = {}
    owner: dict[str, District] = {}
    for lineno, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue
        where = f"{source}, dòng {lineno}"
        if len(row) != 2:
            raise ContactsError(f"{where}: cần đúng hai cột district,email (có {len(row)}); nhiều địa chỉ "
                                "thì ngăn cách bằng dấu ';' trong cùng một ô")
        name, emails = row[0].strip(), row[1]
        district = index.match(name)
        if district is None:
            listed = ", ".join(d.name for d in index.districts)
            raise ContactsError(f"{where}: '{printable(name, 80)}' không khớp đúng một đơn vị trong danh sách "
                                f"({listed}); sửa tên cho đúng")
        addresses = []
        for raw in emails.split(";"):
            if not raw.strip():
                continue
            address = normalize_address(raw)
            if not _ADDRESS.match(address) or "\n" in raw or "\r" in raw:
                raise ContactsError(f"{where}: '{printable(raw.strip(), 80)}' không phải địa chỉ thư hợp lệ")
            if owner.get(address, district) != district:
                raise ContactsError(f"{where}: địa chỉ {address} đã ghi cho {owner[address].name}; một địa chỉ "
                                    "chỉ thuộc một đơn vị")
            owner[address] = district
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise ContactsError(f"{where}: {district.name} chưa có địa chỉ thư")
        found[district] = (*found.get(district, ()), *(a for a in addresses if a not in found.get(district, ())))
    if not found:
        raise ContactsError(f"{source}: tệp danh bạ không có đơn vị nào")
    return Contacts(found, source)
