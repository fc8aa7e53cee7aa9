"""The decision (verifier.core.decide): every reason it can give, its boundaries, and its purity.

The cases of :data:`CASES` each build one token (minted by the issuer, or forged), show it at one
counter for one business at a fixed time, and name exactly the reasons the decision must give.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.forge import (
    LAST_DAY,
    NOW,
    TODAY,
    Kit,
    assemble,
    codes,
    day,
    hs256_with_public_pem,
    make_kit,
    ordered_codes,
    segment,
    set_unused_bits,
    signer,
    split,
)
from verifier.core.catalogue import Catalogue
from verifier.core.decide import DEFAULT_POLICY, Policy
from verifier.core.reasons import MESSAGES
from verifier.core.token import CLAIM_TYPES, MAX_TOKEN_BYTES, b64url_encode, json_compact
from verifier.core.trust import parse_trust_list
from verifier.errors import MintRefusedError
from verifier.issuer.keys import KeyStore

NEEDS_THE_STORE = frozenset({"REPLAYED", "REVOKED", "ALREADY_USED_HERE"})
# Reasons after which nothing the token says can be trusted: the decision carries no licence.
UNTRUSTED = frozenset(
    {
        "TOKEN_TOO_LARGE",
        "TOKEN_MALFORMED",
        "TOKEN_TYPE_INVALID",
        "HEADER_UNSUPPORTED",
        "KEY_UNKNOWN",
        "ALGORITHM_NOT_ALLOWED",
        "KEY_NOT_VALID",
        "SIGNATURE_INVALID",
        "CLAIMS_INVALID",
        "TOKEN_SHAPE_INVALID",
    }
)
# A verified token whose lt is a seq the list does not have carries no licence either: a decision's
# licence names its type by code, and there is none to name.
NO_LICENCE = UNTRUSTED | {"LICENCE_TYPE_UNKNOWN"}
LEEWAY = DEFAULT_POLICY.leeway


@pytest.fixture(scope="module")
def kit(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """Keys of every issuing unit, created at NOW in a folder of this module's own."""
    return make_kit(catalogue, tmp_path_factory.mktemp("decide-keys"))


# --- the case table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    """A token shown at a counter for a business at a time."""

    token: str
    counter: str = "cq-notary-zhixin-01"
    scenario: str = "notary-driving-licence"
    now: float = NOW


@dataclass(frozen=True)
class Case:
    """What is shown, and exactly the reasons it must be rejected for (none: accepted)."""

    id: str
    build: Callable[[Kit], Scan]
    expected: frozenset[str]


CASES: list[Case] = []


def case(case_id: str, *expected: str) -> Callable[[Callable[[Kit], Scan]], Callable[[Kit], Scan]]:
    """Register the decorated builder in :data:`CASES`."""

    def register(build: Callable[[Kit], Scan]) -> Callable[[Kit], Scan]:
        CASES.append(Case(case_id, build, frozenset(expected)))
        return build

    return register


def _parts(kit: Kit) -> list[str]:
    return kit.mint().token.split(".")


# accepted


@case("sc-driving-licence-at-cq-notary")
def _(kit: Kit) -> Scan:
    return Scan(kit.mint().token)


@case("licence-days-at-both-ends-of-the-range")
def _(kit: Kit) -> Scan:
    # Day 0 is 1970-01-01 and LAST_DAY is 9999-12-31: both are days a token may name.
    return Scan(kit.forge(kit.claims(vf=0, vu=LAST_DAY)))


# the token is not a compact JWS of ours


