"""The catalogue: licence types, issuing units, channels, scenarios, pilot scopes and counters.

Plain frozen values built by :mod:`verifier.adapters.catalogue_files` from ``data/``. Nothing here reads a
file; the rules are data, and these classes only answer questions about them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

Province = Literal["SC", "CQ"]
PROVINCES: tuple[Province, ...] = ("SC", "CQ")
PROVINCE_CODES: dict[str, int] = {"SC": 510000, "CQ": 500000}
PROVINCE_NAMES_ZH: dict[str, str] = {"SC": "四川", "CQ": "重庆"}
NATIONAL = "national"

# GB/T 2260 division codes: two digits of province, two of city (prefecture), two of county or district.
# The municipalities directly under the central government (Beijing, Tianjin, Shanghai, Chongqing) have no
# city level: their districts (5001xx) and counties (5002xx) stand directly under the municipality, which
# is then its own city — 500103 渝中区 is in the city 500000 重庆市, not in a "500100".
MUNICIPALITIES: frozenset[str] = frozenset({"11", "12", "31", "50"})

# Cells of a row the decision depends on; losing any of them makes the row not yet recognised.
RULE_CELLS: tuple[str, ...] = ("name_zh", "issuing_units", "channels", "scenarios", "pilot_scope")
CELLS: tuple[str, ...] = (*RULE_CELLS[:4], "related_items", "pilot_scope")


@dataclass(frozen=True, slots=True)
class Channel:
    """An app (亮证渠道); ``province`` is SC, CQ or ``national``."""

    code: str
    name_zh: str
    name_en: str
    province: str

    def may_show(self, province: str) -> bool:
        """Whether this app may show a licence issued in ``province``."""
        return self.province in (NATIONAL, province)


@dataclass(frozen=True, slots=True)
class IssuingUnit:
    """A 签发单位: signs the licences it issues with its own keys."""

    code: str
    name_zh: str
    name_en: str
    province: str


@dataclass(frozen=True, slots=True)
class Scenario:
    """A business a counter does when a licence is shown (应用场景)."""

    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True, slots=True)
class RelatedItem:
    """A 涉及"川渝通办"事项; ``item`` is its seq in the 2020 list when it is one of the 95."""

    name_zh: str
    item: int | None = None


def province_division(code: str) -> str:
    """The province (or municipality) of a GB/T 2260 division code: 510703 -> 510000."""
    return code[:2] + "0000"


def city_division(code: str) -> str | None:
    """The city of a division code: 510703 -> 510700, 500103 -> 500000 (a municipality is its own city);
    None for a province's own code (510000)."""
    if code[:2] in MUNICIPALITIES:
        return province_division(code)
    return code[:4] + "00" if code[2:4] != "00" else None


def district_division(code: str) -> str | None:
    """The district or county of a division code: 510703 -> 510703; None for a city's or a province's code."""
    return code if code[4:] != "00" else None


@dataclass(frozen=True, slots=True)
class Division:
    """A GB/T 2260 administrative division (行政区划) that institutions stand in, with its names."""

    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Institution:
    """A place with counters, of one or more kinds, in one province. ``division`` is the GB/T 2260 code of
    where it stands: its district or county (510703 涪城区) where known, else its city (510100 成都市;
    500000 for a Chongqing body of the whole municipality)."""

    code: str
    name_zh: str
    province: str
    level: str
    kinds: tuple[str, ...]
    division: str

    @property
    def province_division(self) -> str:
        """The GB/T 2260 code of its province: 510000 or 500000."""
        return province_division(self.division)

    @property
    def city_division(self) -> str | None:
        """The GB/T 2260 code of its city: 510100 成都市, 510700 绵阳市, 500000 重庆市."""
        return city_division(self.division)

    @property
    def district_division(self) -> str | None:
        """The GB/T 2260 code of its district or county (510703, 500103); None where only the city is known."""
        return district_division(self.division)


@dataclass(frozen=True, slots=True)
class PilotScope:
    """Where in one province a licence type is recognised: the whole province, every institution
    of a kind, or named institutions."""

    shape: Literal["province", "institution-kind", "institutions"]
    label_zh: str
    kind: str | None = None
    institutions: tuple[str, ...] = ()

    def covers(self, institution: Institution) -> bool:
        """Whether ``institution`` (already known to be in this scope's province) is in scope."""
        if self.shape == "province":
            return True
        if self.shape == "institution-kind":
            return self.kind in institution.kinds
        return institution.code in self.institutions


