"""The end-of-run summary the CLI prints: one screen of text for the operator, or a dict for --json."""

from __future__ import annotations

import datetime as dt

from ..rules.findings import CONSEQUENCE, ERROR, WARNING
from ..rules.results import COMPLETE, PART, REJECTED, SKIPPED_VI, SUPERSEDED, DistrictResult, RunResult
from ..text import printable
from .history import DistrictStep, RunRow
from .tables import overview, overview_facts

MAX_ROWS = 20  # ranking rows shown; the workbook has them all


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def summary_dict(run: RunResult, exit_code: int, seconds: float) -> dict:
    """The summary as plain data (what --json prints)."""
    parts = _part_codes(run)
    view = overview(run)
    previous = run.comparison.ranks if run.comparison is not None else {}
    return {
        "exit_code": exit_code,
        "run_id": run.run_id,
        "seconds": round(seconds, 3),
        "input_dir": run.input_dir,
        "rulebook": {"id": run.rulebook_id, "version": run.rulebook_version, "hash": run.rulebook_hash},
        "files": {"read": len(run.files), "scored": len(run.districts),
                  "rejected": sum(1 for f in run.files if f.status == REJECTED),
                  "superseded": sum(1 for f in run.files if f.status == SUPERSEDED),
                  "skipped": run.skipped},
        "findings": {"error": run.count(ERROR), "warning": run.count(WARNING),
                     "consequence": run.count(CONSEQUENCE), "by_code": run.codes()},
        "ranking": [
            {"rank": d.rank, "district": d.district, "file": d.file,
             **{p: d.subtotals[p].scaled for p in parts},
             "total": d.total.scaled, "plain_total": d.total.achieved, "declared_total": d.total.declared,
             "gap": d.total.gap, "not_applicable": d.not_applicable, "max_removed": d.max_removed,
             "status": d.status, "errors": d.errors, "warnings": d.warnings,
             "previous_rank": previous.get(d.district), "rank_change": _step(previous.get(d.district), d.rank)}
            for d in run.districts
        ],
        "overview": {"province": run.province, "year": run.year, "expected": view.expected,
                     "received": view.received, "complete": view.complete, "to_correct": view.to_correct,
                     "deadline": view.deadline.isoformat() if view.deadline else None,
                     "late": [{"district": n, "modified": when.isoformat()} for n, when in view.late],
                     "best": [n for n, _ in view.best], "weakest": [n for n, _ in view.weakest]},
        "compared_with": ({"source": run.comparison.source, "reference": run.comparison.reference}
                          if run.comparison is not None else None),
        "rejected": [{"file": f.file, "district": f.district, "codes": list(f.codes), "reason": f.reason}
                     for f in run.files if f.status in (REJECTED, SUPERSEDED)],
        "not_submitted": run.not_submitted,
        "not_submitted_notes": run.not_submitted_notes,
        "feedback": {"written": run.feedback_written, "reused": run.feedback_reused},
        "outputs": run.outputs,
        "history": run.history,
        "log": run.log,
        "notices": run.notices,
    }


def _step(before: int | None, rank: int) -> int | None:
    return None if before is None else before - rank


def _part_codes(run: RunResult) -> list[str]:
    if not run.districts:
        return []
    return [s.code for s in run.districts[0].subtotals.values() if s.level == PART]


def summary_text(run: RunResult, seconds: float) -> str:
    """One screen in Vietnamese, in the workbook's words: the overview, findings by code, the ranking's
    head, files not scored, outputs. Codes and file names as they are."""
    lines: list[str] = []
    rejected = [f for f in run.files if f.status == REJECTED]
    superseded = [f for f in run.files if f.status == SUPERSEDED]
    lines.append(f"kbang_egov {run.tool_version}: bộ tiêu chí {run.rulebook_id} {run.rulebook_version}, "
                 f"{len(run.files)} tệp trong {run.input_dir} ({seconds:.1f} giây)")
    lines += overview_lines(run)
    skipped = ", ".join(f"{n} {SKIPPED_VI.get(k, k)}" for k, n in run.skipped.items())
    lines.append(f"Tệp: {len(run.files) - len(rejected) - len(superseded)} đã chấm, {len(rejected)} không chấm "
                 f"được, {len(superseded)} bị thay thế bởi bản mới hơn" + (f"; bỏ qua: {skipped}" if skipped else ""))
    lines.append(f"Sai lệch: {run.count(ERROR)} lỗi, {run.count(WARNING)} cảnh báo, {run.count(CONSEQUENCE)} sai "
                 "lệch hệ quả của lỗi khác (không tính là lỗi)")
    for code, n in run.codes().items():
        lines.append(f"  {code:<32}{n:>6}")
    if run.districts:
        parts = _part_codes(run)
        changes = {d.district: _change(run, d) for d in run.districts}
        head = f"{'Hạng':>4}  {'Đơn vị':<22}" + "".join(f"{p:>8}" for p in parts)
        lines.append("")
        lines.append(head + f"{'Tổng':>8}{'Thẳng':>8}{'Tự khai':>9}{'Lệch':>7}{'KAD':>4}{'Lỗi':>5}{'CB':>4}"
                     + (f"{'Đổi hạng':>10}" if run.comparison is not None else ""))
        for d in run.districts[:MAX_ROWS]:
            lines.append(f"{d.rank:>4}  {d.district[:22]:<22}"
                         + "".join(f"{d.subtotals[p].scaled:>8.2f}" for p in parts)
                         + f"{d.total.scaled:>8.2f}{d.total.achieved:>8.2f}{_fmt(d.total.declared):>9}"
                         + f"{_fmt(d.total.gap):>7}{d.not_applicable:>4}{d.errors:>5}{d.warnings:>4}"
                         + (f"{changes[d.district]:>10}" if run.comparison is not None else ""))
        lines.append("  (các phần và Tổng được quy đổi khi có tiêu chí không áp dụng (KAD); Thẳng: tổng cộng thẳng "
                     "các điểm chấm lại; Lệch: Tự khai trừ Thẳng; CB: cảnh báo"
                     + ("; Đổi hạng: hạng trước trừ hạng nay, +2 là lên hai bậc, mới: chưa có hạng trong bản so sánh)"
                        if run.comparison is not None else ")"))
        if len(run.districts) > MAX_ROWS:
            lines.append(f"  ... còn {len(run.districts) - MAX_ROWS} đơn vị nữa trong ranking.xlsx")
    for f in (rejected + superseded)[:MAX_ROWS]:
        lines.append(f"Không chấm: {f.file}: {', '.join(f.codes)}")
    if len(rejected) + len(superseded) > MAX_ROWS:
        lines.append(f"  ... còn {len(rejected) + len(superseded) - MAX_ROWS} tệp nữa trong ranking.xlsx (Tệp lỗi)")
    if run.feedback_written or run.feedback_reused:
        lines.append(f"Bản phản hồi: {run.feedback_written} bản ghi mới, {run.feedback_reused} bản giữ nguyên từ lần "
                     "chạy trước (bài nộp và kết quả không đổi)")
    if run.outputs:
        lines.append("Đã ghi: " + ", ".join(run.outputs))
    if run.log:
        lines.append(f"Nhật ký: {run.log}")
    for note in run.notices:
        lines.append(f"Lưu ý: {note}")
    return "\n".join(printable(line) for line in lines)  # nothing a file held may forge or garble a line


