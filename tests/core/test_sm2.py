"""SM2 with SM3 (GB/T 32918.2, GB/T 35276), proven against implementations other than the service's own:
the standard's worked example verifies, OpenSSL's signature over a token is accepted and the service's
signatures verify in OpenSSL; and every malformed SM2 signature is refused, by the decision core and by
``POST /v1/scans`` alike.

OpenSSL 3.0 signs SM2 with an empty signer ID unless it is told one (its manual: "SM2 requires an
Distinguishing ID string to be passed in"), so the tests pass the contract's ID, ``1234567812345678``,
with ``-pkeyopt distid:``; the same signature under any other ID is refused.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from gmssl_pyx.gmsslext import sm2_sign

from tests.forge import NOW, Kit, assemble, codes, header_for, make_kit, split
from tests.helpers import Client, ClientFactory
from verifier.adapters.api_keys import ApiKeys
from verifier.core.catalogue import Catalogue
from verifier.core.sm2 import ORDER, Sm2PrivateKey, Sm2PublicKey
from verifier.core.token import ALGORITHMS, b64url_decode_strict, b64url_encode, json_compact, verify_signature
from verifier.core.trust import TrustList, parse_trust_list

# GM/T 0003.5-2012 (GB/T 32918.5-2017) Annex A: the signature example on the recommended curve,
# message "message digest", signer ID 1234567812345678.
EXAMPLE_X = "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
EXAMPLE_Y = "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
EXAMPLE_R = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
EXAMPLE_S = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
# A SubjectPublicKeyInfo of an SM2 key is this DER prefix (id-ecPublicKey, curve 1.2.156.10197.1.301,
# an uncompressed point) and then x ‖ y; a test checks the prefix against a key OpenSSL made.
SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004")
CONTRACT_ID = b"1234567812345678"  # the contract's signer ID, written out: not the module's constant
OTHER_ID = b"ALICE123@YAHOO.COM"  # the signer ID of GB/T 32918.2's own examples


def _example_key() -> Sm2PublicKey:
    return Sm2PublicKey.from_coordinates(bytes.fromhex(EXAMPLE_X), bytes.fromhex(EXAMPLE_Y))


def test_the_standards_example_verifies() -> None:
    """The GM/T 0003.5 Annex A signature of "message digest" verifies; one changed byte does not."""
    signature = bytes.fromhex(EXAMPLE_R + EXAMPLE_S)
    assert verify_signature("SM2", b"message digest", _example_key(), signature)
    assert not verify_signature("SM2", b"message digesT", _example_key(), signature)


def test_the_standards_example_key_reads_from_a_trust_list_entry() -> None:
    """The example's public key, as a JWK pinned to SM2 in a trust list, verifies the example's signature."""
    entry = {
        "kty": "EC",
        "crv": "SM2",
        "x": b64url_encode(bytes.fromhex(EXAMPLE_X)),
        "y": b64url_encode(bytes.fromhex(EXAMPLE_Y)),
        **{"kid": "sc-police-7", "alg": "SM2", "province": "SC", "unit": "sc-police"},
        **{"valid_from": 0, "valid_until": 2**40},
    }
    trust = parse_trust_list({"keys": [entry]})
    assert trust.problems == ()
    key = trust.keys["sc-police-7"]
    assert verify_signature(key.alg, b"message digest", key.public_key, bytes.fromhex(EXAMPLE_R + EXAMPLE_S))
    assert trust.jwks()["keys"][0] == {**entry, "use": "sig"}


@pytest.mark.parametrize(
    ("label", "change", "problem"),
    [
        ("a point off the curve", {"y": b64url_encode(bytes.fromhex(EXAMPLE_X))}, "not a point on the curve"),
        ("a short x", {"x": b64url_encode(bytes(31))}, "x must be 32 bytes"),
        ("a P-256 curve", {"crv": "P-256"}, "SM2 needs kty EC and crv SM2"),
        ("a private d", {"d": b64url_encode(bytes(32))}, "public keys only"),
        ("x that is not base64url", {"x": "!" * 43}, "x must be 32 bytes of unpadded base64url"),
        ("y with unused bits set", {"y": b64url_encode(bytes.fromhex(EXAMPLE_Y))[:-1] + "T"}, "y must be 32 bytes"),
    ],
)
def test_a_bad_sm2_key_is_refused_and_named(label: str, change: dict[str, str], problem: str) -> None:
    """A trust list entry for SM2 with {label} is refused with a problem that says why; the rest still loads."""
    entry: dict[str, Any] = {
        "kty": "EC",
        "crv": "SM2",
        "x": b64url_encode(bytes.fromhex(EXAMPLE_X)),
        "y": b64url_encode(bytes.fromhex(EXAMPLE_Y)),
        **{"kid": "sc-police-7", "alg": "SM2", "province": "SC", "unit": "sc-police"},
        **{"valid_from": 0, "valid_until": 2**40},
    }
    trust = parse_trust_list({"keys": [{**entry, **change}, {**entry, "kid": "sc-police-8"}]})
    assert list(trust.keys) == ["sc-police-8"]
    assert len(trust.problems) == 1
    assert problem in trust.problems[0], trust.problems


def test_a_private_key_round_trips_through_its_jwk() -> None:
    """An SM2 private key written as a JWK, as the issuer keeps it, reads back and signs what its public key checks."""
    key = Sm2PrivateKey.generate()
    again = ALGORITHMS["SM2"].from_jwk(ALGORITHMS["SM2"].to_jwk(key))
    assert again == key
    assert verify_signature("SM2", b"data", key.public, ALGORITHMS["SM2"].sign(b"data", again))


# --- the kit: the Sichuan police sign with SM2 -----------------------------------------------------


@pytest.fixture(scope="module")
def kit(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """Every unit's ES256 key at NOW, and the Sichuan police rotated to an SM2 key."""
    kit = make_kit(catalogue, tmp_path_factory.mktemp("sm2-keys"), rotate={"sc-police": "SM2"})
    assert kit.key("sc-police").alg == "SM2"
    return kit