@dataclass(frozen=True, slots=True)
class Attribute:
    """A type-specific field of the presentation token (for example the driving licence class)."""

    name: str
    name_zh: str
    name_en: str


Holder = Literal["person", "organisation"]


@dataclass(frozen=True, slots=True)
class NumberFormat:
    """What a licence type's numbers are: the holder's 公民身份号码 (``citizen-id``, GB 11643) or 统一社会信用代码
    (``uscc``, GB 32100), 18 characters with a check character, or ``length`` digits of the licence's own."""

    kind: Literal["citizen-id", "uscc", "digits"]
    length: int = 18


@dataclass(frozen=True, slots=True)
class LicenceType:
    """One row of the official list. Cells the source lost are ``None`` and named in ``lost``."""

    seq: int
    code: str
    name_zh: str | None
    name_en: str | None
    issuing_units: dict[str, tuple[str, ...]] | None
    channels: tuple[str, ...] | None
    scenarios: tuple[str, ...] | None
    related_items: tuple[RelatedItem, ...] | None
    pilot_scope: dict[str, PilotScope] | None
    attributes: tuple[Attribute, ...] = ()
    holder: Holder | None = None  # None only where the source lost what the licence is
    number: NumberFormat | None = None
    inferred: frozenset[str] = frozenset()
    lost: frozenset[str] = frozenset()
    note: str = ""

    @property
    def missing_rules(self) -> tuple[str, ...]:
        """The rule cells the source lost, in table order; empty when the row is recognised."""
        return tuple(cell for cell in RULE_CELLS if cell in self.lost)

    @property
    def recognised(self) -> bool:
        """Whether every rule this row needs is known."""
        return not self.missing_rules

    @property
    def mintable(self) -> bool:
        """Whether an issuer knows enough to sign it: who issues it and which apps show it."""
        return "issuing_units" not in self.lost and "channels" not in self.lost

    def units_in(self, province: str) -> tuple[str, ...]:
        """The designated issuing units of this type in ``province``."""
        return (self.issuing_units or {}).get(province, ())


@dataclass(frozen=True, slots=True)
class Counter:
    """A counter (窗口) of an institution, registered for the scenarios it handles."""

    id: str
    name_zh: str
    institution: Institution
    scenarios: tuple[str, ...]

    @property
    def province(self) -> str:
        """The counter's province is its institution's."""
        return self.institution.province


@dataclass(frozen=True, slots=True)
class Item:
    """One of the 95 川渝通办 items of 川办发〔2020〕67号."""

    seq: int
    name_zh: str
    lead_departments: tuple[str, ...]
    name_cq_zh: str | None = None


@dataclass(frozen=True, slots=True)
class InstitutionKind:
    """A kind of institution that a pilot scope may name."""

    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True, eq=False)
class Catalogue:
    """Everything in ``data/``, indexed by code."""

    licences: dict[str, LicenceType]
    channels: dict[str, Channel]
    units: dict[str, IssuingUnit]
    scenarios: dict[str, Scenario]
    kinds: dict[str, InstitutionKind]
    institutions: dict[str, Institution]
    counters: dict[str, Counter]
    items: dict[int, Item] = field(default_factory=dict)
    divisions: dict[str, Division] = field(default_factory=dict)

    @cached_property
    def _seq_index(self) -> dict[int, LicenceType]:
        return {lt.seq: lt for lt in self.licences.values()}

    @cached_property
    def _scenario_items(self) -> dict[str, tuple[Item, ...]]:
        numbers: dict[str, set[int]] = {code: set() for code in self.scenarios}
        for lt in self.licences.values():
            numbered = {ri.item for ri in lt.related_items or () if ri.item is not None and ri.item in self.items}
            for scenario in lt.scenarios or ():
                numbers.setdefault(scenario, set()).update(numbered)
        return {code: tuple(self.items[n] for n in sorted(seqs)) for code, seqs in numbers.items()}

    def scenario_items(self, scenario: str) -> tuple[Item, ...]:
        """The 川渝通办 items (事项) a business may be done for: the numbered related items of every row of the
        list that names the scenario, in the order of the 2020 list; empty for a business with none."""
        return self._scenario_items.get(scenario, ())

    def licence_by_seq(self, seq: int) -> LicenceType | None:
        """The licence type with 序号 ``seq`` (how a presentation token names it)."""
        return self._seq_index.get(seq)

    def by_seq(self) -> list[LicenceType]:
        """Licence types in the order of the official list."""
        return sorted(self.licences.values(), key=lambda lt: lt.seq)
