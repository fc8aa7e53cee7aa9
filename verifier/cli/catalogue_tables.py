"""The catalogue and the counter registry as terminal tables (``verifier catalogue``, ``verifier counters``).

Both fit 120 columns, their long cells wrapped; ``verifier catalogue --wide`` adds the issuing units and
the pilot scope, one line a row. Apps are shown with the code ``--channel`` takes beside their names."""

from __future__ import annotations

from verifier.cli import texttable
from verifier.core.catalogue import PROVINCES, Catalogue, LicenceType

LOST = "〔缺失 lost〕"


def _cell(values: list[str] | None) -> str:
    return LOST if values is None else "、".join(values) or "＿＿"


def _channels(cat: Catalogue, lt: LicenceType) -> str:
    if lt.channels is None:
        return LOST
    return _cell([f"{cat.channels[c].name_zh}{texttable.NBSP}{c}" for c in lt.channels])


def _name(lt: LicenceType) -> str:
    name = lt.name_zh or LOST
    return name + "〔推断〕" if "name_zh" in lt.inferred else name


def catalogue_table(cat: Catalogue, *, wide: bool = False) -> str:
    """A readable table of the list, then the apps and their codes, then the list's completeness."""
    headers = ["序号", "code", "电子证照名称", "亮证渠道 app (--channel)", "应用场景 scenarios", "可互认"]
    if wide:
        headers[4:4] = ["签发单位", "试点范围"]
    rows = []
    for lt in cat.by_seq():
        row = [str(lt.seq), lt.code, _name(lt), _channels(cat, lt)]
        row.append(_cell(None if lt.scenarios is None else list(lt.scenarios)))
        row.append("是 yes" if lt.recognised else "否 no")
        if wide:
            units = (
                None
                if lt.issuing_units is None
                else [cat.units[u].name_zh for p in PROVINCES for u in lt.issuing_units[p]]
            )
            scope = None if lt.pilot_scope is None else list(dict.fromkeys(s.label_zh for s in lt.pilot_scope.values()))
            row[4:4] = [_cell(units), _cell(scope)]
        rows.append(row)
    lines = [texttable.render(headers, rows, max_width=None if wide else texttable.MAX_WIDTH), ""]
    apps = "、".join(f"{c.code}{texttable.NBSP}{c.name_zh}" for c in cat.channels.values())
    lines.append(texttable.paragraph(f"亮证渠道 apps (--channel): {apps}"))
    if not wide:
        lines.append(
            "签发单位和试点范围：verifier catalogue --wide / issuing units and pilot scope: verifier catalogue --wide"
        )
    lines += ["", *_completeness(cat)]
    return "\n".join(lines)


def _completeness(cat: Catalogue) -> list[str]:
    all_rows = cat.by_seq()
    recognised = [lt for lt in all_rows if lt.recognised]
    lines = [
        f"完整度 completeness: {len(recognised)}/{len(all_rows)} rows fully specified"
        " (推断 inferred cells count as rules)."
    ]
    for lt in all_rows:
        if lt.lost or lt.inferred:
            parts = []
            if lt.lost:
                parts.append("lost: " + ", ".join(sorted(lt.lost)))
            if lt.inferred:
                parts.append("inferred: " + ", ".join(sorted(lt.inferred)))
            status = "not yet recognised" if not lt.recognised else "recognised"
            lines.append(texttable.paragraph(f"  序号 {lt.seq:>2} ({lt.code}): {'; '.join(parts)} — {status}"))
    return lines


def counters_table(cat: Catalogue) -> str:
    """A readable table of the counters: each institution's kinds under its name."""
    rows = [
        [c.id, c.province, f"{c.institution.name_zh}\n{', '.join(c.institution.kinds)}", ", ".join(c.scenarios) or "—"]
        for c in cat.counters.values()
    ]
    headers = ["窗口 id", "省", "机构 institution · 类别 kinds", "业务 scenarios"]
    return texttable.render(headers, rows) + f"\n\n共 {len(rows)} 个窗口 / {len(rows)} counters."