@case("malformed-two-parts", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    return Scan(".".join(_parts(kit)[:2]))


@case("malformed-four-parts", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    return Scan(kit.mint().token + ".")


@case("malformed-empty", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    return Scan("")


@case("malformed-standard-base64-alphabet", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    head, body, sig = _parts(kit)
    return Scan(f"{head}.{body}.{sig[:-3]}+/{sig[-1]}")


@case("malformed-padding", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    head, body, sig = _parts(kit)
    assert len(sig) % 4 == 2  # a 64-byte signature needs two '=' when padded
    return Scan(f"{head}.{body}.{sig}==")


@case("malformed-impossible-length", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    head, body, sig = _parts(kit)
    return Scan(f"{head}.{body}.{sig}AAA")  # 89 characters: 1 mod 4 encodes no byte string


@case("malformed-non-canonical-unused-bits", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    head, body, sig = _parts(kit)
    return Scan(f"{head}.{body}.{set_unused_bits(sig)}")


@case("malformed-payload-not-json", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    return Scan(assemble(kit.mint().header, b"iss=sc-police", sign=kit.key("sc-police").sign))


@case("malformed-payload-not-utf8", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    return Scan(assemble(kit.mint().header, b'{"hn":"\xd5\xc5*"}', sign=kit.key("sc-police").sign))


@case("malformed-payload-json-array", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    return Scan(assemble(kit.mint().header, [kit.mint().claims], sign=kit.key("sc-police").sign))


@case("malformed-payload-json-string", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    return Scan(assemble(kit.mint().header, b'"sc-police"', sign=kit.key("sc-police").sign))


@case("malformed-header-json-array", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    minted = kit.mint()
    return Scan(assemble([minted.header], minted.claims, sign=kit.key("sc-police").sign))


@case("malformed-duplicate-claim", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    # A parser keeping the last "exp" and one keeping the first would see different lifetimes.
    minted = kit.mint()
    raw = json.dumps(minted.claims, ensure_ascii=False, separators=(",", ":"))
    raw = raw[:-1] + f',"exp":{NOW + 86400 * 365}}}'
    return Scan(assemble(minted.header, raw.encode(), sign=kit.key("sc-police").sign))


@case("malformed-duplicate-header-member", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    minted = kit.mint()
    raw = f'{{"alg":"ES256","kid":"{minted.kid}","typ":"cylp","kid":"cq-police-1"}}'
    return Scan(assemble(raw.encode(), minted.claims, sign=kit.key("sc-police").sign))


@case("malformed-nan-claim", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    minted = kit.mint()
    raw = json.dumps({**minted.claims, "exp": float("nan")}, ensure_ascii=False, separators=(",", ":"))
    assert '"exp":NaN' in raw
    return Scan(assemble(minted.header, raw.encode(), sign=kit.key("sc-police").sign))


@case("malformed-infinity-claim", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    minted = kit.mint()
    raw = json.dumps({**minted.claims, "exp": float("inf")}, ensure_ascii=False, separators=(",", ":"))
    return Scan(assemble(minted.header, raw.encode(), sign=kit.key("sc-police").sign))


@case("malformed-alg-not-a-string", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(), alg=["ES256"]))


@case("malformed-kid-missing", "TOKEN_MALFORMED")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(), kid=None))


@case("too-large-junk", "TOKEN_TOO_LARGE")
def _(kit: Kit) -> Scan:
    return Scan("x" * (MAX_TOKEN_BYTES + 1))


@case("too-large-signed", "TOKEN_TOO_LARGE")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(note="备注" * 400)))


# the header


@case("typ-missing", "TOKEN_TYPE_INVALID")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(), typ=None))


@case("typ-jwt", "TOKEN_TYPE_INVALID")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(), typ="JWT"))


_FOREIGN_HEADERS: dict[str, Any] = {
    "jku": "https://evil.example/jwks.json",
    "jwk": {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
    "x5u": "https://evil.example/cert.pem",
    "x5c": ["MIIBAAAA"],
    "crit": ["exp"],
}
# A URL or a key in the header also takes the token past the bytes of its QR code.
_OVERSIZED = {"jku", "jwk", "x5u"}
for _name, _value in _FOREIGN_HEADERS.items():

    @case(f"header-{_name}", "HEADER_UNSUPPORTED", *(["TOKEN_SHAPE_INVALID"] if _name in _OVERSIZED else []))
    def _(kit: Kit, _name: str = _name, _value: Any = _value) -> Scan:
        return Scan(kit.forge(kit.claims(), **{_name: _value}))


@case("kid-unknown", "KEY_UNKNOWN")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(), kid="sc-police-99"))


@case("kid-a-url", "KEY_UNKNOWN")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(), kid="https://evil.example/key"))


@case("alg-none", "ALGORITHM_NOT_ALLOWED")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(), alg="none", sign=lambda _data: b""))


@case("alg-hs256-keyed-with-public-pem", "ALGORITHM_NOT_ALLOWED")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(), alg="HS256", sign=hs256_with_public_pem(kit.key("sc-police"))))


@case("alg-eddsa-on-es256-key", "ALGORITHM_NOT_ALLOWED")
def _(kit: Kit) -> Scan:
    other = ed25519.Ed25519PrivateKey.generate()
    return Scan(kit.forge(kit.claims(), alg="EdDSA", sign=signer(other, "EdDSA")))


def _outside_key_window(kit: Kit, when: float) -> Scan:
    """A token signed by the Sichuan police's key at ``when``, and shown at once."""
    key = kit.key("sc-police")
    claims = kit.claims(iat=int(when), exp=int(when) + 300)
    return Scan(kit.forge(claims, key=key), now=when)


@case("key-not-yet-valid", "KEY_NOT_VALID")
def _(kit: Kit) -> Scan:
    return _outside_key_window(kit, kit.key("sc-police").valid_from - 60)


@case("key-no-longer-valid", "KEY_NOT_VALID")
def _(kit: Kit) -> Scan:
    return _outside_key_window(kit, kit.key("sc-police").valid_until + 60)


@case("key-valid-until-is-exclusive", "KEY_NOT_VALID")
def _(kit: Kit) -> Scan:
    return _outside_key_window(kit, kit.key("sc-police").valid_until)


# the signature


@case("signature-over-altered-payload", "SIGNATURE_INVALID")
def _(kit: Kit) -> Scan:
    # The holder upgrades the licence class from C1 to A1 and keeps the signature.
    minted = kit.mint(attributes={"cls": "C1"})
    head, _, sig = minted.token.split(".")
    payload = json_compact(minted.claims)
    assert payload.count(b'"C1"') == 1
    altered = b64url_encode(payload.replace(b'"C1"', b'"A1"'))
    return Scan(f"{head}.{altered}.{sig}")


@case("signature-altered", "SIGNATURE_INVALID")
def _(kit: Kit) -> Scan:
    head, body, sig = _parts(kit)
    signature = bytearray(base64.urlsafe_b64decode(sig + "=="))
    signature[40] ^= 0x01
    return Scan(f"{head}.{body}.{b64url_encode(bytes(signature))}")


@case("signature-by-another-units-key-kid-swapped", "SIGNATURE_INVALID")
def _(kit: Kit) -> Scan:
    # Chongqing's police key signs, the header claims it was Sichuan's.
    return Scan(kit.forge(kit.claims(), key=kit.key("sc-police"), sign=kit.key("cq-police").sign))


@case("signature-empty", "SIGNATURE_INVALID")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(), sign=lambda _data: b""))


@case("signature-spliced-from-another-token", "SIGNATURE_INVALID")
def _(kit: Kit) -> Scan:
    head, body, _ = kit.mint(holder="李四").token.split(".")
    return Scan(f"{head}.{body}.{_parts(kit)[2]}")


# the claims

