"""Minting presentation tokens: what the catalogue allows, what it refuses, and what a token holds."""

from __future__ import annotations

import base64
import io
import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import segno
import zxingcpp
from jsonschema import Draft202012Validator
from PIL import Image

from verifier.adapters.catalogue_files import load_catalogue
from verifier.adapters.paths import schema_dir
from verifier.cli.issuer import qr_code
from verifier.core.catalogue import PROVINCES, Catalogue
from verifier.core.token import ALGORITHMS, CLAIM_TYPES, QR_MAX_BYTES, TYP, parse
from verifier.core.trust import TrustList, parse_trust_list
from verifier.errors import MintRefusedError, UsageError
from verifier.issuer.keys import KeyRing, KeyStore
from verifier.issuer.mint import MAX_TTL, mask_name, mint, pseudonym

NOW = 1_790_000_000  # 2026-09-21 22:13 in Beijing
EPOCH = date(1970, 1, 1)  # a token's vf and vu count days from here


class Case(NamedTuple):
    """One licence of one unit, shown through one app."""

    licence_type: str
    province: str
    unit: str
    channel: str


def _cases() -> list[Case]:
    """One case per mintable licence type x province x issuing unit x channel that may show it."""
    cat = load_catalogue()
    return [
        Case(lt.code, province, unit, channel)
        for lt in cat.by_seq()
        if lt.mintable
        for province in PROVINCES
        for unit in lt.units_in(province)
        for channel in lt.channels or ()
        if cat.channels[channel].may_show(province)
    ]


CASES = _cases()
IDS = ["-".join(c) for c in CASES]


