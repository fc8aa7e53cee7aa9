"""The scan service: the pure decision plus what needs shared state — the per-counter result cache,
one-time use (一次一验), revocation and statistics. No HTTP here; :mod:`verifier.web.app` is the shell."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from verifier.core.catalogue import PROVINCES, Catalogue, Counter
from verifier.core.decide import DEFAULT_POLICY, Decision, Policy, decide, revocation_key
from verifier.core.decision_view import expand_licence, stored_licence, timestamp, trusted_licence_view
from verifier.core.reasons import Reason
from verifier.core.token import ParsedToken, parse
from verifier.errors import Finding, StoreUnavailableError, StoreUnsafeError, TokenMalformedError
from verifier.service.ports import REVOKED, Commit, ScanRecord, ScanStore, TrustSource, licence_tag

log = logging.getLogger("verifier")


@dataclass(frozen=True, slots=True)
class ScanResult:
    """A decided scan, ready to render."""

    record: ScanRecord
    cached: bool
    licence_type: str  # for statistics and logs; "-" when unknown
    issuing_province: str


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether this instance can decide scans now: ``problems`` names each failing check (empty when ready)."""

    problems: tuple[Finding, ...]
    keys: int
    store: str


@dataclass(frozen=True, slots=True)
class _Identity:
    """What a token claims to be, before its signature is checked: used only to find its keys."""

    revocation_key: str | None
    exp: int | None


def _identity(parsed: ParsedToken | None, catalogue: Catalogue) -> _Identity:
    if parsed is None:
        return _Identity(None, None)
    claims = parsed.claims
    seq, province, number, exp = (claims.get(n) for n in ("lt", "prv", "no", "exp"))
    licence_type = catalogue.licence_by_seq(seq) if type(seq) is int else None
    known = licence_type is not None and isinstance(province, str) and isinstance(number, str)
    return _Identity(
        revocation_key(licence_type.code, province, number) if known else None,  # type: ignore[union-attr,arg-type]
        exp if type(exp) is int else None,
    )


def token_digest(text: str) -> str:
    """120 bits of SHA-256: names a token in cache keys without storing it."""
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode("utf-8")).digest()[:15]).decode("ascii")


