"""The guard's own reading of zip members: the same bytes as zipfile's, never more than the member limit."""

from __future__ import annotations

import io
import zipfile

from kbang_egov import guard


def _zip(members: dict[str, bytes], method: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zw:
        for name, body in members.items():
            zw.writestr(name, body)
    return out.getvalue()


def test_members_read_as_zipfile_reads_them():
    body = b"<row r='1'>" + bytes(range(256)) * 400
    for method in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED, zipfile.ZIP_BZIP2):
        data = _zip({"xl/worksheets/sheet1.xml": body, "empty.xml": b""}, method)
        zf = zipfile.ZipFile(io.BytesIO(data))
        assert guard._read(zf, data, "xl/worksheets/sheet1.xml") == body
        assert guard._read(zf, data, "empty.xml") == b""


def test_a_member_is_never_inflated_past_the_limit(monkeypatch):
    monkeypatch.setattr(guard, "MEMBER_LIMIT", 2**20)
    data = _zip({"xl/workbook.xml": b" " * (8 * 2**20)}, zipfile.ZIP_DEFLATED)
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert len(guard._read(zf, data, "xl/workbook.xml")) == 2**20
