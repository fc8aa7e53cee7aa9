"""The decision object of ``POST /v1/scans`` and ``verifier check --json``."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from verifier.core.catalogue import Catalogue
from verifier.core.decide import Decision, Licence


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


def trusted_licence_view(decision: Decision, catalogue: Catalogue) -> dict[str, Any] | None:
    """The licence view of a decision, or None when the token could not be trusted."""
    licence = decision.licence
    return licence_view(licence, catalogue) if licence and licence.type in catalogue.licences else None


def timestamp(now: float) -> str:
    """``checked_at``: UTC, milliseconds, as every decision object gives it."""
    ms = int(now * 1000)  # cut to the millisecond
    return f"{_second(ms // 1000)}.{ms % 1000:03d}Z"


@functools.lru_cache(maxsize=4)  # scans of one second share its text: a date is formatted once a second
def _second(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def decision_document(
    decision: Decision, catalogue: Catalogue, *, scan_id: str | None, cached: bool, checked_at: str
) -> dict[str, Any]:
    """The decision object; ``licence`` is null when the token could not be trusted."""
    return {
        "scan_id": scan_id,
        "decision": decision.decision,
        "reasons": [r.as_dict() for r in decision.reasons],
        "licence": trusted_licence_view(decision, catalogue),
        "cached": cached,
        "checked_at": checked_at,
    }


# A stored scan keeps only what the catalogue cannot give back, under one-letter names: a cached scan
# then takes a quarter of the memory (see docs/benchmark.md). Names, seq and the unit's name come back
# from the catalogue when the scan is answered again.
_STORED = (("t", "type"), ("p", "issuing_province"), ("c", "channel"), ("h", "holder"), ("n", "licence_no"),
           ("f", "valid_from"), ("v", "valid_until"), ("a", "attributes"))  # fmt: skip


def stored_licence(view: dict[str, Any]) -> dict[str, Any]:
    """The part of a :func:`licence_view` that a stored scan keeps."""
    stored = {short: view[name] for short, name in _STORED}
    stored["u"] = view["issuing_unit"]["code"]
    return stored


def expand_licence(stored: dict[str, Any] | None, catalogue: Catalogue) -> dict[str, Any] | None:
    """The :func:`licence_view` again from what :func:`stored_licence` kept (a full view, as scans
    stored by earlier versions hold, is returned as it is)."""
    if stored is None or "t" not in stored:
        return stored
    lt = catalogue.licences.get(stored["t"])
    unit = catalogue.units.get(stored["u"])
    return {
        "type": stored["t"],
        "seq": lt.seq if lt else None,
        "name_zh": lt.name_zh if lt else None,
        "name_en": lt.name_en if lt else None,
        "issuing_province": stored["p"],
        "issuing_unit": {"code": stored["u"], "name_zh": unit.name_zh if unit else None},
        "channel": stored["c"],
        "holder": stored["h"],
        "licence_no": stored["n"],
        "valid_from": stored["f"],
        "valid_until": stored["v"],
        "attributes": stored["a"],
    }
