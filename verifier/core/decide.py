"""The decision: is this shown token accepted at this counter, for this business, now?

A pure function of its arguments — no I/O, no clock, no event loop. It returns every reason that
applies, not only the first, and a rejection is a value. One-time use and revocation need shared
state and are added by the service around it (:mod:`verifier.service.scan`).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from verifier.core.catalogue import PROVINCES, Catalogue, Counter, LicenceType
from verifier.core.reasons import TEMPORARY, Reason
from verifier.core.shape import shape_problems
from verifier.core.token import CLAIM_TYPES, HEADER_MEMBERS, TYP, ParsedToken, parse, verify_signature
from verifier.core.trust import TrustedKey, TrustList
from verifier.errors import TokenMalformedError

_ALL_CLAIMS = frozenset(CLAIM_TYPES)
# Licence validity dates are calendar dates in China Standard Time (UTC+8, no daylight saving).
_CST = dt.timezone(dt.timedelta(hours=8))


@dataclass(frozen=True, slots=True)
class Policy:
    """Limits an operator may tune."""

    leeway: int = 5  # seconds of clock skew tolerated on iat and exp
    max_lifetime: int = 600  # seconds a presentation token may live (exp - iat)


DEFAULT_POLICY = Policy()


@dataclass(frozen=True, slots=True)
class Licence:
    """What a verified token says about the licence shown."""

    type: str
    province: str
    unit: str
    channel: str
    licence_no: str
    holder: str
    valid_from: dt.date
    valid_until: dt.date
    attributes: dict[str, Any]
    subject: str = ""  # the token's sub: a pseudonymous holder id, never stored in clear


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome. ``licence``, ``jti`` and ``expires_at`` are set only for a token whose
    signature verified and whose claims are well formed and of the issuer's shape."""

    reasons: tuple[Reason, ...]
    licence: Licence | None = None
    jti: str | None = None
    expires_at: int | None = None

    @property
    def accepted(self) -> bool:
        """Accepted exactly when no reason applies."""
        return not self.reasons

    @property
    def decision(self) -> str:
        """``accepted`` or ``rejected``."""
        return "accepted" if self.accepted else "rejected"

    @property
    def final(self) -> bool:
        """Whether this answer holds for the token's whole life, so it may be stored and cached: its signature
        verified, its claims well formed, and no rejection that time can undo (:data:`TEMPORARY`). A trust-list
        refresh may yet verify a token that names an unknown key, so an unverified answer is never final."""
        return self.licence is not None and not any(r.code in TEMPORARY for r in self.reasons)


