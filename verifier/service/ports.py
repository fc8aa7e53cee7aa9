"""The service's ports: the state it keeps between scans (:class:`ScanStore`) and where its trust list
comes from (:class:`TrustSource`), each behind one small protocol.

Two adapters implement the state port with the same semantics, exercised by the same tests:
:class:`verifier.adapters.memory_store.MemoryStore` (one process, the embedded default) and
:class:`verifier.adapters.redis_store.RedisStore` (shared by every instance).

A commit is atomic: check the counter's rate; return the counter's cached answer for this token and
business if there is one; otherwise check revocation, claim the token's one-time use if it was accepted
(a claim this counter already holds settles as ALREADY_USED_HERE, another's as REPLAYED), and store the
answer. Only final answers of verified tokens are committed (:attr:`verifier.core.decide.Decision.final`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson

from verifier.core.decision_view import timestamp
from verifier.core.trust import TrustList
from verifier.errors import Finding

# How a stored scan's outcome was settled by the store itself (first character of a stored record).
AS_DECIDED, REPLAYED, REVOKED, USED_HERE = "A", "P", "V", "H"
_SETTLED_AS = {REPLAYED: "REPLAYED", REVOKED: "REVOKED", USED_HERE: "ALREADY_USED_HERE"}
STATS_TTL = 2 * 24 * 3600  # per-minute buckets are kept two days


@dataclass(frozen=True, slots=True)
class ScanRecord:
    """One decided scan as stored: enough to answer again, never the token or the holder's data
    beyond the masked view. ``licence_id`` is the licence's keyed identity (its revocation state is read
    again whenever the scan is shown)."""

    scan_id: str
    counter: str
    scenario: str
    checked_at: str
    decision: str
    reasons: tuple[tuple[str, str], ...]  # (code, detail)
    licence: dict[str, Any] | None
    operator: str | None = None
    serial_no: str | None = None
    licence_id: str | None = None
    item: str | None = None  # the 川渝通办 item the business named
    holder: str | None = None  # keyed pseudonym of the token's sub (verified tokens only)

    def to_json(self) -> str:
        """Compact JSON for storage."""
        fields = [self.scan_id, self.counter, self.scenario, self.checked_at, self.decision, self.reasons,
                  self.licence, self.operator, self.serial_no, self.licence_id, self.item, self.holder]  # fmt: skip
        try:
            return orjson.dumps(fields).decode("utf-8")
        except TypeError:  # a lone surrogate in a client's field: the standard encoder writes what it can
            return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ScanRecord:
        """The inverse of :meth:`to_json`."""
        f = orjson.loads(text)
        return cls(f[0], f[1], f[2], f[3], f[4], tuple((c, d) for c, d in f[5]), f[6], f[7], f[8], f[9], f[10], f[11])

    def with_licence(self, licence: dict[str, Any] | None) -> ScanRecord:
        """This record with another licence view (``dataclasses.replace`` costs a re-scan 2 µs more)."""
        return ScanRecord(self.scan_id, self.counter, self.scenario, self.checked_at, self.decision, self.reasons,
                          licence, self.operator, self.serial_no, self.licence_id, self.item, self.holder)  # fmt: skip

    def revoked_since(self, revoked: bool) -> ScanRecord:
        """This record as it is answered now: an acceptance of a licence ``revoked`` since says REVOKED."""
        return self.settled(REVOKED) if revoked and self.decision == "accepted" else self

    def settled(self, status: str) -> ScanRecord:
        """This record as the store settled it: a replayed, revoked or already used token is rejected."""
        code = _SETTLED_AS.get(status)
        return self if code is None else replace(self, decision="rejected", reasons=((code, ""),))


@dataclass(frozen=True, slots=True)
class Rate:
    """How fast one counter may post scans, summed over every instance: ``per_second`` on average, with
    ``burst`` at once (a generic cell rate algorithm: no counter is ever refused below that)."""

    counter: str
    per_second: float
    burst: int


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One answer a counter got (a first scan or a re-scan), for the audit trail. The store appends what it is
    made of in the same step as the answer (:func:`audit_event`; Redis: an entry of the licence's shard's
    stream, read back with :func:`audit_event_from_stream`), so an answer given always has its event. No
    licence number, name or ``sub`` in clear: ``holder`` is a keyed pseudonym of the token's ``sub``."""

    answer_id: str  # unique per answer: the trail's idempotency key
    scan_id: str
    at: str  # this answer's time, ISO 8601 with offset
    counter: str
    scenario: str
    item: str | None  # the 川渝通办 item, when the business names one
    serial_no: str | None
    operator: str | None
    type: str  # licence type code; "-" when the token named none we know
    issuing_province: str  # SC | CQ | "-"
    unit: str  # issuing unit code; "-"
    channel: str  # channel code; "-"
    decision: str  # accepted | rejected
    reasons: tuple[str, ...]  # reason codes
    cached: bool
    holder: str | None  # keyed pseudonym of sub; None for a token whose signature was not verified

    def to_json(self) -> str:
        """Compact JSON."""
        fields = [getattr(self, f.name) for f in dataclasses.fields(self)]
        return orjson.dumps(fields).decode("utf-8")

    @classmethod
    def from_json(cls, text: str | bytes) -> AuditEvent:
        """The inverse of :meth:`to_json`."""
        f = orjson.loads(text)
        return cls(*f[:13], tuple(f[13]), *f[14:])  # type: ignore[call-arg]