for _claim in CLAIM_TYPES:

    @case(f"claim-{_claim}-missing", "CLAIMS_INVALID")
    def _(kit: Kit, _claim: str = _claim) -> Scan:
        return Scan(kit.forge(kit.claims(**{_claim: None})))


_WRONG_CLAIMS: dict[str, dict[str, Any]] = {
    "exp-as-string": {"exp": str(NOW + 300)},
    "exp-as-boolean": {"exp": True},
    "exp-as-float": {"exp": float(NOW + 300)},
    "iat-as-boolean": {"iat": True},
    "vf-before-1970": {"vf": -1},
    "vu-after-9999-12-31": {"vu": LAST_DAY + 1},
    "vf-as-yyyymmdd": {"vf": 20250601},  # the old format: day 20250601 is long after 9999-12-31
    "vu-beyond-any-float": {"vu": 10**309},
    "vf-as-iso-string": {"vf": "2025-06-01"},
    "vu-as-float": {"vu": float(day(TODAY))},
    "prv-not-a-province": {"prv": "BJ"},
    "hn-empty": {"hn": ""},
    "jti-as-number": {"jti": 12345},
    "lt-as-object": {"lt": {"code": "driving-licence"}},
    "lt-as-code": {"lt": "driving-licence"},  # the old format: the type is named by its seq now
    "lt-as-numeric-string": {"lt": "1"},
    "lt-as-boolean": {"lt": True},  # true == 1 in Python, but it is not the seq of the driving licence
    "lt-as-float": {"lt": 1.0},
}
for _label, _changes in _WRONG_CLAIMS.items():
    # A 310-digit number or an object where a seq stands takes the token past its QR code's bytes.
    _too_large = _label in {"vu-beyond-any-float", "lt-as-object"}

    @case(f"claim-{_label}", "CLAIMS_INVALID", *(["TOKEN_SHAPE_INVALID"] if _too_large else []))
    def _(kit: Kit, _changes: dict[str, Any] = _changes) -> Scan:
        return Scan(kit.forge(kit.claims(**_changes)))


@case("issued-in-future", "ISSUED_IN_FUTURE")
def _(kit: Kit) -> Scan:
    return Scan(kit.mint(now=NOW + 60).token)


@case("token-expired", "TOKEN_EXPIRED")
def _(kit: Kit) -> Scan:
    return Scan(kit.mint(now=NOW - 600, ttl=300).token)


@case("lifetime-too-long", "LIFETIME_TOO_LONG")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(exp=NOW + DEFAULT_POLICY.max_lifetime + 1)))


@case("lifetime-zero", "LIFETIME_TOO_LONG")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(iat=NOW + 1, exp=NOW + 1)))


@case("lifetime-negative", "LIFETIME_TOO_LONG")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(iat=NOW, exp=NOW - 1)))


# Claims are JSON integers of any size; the decision must not overflow a float on them, even
# before the signature is known to be good.
_HUGE = 10**309  # larger than any float


@case("iat-beyond-any-float", "ISSUED_IN_FUTURE", "LIFETIME_TOO_LONG", "TOKEN_SHAPE_INVALID")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(iat=_HUGE)))


@case("exp-beyond-any-float-in-the-past", "TOKEN_EXPIRED", "LIFETIME_TOO_LONG", "TOKEN_SHAPE_INVALID")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(exp=-_HUGE)))


@case("iat-beyond-any-float-unknown-key", "KEY_UNKNOWN", "ISSUED_IN_FUTURE", "LIFETIME_TOO_LONG", "TOKEN_SHAPE_INVALID")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(iat=_HUGE), kid="nobody", sign=lambda _data: bytes(64)))


# the key and what the token says about its issuer


@case("issuer-key-mismatch", "ISSUER_KEY_MISMATCH")
def _(kit: Kit) -> Scan:
    # Both are Sichuan issuers of library cards; the provincial library's key signs as Chengdu's.
    claims = kit.mint("library-card", "SC", "tianfu-tongban", unit="sc-cdlib").claims
    return Scan(kit.forge(claims, unit="sc-lib"), "cq-library-01", "library-borrowing")


@case("province-key-mismatch", "PROVINCE_KEY_MISMATCH", "ISSUER_NOT_DESIGNATED")
def _(kit: Kit) -> Scan:
    # A Chongqing key cannot sign a Sichuan licence, whatever unit the token names.
    return Scan(kit.forge(kit.claims(iss="cq-police", prv="SC"), unit="cq-police"))


@case("province-and-issuer-key-mismatch", "PROVINCE_KEY_MISMATCH", "ISSUER_KEY_MISMATCH")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(), unit="cq-police"))


@case("licence-type-unknown", "LICENCE_TYPE_UNKNOWN")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(lt=kit.unknown_seq())))


@case("licence-type-seq-zero", "LICENCE_TYPE_UNKNOWN")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(lt=0)))


@case("licence-type-seq-negative", "LICENCE_TYPE_UNKNOWN")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(lt=-1)))


@case("licence-type-seq-beyond-any-float", "LICENCE_TYPE_UNKNOWN", "TOKEN_SHAPE_INVALID")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(lt=10**309)))


@case("issuer-not-designated", "ISSUER_NOT_DESIGNATED")
def _(kit: Kit) -> Scan:
    # The sports bureau signs, with its own key and in its own name, a driving licence.
    return Scan(kit.forge(kit.claims(iss="sc-sport")))


# the catalogue's rules


@case("channel-not-allowed", "CHANNEL_NOT_ALLOWED")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(ch="tianfu-tongban")))


@case("channel-unknown", "CHANNEL_NOT_ALLOWED")
def _(kit: Kit) -> Scan:
    return Scan(kit.forge(kit.claims(ch="wechat")))