def decide(
    token: str | ParsedToken,
    *,
    trust: TrustList,
    catalogue: Catalogue,
    counter: Counter,
    scenario: str,
    now: float,
    policy: Policy = DEFAULT_POLICY,
) -> Decision:
    """Decide on ``token`` shown at ``counter`` for ``scenario`` at time ``now`` (epoch seconds).
    ``token`` is its text, or what :func:`verifier.core.token.parse` made of it (the service parses once)."""
    try:
        parsed = token if isinstance(token, ParsedToken) else parse(token)
    except TokenMalformedError as exc:
        return Decision((Reason(exc.reason, exc.detail),))
    reasons: list[Reason] = []
    key, verified = _check_header_and_signature(parsed, trust, now, reasons)
    claims = parsed.claims
    bad = _malformed_claims(claims)
    if bad:
        reasons.append(Reason("CLAIMS_INVALID", "; ".join(bad)))
    ok = {name for name in CLAIM_TYPES if not any(b.startswith(name + " ") for b in bad)} if bad else _ALL_CLAIMS
    if {"iat", "exp"} <= ok:
        _check_times(claims["iat"], claims["exp"], now, policy, reasons)
    if key is not None:
        if "iss" in ok and claims["iss"] != key.unit:
            # Named only when it is a unit of the list: a detail is stored, and must not carry what a token made up.
            said = repr(claims["iss"]) if claims["iss"] in catalogue.units else "a unit not in the list"
            reasons.append(Reason("ISSUER_KEY_MISMATCH", f"token says {said}, key {key.kid!r} is {key.unit!r}"))
        if "prv" in ok and claims["prv"] != key.province:
            reasons.append(
                Reason("PROVINCE_KEY_MISMATCH", f"token says {claims['prv']}, key {key.kid!r} is {key.province}")
            )
    licence_type = catalogue.licence_by_seq(claims["lt"]) if "lt" in ok else None
    off_shape = shape_problems(claims, ok, licence_type, parsed.size)
    if off_shape:
        reasons.append(Reason("TOKEN_SHAPE_INVALID", "; ".join(off_shape)))
    if "lt" in ok and licence_type is None:
        reasons.append(Reason("LICENCE_TYPE_UNKNOWN", f"no licence type with seq {str(claims['lt'])[:20]}"))
    if licence_type is not None:
        _check_rules(
            licence_type, claims=claims, ok=ok, catalogue=catalogue, counter=counter, scenario=scenario, reasons=reasons
        )
    if scenario not in counter.scenarios:
        reasons.append(
            Reason(
                "SCENARIO_NOT_REGISTERED",
                f"counter {counter.id} handles {', '.join(counter.scenarios) or 'nothing yet'}",
            )
        )
    if {"vf", "vu"} <= ok:
        _check_validity(claims["vf"], claims["vu"], now, reasons)
    if not (verified and not bad and not off_shape) or licence_type is None:
        return Decision(tuple(reasons))  # nothing of an untrusted or misshapen token is kept
    licence = Licence(
        type=licence_type.code,
        province=claims["prv"],
        unit=claims["iss"],
        channel=claims["ch"],
        licence_no=claims["no"],
        holder=claims["hn"],
        valid_from=_date(claims["vf"]),
        valid_until=_date(claims["vu"]),
        attributes={a.name: claims[a.name] for a in licence_type.attributes if a.name in claims},
        subject=claims["sub"],
    )
    return Decision(tuple(reasons), licence, claims["jti"], claims["exp"])


def _check_header_and_signature(
    parsed: ParsedToken, trust: TrustList, now: float, reasons: list[Reason]
) -> tuple[TrustedKey | None, bool]:
    """Header rules, then the signature with the key's own algorithm — never the token's alone."""
    header = parsed.header
    if header.get("typ") != TYP:
        reasons.append(Reason("TOKEN_TYPE_INVALID", f"typ must be {TYP!r}"))
    extra = sorted(set(header) - HEADER_MEMBERS)
    if extra:
        reasons.append(Reason("HEADER_UNSUPPORTED", "header members " + ", ".join(map(repr, extra))))
    kid, alg = header.get("kid"), header.get("alg")
    if not isinstance(kid, str) or not isinstance(alg, str):
        reasons.append(Reason("TOKEN_MALFORMED", "header alg and kid must be strings"))
        return None, False
    key = trust.keys.get(kid)
    if key is None:
        reasons.append(Reason("KEY_UNKNOWN", f"kid {kid[:64]!r}"))
        return None, False
    if alg != key.alg:
        reasons.append(
            Reason("ALGORITHM_NOT_ALLOWED", f"key {kid!r} signs with {key.alg} only, token says {alg[:32]!r}")
        )
        return key, False
    if not key.valid_at(now):
        reasons.append(Reason("KEY_NOT_VALID", f"key {kid!r} is valid {key.valid_from}–{key.valid_until}"))
    verified = verify_signature(key.alg, parsed.signing_input, key.public_key, parsed.signature)
    if not verified:
        reasons.append(Reason("SIGNATURE_INVALID"))
    return key, verified and key.valid_at(now) and not extra and header.get("typ") == TYP


def _malformed_claims(claims: dict[str, Any]) -> list[str]:
    """'name missing' / 'name must be a …' for every required claim that is not as it must be."""
    bad = []
    for name, kind in CLAIM_TYPES.items():
        if name not in claims:
            bad.append(f"{name} missing")
        elif type(claims[name]) is not kind:  # bool is an int subclass: `exp: true` is malformed
            bad.append(f"{name} must be {'a string' if kind is str else 'an integer'}")
        elif kind is str and not claims[name]:
            bad.append(f"{name} must not be empty")
    if "prv" in claims and type(claims["prv"]) is str and claims["prv"] not in PROVINCES:
        bad.append("prv must be SC or CQ")
    for name in ("vf", "vu"):
        if type(claims.get(name)) is int and _date_or_none(claims[name]) is None:
            bad.append(f"{name} must be a day number (days since 1970-01-01)")
    return bad


