"""The in-process adapter of :class:`verifier.service.ports.ScanStore`: one instance only, state lost on
exit; the embedded default and the demo's store."""

from __future__ import annotations

import time
from collections.abc import Callable

from verifier.service.ports import (
    AS_DECIDED,
    REPLAYED,
    REVOKED,
    Commit,
    ScanRecord,
    StoreHealth,
    scan_tag,
    stats_fields,
)

_SWEEP_FROM = 10_000  # the embedded store looks for expired entries once it holds more than this


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

    def _set_until(self, key: str, value: str, expires_at: float) -> None:
        self._values[key] = (value, expires_at)

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
                    self._set_until(claim, commit.record.counter, commit.expires_at)
        record = commit.record
        self._set(f"{commit.tag}:s:{record.scan_id}", status + record.to_json(), commit.record_ttl)
        self._set_until(f"{commit.tag}:c:{record.counter}:{commit.digest}", record.scan_id, commit.expires_at)
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

    async def health(self) -> StoreHealth:
        """The process's own memory: it keeps what it is given until the process ends, on its own clock."""
        return StoreHealth((), None, None)

    async def ping(self) -> None:
        """The in-process store is always there."""

    async def close(self) -> None:
        """Nothing to release."""
