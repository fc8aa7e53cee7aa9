"""Where the service gets its trust list: the issuers' JWKS from one file or URL for both provinces, or one
for each (``--jwks SC=… --jwks CQ=…``), a province's source trusted only for that province's units.

Each source is read at start, then every ``--trust-refresh`` seconds — every second while a source has given
nothing yet, since no scan is decided until every source has — and once, rate-limited, when a token names a
key no source published (a rotation needs no restart). A key a source stops publishing (a withdrawn key)
stops verifying at the next refresh. Each source's last good list is kept in the state folder, so a restart
while a source is down still verifies. The token never chooses where keys come from.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import aiohttp

from verifier.adapters.paths import write_atomic
from verifier.core.catalogue import PROVINCES
from verifier.core.trust import TrustList, combine, parse_trust_list, vouched_by
from verifier.errors import TrustNotLoadedError, UsageError
from verifier.service.settings import JwksSource

log = logging.getLogger("verifier.trust")

NOT_LOADED_RETRY = 1.0  # seconds between looks while a source has given no list yet
_LABELLED = re.compile(r"([A-Za-z]{2})=(.*)", re.DOTALL)


def parse_jwks_sources(values: Iterable[str]) -> tuple[JwksSource, ...]:
    """The trust sources ``--jwks`` names (each flag one value; ``VERIFIER_JWKS`` one value too): a FILE-or-URL
    for both provinces, or ``SC=FILE-or-URL`` and ``CQ=FILE-or-URL``; one value may hold several, separated by
    spaces or commas. Either one source for both provinces or one for each: anything else is a usage error."""
    sources = []
    for item in (item for value in values for item in re.split(r"[\s,]+", value) if item):
        labelled = _LABELLED.fullmatch(item)
        province, location = (labelled[1].upper(), labelled[2]) if labelled else (None, item)
        if province is not None and province not in PROVINCES:
            raise UsageError(f"--jwks {item!r}: 省份须为 SC 或 CQ / the province must be SC or CQ")
        if not location or ("://" in location and not location.startswith(("http://", "https://"))):
            raise UsageError(f"--jwks {item!r}: 须为文件路径或 http(s) URL / must be a file path or an http(s) URL")
        sources.append(JwksSource(location, province))
    provinces = sorted(s.province or "" for s in sources)
    if provinces not in ([], [""], ["CQ", "SC"]):
        raise UsageError(
            "--jwks 须为两省共用的一个来源，或 SC=… 与 CQ=… 各一个 / --jwks takes one source for both provinces,"
            " or SC=FILE-or-URL and CQ=FILE-or-URL once each"
        )
    return tuple(sources)


class _Source:
    """One source: where it is, the province it vouches for, the last list it gave and where that is kept."""

    def __init__(self, spec: JwksSource, last_good: Path | None) -> None:
        self.spec = spec
        self.last_good = last_good
        self.trust: TrustList | None = None  # the last list with keys it gave; None until one came
        self.stamp: tuple[int, int] | None = None  # a file's (mtime, size) when last read
        self.failing: str | None = None  # the error last logged, so a source down is not logged every second
        self.is_url = spec.location.startswith(("http://", "https://"))
        self.name = spec.province or "SC+CQ"
        # A URL as logs show it: never its user or password.
        self.shown = _without_credentials(spec.location) if self.is_url else spec.location


class JwksTrustSource:
    """The trust-list adapter (:class:`verifier.service.ports.TrustSource`): the current trust list, made of
    what each source last gave, and how to read the sources again."""

    def __init__(
        self,
        sources: Sequence[JwksSource] | str | Path | None,
        *,
        initial: TrustList | None = None,
        last_good_dir: Path | None = None,
        unit_provinces: Mapping[str, str] | None = None,
        min_refresh_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``sources``: the :class:`JwksSource` list, or one file or URL for both provinces, or None for a fixed
        ``initial`` list. ``last_good_dir``: where each source's last good list is kept (None: nowhere).
        ``unit_provinces``: unit code -> province, from the catalogue, so no source vouches for a unit of the
        other province."""
        specs = (JwksSource(str(sources)),) if isinstance(sources, str | Path) else tuple(sources or ())
        self._sources = tuple(_Source(spec, _last_good_file(last_good_dir, spec)) for spec in specs)
        self._unit_provinces = dict(unit_provinces or {})
        self.current = initial or TrustList({})
        if initial is not None and len(self._sources) == 1:
            self._sources[0].trust = initial
        self._min_interval = min_refresh_interval
        self._clock = clock
        self._last_unknown_kid_refresh = -min_refresh_interval
        self._lock = asyncio.Lock()
        self._reported: dict[str, tuple[str, ...]] = {}  # refusals logged, by source, so each is logged once

    @classmethod
    def static(cls, trust: TrustList) -> JwksTrustSource:
        """A fixed trust list (tests, `verifier check`)."""
        return cls(None, initial=trust)

    @property
    def loaded(self) -> bool:
        """Whether every source has given a list with keys: until then a scan of the province it vouches
        for could only be rejected for want of a key, so none is decided."""
        if not self._sources:
            return bool(self.current.keys)
        return all(source.trust is not None for source in self._sources)

    async def refresh(self) -> bool:
        """Read every source again. A source that cannot be had, or gives no usable key, keeps the list it
        gave before — or, having given none since start, its last good list from disk. True when every
        source gave a usable list now."""
        if not self._sources:
            return False
        async with self._lock:
            fresh = await asyncio.gather(*(self._refresh_source(source) for source in self._sources))
            merged = combine(source.trust for source in self._sources if source.trust is not None)
            self._report("", merged.problems)
            if merged.jwks() != self.current.jwks():  # the same list keeps its identity: nothing to decide again
                self.current = merged
        return all(fresh)

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

    async def run_periodic(self, interval: float) -> None:
        """Refresh every ``interval`` seconds until cancelled; every second while a source has given nothing,
        so a verifier started before its issuer decides scans as soon as the keys are published."""
        while True:
            await asyncio.sleep(interval if self.loaded else min(interval, NOT_LOADED_RETRY))
            await self.refresh()

    async def _refresh_source(self, source: _Source) -> bool:
        try:
            doc = await self._fetch(source)
        except (OSError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
            if error != source.failing:
                event = {"event": "trust_list_refresh_failed", "source": source.name, "location": source.shown}
                log.warning(json.dumps({**event, "error": error}, ensure_ascii=False))
                source.failing = error
            if source.trust is None:
                await self._take_last_good(source)
            return False
        if source.failing is not None:
            log.warning(json.dumps({"event": "trust_list_source_back", "source": source.name}, ensure_ascii=False))
            source.failing = None
        fresh = vouched_by(parse_trust_list(doc), source.spec.province, self._unit_provinces)
        self._report(source.name, fresh.problems)
        if not fresh.keys:
            if source.trust is None:
                await self._take_last_good(source)
            return False
        if source.trust is None or source.trust.jwks() != fresh.jwks():
            source.trust = fresh
            await self._keep(source, fresh)
        return True

    def _report(self, name: str, problems: tuple[str, ...]) -> None:
        """Log each refused key once, and again only after the source stopped publishing it."""
        for problem in problems:
            if problem not in self._reported.get(name, ()):
                event = {"event": "trust_list_key_refused", "source": name or "combined", "problem": problem}
                log.warning(json.dumps(event, ensure_ascii=False))
        self._reported[name] = problems

    async def _take_last_good(self, source: _Source) -> None:
        """A source down at start: its last good list, so a restart still verifies."""
        if source.last_good is None:
            return
        try:
            doc = json.loads(await asyncio.to_thread(source.last_good.read_text, encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning(json.dumps({"event": "trust_list_last_good_unreadable", "error": str(exc)[:200]}))
            return
        kept = vouched_by(parse_trust_list(doc), source.spec.province, self._unit_provinces)
        if kept.keys:
            source.trust = kept
            event = {"event": "trust_list_from_last_good", "source": source.name, "location": source.shown}
            log.warning(json.dumps({**event, "saved_at": doc.get("saved_at"), "keys": len(kept.keys)}))

    async def _keep(self, source: _Source, trust: TrustList) -> None:
        """Write the list a source gave as its last good one."""
        if source.last_good is None:
            return
        doc = {"source": source.shown, "province": source.spec.province, "saved_at": int(time.time()), **trust.jwks()}
        try:
            await asyncio.to_thread(_write_last_good, source.last_good, doc)
        except OSError as exc:
            log.warning(json.dumps({"event": "trust_list_not_kept", "error": str(exc)[:200]}))

    def _file_changed(self) -> bool:
        return any(not s.is_url and _stamp(s.spec.location) != s.stamp for s in self._sources)

    async def _fetch(self, source: _Source) -> object:
        if source.is_url:
            timeout = aiohttp.ClientTimeout(total=5)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(source.spec.location) as answer:
                answer.raise_for_status()
                return await answer.json(content_type=None)
        source.stamp = _stamp(source.spec.location)
        return json.loads(await asyncio.to_thread(Path(source.spec.location).read_text, encoding="utf-8"))


def published_trust_list(path: Path, unit_provinces: Mapping[str, str]) -> TrustList:
    """The trust list published in the file ``path``, read once (`verifier check`); refusals go to the log.
    TrustNotLoadedError when there is none, it cannot be read, or it holds no usable key."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        reason = "不存在 / does not exist" if isinstance(exc, FileNotFoundError) else f"无法读取 / unreadable: {exc}"
        raise TrustNotLoadedError(
            f"没有信任列表 {path}（{reason}）：先由签发方生成并发布密钥，如 `verifier issuer mint …` 或"
            f" `verifier issuer serve` / no trust list at {path}: the issuer publishes it when it makes its keys"
            " (`verifier issuer mint …` or `verifier issuer serve`)"
        ) from None
    trust = vouched_by(parse_trust_list(doc), None, unit_provinces)
    for problem in trust.problems:
        log.warning(json.dumps({"event": "trust_list_key_refused", "problem": problem}, ensure_ascii=False))
    if not trust.keys:
        raise TrustNotLoadedError(f"信任列表 {path} 中没有可用的密钥 / the trust list {path} holds no usable key")
    return trust


def _without_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _last_good_file(directory: Path | None, spec: JwksSource) -> Path | None:
    """One file per province and location: a source replaced by another never lends it its old keys."""
    if directory is None:
        return None
    digest = hashlib.sha256(spec.location.encode("utf-8")).hexdigest()[:16]
    return directory / f"{spec.province or 'both'}-{digest}.json"


def _write_last_good(path: Path, doc: dict[str, object]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(path, json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8"), 0o644)


def _stamp(location: str) -> tuple[int, int] | None:
    try:
        st = Path(location).stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size