@case("channel-province-mismatch-sc-library-card-via-yukuaiban", "CHANNEL_PROVINCE_MISMATCH")
def _(kit: Kit) -> Scan:
    claims = kit.mint("library-card", "SC", "tianfu-tongban").claims
    return Scan(kit.forge({**claims, "ch": "yukuaiban"}), "cq-library-01", "library-borrowing")


@case("channel-province-mismatch-cq-social-security-via-sichuan-renshe", "CHANNEL_PROVINCE_MISMATCH")
def _(kit: Kit) -> Scan:
    claims = kit.mint("social-security", "CQ", "chongqing-renshe").claims
    return Scan(kit.forge({**claims, "ch": "sichuan-renshe"}), "sc-social-insurance-01", "pension-insurance")


@case("scenario-not-for-licence", "SCENARIO_NOT_FOR_LICENCE")
def _(kit: Kit) -> Scan:
    # The counter does veterinary drug export, but a feed licence is not recognised for it.
    token = kit.mint("feed-production", "CQ", "yukuaiban").token
    return Scan(token, "sc-gov-service-centre-01", "vet-drug-export")


@case("scenario-not-registered", "SCENARIO_NOT_REGISTERED")
def _(kit: Kit) -> Scan:
    # Social security cards serve unemployment registration, but this counter handles pensions only.
    token = kit.mint("social-security", "SC", "tianfu-tongban").token
    return Scan(token, "cq-social-insurance-01", "unemployment-registration")


@case("scenario-unknown", "SCENARIO_NOT_FOR_LICENCE", "SCENARIO_NOT_REGISTERED")
def _(kit: Kit) -> Scan:
    return Scan(kit.mint().token, scenario="buy-a-car")


@case("out-of-pilot-scope-library", "OUT_OF_PILOT_SCOPE")
def _(kit: Kit) -> Scan:
    return Scan(kit.mint("library-card", "SC", "tianfu-tongban").token, "cq-yuzhong-library-01", "library-borrowing")


@case("out-of-pilot-scope-legal-service-is-no-notary", "OUT_OF_PILOT_SCOPE")
def _(kit: Kit) -> Scan:
    return Scan(kit.mint().token, "cq-legal-service-01")


@case("justice-counter-is-neither-scenario-nor-scope", "SCENARIO_NOT_FOR_LICENCE", "OUT_OF_PILOT_SCOPE")
def _(kit: Kit) -> Scan:
    return Scan(kit.mint().token, "cq-legal-service-01", "justice-admin")


@case("licence-not-yet-valid", "LICENCE_NOT_YET_VALID")
def _(kit: Kit) -> Scan:
    return Scan(kit.mint(valid_from=TODAY + dt.timedelta(days=1)).token)


@case("licence-expired", "LICENCE_EXPIRED")
def _(kit: Kit) -> Scan:
    return Scan(kit.mint(valid_from=dt.date(2016, 6, 1), valid_until=TODAY - dt.timedelta(days=1)).token)


@case("rules-incomplete-row-6-transport-qual", "RULES_INCOMPLETE")
def _(kit: Kit) -> Scan:
    token = kit.mint("transport-qual", "SC", "tianfu-tongban").token
    return Scan(token, "cq-transport-enforcement-01", "transport-service-enforcement")


@case("rules-incomplete-row-19-mineral", "RULES_INCOMPLETE", "SCENARIO_NOT_REGISTERED")
def _(kit: Kit) -> Scan:
    # Row 19 lost its scenarios, so no natural-resources counter is registered for anything yet.
    token = kit.mint("mineral", "SC", "tianfu-tongban").token
    return Scan(token, "cq-natres-bureau-01", "inspection-enforcement")


@case("rules-incomplete-row-10-forged", "RULES_INCOMPLETE")
def _(kit: Kit) -> Scan:
    # The issuer refuses row 10 (it lost everything); a forged one is still not recognised. (Row 10 has
    # no attributes: the driving licence's class would be a claim the issuer does not write.)
    return Scan(kit.forge(kit.claims(lt=kit.seq("row-10"), cls=None)))


_SEVERAL = ("TOKEN_TYPE_INVALID", "TOKEN_EXPIRED", "CHANNEL_NOT_ALLOWED", "SCENARIO_NOT_FOR_LICENCE",
            "OUT_OF_PILOT_SCOPE", "LICENCE_EXPIRED")  # fmt: skip


def _several(kit: Kit) -> Scan:
    """A stale token of an expired licence, in the wrong app, under a JWT header, at a justice counter."""
    claims = kit.claims(ch="tianfu-tongban", iat=NOW - 900, exp=NOW - 600, vu=day(TODAY - dt.timedelta(days=1)))
    return Scan(kit.forge(claims, typ="JWT"), "cq-legal-service-01", "justice-admin")


case("several-reasons-at-once", *_SEVERAL)(_several)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_gives_exactly_its_reasons(kit: Kit, case: Case) -> None:
    """Each token of the table is decided with exactly the reasons the table names, every one of
    them, and is accepted only when it names none; a token that cannot be trusted, or names no
    licence type of the list, carries no licence."""
    scan = case.build(kit)
    decision = kit.decide(scan.token, scan.counter, scan.scenario, now=scan.now)
    assert codes(decision) == case.expected, decision.reasons
    assert len(decision.reasons) == len(set(ordered_codes(decision))), "a reason is given twice"
    assert decision.accepted is not bool(case.expected)
    assert decision.decision == ("rejected" if case.expected else "accepted")
    carries = not case.expected & NO_LICENCE
    assert (decision.licence is not None, decision.jti is not None, decision.expires_at is not None) == (carries,) * 3


