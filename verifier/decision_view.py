"""The decision object of ``POST /v1/scans`` and ``verifier check --json``."""

from __future__ import annotations

from typing import Any

from verifier.catalogue import Catalogue
from verifier.decide import Decision, Licence


def mask_number(number: str) -> str:
    """Keep the first three and last two characters of a licence number, hide the rest."""
    if len(number) <= 5:
        return "*" * (len(number) - 1) + number[-1:]
    return number[:3] + "*" * (len(number) - 5) + number[-2:]


def licence_view(licence: Licence, catalogue: Catalogue) -> dict[str, Any]:
    """What the counter needs to see of the licence: never the full number."""
    lt = catalogue.licences[licence.type]
    unit = catalogue.units.get(licence.unit)
    return {
        "type": lt.code,
        "seq": lt.seq,
        "name_zh": lt.name_zh,
        "name_en": lt.name_en,
        "issuing_province": licence.province,
        "issuing_unit": {"code": licence.unit, "name_zh": unit.name_zh if unit else None},
        "channel": licence.channel,
        "holder": licence.holder,
        "licence_no": mask_number(licence.licence_no),
        "valid_from": licence.valid_from.isoformat(),
        "valid_until": licence.valid_until.isoformat(),
        "attributes": licence.attributes,
    }


def decision_document(
    decision: Decision, catalogue: Catalogue, *, scan_id: str | None, cached: bool, checked_at: str
) -> dict[str, Any]:
    """The decision object; ``licence`` is null when the token could not be trusted."""
    licence = decision.licence
    return {
        "scan_id": scan_id,
        "decision": decision.decision,
        "reasons": [r.as_dict() for r in decision.reasons],
        "licence": licence_view(licence, catalogue) if licence and licence.type in catalogue.licences else None,
        "cached": cached,
        "checked_at": checked_at,
    }
