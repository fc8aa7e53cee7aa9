"""The five simulated apps and what each may show."""

from __future__ import annotations

import pytest

from verifier.core.catalogue import Catalogue
from verifier.errors import MintRefusedError
from verifier.issuer.apps import App, apps
from verifier.issuer.keys import KeyRing, KeyStore

NOW = 1_790_000_000


@pytest.fixture(scope="module")
def by_channel(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> dict[str, App]:
    """The apps, signing with keys of a folder of their own, on a fixed clock."""
    ring: KeyRing = KeyStore(catalogue.units.values(), tmp_path_factory.mktemp("app-keys")).keyring(NOW)
    return apps(catalogue, ring, clock=lambda: NOW)


def test_there_is_one_app_per_channel(by_channel: dict[str, App], catalogue: Catalogue) -> None:
    """Every channel of data/channels.toml has its app."""
    assert set(by_channel) == set(catalogue.channels)


def test_jiaoguan_12123_shows_driving_licences_of_both_provinces_only(by_channel: dict[str, App]) -> None:
    """交管12123 shows the driving licence of Sichuan and of Chongqing, and nothing else."""
    assert by_channel["jiaoguan-12123"].showable() == [("driving-licence", "SC"), ("driving-licence", "CQ")]


def test_provincial_apps_show_only_their_own_province(by_channel: dict[str, App]) -> None:
    """天府通办 and 四川人社 show only Sichuan licences; 渝快办 and 重庆人社 only Chongqing ones."""
    for code, province in (
        ("tianfu-tongban", "SC"),
        ("sichuan-renshe", "SC"),
        ("yukuaiban", "CQ"),
        ("chongqing-renshe", "CQ"),
    ):
        shown = by_channel[code].showable()
        assert shown, code
        assert {p for _, p in shown} == {province}, code
    assert {t for t, _ in by_channel["sichuan-renshe"].showable()} == {"social-security", "employment-cert"}


def test_an_app_presents_a_token_naming_itself(by_channel: dict[str, App]) -> None:
    """A token presented by 重庆人社 carries ch=chongqing-renshe and the app's clock."""
    minted = by_channel["chongqing-renshe"].present("employment-cert", "CQ", holder="李四")
    assert (minted.claims["ch"], minted.claims["iat"], minted.claims["hn"]) == ("chongqing-renshe", NOW, "李*")


def test_an_app_cannot_present_what_it_may_not_show(by_channel: dict[str, App]) -> None:
    """渝快办 asked for a Sichuan licence, or for a row whose channels were lost, is refused."""
    app = by_channel["yukuaiban"]
    assert not app.can_show("lawyer-licence", "SC")
    assert not app.can_show("vet-drug-production", "CQ")
    with pytest.raises(MintRefusedError, match="tianfu-tongban"):
        app.present("lawyer-licence", "SC")
    with pytest.raises(MintRefusedError, match="lost its channels"):
        app.present("vet-drug-production", "CQ")
