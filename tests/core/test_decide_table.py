"""Mutual recognition, table-driven from the catalogue itself: for every recognised licence type,
issuing province and counter province, the licence is accepted at every counter registered for one
of its scenarios inside its pilot scope, and refused as out of scope at every such counter outside.

Nothing here names a counter: the cells are computed from ``data/``, so a new counter or a changed
scope is tested as soon as it is written down.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.forge import Kit, make_kit, ordered_codes
from verifier.adapters.catalogue_files import load_catalogue
from verifier.core.catalogue import PROVINCES, Catalogue, LicenceType
from verifier.issuer.mint import allowed_channels


@dataclass(frozen=True)
class Cell:
    """One licence type issued in one province, shown in one province's counters."""

    licence_type: str
    issuing: str
    counter_province: str
    shows: tuple[tuple[str, str], ...]  # (issuing unit, channel): every way an app may show it
    in_scope: tuple[tuple[str, str], ...]  # (counter, scenario): registered, inside the pilot scope
    out_of_scope: tuple[tuple[str, str], ...]  # (counter, scenario): registered, outside it
    whole_province: bool  # the scope is the whole counter province

    @property
    def id(self) -> str:
        """``driving-licence-SC-at-CQ``."""
        return f"{self.licence_type}-{self.issuing}-at-{self.counter_province}"

    @property
    def accepted_cases(self) -> int:
        """Decisions that must be accepted: every way of showing at every in-scope counter."""
        return len(self.shows) * len(self.in_scope)

    @property
    def out_of_scope_cases(self) -> int:
        """Decisions that must be OUT_OF_PILOT_SCOPE."""
        return len(self.shows) * len(self.out_of_scope)


def _cell(catalogue: Catalogue, lt: LicenceType, issuing: str, province: str) -> Cell:
    # A recognised row has both.
    assert lt.scenarios is not None
    assert lt.pilot_scope is not None
    scope = lt.pilot_scope[province]
    registered = [
        (counter, scenario)
        for counter in sorted(catalogue.counters.values(), key=lambda c: c.id)
        if counter.province == province
        for scenario in lt.scenarios
        if scenario in counter.scenarios
    ]
    return Cell(
        licence_type=lt.code,
        issuing=issuing,
        counter_province=province,
        shows=tuple(
            (unit, channel) for unit in lt.units_in(issuing) for channel in allowed_channels(catalogue, lt, issuing)
        ),
        in_scope=tuple((c.id, s) for c, s in registered if scope.covers(c.institution)),
        out_of_scope=tuple((c.id, s) for c, s in registered if not scope.covers(c.institution)),
        whole_province=scope.shape == "province",
    )


def cells(catalogue: Catalogue) -> list[Cell]:
    """Every recognised licence type × issuing province × counter province, in the list's order."""
    return [
        _cell(catalogue, lt, issuing, province)
        for lt in catalogue.by_seq()
        if lt.recognised
        for issuing in PROVINCES
        for province in PROVINCES
    ]


CELLS = cells(load_catalogue())


def _out_of_scope_params() -> list[object]:
    params: list[object] = []
    for cell in CELLS:
        if cell.whole_province:
            reason = f"whole-province scope: no counter of {cell.counter_province} is outside it"
            params.append(pytest.param(cell, id=cell.id, marks=pytest.mark.skip(reason=reason)))
        elif not cell.out_of_scope:
            reason = f"no counter of {cell.counter_province} registered for {cell.licence_type} is outside its scope"
            params.append(pytest.param(cell, id=cell.id, marks=pytest.mark.skip(reason=reason)))
        else:
            params.append(pytest.param(cell, id=cell.id))
    return params