def audit_event(
    answer_id: str, at: str, stored: str, *, cached: bool, revoked: bool, operator: str | None
) -> AuditEvent:
    """The event of one answer: ``stored`` is the record as the store keeps it (its status, then its JSON),
    ``revoked`` whether the licence was revoked as the answer was given (a cached acceptance then answers
    REVOKED), ``operator`` this answer's clerk."""
    record = ScanRecord.from_json(stored[1:]).settled(stored[0]).revoked_since(revoked)
    licence = record.licence or {}
    return AuditEvent(
        answer_id=answer_id,
        scan_id=record.scan_id,
        at=at,
        counter=record.counter,
        scenario=record.scenario,
        item=record.item,
        serial_no=record.serial_no,
        operator=operator,
        type=licence.get("t", "-"),
        issuing_province=licence.get("p", "-"),
        unit=licence.get("u", "-"),
        channel=licence.get("c", "-"),
        decision=record.decision,
        reasons=tuple(code for code, _ in record.reasons),
        cached=cached,
        holder=record.holder,
    )


def audit_event_from_stream(stream: str, entry_id: str, fields: dict[str, str]) -> AuditEvent:
    """An entry of an audit stream (``<prefix>{<tag>}:audit``) as the scan script wrote it — ``r`` the stored
    record, ``k`` '1' for a cached answer, ``v`` '1' for a licence revoked as it was given, ``o`` the
    operator — with its id (Redis's time in ms, the answer's time) naming the answer."""
    at = timestamp(int(entry_id.split("-", 1)[0]) / 1000)
    return audit_event(
        f"{stream}/{entry_id}",
        at,
        fields["r"],
        cached=fields["k"] == "1",
        revoked=fields["v"] == "1",
        operator=fields["o"] or None,
    )


class AuditFeed(Protocol):
    """Where the trail's writer takes the audit events from: the store that appended them. An event taken
    stays the writer's until acknowledged, once its row is committed; events a writer took and never
    acknowledged (it died) are handed out again after a while. May raise
    :class:`verifier.errors.StoreUnavailableError`."""

    async def take(self, limit: int) -> list[tuple[str, AuditEvent]]:
        """Up to ``limit`` events not yet acknowledged, each with the reference :meth:`ack` takes."""

    async def ack(self, refs: Sequence[str]) -> None:
        """Forget these events: their rows are committed."""

    async def backlog(self) -> int:
        """Events appended and not yet acknowledged."""


