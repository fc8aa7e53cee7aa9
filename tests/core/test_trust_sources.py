"""The trust list's source provinces, pure: which keys a province's source may vouch for, and one list
made of several sources' lists."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from verifier.core.catalogue import Catalogue
from verifier.core.trust import TrustList, combine, vouched_by
from verifier.issuer.keys import KeyStore

NOW = 1_790_000_000


@pytest.fixture(scope="module")
def trust(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> TrustList:
    """One key of every issuing unit."""
    return KeyStore(catalogue.units.values(), Path(tmp_path_factory.mktemp("keys"))).trust_list(NOW)


@pytest.fixture(scope="module")
def homes(catalogue: Catalogue) -> dict[str, str]:
    """Each unit's province, as the catalogue says."""
    return {code: unit.province for code, unit in catalogue.units.items()}


@pytest.mark.parametrize("province", ["SC", "CQ"])
def test_a_province_s_source_vouches_for_its_own_units_only(
    trust: TrustList, homes: dict[str, str], province: str
) -> None:
    """Of a list holding every unit's key, a province's source keeps that province's and names each other one."""
    vouched = vouched_by(trust, province, homes)
    assert {k.province for k in vouched.keys.values()} == {province}
    assert {k.unit for k in vouched.keys.values()} == {u for u, p in homes.items() if p == province}
    foreign = sorted(kid for kid, k in trust.keys.items() if k.province != province)
    assert sorted(p.split("'")[1] for p in vouched.problems) == foreign
    assert all(f"from the {province} source" in p for p in vouched.problems)


def test_a_key_claiming_the_other_province_for_a_unit_is_refused(trust: TrustList, homes: dict[str, str]) -> None:
    """A key of 四川省公安厅 that says it is Chongqing's is refused even from a source for both provinces."""
    key = trust.keys["sc-police-1"]
    lying = TrustList({key.kid: replace(key, province="CQ")})
    for province in (None, "CQ"):
        vouched = vouched_by(lying, province, homes)
        assert vouched.keys == {}
        assert vouched.problems == ("kid 'sc-police-1': unit 'sc-police' is in SC, the key says CQ",)


def test_a_source_for_both_provinces_vouches_for_every_unit(trust: TrustList, homes: dict[str, str]) -> None:
    """One source for both provinces keeps every key whose unit and province agree."""
    assert vouched_by(trust, None, homes) == trust


def test_a_kid_two_sources_publish_is_trusted_from_neither(trust: TrustList, homes: dict[str, str]) -> None:
    """Combining the two provinces' lists gives every key once; a kid both publish is refused and named."""
    sc, cq = vouched_by(trust, "SC", homes), vouched_by(trust, "CQ", homes)
    assert combine([sc, cq]).keys == trust.keys
    assert combine([sc, cq]).problems == ()
    clash = TrustList({"cq-police-1": trust.keys["cq-police-1"], "sc-police-1": trust.keys["sc-police-1"]})
    merged = combine([sc, cq, clash])
    assert set(merged.keys) == set(trust.keys) - {"cq-police-1", "sc-police-1"}
    assert sorted(merged.problems) == [
        "kid 'cq-police-1': published by 2 sources, trusted from none",
        "kid 'sc-police-1': published by 2 sources, trusted from none",
    ]
