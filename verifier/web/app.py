"""The verifier application's factory, the one composition root: it builds the store, the trust
source and the service from the settings (or takes them ready-made from a test), and adds the routes
and pages. No I/O happens until the app starts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from verifier.adapters.api_keys import ApiKeys, KeyLookup
from verifier.adapters.audit.trail import AuditTrail, engine_url
from verifier.adapters.audit.writer import TrailWriter, WriterState
from verifier.adapters.catalogue_files import load_catalogue
from verifier.adapters.memory_store import MemoryStore
from verifier.adapters.paths import state_dir
from verifier.adapters.redis_audit import RedisAuditFeed
from verifier.adapters.redis_keys import RedisKeys
from verifier.adapters.redis_store import RedisStore
from verifier.adapters.secret import load_secret
from verifier.adapters.trust_source import JwksTrustSource
from verifier.core.catalogue import Catalogue
from verifier.core.identity import Identities
from verifier.errors import StoreUnavailableError
from verifier.service.ports import AuditFeed, ScanStore, TrustSource
from verifier.service.scan import ScanService
from verifier.service.settings import JwksSource, Settings
from verifier.web import appkeys, audit_routes, handlers, pages, reload
from verifier.web.edge import problem_middleware
from verifier.web.metrics import Metrics
from verifier.web.reload import RulesReloader
from verifier.web.server import CONNECTION_LIMITS, DIRECT_ROUTES, ConnectionLimits
from verifier.web.signins import SignInLog

log = logging.getLogger("verifier")
AUDIT_WATCH_SECONDS = 5.0  # how often the audit backlog is read for /metrics


async def _check_store(service: ScanService, metrics: Metrics) -> None:
    """One check of the store's safety and clock, counted in the metrics."""
    metrics.observe_store_check(await service.check_store(), service.clock_offset)


async def _check_store_periodically(service: ScanService, metrics: Metrics, settings: Settings) -> None:
    """Check the store every ``store_check_seconds`` while it is safe; while a check fails, the store is
    out of reach, or it has not been reached yet, every half second, since no scan is decided meanwhile:
    a store that recovers, or a failover that completes, is taken back within half a second."""
    while True:
        if service.findings:
            await asyncio.sleep(0.5)
        else:  # safe: look again after the interval, or at once when a scan finds the store lost
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.store_check_seconds):
                    await service.store_trouble()
        await _check_store(service, metrics)


def _watch_the_door(app: web.Application, settings: Settings) -> None:
    """The app's metrics, its log of refused keys, and the limits its connections are served with."""
    metrics = app[appkeys.METRICS] = Metrics()
    app[appkeys.SIGN_INS] = SignInLog(metrics.sign_in_failures)
    app.on_cleanup.append(_log_held_sign_ins)
    app[CONNECTION_LIMITS] = ConnectionLimits(
        header_timeout=settings.header_timeout,
        keepalive_timeout=settings.keepalive_timeout,
        max_connections=settings.max_connections,
        retry_after=settings.retry_after_seconds,
        dropped=lambda reason: metrics.connections_dropped.labels(reason).inc(),
    )


async def _log_held_sign_ins(app: web.Application) -> None:
    """Log the refused sign-ins still held for the next line, before the service stops."""
    app[appkeys.SIGN_INS].close()


def build_store(settings: Settings) -> ScanStore:
    """Redis when a URL is given, else the embedded in-process store."""
    if settings.redis_url is None:
        log.warning("no Redis URL: using the embedded in-process store — one instance only / 未配置Redis，仅限单实例")
        return MemoryStore()
    # One multiplexed connection (verifier.adapters.redis_pipe): every call bounded by the store timeout, a burst
    # queued on it rather than refused, and a connection lost to a restart replaced at the next call.
    return RedisStore.from_url(
        settings.redis_url,
        op_timeout=settings.store_timeout,
        connect_timeout=settings.store_timeout / 2,
        min_replica_acks=settings.min_replica_acks,
        allow_volatile=settings.allow_volatile_store,
        guarded=True,  # scans only on a connection the safety check has looked at
    )


def build_trust_source(settings: Settings, catalogue: Catalogue) -> JwksTrustSource:
    """The ``--jwks`` sources, or else the jwks.json the local mock issuer publishes in the state folder (the
    verifier side reads keys, it never makes one: until the issuer has published, it is not ready). Each
    source's last good list is kept in the state folder."""
    state = Path(settings.state_dir) if settings.state_dir else state_dir()
    return JwksTrustSource(
        settings.jwks or (JwksSource(str(state / "jwks.json")),),
        last_good_dir=state / "last-good-trust",
        unit_provinces={code: unit.province for code, unit in catalogue.units.items()},
    )


def build_keys(store: ScanStore) -> KeyLookup:
    """The API keys: in the shared store on Redis, so every instance knows the same keys; else the state
    folder's key file."""
    if not isinstance(store, RedisStore):
        return ApiKeys()
    if ApiKeys().path.exists():
        log.warning(
            "the state folder's api-keys.json is not read on Redis: keys live in Redis (issue them with --redis-url)"
            " / 使用 Redis 时不读取本机 api-keys.json，密钥存于 Redis（签发时请加 --redis-url）"
        )
    return RedisKeys(store)


