"""The catalogue and the counter registry as JSON documents (``verifier catalogue --json``,
``verifier counters --json``, ``GET /v1/catalogue``)."""

from __future__ import annotations

from typing import Any

from verifier.core.catalogue import PROVINCE_CODES, PROVINCES, Catalogue, Institution, LicenceType


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


def division_document(cat: Catalogue, inst: Institution) -> dict[str, Any]:
    """Where an institution stands: its GB/T 2260 code, the province, city and district codes it falls in
    (``district`` null where only the city is known) and the full name, largest division first."""
    parts = dict.fromkeys(
        code for code in (inst.province_division, inst.city_division, inst.district_division) if code is not None
    )
    named = [cat.divisions[code] for code in parts if code in cat.divisions]
    return {
        "code": inst.division,
        "province": inst.province_division,
        "city": inst.city_division,
        "district": inst.district_division,
        "name_zh": "".join(d.name_zh for d in named),
        "name_en": ", ".join(d.name_en for d in reversed(named)),
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
                    "division": division_document(cat, c.institution),
                },
                "province": c.province,
                "kinds": list(c.institution.kinds),
                "scenarios": list(c.scenarios),
            }
            for c in cat.counters.values()
        ]
    }
