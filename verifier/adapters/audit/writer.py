"""The trail's writer: takes the store's audit events in batches, writes them, and acknowledges them only
once their rows are committed — so a writer that dies mid-batch loses nothing (the store hands its events
out again) and a batch written twice gives each row once (the trail skips an answer it has).

A database out of reach neither slows nor fails a scan: the events wait in the store (bounded there), the
writer retries the same batch with a growing pause, and says so once in the log and in its counters.
Stopping never cancels a write under way (a driver cancelled mid-query may leave its connection hanging):
the loop looks at the stop flag between steps."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from verifier.adapters.audit.trail import AuditTrail, TrailUnavailable
from verifier.core.catalogue import Catalogue
from verifier.errors import StoreUnavailableError
from verifier.service.ports import AuditEvent, AuditFeed

log = logging.getLogger("verifier.audit")
PRUNE_EVERY = 3600.0  # seconds between looks for rows past the retention


@dataclass
class WriterState:
    """What the writer has done, for /readyz and /metrics."""

    written: int = 0
    batches: int = 0  # batches written and acknowledged
    failures: int = 0
    failing_since: float | None = None  # time.time() of the first failure in a row; None while writing works
    last_error: str | None = None


class TrailWriter:
    """One loop: take up to ``batch`` events, write, acknowledge; rest ``idle`` seconds when none came."""

    def __init__(
        self,
        feed: AuditFeed,
        trail: AuditTrail,
        catalogue: Callable[[], Catalogue],
        *,
        batch: int = 500,
        idle: float = 0.5,
        max_pause: float = 5.0,
    ) -> None:
        self.feed = feed
        self.trail = trail
        self._catalogue = catalogue
        self._batch = batch
        self._idle = idle
        self._max_pause = max_pause
        self.state = WriterState()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pruned = float("-inf")

    def start(self) -> None:
        """Run the loop in the background."""
        self._task = asyncio.get_running_loop().create_task(self.run(), name="audit-writer")

    async def stop(self, grace: float = 10.0) -> None:
        """Finish the step under way and stop; events taken and not written go back to the store's care."""
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except TimeoutError:
                self._task.cancel()
                log.warning("审计记录写入未能及时停止 / the audit writer did not stop within %.0f s", grace)

    async def _rest(self, seconds: float) -> None:
        """Sleep, waking at once when asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def run(self) -> None:
        """Until stopped: write every event the feed has."""
        while not self._stop.is_set():
            try:
                wrote = await self.step()
            except Exception:  # a fault of this service or of the data: said, and tried again, never a dead writer
                log.exception("审计记录写入出错，稍后重试 / the audit writer failed; trying again shortly")
                wrote = 0
                await self._rest(self._max_pause)
            if not wrote:
                await self._rest(self._idle)

    async def step(self) -> int:
        """One batch, written and acknowledged; returns how many events it held (0: the feed was empty, or
        the store out of reach)."""
        try:
            taken = await self.feed.take(self._batch)
        except StoreUnavailableError:
            return 0
        if taken:
            if not await self._write([event for _, event in taken]):
                return 0  # stopped while the database was away: the store hands the batch out again
            await self._ack([ref for ref, _ in taken])
            self.state.written += len(taken)
            self.state.batches += 1
        if time.monotonic() - self._pruned >= PRUNE_EVERY and await self._maintain():
            self._pruned = time.monotonic()
        return len(taken)

    async def _write(self, events: list[AuditEvent]) -> bool:
        """Write the batch, retrying until it is committed (True) or the writer is stopped (False)."""
        pause = 0.2
        while True:
            try:
                await self.trail.write(events, self._catalogue())
            except TrailUnavailable as exc:
                self._failed(exc)
                if self._stop.is_set():
                    return False
                await self._rest(pause)
                pause = min(pause * 2, self._max_pause)
                continue
            if self.state.failing_since is not None:
                log.warning("审计记录库已恢复写入 / the audit trail is written again")
            self.state.failing_since = None
            self.state.last_error = None
            return True

    async def _ack(self, refs: list[str]) -> None:
        """Acknowledge, retrying while the store is away: the rows are committed, so an event handed out again
        meanwhile is written once all the same."""
        while True:
            try:
                await self.feed.ack(refs)
                return
            except StoreUnavailableError:
                if self._stop.is_set():
                    return
                await self._rest(self._idle)

    def _failed(self, exc: BaseException) -> None:
        self.state.failures += 1
        self.state.last_error = type(exc).__name__
        if self.state.failing_since is None:
            self.state.failing_since = time.time()
            log.warning(
                "审计记录库暂不可写，扫码不受影响，事件在存储中等待 / the audit trail cannot be written now; scans "
                "go on and their events wait in the store: %s",
                str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
            )

    async def _maintain(self) -> bool:
        """This month's partitions and the retention; True when done (retried at the next step otherwise)."""
        now = datetime.now(UTC)
        try:
            await self.trail.prepare(now)
            await self.trail.prune(now)
        except TrailUnavailable as exc:
            self._failed(exc)
            return False
        return True