def _rs(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _signature(token: str) -> bytes:
    return b64url_decode_strict(token.split(".")[2])


def _r_s(token: str) -> tuple[int, int]:
    raw = _signature(token)
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


def _resign(token: str, signature: bytes) -> str:
    return f"{token.rsplit('.', 1)[0]}.{b64url_encode(signature)}"


def _signing_input(token: str) -> bytes:
    return token.rsplit(".", 1)[0].encode("ascii")


def test_a_genuine_sm2_token_is_accepted(kit: Kit) -> None:
    """The control: a token the SM2 key signed is accepted, and its header names SM2."""
    minted = kit.mint()
    assert minted.header["alg"] == "SM2"
    decision = kit.decide(minted.token)
    assert decision.accepted, decision.reasons


# --- OpenSSL on either side ------------------------------------------------------------------------


OPENSSL = shutil.which("openssl")


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], capture_output=True, text=True, check=False, timeout=30)


@pytest.fixture(scope="module")
def openssl() -> None:
    """Skip, saying why, when the openssl command is missing or cannot make SM2 keys."""
    if OPENSSL is None:
        pytest.skip("no openssl command here (Debian: apt-get install openssl)")
    made = _openssl("genpkey", "-algorithm", "SM2")
    if made.returncode != 0:
        pytest.skip(f"this openssl ({_openssl('version').stdout.strip()}) cannot make SM2 keys: {made.stderr.strip()}")


@dataclass(frozen=True)
class OpensslKey:
    """An SM2 key OpenSSL generated, its public point, and a trust list that also holds it as ``kid``."""

    pem: Path
    point: bytes
    kid: str
    trust: TrustList


def _openssl_key(kit: Kit, directory: Path) -> OpensslKey:
    pem = directory / "openssl-sm2.pem"
    assert _openssl("genpkey", "-algorithm", "SM2", "-out", str(pem)).returncode == 0
    der = directory / "openssl-sm2.spki.der"
    assert _openssl("pkey", "-in", str(pem), "-pubout", "-outform", "DER", "-out", str(der)).returncode == 0
    spki = der.read_bytes()
    assert spki[: len(SPKI_PREFIX)] == SPKI_PREFIX  # the prefix the other direction writes is OpenSSL's own
    point = spki[len(SPKI_PREFIX) :]
    kid = "sc-police-90"
    entry: dict[str, Any] = {"kty": "EC", "crv": "SM2", "x": b64url_encode(point[:32]), "y": b64url_encode(point[32:])}
    entry |= {"kid": kid, "alg": "SM2", "province": "SC", "unit": "sc-police", "valid_from": NOW - 60}
    entry |= {"valid_until": NOW + 60}
    trust = parse_trust_list({"keys": [*kit.trust.jwks()["keys"], entry]})
    assert trust.problems == ()
    return OpensslKey(pem, point, kid, trust)


def _openssl_sign(key: OpensslKey, data: bytes, directory: Path, signer_id: bytes) -> bytes:
    message, signature = directory / "message", directory / "signature.der"
    message.write_bytes(data)
    signed = _openssl(
        *("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey", str(key.pem)),
        *("-in", str(message), "-out", str(signature), "-pkeyopt", f"distid:{signer_id.decode()}"),
    )
    assert signed.returncode == 0, signed.stderr
    return _rs(*decode_dss_signature(signature.read_bytes()))