@dataclass(frozen=True, slots=True)
class Commit:
    """What a final answer asks the store to do, atomically."""

    record: ScanRecord
    tag: str  # the licence's shard tag (one Redis Cluster slot), from its keyed identity
    digest: str  # keyed digest of the token and the business, for the per-counter cache
    jti: str | None  # claimed only when the decision is accepted
    licence_id: str  # the licence's keyed identity: its revocation
    # Unix time (s) at which the claim and the cached result expire: derived from the token (its exp, plus
    # leeway and the largest clock skew allowed between instances), never from one instance's clock, so
    # no instance can still accept the token once its claim is gone.
    expires_at: int
    record_ttl: int  # seconds; never shorter than the claim lives
    rate: Rate | None  # checked first, in the same step; None when this scan was already counted


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """What the store says of its ability to keep one-time use, asked now."""

    findings: tuple[Finding, ...]  # each check that fails; empty when the store can keep claims
    clock: float | None  # the store's clock (Unix s) as it answered; None for a store with no clock of its own
    identity: str | None  # changes when the store restarted (Redis's run_id)


class ScanStore(Protocol):
    """The state port. Every method may raise :class:`verifier.errors.StoreUnavailableError`; those that take
    a :class:`Rate` raise :class:`verifier.errors.RateLimitedError` (and do nothing else) when the counter is
    over it."""

    async def lookup(
        self, tag: str, counter: str, digest: str, licence_id: str, *, rate: Rate | None, operator: str | None
    ) -> tuple[ScanRecord, bool] | None:
        """This counter's cached answer for this token and business, and whether its licence is revoked now
        (its audit event appended, with this answer's ``operator``). A REVOKED answer whose licence has since
        been restored is no answer: the scan is decided anew."""

    async def commit(self, commit: Commit) -> tuple[ScanRecord, bool, bool]:
        """Store a final answer, or find the cached one; returns (record as settled, cached, revoked now). The
        answer's audit event is appended in the same step."""

    async def note(self, tag: str, record: ScanRecord, rate: Rate | None) -> None:
        """An answer given but not stored (an unverified token, a rejection time can undo): the counter's rate,
        and its audit event in shard ``tag``'s stream."""

    def count(self, fields: Sequence[str]) -> None:
        """Add one to each statistics field (``minute|YYYYMMDDHHMM|…`` fields are kept two days); may be
        written to the store a moment later."""

    async def get_scan(self, scan_id: str) -> tuple[ScanRecord, bool] | None:
        """A stored scan by id, and whether its licence is revoked now."""

    async def set_revoked(self, licence_id: str, revoked: bool, reason: str, ttl: int | None) -> None:
        """Revoke (for ``ttl`` seconds, or for good with None) or restore a licence, for every instance at once."""

    async def stats(self) -> dict[str, int]:
        """All statistics fields (:func:`verifier.core.stats.answer_fields`)."""

    async def health(self) -> StoreHealth:
        """Check, now, that the store can keep one-time use (memory policy, persistence or replica
        acknowledgement, a real write) and read its clock."""

    async def ping(self) -> None:
        """Raise :class:`verifier.errors.StoreUnavailableError` unless the store answers."""

    async def close(self) -> None:
        """Release connections."""


def scan_tag(scan_id: str) -> str:
    """Scan ids start with their licence's shard tag, so a scan can be found in its slot."""
    return scan_id.split("-", 1)[0]


class TrustSource(Protocol):
    """The trust-list port: the issuer keys in use now, and a second look when a token names a key
    that is not among them (a rotation needs no restart). Adapter: :mod:`verifier.adapters.trust_source`."""

    current: TrustList

    @property
    def loaded(self) -> bool:
        """Whether any key is known."""

    async def refresh_for_unknown_kid(self) -> bool:
        """Look again, rate-limited; True when the trust list changed, so the caller decides again."""
