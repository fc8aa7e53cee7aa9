"""The HTTP shell of the scan service: parse, authenticate, call the service, render.

Status codes exist only here. Every error that is not a decision is RFC 9457 problem+json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from aiohttp import web

from verifier import appkeys
from verifier.catalogue import PROVINCES, Catalogue, Counter
from verifier.catalogue_load import load_catalogue
from verifier.catalogue_view import catalogue_document
from verifier.counter_keys import ApiKeys
from verifier.logsink import scan_lines
from verifier.metrics import Metrics
from verifier.problems import ProblemError
from verifier.service import ScanResult, ScanService, scan_document
from verifier.settings import Settings
from verifier.stats import stats_document
from verifier.store import MemoryStore, ScanStore, StoreUnavailableError
from verifier.store_redis import RedisStore
from verifier.trust_source import TrustSource
from verifier.web_edge import (
    counter_of,
    json_body,
    json_response,
    optional_field,
    problem_middleware,
    require_admin,
    required_field,
    unavailable,
)
from verifier.web_server import DIRECT_ROUTES

log = logging.getLogger("verifier")
_FIELD_MAX = 64  # serial numbers, operator ids, licence numbers
# A longer token is refused as a bad request; up to this, it is decided (anything past 1024 characters is
# TOKEN_TOO_LARGE). The OpenAPI document states the same maximum, and a body holding it fits the body limit.
_TOKEN_FIELD_MAX = 8192


async def post_scan(request: web.Request) -> web.Response:
    """POST /v1/scans: a counter posts a shown token."""
    started = time.perf_counter()
    counter = counter_of(request)
    body = await json_body(request)
    token = required_field(body, "token", _TOKEN_FIELD_MAX)
    scenario = required_field(body, "scenario", _FIELD_MAX)
    serial_no = optional_field(body, "serial_no", _FIELD_MAX)
    operator = optional_field(body, "operator", _FIELD_MAX)
    service = request.app[appkeys.SERVICE]
    if scenario not in service.catalogue.scenarios:
        raise ProblemError(422, f"unknown scenario {scenario!r}", field="scenario", allowed=list(counter.scenarios))
    result = await service.scan(counter, token, scenario, operator=operator, serial_no=serial_no)
    elapsed = time.perf_counter() - started
    request.app[appkeys.METRICS].observe(result.record.decision, result.cached, elapsed)
    _log_scan(result, counter, elapsed, operator=operator, serial_no=serial_no)
    return json_response(scan_document(result))


def _json_line(data: dict[str, Any]) -> str:
    try:
        return orjson.dumps(data).decode("utf-8")
    except TypeError:  # a lone surrogate in a client's field
        return json.dumps(data, ensure_ascii=False)


def _log_scan(
    result: ScanResult, counter: Counter, elapsed: float, *, operator: str | None, serial_no: str | None
) -> None:
    """One JSON line per scan: who, what, outcome — never the token or the holder. Operator and serial
    number are this request's: a cached re-scan answers the stored scan but is a business of its own."""
    record = result.record
    if scan_lines.enabled:
        scan_lines.write(
            _json_line(
                {
                    "event": "scan",
                    "scan_id": record.scan_id,
                    "counter": counter.id,
                    "counter_province": counter.province,
                    "operator": operator,
                    "serial_no": serial_no,
                    "scenario": record.scenario,
                    "type": result.licence_type,
                    "issuing_province": result.issuing_province,
                    "decision": record.decision,
                    "reasons": [code for code, _ in record.reasons],
                    "cached": result.cached,
                    "ms": round(elapsed * 1000, 2),
                }
            )
        )


async def get_scan(request: web.Request) -> web.Response:
    """GET /v1/scans/{scan_id}: the decision again, for the counter that made it."""
    counter = counter_of(request)
    record = await request.app[appkeys.SERVICE].get_scan(request.match_info["scan_id"])
    if record is None or record.counter != counter.id:
        raise ProblemError(404, "no such scan for this counter")
    return json_response(scan_document(ScanResult(record, False, "-", "-")))


