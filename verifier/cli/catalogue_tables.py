"""The catalogue and the counter registry as terminal tables (``verifier catalogue``, ``verifier counters``)."""

from __future__ import annotations

from verifier.cli import texttable
from verifier.core.catalogue import PROVINCES, Catalogue


def _cell(values: list[str] | None) -> str:
    return "〔缺失 lost〕" if values is None else "、".join(values) or "＿＿"


def catalogue_table(cat: Catalogue) -> str:
    """A readable table of the list, ending with its completeness."""
    rows = []
    for lt in cat.by_seq():
        units = (
            None if lt.issuing_units is None else [cat.units[u].name_zh for p in PROVINCES for u in lt.issuing_units[p]]
        )
        name = lt.name_zh or "〔缺失 lost〕"
        if "name_zh" in lt.inferred:
            name += "〔推断〕"
        rows.append(
            [
                str(lt.seq),
                lt.code,
                name,
                _cell(units),
                _cell(None if lt.channels is None else [cat.channels[c].name_zh for c in lt.channels]),
                _cell(None if lt.scenarios is None else list(lt.scenarios)),
                _cell(
                    None if lt.pilot_scope is None else list(dict.fromkeys(s.label_zh for s in lt.pilot_scope.values()))
                ),
                "是 yes" if lt.recognised else "否 no",
            ]
        )
    table = texttable.render(
        ["序号", "code", "电子证照名称", "签发单位", "亮证渠道", "应用场景", "试点范围", "可互认"], rows
    )
    lines = [table, ""]
    all_rows = cat.by_seq()
    recognised = [lt for lt in all_rows if lt.recognised]
    lines.append(
        f"完整度 completeness: {len(recognised)}/{len(all_rows)} rows fully specified"
        " (推断 inferred cells count as rules)."
    )
    for lt in all_rows:
        if lt.lost or lt.inferred:
            parts = []
            if lt.lost:
                parts.append("lost: " + ", ".join(sorted(lt.lost)))
            if lt.inferred:
                parts.append("inferred: " + ", ".join(sorted(lt.inferred)))
            status = "not yet recognised" if not lt.recognised else "recognised"
            lines.append(f"  序号 {lt.seq:>2} ({lt.code}): {'; '.join(parts)} — {status}")
    return "\n".join(lines)


def counters_table(cat: Catalogue) -> str:
    """A readable table of the counters."""
    rows = [
        [c.id, c.province, c.institution.name_zh, ", ".join(c.institution.kinds), ", ".join(c.scenarios) or "—"]
        for c in cat.counters.values()
    ]
    return texttable.render(["id", "省", "机构 institution", "kinds", "scenarios"], rows) + f"\n\n{len(rows)} counters."
