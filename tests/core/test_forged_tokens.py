"""Forged and malformed tokens: every attack in :data:`ATTACKS` is refused by the decision core and
by ``POST /v1/scans`` (a 200 rejection naming the expected reason, or a 4xx problem), never a 5xx.

No attack may make the verifier reach out: while these tests run, every outgoing connection and every
name lookup is recorded, and anything but the test server on the loopback is refused and reported.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.forge import (
    NOW,
    Kit,
    assemble,
    codes,
    header_for,
    make_kit,
    segment,
    set_unused_bits,
    signer,
    split,
)
from tests.helpers import PROBLEM, Client, ClientFactory
from verifier.adapters.api_keys import ApiKeys
from verifier.core.catalogue import Catalogue
from verifier.core.decide import DEFAULT_POLICY
from verifier.core.token import b64url_encode
from verifier.issuer.mint import citizen_id

# The order of the P-256 group and of the Ed25519 group.
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED25519_L = 2**252 + 27742317777372353535851937790883648493
LEEWAY = DEFAULT_POLICY.leeway
MAX_LIFETIME = DEFAULT_POLICY.max_lifetime
# Reasons after which nothing a token says is trusted: such a decision never names a licence.
UNTRUSTED = frozenset(
    {"TOKEN_TOO_LARGE", "TOKEN_MALFORMED", "TOKEN_TYPE_INVALID", "HEADER_UNSUPPORTED", "KEY_UNKNOWN",
     "ALGORITHM_NOT_ALLOWED", "KEY_NOT_VALID", "SIGNATURE_INVALID", "CLAIMS_INVALID", "TOKEN_SHAPE_INVALID"}
)  # fmt: skip


@pytest.fixture(scope="module")
def kit(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """Every unit's ES256 key at NOW, and the Chongqing police rotated to an EdDSA key."""
    kit = make_kit(catalogue, tmp_path_factory.mktemp("forged-keys"), rotate={"cq-police": "EdDSA"})
    assert kit.key("cq-police").alg == "EdDSA"
    return kit


# --- the attacks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """A token shown at a counter for a business."""

    token: str
    counter: str = "cq-notary-zhixin-01"
    scenario: str = "notary-driving-licence"


@dataclass(frozen=True)
class Attack:
    """An attack, the reasons its rejection must name, and the status the HTTP shell answers."""

    id: str
    build: Callable[[Kit], Shown]
    expected: frozenset[str]
    status: int = 200


ATTACKS: list[Attack] = []


def attack(attack_id: str, *expected: str, status: int = 200) -> Callable[[Callable[[Kit], Any]], Any]:
    """Register the decorated builder (returning a token or a :class:`Shown`) in :data:`ATTACKS`."""

    def register(build: Callable[[Kit], Any]) -> Any:
        def shown(kit: Kit) -> Shown:
            made = build(kit)
            return made if isinstance(made, Shown) else Shown(made)

        ATTACKS.append(Attack(attack_id, shown, frozenset(expected), status))
        return build

    return register


def _valid(kit: Kit) -> str:
    return kit.mint().token


def _eddsa(kit: Kit) -> Shown:
    """A Chongqing driving licence signed by the EdDSA key, at a Sichuan notary office."""
    return Shown(kit.mint("driving-licence", "CQ", "jiaoguan-12123").token, "sc-notary-shudu-01")


def _resign(token: str, signature: bytes) -> str:
    head, body, _ = token.split(".")
    return f"{head}.{body}.{b64url_encode(signature)}"


def _signature(token: str) -> bytes:
    from verifier.core.token import b64url_decode_strict

    return b64url_decode_strict(token.split(".")[2])


def _rs(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _valid_rs(kit: Kit) -> tuple[int, int]:
    raw = _signature(_valid(kit))
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


# alg "none" in every spelling, with the signature left off


for _alg in ("none", "None", "NONE", "nOnE", ""):

    @attack(f"alg-none-spelled-{_alg or 'empty'}", "ALGORITHM_NOT_ALLOWED")
    def _(kit: Kit, alg: str = _alg) -> str:
        return kit.forge(kit.claims(), alg=alg, sign=lambda _: b"")


@attack("alg-none-with-an-unknown-kid", "KEY_UNKNOWN")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(), alg="none", kid="attacker-1", sign=lambda _: b"")


