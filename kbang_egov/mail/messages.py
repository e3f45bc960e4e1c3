"""The messages the officer sends, in Vietnamese, composed with the standard library's `email` package:
each district its template (what to fill, the deadline, where to send it back, how to check it first),
and later its feedback workbook, as a reply to the message its return came in."""

from __future__ import annotations

import mimetypes
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path

from ..forms.layout import COLUMN_TITLES, CRITERIA_SHEET, INFO_SHEET
from ..rules.districts import District
from ..settings import Settings

# The criteria sheet's input columns, by the titles the template gives them.
INPUT_TITLES = ", ".join(COLUMN_TITLES[c] for c in ("value", "numerator", "denominator", "self_score", "evidence"))

XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


class MessageError(Exception):
    """A message cannot be composed (no sender address in the settings, ...)."""


def _sender(settings: Settings) -> str:
    if not settings.sender_address:
        raise MessageError("chưa có địa chỉ người gửi: đặt [sender] address trong tệp cấu hình (--settings)")
    return formataddr((settings.sender_name, settings.sender_address)) if settings.sender_name \
        else settings.sender_address


def _base(settings: Settings, recipients: list[str], subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = _sender(settings)
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=settings.sender_address.rpartition("@")[2] or None)
    return msg


def _attach(msg: EmailMessage, path: Path) -> None:
    guessed = mimetypes.guess_type(path.name)[0]
    maintype, subtype = guessed.split("/", 1) if guessed else XLSX_TYPE
    msg.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)


def _year(settings: Settings, year: int) -> int:
    return settings.year or year


def template_message(settings: Settings, district: District, recipients: list[str], template: Path,
                     year: int) -> EmailMessage:
    """The template for one district, with what to do and by when."""
    y = _year(settings, year)
    subject = f"Mẫu tự đánh giá Chính quyền điện tử năm {y} - {district.name}"
    msg = _base(settings, recipients, subject)
    back = settings.return_address or settings.sender_address
    deadline = settings.deadline.strftime("%d/%m/%Y") if settings.deadline else "theo văn bản hướng dẫn"
    sender = settings.sender_name or settings.sender_address
    msg.set_content(
        f"Kính gửi: Ủy ban nhân dân {district.name},\n\n"
        f"{sender} gửi kèm thư này mẫu tự đánh giá mức độ Chính quyền điện tử cấp huyện năm {y} "
        f"({template.name}), đã ghi sẵn tên đơn vị.\n\n"
        "Đề nghị đơn vị:\n"
        f"1. Nhập số liệu vào các ô màu vàng của sheet {CRITERIA_SHEET} ({INPUT_TITLES}) và sheet "
        f"{INFO_SHEET}; không đổi tên sheet, không thêm hoặc xóa dòng.\n"
        "2. Kiểm tra tệp trước khi gửi: nếu đơn vị có công cụ kbang_egov, chạy lệnh python batch.py validate "
        f"{template.name}; nếu không, cứ gửi, Sở sẽ phản hồi từng lỗi kèm ô cần sửa.\n"
        f"3. Gửi lại tệp đã điền (giữ định dạng .xlsx) về địa chỉ {back} "
        f"trước hạn {deadline}, từ địa chỉ thư đã đăng ký của đơn vị.\n\n"
        "Trân trọng.\n"
        f"{sender}\n")
    _attach(msg, template)
    return msg


def feedback_message(settings: Settings, district: District, recipients: list[str], feedback: Path,
                     year: int, status: str, in_reply_to: str = "", original_subject: str = "") -> EmailMessage:
    """The feedback workbook for one district; a reply (In-Reply-To, References) when its return's
    Message-ID is known."""
    y = _year(settings, year)
    subject = f"Re: {original_subject}" if original_subject and not original_subject.lower().startswith("re:") \
        else original_subject or f"Kết quả thẩm định Chính quyền điện tử năm {y} - {district.name}"
    msg = _base(settings, recipients, subject)
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    sender = settings.sender_name or settings.sender_address
    state = {"ranked": "đã được chấm điểm và xếp hạng tạm thời",
             "not-scored": "chưa chấm được điểm; xem các lỗi ghi trong tệp và gửi lại bản đã sửa"}.get(
        status, "đã được xem xét")
    msg.set_content(
        f"Kính gửi: Ủy ban nhân dân {district.name},\n\n"
        f"Bài tự đánh giá Chính quyền điện tử năm {y} của đơn vị {state}.\n"
        f"Tệp đính kèm ({feedback.name}) ghi điểm do Sở tính lại, các ô có sai lệch (tô màu, kèm ghi chú) "
        "và cách sửa. Nếu cần, đơn vị sửa và gửi lại tệp trước hạn.\n\n"
        "Trân trọng.\n"
        f"{sender}\n")
    _attach(msg, feedback)
    return msg