def test_every_reason_without_the_store_is_produced_here(kit: Kit) -> None:
    """The table makes decide() give every reason code except the two that need the store."""
    produced: set[str] = set()
    for c in CASES:
        scan = c.build(kit)
        produced |= codes(kit.decide(scan.token, scan.counter, scan.scenario, now=scan.now))
    assert produced == set(MESSAGES) - NEEDS_THE_STORE
    assert set(MESSAGES) >= NEEDS_THE_STORE


def test_case_ids_are_unique() -> None:
    """No case of the table hides another under the same id."""
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


# --- what the decision carries -------------------------------------------------------------------


def test_accepted_decision_carries_the_licence(kit: Kit) -> None:
    """An accepted decision names the licence, the token's jti and its expiry, as minted; the token
    names the type by its seq, the decision by its code."""
    # A driving licence's number is its holder's 18-character citizen ID number.
    minted = kit.mint(licence_no="11010519491231002X", holder="王小明", attributes={"cls": "A1"})
    assert minted.claims["lt"] == 1 == kit.seq("driving-licence")
    assert (minted.claims["vf"], minted.claims["vu"]) == (day(dt.date(2025, 6, 1)), day(dt.date(2031, 6, 1)))
    decision = kit.decide(minted.token)
    assert decision.accepted
    assert decision.reasons == ()
    assert decision.jti == minted.claims["jti"]
    assert decision.expires_at == minted.expires_at == NOW + 300
    licence = decision.licence
    assert licence is not None
    assert (licence.type, licence.province, licence.unit, licence.channel) == (
        "driving-licence",
        "SC",
        "sc-police",
        "jiaoguan-12123",
    )
    assert (licence.licence_no, licence.holder) == ("11010519491231002X", "王**")
    assert licence.valid_from == dt.date(2025, 6, 1)
    assert licence.valid_until == dt.date(2031, 6, 1)
    assert licence.attributes == {"cls": "A1"}


def test_an_unknown_seq_is_named_in_the_detail_and_cut_short(kit: Kit) -> None:
    """A seq the list lacks is named in the detail, and a huge one only by its first 20 digits."""
    unknown = kit.unknown_seq()
    (reason,) = kit.decide(kit.forge(kit.claims(lt=unknown))).reasons
    assert (reason.code, reason.detail) == ("LICENCE_TYPE_UNKNOWN", f"no licence type with seq {unknown}")
    huge = kit.decide(kit.forge(kit.claims(lt=10**309))).reasons
    assert [r.detail for r in huge if r.code == "LICENCE_TYPE_UNKNOWN"] == ["no licence type with seq 1" + "0" * 19]


def test_unverified_token_carries_no_licence(kit: Kit) -> None:
    """A token whose signature failed is rejected with no licence, jti or expiry: nothing it says is trusted."""
    claims = kit.claims()
    decision = kit.decide(kit.forge(claims, key=kit.key("sc-police"), sign=kit.key("cq-police").sign))
    assert codes(decision) == {"SIGNATURE_INVALID"}
    assert (decision.licence, decision.jti, decision.expires_at) == (None, None, None)


@pytest.mark.parametrize(
    "header_changes", [{"typ": None}, {"jku": "https://evil.example/"}, {"kid": "sc-police-99"}], ids=str
)
def test_token_with_untrusted_header_carries_no_licence(kit: Kit, header_changes: dict[str, Any]) -> None:
    """A validly signed token whose header is refused carries no licence either."""
    decision = kit.decide(kit.forge(kit.claims(), **header_changes))
    assert not decision.accepted
    assert decision.licence is None


def test_verified_token_failing_a_rule_still_names_its_licence(kit: Kit) -> None:
    """A genuine licence shown at the wrong counter is rejected, but the clerk is told what it was."""
    minted = kit.mint("library-card", "SC", "tianfu-tongban")
    decision = kit.decide(minted.token, "cq-yuzhong-library-01", "library-borrowing")
    assert codes(decision) == {"OUT_OF_PILOT_SCOPE"}
    assert decision.licence is not None
    assert decision.licence.type == "library-card"
    assert decision.jti == minted.claims["jti"]


def test_several_reasons_are_all_reported(kit: Kit) -> None:
    """A token wrong in six ways is rejected for all six, in the order the checks run, every time."""
    scan = _several(kit)
    decision = kit.decide(scan.token, scan.counter, scan.scenario)
    assert ordered_codes(decision) == list(_SEVERAL)
    assert decision == kit.decide(scan.token, scan.counter, scan.scenario)
    assert decision.licence is None  # the header was refused, so nothing the token says is trusted


def test_reasons_carry_both_messages(kit: Kit) -> None:
    """Each reason of a rejection reads in Chinese and English, and names what was wrong in its detail."""
    token = kit.mint("library-card", "SC", "tianfu-tongban").token
    decision = kit.decide(token, "cq-yuzhong-library-01", "library-borrowing")
    (reason,) = decision.reasons
    assert reason.message_zh == "本窗口不在该证照的试点范围内"
    assert reason.message_en == "This counter is outside the licence's pilot scope"
    assert "重庆图书馆" in reason.detail


# --- boundaries ----------------------------------------------------------------------------------


def test_non_canonical_signature_decodes_to_the_accepted_bytes(kit: Kit) -> None:
    """A signature re-written with unused bits set decodes to the very bytes that are accepted,
    and is still refused: one token has one spelling."""
    token = kit.mint().token
    head, body, sig = token.split(".")
    twisted = set_unused_bits(sig)
    assert twisted != sig
    assert base64.urlsafe_b64decode(twisted + "==") == base64.urlsafe_b64decode(sig + "==")
    assert kit.decide(token).accepted
    assert codes(kit.decide(f"{head}.{body}.{twisted}")) == {"TOKEN_MALFORMED"}


