"""Building presentation tokens by hand, for the tests of the decision.

The issuer (:func:`verifier.issuer.mint.mint`) refuses what the catalogue does not allow; an attacker does
not ask it. These helpers sign any header and claims with any key, or attach any signature bytes, or
assemble a token from raw segments, so that every way a token can be wrong can be shown to the
verifier. Nothing here reads the clock: every time is :data:`NOW` or given.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization

from verifier.adapters.api_keys import ApiKeys
from verifier.adapters.memory_store import MemoryStore
from verifier.adapters.trust_source import JwksTrustSource
from verifier.core.catalogue import Catalogue, Counter
from verifier.core.decide import DEFAULT_POLICY, Decision, Policy, decide
from verifier.core.token import ALGORITHMS, TYP, b64url_encode, json_compact
from verifier.core.trust import TrustList
from verifier.issuer.keys import KeyRing, KeyStore, SigningKey
from verifier.issuer.mint import Minted, mint
from verifier.service.settings import Settings
from verifier.web.app import create_app

CST = dt.timezone(dt.timedelta(hours=8))
# 2026-06-01 10:00 in Chongqing and Chengdu: a Monday morning at the counter.
NOW = int(dt.datetime(2026, 6, 1, 10, 0, tzinfo=CST).timestamp())
TODAY = dt.date(2026, 6, 1)
EPOCH = dt.date(1970, 1, 1)  # tokens carry licence dates as days since this day
LAST_DAY = (dt.date.max - EPOCH).days  # 9999-12-31, the last day a token can name

Signer = Callable[[bytes], bytes]


def day(date: dt.date) -> int:
    """``date`` as a token writes it (``vf``, ``vu``): days since 1970-01-01."""
    return (date - EPOCH).days


def segment(value: dict[str, Any] | list[Any] | bytes | str) -> str:
    """One base64url segment: JSON for a dict or list (as the issuer writes it), raw for bytes or text."""
    if isinstance(value, dict | list):
        raw = json_compact(value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
    else:
        raw = value
    return b64url_encode(raw)


def assemble(header: Any, payload: Any, signature: bytes | str = b"", *, sign: Signer | None = None) -> str:
    """A compact JWS from parts that may be anything: dicts, raw JSON bytes, or ready segments
    (``str`` is taken as raw text and encoded). With ``sign``, the signature covers what was built."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    if sign is not None:
        signature = sign(signing_input.encode("ascii"))
    tail = signature if isinstance(signature, str) else b64url_encode(signature)
    return f"{signing_input}.{tail}"


def signer(key: SigningKey | Any, alg: str | None = None) -> Signer:
    """The raw-signature function of a ring key, or of a bare cryptography private key with ``alg``."""
    if isinstance(key, SigningKey):
        return key.sign
    algorithm = ALGORITHMS[alg or "ES256"]
    return lambda data: bytes(algorithm.sign(data, key))


def hs256_with_public_pem(key: SigningKey) -> Signer:
    """HMAC-SHA256 keyed with the PEM of ``key``'s public half: the classic algorithm-confusion forgery."""
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return lambda data: hmac.new(pem, data, hashlib.sha256).digest()


