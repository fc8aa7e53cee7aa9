"""The token's shape: a token signed by a genuine issuing unit's key but not written as the issuer writes
tokens — a name in clear, a licence number not of its type's kind, more bytes than its QR code holds, a
claim of another form or one the issuer never writes — is rejected with TOKEN_SHAPE_INVALID, names no
licence, and leaves nothing of what it says in a stored scan.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from jsonschema import Draft202012Validator

from tests.forge import Kit, codes, make_kit
from tests.helpers import ServerFactory
from tests.redis_server import RedisServer
from tests.scenes import Scene
from verifier.adapters.paths import schema_dir
from verifier.core.catalogue import Catalogue, NumberFormat
from verifier.core.reasons import Reason
from verifier.core.shape import COMPOUND_SURNAMES, MAX_STARS, holder_masked, number_problem, shape_problems
from verifier.core.token import CLAIM_TYPES, QR_MAX_BYTES
from verifier.issuer.mint import citizen_id
from verifier.service.settings import Settings

PERSON_NUMBER = "11010519491231002X"  # GB 11643's own example
COMPANY_NUMBER = "91110000600037341L"  # a real-format 统一社会信用代码 with its check character


@pytest.fixture(scope="module")
def kit(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """Every unit's key at NOW; the Sichuan agriculture department signs with SM2."""
    return make_kit(catalogue, tmp_path_factory.mktemp("shape-keys"), rotate={"sc-agri": "SM2"})


@dataclass(frozen=True)
class Misshapen:
    """A genuinely signed token off the issuer's shape, and what must not show in its reason."""

    id: str
    build: Callable[[Kit], str]
    secret: str = ""  # a value of the token that the rejection's detail must not repeat


def _driving(kit: Kit, **changes: Any) -> str:
    """A Sichuan driving licence with ``changes``, signed by the Sichuan police's own key."""
    return kit.forge(kit.claims(**changes), unit="sc-police")


def _feed(kit: Kit, **changes: Any) -> str:
    """A Sichuan feed production licence (an organisation's) with ``changes``, signed by its SM2 key."""
    return kit.forge({**kit.mint("feed-production", "SC", "tianfu-tongban").claims, **changes})


MISSHAPEN = [
    Misshapen("name-in-clear", lambda kit: _driving(kit, hn="欧阳娜娜"), "欧阳娜娜"),
    Misshapen("name-in-clear-two-characters", lambda kit: _driving(kit, hn="张三"), "张三"),
    Misshapen("given-name-half-shown", lambda kit: _driving(kit, hn="张三*"), "张三*"),
    Misshapen("compound-surname-and-a-given-character", lambda kit: _driving(kit, hn="欧阳娜*"), "欧阳娜*"),
    Misshapen("surname-hidden-given-name-shown", lambda kit: _driving(kit, hn="*三"), "*三"),
    Misshapen("four-stars", lambda kit: _driving(kit, hn="张****")),
    Misshapen("only-stars", lambda kit: _driving(kit, hn="**")),
    Misshapen("a-persons-licence-with-an-organisations-mask", lambda kit: _driving(kit, hn="四川**公司")),
    Misshapen("company-name-in-clear", lambda kit: _feed(kit, hn="四川新希望饲料有限公司"), "新希望"),
    Misshapen("a-company-masked-as-a-person", lambda kit: _feed(kit, hn="四*")),
    Misshapen("citizen-id-wrong-check-digit", lambda kit: _driving(kit, no="110105194912310021"), "110105194912310021"),
    Misshapen("citizen-id-small-x", lambda kit: _driving(kit, no="11010519491231002x"), "11010519491231002x"),
    Misshapen("citizen-id-no-such-day", lambda kit: _driving(kit, no="110105194902300023")),
    Misshapen("citizen-id-file-number-instead", lambda kit: _driving(kit, no="510100123456"), "510100123456"),
    Misshapen("citizen-id-with-a-space", lambda kit: _driving(kit, no="110105 19491231002X")),
    Misshapen("credit-code-wrong-check", lambda kit: _feed(kit, no="91110000600037341M"), "91110000600037341M"),
    Misshapen("credit-code-with-letter-i", lambda kit: _feed(kit, no="91110000600I37341L")),
    Misshapen("credit-code-for-a-persons-number", lambda kit: _feed(kit, no=PERSON_NUMBER)),
    Misshapen("jti-one-character-long", lambda kit: _driving(kit, jti="AAAAAAAAAAAA")),
    Misshapen("jti-with-a-dot", lambda kit: _driving(kit, jti="AAAAA.AAAAA")),
    Misshapen("sub-an-id-number", lambda kit: _driving(kit, sub=PERSON_NUMBER), PERSON_NUMBER),
    Misshapen("sub-in-capitals", lambda kit: _driving(kit, sub="ABCDEFGH")),
    Misshapen("iss-in-capitals", lambda kit: _driving(kit, iss="SC-POLICE"), "SC-POLICE"),
    Misshapen("iss-a-name-and-number", lambda kit: _driving(kit, iss=f"欧阳娜娜{PERSON_NUMBER}"), PERSON_NUMBER),
    Misshapen("validity-ends-before-it-starts", lambda kit: _driving(kit, vf=20000, vu=19999)),
    Misshapen("an-extra-claim-with-the-name", lambda kit: _driving(kit, name="张三丰"), "张三丰"),
    Misshapen("the-class-missing", lambda kit: _driving(kit, cls=None)),
    Misshapen("the-class-too-long", lambda kit: _driving(kit, cls="C1C2C3C4D")),
    Misshapen(
        "the-456-byte-token-of-the-report",  # a name in clear, and 30 bytes past the QR code
        lambda kit: _driving(kit, hn="欧阳娜娜", cls="C1", vf=1, vu=2_932_000, note="x" * 11),
        "欧阳娜娜",
    ),
]