def test_size_limit_is_inclusive() -> None:
    """A token of exactly the size limit is parsed (and found malformed), one character more is too large."""
    from verifier.core.token import parse
    from verifier.errors import TokenMalformedError

    with pytest.raises(TokenMalformedError) as at_limit:
        parse("x" * MAX_TOKEN_BYTES)
    with pytest.raises(TokenMalformedError) as over:
        parse("x" * (MAX_TOKEN_BYTES + 1))
    assert (at_limit.value.reason, over.value.reason) == ("TOKEN_MALFORMED", "TOKEN_TOO_LARGE")


@pytest.mark.parametrize(
    ("ahead", "expected"),
    [(LEEWAY - 1, set()), (LEEWAY, set()), (LEEWAY + 1, {"ISSUED_IN_FUTURE"})],
    ids=["leeway-less-one", "exactly-the-leeway", "one-second-past"],
)
def test_issued_in_future_leeway(kit: Kit, ahead: int, expected: set[str]) -> None:
    """A token issued by a clock up to the leeway ahead is accepted; one second more is issued in the future."""
    decision = kit.decide(kit.mint(now=NOW + ahead).token)
    assert codes(decision) == expected


@pytest.mark.parametrize(
    ("late", "expected"),
    [(0, set()), (LEEWAY - 1, set()), (LEEWAY, {"TOKEN_EXPIRED"}), (LEEWAY + 1, {"TOKEN_EXPIRED"})],
    ids=["at-expiry", "last-second-of-leeway", "exactly-the-leeway", "one-second-past"],
)
def test_expiry_leeway(kit: Kit, late: int, expected: set[str]) -> None:
    """exp is the first second a token is no longer valid (RFC 7519): read by a clock up to the leeway
    fast, a token is accepted until exp + leeway, and rejected from then on."""
    minted = kit.mint()
    decision = kit.decide(minted.token, now=minted.expires_at + late)
    assert codes(decision) == expected


def test_expiry_leeway_at_fractions_of_a_second(kit: Kit) -> None:
    """The clock is read to the fraction: just before exp + leeway is accepted, at it is rejected."""
    minted = kit.mint()
    assert kit.decide(minted.token, now=minted.expires_at + LEEWAY - 0.001).accepted
    assert codes(kit.decide(minted.token, now=minted.expires_at + LEEWAY)) == {"TOKEN_EXPIRED"}


@pytest.mark.parametrize(
    ("lifetime", "expected"),
    [(DEFAULT_POLICY.max_lifetime, set()), (DEFAULT_POLICY.max_lifetime + 1, {"LIFETIME_TOO_LONG"}), (1, set())],
    ids=["the-maximum", "one-second-more", "one-second"],
)
def test_lifetime_limit(kit: Kit, lifetime: int, expected: set[str]) -> None:
    """A token may live the maximum lifetime and no longer; one second is enough."""
    assert codes(kit.decide(kit.forge(kit.claims(exp=NOW + lifetime)))) == expected


def test_policy_changes_the_limits(kit: Kit) -> None:
    """An operator's policy moves the leeway and the lifetime limit; the defaults are 5 s and 600 s."""
    assert (DEFAULT_POLICY.leeway, DEFAULT_POLICY.max_lifetime) == (5, 600)
    minted = kit.mint(now=NOW - 300 - 30)  # expired 30 s ago
    assert codes(kit.decide(minted.token)) == {"TOKEN_EXPIRED"}
    assert kit.decide(minted.token, policy=Policy(leeway=31)).accepted
    assert codes(kit.decide(kit.mint().token, policy=Policy(max_lifetime=299))) == {"LIFETIME_TOO_LONG"}


def test_key_window_starts_inclusive(kit: Kit) -> None:
    """A key signs from the first second of its window."""
    key = kit.key("sc-police")
    claims = kit.claims(iat=key.valid_from, exp=key.valid_from + 300)
    assert kit.decide(kit.forge(claims, key=key), now=key.valid_from).accepted


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "expected"),
    [
        (TODAY, TODAY + dt.timedelta(days=365), set()),
        (TODAY - dt.timedelta(days=365), TODAY, set()),
        (TODAY + dt.timedelta(days=1), TODAY + dt.timedelta(days=365), {"LICENCE_NOT_YET_VALID"}),
        (TODAY - dt.timedelta(days=365), TODAY - dt.timedelta(days=1), {"LICENCE_EXPIRED"}),
    ],
    ids=["valid-from-today", "valid-until-today", "valid-from-tomorrow", "valid-until-yesterday"],
)
def test_licence_validity_days_are_inclusive(
    kit: Kit, valid_from: dt.date, valid_until: dt.date, expected: set[str]
) -> None:
    """A licence is valid on the first and on the last day of its validity, not the day before or after."""
    token = kit.mint(valid_from=valid_from, valid_until=valid_until).token
    assert codes(kit.decide(token)) == expected


