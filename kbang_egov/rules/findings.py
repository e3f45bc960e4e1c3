"""Findings: what is wrong with a submission, as data. One registry of stable codes, each with its severity
and a Vietnamese message template that says what is wrong and how to fix it.

Checks build findings with `make_finding(code, ...)`; nothing else invents codes. The table of
codes is generated from REGISTRY (`python batch.py codes --format markdown`), so it cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..text import printable

SHOWN_TEXT_LIMIT = 1000  # characters of one value quoted in a message (a typed cell, a list of names)

ERROR = "error"
WARNING = "warning"
CONSEQUENCE = "consequence"  # follows from findings already reported: listed, never counted as an error
SEVERITY_VI = {ERROR: "Lỗi", WARNING: "Cảnh báo", CONSEQUENCE: "Hệ quả"}

# Levels, for grouping codes in docs/findings.md and the workbook.
FILE, CRITERION, SUBTOTAL = "file", "criterion", "subtotal"


@dataclass(frozen=True)
class FindingType:
    code: str
    severity: str
    level: str  # file, criterion or subtotal
    title: str  # short Vietnamese name, for the workbook's filters and docs/findings.md
    template: str  # Vietnamese message: what is wrong and how to fix it; {named} parameters
    rejects: bool = False  # the file cannot be scored at all


_TYPES = (
    # --- files --------------------------------------------------------------------------------------
    FindingType("file-unreadable", ERROR, FILE, "Tệp không đọc được",
                "Không đọc được tệp như một bảng tính Excel/LibreOffice ({reason}). Mở tệp bằng Excel, lưu lại "
                "dạng .xlsx rồi gửi lại.", rejects=True),
    FindingType("file-empty", ERROR, FILE, "Tệp rỗng",
                "Tệp rỗng (0 byte), thường do tải tệp đính kèm bị lỗi. Tải lại tệp từ thư điện tử hoặc đề nghị "
                "đơn vị gửi lại.", rejects=True),
    FindingType("file-truncated", ERROR, FILE, "Tệp bị cắt cụt",
                "Tệp bị cắt cụt hoặc hỏng ({reason}), thường do tải về chưa hết. Tải lại tệp đính kèm hoặc đề "
                "nghị đơn vị gửi lại.", rejects=True),
    FindingType("file-wrong-type", ERROR, FILE, "Không phải bảng tính",
                "Tệp có đuôi {suffix} nhưng thực chất là {kind}, không phải bảng tính. Gửi lại đúng tệp mẫu "
                "chuẩn đã điền, lưu bằng Excel dạng .xlsx.", rejects=True),
    FindingType("file-encrypted", ERROR, FILE, "Tệp có mật khẩu",
                "Tệp có mật khẩu (đã mã hoá) nên không mở được. Đề nghị đơn vị gỡ mật khẩu (Excel: Tệp > Thông "
                "tin > Bảo vệ sổ làm việc > Mã hoá bằng mật khẩu, xoá mật khẩu, lưu lại) rồi gửi lại.",
                rejects=True),
    FindingType("file-too-large", ERROR, FILE, "Tệp giải nén quá lớn",
                "Thành phần '{member}' của tệp giải nén ra {size}, vượt giới hạn {limit}: tệp hỏng hoặc độc hại "
                "(zip bomb) nên không được mở. Mở tệp bằng Excel, xoá dữ liệu thừa, lưu lại rồi gửi lại.",
                rejects=True),
    FindingType("file-oversized", ERROR, FILE, "Tệp quá lớn",
                "Tệp nặng {size}, vượt giới hạn {limit} của một tệp báo cáo (mẫu đã điền nặng dưới 1 MB) nên "
                "không được đọc. Mở tệp bằng Excel, xoá hình ảnh và dữ liệu thừa, lưu lại dạng .xlsx rồi gửi lại.",
                rejects=True),
    FindingType("file-unsupported-compression", ERROR, FILE, "Tệp nén bằng phương thức lạ",
                "Thành phần '{member}' của tệp được nén bằng phương thức {method}, không phải Deflate như Excel, "
                "LibreOffice và WPS ghi; tệp không được mở. Tệp đã bị một công cụ nén (7-Zip, WinRAR) đóng gói "
                "lại: gửi lại đúng tệp .xlsx do Excel lưu.", rejects=True),
    FindingType("file-type-unsupported", ERROR, FILE, "Loại tệp không đọc được",
                "Tệp là {kind}, loại tệp hệ thống không đọc. Mở tệp bằng Excel (hoặc LibreOffice, WPS), chọn Lưu "
                "thành > Sổ làm việc Excel (.xlsx), rồi gửi lại tệp .xlsx.", rejects=True),
    FindingType("folder-unreadable", ERROR, FILE, "Thư mục không đọc được",
                "Không mở được thư mục này ({reason}) nên các tệp trong đó chưa được chấm. Cấp quyền đọc thư mục "
                "cho tài khoản chạy chương trình (hoặc chuyển các tệp ra ngoài) rồi chạy lại.", rejects=True),
    FindingType("file-unsafe-xml", ERROR, FILE, "Tệp chứa khai báo XML nguy hiểm",
                "Thành phần '{member}' khai báo DTD/thực thể XML, điều Excel không bao giờ ghi; tệp có thể độc "
                "hại nên không được mở. Đề nghị đơn vị mở bằng Excel, lưu lại dạng .xlsx rồi gửi lại.",
                rejects=True),
    FindingType("file-crashed", ERROR, FILE, "Tệp làm trình đọc dừng đột ngột",
                "Trình đọc bảng tính dừng đột ngột khi mở tệp ({reason}); các tệp khác vẫn được chấm. {hint}"
                "Mở tệp bằng Excel, lưu lại dạng .xlsx rồi gửi lại.", rejects=True),
    FindingType("file-timeout", ERROR, FILE, "Đọc tệp quá lâu",
                "Đọc tệp quá {limit} giây nên đã dừng; các tệp khác vẫn được chấm. Mở tệp bằng Excel, xoá dữ "
                "liệu thừa, lưu lại rồi gửi lại.", rejects=True),
    FindingType("file-not-template", ERROR, FILE, "Không phải mẫu chuẩn",
                "Tệp không có bảng tiêu chí của mẫu chuẩn (không tìm thấy dòng tiêu đề có cột 'Mã' và "
                "'Điểm tự đánh giá'). Điền vào mẫu chuẩn {template} rồi gửi lại.", rejects=True),
    FindingType("file-not-filled", ERROR, FILE, "Tệp chưa điền",
                "Tệp gần như chưa điền: chỉ {filled}/{total} tiêu chí có số liệu hoặc điểm tự đánh giá "
                "({share}%), dưới ngưỡng {threshold}% để được chấm. Tệp không được xếp hạng và đơn vị vẫn ở danh "
                "sách chưa nộp. Điền đầy đủ mẫu rồi gửi lại.", rejects=True),
    FindingType("template-unmarked", WARNING, FILE, "Thiếu thông tin phiên bản mẫu",
                "Tệp không có trang thông tin phiên bản của mẫu chuẩn (trang ẩn '{sheet}'); bảng tiêu chí vẫn "
                "được đọc theo tiêu đề cột và mã. Lần sau hãy điền trực tiếp vào mẫu chuẩn {template}."),
    FindingType("template-version", ERROR, FILE, "Sai phiên bản mẫu",
                "Tệp dùng mẫu của bộ tiêu chí {found}, trong khi năm nay chấm theo {expected}. Tải mẫu "
                "{template} và điền lại.", rejects=True),
    FindingType("template-modified", WARNING, FILE, "Mẫu đã bị sửa",
                "Mẫu được tạo từ một bản bộ tiêu chí {version} khác với bản đang dùng (mã băm {found} thay vì "
                "{expected}); điểm vẫn được tính theo bộ tiêu chí hiện hành. Nên dùng mẫu mới {template}."),
    FindingType("sheet-oversized", WARNING, FILE, "Trang có dữ liệu ngoài vùng mẫu",
                "Trang '{sheet}' có dữ liệu đến tận ô {end}, xa ngoài bảng của mẫu; chỉ {limit} dòng đầu được "
                "đọc. Xoá các dòng, cột thừa phía dưới và bên phải bảng."),
    FindingType("column-missing", ERROR, FILE, "Thiếu cột",
                "Bảng tiêu chí thiếu cột '{column}' ở dòng tiêu đề {row}. Khôi phục cột này từ mẫu chuẩn "
                "(không xoá hay đổi tên tiêu đề cột).", rejects=True),
    FindingType("row-missing", ERROR, FILE, "Thiếu dòng tiêu chí",
                "Không tìm thấy dòng có mã {subject} trong cột 'Mã'. Khôi phục dòng này từ mẫu chuẩn; "
                "tiêu chí đang được tính 0 điểm."),
    FindingType("row-duplicated", ERROR, FILE, "Trùng dòng tiêu chí",
                "Mã {subject} xuất hiện nhiều lần (dòng {rows}); chỉ dòng {used} được dùng. Xoá các dòng thừa."),
    FindingType("district-missing", ERROR, FILE, "Thiếu tên đơn vị",
                "Không xác định được đơn vị: ô 'Tên đơn vị' ở trang '{sheet}' để trống. Ghi tên huyện, thị xã, "
                "thành phố rồi gửi lại.", rejects=True),
    FindingType("district-unknown", ERROR, FILE, "Đơn vị không có trong danh sách",
                "Tên đơn vị '{name}' không có trong danh sách đơn vị của tỉnh ({known}). Sửa ô tên đơn vị cho "
                "đúng (ví dụ 'Huyện Kbang') rồi gửi lại.", rejects=True),
    FindingType("district-mismatch", ERROR, FILE, "Tên đơn vị khác mẫu của đơn vị",
                "Ô tên đơn vị ghi '{name}' nhưng tệp được tạo từ mẫu riêng của {template}; không rõ đây là báo cáo "
                "của đơn vị nào nên tệp không được chấm (và không thay thế báo cáo của {name}). Nếu là báo cáo "
                "của {template}, sửa lại tên đơn vị; nếu là của {name}, điền vào mẫu của {name} rồi gửi lại.",
                rejects=True),
    FindingType("district-duplicate", WARNING, FILE, "Đơn vị nộp nhiều bản",
                "{district} đã nộp {count} tệp; tệp mới nhất {used} được chấm, tệp này không được chấm. "
                "Nếu tệp này mới là bản đúng, hãy gửi lại và xoá bản cũ khỏi thư mục."),
    FindingType("feedback-failed", WARNING, FILE, "Không tạo được tệp phản hồi",
                "Không tạo được tệp phản hồi cho tệp này ({reason}); kết quả chấm không thay đổi. Gửi đơn vị các "
                "dòng của tệp này ở trang Sai lệch."),
    # --- criteria -----------------------------------------------------------------------------------
    FindingType("self-score-mismatch", ERROR, CRITERION, "Điểm tự đánh giá khác điểm tính lại",
                "Điểm tự đánh giá {self_score} khác điểm tính lại từ số liệu {score} ({detail}). Sửa điểm tự "
                "đánh giá hoặc số liệu cho khớp."),
    FindingType("self-score-missing", WARNING, CRITERION, "Thiếu điểm tự đánh giá",
                "Chưa ghi điểm tự đánh giá; điểm tính lại từ số liệu là {score}. Ghi điểm vào ô này."),
    FindingType("self-score-out-of-range", ERROR, CRITERION, "Điểm tự đánh giá ngoài thang điểm",
                "Điểm tự đánh giá {self_score} nằm ngoài thang điểm 0 đến {max}. Sửa lại điểm."),
    FindingType("input-missing", ERROR, CRITERION, "Thiếu số liệu",
                "Chưa nhập {what}; tiêu chí được tính {score} điểm. {how}"),
    FindingType("number-too-large", ERROR, CRITERION, "Số quá lớn",
                "Ô chứa {text}, quá lớn để là {what} (giới hạn {limit}) nên không được dùng để tính điểm. {how}"),
    FindingType("cell-merged", WARNING, CRITERION, "Ô nhập liệu bị gộp",
                "Ô nhập liệu nằm trong vùng gộp {range}; chỉ ô đầu {first} giữ giá trị. Bỏ gộp ô (Trang chủ > "
                "Gộp và căn giữa) và nhập số liệu vào từng cột."),
    FindingType("input-unparseable", ERROR, CRITERION, "Số liệu không đọc được",
                "Ô chứa '{text}', không đọc được thành {what}. {how}"),
    FindingType("numerator-exceeds-denominator", WARNING, CRITERION, "Tử số lớn hơn mẫu số",
                "Tử số {numerator} lớn hơn mẫu số {denominator}; tỷ lệ được tính tối đa 100%. Kiểm tra lại "
                "hai số này."),
    FindingType("denominator-zero", ERROR, CRITERION, "Mẫu số bằng 0",
                "Mẫu số bằng 0 nên không tính được tỷ lệ; tiêu chí được tính 0 điểm. Nhập {denominator}. {how}"),
    FindingType("zero-of-zero", WARNING, CRITERION, "Tử số và mẫu số bằng 0",
                "Tử số và mẫu số đều bằng 0; tiêu chí được tính 0 điểm. Tiêu chí này chấp nhận "
                "'{not_applicable}' khi: {ground} Nếu đúng như vậy, chọn '{not_applicable}' ở cột Giá trị và giữ "
                "mẫu số 0: tiêu chí được bỏ khỏi điểm tối đa."),
    FindingType("not-applicable-refused", ERROR, CRITERION, "Không chấp nhận 'Không áp dụng'",
                "Tiêu chí này không chấp nhận '{not_applicable}': {ground} Tiêu chí được tính 0 điểm và vẫn tính "
                "vào điểm tối đa. Xoá '{not_applicable}' và nhập số liệu hoặc lựa chọn thật của đơn vị."),
    FindingType("not-applicable-accepted", WARNING, CRITERION, "Tiêu chí không áp dụng",
                "Đơn vị chọn '{not_applicable}' và ghi mẫu số 0, được chấp nhận khi: {ground} Tiêu chí được bỏ "
                "khỏi điểm tối đa ({max} điểm) và điểm phần {part} được quy đổi. Đối chiếu tài liệu kiểm chứng để "
                "xác nhận."),
    FindingType("not-applicable-unproven", ERROR, CRITERION, "'Không áp dụng' thiếu mẫu số 0",
                "Đơn vị chọn '{not_applicable}' nhưng chưa ghi mẫu số; tiêu chí được tính 0 điểm và vẫn tính vào "
                "điểm tối đa. Tiêu chí chỉ được bỏ khỏi điểm tối đa khi: {ground} Nếu đúng như vậy, ghi số 0 vào "
                "cột Mẫu số ({denominator}); nếu có phát sinh, xoá '{not_applicable}' và nhập tử số, mẫu số thật."),
    FindingType("not-applicable-contradicted", ERROR, CRITERION, "'Không áp dụng' trái với số liệu",
                "Đơn vị chọn '{not_applicable}' nhưng {figure}: tiêu chí có phát sinh nên được chấm theo số liệu "
                "({score} điểm) và vẫn tính vào điểm tối đa. Nếu số liệu đúng, xoá '{not_applicable}'; nếu trong "
                "năm thật sự không phát sinh ({ground}), ghi mẫu số 0 và tử số 0."),
    FindingType("option-unknown", ERROR, CRITERION, "Giá trị không thuộc danh sách",
                "'{text}' không phải một lựa chọn của tiêu chí này. Chọn một trong: {options}."),
    FindingType("option-accentless", WARNING, CRITERION, "Lựa chọn gõ không dấu",
                "'{text}' (gõ không dấu) được hiểu là '{label}'. Chọn đúng '{label}' trong danh sách."),
    FindingType("value-out-of-range", ERROR, CRITERION, "Giá trị ngoài khoảng cho phép",
                "Giá trị {text} không hợp lệ: {detail}. Nhập {expected}."),
    FindingType("ratio-from-evidence", WARNING, CRITERION, "Tỷ lệ lấy từ cột kiểm chứng",
                "Tử số và mẫu số để trống; đã lấy tỷ lệ {fraction} ghi ở cột Tài liệu kiểm chứng. Nhập tử số vào "
                "cột Tử số và mẫu số vào cột Mẫu số."),
    FindingType("evidence-missing", WARNING, CRITERION, "Thiếu tài liệu kiểm chứng",
                "Tiêu chí được {score} điểm nhưng cột Tài liệu kiểm chứng để trống. Ghi số, ngày và trích yếu "
                "văn bản hoặc đường dẫn chứng minh số liệu (ví dụ 'Quyết định số 123/QĐ-UBND ngày 15/3/2020')."),
    FindingType("percent-fraction", WARNING, CRITERION, "Tỷ lệ đọc từ số thập phân",
                "Ô chứa số {text} không kèm dấu %; {text} được hiểu là {percent}% (Excel lưu {percent}% gõ vào ô "
                "định dạng phần trăm của mẫu thành {text}). Nếu tỷ lệ đúng là {percent}%, không cần sửa; nếu "
                "không, gõ lại tỷ lệ kèm dấu % (ví dụ {percent}% hoặc {text}%) vào ô phần trăm của mẫu."),
    FindingType("percent-assumed", WARNING, CRITERION, "Tỷ lệ nhập thiếu dấu %",
                "Ô chứa số {text} không có dấu %; đã hiểu là {text}%. Nhập kèm dấu %, ví dụ {text}%."),
    # --- group, part and grand total ----------------------------------------------------------------
    FindingType("subtotal-arithmetic", ERROR, SUBTOTAL, "Cộng sai tổng điểm tự đánh giá",
                "Tổng điểm tự đánh giá ghi {declared} nhưng cộng các điểm tự đánh giá của {what} được "
                "{self_sum}. Cộng lại cho đúng."),
    FindingType("subtotal-mismatch", ERROR, SUBTOTAL, "Tổng điểm khác điểm tính lại",
                "Tổng điểm tự đánh giá ghi {declared} khác tổng điểm tính lại từ số liệu {score} của {what}. "
                "Sửa các tiêu chí bị đánh dấu rồi ghi lại tổng."),
    FindingType("subtotal-consequence", CONSEQUENCE, SUBTOTAL, "Tổng điểm lệch do lỗi đã báo",
                "Tổng điểm tự đánh giá ghi {declared} khác tổng điểm tính lại từ số liệu {score} của {what}, do "
                "các lỗi đã báo: {causes}. Sửa các lỗi đó rồi ghi lại tổng; chênh lệch này không tính thêm lỗi."),
    FindingType("subtotal-missing", WARNING, SUBTOTAL, "Thiếu tổng điểm",
                "Chưa ghi tổng điểm tự đánh giá của {what}; tổng tính lại là {score}. Ghi tổng vào ô này."),
)

REGISTRY: dict[str, FindingType] = {t.code: t for t in _TYPES}


@dataclass(frozen=True)
class Finding:
    """One thing wrong, with the place a person finds it in Excel."""

    code: str  # a REGISTRY code
    severity: str
    file: str  # the file name relative to the input folder
    sheet: str = ""
    cell: str = ""  # A1 address, "" for a whole file or sheet
    district: str = ""  # the listed name, or what the file says when it is not on the list
    subject: str = ""  # criterion, group, part or total code ("SS.I.1", "SS.I", "SS", "TONG")
    message: str = ""
    params: dict = field(default_factory=dict, compare=False, hash=False)
    follows: tuple[str, ...] = ()  # a consequence: the findings it follows from, "SS.I.8 option-unknown E14"

    @property
    def rejects(self) -> bool:
        return REGISTRY[self.code].rejects

    def record(self) -> dict:
        """A flat row: the columns of findings.csv (subject as 'code', the finding code as 'finding')."""
        return {"file": self.file, "sheet": self.sheet, "cell": self.cell, "district": self.district,
                "code": self.subject, "finding": self.code, "severity": self.severity, "message": self.message,
                "follows": "; ".join(self.follows)}


def make_finding(code: str, file: str, sheet: str = "", cell: str = "", district: str = "",
                 subject: str = "", *, follows: tuple[str, ...] = (), **params: object) -> Finding:
    """A finding of a registered code, its message rendered from the template and `params`; `follows`
    names the findings a consequence follows from."""
    t = REGISTRY[code]  # KeyError on an unregistered code: a programming error, caught by the tests
    sheet = printable(sheet, SHOWN_TEXT_LIMIT)  # a crafted workbook's sheet name may hold anything
    shown = {k: _show(v) for k, v in params.items()}
    shown.setdefault("subject", subject)
    shown.setdefault("sheet", sheet)
    shown.setdefault("district", printable(district, SHOWN_TEXT_LIMIT))
    message = t.template.format(**shown)
    if cell:
        message = f"Ô {cell}: {message}"
    return Finding(code, t.severity, file, sheet, cell, district, subject, printable(message), dict(params),
                   tuple(follows))


def _show(v: object) -> str:
    """Numbers as a Vietnamese reader writes them: 0,85 and 54 (not 54.0)."""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        f = float(v)
        if f.is_integer():
            return str(int(f))
        return f"{f:.6f}".rstrip("0").rstrip(".").replace(".", ",")
    return printable(str(v), SHOWN_TEXT_LIMIT)


def codes_markdown() -> str:
    """The table of finding codes in docs/findings.md, generated from the registry."""
    lines = ["| code | severity | level | what | file scored? |", "|---|---|---|---|---|"]
    for t in _TYPES:
        lines.append(f"| `{t.code}` | {t.severity} | {t.level} | {t.title} | {'no' if t.rejects else 'yes'} |")
    return "\n".join(lines)
