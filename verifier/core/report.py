"""The effectiveness report (核验证照落地实效) as the audit trail gives it: answers grouped by the fields an
operator asks for, over days of China's calendar. Pure: the trail's query (verifier.adapters.audit.trail)
fills :class:`ReportRow` s; the web shell and the CLI read the request and print the rows with this module."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from verifier.errors import ReportRequestError

# What a report may be grouped by (contract.md, GET /v1/reports): the trail's columns, and ``reason``, one
# group per reason code (a rejection with two reasons counts in both; an acceptance has none).
GROUPS: dict[str, tuple[str, str]] = {
    "day": ("日期（中国时间）", "day (China time)"),
    "month": ("月份", "month"),
    "province": ("核验窗口所在省份", "the counter's province"),
    "city": ("核验窗口所在城市（GB/T 2260）", "the counter's city (GB/T 2260)"),
    "institution": ("核验机构", "institution"),
    "counter": ("核验窗口", "counter"),
    "type": ("证照类型", "licence type"),
    "issuing_province": ("签发省份", "issuing province"),
    "scenario": ("业务场景", "scenario"),
    "item": ("川渝通办事项", "川渝通办 item"),
    "decision": ("核验结论", "decision"),
    "reason": ("不通过原因", "reason"),
}
MEASURES = ("answers", "first_scans", "accepted", "rejected", "acceptance_rate")
DEFAULT_DAYS = 30  # a report without dates covers the last 30 days


@dataclass(frozen=True)
class ReportRow:
    """One group: its fields' values, the answers in it, how many were first scans, how many accepted."""

    group: dict[str, str | int | None]
    answers: int
    first_scans: int
    accepted: int

    @property
    def rejected(self) -> int:
        """Answers that were rejections."""
        return self.answers - self.accepted

    def as_dict(self) -> dict[str, str | int | float | None]:
        """The row as JSON and CSV give it: the group's fields, then the measures."""
        rate = round(self.accepted / self.answers, 4) if self.answers else None
        return {**self.group, "answers": self.answers, "first_scans": self.first_scans,
                "accepted": self.accepted, "rejected": self.rejected, "acceptance_rate": rate}  # fmt: skip


def parse_by(text: str | None) -> tuple[str, ...]:
    """``by``: comma-separated names of :data:`GROUPS`, each once; none means one total row."""
    names = tuple(name.strip() for name in (text or "").split(",") if name.strip())
    unknown = [name for name in names if name not in GROUPS]
    if unknown or len(set(names)) != len(names):
        allowed = ", ".join(GROUPS)
        bad = ", ".join(unknown)
        raise ReportRequestError(
            "by",
            f"参数 by 不正确：{bad or '有字段重复'}；可选：{allowed}",
            f"parameter 'by' is wrong: {bad or 'a field named twice'}; allowed: {allowed}",
        )
    return names


def parse_days(first: str | None, last: str | None, today: date) -> tuple[date, date]:
    """``from`` and ``to`` (YYYY-MM-DD, both included); by default the last :data:`DEFAULT_DAYS` days to today."""
    end = _day("to", last) if last else today
    start = _day("from", first) if first else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ReportRequestError("from", f"from（{start}）晚于 to（{end}）", f"'from' ({start}) is after 'to' ({end})")
    return start, end


def _day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ReportRequestError(
            name, f"参数 {name} 须为日期 YYYY-MM-DD：{value[:40]!r}", f"parameter '{name}' must be a date YYYY-MM-DD"
        ) from None


def explode_reasons(rows: Sequence[ReportRow], by: Sequence[str]) -> list[ReportRow]:
    """Rows grouped by the comma-separated reason codes, regrouped by each code (when ``by`` names reason),
    in a stable order: by the group's values."""
    if "reason" not in by:
        return sorted(rows, key=lambda r: _order(r.group, by))
    merged: dict[tuple[object, ...], ReportRow] = {}
    for row in rows:
        codes: list[str | None] = [code for code in str(row.group["reason"] or "").split(",") if code] or [None]
        for code in codes:
            group = {**row.group, "reason": code}
            key = tuple(group[name] for name in by)
            seen = merged.get(key)
            merged[key] = (
                ReportRow(group, row.answers, row.first_scans, row.accepted)
                if seen is None
                else ReportRow(
                    group, seen.answers + row.answers, seen.first_scans + row.first_scans, seen.accepted + row.accepted
                )
            )
    return sorted(merged.values(), key=lambda r: _order(r.group, by))


def _order(group: dict[str, str | int | None], by: Sequence[str]) -> tuple[tuple[bool, str], ...]:
    return tuple((group[name] is None, str(group[name])) for name in by)


def as_csv(rows: Sequence[ReportRow], by: Sequence[str]) -> str:
    """The report as CSV: a header of the group's fields and the measures, a line a row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*by, *MEASURES])
    for row in rows:
        values = row.as_dict()
        writer.writerow(["" if values[name] is None else values[name] for name in (*by, *MEASURES)])
    return out.getvalue()