def test_the_misshapen_tokens_are_distinct() -> None:
    """Each misshapen token is in the table once."""
    ids = [m.id for m in MISSHAPEN]
    assert len(ids) == len(set(ids)) >= 25


@pytest.mark.parametrize("case", MISSHAPEN, ids=lambda m: m.id)
def test_a_misshapen_token_is_rejected(kit: Kit, case: Misshapen) -> None:
    """The genuinely signed token is TOKEN_SHAPE_INVALID, with no other reason about its signature or key,
    names no licence, and no reason's detail repeats what it said."""
    decision = kit.decide(case.build(kit), scenario="notary-driving-licence")
    assert "TOKEN_SHAPE_INVALID" in codes(decision), decision.reasons
    assert not codes(decision) & {"SIGNATURE_INVALID", "KEY_UNKNOWN", "ALGORITHM_NOT_ALLOWED", "CLAIMS_INVALID"}
    assert (decision.licence, decision.jti, decision.expires_at) == (None, None, None)
    assert not case.secret or all(case.secret not in r.detail for r in decision.reasons), decision.reasons


def test_the_456_byte_token_is_named_for_both_faults(kit: Kit) -> None:
    """The report's token: 456 bytes and a name in clear; the detail says both, the name neither."""
    token = next(m for m in MISSHAPEN if m.id.startswith("the-456")).build(kit)
    assert len(token) == 456
    [reason] = [r for r in kit.decide(token).reasons if r.code == "TOKEN_SHAPE_INVALID"]
    assert "the token is 456 bytes, more than the 450 its QR code holds" in reason.detail
    assert "hn is not a masked name" in reason.detail
    assert "1 claims the issuer does not write" in reason.detail


def test_the_reason_has_words_for_people() -> None:
    """TOKEN_SHAPE_INVALID is a stable code with a Chinese and an English message."""
    reason = Reason("TOKEN_SHAPE_INVALID")
    assert "姓名未脱敏" in reason.message_zh
    assert "unmasked name" in reason.message_en


@pytest.mark.parametrize(
    "shown",
    [
        ("driving-licence", "SC", "jiaoguan-12123", "欧阳娜娜", PERSON_NUMBER),
        ("feed-production", "SC", "tianfu-tongban", "四川新希望六和饲料股份有限公司", COMPANY_NUMBER),
        ("lawyer-licence", "CQ", "yukuaiban", "司马光", "15001201910123456"),
    ],
    ids=lambda shown: shown[0],
)
def test_a_token_as_the_issuer_writes_it_passes(kit: Kit, shown: tuple[str, str, str, str, str]) -> None:
    """The control: the issuer's own tokens (ES256 and SM2, a person's and an organisation's) are of the shape."""
    licence_type, province, channel, holder, number = shown
    minted = kit.mint(licence_type, province, channel, holder=holder, licence_no=number)
    lt = kit.catalogue.licences[licence_type]
    assert shape_problems(minted.claims, CLAIM_TYPES.keys(), lt, minted.size) == []


def test_the_size_rule_alone(kit: Kit) -> None:
    """A token of the issuer's shape in every claim is still refused one byte past its QR code."""
    minted = kit.mint()
    lt = kit.catalogue.licences["driving-licence"]
    assert shape_problems(minted.claims, CLAIM_TYPES.keys(), lt, QR_MAX_BYTES) == []
    assert shape_problems(minted.claims, CLAIM_TYPES.keys(), lt, QR_MAX_BYTES + 1) == [
        "the token is 451 bytes, more than the 450 its QR code holds"
    ]