def _check_validity(vf: int, vu: int, now: float, reasons: list[Reason]) -> None:
    """The licence's own validity dates, against today's date in China."""
    today = dt.datetime.fromtimestamp(now, _CST).date()
    if _date(vf) > today:
        reasons.append(Reason("LICENCE_NOT_YET_VALID", f"valid from {_date(vf)}"))
    if _date(vu) < today:
        reasons.append(Reason("LICENCE_EXPIRED", f"valid until {_date(vu)}"))


def _check_times(iat: int, exp: int, now: float, policy: Policy, reasons: list[Reason]) -> None:
    # iat and exp are JSON integers of any size, read before the signature is known to be good:
    # int - float would overflow beyond 1e308, so the details are worked out in integers.
    if iat > now + policy.leeway:
        reasons.append(Reason("ISSUED_IN_FUTURE", f"iat is {iat - math.floor(now)} s ahead"))
    if exp <= now - policy.leeway:
        reasons.append(Reason("TOKEN_EXPIRED", f"expired {math.floor(now) - exp} s ago"))
    if exp - iat > policy.max_lifetime or exp <= iat:
        reasons.append(Reason("LIFETIME_TOO_LONG", f"exp - iat = {exp - iat} s, allowed 1–{policy.max_lifetime} s"))


def _check_rules(
    lt: LicenceType,
    *,
    claims: dict[str, Any],
    ok: AbstractSet[str],
    catalogue: Catalogue,
    counter: Counter,
    scenario: str,
    reasons: list[Reason],
) -> None:
    """The list's rules for this type; a rule the source lost cannot be met."""
    if not lt.recognised:
        reasons.append(Reason("RULES_INCOMPLETE", f"row {lt.seq} lost: {', '.join(lt.missing_rules)}"))
    if lt.issuing_units is not None and {"iss", "prv"} <= ok and claims["iss"] not in lt.units_in(claims["prv"]):
        reasons.append(
            Reason(
                "ISSUER_NOT_DESIGNATED",
                f"{claims['prv']} issuers of {lt.code}: {', '.join(lt.units_in(claims['prv']))}",
            )
        )
    if lt.channels is not None and "ch" in ok:
        channel = catalogue.channels.get(claims["ch"])
        if claims["ch"] not in lt.channels or channel is None:
            reasons.append(Reason("CHANNEL_NOT_ALLOWED", f"{lt.code} is shown through {', '.join(lt.channels)}"))
        elif "prv" in ok and not channel.may_show(claims["prv"]):
            reasons.append(Reason("CHANNEL_PROVINCE_MISMATCH", f"{channel.code} is an app of {channel.province}"))
    if lt.scenarios is not None and scenario not in lt.scenarios:
        reasons.append(Reason("SCENARIO_NOT_FOR_LICENCE", f"{lt.code} is recognised for {', '.join(lt.scenarios)}"))
    if lt.pilot_scope is not None and not lt.pilot_scope[counter.province].covers(counter.institution):
        reasons.append(Reason("OUT_OF_PILOT_SCOPE", f"{counter.province}: {lt.pilot_scope[counter.province].label_zh}"))


_EPOCH = dt.date(1970, 1, 1)
_LAST_DAY = (dt.date.max - _EPOCH).days


@functools.lru_cache(maxsize=4096)  # a scan looks at each of its two dates several times
def _date_or_none(value: int) -> dt.date | None:
    """The calendar day ``value`` days after 1970-01-01, if it is one."""
    return _EPOCH + dt.timedelta(days=value) if 0 <= value <= _LAST_DAY else None


def _date(value: int) -> dt.date:
    # Callers pass only values _malformed_claims accepted; the epoch is an unreachable fallback.
    return _date_or_none(value) or _EPOCH