async def post_revocation(request: web.Request) -> web.Response:
    """POST /v1/revocations: an issuing unit revokes (or restores) a licence."""
    require_admin(request)
    body = await json_body(request)
    service = request.app[appkeys.SERVICE]
    licence_type = required_field(body, "type", _FIELD_MAX)
    province = required_field(body, "province", _FIELD_MAX)
    licence_no = required_field(body, "licence_no", _FIELD_MAX)
    reason = optional_field(body, "reason", 200) or ""
    restore = body.get("restore", False)
    if not isinstance(restore, bool):
        raise ProblemError(400, "field 'restore' must be a boolean", field="restore")
    if licence_type not in service.catalogue.licences:
        raise ProblemError(
            422, f"unknown licence type {licence_type!r}", field="type", allowed=sorted(service.catalogue.licences)
        )
    if province not in PROVINCES:
        raise ProblemError(422, f"unknown province {province!r}", field="province", allowed=list(PROVINCES))
    await service.revoke(licence_type, province, licence_no, reason=reason, restore=restore)
    log.info(json.dumps({"event": "revocation", "type": licence_type, "province": province, "restore": restore}))
    return json_response(
        {"type": licence_type, "province": province, "licence_no": licence_no, "revoked": not restore, "reason": reason}
    )


async def get_stats(request: web.Request) -> web.Response:
    """GET /v1/stats: 核验证照落地实效 figures."""
    require_admin(request)
    return json_response(stats_document(await request.app[appkeys.SERVICE].store.stats()))


async def get_catalogue(request: web.Request) -> web.Response:
    """GET /v1/catalogue."""
    return json_response(catalogue_document(request.app[appkeys.SERVICE].catalogue))


async def get_trust_list(request: web.Request) -> web.Response:
    """GET /v1/trust-list: the keys in use, with their provinces and units."""
    return json_response(request.app[appkeys.SERVICE].trust.current.jwks())


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: trust list loaded and store reachable."""
    service = request.app[appkeys.SERVICE]
    if not service.trust.loaded:
        raise unavailable("trust list not loaded", request.app[appkeys.SETTINGS])
    try:
        await service.store.ping()
    except StoreUnavailableError as exc:
        raise unavailable(f"state store unreachable: {exc}", request.app[appkeys.SETTINGS]) from None
    return json_response(
        {"status": "ready", "keys": len(service.trust.current.keys), "store": type(service.store).__name__}
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
    return web.Response(text=request.app[appkeys.METRICS].render(), content_type="text/plain", charset="utf-8")


def build_store(settings: Settings) -> ScanStore:
    """Redis when a URL is given, else the embedded in-process store."""
    if settings.redis_url is None:
        log.warning("no Redis URL: using the embedded in-process store — one instance only / 未配置Redis，仅限单实例")
        return MemoryStore()
    # One multiplexed connection (verifier.redis_pipe): every call bounded by the store timeout, a burst
    # queued on it rather than refused, and a connection lost to a restart replaced at the next call.
    return RedisStore.from_url(
        settings.redis_url, op_timeout=settings.store_timeout, connect_timeout=settings.store_timeout / 2
    )


def create_app(
    settings: Settings,
    *,
    store: ScanStore | None = None,
    clock: Callable[[], float] | None = None,
    trust: TrustSource | None = None,
    catalogue: Catalogue | None = None,
    api_keys: ApiKeys | None = None,
) -> web.Application:
    """The verifier application. No I/O happens until it starts."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[problem_middleware])
    app[appkeys.SETTINGS] = settings
    app[appkeys.METRICS] = Metrics()
    app[appkeys.API_KEYS] = api_keys or ApiKeys()

    async def service_ctx(app: web.Application) -> AsyncIterator[None]:
        from verifier.keys import local_trust_list
        from verifier.paths import state_dir

        cat = catalogue or load_catalogue()
        source = trust
        if source is None:
            if settings.jwks is None:
                # The local issuer's keys: make sure they exist, then follow its jwks.json.
                initial = await asyncio.to_thread(local_trust_list, cat.units.values())
                source = TrustSource(state_dir() / "jwks.json", initial=initial)
            else:
                source = TrustSource(settings.jwks)
                await source.refresh()
        state = store or build_store(settings)
        app[appkeys.SERVICE] = ScanService(
            cat, source, state, policy=settings.policy, clock=clock or time.time, record_ttl=settings.record_ttl
        )
        refresher = asyncio.create_task(source.run_periodic(settings.trust_refresh_seconds))
        yield
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        await state.close()

    app.cleanup_ctx.append(service_ctx)
    app.router.add_post("/v1/scans", post_scan)
    app[DIRECT_ROUTES] = (("POST", "/v1/scans"),)  # served without routing each request by verifier serve
    app.router.add_get("/v1/scans/{scan_id}", get_scan)
    app.router.add_get("/v1/catalogue", get_catalogue)
    app.router.add_get("/v1/trust-list", get_trust_list)
    app.router.add_post("/v1/revocations", post_revocation)
    app.router.add_get("/v1/stats", get_stats)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    from verifier.pages import add_routes as add_pages  # imported here: the pages use this module's auth

    add_pages(app)
    return app
