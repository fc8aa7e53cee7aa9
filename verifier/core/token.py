"""The presentation token: a compact JWS small enough for a QR code of version 16 at level M.

Header ``{"alg", "kid", "typ": "cylp"}`` and nothing else; ``alg`` is ES256, EdDSA or SM2 (SM2 with SM3,
:mod:`verifier.core.sm2`). Claims (short names, because every byte costs QR modules):

    iss  issuing unit code          prv  issuing province (SC | CQ)
    lt   licence type, by its 序号 (seq) in the official list
    ch   channel (the app that showed it)
    no   licence number, of its type's kind (a 公民身份号码, a 统一社会信用代码, or the type's own digits)
    hn   holder name, masked (张*, 欧阳**, 四川**公司)
    sub  pseudonymous subject       vf   licence valid from, days since 1970-01-01
    vu   licence valid until, days since 1970-01-01
    iat  issued at (s)              exp  expires (s)              jti  unique id
    plus the licence type's own attributes (for example ``cls``, the driving licence class).

Real licence numbers are 18 characters (a driving licence carries its holder's citizen ID number, an
enterprise licence its unified social credit code), which no longer fits a version-15 code at level M
(412 bytes): the budget is a version-16 code at level M, 450 bytes. The header and the 64-byte signature
take about 150 of them, which is why the type is its seq and dates are day numbers.

This module encodes, signs and strictly parses; it decides nothing. It imports no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwt.algorithms import Algorithm, ECAlgorithm, OKPAlgorithm

from verifier.core.sm2 import Sm2Algorithm
from verifier.errors import TokenMalformedError

TYP = "cylp"
HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})
# Claim name -> the JSON type it must have (bool is not an int here).
CLAIM_TYPES: dict[str, type] = {
    "iss": str,
    "prv": str,
    "lt": int,
    "ch": str,
    "no": str,
    "hn": str,
    "sub": str,
    "vf": int,
    "vu": int,
    "iat": int,
    "exp": int,
    "jti": str,
}
MAX_TOKEN_BYTES = 1024  # tokens are at most QR_MAX_BYTES; anything far larger is not ours
# The QR code a token must fit, and its byte capacity. Level M (15% of the code may be lost) because the
# code is read off a phone's screen, with glare and the phone held by hand; version 16 (81 × 81 modules)
# is the smallest that holds the largest real token, and is only 4 modules wider than version 15.
QR_VERSION = 16
QR_ERROR_LEVEL = "M"
QR_MAX_BYTES = 450

# One algorithm object per name; a key's pinned algorithm picks one, the token never does.
ALGORITHMS: dict[str, Algorithm] = {
    "ES256": ECAlgorithm(ECAlgorithm.SHA256),
    "EdDSA": OKPAlgorithm(),
    "SM2": Sm2Algorithm(),
}

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A token split and decoded, its signature not yet checked; ``size`` is its length in bytes."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes
    size: int


def verify_signature(alg: str, signing_input: bytes, public_key: Any, signature: bytes) -> bool:
    """Whether ``signature`` signs ``signing_input`` under ``public_key`` with ``alg``, the key's pinned
    algorithm. ES256 is checked as PyJWT's ``ECAlgorithm.verify`` checks it — r‖s of exactly 64 bytes,
    turned into DER, then ECDSA with SHA-256 — but calls cryptography directly: PyJWT builds its objects
    anew for every check, a sixth of the check's cost in the service. EdDSA goes through PyJWT, SM2
    through :class:`~verifier.core.sm2.Sm2Algorithm`."""
    if alg != "ES256":
        return ALGORITHMS[alg].verify(signing_input, public_key, signature)
    if len(signature) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public_key.verify(der, signing_input, _ECDSA_SHA256)
    except InvalidSignature:
        return False
    return True


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode_strict(segment: str) -> bytes:
    """Decode unpadded base64url, refusing padding, foreign characters and non-zero unused bits
    (so that exactly one text encodes each byte string)."""
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None
    if b64url_encode(raw) != segment:
        raise ValueError("non-canonical base64url (unused bits set)")
    return raw


def json_compact(value: Any) -> bytes:
    """JSON as the issuer writes it: no spaces, UTF-8, no escapes for Chinese."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode(header: dict[str, Any], claims: dict[str, Any], sign: Any) -> str:
    """Serialise and sign; ``sign`` maps the signing input to the raw signature."""
    signing_input = f"{b64url_encode(json_compact(header))}.{b64url_encode(json_compact(claims))}"
    return f"{signing_input}.{b64url_encode(sign(signing_input.encode('ascii')))}"


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate member {key!r}")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _canonical(raw: bytes) -> Any:
    """The value of ``raw`` when it is exactly as the issuer writes JSON (compact, UTF-8, each member
    once), else None. orjson refuses NaN, lone surrogates and integers beyond 64 bits, and writing
    the value back gives ``raw`` byte for byte only if no member was repeated: every genuine token
    takes this path, and anything else meets the strict parser below."""
    try:
        value = orjson.loads(raw)
        return value if isinstance(value, dict) and orjson.dumps(value) == raw else None
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # also nesting beyond what orjson writes
        return None


def _json_object(raw: bytes, part: str) -> dict[str, Any]:
    fast = _canonical(raw)
    if fast is not None:
        return fast  # type: ignore[no-any-return]
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise TokenMalformedError("TOKEN_MALFORMED", f"{part} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise TokenMalformedError("TOKEN_MALFORMED", f"{part} is not a JSON object")
    if b"\\u" in raw:  # an escaped lone surrogate (\ud800) decodes to a string no UTF-8 text holds
        try:
            json_compact(value)
        except UnicodeEncodeError:
            raise TokenMalformedError("TOKEN_MALFORMED", f"{part} holds a lone surrogate escape") from None
    return value


def parse(token: str) -> ParsedToken:
    """Split and decode a compact JWS strictly; raise :class:`TokenMalformedError` with a reason code."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenMalformedError("TOKEN_TOO_LARGE", f"{len(token)} characters, at most {MAX_TOKEN_BYTES}")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenMalformedError("TOKEN_MALFORMED", f"{len(parts)} parts, a compact JWS has 3")
    try:
        header_raw, claims_raw, signature = (b64url_decode_strict(p) for p in parts)
    except ValueError as exc:
        raise TokenMalformedError("TOKEN_MALFORMED", f"bad base64url: {exc}") from None
    header = _json_object(header_raw, "header")
    claims = _json_object(claims_raw, "payload")
    return ParsedToken(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature, len(token))
