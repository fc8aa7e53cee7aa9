"""The state port: everything the service keeps between scans, behind one small protocol.

Two adapters implement it with the same semantics — :class:`MemoryStore` here (one process, the
embedded default) and :class:`verifier.store_redis.RedisStore` (shared by every instance). Both
are exercised by the same tests.

A commit is atomic: return the counter's cached scan of this token if there is one; otherwise
check revocation, claim the token's one-time use if it was accepted, store the scan and count it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson

# How a stored scan's outcome was settled by the store itself (first character of a stored record).
AS_DECIDED, REPLAYED, REVOKED = "A", "P", "V"
_SWEEP_FROM = 10_000  # the embedded store looks for expired entries once it holds more than this
STATS_TTL = 2 * 24 * 3600  # per-minute buckets are kept two days


@dataclass(frozen=True, slots=True)
class ScanRecord:
    """One decided scan as stored: enough to answer again, never the token or the holder's data
    beyond the masked view."""

    scan_id: str
    counter: str
    scenario: str
    checked_at: str
    decision: str
    reasons: tuple[tuple[str, str], ...]  # (code, detail)
    licence: dict[str, Any] | None
    operator: str | None = None
    serial_no: str | None = None

    def to_json(self) -> str:
        """Compact JSON for storage."""
        fields = [self.scan_id, self.counter, self.scenario, self.checked_at, self.decision,
                  self.reasons, self.licence, self.operator, self.serial_no]  # fmt: skip
        try:
            return orjson.dumps(fields).decode("utf-8")
        except TypeError:  # a lone surrogate in a client's field: the standard encoder writes what it can
            return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ScanRecord:
        """The inverse of :meth:`to_json`."""
        f = orjson.loads(text)
        return cls(f[0], f[1], f[2], f[3], f[4], tuple((c, d) for c, d in f[5]), f[6], f[7], f[8])

    def with_licence(self, licence: dict[str, Any] | None) -> ScanRecord:
        """This record with another licence view (``dataclasses.replace`` costs a re-scan 2 µs more)."""
        return ScanRecord(self.scan_id, self.counter, self.scenario, self.checked_at, self.decision, self.reasons,
                          licence, self.operator, self.serial_no)  # fmt: skip

    def settled(self, status: str) -> ScanRecord:
        """This record as the store settled it: a replayed or revoked token is rejected."""
        if status == REPLAYED:
            return replace(self, decision="rejected", reasons=(("REPLAYED", ""),))
        if status == REVOKED:
            return replace(self, decision="rejected", reasons=(("REVOKED", ""),))
        return self


@dataclass(frozen=True, slots=True)
class Commit:
    """What a cold scan asks the store to do, atomically."""

    record: ScanRecord
    tag: str  # groups a licence's keys (one Redis Cluster slot)
    digest: str  # of the token, for the per-counter cache
    jti: str | None  # claimed only when the decision is accepted
    revocation_key: str | None  # "type|province|licence number" as the token states it
    stats_key: str  # "type|issuing province|counter province|scenario"
    cache_ttl: int  # never longer than the token lives
    record_ttl: int


class StoreUnavailableError(Exception):
    """The store cannot be reached or did not answer in time."""


class ScanStore(Protocol):
    """The port. Every method may raise :class:`StoreUnavailableError`."""

    async def lookup(
        self, tag: str, counter: str, digest: str, revocation_key: str | None
    ) -> tuple[ScanRecord, bool] | None:
        """This counter's cached scan of this token and whether its licence is revoked now."""

    async def commit(self, commit: Commit) -> tuple[ScanRecord, bool, bool]:
        """Store a cold scan; returns (record as settled, cached, revoked now)."""

    async def get_scan(self, scan_id: str) -> ScanRecord | None:
        """A stored scan by id."""

    async def set_revoked(self, revocation_key: str, revoked: bool, reason: str) -> None:
        """Revoke or restore a licence, for every instance at once."""

    async def stats(self) -> dict[str, int]:
        """All counters: ``scans|…|decision``, ``reason|…|code``, ``rescans``, ``minute|…|decision``."""

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailableError` unless the store answers."""

    async def close(self) -> None:
        """Release connections."""


def stats_fields(record: ScanRecord, stats_key: str) -> list[str]:
    """The statistics fields one decided scan increments."""
    fields = [f"scans|{stats_key}|{record.decision}"]
    fields += [f"reason|{stats_key}|{code}" for code, _ in record.reasons]
    return fields


def licence_tag(identity: str) -> str:
    """A short tag for a licence (or, for a token naming none, its digest): every key of a scan
    carries it, so they share one Redis Cluster slot. Keys name the full identity too, so tags
    may collide harmlessly."""
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:10]


def scan_tag(scan_id: str) -> str:
    """Scan ids start with their licence's tag, so a scan can be found in its slot."""
    return scan_id.split("-", 1)[0]


class MemoryStore:
    """The in-process adapter: one instance only, state lost on exit. ``clock`` is injectable."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._values: dict[str, tuple[str, float]] = {}  # key -> (value, expires at)
        self._sweep_above = _SWEEP_FROM
        self._revoked: dict[str, str] = {}
        self._stats: dict[str, int] = {}

    def _get(self, key: str) -> str | None:
        item = self._values.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._values[key]
            return None
        return item[0]

    def _set(self, key: str, value: str, ttl: int) -> None:
        self._values[key] = (value, self._clock() + ttl)

    def _sweep(self) -> None:
        """Drop expired entries now and then, so memory stays bounded by the live tokens."""
        now = self._clock()
        for key in [k for k, (_, exp) in self._values.items() if exp <= now]:
            del self._values[key]

    def _count(self, fields: list[str]) -> None:
        for name in fields:
            self._stats[name] = self._stats.get(name, 0) + 1

    async def lookup(
        self, tag: str, counter: str, digest: str, revocation_key: str | None
    ) -> tuple[ScanRecord, bool] | None:
        """See :meth:`ScanStore.lookup`."""
        scan_id = self._get(f"{tag}:c:{counter}:{digest}")
        stored = self._get(f"{tag}:s:{scan_id}") if scan_id else None
        if stored is None:
            return None
        self._count(["rescans"])
        record = ScanRecord.from_json(stored[1:]).settled(stored[0])
        return record, revocation_key is not None and revocation_key in self._revoked

    async def commit(self, commit: Commit) -> tuple[ScanRecord, bool, bool]:
        """See :meth:`ScanStore.commit`."""
        found = await self.lookup(commit.tag, commit.record.counter, commit.digest, commit.revocation_key)
        if found is not None:
            return found[0], True, found[1]
        if len(self._values) > self._sweep_above:
            self._sweep()
            # The next sweep waits until as many entries again have come: sweeping at every commit once
            # more than 10,000 are live would cost each scan a pass over all of them.
            self._sweep_above = max(_SWEEP_FROM, 2 * len(self._values))
        status = AS_DECIDED
        revoked = commit.revocation_key is not None and commit.revocation_key in self._revoked
        if commit.record.decision == "accepted":
            if revoked:
                status = REVOKED
            elif commit.jti is not None:
                claim = f"{commit.tag}:j:{commit.jti}"
                if self._get(claim) is not None:
                    status = REPLAYED
                else:
                    self._set(claim, commit.record.counter, commit.cache_ttl)
        record = commit.record
        self._set(f"{commit.tag}:s:{record.scan_id}", status + record.to_json(), commit.record_ttl)
        self._set(f"{commit.tag}:c:{record.counter}:{commit.digest}", record.scan_id, commit.cache_ttl)
        settled = record.settled(status)
        minute = time.strftime("%Y%m%d%H%M", time.gmtime(self._clock()))
        self._count([*stats_fields(settled, commit.stats_key), f"minute|{minute}|{settled.decision}"])
        return settled, False, revoked

    async def get_scan(self, scan_id: str) -> ScanRecord | None:
        """See :meth:`ScanStore.get_scan`."""
        stored = self._get(f"{scan_tag(scan_id)}:s:{scan_id}")
        return None if stored is None else ScanRecord.from_json(stored[1:]).settled(stored[0])

    async def set_revoked(self, revocation_key: str, revoked: bool, reason: str) -> None:
        """See :meth:`ScanStore.set_revoked`."""
        if revoked:
            self._revoked[revocation_key] = reason
        else:
            self._revoked.pop(revocation_key, None)

    async def stats(self) -> dict[str, int]:
        """See :meth:`ScanStore.stats`."""
        return dict(self._stats)

    async def ping(self) -> None:
        """The in-process store is always there."""

    async def close(self) -> None:
        """Nothing to release."""
