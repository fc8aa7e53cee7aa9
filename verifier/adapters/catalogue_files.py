"""Load ``data/`` into a :class:`~verifier.core.catalogue.Catalogue`, validating every file against its
JSON Schema in ``schemas/`` and every cross-reference, so a bad edit fails at start with a message
naming the file, the entry and the field."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from verifier.adapters.paths import data_dir, schema_dir
from verifier.core.catalogue import (
    CELLS,
    PROVINCE_CODES,
    PROVINCES,
    Attribute,
    Catalogue,
    Channel,
    Counter,
    Division,
    Institution,
    InstitutionKind,
    IssuingUnit,
    Item,
    LicenceType,
    NumberFormat,
    PilotScope,
    RelatedItem,
    Scenario,
)
from verifier.errors import CatalogueError

# file stem -> the array key its entries live under
FILES: dict[str, str] = {
    "channels": "channel",
    "issuing-units": "unit",
    "scenarios": "scenario",
    "items": "item",
    "institutions": "institution",
    "counters": "counter",
    "licence-types": "licence",
}


def load_catalogue(directory: Path | None = None) -> Catalogue:
    """Read, validate and cross-check every data file; raise :class:`CatalogueError` listing all
    problems found."""
    directory = directory or data_dir()
    raw: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for stem in FILES:
        doc, found = _read_valid(directory / f"{stem}.toml", stem)
        raw[stem] = doc
        problems += found
    if problems:
        raise CatalogueError(problems)
    catalogue = _build(raw)
    problems = list(_cross_check(catalogue, raw))
    if problems:
        raise CatalogueError(problems)
    return catalogue


def _read_valid(path: Path, stem: str) -> tuple[dict[str, Any], list[str]]:
    where = f"data/{path.name}"
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        return {}, [f"{where}: file missing (looked in {path.parent})"]
    except tomllib.TOMLDecodeError as exc:
        return {}, [f"{where}: not valid TOML: {exc}"]
    except UnicodeDecodeError as exc:
        # tomllib decodes before it parses; a file saved as GBK would otherwise end in a traceback
        return {}, [f"{where}: not UTF-8 (save it as UTF-8): byte {exc.start}: {exc.reason}"]
    except OSError as exc:
        return {}, [f"{where}: cannot be read: {exc.strerror or exc}"]
    schema = json.loads((schema_dir() / f"{stem}.schema.json").read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        problems.append(f"{where}: {_entry_of(doc, list(error.absolute_path))}{_message(error)}")
    return doc, problems


def _entry_of(doc: dict[str, Any], path: list[Any]) -> str:
    """'licence seq=7 (vet-drug-production), field channels: ' for a path into ``doc``."""
    if len(path) < 2 or not isinstance(path[1], int):
        return f"{'.'.join(map(str, path))}: " if path else ""
    entry = doc[path[0]][path[1]]
    label = f"{path[0]} #{path[1] + 1}"
    if isinstance(entry, dict):
        ident = entry.get("code") or entry.get("id")
        label = f"{path[0]} " + (f"seq={entry['seq']} " if "seq" in entry else "") + (f"({ident})" if ident else "")
    rest = ".".join(map(str, path[2:]))
    return f"{label.strip()}, field {rest}: " if rest else f"{label.strip()}: "


def _message(error: Any) -> str:
    if error.validator == "additionalProperties":
        return f"unknown field ({error.message})"
    if error.validator == "oneOf" and list(error.absolute_path)[-1:] == ["number"]:
        return 'not { kind = "citizen-id" }, { kind = "uscc" } or { kind = "digits", length = N }'
    if error.validator == "oneOf":
        return "not one of the shapes province / institution-kind / institutions, or it has fields of another shape"
    return str(error.message)


def _tuple(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _build(raw: dict[str, dict[str, Any]]) -> Catalogue:
    institutions = {
        d["code"]: Institution(d["code"], d["name_zh"], d["province"], d["level"], tuple(d["kinds"]), d["division"])
        for d in raw["institutions"]["institution"]
    }
    return Catalogue(
        licences={d["code"]: _licence(d) for d in raw["licence-types"]["licence"]},
        channels={d["code"]: Channel(**d) for d in raw["channels"]["channel"]},
        units={d["code"]: IssuingUnit(**d) for d in raw["issuing-units"]["unit"]},
        scenarios={d["code"]: Scenario(**d) for d in raw["scenarios"]["scenario"]},
        kinds={d["code"]: InstitutionKind(**d) for d in raw["institutions"]["kind"]},
        institutions=institutions,
        counters={
            d["id"]: Counter(d["id"], d["name_zh"], institutions[d["institution"]], tuple(d["scenarios"]))
            for d in raw["counters"]["counter"]
            if d["institution"] in institutions
        },
        items={
            d["seq"]: Item(d["seq"], d["name_zh"], tuple(d["lead_departments"]), d.get("name_cq_zh"))
            for d in raw["items"]["item"]
        },
        divisions={d["code"]: Division(**d) for d in raw["institutions"]["division"]},
    )


def _licence(d: dict[str, Any]) -> LicenceType:
    units = d.get("issuing_units")
    scope = d.get("pilot_scope")
    items = d.get("related_items")
    number = d.get("number")
    return LicenceType(
        seq=d["seq"],
        code=d["code"],
        name_zh=d.get("name_zh"),
        name_en=d.get("name_en"),
        issuing_units=None if units is None else {p: tuple(units[p]) for p in PROVINCES},
        channels=_tuple(d.get("channels")),
        scenarios=_tuple(d.get("scenarios")),
        related_items=None if items is None else tuple(RelatedItem(i["name_zh"], i.get("item")) for i in items),
        pilot_scope=None
        if scope is None
        else {
            p: PilotScope(
                scope[p]["shape"], scope[p]["label_zh"], scope[p].get("kind"), tuple(scope[p].get("institutions", ()))
            )
            for p in PROVINCES
        },
        attributes=tuple(Attribute(**a) for a in d.get("attributes", ())),
        holder=d.get("holder"),
        number=None if number is None else NumberFormat(**number),
        inferred=frozenset(d.get("inferred", ())),
        lost=frozenset(d.get("lost", ())),
        note=d.get("note", ""),
    )


def _cross_check(cat: Catalogue, raw: dict[str, dict[str, Any]]) -> Iterator[str]:
    """Every name a row uses must exist, once, in the right province."""
    for stem, key, ident in (
        ("licence-types", "licence", "code"),
        ("licence-types", "licence", "seq"),
        ("channels", "channel", "code"),
        ("issuing-units", "unit", "code"),
        ("scenarios", "scenario", "code"),
        ("institutions", "institution", "code"),
        ("institutions", "kind", "code"),
        ("institutions", "division", "code"),
        ("counters", "counter", "id"),
        ("items", "item", "seq"),
    ):
        seen: set[Any] = set()
        for entry in raw[stem][key]:
            if entry[ident] in seen:
                yield f"data/{stem}.toml: {key} {ident}={entry[ident]}: duplicate {ident}"
            seen.add(entry[ident])
    for lt in cat.by_seq():
        yield from (
            f"data/licence-types.toml: licence seq={lt.seq} ({lt.code}), {p}" for p in _licence_problems(cat, lt)
        )
    for d in raw["counters"]["counter"]:
        where = f"data/counters.toml: counter ({d['id']})"
        if d["institution"] not in cat.institutions:
            yield f"{where}, field institution: unknown institution {d['institution']!r}"
        for s in d["scenarios"]:
            if s not in cat.scenarios:
                yield f"{where}, field scenarios: unknown scenario {s!r}"
    for inst in cat.institutions.values():
        for k in inst.kinds:
            if k not in cat.kinds:
                yield f"data/institutions.toml: institution ({inst.code}), field kinds: unknown kind {k!r}"
        yield from (
            f"data/institutions.toml: institution ({inst.code}), field division: {p}"
            for p in _division_problems(cat, inst)
        )


def _division_problems(cat: Catalogue, inst: Institution) -> Iterator[str]:
    """An institution's division must lie in its province, name at least a city, and be named (with its city)
    under ``[[division]]``, so that reports by city can say which."""
    code = inst.division
    province = str(PROVINCE_CODES[inst.province])
    if inst.province_division != province:
        yield f"{code} is not in {inst.province} ({province})"
        return
    if inst.city_division is None:
        yield f"{code} is a province's code: give the city or district the institution stands in"
        return
    for needed in dict.fromkeys((code, inst.city_division)):
        if needed not in cat.divisions:
            yield f"no [[division]] named {needed} (add its code, name_zh and name_en)"


def _licence_problems(cat: Catalogue, lt: LicenceType) -> Iterator[str]:
    present = {cell for cell in CELLS if getattr(lt, cell) is not None}
    for cell in sorted(lt.lost & present):
        yield f"field {cell}: marked lost but has a value (remove it from `lost` once filled in)"
    for cell in sorted(set(CELLS) - present - lt.lost):
        yield f"field {cell}: missing (give a value, or name it in `lost` if the source lost it)"
    for cell in sorted(lt.inferred & lt.lost):
        yield f"field {cell}: both inferred and lost"
    yield from _reference_problems(cat, lt)


def _reference_problems(cat: Catalogue, lt: LicenceType) -> Iterator[str]:
    for province, units in (lt.issuing_units or {}).items():
        for u in units:
            unit = cat.units.get(u)
            if unit is None:
                yield f"field issuing_units.{province}: unknown issuing unit {u!r}"
            elif unit.province != province:
                yield f"field issuing_units.{province}: {u!r} belongs to {unit.province}"
    for c in lt.channels or ():
        if c not in cat.channels:
            yield f"field channels: unknown channel {c!r}"
    for s in lt.scenarios or ():
        if s not in cat.scenarios:
            yield f"field scenarios: unknown scenario {s!r}"
    for ri in lt.related_items or ():
        item = cat.items.get(ri.item) if ri.item is not None else None
        if ri.item is not None and item is None:
            yield f"field related_items: no item {ri.item} in data/items.toml"
        elif item is not None and ri.name_zh not in (item.name_zh, item.name_cq_zh):
            yield f"field related_items: {ri.name_zh!r} is not the name of item {ri.item} ({item.name_zh!r})"
    yield from _scope_problems(cat, lt)


def _scope_problems(cat: Catalogue, lt: LicenceType) -> Iterator[str]:
    for province, scope in (lt.pilot_scope or {}).items():
        if scope.kind is not None and scope.kind not in cat.kinds:
            yield f"field pilot_scope.{province}.kind: unknown institution kind {scope.kind!r}"
        for i in scope.institutions:
            inst = cat.institutions.get(i)
            if inst is None:
                yield f"field pilot_scope.{province}.institutions: unknown institution {i!r}"
            elif inst.province != province:
                yield f"field pilot_scope.{province}.institutions: {i!r} is in {inst.province}"
