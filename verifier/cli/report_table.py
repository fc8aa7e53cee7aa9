"""The effectiveness report as a terminal table: each group's values by their Chinese names where the catalogue
has them (licence types, cities, institutions, counters, provinces), codes where a name would not fit (scenarios,
reasons), then the counts and the acceptance rate, and the period's total last. At most 120 columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from verifier.cli import texttable
from verifier.core.catalogue import PROVINCE_NAMES_ZH, Catalogue
from verifier.core.report import ReportRow

HEADERS = {
    "day": "日期 day",
    "month": "月份 month",
    "province": "省份 province",
    "city": "城市 city",
    "institution": "机构 institution",
    "counter": "窗口 counter",
    "type": "证照 licence",
    "issuing_province": "签发 issued in",
    "scenario": "业务 business",
    "item": "事项 item",
    "decision": "结论 decision",
    "reason": "原因 reason",
}
MEASURES = ("核验 answers", "首扫 first", "通过 accepted", "不通过 rejected", "通过率 rate")
DECISIONS = {"accepted": "通过 accepted", "rejected": "不通过 rejected"}
NONE = "—"


def label(name: str, value: str | int | None, catalogue: Catalogue) -> str:
    """A group's value as a person reads it: its Chinese name where the catalogue has one, else its code."""
    if value is None or value == "-":
        return NONE
    text = str(value)
    catalogued: dict[str, Mapping[str, Any]] = {
        "city": catalogue.divisions,
        "institution": catalogue.institutions,
        "counter": catalogue.counters,
        "type": catalogue.licences,
    }
    named: str | None = None
    if name in catalogued:
        found = catalogued[name].get(text)
        named = found.name_zh if found else None
    elif name in ("province", "issuing_province"):
        named = PROVINCE_NAMES_ZH.get(text)
    elif name == "decision":
        named = DECISIONS.get(text)
    return named or text


def _counts(row: ReportRow) -> list[str]:
    rate = f"{row.accepted / row.answers:.1%}" if row.answers else NONE
    return [str(row.answers), str(row.first_scans), str(row.accepted), str(row.rejected), rate]


def render(rows: Sequence[ReportRow], total: ReportRow, by: Sequence[str], catalogue: Catalogue) -> str:
    """The rows, one a line (more where a name wraps), and the total."""
    lines = [[*(label(name, row.group[name], catalogue) for name in by), *_counts(row)] for row in rows]
    if by:
        lines.append(["合计 total", *[""] * (len(by) - 1), *_counts(total)])
    else:
        lines = [_counts(total)]
    return texttable.render([*(HEADERS[name] for name in by), *MEASURES], lines)