def overview_lines(run: RunResult) -> list[str]:
    """The overview as `Tổng quan` says it (tables.overview_facts), one fact a line; the rulebook, time and
    run id are in the summary's first line and its outputs, and a province or year not set is left out
    (the workbook says so)."""
    skip = {"Bộ tiêu chí", "Thời gian chạy", "Mã lần chạy"} | ({"Tỉnh"} if not run.province else set())
    return [f"{label}: {value}" for label, value, _ in overview_facts(run)
            if label not in skip and value not in (None, "")]


def _change(run: RunResult, d: DistrictResult) -> str:
    """A rank change as the officer reads it: +2 (up), -1 (down), = (same), mới (not ranked before)."""
    if run.comparison is None:
        return ""
    before = run.comparison.ranks.get(d.district)
    if before is None:
        return "mới"
    step = before - d.rank
    return "=" if step == 0 else f"{step:+d}"


def runs_text(runs: list[RunRow]) -> str:
    """`batch.py history`: the runs kept, oldest first."""
    if not runs:
        return "Chưa có lần chạy nào được lưu."
    lines = [f"{'Mã lần chạy':<25}{'Kết thúc':<18}{'Số tệp':>7}{'Xếp hạng':>9}{'Chưa nộp':>9}{'Lỗi':>6}"
             f"{'Cảnh báo':>9}  Bộ tiêu chí"]
    for r in runs:
        lines.append(f"{r.run_id:<25}{_short_time(r.finished):<18}{r.files_read:>7}{r.districts_ranked:>9}"
                     f"{r.not_submitted:>9}{r.errors:>6}{r.warnings:>9}  {r.rulebook}")
    lines.append(f"{len(runs)} lần chạy. Xem một đơn vị: batch.py history --district TÊN")
    return "\n".join(printable(line) for line in lines)


def district_path_text(district: str, steps: list[DistrictStep]) -> str:
    """`batch.py history --district NAME`: its total, parts and rank in every run, oldest first."""
    codes = list(dict.fromkeys(c for s in steps for c in s.parts))  # the rulebook's order, as stored
    lines = [f"{district}: diễn biến qua {len(steps)} lần chạy",
             f"{'Mã lần chạy':<25}{'Kết thúc':<18}{'Hạng':>5}{'Đổi':>5}" + "".join(f"{c:>8}" for c in codes)
             + f"{'Tổng':>8}  Tình trạng"]
    before: int | None = None
    for s in steps:
        if s.rank is None:
            lines.append(f"{s.run_id:<25}{_short_time(s.finished):<18}{'':>5}{'':>5}" + " " * (8 * len(codes))
                         + f"{'':>8}  chưa nộp / không được xếp hạng")
            continue
        change = "" if before is None else ("=" if before == s.rank else f"{before - s.rank:+d}")
        status = "Hoàn chỉnh" if s.status == COMPLETE else f"Cần sửa ({s.errors} lỗi)"
        lines.append(f"{s.run_id:<25}{_short_time(s.finished):<18}{s.rank:>5}{change:>5}"
                     + "".join(f"{_fmt(s.parts.get(c)):>8}" for c in codes) + f"{_fmt(s.total):>8}  {status}")
        before = s.rank
    return "\n".join(printable(line) for line in lines)


def _short_time(iso: str) -> str:
    try:
        return dt.datetime.fromisoformat(iso).strftime("%d/%m/%Y %H:%M")
    except ValueError:
        return iso