# empty and truncated signatures


@attack("signature-empty", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    return _resign(_valid(kit), b"")


@attack("signature-segment-missing", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    return _valid(kit).rsplit(".", 1)[0]


@attack("signature-truncated-to-63-bytes", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    return _resign(_valid(kit), _signature(_valid(kit))[:63])


@attack("signature-truncated-mid-character", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    return _valid(kit)[:-1]  # 85 characters: no byte string encodes to that length


@attack("signature-truncated-to-half", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    return _resign(_valid(kit), _signature(_valid(kit))[:32])


# HMAC keyed with what an attacker knows: the issuer's public key in any form, or a guessable secret


def _public_forms(kit: Kit) -> dict[str, bytes]:
    public = kit.key("sc-police").private_key.public_key()
    jwk = next(k for k in kit.trust.jwks()["keys"] if k["kid"] == kit.key("sc-police").kid)
    return {
        "public-pem": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "public-der": public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        "public-jwk": json.dumps(jwk).encode(),
        "blank-secret": b"",
        "common-secret": b"secret",
    }


def _hmac_signer(alg: str, secret: bytes) -> Callable[[bytes], bytes]:
    digest = {"HS256": hashes.SHA256(), "HS384": hashes.SHA384(), "HS512": hashes.SHA512()}[alg]

    def sign(data: bytes) -> bytes:
        mac = hmac.HMAC(secret, digest)
        mac.update(data)
        return mac.finalize()

    return sign


for _hs in ("HS256", "HS384", "HS512"):
    for _form in ("public-pem", "public-der", "public-jwk", "blank-secret", "common-secret"):

        @attack(f"{_hs.lower()}-keyed-with-{_form}", "ALGORITHM_NOT_ALLOWED")
        def _(kit: Kit, alg: str = _hs, form: str = _form) -> str:
            return kit.forge(kit.claims(), alg=alg, sign=_hmac_signer(alg, _public_forms(kit)[form]))


@attack("hmac-tag-under-the-es256-header", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(), sign=_hmac_signer("HS256", _public_forms(kit)["public-pem"]))


# ECDSA signatures with impossible or degenerate r and s ("psychic signatures", CVE-2022-21449)


for _label, _r, _s in (
    ("r-and-s-zero", 0, 0),
    ("r-and-s-one", 1, 1),
    ("r-and-s-n-minus-1", P256_N - 1, P256_N - 1),
    ("r-and-s-n", P256_N, P256_N),
    ("r-and-s-above-n", P256_N + 1, P256_N + 1),
    ("r-and-s-all-ones", 2**256 - 1, 2**256 - 1),
):

    @attack(f"ecdsa-{_label}", "SIGNATURE_INVALID")
    def _(kit: Kit, r: int = _r, s: int = _s) -> str:
        return _resign(_valid(kit), _rs(r, s))


@attack("ecdsa-real-r-with-s-zero", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    return _resign(_valid(kit), _rs(_valid_rs(kit)[0], 0))


@attack("ecdsa-zero-r-with-real-s", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    return _resign(_valid(kit), _rs(0, _valid_rs(kit)[1]))


@attack("ecdsa-real-r-plus-n", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    r, s = _valid_rs(kit)
    return _resign(_valid(kit), (r + P256_N).to_bytes(33, "big")[-32:] + s.to_bytes(32, "big"))


@attack("ecdsa-der-instead-of-raw-r-s", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    return _resign(_valid(kit), encode_dss_signature(*_valid_rs(kit)))


@attack("ecdsa-der-of-the-same-payload-by-the-real-key", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    key = kit.key("sc-police").private_key
    return kit.forge(kit.claims(), sign=lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())))


@attack("ecdsa-trailing-zero-byte", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    return _resign(_valid(kit), _signature(_valid(kit)) + b"\x00")


@attack("ecdsa-signature-doubled", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    return _resign(_valid(kit), _signature(_valid(kit)) * 2)


# Ed25519 (the Chongqing police key was rotated to EdDSA)


@attack("eddsa-signature-bit-flipped", "SIGNATURE_INVALID")
def _(kit: Kit) -> Shown:
    shown = _eddsa(kit)
    sig = bytearray(_signature(shown.token))
    sig[10] ^= 0x01
    return Shown(_resign(shown.token, bytes(sig)), shown.counter)


@attack("eddsa-signature-extended-by-a-byte", "SIGNATURE_INVALID")
def _(kit: Kit) -> Shown:
    shown = _eddsa(kit)
    return Shown(_resign(shown.token, _signature(shown.token) + b"\x00"), shown.counter)


@attack("eddsa-signature-truncated", "SIGNATURE_INVALID")
def _(kit: Kit) -> Shown:
    shown = _eddsa(kit)
    return Shown(_resign(shown.token, _signature(shown.token)[:63]), shown.counter)


@attack("eddsa-s-not-reduced-s-plus-l", "SIGNATURE_INVALID")
def _(kit: Kit) -> Shown:
    shown = _eddsa(kit)
    sig = _signature(shown.token)
    s = int.from_bytes(sig[32:], "little") + ED25519_L  # the same point equation, a non-canonical encoding
    return Shown(_resign(shown.token, sig[:32] + s.to_bytes(32, "little")), shown.counter)


@attack("eddsa-signature-all-zero", "SIGNATURE_INVALID")
def _(kit: Kit) -> Shown:
    shown = _eddsa(kit)
    return Shown(_resign(shown.token, bytes(64)), shown.counter)


@attack("eddsa-key-claimed-as-es256", "ALGORITHM_NOT_ALLOWED")
def _(kit: Kit) -> Shown:
    claims = _eddsa_claims(kit)
    return Shown(kit.forge(claims, unit="cq-police", alg="ES256"), "sc-notary-shudu-01")


@attack("eddsa-spelled-ed25519", "ALGORITHM_NOT_ALLOWED")
def _(kit: Kit) -> Shown:
    claims = _eddsa_claims(kit)
    return Shown(kit.forge(claims, unit="cq-police", alg="Ed25519"), "sc-notary-shudu-01")


@attack("es256-key-claimed-as-eddsa", "ALGORITHM_NOT_ALLOWED")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(), alg="EdDSA")


def _eddsa_claims(kit: Kit) -> dict[str, Any]:
    return split(_eddsa(kit).token)[1]


# a genuine signature over a changed header or payload


def _swap_payload(token: str, **changes: Any) -> str:
    _head, claims, sig = split(token)
    claims.update(changes)
    return f"{token.split('.', maxsplit=1)[0]}.{segment(claims)}.{sig}"


@attack("payload-licence-number-changed-signature-kept", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    return _swap_payload(_valid(kit), no=citizen_id(1))


@attack("payload-expiry-extended-signature-kept", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    claims = split(_valid(kit))[1]
    return _swap_payload(_valid(kit), exp=claims["exp"] + 60)


@attack("payload-re-serialised-with-spaces-signature-kept", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    token = _valid(kit)
    head, _claims, sig = token.split(".")
    spaced = json.dumps(split(token)[1], ensure_ascii=False, separators=(", ", ": ")).encode()
    return f"{head}.{b64url_encode(spaced)}.{sig}"


@attack("header-re-serialised-signature-kept", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    token = _valid(kit)
    header = split(token)[0]
    reordered = {"typ": header["typ"], "kid": header["kid"], "alg": header["alg"]}
    _, body, sig = token.split(".")
    return f"{segment(reordered)}.{body}.{sig}"


@attack("header-kid-swapped-to-another-unit-of-the-province", "SIGNATURE_INVALID", "ISSUER_KEY_MISMATCH")
def _(kit: Kit) -> str:
    token = _valid(kit)
    _, body, sig = token.split(".")
    return f"{segment(header_for(kit.key('sc-justice')))}.{body}.{sig}"


@attack("signature-spliced-from-another-genuine-token", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    other = kit.mint("driving-licence", "SC", "jiaoguan-12123", licence_no=citizen_id(777)).token
    return _resign(_valid(kit), _signature(other))


# keys and URLs carried in the header


def _attacker_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _attacker_jwk(private: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    from verifier.core.token import ALGORITHMS

    jwk: dict[str, Any] = json.loads(ALGORITHMS["ES256"].to_jwk(private.public_key()))
    return jwk


@attack("embedded-jwk-of-the-attackers-key", "HEADER_UNSUPPORTED", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    private = _attacker_key()
    return kit.forge(kit.claims(), jwk=_attacker_jwk(private), sign=signer(private, "ES256"))


@attack("embedded-jwk-without-kid", "HEADER_UNSUPPORTED", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    private = _attacker_key()
    header = {"alg": "ES256", "typ": "cylp", "jwk": _attacker_jwk(private)}
    return kit.forge(kit.claims(), header=header, sign=signer(private, "ES256"))


# The URLs name the listener of :func:`listener`; {port} is filled in when the attack is built.
URL_HEADERS = {"jku": "/jwks.json", "x5u": "/cert.pem"}
for _member, _path in URL_HEADERS.items():

    @attack(f"header-{_member}-to-the-attackers-server", "HEADER_UNSUPPORTED", "SIGNATURE_INVALID")
    def _(kit: Kit, member: str = _member, path: str = _path) -> str:
        private = _attacker_key()
        url: dict[str, Any] = {member: f"http://127.0.0.1:{{port}}{path}"}  # header changes, as Kit.forge types them
        return kit.forge(kit.claims(), sign=signer(private, "ES256"), **url)

    @attack(f"header-{_member}-on-a-genuine-signature", "HEADER_UNSUPPORTED")
    def _(kit: Kit, member: str = _member, path: str = _path) -> str:
        url: dict[str, Any] = {member: f"http://127.0.0.1:{{port}}{path}"}
        return kit.forge(kit.claims(), **url)


@attack("header-x5c-self-signed-chain", "HEADER_UNSUPPORTED", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    private = _attacker_key()
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    import base64

    return kit.forge(kit.claims(), sign=signer(private, "ES256"), x5c=[base64.b64encode(der).decode()])


@attack("header-jku-to-a-remote-host", "HEADER_UNSUPPORTED")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(), jku="https://keys.attacker.invalid/jwks.json")


# kid as an injection vector, all signed by the genuine key (so only the kid is wrong)


for _label, _kid in (
    ("path-traversal-to-the-private-key", "../../keys/sc-police-1.pem"),
    ("path-traversal-encoded", "..%2f..%2fjwks.json"),
    ("absolute-path", "/etc/passwd"),
    ("shell-command-substitution", "$(curl http://127.0.0.1:1/x)"),
    ("shell-backticks", "`id`"),
    ("shell-separator", "sc-police-1; rm -rf /"),
    ("sql-tautology", "' OR '1'='1"),
    ("sql-comment", "sc-police-1' --"),
    ("empty", ""),
    ("huge-within-the-size-limit", "k" * 300),
    ("nul-byte", "sc-police-1\u0000"),
    ("other-case", "SC-POLICE-1"),
    ("leading-space", " sc-police-1"),
):

    @attack(f"kid-{_label}", "KEY_UNKNOWN")
    def _(kit: Kit, kid: str = _kid) -> str:
        return kit.forge(kit.claims(), kid=kid)


@attack("kid-huge-past-the-size-limit", "TOKEN_TOO_LARGE")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(), kid="k" * 4096)


@attack("kid-a-number", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(), kid=1)


@attack("kid-an-object", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(), kid={"$ne": ""})


# crit and typ


@attack("crit-naming-an-unknown-extension", "HEADER_UNSUPPORTED")
def _(kit: Kit) -> str:
    extension: dict[str, Any] = {"x-must-understand": True}  # not a Python name: passed as a mapping
    return kit.forge(kit.claims(), crit=["x-must-understand"], **extension)


@attack("crit-b64-false", "HEADER_UNSUPPORTED")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(), crit=["b64"], b64=False)


for _typ in ("JWT", "jwt", "CYLP", "cylp+jwt", "application/cylp"):

    @attack(f"typ-{_typ.replace('/', '-').replace('+', '-plus-')}", "TOKEN_TYPE_INVALID")
    def _(kit: Kit, typ: str = _typ) -> str:
        return kit.forge(kit.claims(), typ=typ)


@attack("typ-missing", "TOKEN_TYPE_INVALID")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(), typ=None)


# base64url that is not the one canonical unpadded form


@attack("base64url-padded-header", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    head, body, sig = _valid(kit).split(".")
    return f"{head}{'=' * (-len(head) % 4) or '=='}.{body}.{sig}"


@attack("base64url-padded-signature", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    return _valid(kit) + "=="


@attack("base64url-space-inside", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    token = _valid(kit)
    return token[:20] + " " + token[20:]


@attack("base64url-trailing-newline", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    return _valid(kit) + "\n"


@attack("base64url-standard-alphabet", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    token = _valid(kit)
    if "-" in token or "_" in token:
        return token.replace("-", "+").replace("_", "/")
    return token[:10] + "+" + token[11:]


@attack("base64url-non-alphabet-character", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    token = _valid(kit)
    return token[:30] + "*" + token[31:]


@attack("base64url-unused-bits-set-in-signature", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    head, body, sig = _valid(kit).split(".")
    return f"{head}.{body}.{set_unused_bits(sig)}"


@attack("base64url-fullwidth-dots", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    return _valid(kit).replace(".", "。")


# JSON that is not one plain object


@attack("json-duplicate-alg-none-then-es256", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    key = kit.key("sc-police")
    raw = f'{{"alg":"none","alg":"ES256","kid":"{key.kid}","typ":"cylp"}}'.encode()
    return assemble(raw, kit.claims(), sign=key.sign)


@attack("json-duplicate-exp", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    claims = kit.claims()
    raw = json.dumps(claims, ensure_ascii=False, separators=(",", ":"))[:-1] + f',"exp":{claims["exp"] + 3600}}}'
    return assemble(header_for(kit.key("sc-police")), raw.encode(), sign=kit.key("sc-police").sign)


for _label, _payload in (
    ("array", [1, 2]),
    ("string", b'"cylp"'),
    ("number", b"1790000000"),
    ("null", b"null"),
    ("true", b"true"),
):

    @attack(f"json-payload-is-{_label}", "TOKEN_MALFORMED")
    def _(kit: Kit, payload: Any = _payload) -> str:
        return assemble(header_for(kit.key("sc-police")), payload, sign=kit.key("sc-police").sign)


@attack("json-deep-nesting-within-the-size-limit", "CLAIMS_INVALID")
def _(kit: Kit) -> str:
    raw = b'{"a":' + b"[" * 300 + b"]" * 300 + b"}"
    return assemble(header_for(kit.key("sc-police")), raw, sign=kit.key("sc-police").sign)


@attack("json-deep-nesting-past-the-recursion-limit", "TOKEN_TOO_LARGE")
def _(kit: Kit) -> str:
    return assemble(header_for(kit.key("sc-police")), b"[" * 2500 + b"]" * 2500, b"")  # within the 8192 field


for _label, _literal in (("nan", "NaN"), ("infinity", "Infinity"), ("minus-infinity", "-Infinity")):

    @attack(f"json-{_label}-expiry", "TOKEN_MALFORMED")
    def _(kit: Kit, literal: str = _literal) -> str:
        raw = json.dumps(kit.claims(exp=0), separators=(",", ":")).replace('"exp":0', f'"exp":{literal}')
        return assemble(header_for(kit.key("sc-police")), raw.encode(), sign=kit.key("sc-police").sign)


@attack("json-utf8-bom", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    raw = "\ufeff".encode() + json.dumps(kit.claims()).encode()
    return assemble(header_for(kit.key("sc-police")), raw, sign=kit.key("sc-police").sign)


@attack("json-lone-surrogate-in-licence-number", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    raw = json.dumps(kit.claims(no="\ud800"), ensure_ascii=True).encode()
    return assemble(header_for(kit.key("sc-police")), raw, bytes(64))


@attack("json-invalid-utf8-in-header", "TOKEN_MALFORMED")
def _(kit: Kit) -> str:
    return assemble(b'{"alg":"ES256","kid":"\xff","typ":"cylp"}', kit.claims(), sign=kit.key("sc-police").sign)


@attack("json-huge-expiry-number", "LIFETIME_TOO_LONG")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(exp=10**300))


@attack("json-huge-negative-issued-at", "LIFETIME_TOO_LONG")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(iat=-(10**300)))


@attack("json-expiry-beyond-any-float", "CLAIMS_INVALID")
def _(kit: Kit) -> str:
    raw = json.dumps(kit.claims(exp=0), separators=(",", ":")).replace('"exp":0', '"exp":1e400')
    return assemble(header_for(kit.key("sc-police")), raw.encode(), sign=kit.key("sc-police").sign)


# exp and iat of the wrong type, and at the leeway boundaries


for _claim, _label, _value in (
    ("exp", "string", str(NOW + 300)),
    ("exp", "float", float(NOW + 300)),
    ("exp", "boolean", True),
    ("exp", "null", None),
    ("iat", "string", str(NOW)),
    ("iat", "list", [NOW]),
):

    @attack(f"{_claim}-of-type-{_label}", "CLAIMS_INVALID")
    def _(kit: Kit, claim: str = _claim, value: Any = _value) -> str:
        claims = kit.claims()
        claims[claim] = value  # set even to None: the claim is present, as null
        return kit.forge(claims)


@attack("exp-exactly-at-the-leeway", "TOKEN_EXPIRED")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(iat=NOW - 300, exp=NOW - LEEWAY))


@attack("iat-one-second-past-the-leeway", "ISSUED_IN_FUTURE")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(iat=NOW + LEEWAY + 1, exp=NOW + LEEWAY + 300))


@attack("lifetime-one-second-past-the-limit", "LIFETIME_TOO_LONG")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(iat=NOW, exp=NOW + MAX_LIFETIME + 1))


# real keys, wrong signer


@attack("signed-by-the-other-provinces-police", "ISSUER_KEY_MISMATCH", "PROVINCE_KEY_MISMATCH")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(), unit="cq-police")


@attack("signed-by-another-unit-of-the-province", "ISSUER_KEY_MISMATCH")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(), unit="sc-library" if "sc-library" in kit.catalogue.units else "sc-lib")


@attack("claims-moved-to-the-other-province-same-key", "ISSUER_KEY_MISMATCH", "PROVINCE_KEY_MISMATCH")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(iss="cq-police", prv="CQ"), unit="sc-police")


# tokens of another kind


@attack("generic-jwt-typ-jwt-by-the-real-key", "TOKEN_TYPE_INVALID", "CLAIMS_INVALID")
def _(kit: Kit) -> str:
    claims = {"sub": "1234567890", "name": "John Doe", "iat": NOW, "exp": NOW + 300}
    return kit.forge(claims, unit="sc-police", typ="JWT")


@attack("our-claims-under-typ-jwt", "TOKEN_TYPE_INVALID")
def _(kit: Kit) -> str:
    return kit.forge(kit.claims(), typ="JWT")


@attack("genuine-token-re-signed-for-another-licence-by-an-attacker", "SIGNATURE_INVALID")
def _(kit: Kit) -> str:
    private = _attacker_key()
    return kit.forge(kit.claims(no=citizen_id(2), jti="forged-jti-1"), sign=signer(private, "ES256"))


@attack("genuine-library-card-shown-for-a-driving-licence-business", "SCENARIO_NOT_FOR_LICENCE")
def _(kit: Kit) -> Shown:
    token = kit.mint("library-card", "SC", "tianfu-tongban").token
    return Shown(token)


@attack("empty-token", status=400)
def _(kit: Kit) -> str:
    return ""


@attack("token-past-the-size-limit", "TOKEN_TOO_LARGE")
def _(kit: Kit) -> str:
    return _valid(kit) + "A" * 1024


def test_there_are_at_least_forty_distinct_attacks() -> None:
    """The table names at least 40 distinct attacks, each id once."""
    ids = [a.id for a in ATTACKS]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 40


# --- no outbound request ------------------------------------------------------------------------


@dataclass
class Outbound:
    """Every connection and name lookup made while a test runs; ``allowed`` are loopback ports."""

    allowed: set[int]
    attempts: list[str]


@pytest.fixture
def outbound(monkeypatch: pytest.MonkeyPatch) -> Outbound:
    """Refuse and record any connection except to an allowed loopback port, and any name lookup but
    the loopback's."""
    seen = Outbound(set(), [])
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        host, port = (address[0], address[1]) if isinstance(address, tuple) else (str(address), 0)
        if host in ("127.0.0.1", "::1") and port in seen.allowed:
            return
        seen.attempts.append(f"connect {host}:{port}")
        raise ConnectionRefusedError(f"test forbids connecting to {host}:{port}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "::1", "localhost", None):
            seen.attempts.append(f"lookup {host}")
            raise socket.gaierror(f"test forbids looking up {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


@dataclass
class Listener:
    """A loopback server an attacker's URL may name; ``hits`` counts connections it received."""

    port: int
    hits: int = 0


@pytest.fixture
async def listener() -> Any:
    """A TCP listener on the loopback that records connections and answers nothing."""
    record = Listener(0)

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        record.hits += 1
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    record.port = server.sockets[0].getsockname()[1]
    yield record
    server.close()
    await server.wait_closed()


def test_outbound_guard_refuses_a_connection_it_was_not_told_about(outbound: Outbound) -> None:
    """The guard itself works: a connection to an unlisted port is refused and recorded."""
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", 9))
    assert outbound.attempts == ["connect 127.0.0.1:9"]


# --- the tests ----------------------------------------------------------------------------------


def _built(kit: Kit, item: Attack, port: int = 9) -> Shown:
    shown = item.build(kit)
    return Shown(shown.token.replace("{port}", str(port)), shown.counter, shown.scenario)


@pytest.mark.parametrize("item", ATTACKS, ids=lambda a: a.id)
def test_the_core_rejects(kit: Kit, item: Attack, outbound: Outbound) -> None:
    """decide() rejects the attack with its expected reasons, and an untrusted token names no licence."""
    shown = _built(kit, item)
    decision = kit.decide(shown.token, shown.counter, shown.scenario)
    assert not decision.accepted
    assert item.expected <= codes(decision), decision.reasons
    if codes(decision) & UNTRUSTED:
        assert decision.licence is None
        assert decision.jti is None
    assert outbound.attempts == []


@pytest.fixture
async def verifier(
    aiohttp_client: ClientFactory, kit: Kit, tmp_path: Path, outbound: Outbound
) -> tuple[Client, ApiKeys]:
    """The verifier app at NOW on the embedded store, trusting the kit's keys; only its own port is reachable."""
    api_keys = ApiKeys(tmp_path / "api-keys.json")
    app = kit.verifier_app(api_keys)
    client = await aiohttp_client(app)
    assert client.port is not None
    outbound.allowed.add(client.port)
    return client, api_keys


async def _post(verifier: tuple[Client, ApiKeys], shown: Shown) -> tuple[int, str, dict[str, Any]]:
    client, api_keys = verifier
    body = {"token": shown.token, "scenario": shown.scenario}
    headers = {"Authorization": f"Bearer {api_keys.issue(shown.counter, replace=True)}"}
    async with client.post("/v1/scans", json=body, headers=headers) as response:
        text = await response.text()
        return response.status, response.content_type, json.loads(text)


@pytest.mark.parametrize("item", ATTACKS, ids=lambda a: a.id)
async def test_the_service_rejects(
    kit: Kit, item: Attack, verifier: tuple[Client, ApiKeys], outbound: Outbound, listener: Listener
) -> None:
    """POST /v1/scans answers with a 200 rejection naming the attack's reasons (or its 4xx) and reaches out nowhere."""
    status, content_type, body = await _post(verifier, _built(kit, item, listener.port))
    assert status == item.status, body
    if status == 200:
        assert body["decision"] == "rejected"
        assert item.expected <= {r["code"] for r in body["reasons"]}, body["reasons"]
    else:
        assert content_type == PROBLEM
    await asyncio.sleep(0.05)  # a fetch, had one been started, would have connected by now
    assert listener.hits == 0
    assert outbound.attempts == []


async def test_a_genuine_token_is_accepted_under_the_same_guard(
    kit: Kit, verifier: tuple[Client, ApiKeys], outbound: Outbound
) -> None:
    """The control: a genuine ES256 and a genuine EdDSA token pass through the same service and guard."""
    for shown in (Shown(_valid(kit)), _eddsa(kit)):
        status, _, body = await _post(verifier, shown)
        assert (status, body["decision"]) == (200, "accepted"), body
    assert outbound.attempts == []


@pytest.mark.parametrize(
    ("iat", "exp"),
    [(NOW - 300, NOW - LEEWAY + 1), (NOW + LEEWAY, NOW + LEEWAY + 300), (NOW, NOW + MAX_LIFETIME)],
    ids=["exp-one-second-inside-the-leeway", "iat-at-the-leeway", "lifetime-at-the-limit"],
)
def test_the_boundaries_just_inside_are_accepted(kit: Kit, iat: int, exp: int) -> None:
    """One second inside each time boundary the attacks above cross, the token is accepted."""
    decision = kit.decide(kit.forge(kit.claims(iat=iat, exp=exp)))
    assert decision.accepted, decision.reasons


async def test_a_replayed_token_is_rejected_at_a_second_counter(kit: Kit, verifier: tuple[Client, ApiKeys]) -> None:
    """A genuine token accepted at one counter is REPLAYED at another, and again at a third."""
    token = kit.mint(licence_no=citizen_id(101)).token
    first = await _post(verifier, Shown(token))
    assert first[2]["decision"] == "accepted"
    for counter in ("cq-notary-zhixin-02", "cq-notary-yubei-01"):
        status, _, body = await _post(verifier, Shown(token, counter))
        assert (status, [r["code"] for r in body["reasons"]]) == (200, ["REPLAYED"])


async def test_a_malleated_ecdsa_signature_cannot_use_a_token_twice(kit: Kit, verifier: tuple[Client, ApiKeys]) -> None:
    """(r, n−s) verifies as well as (r, s) — ECDSA allows it — but one-time use is keyed on jti, so the
    second form of an accepted token is never accepted: ALREADY_USED_HERE at the same counter (whose claim it
    is), REPLAYED at another."""
    token = kit.mint(licence_no=citizen_id(102)).token
    r, s = int.from_bytes(_signature(token)[:32], "big"), int.from_bytes(_signature(token)[32:], "big")
    twin = _resign(token, _rs(r, P256_N - s))
    assert twin != token
    assert kit.decide(twin).accepted  # the core cannot tell them apart: no state
    assert (await _post(verifier, Shown(token)))[2]["decision"] == "accepted"
    for counter, code in (("cq-notary-zhixin-01", "ALREADY_USED_HERE"), ("cq-notary-zhixin-02", "REPLAYED")):
        status, _, body = await _post(verifier, Shown(twin, counter))
        assert (status, [r["code"] for r in body["reasons"]]) == (200, [code])


async def test_a_forged_copy_with_the_same_jti_cannot_spend_it_first(
    kit: Kit, verifier: tuple[Client, ApiKeys]
) -> None:
    """A forgery carrying a genuine token's jti is rejected and claims nothing: the genuine token is still accepted."""
    token = kit.mint(licence_no=citizen_id(103)).token
    claims = split(token)[1]
    forged = kit.forge({**claims, "no": citizen_id(104)}, sign=signer(_attacker_key(), "ES256"))
    assert (await _post(verifier, Shown(forged)))[2]["decision"] == "rejected"
    assert (await _post(verifier, Shown(token, "cq-notary-zhixin-02")))[2]["decision"] == "accepted"
