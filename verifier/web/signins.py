"""Refused sign-ins: each counted in ``/metrics`` by reason, and logged at a bounded rate.

Twelve thousand wrong keys must leave a trace an operator sees, but not twelve thousand lines: the first
refusal after a quiet spell is logged at once; the refusals after it are added up and logged together,
one line per ``interval`` seconds while they go on. A line says how many, why, and the last peer's
address — never any part of a key (a wrong key may be a right key mistyped, or another counter's).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter as Tally

from prometheus_client import Counter

log = logging.getLogger("verifier")

# Why a request's key was refused: no Bearer key, a key nobody holds, two Authorization headers, the
# administrator's key where a counter's is needed, a counter's where the administrator's is, or another
# key where an app's is (the holder's usage log).
REASONS = ("missing", "unknown", "duplicate", "not_counter", "not_admin", "not_app")


class SignInLog:
    """Counts refused sign-ins in ``failures`` (labelled by reason) and logs them at most once per ``interval``."""

    def __init__(self, failures: Counter, *, interval: float = 10.0) -> None:
        self._failures = failures
        self._interval = interval
        self._pending: Tally[str] = Tally()
        self._peer: str | None = None
        self._next: asyncio.TimerHandle | None = None

    def refused(self, reason: str, peer: str | None) -> None:
        """One request refused for its key, from ``peer`` (an address; None when unknown)."""
        self._failures.labels(reason).inc()
        self._pending[reason] += 1
        self._peer = peer
        if self._next is None:  # after a quiet spell: say it now, and hold what follows for one interval
            self._write()
            self._next = asyncio.get_running_loop().call_later(self._interval, self._tick)

    def _tick(self) -> None:
        if self._pending:
            self._write()
            self._next = asyncio.get_running_loop().call_later(self._interval, self._tick)
        else:
            self._next = None

    def _write(self) -> None:
        line = {
            "event": "sign_in_refused",
            "message": "API 密钥被拒绝 / requests refused for their API key",
            "count": sum(self._pending.values()),
            "by_reason": dict(sorted(self._pending.items())),
            "last_peer": self._peer,
        }
        log.warning(json.dumps(line, ensure_ascii=False))
        self._pending.clear()

    def close(self) -> None:
        """Log what is still held, and stop."""
        if self._next is not None:
            self._next.cancel()
            self._next = None
        if self._pending:
            self._write()
