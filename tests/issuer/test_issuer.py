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
from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc

from verifier.adapters.catalogue_files import load_catalogue
from verifier.adapters.paths import schema_dir
from verifier.cli.issuer import QR_MAX_VERSION, qr_code
from verifier.core.catalogue import PROVINCES, Catalogue, Holder
from verifier.core.token import ALGORITHMS, CLAIM_TYPES, QR_MAX_BYTES, QR_VERSION, TYP, parse
from verifier.core.trust import TrustList, parse_trust_list
from verifier.errors import MintRefusedError, UsageError
from verifier.issuer.keys import KeyRing, KeyStore
from verifier.issuer.mint import MAX_TTL, allowed_channels, citizen_id, mask_name, mint, pseudonym

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


def test_every_token_fits_a_version_16_qr_code(catalogue: Catalogue, ring: KeyRing) -> None:
    """The token of every allowed combination, with a four-character name (or an organisation's long one),
    the default number of its kind and the data's sample attributes, is at most 450 bytes, and segno codes
    it at level M in version 16 or less."""
    sizes = {}
    for lt, province, unit, channel in CASES:
        holder = "欧阳娜娜" if catalogue.licences[lt].holder == "person" else "四川新希望六和饲料股份有限公司"
        minted = _mint(catalogue, ring, lt, province, channel, unit=unit, holder=holder)
        assert minted.size == len(minted.token) <= QR_MAX_BYTES == 450, (lt, province, unit, channel)
        qr = segno.make(minted.token, error="m", micro=False, boost_error=False)
        assert (qr.error, int(qr.version) <= QR_VERSION == 16) == ("M", True), (lt, province, unit, qr.version)
        sizes[lt, province, unit, channel] = minted.size
    assert len(sizes) == len(CASES) > 30


