"""An independent reading of the seed's criteria tables (Phụ lục II of report 406/BC-UBND), for tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

SEED = Path(__file__).parent / "data" / "seed_406_BC-UBND_2020.txt"
_ROMAN = re.compile(r"^(IV|III|II|I)(?:\s|$)")


def seed_lines() -> Iterator[tuple[str | None, list[str]]]:
    """(code, cells) for every line of the criteria tables after the first group heading: the criterion's
    code on its numbered row (the second row 32 of presence is KQ.I.32b), None on its continuation lines
    and on headings, which carry no criterion."""
    lines = SEED.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if "III. NỘI DUNG ĐÁNH GIÁ" in line)
    part, group = "SS", None
    seen: set[str] = set()
    for line in lines[start:]:
        if line.startswith("2. Các nhóm tiêu chí"):
            part = "KQ"
            continue
        cells = line.split("\t")
        first = cells[0].strip()
        m = _ROMAN.match(first)
        if m:
            group = f"{part}.{m.group(1)}"
            continue
        if group is None:
            continue
        if re.fullmatch(r"\d+", first):
            code = f"{group}.{int(first)}"
            if code in seen:
                assert code == "KQ.I.32", f"unexpected repeated number {code}"
                code = "KQ.I.32b"
            seen.add(code)
            yield code, cells
        else:
            yield None, cells