@pytest.mark.usefixtures("openssl")
def test_a_token_openssl_signed_is_accepted(kit: Kit, tmp_path: Path) -> None:
    """A token whose SM2 signature OpenSSL made (its own key, ID 1234567812345678) is accepted; the same
    token signed by OpenSSL under another signer ID is SIGNATURE_INVALID."""
    key = _openssl_key(kit, tmp_path)
    header = {"alg": "SM2", "kid": key.kid, "typ": "cylp"}
    for signer_id, accepted in ((CONTRACT_ID, True), (OTHER_ID, False)):
        signing_input = f"{b64url_encode(json_compact(header))}.{b64url_encode(json_compact(kit.claims()))}"
        signature = _openssl_sign(key, signing_input.encode("ascii"), tmp_path, signer_id)
        decision = kit.decide(f"{signing_input}.{b64url_encode(signature)}", trust=key.trust)
        if accepted:
            assert decision.accepted, decision.reasons
        else:
            assert codes(decision) == {"SIGNATURE_INVALID"}


@pytest.mark.usefixtures("openssl")
def test_the_services_signatures_verify_in_openssl(kit: Kit, tmp_path: Path) -> None:
    """OpenSSL verifies the issuer's SM2 signature of a token against the key the trust list publishes, with
    ID 1234567812345678; with another ID, or over a changed payload, it refuses."""
    token = kit.mint().token
    trusted = kit.trust.keys[split(token)[0]["kid"]]
    public = directory_file(tmp_path, "public.der", SPKI_PREFIX + trusted.public_key.point)
    signature = directory_file(tmp_path, "signature.der", encode_dss_signature(*_r_s(token)))

    def openssl_verifies(data: bytes, signer_id: bytes) -> bool:
        message = directory_file(tmp_path, "message", data)
        checked = _openssl(
            *("pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pubin", "-keyform", "DER", "-inkey", str(public)),
            *("-in", str(message), "-sigfile", str(signature), "-pkeyopt", f"distid:{signer_id.decode()}"),
        )
        return checked.returncode == 0 and "Signature Verified Successfully" in checked.stdout

    assert openssl_verifies(_signing_input(token), CONTRACT_ID)
    assert not openssl_verifies(_signing_input(token), OTHER_ID)
    assert not openssl_verifies(_signing_input(token)[:-1] + b"A", CONTRACT_ID)


def directory_file(directory: Path, name: str, data: bytes) -> Path:
    """``data`` written to ``directory / name``."""
    path = directory / name
    path.write_bytes(data)
    return path


# --- malformed SM2 signatures ----------------------------------------------------------------------


@dataclass(frozen=True)
class Malformed:
    """A way to spoil a genuine SM2 token, and the reason its rejection must name."""

    id: str
    spoil: Callable[[Kit, str], str]
    expected: str = "SIGNATURE_INVALID"


def _with_rs(r: Callable[[int, int], int], s: Callable[[int, int], int]) -> Callable[[Kit, str], str]:
    def spoil(_kit: Kit, token: str) -> str:
        real_r, real_s = _r_s(token)
        return _resign(token, _rs(r(real_r, real_s), s(real_r, real_s)))

    return spoil


def _gmssl_signed(signer_id: bytes | None) -> Callable[[Kit, str], str]:
    """The token signed by its own key, through GmSSL directly, with ``signer_id`` (None: no Z at all)."""

    def spoil(kit: Kit, token: str) -> str:
        key = kit.key("sc-police").private_key
        der = sm2_sign(key.secret, key.public.point, _signing_input(token), signer_id)
        return _resign(token, _rs(*decode_dss_signature(der)))

    return spoil


def _flip(index: int) -> Callable[[Kit, str], str]:
    def spoil(_kit: Kit, token: str) -> str:
        raw = bytearray(_signature(token))
        raw[index] ^= 0x01
        return _resign(token, bytes(raw))

    return spoil


def _es256_as_sm2(kit: Kit, token: str) -> str:
    """The claims moved to Chongqing and signed by the Chongqing police's ES256 key, under a header saying SM2."""
    key = kit.key("cq-police")
    claims = {**split(token)[1], "iss": "cq-police", "prv": "CQ"}
    return assemble(header_for(key, alg="SM2"), claims, sign=key.sign)


def _payload_changed(token: str) -> str:
    """The token with its expiry a minute later and its signature kept."""
    head, _, sig = token.split(".")
    claims = split(token)[1]
    return f"{head}.{b64url_encode(json_compact({**claims, 'exp': claims['exp'] + 60}))}.{sig}"