@pytest.fixture(scope="module")
def kit(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """Keys of every issuing unit, created at NOW in a folder of this module's own."""
    return make_kit(catalogue, tmp_path_factory.mktemp("table-keys"))


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_accepted_inside_the_pilot_scope(kit: Kit, cell: Cell) -> None:
    """The licence, shown through every app allowed for its province, is accepted with no reason at
    every counter of the province registered for one of its scenarios inside its pilot scope."""
    assert cell.shows, f"no app may show {cell.licence_type} issued in {cell.issuing}"
    assert cell.in_scope, f"no counter of {cell.counter_province} in scope for {cell.licence_type}"
    failures = []
    for unit, channel in cell.shows:
        token = kit.mint(cell.licence_type, cell.issuing, channel, unit=unit).token
        for counter, scenario in cell.in_scope:
            decision = kit.decide(token, counter, scenario)
            if not decision.accepted or decision.reasons or decision.licence is None:
                failures.append((unit, channel, counter, scenario, ordered_codes(decision)))
    assert failures == []


@pytest.mark.parametrize("cell", _out_of_scope_params())
def test_out_of_pilot_scope(kit: Kit, cell: Cell) -> None:
    """The licence is refused with OUT_OF_PILOT_SCOPE, and only that, at every counter of the province
    registered for one of its scenarios but outside its pilot scope."""
    failures = []
    for unit, channel in cell.shows:
        token = kit.mint(cell.licence_type, cell.issuing, channel, unit=unit).token
        for counter, scenario in cell.out_of_scope:
            codes = ordered_codes(kit.decide(token, counter, scenario))
            if codes != ["OUT_OF_PILOT_SCOPE"]:
                failures.append((unit, channel, counter, scenario, codes))
    assert failures == []


@pytest.mark.parametrize("cell", [c for c in CELLS if c.whole_province], ids=lambda c: c.id)
def test_whole_province_scope_leaves_no_counter_out(catalogue: Catalogue, cell: Cell) -> None:
    """Where the pilot scope is the whole province, every counter of that province is inside it, so
    no out-of-scope case can exist."""
    lt = catalogue.licences[cell.licence_type]
    assert lt.pilot_scope is not None
    scope = lt.pilot_scope[cell.counter_province]
    assert scope.label_zh in ("四川全省范围内", "重庆全市范围内")
    counters = [c for c in catalogue.counters.values() if c.province == cell.counter_province]
    assert counters
    assert all(scope.covers(c.institution) for c in counters)
    assert cell.out_of_scope == ()


Row = tuple[str, str, str, int, int, int, str]


def summary(table: list[Cell]) -> list[Row]:
    """Rows of (type, issuing province, counter province, ways shown (unit × app), accepted cases,
    out-of-scope cases, n/a)."""
    return [
        (
            c.licence_type,
            c.issuing,
            c.counter_province,
            len(c.shows),
            c.accepted_cases,
            c.out_of_scope_cases,
            "n/a: whole province" if c.whole_province else ("n/a: none registered" if not c.out_of_scope else ""),
        )
        for c in table
    ]


def render(rows: list[Row]) -> str:
    """The summary as a plain text table with a totals line."""
    head = ("type", "issued", "counter", "shown", "accepted", "out-of-scope", "out-of-scope n/a")
    body = [tuple(map(str, r)) for r in rows]
    na = sum(1 for r in rows if r[6])
    total = ("total", "", "", "", str(sum(r[4] for r in rows)), str(sum(r[5] for r in rows)), f"{na} cells")
    widths = [max(len(line[i]) for line in [head, *body, total]) for i in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in [head, *body, total])


def test_summary_of_the_table(catalogue: Catalogue) -> None:
    """The table covers every recognised type in every direction, each cell has accepted cases, and a
    cell lacks out-of-scope cases only where the scope is the whole province."""
    rows = summary(cells(catalogue))
    print("\n" + render(rows))
    recognised = [lt for lt in catalogue.by_seq() if lt.recognised]
    assert len(rows) == len(recognised) * len(PROVINCES) ** 2
    assert {(r[0], r[1], r[2]) for r in rows} == {
        (lt.code, a, b) for lt in recognised for a in PROVINCES for b in PROVINCES
    }
    assert all(r[3] > 0 and r[4] > 0 for r in rows)
    for lt_code, _, province, _, _, out, na in rows:
        scope = catalogue.licences[lt_code].pilot_scope
        assert scope is not None
        assert (out == 0) == (na != ""), (lt_code, province)
        assert (na == "n/a: whole province") == (scope[province].shape == "province"), (lt_code, province)
    assert not any(r[6] == "n/a: none registered" for r in rows), "a limited scope without a counter outside it"
    # Both directions of mutual recognition are exercised for every type.
    for lt in recognised:
        assert {(r[1], r[2]) for r in rows if r[0] == lt.code and r[4]} >= {("SC", "CQ"), ("CQ", "SC")}
    # The totals are the decisions the two table tests make.
    assert sum(r[4] for r in rows) == sum(c.accepted_cases for c in CELLS)
    assert sum(r[5] for r in rows) == sum(c.out_of_scope_cases for c in CELLS if not c.whole_province)
