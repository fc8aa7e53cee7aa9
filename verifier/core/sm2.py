"""SM2 signatures with the SM3 digest (GB/T 32918.2, GB/T 35276), as a JWS algorithm named ``SM2``.

The signer ID is always ``1234567812345678``, GB/T 35276's default: Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ G ‖ P)
is hashed in front of the message, so a signature made with another ID does not verify. A JWS carries
the signature as r‖s, 32 bytes each, big-endian (as ES256 does); the JWK is
``{"kty": "EC", "crv": "SM2", "x": …, "y": …}``.

The curve arithmetic is GmSSL's, through the ``gmssl-pyx`` wheel (docs/benchmark.md says why that
library). :class:`Sm2Algorithm` gives it PyJWT's ``Algorithm`` interface, so the trust list and the
issuer treat SM2 keys exactly as ES256 and EdDSA keys. No I/O here; generating a key reads the
operating system's random source, as ``cryptography``'s key generation does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal, overload

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

# The package re-exports these without __all__; importing from where they live keeps mypy's strict re-export rule.
from gmssl_pyx.gmsslext import GmsslInnerError, InvalidValueError, sm2_key_generate, sm2_sign, sm2_verify
from gmssl_pyx.sm2_utils import normalize_sm2_public_key
from jwt.algorithms import Algorithm
from jwt.exceptions import InvalidKeyError
from jwt.types import JWKDict
from jwt.utils import base64url_decode, base64url_encode

SIGNER_ID = b"1234567812345678"
# The order n of the SM2 curve's base point (GB/T 32918.5): r and s of a signature lie in [1, n-1].
ORDER = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
COORDINATE_BYTES = 32


@dataclass(frozen=True, slots=True)
class Sm2PublicKey:
    """A point on the SM2 curve, x ‖ y (64 bytes), checked to be on the curve when made."""

    point: bytes

    @classmethod
    def from_coordinates(cls, x: bytes, y: bytes) -> Sm2PublicKey:
        """The key at (x, y); ``InvalidKeyError`` unless both are 32 bytes and the point is on the curve."""
        if len(x) != COORDINATE_BYTES or len(y) != COORDINATE_BYTES:
            raise InvalidKeyError("SM2 x and y must be 32 bytes each")  # from_jwk cannot get here; callers can
        try:
            return cls(normalize_sm2_public_key(x + y))
        except InvalidValueError:
            raise InvalidKeyError("the SM2 public key is not a point on the curve") from None


@dataclass(frozen=True, slots=True)
class Sm2PrivateKey:
    """An SM2 private key (the 32-byte scalar d) with its public point."""

    secret: bytes
    public: Sm2PublicKey

    @classmethod
    def generate(cls) -> Sm2PrivateKey:
        """A fresh key from GmSSL's generator (the operating system's random source)."""
        point, secret = sm2_key_generate()
        return cls(secret, Sm2PublicKey(point))

    def public_key(self) -> Sm2PublicKey:
        """The public half, named as ``cryptography``'s keys name it."""
        return self.public


class Sm2Algorithm(Algorithm):
    """SM2 with SM3 and the default signer ID, behind PyJWT's algorithm interface."""

    def prepare_key(self, key: Any) -> Any:
        """Only this module's key objects are keys here."""
        if not isinstance(key, Sm2PublicKey | Sm2PrivateKey):
            raise InvalidKeyError("an SM2 key is an Sm2PublicKey or an Sm2PrivateKey")
        return key

    def sign(self, msg: bytes, key: Any) -> bytes:
        """r‖s of a fresh SM2 signature of ``msg`` under the private ``key``."""
        der = sm2_sign(key.secret, key.public.point, msg, SIGNER_ID)
        r, s = decode_dss_signature(der)
        return r.to_bytes(COORDINATE_BYTES, "big") + s.to_bytes(COORDINATE_BYTES, "big")

    def verify(self, msg: bytes, key: Any, sig: bytes) -> bool:
        """Whether ``sig`` (r‖s, exactly 64 bytes) signs ``msg`` under the public ``key``. r and s outside
        [1, n-1] are refused here, before GmSSL sees them (GB/T 32918.2 §7.1, steps B1 and B2)."""
        if len(sig) != 2 * COORDINATE_BYTES:
            return False
        r, s = int.from_bytes(sig[:COORDINATE_BYTES], "big"), int.from_bytes(sig[COORDINATE_BYTES:], "big")
        if not (0 < r < ORDER and 0 < s < ORDER):
            return False
        try:
            return bool(sm2_verify(key.point, msg, encode_dss_signature(r, s), SIGNER_ID))
        except GmsslInnerError:  # InvalidValueError too: whatever GmSSL cannot check is not verified
            return False

    @overload
    @staticmethod
    def to_jwk(key_obj: Any, as_dict: Literal[True]) -> JWKDict: ...

    @overload
    @staticmethod
    def to_jwk(key_obj: Any, as_dict: Literal[False] = False) -> str: ...

    @staticmethod
    def to_jwk(key_obj: Any, as_dict: bool = False) -> JWKDict | str:
        """The JWK of a public key, or of a private key with its ``d``."""
        public = key_obj.public if isinstance(key_obj, Sm2PrivateKey) else key_obj
        jwk: JWKDict = {
            "kty": "EC",
            "crv": "SM2",
            "x": base64url_encode(public.point[:COORDINATE_BYTES]).decode("ascii"),
            "y": base64url_encode(public.point[COORDINATE_BYTES:]).decode("ascii"),
        }
        if isinstance(key_obj, Sm2PrivateKey):
            jwk["d"] = base64url_encode(key_obj.secret).decode("ascii")
        return jwk if as_dict else json.dumps(jwk)

    @staticmethod
    def from_jwk(jwk: str | JWKDict) -> Sm2PublicKey | Sm2PrivateKey:
        """A key from its JWK (a private one when ``d`` is present); ``InvalidKeyError`` for anything else."""
        try:
            obj = json.loads(jwk) if isinstance(jwk, str) else jwk
            if obj.get("kty") != "EC" or obj.get("crv") != "SM2":
                raise InvalidKeyError("an SM2 key has kty EC and crv SM2")
            public = Sm2PublicKey.from_coordinates(_coordinate(obj, "x"), _coordinate(obj, "y"))
            return public if "d" not in obj else Sm2PrivateKey(_coordinate(obj, "d"), public)
        except (ValueError, TypeError, AttributeError) as exc:  # a str that is no JSON object, or no JSON
            raise InvalidKeyError(f"not an SM2 JWK: {exc}") from None


# 32 bytes in unpadded base64url: 43 characters, the last of which leaves its 2 unused bits zero.
_COORDINATE = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


def _coordinate(jwk: dict[str, Any], name: str) -> bytes:
    """Member ``name`` of ``jwk``: 32 bytes, written as unpadded base64url in its one canonical form."""
    value = jwk.get(name)
    if not isinstance(value, str) or not _COORDINATE.fullmatch(value):
        raise InvalidKeyError(f"SM2 {name} must be 32 bytes of unpadded base64url")
    return base64url_decode(value)
