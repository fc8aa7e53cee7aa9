"""Where the service gets its trust list: the issuer's JWKS from a file or a URL, refreshed
periodically and once, rate-limited, when a token names a key it does not know (so a key rotation
needs no restart). The token never chooses where keys come from."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from verifier.core.trust import TrustList, parse_trust_list

log = logging.getLogger("verifier.trust")


class JwksTrustSource:
    """The trust-list adapter (:class:`verifier.service.ports.TrustSource`): holds the current trust list
    and knows how to fetch a fresh one from its file or URL."""

    def __init__(
        self,
        location: str | Path | None,
        *,
        initial: TrustList | None = None,
        min_refresh_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        self.current = initial or TrustList({})
        self._min_interval = min_refresh_interval
        self._clock = clock
        self._last_unknown_kid_refresh = -min_refresh_interval
        self._lock = asyncio.Lock()
        self._file_stamp: tuple[int, int] | None = None  # (mtime, size) of the file last read

    @classmethod
    def static(cls, trust: TrustList) -> JwksTrustSource:
        """A fixed trust list (tests, `verifier check`)."""
        return cls(None, initial=trust)

    @property
    def loaded(self) -> bool:
        """Whether any key is known."""
        return bool(self.current.keys)

    async def refresh(self) -> bool:
        """Fetch the trust list again; keep the old one if the new one cannot be had."""
        if self.location is None:
            return False
        async with self._lock:
            try:
                doc = await self._fetch(str(self.location))
            except (OSError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning(json.dumps({"event": "trust_list_refresh_failed", "error": str(exc)[:200]}))
                return False
            fresh = parse_trust_list(doc)
            for problem in fresh.problems:
                log.warning(json.dumps({"event": "trust_list_key_refused", "problem": problem}, ensure_ascii=False))
            if fresh.keys:
                self.current = fresh
            return bool(fresh.keys)

    async def refresh_for_unknown_kid(self) -> bool:
        """Refresh because a token named an unknown key, at most once per ``min_refresh_interval``.
        True when the trust list changed since the caller decided, so it decides again: a scan arriving
        while another scan's refresh is under way waits for that refresh instead of being refused."""
        before = self.current
        # A file that changed is read at once: a stat costs nothing, so forged unknown kids spending the
        # rate limit cannot delay a rotation. A URL is fetched at most once per interval.
        if self._clock() - self._last_unknown_kid_refresh >= self._min_interval or self._file_changed():
            self._last_unknown_kid_refresh = self._clock()
            await self.refresh()
        else:
            async with self._lock:  # a refresh under way: wait for the list it brings
                pass
        return self.current is not before

    def _file_changed(self) -> bool:
        location = str(self.location) if self.location is not None else ""
        if not location or location.startswith(("http://", "https://")):
            return False
        return _stamp(location) != self._file_stamp

    async def _fetch(self, location: str) -> object:
        if location.startswith(("http://", "https://")):
            timeout = aiohttp.ClientTimeout(total=5)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(location) as response:
                response.raise_for_status()
                return await response.json(content_type=None)
        self._file_stamp = _stamp(location)
        text = await asyncio.to_thread(Path(location).read_text, encoding="utf-8")
        return json.loads(text)

    async def run_periodic(self, interval: float) -> None:
        """Refresh every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.refresh()


def _stamp(location: str) -> tuple[int, int] | None:
    try:
        st = Path(location).stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size