@pytest.fixture(scope="module")
def keys(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    """Keys of every unit, created at NOW in a folder of this module's own."""
    store = KeyStore(catalogue.units.values(), tmp_path_factory.mktemp("issuer-keys"))
    store.keyring(NOW)
    return store


@pytest.fixture(scope="module")
def ring(keys: KeyStore) -> KeyRing:
    """The key ring at NOW."""
    return keys.keyring(NOW)


@pytest.fixture(scope="module")
def published(keys: KeyStore) -> TrustList:
    """The trust list as published in jwks.json."""
    return parse_trust_list(json.loads((keys.directory / "jwks.json").read_text(encoding="utf-8")))


def _mint(catalogue: Catalogue, ring: KeyRing, licence_type: str, province: str, channel: str, **kw: Any) -> Any:
    return mint(catalogue, ring, licence_type=licence_type, province=province, channel=channel, now=NOW, **kw)


def test_the_table_covers_every_app_and_both_provinces() -> None:
    """The cases include every channel, both provinces, and both units of library cards in Sichuan."""
    assert len(IDS) == len(set(IDS)) > 30
    for fragment in ("jiaoguan-12123", "sichuan-renshe", "chongqing-renshe", "-SC-", "-CQ-", "sc-cdlib"):
        assert any(fragment in i for i in IDS), fragment
    assert not any(i.startswith(("vet-drug-production", "row-")) for i in IDS)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_allowed_combination_mints_a_token_that_verifies(
    catalogue: Catalogue, ring: KeyRing, published: TrustList, case: Case
) -> None:
    """The token mints, names its unit, province, type and channel, and verifies with the unit's published key."""
    licence_type, province, unit, channel = case
    minted = _mint(catalogue, ring, licence_type, province, channel, unit=unit)
    parsed = parse(minted.token)
    key = published.keys[parsed.header["kid"]]
    assert (key.unit, key.province) == (unit, province)
    assert ALGORITHMS[key.alg].verify(parsed.signing_input, key.public_key, parsed.signature)
    assert parsed.header == {"alg": key.alg, "kid": key.kid, "typ": TYP}
    assert parsed.claims == minted.claims
    assert {n: type(parsed.claims[n]) for n in CLAIM_TYPES} == CLAIM_TYPES
    assert (parsed.claims["iss"], parsed.claims["prv"], parsed.claims["lt"], parsed.claims["ch"]) == (
        unit, province, catalogue.licences[licence_type].seq, channel
    )  # fmt: skip
    named = catalogue.licence_by_seq(parsed.claims["lt"])
    assert named is not None
    assert named.code == licence_type
    assert parsed.claims["exp"] - parsed.claims["iat"] == 300 == minted.expires_at - NOW


def test_every_token_fits_a_version_15_qr_code(catalogue: Catalogue, ring: KeyRing) -> None:
    """The token of every allowed combination, with a four-character name, the default licence number
    and the data's sample attributes, is at most 412 bytes, and segno codes it at level M in version 15 or less."""
    sizes = {}
    for lt, province, unit, channel in CASES:
        minted = _mint(catalogue, ring, lt, province, channel, unit=unit, holder="欧阳娜娜")
        assert minted.size == len(minted.token) <= QR_MAX_BYTES, (lt, province, unit, channel)
        qr = segno.make(minted.token, error="m", micro=False, boost_error=False)
        assert (qr.error, int(qr.version) <= 15) == ("M", True), (lt, province, unit, channel, qr.version)
        sizes[lt, province, unit, channel] = minted.size
    assert len(sizes) == len(CASES) > 30


@pytest.mark.parametrize(
    ("licence_type", "channel"), [("driving-licence", "jiaoguan-12123"), ("sports-instructor", "tianfu-tongban")]
)
def test_a_licence_number_too_long_for_the_qr_code_is_refused(
    catalogue: Catalogue, ring: KeyRing, licence_type: str, channel: str
) -> None:
    """A 20-character licence number is well formed but makes the token too large for a version-15 QR
    code: it is refused on licence_no, naming the 412-byte limit in both languages."""
    with pytest.raises(MintRefusedError) as caught:
        _mint(catalogue, ring, licence_type, "SC", channel, licence_no="5" * 20)
    assert (caught.value.field, caught.value.allowed) == ("licence_no", ("at most 412 bytes in all",))
    message = str(caught.value)
    assert "容量 412 字节" in message
    assert "more than the 412 of a version-15 QR code at level M" in message
    assert isinstance(caught.value, UsageError)


def test_the_limit_is_the_tokens_size_not_the_numbers_length(catalogue: Catalogue, ring: KeyRing) -> None:
    """A Chongqing library card, with shorter codes and no attribute, still fits with a 20-character number."""
    minted = _mint(catalogue, ring, "library-card", "CQ", "yukuaiban", licence_no="5" * 20)
    assert minted.claims["no"] == "5" * 20
    assert minted.size <= QR_MAX_BYTES


def test_licence_numbers_fit_up_to_the_qr_limit_and_not_beyond(catalogue: Catalogue, ring: KeyRing) -> None:
    """Licence numbers of 1 character up to some length mint, every one at most 412 bytes; from one
    character more on, each is refused on licence_no. The default 10-character number is among those that fit."""
    fits, refused, fields = [], [], set()
    for length in range(1, 33):
        try:
            minted = _mint(catalogue, ring, "driving-licence", "SC", "jiaoguan-12123", licence_no="5" * length)
        except MintRefusedError as exc:
            fields.add(exc.field)
            refused.append(length)
        else:
            assert minted.size <= QR_MAX_BYTES
            fits.append(length)
    assert fits == list(range(1, len(fits) + 1))
    assert refused == list(range(len(fits) + 1, 33))
    assert fields == {"licence_no"}
    assert 10 <= len(fits) < 20


def test_tokens_match_the_json_schema(catalogue: Catalogue, ring: KeyRing) -> None:
    """Header and claims of a token of every combination are valid against schemas/presentation-token.schema.json."""
    schema = json.loads((schema_dir() / "presentation-token.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for lt, province, unit, channel in CASES:
        parsed = parse(_mint(catalogue, ring, lt, province, channel, unit=unit, holder="欧阳娜娜").token)
        errors = [e.message for e in validator.iter_errors({"header": parsed.header, "claims": parsed.claims})]
        assert errors == [], (lt, province, channel)
    assert parsed.claims["hn"] == "欧*"
    # A name in clear, and each claim as the format before day numbers and seqs wrote it, are invalid.
    wrong = [
        ("hn", "欧阳娜娜"),
        ("hn", "欧阳**"),
        ("lt", "driving-licence"),
        ("vf", 20250601),
        ("sub", "abcdefghij"),
        ("jti", "abcdefghijkl"),
    ]
    for name, value in wrong:
        assert not validator.is_valid({"header": parsed.header, "claims": {**parsed.claims, name: value}}), name


def test_a_channel_the_row_does_not_name_is_refused_naming_allowed(catalogue: Catalogue, ring: KeyRing) -> None:
    """A driving licence shown through 渝快办 is refused, and the message names jiaoguan-12123 (交管12123)."""
    with pytest.raises(MintRefusedError) as caught:
        _mint(catalogue, ring, "driving-licence", "SC", "yukuaiban")
    assert (caught.value.field, caught.value.allowed) == ("channel", ("jiaoguan-12123",))
    assert "jiaoguan-12123" in str(caught.value)
    assert "交管12123" in str(caught.value)
    assert isinstance(caught.value, UsageError)


def test_yukuaiban_cannot_show_a_sichuan_licence(catalogue: Catalogue, ring: KeyRing) -> None:
    """渝快办 is Chongqing's app: a Sichuan lawyer's licence through it is refused, naming 天府通办 instead."""
    with pytest.raises(MintRefusedError, match="渝快办只能亮示重庆") as caught:
        _mint(catalogue, ring, "lawyer-licence", "SC", "yukuaiban")
    assert caught.value.allowed == ("tianfu-tongban",)


def test_jiaoguan_12123_shows_licences_of_both_provinces(catalogue: Catalogue, ring: KeyRing) -> None:
    """The national 交管12123 shows a Chongqing driving licence as well as a Sichuan one."""
    for province, unit in (("SC", "sc-police"), ("CQ", "cq-police")):
        assert _mint(catalogue, ring, "driving-licence", province, "jiaoguan-12123").claims["iss"] == unit


def test_row_7_is_refused_because_its_channels_were_lost(catalogue: Catalogue, ring: KeyRing) -> None:
    """兽药生产许可证 (row 7) cannot be minted: the source lost its channels, and the message says so."""
    with pytest.raises(MintRefusedError, match="亮证渠道") as caught:
        _mint(catalogue, ring, "vet-drug-production", "SC", "tianfu-tongban")
    assert "lost its channels" in str(caught.value)
    assert "vet-drug-production" not in caught.value.allowed
    assert "feed-production" in caught.value.allowed


def test_row_10_is_refused_because_it_was_lost_whole(catalogue: Catalogue, ring: KeyRing) -> None:
    """Row 10 cannot be minted: the source lost its issuing units and channels."""
    with pytest.raises(MintRefusedError, match="lost its issuing units and channels"):
        _mint(catalogue, ring, "row-10", "CQ", "yukuaiban")


def test_an_unknown_type_is_refused_listing_the_mintable_ones(catalogue: Catalogue, ring: KeyRing) -> None:
    """An unknown licence type is refused with the list of types that can be minted."""
    with pytest.raises(MintRefusedError, match="unknown licence type") as caught:
        _mint(catalogue, ring, "passport", "SC", "tianfu-tongban")
    assert caught.value.allowed[0] == "driving-licence"


def test_ttl_is_capped(catalogue: Catalogue, ring: KeyRing) -> None:
    """A ttl of 600 s mints; 601 s is refused naming the cap."""
    assert _mint(catalogue, ring, "tour-guide", "CQ", "yukuaiban", ttl=MAX_TTL).expires_at == NOW + 600
    with pytest.raises(MintRefusedError, match="600"):
        _mint(catalogue, ring, "tour-guide", "CQ", "yukuaiban", ttl=601)


def test_a_province_with_two_library_units_lets_the_caller_choose(catalogue: Catalogue, ring: KeyRing) -> None:
    """A Sichuan library card comes from sc-lib unless sc-cdlib (成都图书馆) is chosen; a Chongqing unit is refused."""
    assert _mint(catalogue, ring, "library-card", "SC", "tianfu-tongban").kid == "sc-lib-1"
    assert _mint(catalogue, ring, "library-card", "SC", "tianfu-tongban", unit="sc-cdlib").kid == "sc-cdlib-1"
    with pytest.raises(MintRefusedError) as caught:
        _mint(catalogue, ring, "library-card", "SC", "tianfu-tongban", unit="cq-lib")
    assert caught.value.allowed == ("sc-lib", "sc-cdlib")


@pytest.mark.parametrize(
    ("name", "masked"),
    [("张三", "张*"), ("张三丰", "张*"), ("欧阳娜娜", "欧*"), ("爱新觉罗溥仪", "爱*"), ("A" * 16, "A*")],
)
def test_holder_names_are_masked(name: str, masked: str) -> None:
    """Only the first character stays readable, followed by one star whatever the length: the mask hides
    the length too."""
    assert mask_name(name) == masked


def test_a_one_character_name_is_refused() -> None:
    """A name too short to mask is a refusal, not a token with the name in clear."""
    with pytest.raises(MintRefusedError, match="holder"):
        mask_name("张")


def test_subject_is_a_stable_pseudonym(catalogue: Catalogue, ring: KeyRing) -> None:
    """The same holder and licence number give the same 8-character subject; another number gives another."""
    a = _mint(catalogue, ring, "social-security", "CQ", "chongqing-renshe", holder="李四", licence_no="CQ00000001")
    b = _mint(catalogue, ring, "social-security", "CQ", "yukuaiban", holder="李四", licence_no="CQ00000001")
    c = _mint(catalogue, ring, "social-security", "CQ", "yukuaiban", holder="李四", licence_no="CQ00000002")
    assert a.claims["sub"] == b.claims["sub"] != c.claims["sub"]
    assert re.fullmatch(r"[a-z2-7]{8}", a.claims["sub"])
    assert a.claims["sub"] == pseudonym(ring.subject_secret, "李四", "CQ00000001")
    assert a.claims["sub"] != pseudonym(b"another state", "李四", "CQ00000001")


def test_every_token_has_a_fresh_jti(catalogue: Catalogue, ring: KeyRing) -> None:
    """Two tokens of the same licence carry different 11-character base64url ids of 8 random bytes."""
    jtis = {_mint(catalogue, ring, "employment-cert", "SC", "sichuan-renshe").claims["jti"] for _ in range(20)}
    assert len(jtis) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{11}", j) for j in jtis)
    assert all(len(base64.urlsafe_b64decode(j + "=")) == 8 for j in jtis)


def test_synthetic_licence_numbers_are_short_and_stable(catalogue: Catalogue, ring: KeyRing) -> None:
    """Without a number, a holder's licence gets the same 10-character number each time: its province and 8 digits."""
    first = _mint(catalogue, ring, "road-transport", "CQ", "yukuaiban", holder="王五").claims["no"]
    again = _mint(catalogue, ring, "road-transport", "CQ", "yukuaiban", holder="王五").claims["no"]
    other = _mint(catalogue, ring, "road-transport", "CQ", "yukuaiban", holder="赵六").claims["no"]
    assert first == again != other
    assert re.fullmatch(r"CQ\d{8}", first)
    sichuan = _mint(catalogue, ring, "road-transport", "SC", "tianfu-tongban", holder="王五").claims["no"]
    assert re.fullmatch(r"SC\d{8}", sichuan)


def test_licence_validity_defaults_and_overrides(catalogue: Catalogue, ring: KeyRing) -> None:
    """Validity defaults to a year back and five years ahead of today in Beijing; given dates are used as
    is. Both are written as day numbers, days since 1970-01-01."""
    claims = _mint(catalogue, ring, "art-dealer", "SC", "tianfu-tongban").claims
    assert (claims["vf"], claims["vu"]) == (20352, 22543)
    assert (EPOCH + timedelta(days=20352), EPOCH + timedelta(days=22543)) == (date(2025, 9, 21), date(2031, 9, 21))
    given = _mint(
        catalogue, ring, "art-dealer", "SC", "tianfu-tongban", valid_from=date(2020, 1, 1), valid_until=date(2021, 1, 1)
    ).claims
    assert (given["vf"], given["vu"]) == (18262, 18628)
    assert (EPOCH + timedelta(days=18262), EPOCH + timedelta(days=18628)) == (date(2020, 1, 1), date(2021, 1, 1))
    backwards = {"valid_from": date(2021, 1, 1), "valid_until": date(2020, 1, 1)}
    with pytest.raises(MintRefusedError, match="ends before it starts"):
        _mint(catalogue, ring, "art-dealer", "SC", "tianfu-tongban", **backwards)


def test_type_attributes_come_from_the_data(catalogue: Catalogue, ring: KeyRing) -> None:
    """A driving licence carries cls, a sports instructor certificate lvl, a lawyer's licence neither."""
    dl = _mint(catalogue, ring, "driving-licence", "CQ", "jiaoguan-12123", attributes={"cls": "A1"})
    assert dl.claims["cls"] == "A1"
    assert _mint(catalogue, ring, "sports-instructor", "SC", "tianfu-tongban").claims["lvl"] == "1"
    assert not {"cls", "lvl"} & _mint(catalogue, ring, "lawyer-licence", "CQ", "yukuaiban").claims.keys()
    with pytest.raises(MintRefusedError, match="has no attribute 'cls'"):
        _mint(catalogue, ring, "lawyer-licence", "CQ", "yukuaiban", attributes={"cls": "A1"})


def test_a_token_round_trips_through_a_qr_code(catalogue: Catalogue, ring: KeyRing, tmp_path: Path) -> None:
    """A token written as a level-M PNG QR code of version 15 or less by segno is read back unchanged by zxing-cpp."""
    token = _mint(catalogue, ring, "driving-licence", "SC", "jiaoguan-12123", holder="欧阳娜娜").token
    qr = qr_code(token)
    assert (qr.error, qr.is_micro, int(qr.version) <= 15) == ("M", False, True)
    path = tmp_path / "token.png"
    qr.save(path, kind="png", scale=4, border=4)
    image = Image.open(io.BytesIO(path.read_bytes()))
    assert [b.text for b in zxingcpp.read_barcodes(image)] == [token]


def test_qr_codes_above_version_15_are_refused() -> None:
    """412 bytes still fit a version-15 level-M code; 413 bytes are refused naming the 412-byte capacity."""
    assert qr_code("a" * QR_MAX_BYTES).version == 15
    assert segno.make("a" * (QR_MAX_BYTES + 1), error="m", boost_error=False).version == 16
    with pytest.raises(UsageError, match=r"413 bytes.*holds 412"):
        qr_code("a" * (QR_MAX_BYTES + 1))