def split(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Header, claims and the signature segment of a well-formed token (no checks)."""

    def load(part: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return value

    head, body, sig = token.split(".")
    return load(head), load(body), sig


def header_for(key: SigningKey, **changes: Any) -> dict[str, Any]:
    """The header ``key`` would write, with ``changes`` applied (a value of ``None`` drops the member)."""
    header: dict[str, Any] = {"alg": key.alg, "kid": key.kid, "typ": TYP}
    return _apply(header, changes)


def _apply(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class Kit:
    """The real catalogue and a key ring in a folder of its own, with short ways to mint, forge and
    decide at a fixed time."""

    catalogue: Catalogue
    keyring: KeyRing
    trust: TrustList
    now: int = NOW

    def key(self, unit: str) -> SigningKey:
        """The key ``unit`` signs with at :attr:`now`."""
        return self.keyring.signing_key(unit, self.now)

    def counter(self, counter_id: str) -> Counter:
        """A counter of the registry by id."""
        return self.catalogue.counters[counter_id]

    def mint(
        self,
        licence_type: str = "driving-licence",
        province: str = "SC",
        channel: str = "jiaoguan-12123",
        *,
        now: float | None = None,
        **options: Any,
    ) -> Minted:
        """A token as the issuer signs it for an app (defaults: a Sichuan driving licence in 交管12123)."""
        return mint(
            self.catalogue,
            self.keyring,
            licence_type=licence_type,
            province=province,
            channel=channel,
            now=self.now if now is None else now,
            **options,
        )

    def claims(self, **changes: Any) -> dict[str, Any]:
        """The claims of a fresh Sichuan driving licence, with ``changes`` (``None`` drops a claim)."""
        return _apply(self.mint().claims, changes)

    def seq(self, licence_type: str) -> int:
        """The seq that names ``licence_type`` in a token's ``lt``."""
        return self.catalogue.licences[licence_type].seq

    def unknown_seq(self) -> int:
        """A seq one past the last row of the list: no licence type has it."""
        return max(lt.seq for lt in self.catalogue.by_seq()) + 1

    def forge(
        self,
        claims: dict[str, Any],
        *,
        unit: str | None = None,
        key: SigningKey | None = None,
        header: dict[str, Any] | None = None,
        sign: Signer | None = None,
        **header_changes: Any,
    ) -> str:
        """``claims`` signed by ``unit``'s key (default: the unit the claims name, else the Sichuan
        police), under that key's header with ``header_changes`` — or under ``header`` as given, or
        signed by ``sign``."""
        named = claims.get("iss")
        key = key or self.key(unit or (named if isinstance(named, str) else "sc-police"))
        head = header if header is not None else header_for(key, **header_changes)
        return assemble(head, claims, sign=sign or key.sign)

    def verifier_app(self, api_keys: ApiKeys) -> web.Application:
        """The verifier app at :attr:`now` on the embedded store, trusting this kit's keys."""
        return create_app(
            Settings(counter_rate=0),  # the clock stands still here: a rate's budget would never refill
            store=MemoryStore(clock=lambda: self.now),
            clock=lambda: self.now,
            trust=JwksTrustSource.static(self.trust),
            catalogue=self.catalogue,
            api_keys=api_keys,
        )

    def decide(
        self,
        token: str,
        counter: str = "cq-notary-zhixin-01",
        scenario: str = "notary-driving-licence",
        *,
        now: float | None = None,
        policy: Policy = DEFAULT_POLICY,
        trust: TrustList | None = None,
    ) -> Decision:
        """The decision on ``token`` at ``counter`` for ``scenario`` (default: a Chongqing notary office)."""
        return decide(
            token,
            trust=trust or self.trust,
            catalogue=self.catalogue,
            counter=self.counter(counter),
            scenario=scenario,
            now=self.now if now is None else now,
            policy=policy,
        )


def make_kit(catalogue: Catalogue, directory: Path, *, now: int = NOW, rotate: dict[str, str] | None = None) -> Kit:
    """Keys for every issuing unit, created in ``directory`` as the issuer would at ``now``; each unit
    ``rotate`` names is then rotated to a key of the algorithm it names, which signs from then on."""
    store = KeyStore(catalogue.units.values(), directory)
    store.keyring(now)
    for unit, alg in (rotate or {}).items():
        store.rotate(unit, alg=alg, now=now)
    ring = store.keyring(now)
    return Kit(catalogue, ring, ring.trust_list(), now)


def codes(decision: Decision) -> set[str]:
    """The reason codes of a decision."""
    return {r.code for r in decision.reasons}


def ordered_codes(decision: Decision) -> list[str]:
    """The reason codes in the order the decision gives them."""
    return [r.code for r in decision.reasons]


_B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def set_unused_bits(seg: str) -> str:
    """The same bytes written non-canonically: the low, unused bits of the last character set.
    Only segments whose length is 2 or 3 mod 4 have unused bits."""
    if len(seg) % 4 not in (2, 3):
        raise ValueError("this segment has no unused bits")
    last = _B64URL_ALPHABET.index(seg[-1])
    return seg[:-1] + _B64URL_ALPHABET[last | 1]