@pytest.mark.parametrize(
    ("number", "kind", "good"),
    [
        (PERSON_NUMBER, NumberFormat("citizen-id"), True),
        ("440524188001010014", NumberFormat("citizen-id"), True),
        ("440524188002300013", NumberFormat("citizen-id"), False),  # 30 February, check digit right
        ("040524188001010014", NumberFormat("citizen-id"), False),  # no address code starts with 0
        ("４40524188001010014", NumberFormat("citizen-id"), False),  # a full-width digit
        (COMPANY_NUMBER, NumberFormat("uscc"), True),
        ("91110000600037341l", NumberFormat("uscc"), False),
        ("9111000060003734", NumberFormat("uscc"), False),
        ("510104123456", NumberFormat("digits", 12), True),
        ("5101041234567", NumberFormat("digits", 12), False),
        ("51010412345٦", NumberFormat("digits", 12), False),  # an Arabic-Indic six: a digit, not ASCII
        ("ABC123", None, True),  # a row whose licence the source lost: digits and capitals
        ("abc", None, False),
    ],
)
def test_numbers_of_each_kind(number: str, kind: NumberFormat | None, good: bool) -> None:
    """A number is of its kind exactly when its characters, length, date and check character are right."""
    assert (number_problem(kind, number) is None) == good


def test_citizen_ids_of_the_sample_generator_are_distinct_and_valid() -> None:
    """The sample numbers the issuer and the tests use are valid citizen ID numbers, different for each serial."""
    serials = [0, 1, 999, 1000, 16_436_999, 16_437_000, 510_100_020_001, 999_999_999_999]
    numbers = [citizen_id(s) for s in serials] + [citizen_id(s, "CQ") for s in serials]
    assert len(set(numbers)) == len(numbers)
    assert all(number_problem(NumberFormat("citizen-id"), n) is None for n in numbers)
    assert citizen_id(0) == "510104196001010007"


def test_the_schema_masks_names_as_the_code_does() -> None:
    """schemas/presentation-token.schema.json's hn says what the verifier's masks say, for the same names:
    its person pattern is built of the same compound surnames and star limit."""
    schema = json.loads((schema_dir() / "presentation-token.schema.json").read_text(encoding="utf-8"))
    hn = schema["$defs"]["claims"]["properties"]["hn"]
    person = hn["anyOf"][0]["pattern"]
    assert person == rf"^(?:[^\s*]|{'|'.join(sorted(COMPOUND_SURNAMES))})\*{{1,{MAX_STARS}}}$"
    validator = Draft202012Validator(hn)
    for name in (
        "张*",
        "张***",
        "欧阳**",
        "司马*",
        "四川**公司",
        "张三",
        "张****",
        "欧阳娜*",
        "*三",
        "四川*公司",
        "张 *",
    ):
        assert validator.is_valid(name) == holder_masked(None, name), name


# --- what a misshapen token leaves in the store -----------------------------------------------------


def _everything_in(url: str) -> str:
    """Every key of the Redis at ``url`` and every value under it, as one text."""
    client: Any = redis.Redis.from_url(url, decode_responses=True)
    readers: dict[str, Callable[[str], Any]] = {
        "string": client.get,
        "hash": client.hgetall,
        "list": lambda key: client.lrange(key, 0, -1),
        "set": client.smembers,
        "zset": lambda key: client.zrange(key, 0, -1, withscores=True),
        "stream": client.xrange,
    }
    parts = [f"{key}={readers[client.type(key)](key)!r}" for key in client.scan_iter()]
    client.close()
    return "\n".join(parts)


@pytest.mark.redis
async def test_nothing_of_a_misshapen_token_is_stored(
    aiohttp_server: ServerFactory, scene: Scene, redis_server: RedisServer, tmp_path: Path
) -> None:
    """On Redis, a genuinely signed token with the holder's name in clear is rejected with TOKEN_SHAPE_INVALID,
    no licence and no stored scan, and after it (and a genuine token of the same licence, accepted) nothing in
    Redis holds the name, the number or the pseudonymous subject: the accepted scan keeps the masked view only."""
    import aiohttp

    kit = Kit(scene.catalogue, scene.keyring, scene.keyring.trust_list(), int(time.time()))
    number, name = citizen_id(424_242), "欧阳娜娜"
    genuine = kit.mint(licence_no=number, holder=name)
    forged = kit.forge({**genuine.claims, "hn": name, "jti": "misshapen01"})
    server = await aiohttp_server(scene.app(Settings(redis_url=redis_server.url)))
    url = f"http://127.0.0.1:{server.port}/v1/scans"
    headers = scene.auth("cq-notary-zhixin-01")
    async with aiohttp.ClientSession(headers=headers) as http:
        for token, decision in ((forged, "rejected"), (genuine.token, "accepted")):
            async with http.post(url, json={"token": token, "scenario": "notary-driving-licence"}) as response:
                body = await response.json()
            assert body["decision"] == decision, body
            async with http.get(f"{url}/{body['scan_id']}") as again:
                status, stored = again.status, await again.json(content_type=None)
            if decision == "rejected":  # a token that names no licence leaves no scan to look up
                assert [r["code"] for r in body["reasons"]] == ["TOKEN_SHAPE_INVALID"]
                assert (body["licence"], status) == (None, 404)
            else:
                assert stored["licence"]["holder"] == "欧阳**"
                assert stored["licence"]["licence_no"] == f"{number[:3]}{'*' * 13}{number[-2:]}"
    kept = _everything_in(redis_server.url)
    for secret in (name, number, genuine.claims["sub"]):
        assert secret not in kept, secret