def test_licence_days_are_beijing_days(kit: Kit) -> None:
    """At 07:30 in Chongqing the day has changed though it is still yesterday in UTC: a licence
    valid until yesterday has expired, one valid from today is valid."""
    morning = int(dt.datetime(2026, 6, 2, 7, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp())
    assert dt.datetime.fromtimestamp(morning, dt.UTC).date() == dt.date(2026, 6, 1)
    until_yesterday = kit.mint(now=morning, valid_until=dt.date(2026, 6, 1)).token
    from_today = kit.mint(now=morning, valid_from=dt.date(2026, 6, 2)).token
    assert codes(kit.decide(until_yesterday, now=morning)) == {"LICENCE_EXPIRED"}
    assert kit.decide(from_today, now=morning).accepted


# --- mutual recognition, both directions ---------------------------------------------------------


def test_sichuan_driving_licence_is_accepted_at_a_chongqing_notary_office(kit: Kit) -> None:
    """A Sichuan driving licence shown in 交管12123 is accepted at a Chongqing notary office."""
    decision = kit.decide(kit.mint("driving-licence", "SC", "jiaoguan-12123").token, "cq-notary-zhixin-01")
    assert decision.accepted, decision.reasons
    assert decision.licence is not None
    assert (decision.licence.province, decision.licence.unit) == ("SC", "sc-police")


def test_chongqing_driving_licence_is_accepted_at_a_sichuan_notary_office(kit: Kit) -> None:
    """A Chongqing driving licence shown in 交管12123 is accepted at a Sichuan notary office."""
    decision = kit.decide(kit.mint("driving-licence", "CQ", "jiaoguan-12123").token, "sc-notary-shudu-01")
    assert decision.accepted, decision.reasons
    assert decision.licence is not None
    assert (decision.licence.province, decision.licence.unit) == ("CQ", "cq-police")


def test_sichuan_library_card_at_chongqing_library(kit: Kit, catalogue: Catalogue) -> None:
    """A Sichuan library card is accepted at 重庆图书馆 and not at 重庆市渝中区图书馆, which is outside the pilot."""
    token = kit.mint("library-card", "SC", "tianfu-tongban").token
    assert catalogue.counters["cq-library-01"].institution.name_zh == "重庆图书馆"
    assert catalogue.counters["cq-yuzhong-library-01"].institution.name_zh == "重庆市渝中区图书馆"
    assert kit.decide(token, "cq-library-01", "library-borrowing").accepted
    assert codes(kit.decide(token, "cq-yuzhong-library-01", "library-borrowing")) == {"OUT_OF_PILOT_SCOPE"}


def test_channel_province_mismatch_cannot_be_minted(kit: Kit) -> None:
    """The issuer refuses to mint a Sichuan library card for 渝快办; only a forgery carries one."""
    with pytest.raises(MintRefusedError) as refused:
        kit.mint("library-card", "SC", "yukuaiban")
    assert refused.value.field == "channel"
    assert refused.value.allowed == ("tianfu-tongban",)


# --- other keys ----------------------------------------------------------------------------------


def test_eddsa_key_signs_accepted_tokens(catalogue: Catalogue, tmp_path: Path) -> None:
    """A unit rotated to an EdDSA key signs tokens that are accepted; its older ES256 key still is too."""
    store = KeyStore(catalogue.units.values(), tmp_path)
    old_ring = store.keyring(NOW)
    store.rotate("sc-police", alg="EdDSA", now=NOW)
    kit = Kit(catalogue, store.keyring(NOW), store.trust_list(NOW))
    assert kit.trust.problems == ()
    assert kit.trust.keys["sc-police-2"].alg == "EdDSA"
    minted = kit.mint()
    assert minted.header == {"alg": "EdDSA", "kid": "sc-police-2", "typ": "cylp"}
    assert kit.decide(minted.token).accepted
    older = Kit(catalogue, old_ring, old_ring.trust_list()).mint()
    assert older.kid == "sc-police-1"
    assert kit.decide(older.token).accepted
    # The EdDSA key is pinned to EdDSA: the same key id under ES256 is refused.
    assert codes(kit.decide(kit.forge(kit.claims(), alg="ES256"))) == {"ALGORITHM_NOT_ALLOWED"}


def test_eddsa_signature_does_not_verify_under_another_eddsa_key(catalogue: Catalogue, tmp_path: Path) -> None:
    """An Ed25519 signature made by a stranger's key under the unit's EdDSA key id is invalid."""
    store = KeyStore(catalogue.units.values(), tmp_path)
    store.rotate("sc-police", alg="EdDSA", now=NOW)
    kit = Kit(catalogue, store.keyring(NOW), store.trust_list(NOW))
    stranger = signer(ed25519.Ed25519PrivateKey.generate(), "EdDSA")
    assert codes(kit.decide(kit.forge(kit.claims(), sign=stranger))) == {"SIGNATURE_INVALID"}


def test_es256_signature_by_a_stranger_is_invalid(kit: Kit) -> None:
    """A P-256 key that is not in the trust list cannot sign under a trusted key id."""
    stranger = signer(ec.generate_private_key(ec.SECP256R1()), "ES256")
    assert codes(kit.decide(kit.forge(kit.claims(), sign=stranger))) == {"SIGNATURE_INVALID"}


def test_token_of_a_key_missing_from_the_trust_list_is_unknown(kit: Kit, catalogue: Catalogue, tmp_path: Path) -> None:
    """A token signed by another issuer installation's keys names a kid this trust list lacks or
    does not verify."""
    other = make_kit(catalogue, tmp_path)
    token = other.mint().token
    assert codes(kit.decide(token)) == {"SIGNATURE_INVALID"}  # same kid, different key
    renamed = other.forge(other.claims(), kid="sc-police-7")
    assert codes(kit.decide(renamed)) == {"KEY_UNKNOWN"}


# --- the keys the decision trusts -----------------------------------------------------------------


_BROKEN_JWKS: dict[str, dict[str, Any]] = {
    "ec-coordinates-too-short": {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
    "ec-coordinates-missing": {"kty": "EC", "crv": "P-256"},
    "ec-point-off-the-curve": {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(bytes(32)),
        "y": b64url_encode(bytes(32)),
    },
    "okp-x-too-short": {"kty": "OKP", "crv": "Ed25519", "x": "AA"},
    "okp-x-missing": {"kty": "OKP", "crv": "Ed25519"},
}


@pytest.mark.parametrize("broken", _BROKEN_JWKS.values(), ids=_BROKEN_JWKS.keys())
def test_broken_key_in_the_trust_list_is_refused_not_fatal(kit: Kit, broken: dict[str, Any]) -> None:
    """A trust list entry whose key material is broken is refused and named; the other keys still
    verify tokens."""
    doc = kit.trust.jwks()
    alg = "ES256" if broken["kty"] == "EC" else "EdDSA"
    entry = {**broken, "kid": "sc-police-9", "alg": alg, "unit": "sc-police", "province": "SC"}
    entry.update(valid_from=NOW - 86400, valid_until=NOW + 86400)
    trust = parse_trust_list({"keys": [*doc["keys"], entry]})
    assert len(trust.problems) == 1
    assert trust.problems[0].startswith(f"key #{len(doc['keys']) + 1}: ")
    assert set(trust.keys) == set(kit.trust.keys)
    assert kit.decide(kit.mint().token, trust=trust).accepted


# --- purity --------------------------------------------------------------------------------------


def test_decision_does_not_read_the_clock(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same token, counter, business and now give the same decision whatever the wall clock says."""
    accepted = kit.mint().token
    rejected = kit.mint("library-card", "SC", "tianfu-tongban").token
    before = [kit.decide(accepted), kit.decide(rejected, "cq-yuzhong-library-01", "library-borrowing")]
    for wall in (0.0, NOW + 10 * 365 * 86400.0):
        monkeypatch.setattr(time, "time", lambda wall=wall: wall)
        monkeypatch.setattr(time, "time_ns", lambda wall=wall: int(wall * 1e9))
        after = [kit.decide(accepted), kit.decide(rejected, "cq-yuzhong-library-01", "library-borrowing")]
        assert after == before
    assert before[0].accepted
    assert codes(before[1]) == {"OUT_OF_PILOT_SCOPE"}
    # ...and it is `now` that matters: the same token a day later has expired.
    assert codes(kit.decide(accepted, now=NOW + 86400)) == {"TOKEN_EXPIRED"}


_BLOCK_THE_SHELL = textwrap.dedent(
    """
    import importlib.abc, json, sys

    SHELL = ("aiohttp", "redis")

    class BlockShell(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in SHELL:
                raise ImportError(f"the core imported {name}")
            return None

    sys.meta_path.insert(0, BlockShell())
    for name in SHELL:
        try:
            __import__(name)
        except ImportError:
            pass
        else:
            raise SystemExit(f"{name} was not blocked")
    """
)
_DECIDE_ONCE = textwrap.dedent(
    """
    import verifier.adapters.catalogue_files, verifier.core.decide
    from cryptography.hazmat.primitives.asymmetric import ec
    from verifier.core.token import ALGORITHMS, encode
    from verifier.core.trust import parse_trust_list

    now = int(sys.argv[1])
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ALGORITHMS["ES256"].to_jwk(private.public_key()))
    jwk.update(kid="sc-police-1", alg="ES256", unit="sc-police", province="SC",
               valid_from=now - 86400, valid_until=now + 86400)
    trust = parse_trust_list({"keys": [jwk]})
    # lt 1 is the driving licence; vf and vu are 2025-06-01 and 2031-06-01 as day numbers.
    claims = {"iss": "sc-police", "prv": "SC", "lt": 1, "ch": "jiaoguan-12123",
              "no": "11010519491231002X", "hn": "张*", "sub": "abcdefgh", "vf": 20240, "vu": 22431,
              "iat": now, "exp": now + 300, "jti": "isolated-0X", "cls": "C1"}
    token = encode({"alg": "ES256", "kid": "sc-police-1", "typ": "cylp"}, claims,
                   lambda data: ALGORITHMS["ES256"].sign(data, private))
    catalogue = verifier.adapters.catalogue_files.load_catalogue()
    decision = verifier.core.decide.decide(token, trust=trust, catalogue=catalogue,
                                      counter=catalogue.counters["cq-notary-zhixin-01"],
                                      scenario="notary-driving-licence", now=now)
    shell = sorted(m for m in sys.modules if m.split(".")[0] in SHELL
                   or m.startswith(("verifier.web", "verifier.service", "verifier.issuer", "verifier.cli")))
    print(json.dumps({"decision": decision.decision, "reasons": [r.code for r in decision.reasons],
                      "shell": shell}))
    """
)


def _python(script: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-c", script, str(NOW)], capture_output=True, text=True, cwd=root, timeout=60, check=False
    )


def test_core_imports_nothing_of_the_shell() -> None:
    """With aiohttp and redis impossible to import, the core still loads the catalogue and accepts a token."""
    done = _python(_BLOCK_THE_SHELL + _DECIDE_ONCE)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"decision": "accepted", "reasons": [], "shell": []}


def test_shell_blocker_does_block() -> None:
    """The blocker of the test above does stop a module of the shell from loading."""
    done = _python(_BLOCK_THE_SHELL + "import verifier.adapters.redis_store\n")
    assert done.returncode != 0
    assert "ImportError: the core imported redis" in done.stderr


def test_helpers_build_what_they_say(kit: Kit) -> None:
    """The forging helpers round-trip: a token assembled from the minted parts is the minted token."""
    minted = kit.mint()
    head, body, sig = minted.token.split(".")
    assert segment(minted.header) == head
    assert segment(minted.claims) == body
    header, claims, signature = split(minted.token)
    assert (header, claims, signature) == (minted.header, minted.claims, sig)
    assert assemble(minted.header, minted.claims, sig) == minted.token
    assert kit.decide(kit.forge(minted.claims)).accepted
