"""The trust list: issuer public keys as a JWKS in which every key also names its province, its
issuing unit, its one algorithm and its validity window.

    {"keys": [{"kty": "EC", "crv": "P-256", "x": "…", "y": "…", "use": "sig",
               "kid": "sc-police-1", "alg": "ES256", "province": "SC", "unit": "sc-police",
               "valid_from": 1790000000, "valid_until": 1821536000}]}

Each province's licence platform publishes its own keys: a source is trusted only for its province's
units (:func:`vouched_by`), and the lists of several sources make one (:func:`combine`).

Parsing is pure (no file or network reads): the shell fetches the document, this module checks it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jwt.exceptions import InvalidKeyError

from verifier.core.token import ALGORITHMS

# The key type and curve each pinned algorithm must come with.
_KEY_SHAPES: dict[str, tuple[str, str]] = {"ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519"), "SM2": ("EC", "SM2")}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """One issuer public key, pinned to one algorithm, unit, province and validity window."""

    kid: str
    alg: str
    unit: str
    province: str
    valid_from: int
    valid_until: int
    public_key: Any

    def valid_at(self, now: float) -> bool:
        """Whether the key may sign at ``now``."""
        return self.valid_from <= now < self.valid_until


@dataclass(frozen=True, slots=True)
class TrustList:
    """Keys by ``kid``, and the problems of entries that were refused."""

    keys: dict[str, TrustedKey]
    problems: tuple[str, ...] = ()

    def jwks(self) -> dict[str, Any]:
        """The public document again (``GET /v1/trust-list``)."""
        return {"keys": [public_jwk(k) for k in self.keys.values()]}


def public_jwk(key: TrustedKey) -> dict[str, Any]:
    """The JWKS entry of ``key``."""
    jwk: dict[str, Any] = json.loads(ALGORITHMS[key.alg].to_jwk(key.public_key))
    jwk.update(
        use="sig",
        kid=key.kid,
        alg=key.alg,
        province=key.province,
        unit=key.unit,
        valid_from=key.valid_from,
        valid_until=key.valid_until,
    )
    return jwk


def parse_trust_list(doc: Any) -> TrustList:
    """Build a trust list from a JWKS document; a bad entry is refused and named, not fatal."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        return TrustList({}, ('the trust list is not a JWKS object with a "keys" array',))
    keys: dict[str, TrustedKey] = {}
    problems: list[str] = []
    for index, entry in enumerate(doc["keys"]):
        try:
            key = _trusted_key(entry)
        except (ValueError, TypeError, KeyError, InvalidKeyError) as exc:  # PyJWT's key errors are not ValueErrors
            problems.append(f"key #{index + 1}: {exc}")
            continue
        if key.kid in keys:
            problems.append(f"key #{index + 1}: duplicate kid {key.kid!r}")
            continue
        keys[key.kid] = key
    return TrustList(keys, tuple(problems))


def _trusted_key(entry: Any) -> TrustedKey:
    if not isinstance(entry, dict):
        raise TypeError("not an object")
    for name, kind in (
        ("kid", str),
        ("alg", str),
        ("unit", str),
        ("province", str),
        ("valid_from", int),
        ("valid_until", int),
    ):
        if type(entry.get(name)) is not kind:
            raise ValueError(f"{name} missing or not a {kind.__name__}")
    alg = entry["alg"]
    if alg not in _KEY_SHAPES:
        raise ValueError(f"kid {entry['kid']!r}: algorithm {alg!r} is not accepted (ES256, EdDSA or SM2)")
    kty, crv = _KEY_SHAPES[alg]
    if entry.get("kty") != kty or entry.get("crv") != crv:
        raise ValueError(f"kid {entry['kid']!r}: {alg} needs kty {kty} and crv {crv}")
    if _PRIVATE_MEMBERS & entry.keys():
        raise ValueError(f"kid {entry['kid']!r}: a trust list holds public keys only")
    if entry["province"] not in ("SC", "CQ"):
        raise ValueError(f"kid {entry['kid']!r}: province must be SC or CQ")
    jwk = {k: entry[k] for k in ("kty", "crv", "x", "y") if k in entry}
    public_key = ALGORITHMS[alg].from_jwk(jwk)
    return TrustedKey(
        entry["kid"], alg, entry["unit"], entry["province"], entry["valid_from"], entry["valid_until"], public_key
    )


def vouched_by(trust: TrustList, province: str | None, unit_provinces: Mapping[str, str]) -> TrustList:
    """The keys of ``trust`` that a source of ``province`` (None: a source for both) may vouch for. A key of
    the other province, or of a unit that ``unit_provinces`` (unit code -> province, from the catalogue)
    places elsewhere than the key says, is refused and named in ``problems``: a compromised or mistaken
    source of one province can never make a key trusted for the other's units."""
    keys: dict[str, TrustedKey] = {}
    problems = list(trust.problems)
    for kid, key in trust.keys.items():
        home = unit_provinces.get(key.unit, key.province)
        if home != key.province:
            problems.append(f"kid {kid!r}: unit {key.unit!r} is in {home}, the key says {key.province}")
        elif province is not None and key.province != province:
            problems.append(f"kid {kid!r}: a key for {key.unit!r} of {key.province} from the {province} source")
        else:
            keys[kid] = key
    return TrustList(keys, tuple(problems))


def combine(lists: Iterable[TrustList]) -> TrustList:
    """One trust list of several sources' lists. A ``kid`` that two sources publish is refused in both, since
    a token naming it could not say which key it means; those are the problems of the result (each source's
    own refusals stay with its list)."""
    lists = list(lists)
    seen = Counter(kid for trust in lists for kid in trust.keys)
    keys = {kid: key for trust in lists for kid, key in trust.keys.items() if seen[kid] == 1}
    clashes = tuple(f"kid {kid!r}: published by {n} sources, trusted from none" for kid, n in seen.items() if n > 1)
    return TrustList(keys, clashes)