MALFORMED = [
    Malformed("r-zero", _with_rs(lambda r, s: 0, lambda r, s: s)),
    Malformed("s-zero", _with_rs(lambda r, s: r, lambda r, s: 0)),
    Malformed("r-and-s-zero", _with_rs(lambda r, s: 0, lambda r, s: 0)),
    Malformed("r-equal-to-n", _with_rs(lambda r, s: ORDER, lambda r, s: s)),
    Malformed("s-equal-to-n", _with_rs(lambda r, s: r, lambda r, s: ORDER)),
    Malformed("r-above-n", _with_rs(lambda r, s: ORDER + 1, lambda r, s: s)),
    Malformed("r-and-s-all-ones", _with_rs(lambda r, s: 2**256 - 1, lambda r, s: 2**256 - 1)),
    Malformed("r-and-s-swapped", _with_rs(lambda r, s: s, lambda r, s: r)),
    Malformed("s-replaced-by-n-minus-s", _with_rs(lambda r, s: r, lambda r, s: ORDER - s)),
    Malformed("truncated-to-63-bytes", lambda _k, t: _resign(t, _signature(t)[:63])),
    Malformed("truncated-to-r-alone", lambda _k, t: _resign(t, _signature(t)[:32])),
    Malformed("empty", lambda _k, t: _resign(t, b"")),
    Malformed("extended-by-a-zero-byte", lambda _k, t: _resign(t, _signature(t) + b"\x00")),
    Malformed("doubled", lambda _k, t: _resign(t, _signature(t) * 2)),
    Malformed("der-instead-of-r-s", lambda _k, t: _resign(t, encode_dss_signature(*_r_s(t)))),
    Malformed("bit-flipped-in-r", _flip(5)),
    Malformed("bit-flipped-in-s", _flip(40)),
    Malformed("signed-under-another-signer-id", _gmssl_signed(OTHER_ID)),
    Malformed("signed-without-the-z-prefix", _gmssl_signed(None)),
    Malformed(
        "signed-by-another-sm2-key",
        lambda kit, t: assemble(*split(t)[:2], sign=lambda d: ALGORITHMS["SM2"].sign(d, Sm2PrivateKey.generate())),
    ),
    Malformed("payload-changed-signature-kept", lambda _kit, t: _payload_changed(t)),
    Malformed(
        "sm2-key-claimed-as-es256",
        lambda kit, t: kit.forge(split(t)[1], unit="sc-police", alg="ES256"),
        "ALGORITHM_NOT_ALLOWED",
    ),
    Malformed("es256-key-claimed-as-sm2", _es256_as_sm2, "ALGORITHM_NOT_ALLOWED"),
]


def test_the_malformed_signatures_are_distinct() -> None:
    """Each way to spoil a signature is there once."""
    ids = [m.id for m in MALFORMED]
    assert len(ids) == len(set(ids)) >= 20


@pytest.mark.parametrize("case", MALFORMED, ids=lambda m: m.id)
def test_the_core_rejects_a_malformed_sm2_signature(kit: Kit, case: Malformed) -> None:
    """decide() rejects the spoiled token with the expected reason and names no licence."""
    token = case.spoil(kit, kit.mint().token)
    decision = kit.decide(token)
    assert case.expected in codes(decision), decision.reasons
    assert decision.licence is None


@pytest.fixture
async def verifier(aiohttp_client: ClientFactory, kit: Kit, tmp_path: Path) -> tuple[Client, ApiKeys]:
    """The verifier app at NOW on the embedded store, trusting the kit's keys (the Sichuan police's SM2 one too)."""
    api_keys = ApiKeys(tmp_path / "api-keys.json")
    app = kit.verifier_app(api_keys)
    return await aiohttp_client(app), api_keys


async def _scan(verifier: tuple[Client, ApiKeys], token: str) -> dict[str, Any]:
    client, api_keys = verifier
    headers = {"Authorization": f"Bearer {api_keys.issue('cq-notary-zhixin-01')}"}
    body = {"token": token, "scenario": "notary-driving-licence"}
    async with client.post("/v1/scans", json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


@pytest.mark.parametrize("case", MALFORMED, ids=lambda m: m.id)
async def test_the_service_rejects_a_malformed_sm2_signature(
    kit: Kit, case: Malformed, verifier: tuple[Client, ApiKeys]
) -> None:
    """POST /v1/scans answers a 200 rejection naming the expected reason, with no licence."""
    answer = await _scan(verifier, case.spoil(kit, kit.mint().token))
    assert answer["decision"] == "rejected"
    assert case.expected in {r["code"] for r in answer["reasons"]}
    assert answer["licence"] is None


async def test_the_service_accepts_a_genuine_sm2_token(kit: Kit, verifier: tuple[Client, ApiKeys]) -> None:
    """The control through HTTP: an SM2 token is accepted at a Chongqing notary office."""
    answer = await _scan(verifier, kit.mint().token)
    assert answer["decision"] == "accepted", answer["reasons"]
    assert answer["licence"]["issuing_province"] == "SC"
