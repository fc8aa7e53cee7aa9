"""The statistics of a Redis-backed service: counted in each instance, added to Redis once a second.

The scan script touches one licence's keys only (one Redis Cluster slot); what an answer counts
(:func:`verifier.core.stats.answer_fields`) is added here and written with ``HINCRBY`` once a
second, one command per field, so a second of scans costs a few dozen commands whatever their
number. ``GET /v1/stats`` flushes this instance's counts first; other instances' counts arrive
within a second. A clean stop flushes what is left: nothing is lost or counted twice. While Redis
cannot be reached the counts wait here and are written once it can; an increment whose answer was
lost in an outage may be counted twice or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from verifier.errors import StoreUnavailableError
from verifier.service.ports import STATS_TTL

log = logging.getLogger("verifier")

Call = Callable[..., Awaitable[Any]]


class StatsBuffer:
    """Counts waiting to be added to Redis (``cy:stats`` and ``cy:stats:d:<day>``)."""

    def __init__(self, call: Call, prefix: str, *, interval: float = 1.0) -> None:
        self._call = call  # one Redis command; StoreUnavailableError when Redis cannot take it
        self._total = f"{prefix}stats"
        self._day = f"{prefix}stats:d:"
        self._interval = interval
        self._pending: Counter[str] = Counter()  # field -> count; its hash is chosen at the flush
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one flush at a time, so no count is taken twice

    def add(self, fields: Sequence[str]) -> None:
        """One more of each field (:func:`verifier.core.stats.answer_fields`); minute fields go to their day's
        hash when they are written."""
        self._pending.update(fields)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._run())

    def _hash(self, field: str) -> str:
        """The hash a field is added to: a minute's goes to its day's, kept two days; the rest to the total."""
        return self._day + field[7:15] if field.startswith("minute|") else self._total

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            with contextlib.suppress(StoreUnavailableError):
                await self.flush()

    async def flush(self) -> None:
        """Add every waiting count to Redis; what could not be added waits for the next flush."""
        async with self._lock:
            batch, self._pending = self._pending, Counter()
            if not batch:
                return
            entries = [((self._hash(field), field), count) for field, count in batch.items()]
            days = {key for (key, _), _ in entries if key.startswith(self._day)}
            results = await asyncio.gather(
                *(self._call("HINCRBY", key, field, count) for (key, field), count in entries),
                *(self._call("EXPIRE", key, STATS_TTL) for key in days),
                return_exceptions=True,
            )
            failed = [entry for entry, result in zip(entries, results, strict=False) if isinstance(result, Exception)]
            for (_, field), count in failed:
                self._pending[field] += count
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                raise (
                    errors[0] if isinstance(errors[0], StoreUnavailableError) else StoreUnavailableError(str(errors[0]))
                )

    async def close(self) -> None:
        """Stop flushing once a second and add what is left (a clean stop loses nothing)."""
        if self._flusher is not None:
            async with self._lock:  # not in the middle of a flush: its batch would be lost with it
                self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        try:
            await self.flush()
        except StoreUnavailableError as exc:
            lost = sum(self._pending.values())
            log.warning(json.dumps({"event": "stats_lost_at_stop", "counts": lost, "error": str(exc)[:200]}))
