"""The catalogue and the counter registry as JSON documents (``verifier catalogue --json``,
``verifier counters --json``, ``GET /v1/catalogue``)."""

from __future__ import annotations

from typing import Any

from verifier.core.catalogue import PROVINCE_CODES, PROVINCES, Catalogue, LicenceType


def licence_document(cat: Catalogue, lt: LicenceType) -> dict[str, Any]:
    """One row of the list with its names resolved and its completeness."""
    items = [{"name_zh": ri.name_zh, "item": ri.item} for ri in lt.related_items or ()]
    return {
        "seq": lt.seq,
        "code": lt.code,
        "name_zh": lt.name_zh,
        "name_en": lt.name_en,
        "issuing_units": None
        if lt.issuing_units is None
        else {p: [{"code": u, "name_zh": cat.units[u].name_zh} for u in lt.issuing_units[p]] for p in PROVINCES},
        "channels": None
        if lt.channels is None
        else [{"code": c, "name_zh": cat.channels[c].name_zh} for c in lt.channels],
        "scenarios": None
        if lt.scenarios is None
        else [
            {
                "code": s,
                "name_zh": cat.scenarios[s].name_zh,
                "name_en": cat.scenarios[s].name_en,
                "related_items": items,
            }
            for s in lt.scenarios
        ],
        "related_items": None if lt.related_items is None else items,
        "pilot_scope": None
        if lt.pilot_scope is None
        else {
            p: {
                "shape": sc.shape,
                "label_zh": sc.label_zh,
                **({"kind": sc.kind} if sc.kind else {}),
                **({"institutions": list(sc.institutions)} if sc.institutions else {}),
            }
            for p, sc in lt.pilot_scope.items()
        },
        "attributes": [{"name": a.name, "name_zh": a.name_zh, "name_en": a.name_en} for a in lt.attributes],
        "completeness": {
            "recognised": lt.recognised,
            "lost": sorted(lt.lost),
            "inferred": sorted(lt.inferred),
            "missing_rules": list(lt.missing_rules),
            "note": lt.note,
        },
    }


def catalogue_document(cat: Catalogue) -> dict[str, Any]:
    """The whole catalogue, as ``verifier catalogue --json`` and ``GET /v1/catalogue`` give it."""
    rows = cat.by_seq()
    return {
        "source": "川办便函〔2022〕260号 第一批川渝电子证照亮证互认实施清单",
        "provinces": {p: {"code": PROVINCE_CODES[p]} for p in PROVINCES},
        "licences": [licence_document(cat, lt) for lt in rows],
        "channels": [
            {"code": c.code, "name_zh": c.name_zh, "name_en": c.name_en, "province": c.province}
            for c in cat.channels.values()
        ],
        "completeness": {
            "rows": len(rows),
            "recognised": sum(lt.recognised for lt in rows),
            "incomplete": [lt.seq for lt in rows if not lt.recognised],
        },
    }


def counters_document(cat: Catalogue) -> dict[str, Any]:
    """The counter registry, as ``verifier counters --json`` gives it."""
    return {
        "counters": [
            {
                "id": c.id,
                "name_zh": c.name_zh,
                "institution": {
                    "code": c.institution.code,
                    "name_zh": c.institution.name_zh,
                    "level": c.institution.level,
                },
                "province": c.province,
                "kinds": list(c.institution.kinds),
                "scenarios": list(c.scenarios),
            }
            for c in cat.counters.values()
        ]
    }