def build_trail(settings: Settings) -> AuditTrail:
    """The audit trail: PostgreSQL at ``--audit-url``, else SQLite in the state folder."""
    state = Path(settings.state_dir) if settings.state_dir else state_dir()
    return AuditTrail(engine_url(settings.audit_url, state), retention_days=settings.audit_retention_days)


def audit_feed(store: ScanStore, settings: Settings) -> AuditFeed:
    """Where the store keeps its audit events for the trail's writer."""
    if isinstance(store, RedisStore):
        return RedisAuditFeed(store, claim_idle=settings.audit_claim_idle)
    if isinstance(store, MemoryStore):
        return store
    raise TypeError(f"no audit feed for {type(store).__name__}")


async def _stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _audit_ctx(app: web.Application) -> AsyncIterator[None]:
    """The audit trail, and this instance's writer of it unless a separate process writes it. The trail is
    migrated by its first use: a database out of reach at start delays the trail, never the scans."""
    settings = app[appkeys.SETTINGS]
    service = app[appkeys.SERVICE]
    trail = app[appkeys.TRAIL] = build_trail(settings)
    feed = app[appkeys.AUDIT_FEED]
    writer = None
    if not settings.separate_audit_writer:
        writer = TrailWriter(feed, trail, lambda: service.catalogue)
        writer.start()
    app[appkeys.WRITER] = writer
    watcher = asyncio.create_task(_watch_audit(app))
    yield
    await _stopped(watcher)
    if writer is not None:
        await writer.stop()
    await trail.close()


async def _watch_audit(app: web.Application) -> None:
    """Every few seconds: the backlog of audit events and the writer's totals, into the metrics."""
    while True:
        backlog = None
        with contextlib.suppress(StoreUnavailableError):
            backlog = await app[appkeys.AUDIT_FEED].backlog()
        writer = app[appkeys.WRITER]
        state = writer.state if writer is not None else WriterState()
        app[appkeys.METRICS].observe_audit(backlog, state.written, state.failures)
        await asyncio.sleep(AUDIT_WATCH_SECONDS)


async def _keys_ctx(app: web.Application) -> AsyncIterator[None]:
    """The keys kept in Redis, read again periodically (the key file of embedded mode needs no task)."""
    keys = app[appkeys.API_KEYS]
    if not isinstance(keys, RedisKeys):
        yield
        return
    with contextlib.suppress(StoreUnavailableError):  # else 503 until the periodic read succeeds
        await keys.refresh()
    refresher = asyncio.create_task(keys.run_periodic())
    yield
    await _stopped(refresher)


def create_app(
    settings: Settings,
    *,
    store: ScanStore | None = None,
    clock: Callable[[], float] | None = None,
    trust: TrustSource | None = None,
    catalogue: Catalogue | None = None,
    api_keys: KeyLookup | None = None,
) -> web.Application:
    """The verifier application. No I/O happens until it starts."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[problem_middleware])
    app[appkeys.SETTINGS] = settings
    _watch_the_door(app, settings)
    data = Path(settings.data_dir) if settings.data_dir else None

    async def service_ctx(app: web.Application) -> AsyncIterator[None]:
        cat = catalogue or load_catalogue(data)
        refresher = None
        source: TrustSource
        if trust is None:
            jwks = build_trust_source(settings, cat)
            await jwks.refresh()
            refresher = asyncio.create_task(jwks.run_periodic(settings.trust_refresh_seconds))
            source = jwks
        else:
            source = trust
        state = store or build_store(settings)
        app[appkeys.API_KEYS] = api_keys or build_keys(state)
        service = ScanService(
            cat,
            source,
            state,
            policy=settings.policy,
            clock=clock or time.time,
            record_ttl=settings.record_ttl,
            max_clock_skew=settings.max_clock_skew,
            identities=Identities(load_secret(settings.secret_file)),
            counter_rate=settings.counter_rate or None,
            counter_burst=settings.counter_burst,
            revocation_ttl=settings.revocation_days * 86400 or None,
        )
        app[appkeys.SERVICE] = service
        app[appkeys.AUDIT_FEED] = audit_feed(state, settings)  # where the trail's writer takes the events
        app[appkeys.RELOADER] = RulesReloader(service, data)
        if settings.allow_volatile_store and settings.redis_url is not None:
            log.warning(
                "--allow-volatile-store: a Redis restart may forget one-time-use claims — tests and benchmarks only"
                " / 允许无持久化的Redis：仅用于测试和压测"
            )
        await _check_store(service, app[appkeys.METRICS])  # before the first request, bounded by the store timeout
        checker = asyncio.create_task(_check_store_periodically(service, app[appkeys.METRICS], settings))
        yield
        checker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checker
        if refresher is not None:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
        await state.close()

    app.cleanup_ctx.append(service_ctx)
    app.cleanup_ctx.append(_keys_ctx)
    app.cleanup_ctx.append(_audit_ctx)
    _add_routes(app)
    return app


def _add_routes(app: web.Application) -> None:
    """The API's, the audit trail's, the rules' and the pages' routes."""
    handlers.add_routes(app)
    audit_routes.add_routes(app)
    reload.add_routes(app)
    app[DIRECT_ROUTES] = (("POST", "/v1/scans"),)  # served without routing each request by verifier serve
    pages.add_routes(app)
