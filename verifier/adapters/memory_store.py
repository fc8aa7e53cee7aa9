"""The in-process adapter of :class:`verifier.service.ports.ScanStore`: one instance only, state lost on
exit; the embedded default and the demo's store."""

from __future__ import annotations

import itertools
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence

from verifier.core.decision_view import timestamp
from verifier.errors import RateLimitedError
from verifier.service.ports import (
    AS_DECIDED,
    REPLAYED,
    REVOKED,
    USED_HERE,
    AuditEvent,
    Commit,
    Rate,
    ScanRecord,
    StoreHealth,
    audit_event,
)

AUDIT_BOUND = 100_000  # audit events kept for the writer at most
_SWEEP_FROM = 10_000  # the embedded store looks for expired entries once it holds more than this


class MemoryStore:
    """The in-process adapter: one instance only, state lost on exit. ``clock`` is injectable."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._values: dict[str, tuple[str, float]] = {}  # key -> (value, expires at)
        self._sweep_above = _SWEEP_FROM
        self._stats: dict[str, int] = {}
        # Every answer's audit event, for the trail's writer to take from the left; the oldest are dropped
        # beyond the bound, as a Redis stream trims them.
        self.audit_events: deque[AuditEvent] = deque(maxlen=AUDIT_BOUND)
        self._answers = 0
        self._run = secrets.token_hex(6)  # answer ids unique across restarts of this process too

    def _get(self, key: str) -> str | None:
        item = self._values.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._values[key]
            return None
        return item[0]

    def _set_until(self, key: str, value: str, expires_at: float) -> None:
        self._values[key] = (value, expires_at)

    def _sweep(self) -> None:
        """Drop expired entries now and then, so memory stays bounded by the live tokens."""
        now = self._clock()
        for key in [k for k, (_, exp) in self._values.items() if exp <= now]:
            del self._values[key]

    def _revoked(self, licence_id: str) -> bool:
        return self._get(f"v:{licence_id}") is not None

    def _admit(self, rate: Rate | None) -> None:
        """The same cell rate algorithm as the Redis store's script."""
        if rate is None:
            return
        key = f"r:{rate.counter}"
        now = self._clock()
        interval = 1 / rate.per_second
        after = max(float(self._get(key) or 0), now) + interval
        if after - now > interval * rate.burst:
            raise RateLimitedError(rate.counter, after - now - interval * rate.burst)
        self._set_until(key, repr(after), after)

    def _audit(self, stored: str, *, cached: bool, revoked: bool, operator: str | None) -> None:
        self._answers += 1
        at = timestamp(self._clock())
        self.audit_events.append(
            audit_event(f"m/{self._run}/{self._answers}", at, stored, cached=cached, revoked=revoked, operator=operator)
        )

    async def note(self, tag: str, record: ScanRecord, rate: Rate | None) -> None:
        """See :meth:`ScanStore.note`."""
        self._admit(rate)
        self._audit(AS_DECIDED + record.to_json(), cached=False, revoked=False, operator=record.operator)

    async def lookup(
        self, tag: str, counter: str, digest: str, licence_id: str, *, rate: Rate | None, operator: str | None
    ) -> tuple[ScanRecord, bool] | None:
        """See :meth:`ScanStore.lookup`."""
        self._admit(rate)
        found = self._cached(counter, digest, licence_id)
        if found is not None:
            self._audit(found[0], cached=True, revoked=found[1], operator=operator)
            return ScanRecord.from_json(found[0][1:]).settled(found[0][0]), found[1]
        return None

    def _cached(self, counter: str, digest: str, licence_id: str) -> tuple[str, bool] | None:
        """The stored answer (status and record) this counter has for this digest, and revoked now."""
        scan_id = self._get(f"c:{counter}:{digest}")
        stored = self._get(f"s:{scan_id}") if scan_id else None
        if stored is None:
            return None
        revoked = self._revoked(licence_id)
        if stored[0] == REVOKED and not revoked:
            return None  # the licence was restored since: decide anew
        return stored, revoked

    async def commit(self, commit: Commit) -> tuple[ScanRecord, bool, bool]:
        """See :meth:`ScanStore.commit`."""
        record = commit.record
        found = await self.lookup(
            commit.tag, record.counter, commit.digest, commit.licence_id, rate=commit.rate, operator=record.operator
        )
        if found is not None:
            return found[0], True, found[1]
        if len(self._values) > self._sweep_above:
            self._sweep()
            # The next sweep waits until as many entries again have come: sweeping at every commit once
            # more than 10,000 are live would cost each scan a pass over all of them.
            self._sweep_above = max(_SWEEP_FROM, 2 * len(self._values))
        status = AS_DECIDED
        revoked = self._revoked(commit.licence_id)
        if record.decision == "accepted":
            if revoked:
                status = REVOKED
            elif commit.jti is not None:
                claim = f"j:{commit.jti}"
                holder = self._get(claim)
                if holder is not None:
                    status = USED_HERE if holder == record.counter else REPLAYED
                else:
                    self._set_until(claim, record.counter, commit.expires_at)
        self._set_until(f"s:{record.scan_id}", status + record.to_json(), self._clock() + commit.record_ttl)
        self._set_until(f"c:{record.counter}:{commit.digest}", record.scan_id, commit.expires_at)
        self._audit(status + record.to_json(), cached=False, revoked=revoked, operator=record.operator)
        return record.settled(status), False, revoked

    def count(self, fields: Sequence[str]) -> None:
        """See :meth:`ScanStore.count`."""
        for name in fields:
            self._stats[name] = self._stats.get(name, 0) + 1

    async def get_scan(self, scan_id: str) -> tuple[ScanRecord, bool] | None:
        """See :meth:`ScanStore.get_scan`."""
        stored = self._get(f"s:{scan_id}")
        if stored is None:
            return None
        record = ScanRecord.from_json(stored[1:]).settled(stored[0])
        return record, record.licence_id is not None and self._revoked(record.licence_id)

    async def set_revoked(self, licence_id: str, revoked: bool, reason: str, ttl: int | None) -> None:
        """See :meth:`ScanStore.set_revoked`."""
        if revoked:
            self._set_until(f"v:{licence_id}", reason or "-", math.inf if ttl is None else self._clock() + ttl)
        else:
            self._values.pop(f"v:{licence_id}", None)

    async def stats(self) -> dict[str, int]:
        """See :meth:`ScanStore.stats`."""
        return dict(self._stats)

    async def health(self) -> StoreHealth:
        """The process's own memory: it keeps what it is given until the process ends, on its own clock."""
        return StoreHealth((), None, None)

    async def ping(self) -> None:
        """The in-process store is always there."""

    async def take(self, limit: int) -> list[tuple[str, AuditEvent]]:
        """See :meth:`verifier.service.ports.AuditFeed.take`: the oldest events, left in place until
        acknowledged (the one writer of this process takes again only after acknowledging)."""
        return [(event.answer_id, event) for event in itertools.islice(self.audit_events, limit)]

    async def ack(self, refs: Sequence[str]) -> None:
        """See :meth:`verifier.service.ports.AuditFeed.ack`."""
        done = set(refs)
        while self.audit_events and self.audit_events[0].answer_id in done:
            self.audit_events.popleft()

    async def backlog(self) -> int:
        """See :meth:`verifier.service.ports.AuditFeed.backlog`."""
        return len(self.audit_events)

    async def close(self) -> None:
        """Nothing to release."""
