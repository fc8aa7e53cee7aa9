"""The scan service: the pure decision plus what needs shared state — the per-counter result cache,
one-time use (一次一验), revocation and statistics. No HTTP here; :mod:`verifier.web.app` is the shell."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from verifier.core.catalogue import PROVINCES, Catalogue, Counter
from verifier.core.decide import DEFAULT_POLICY, Decision, Policy, decide
from verifier.core.decision_view import expand_licence, stored_licence, timestamp, trusted_licence_view
from verifier.core.identity import SHARD_TAGS, Identities, shard_tag, token_digest
from verifier.core.reasons import Reason
from verifier.core.stats import FIRST, RESCAN, answer_fields
from verifier.core.token import ParsedToken, parse
from verifier.errors import (
    Finding,
    StoreUnavailableError,
    StoreUnsafeError,
    TokenMalformedError,
    TrustNotLoadedError,
)
from verifier.service.ports import Commit, Rate, ScanRecord, ScanStore, TrustSource

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
class _Business:
    """What the counter says of the business a scan is for, beside the scenario."""

    operator: str | None
    serial_no: str | None
    item: str | None


def _claimed_labels(parsed: ParsedToken | None, catalogue: Catalogue) -> tuple[str, str]:
    """Statistics labels of a token whose signature did not verify: what it claims, where the catalogue knows
    it, else ``-`` — so forged claims cannot grow the counters."""
    claims = parsed.claims if parsed is not None else {}
    seq, province = claims.get("lt"), claims.get("prv")
    licence_type = catalogue.licence_by_seq(seq) if type(seq) is int else None
    return (licence_type.code if licence_type else "-"), (province if province in PROVINCES else "-")


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
        identities: Identities | None = None,
        counter_rate: float | None = None,
        counter_burst: int = 30,
        revocation_ttl: int | None = None,
        seen_capacity: int = 100_000,
    ) -> None:
        self.catalogue = catalogue
        self.trust = trust
        self.store = store
        self.policy = policy
        self.clock = clock
        self.record_ttl = record_ttl
        self.max_clock_skew = max_clock_skew
        # Without a deployment secret (tests, the demo) this process keys identities with one of its own.
        self.identities = identities or Identities(secrets.token_bytes(32))
        self.revocation_ttl = revocation_ttl  # seconds a revocation is kept; None: for good
        self._counter_rate = counter_rate  # scans/s per counter over every instance; None: no limit
        self._counter_burst = counter_burst
        self._rates: dict[str, Rate] = {}
        # What the last check of the store found (see check_store): while anything, no scan is decided.
        # Nothing is known before the first check, and that is a finding too.
        self._findings: tuple[Finding, ...] = (Finding("unchecked", "the store has not been checked yet"),)
        self._store_identity: str | None = None
        self._check_lock = asyncio.Lock()
        self._trouble = asyncio.Event()  # set when a finding appears, so the periodic check looks at once
        self.clock_offset: float | None = None  # the store's clock minus this instance's, at the last check
        # Tokens this process has stored an answer for, per counter and business: a re-scan asks the store
        # first and skips verification; a token new to this process is verified, and the commit still
        # returns the cached answer if another instance stored one. Bounded, oldest forgotten first. Each
        # entry keeps the licence's keyed identity, so a re-scan needs no parsing either.
        self._seen: OrderedDict[str, str] = OrderedDict()
        self._seen_capacity = seen_capacity
        self._minute = (-1, "")

    async def scan(
        self,
        counter: Counter,
        token: str,
        scenario: str,
        *,
        operator: str | None = None,
        serial_no: str | None = None,
        item: str | None = None,
    ) -> ScanResult:
        """Decide one scan. Raises :class:`verifier.errors.StoreUnavailableError` when the store cannot be
        reached, :class:`verifier.errors.StoreUnsafeError` when it cannot keep one-time use,
        :class:`verifier.errors.TrustNotLoadedError` before any trust list is loaded — never an acceptance
        without the one-time-use and revocation checks, never a rejection that only means "not checked" — and
        :class:`verifier.errors.RateLimitedError` when the counter posts faster than its rate."""
        if self._findings:
            raise StoreUnsafeError(self._findings)
        if not self.trust.loaded:
            raise TrustNotLoadedError("信任列表尚未加载，暂时无法核验 / the trust list is not loaded yet")
        catalogue = self.catalogue  # read once: a scan under way finishes on the rules it started with
        now = self.clock()
        business = _Business(operator, serial_no, item)
        # One code, one business: the cache is per counter, business, serial number and token, so the same
        # code for another business misses it, and its claim — held by this counter — answers ALREADY_USED_HERE.
        digest = token_digest(f"{scenario}\n{serial_no or ''}\n{item or ''}\n{token}")
        seen_key = f"{counter.id}\n{digest}"
        rate = self._rate(counter.id)
        licence_id = self._seen.get(seen_key)
        if licence_id is not None:
            try:  # inline rather than a wrapping coroutine: a re-scan is a few dozen µs, each layer counts
                found = await self.store.lookup(
                    shard_tag(licence_id), counter.id, digest, licence_id, rate=rate, operator=operator
                )
            except StoreUnavailableError as exc:
                self._lost_store(exc)
                raise
            if found is not None:
                return self._answered(found[0], counter, RESCAN, now, catalogue, revoked=found[1])
            rate = None  # counted by the lookup
        try:
            parsed: ParsedToken | None = parse(token)
        except TokenMalformedError:
            parsed = None  # decide() names what is wrong with it

        def decide_now() -> Decision:
            return decide(
                parsed or token,
                trust=self.trust.current,
                catalogue=catalogue,
                counter=counter,
                scenario=scenario,
                now=now,
                policy=self.policy,
            )

        decision = decide_now()
        if any(r.code == "KEY_UNKNOWN" for r in decision.reasons) and await self.trust.refresh_for_unknown_kid():
            decision = decide_now()  # the trust list may now know the key: a rotation needs no restart
        licence = decision.licence
        if licence is None or not decision.final:
            # Not stored, not cached: an unverified token leaves no trace but its count and audit event (a flood
            # of junk cannot fill the store), and an answer that time or a trust-list refresh can change is
            # decided anew next time.
            labels = (licence.type, licence.province) if licence else _claimed_labels(parsed, catalogue)
            tag = secrets.choice(SHARD_TAGS)
            record = self._record(
                decision, counter, scenario, now, tag=tag, licence_id=None, catalogue=catalogue, business=business
            )
            try:
                await self.store.note(tag, record, rate)
            except StoreUnavailableError as exc:
                self._lost_store(exc)
                raise
            return self._answered(record, counter, FIRST, now, catalogue, labels=labels)
        licence_id = self.identities.licence(licence.type, licence.province, licence.licence_no)
        tag = shard_tag(licence_id)
        record = self._record(
            decision, counter, scenario, now, tag=tag, licence_id=licence_id, catalogue=catalogue, business=business
        )
        expires_at = self._claim_expiry(decision.expires_at, now)
        commit = Commit(
            record=record,
            tag=tag,
            digest=digest,
            jti=decision.jti if decision.accepted else None,
            licence_id=licence_id,
            expires_at=expires_at,
            record_ttl=max(self.record_ttl, expires_at - int(now)),
            rate=rate,
        )
        try:
            stored, cached, revoked = await self.store.commit(commit)
        except StoreUnavailableError as exc:
            self._lost_store(exc)
            raise
        self._remember(seen_key, licence_id)
        return self._answered(stored, counter, RESCAN if cached else FIRST, now, catalogue, revoked=revoked)

    def _rate(self, counter: str) -> Rate | None:
        if self._counter_rate is None:
            return None
        rate = self._rates.get(counter)
        if rate is None:
            rate = self._rates[counter] = Rate(counter, self._counter_rate, self._counter_burst)
        return rate

    def _claim_expiry(self, exp: int | None, now: float) -> int:
        """When the claim and the cached result expire (Unix s): after every instance has stopped accepting
        the token — its exp, plus the leeway, plus the largest clock skew allowed between an instance and
        the store — whatever this instance's clock says. A token is accepted only while exp > now - leeway,
        with iat at most leeway ahead and exp - iat at most the lifetime cap, so an exp past ``latest`` is
        never accepted (an unverified one may be any integer: it is bounded, not trusted)."""
        latest = int(now) + self.policy.leeway + self.policy.max_lifetime
        until = latest if exp is None else min(exp, latest)
        return max(until + self.policy.leeway + self.max_clock_skew, int(now) + 1)

    def _remember(self, key: str, licence_id: str) -> None:
        self._seen[key] = licence_id
        self._seen.move_to_end(key)
        if len(self._seen) > self._seen_capacity:
            self._seen.popitem(last=False)

    def _record(
        self,
        decision: Decision,
        counter: Counter,
        scenario: str,
        now: float,
        *,
        tag: str,
        licence_id: str | None,
        catalogue: Catalogue,
        business: _Business,
    ) -> ScanRecord:
        view = trusted_licence_view(decision, catalogue)
        licence = decision.licence
        return ScanRecord(
            scan_id=f"{tag}-{secrets.token_urlsafe(12)}",  # nothing of the licence: its tag is one of sixteen
            counter=counter.id,
            scenario=scenario,
            checked_at=timestamp(now),
            decision=decision.decision,
            reasons=tuple((r.code, r.detail) for r in decision.reasons),
            licence=stored_licence(view) if view else None,
            operator=business.operator,
            serial_no=business.serial_no,
            licence_id=licence_id,
            item=business.item,
            holder=self.identities.holder(licence.subject) if licence else None,
        )

    def _answered(
        self,
        record: ScanRecord,
        counter: Counter,
        kind: str,
        now: float,
        catalogue: Catalogue,
        *,
        revoked: bool = False,
        labels: tuple[str, str] | None = None,
    ) -> ScanResult:
        """The answer the counter gets, counted in the statistics as it is given: a cached acceptance of a
        licence revoked since is answered (and counted) REVOKED."""
        record = self._expanded(record.revoked_since(revoked), catalogue)
        licence = record.licence or {}
        licence_type, province = licence.get("type", "-"), licence.get("issuing_province", "-")
        stat_type, stat_province = labels or (licence_type, province)
        minute = int(now // 60)
        if minute != self._minute[0]:
            self._minute = (minute, time.strftime("%Y%m%d%H%M", time.gmtime(minute * 60)))
        labels_key = f"{stat_type}|{stat_province}|{counter.province}|{record.scenario}"
        self.store.count(answer_fields(record.decision, record.reasons, labels_key, kind, self._minute[1]))
        return ScanResult(record, kind == RESCAN, licence_type, province)

    def _expanded(self, record: ScanRecord, catalogue: Catalogue) -> ScanRecord:
        """The record with its licence view whole again (the store keeps only the token's part)."""
        return record.with_licence(expand_licence(record.licence, catalogue)) if record.licence else record

    async def get_scan(self, scan_id: str) -> ScanRecord | None:
        """A stored scan by id, as it would be answered now: an acceptance of a licence revoked since is REVOKED."""
        found = await self.store.get_scan(scan_id)
        if found is None:
            return None
        record, revoked = found
        return self._expanded(record.revoked_since(revoked), self.catalogue)

    def replace_catalogue(self, catalogue: Catalogue) -> None:
        """Decide every scan that starts from now on by ``catalogue`` (the rules reloaded); scans under way
        finish on the one they started with."""
        self.catalogue = catalogue

    async def revoke(
        self, licence_type: str, province: str, licence_no: str, *, reason: str, restore: bool = False
    ) -> None:
        """Revoke (or restore) a licence; cached acceptances stop at their next scan, everywhere, and a restore
        lets a code answered REVOKED be decided anew."""
        licence_id = self.identities.licence(licence_type, province, licence_no)
        await self.store.set_revoked(licence_id, not restore, reason[:200], self.revocation_ttl)

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