def test_a_token_past_its_qr_code_is_refused(
    catalogue: Catalogue, ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were a token ever larger than its QR code holds (here the budget is cut to 300 bytes), it is
    refused on licence_no, naming the limit in both languages."""
    monkeypatch.setattr("verifier.issuer.mint.QR_MAX_BYTES", 300)
    with pytest.raises(MintRefusedError) as caught:
        _mint(catalogue, ring, "driving-licence", "SC", "jiaoguan-12123")
    assert (caught.value.field, caught.value.allowed) == ("licence_no", ("at most 300 bytes in all",))
    message = str(caught.value)
    assert "超过二维码（版本16、纠错M）容量 300 字节" in message
    assert "more than the 300 of a version-16 QR code at level M" in message
    assert isinstance(caught.value, UsageError)


NUMBERS_OF_THEIR_KIND = [
    ("driving-licence", "SC", "jiaoguan-12123", "11010519491231002X"),  # GB 11643's own example
    ("social-security", "CQ", "yukuaiban", "440524188001010014"),  # ... and its other one
    ("lawyer-licence", "CQ", "yukuaiban", "15001201910123456"),
    ("road-transport", "SC", "tianfu-tongban", "510104123456"),
    ("feed-production", "SC", "tianfu-tongban", "91110000600037341L"),
    ("mineral", "CQ", "yukuaiban", "91500000MA5U4K8T0D"),
]


@pytest.mark.parametrize("case", NUMBERS_OF_THEIR_KIND, ids=[c[0] for c in NUMBERS_OF_THEIR_KIND])
def test_a_number_of_its_kind_mints(catalogue: Catalogue, ring: KeyRing, case: tuple[str, str, str, str]) -> None:
    """A real number of the type's kind is taken as it is."""
    licence_type, province, channel, number = case
    assert _mint(catalogue, ring, licence_type, province, channel, licence_no=number).claims["no"] == number


NOT_OF_THEIR_KIND = [
    ("driving-licence", "11010519491231002Y", "another check character"),
    ("driving-licence", "110105194912310021", "a wrong check digit"),
    ("driving-licence", "11010519491231002x", "a small x"),
    ("driving-licence", "11010519491331002X", "a 13th month"),
    ("driving-licence", "11010519491231002", "17 characters"),
    ("driving-licence", "510100123456", "a 12-digit file number"),
    ("driving-licence", "5" * 20, "20 characters"),
    ("lawyer-licence", "1500120191012345", "16 digits"),
    ("lawyer-licence", "1500120191012345６", "a full-width digit"),
    ("road-transport", "51010412345A", "a letter"),
    ("feed-production", "91110000600037341M", "a wrong check character"),
    ("feed-production", "91110000600O37341L", "the letter O, which GB 32100 leaves out"),
    ("feed-production", "91110000 600037341L", "a space"),
]


@pytest.mark.parametrize(("licence_type", "number", "label"), NOT_OF_THEIR_KIND, ids=[n[2] for n in NOT_OF_THEIR_KIND])
def test_a_number_not_of_its_kind_is_refused(
    catalogue: Catalogue, ring: KeyRing, licence_type: str, number: str, label: str
) -> None:
    """A number that is not of its type's kind is refused on licence_no, naming the kind in both languages."""
    lt = catalogue.licences[licence_type]
    channel = allowed_channels(catalogue, lt, "SC")[0]
    with pytest.raises(MintRefusedError) as caught:
        _mint(catalogue, ring, licence_type, "SC", channel, licence_no=number)
    assert caught.value.field == "licence_no", label
    assert f"{licence_type} 的证照编号须为" in str(caught.value)
    assert f"a {licence_type} number is " in str(caught.value)


def test_tokens_match_the_json_schema(catalogue: Catalogue, ring: KeyRing) -> None:
    """Header and claims of a token of every combination are valid against schemas/presentation-token.schema.json."""
    schema = json.loads((schema_dir() / "presentation-token.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for lt, province, unit, channel in CASES:
        holder = "欧阳娜娜" if catalogue.licences[lt].holder == "person" else "成都市图书馆发展有限公司"
        parsed = parse(_mint(catalogue, ring, lt, province, channel, unit=unit, holder=holder).token)
        errors = [e.message for e in validator.iter_errors({"header": parsed.header, "claims": parsed.claims})]
        assert errors == [], (lt, province, channel)
    assert parsed.claims["hn"] in ("欧阳**", "成都**公司")
    # A name in clear or masked otherwise, and each claim as the format before day numbers and seqs wrote it,
    # are invalid.
    wrong = [
        ("hn", "欧阳娜娜"),
        ("hn", "欧阳娜*"),
        ("hn", "欧****"),
        ("hn", "成都市图书馆发展有限公司"),
        ("no", "5101 0419"),
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
    [
        ("张三", "张*"),
        ("张三丰", "张**"),
        ("欧阳娜娜", "欧阳**"),
        ("司马光", "司马*"),
        ("欧阳", "欧*"),  # a two-character name is a surname and a given name, whatever they spell
        ("爱新觉罗溥仪", "爱***"),
        ("A" * 16, "A***"),
    ],
)
def test_holder_names_are_masked(name: str, masked: str) -> None:
    """The surname (a compound one whole) stays readable, then one star for each further character, at
    most three."""
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("四川天府实业有限公司", "四川**公司"),
        ("成都蜀锦（集团）有限公司", "成都**公司"),
        ("重庆渝中书店", "重庆**书店"),
    ],
)
def test_organisation_names_are_masked(name: str, masked: str) -> None:
    """An organisation keeps its first two and last two characters around two stars."""
    assert mask_name(name, "organisation") == masked


@pytest.mark.parametrize(
    ("name", "kind"), [("张", "person"), ("华为公司", "organisation"), ("四 川实业公司", "organisation")]
)
def test_a_name_too_short_to_mask_is_refused(name: str, kind: Holder) -> None:
    """A name too short to mask, or one whose kept characters include a space, is a refusal, not a token
    with the name in clear."""
    with pytest.raises(MintRefusedError) as caught:
        mask_name(name, kind)
    assert caught.value.field == "holder"


def test_subject_is_a_stable_pseudonym(catalogue: Catalogue, ring: KeyRing) -> None:
    """The same holder and licence number give the same 8-character subject; another number gives another."""
    first, second = citizen_id(1, "CQ"), citizen_id(2, "CQ")
    a = _mint(catalogue, ring, "social-security", "CQ", "chongqing-renshe", holder="李四", licence_no=first)
    b = _mint(catalogue, ring, "social-security", "CQ", "yukuaiban", holder="李四", licence_no=first)
    c = _mint(catalogue, ring, "social-security", "CQ", "yukuaiban", holder="李四", licence_no=second)
    assert a.claims["sub"] == b.claims["sub"] != c.claims["sub"]
    assert re.fullmatch(r"[a-z2-7]{8}", a.claims["sub"])
    assert a.claims["sub"] == pseudonym(ring.subject_secret, "李四", first)
    assert a.claims["sub"] != pseudonym(b"another state", "李四", first)


def test_every_token_has_a_fresh_jti(catalogue: Catalogue, ring: KeyRing) -> None:
    """Two tokens of the same licence carry different 11-character base64url ids of 8 random bytes."""
    jtis = {_mint(catalogue, ring, "employment-cert", "SC", "sichuan-renshe").claims["jti"] for _ in range(20)}
    assert len(jtis) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{11}", j) for j in jtis)
    assert all(len(base64.urlsafe_b64decode(j + "=")) == 8 for j in jtis)


def test_synthetic_licence_numbers_are_of_their_kind_and_stable(catalogue: Catalogue, ring: KeyRing) -> None:
    """Without a number, a holder's licence gets the same number of its type's kind each time: a citizen ID
    number of the province's sample district with its check character, a credit code registered there, or
    the type's own digits starting with the province's code."""
    first = _mint(catalogue, ring, "road-transport", "CQ", "yukuaiban", holder="王五实业有限公司").claims["no"]
    again = _mint(catalogue, ring, "road-transport", "CQ", "yukuaiban", holder="王五实业有限公司").claims["no"]
    other = _mint(catalogue, ring, "road-transport", "CQ", "yukuaiban", holder="赵六运输有限公司").claims["no"]
    assert first == again != other
    assert re.fullmatch(r"50\d{10}", first)
    sichuan = _mint(catalogue, ring, "road-transport", "SC", "tianfu-tongban", holder="王五实业有限公司").claims["no"]
    assert re.fullmatch(r"51\d{10}", sichuan)
    person = _mint(catalogue, ring, "driving-licence", "SC", "jiaoguan-12123", holder="王五").claims["no"]
    assert person.startswith("510104")
    assert stdnum_ric.calc_check_digit(person) == person[-1]
    assert 1960 <= stdnum_ric.get_birth_date(person).year <= 2004
    company = _mint(catalogue, ring, "feed-production", "CQ", "yukuaiban").claims["no"]
    assert company.startswith("91500103")
    assert stdnum_uscc.is_valid(company)


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
    """A token written as a level-M PNG QR code of version 16 or less by segno is read back unchanged by zxing-cpp."""
    token = _mint(catalogue, ring, "driving-licence", "SC", "jiaoguan-12123", holder="欧阳娜娜").token
    qr = qr_code(token)
    assert (qr.error, qr.is_micro, int(qr.version) <= 16) == ("M", False, True)
    path = tmp_path / "token.png"
    qr.save(path, kind="png", scale=4, border=4)
    image = Image.open(io.BytesIO(path.read_bytes()))
    assert [b.text for b in zxingcpp.read_barcodes(image)] == [token]


def test_qr_codes_above_version_16_are_refused() -> None:
    """450 bytes still fit a version-16 level-M code; 451 bytes are refused naming the 450-byte capacity. The
    command line's limit is the token's."""
    assert QR_MAX_VERSION == QR_VERSION
    assert qr_code("a" * QR_MAX_BYTES).version == 16
    assert segno.make("a" * (QR_MAX_BYTES + 1), error="m", boost_error=False).version == 17
    with pytest.raises(UsageError, match=r"451 bytes.*holds 450"):
        qr_code("a" * (QR_MAX_BYTES + 1))
