"""The ES256 check calls cryptography directly: it must answer exactly as PyJWT's ``ECAlgorithm.verify``
for every signature, genuine or forged."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from verifier.core.token import ALGORITHMS, verify_signature

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # the order of P-256
MESSAGE = b"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJzYy1wb2xpY2UifQ"
KEY = ec.generate_private_key(ec.SECP256R1())
OTHER = ec.generate_private_key(ec.SECP256R1())
GOOD = ALGORITHMS["ES256"].sign(MESSAGE, KEY)


def raw(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


R, S = int.from_bytes(GOOD[:32], "big"), int.from_bytes(GOOD[32:], "big")
SIGNATURES = {
    "genuine": GOOD,
    "last-bit-flipped": GOOD[:-1] + bytes([GOOD[-1] ^ 1]),
    "r-and-s-swapped": GOOD[32:] + GOOD[:32],
    "s-negated": raw(R, N - S),  # the other valid s for ECDSA's malleability: PyJWT accepts it too
    "zeros": bytes(64),
    "r0-s0": raw(0, 0),
    "r1-s1": raw(1, 1),
    "r-n": raw(N, S),
    "s-n": raw(R, N),
    "r-n-minus-1": raw(N - 1, S),
    "all-ff": b"\xff" * 64,
    "truncated": GOOD[:63],
    "extended": GOOD + b"\x00",
    "empty": b"",
    "der-instead-of-raw": encode_dss_signature(R, S),
    "other-key": ALGORITHMS["ES256"].sign(MESSAGE, OTHER),
}


@pytest.mark.parametrize("name", SIGNATURES)
@pytest.mark.parametrize("message", [MESSAGE, MESSAGE + b"x"], ids=["same-message", "changed-message"])
def test_es256_answers_as_pyjwt(name: str, message: bytes) -> None:
    """Same verdict as PyJWT for the signature over the message and over a changed one."""
    signature, public_key = SIGNATURES[name], KEY.public_key()
    expected = ALGORITHMS["ES256"].verify(message, public_key, signature)
    assert verify_signature("ES256", message, public_key, signature) is expected
    if name == "genuine":
        assert expected is (message == MESSAGE)  # the check can fail: the comparison is not vacuous
