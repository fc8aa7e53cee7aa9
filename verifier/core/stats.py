"""Statistics for the big-data centres (核验证照落地实效): the store's raw counters folded into the
views they ask for — by licence type, issuing province, counter province, scenario, decision and
reason, the two-way recognition matrix, and scans over time."""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any

FIRST, RESCAN = "first", "rescan"  # a new decision, or an answer the counter's cache gave again


@functools.lru_cache(maxsize=4096)  # a minute's answers repeat a few label sets: each is built once
def answer_fields(
    decision: str, reasons: tuple[tuple[str, str], ...], labels: str, kind: str, minute: str
) -> tuple[str, ...]:
    """The statistics fields one answer a counter got adds to: ``labels`` is ``type|issuing province|counter
    province|scenario`` (catalogue values only, ``-`` for what a token named that the catalogue does not know,
    so forged claims cannot grow the counters), ``kind`` :data:`FIRST` or :data:`RESCAN`, ``minute``
    ``YYYYMMDDHHMM`` (UTC)."""
    fields = (f"scans|{labels}|{decision}|{kind}", f"minute|{minute}|{decision}")
    return fields + tuple(f"reason|{labels}|{code}|{kind}" for code, _ in reasons)


def _decisions() -> dict[str, int]:
    return {"accepted": 0, "rejected": 0}


def stats_document(raw: dict[str, int]) -> dict[str, Any]:
    """Fold the :func:`answer_fields` counters into one document: every answer a counter got, first scans
    and re-scans alike, with re-scans also counted apart (``rescans``, ``by_kind``)."""
    total = _decisions()
    kinds = {FIRST: _decisions(), RESCAN: _decisions()}
    by: dict[str, defaultdict[str, dict[str, int]]] = {
        name: defaultdict(_decisions) for name in ("type", "issuing_province", "counter_province", "scenario", "route")
    }
    reasons: defaultdict[str, int] = defaultdict(int)
    reasons_by_type: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    minutes: defaultdict[str, dict[str, int]] = defaultdict(_decisions)
    rows = []
    for name, count in raw.items():
        kind, _, rest = name.partition("|")
        parts = rest.split("|")
        if kind == "scans" and len(parts) == 6 and parts[4] in total and parts[5] in kinds:
            lt, ip, cp, scenario, decision, answer = parts
            total[decision] += count
            kinds[answer][decision] += count
            for view, label in (
                ("type", lt),
                ("issuing_province", ip),
                ("counter_province", cp),
                ("scenario", scenario),
            ):
                by[view][label][decision] += count
            by["route"][f"{ip}->{cp}"][decision] += count
            rows.append(
                {
                    "type": lt,
                    "issuing_province": ip,
                    "counter_province": cp,
                    "scenario": scenario,
                    "decision": decision,
                    "kind": answer,
                    "count": count,
                }
            )
        elif kind == "reason" and len(parts) == 6:
            reasons[parts[4]] += count
            reasons_by_type[parts[0]][parts[4]] += count
        elif kind == "minute" and len(parts) == 2 and parts[1] in total:
            minutes[parts[0]][parts[1]] += count
    scans = total["accepted"] + total["rejected"]
    return {
        "total": {**total, "scans": scans, "acceptance_rate": round(total["accepted"] / scans, 4) if scans else None},
        "rescans": sum(kinds[RESCAN].values()),
        "by_kind": kinds,
        **{f"by_{view}": dict(sorted(values.items())) for view, values in by.items()},
        "by_reason": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "reasons_by_type": {
            t: dict(sorted(r.items(), key=lambda kv: -kv[1])) for t, r in sorted(reasons_by_type.items())
        },
        "per_minute": [{"minute": m, **v} for m, v in sorted(minutes.items())],
        "rows": sorted(rows, key=lambda r: -int(r["count"])),
    }