class ScanService:
    """Decides scans for counters; one instance per process, sharing state through ``store``."""

    def __init__(
        self,
        catalogue: Catalogue,
        trust: TrustSource,
        store: ScanStore,
        *,
        policy: Policy = DEFAULT_POLICY,
        clock: Callable[[], float] = time.time,
        record_ttl: int = 24 * 3600,
        max_clock_skew: int = 60,
        seen_capacity: int = 100_000,
    ) -> None:
        self.catalogue = catalogue
        self.trust = trust
        self.store = store
        self.policy = policy
        self.clock = clock
        self.record_ttl = record_ttl
        self.max_clock_skew = max_clock_skew
        # What the last check of the store found (see check_store): while anything, no scan is decided.
        # Nothing is known before the first check, and that is a finding too.
        self._findings: tuple[Finding, ...] = (Finding("unchecked", "the store has not been checked yet"),)
        self._store_identity: str | None = None
        self._check_lock = asyncio.Lock()
        self._trouble = asyncio.Event()  # set when a finding appears, so the periodic check looks at once
        self.clock_offset: float | None = None  # the store's clock minus this instance's, at the last check
        # Tokens this process has scanned per counter: a re-scan asks the store first and skips
        # verification; a token new to this process is verified, and the commit still returns the
        # cached scan if another instance made one. Bounded, oldest forgotten first. Each entry keeps
        # the token's revocation identity ("" for none), so a re-scan needs no parsing either.
        self._seen: OrderedDict[str, str] = OrderedDict()
        self._seen_capacity = seen_capacity

    async def scan(
        self, counter: Counter, token: str, scenario: str, *, operator: str | None = None, serial_no: str | None = None
    ) -> ScanResult:
        """Decide one scan. Raises :class:`verifier.errors.StoreUnavailableError` when the store
        cannot be reached, :class:`verifier.errors.StoreUnsafeError` when it cannot keep one-time use —
        never an acceptance without the one-time-use and revocation checks."""
        if self._findings:
            raise StoreUnsafeError(self._findings)
        now = self.clock()
        # The result cache is per counter, business and token: a re-scan for another business is decided anew.
        digest = token_digest(f"{scenario}\n{token}")
        seen_key = f"{counter.id}\n{digest}"
        known = self._seen.get(seen_key)
        if known is not None:
            try:
                found = await self.store.lookup(licence_tag(known or digest), counter.id, digest, known or None)
            except StoreUnavailableError as exc:
                self._lost_store(exc)
                raise
            if found is not None:
                return self._result(found[0], cached=True, revoked=found[1])
        try:
            parsed: ParsedToken | None = parse(token)
        except TokenMalformedError:
            parsed = None  # decide() names what is wrong with it
        identity = _identity(parsed, self.catalogue)
        tag = licence_tag(identity.revocation_key or digest)

        def decide_now() -> Decision:
            return decide(
                parsed or token,
                trust=self.trust.current,
                catalogue=self.catalogue,
                counter=counter,
                scenario=scenario,
                now=now,
                policy=self.policy,
            )

        decision = decide_now()
        if any(r.code == "KEY_UNKNOWN" for r in decision.reasons) and await self.trust.refresh_for_unknown_kid():
            decision = decide_now()  # the trust list may now know the key: a rotation needs no restart
        record = self._record(decision, counter, scenario, now, tag, operator=operator, serial_no=serial_no)
        expires_at = self._claim_expiry(decision.expires_at or identity.exp, now)
        licence = decision.licence
        stats_type, stats_province = self._stats_labels(decision, identity)
        commit = Commit(
            record=record,
            tag=tag,
            digest=digest,
            jti=decision.jti if decision.accepted else None,
            revocation_key=licence.revocation_key if licence else identity.revocation_key,
            stats_key=f"{stats_type}|{stats_province}|{counter.province}|{scenario}",
            expires_at=expires_at,
            record_ttl=max(self.record_ttl, expires_at - int(now)),
        )
        try:
            stored, cached, revoked = await self.store.commit(commit)
        except StoreUnavailableError as exc:
            self._lost_store(exc)
            raise
        self._remember(seen_key, identity.revocation_key or "")
        return self._result(stored, cached=cached, revoked=revoked)

    def _claim_expiry(self, exp: int | None, now: float) -> int:
        """When the claim and the cached result expire (Unix s): after every instance has stopped accepting
        the token — its exp, plus the leeway, plus the largest clock skew allowed between an instance and
        the store — whatever this instance's clock says. A token is accepted only while exp > now - leeway,
        with iat at most leeway ahead and exp - iat at most the lifetime cap, so an exp past ``latest`` is
        never accepted (an unverified one may be any integer: it is bounded, not trusted)."""
        latest = int(now) + self.policy.leeway + self.policy.max_lifetime
        until = latest if exp is None else min(exp, latest)
        return max(until + self.policy.leeway + self.max_clock_skew, int(now) + 1)

    def _remember(self, key: str, identity: str) -> None:
        self._seen[key] = identity
        self._seen.move_to_end(key)
        if len(self._seen) > self._seen_capacity:
            self._seen.popitem(last=False)

    def _stats_labels(self, decision: Decision, identity: _Identity) -> tuple[str, str]:
        """Statistics labels: only values from the catalogue, so forged claims cannot grow the counters."""
        if decision.licence is not None:
            return decision.licence.type, decision.licence.province
        lt, prv, _ = (identity.revocation_key or "-|-|").split("|", 2)
        return (lt if lt in self.catalogue.licences else "-"), (prv if prv in PROVINCES else "-")

    def _record(
        self,
        decision: Decision,
        counter: Counter,
        scenario: str,
        now: float,
        tag: str,
        *,
        operator: str | None,
        serial_no: str | None,
    ) -> ScanRecord:
        view = trusted_licence_view(decision, self.catalogue)
        return ScanRecord(
            scan_id=f"{tag}-{secrets.token_urlsafe(9)}",
            counter=counter.id,
            scenario=scenario,
            checked_at=timestamp(now),
            decision=decision.decision,
            reasons=tuple((r.code, r.detail) for r in decision.reasons),
            licence=stored_licence(view) if view else None,
            operator=operator,
            serial_no=serial_no,
        )

    def _result(self, record: ScanRecord, *, cached: bool, revoked: bool) -> ScanResult:
        if revoked and record.decision == "accepted":
            record = record.settled(REVOKED)
        record = self._expanded(record)
        licence = record.licence or {}
        return ScanResult(record, cached, licence.get("type", "-"), licence.get("issuing_province", "-"))

    def _expanded(self, record: ScanRecord) -> ScanRecord:
        """The record with its licence view whole again (the store keeps only the token's part)."""
        return record.with_licence(expand_licence(record.licence, self.catalogue)) if record.licence else record

    async def get_scan(self, scan_id: str) -> ScanRecord | None:
        """A stored scan by id, as it was answered."""
        record = await self.store.get_scan(scan_id)
        return None if record is None else self._expanded(record)

    async def revoke(
        self, licence_type: str, province: str, licence_no: str, *, reason: str, restore: bool = False
    ) -> str:
        """Revoke (or restore) a licence; cached acceptances stop at their next scan, everywhere."""
        key = revocation_key(licence_type, province, licence_no)
        await self.store.set_revoked(key, not restore, reason)
        return key

    async def stats(self) -> dict[str, int]:
        """The statistics counters (:meth:`verifier.service.ports.ScanStore.stats`)."""
        return await self.store.stats()

    def trust_list(self) -> dict[str, Any]:
        """The issuer keys in use, as JWKS with each key's province and unit."""
        return self.trust.current.jwks()

    async def check_store(self) -> tuple[Finding, ...]:
        """Ask the store whether it can keep one-time use now, and compare its clock with this instance's:
        off by more than half of ``max_clock_skew`` is a finding too. Scans are refused (503) while there
        is any. A store out of reach is a finding as well: it may come back as another store (restarted
        empty, or a failover to a replica set up otherwise), and nothing is decided on it until a check
        says it can keep claims. One check at a time, so an older answer never overwrites a newer one."""
        async with self._check_lock:
            before = self.clock()
            try:
                health = await self.store.health()
            except StoreUnavailableError as exc:
                return self._found((Finding("reachable", f"state store unreachable: {exc}"),))
            except Exception as exc:  # a fault of the check itself: no scan is decided until a check succeeds
                log.exception("the store could not be checked")
                return self._found((Finding("check", f"the store could not be checked: {exc!r}"),))
            findings = list(health.findings)
            if health.clock is not None:
                # The store read its clock somewhere between the question and the answer: take the middle.
                self.clock_offset = health.clock - (before + self.clock()) / 2
                if abs(self.clock_offset) > self.max_clock_skew / 2:
                    side = "behind" if self.clock_offset > 0 else "ahead of"
                    findings.append(
                        Finding(
                            "clock",
                            f"this instance's clock is {abs(self.clock_offset):.1f} s {side} the store's"
                            f" (at most {self.max_clock_skew / 2:g} s allowed: half of --max-clock-skew)",
                        )
                    )
            if health.identity != self._store_identity:
                if self._store_identity is not None:
                    restarted = {"event": "store_restarted", "was": self._store_identity, "now": health.identity}
                    log.warning(json.dumps(restarted))
                self._store_identity = health.identity
            return self._found(tuple(findings))

    def _found(self, findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
        if findings:
            self._trouble.set()
        if findings != self._findings:
            event = "store_unsafe" if findings else "store_safe"
            log.warning(json.dumps({"event": event, "findings": [f.check for f in findings]}))
        self._findings = findings
        return findings

    def _lost_store(self, exc: StoreUnavailableError) -> None:
        """A scan found the store out of reach: until a check has looked at whatever answers next, nothing
        is decided (the periodic check looks again within half a second)."""
        if not isinstance(exc, StoreUnsafeError):
            self._found((Finding("reachable", f"state store unreachable: {exc}"),))

    async def store_trouble(self) -> None:
        """Return when a finding appears (a scan lost the store, say); the caller bounds the wait."""
        await self._trouble.wait()
        self._trouble.clear()

    @property
    def findings(self) -> tuple[Finding, ...]:
        """What the last check of the store found; scans are refused while there is anything."""
        return self._findings

    async def ready(self) -> Readiness:
        """The readiness checks, made now: trust list loaded, store reachable and able to keep one-time use."""
        problems = []
        if not self.trust.loaded:
            problems.append(Finding("trust", "trust list not loaded"))
        if self._check_lock.locked():  # a check under way answers for every /readyz waiting on it
            async with self._check_lock:
                problems += self._findings
        else:
            problems += await self.check_store()
        return Readiness(tuple(problems), len(self.trust.current.keys), type(self.store).__name__)


def scan_document(result: ScanResult) -> dict[str, Any]:
    """The decision object of ``POST /v1/scans``."""
    record = result.record
    return {
        "scan_id": record.scan_id,
        "decision": record.decision,
        "reasons": [Reason(code, detail).as_dict() for code, detail in record.reasons],
        "licence": record.licence,
        "cached": result.cached,
        "checked_at": record.checked_at,
    }
