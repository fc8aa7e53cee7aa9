"""The verifier's HTTP handlers: parse, authenticate, call one service method, render.

Status codes exist only here and in :mod:`verifier.web.edge`. Every error that is not a decision is
RFC 9457 problem+json.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import orjson
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from verifier.core.catalogue import PROVINCES, Catalogue, Counter
from verifier.core.catalogue_view import catalogue_document
from verifier.core.decision_view import timestamp
from verifier.core.stats import stats_document
from verifier.errors import StoreUnavailableError
from verifier.service.scan import ScanResult, scan_document
from verifier.web import appkeys
from verifier.web.edge import (
    counter_of,
    json_body,
    json_response,
    optional_field,
    require_admin,
    required_field,
    unavailable,
)
from verifier.web.logsink import scan_lines
from verifier.web.problems import ProblemError, finding_zh, findings_detail

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
        raise ProblemError(
            422,
            f"没有业务场景 {scenario!r}",
            f"unknown scenario {scenario!r}",
            field="scenario",
            allowed=list(counter.scenarios),
        )
    item = _scan_item(body, scenario, service.catalogue)
    result = await service.scan(counter, token, scenario, operator=operator, serial_no=serial_no, item=item)
    elapsed = time.perf_counter() - started
    request.app[appkeys.METRICS].observe(
        result.record.decision,
        result.cached,
        elapsed,
        licence_type=result.licence_type,
        issuing_province=result.issuing_province,
        counter_province=counter.province,
    )
    _log_scan(result, counter, elapsed, operator=operator, serial_no=serial_no, item=item)
    return json_response(scan_document(result))


def _scan_item(body: dict[str, Any], scenario: str, catalogue: Catalogue) -> str | None:
    """The optional ``item``: the number of a 川渝通办 item (川渝通办事项清单（第一批）) that the business is done
    for, one of the scenario's own items; 400 if it is not an integer, 422 naming the allowed ones otherwise."""
    value = body.get("item")
    if value is None:
        return None
    if type(value) is not int:  # not bool, not "22": the item's number as the list numbers it
        raise ProblemError(
            400,
            "字段 item 须为整数（川渝通办事项序号）",
            "field 'item' must be an integer, the item's number",
            field="item",
        )
    allowed = [it.seq for it in catalogue.scenario_items(scenario)]
    if value not in allowed:
        zh, en = (
            (f"事项 {value} 不属于业务 {scenario}", f"item {value} is not an item of business {scenario!r}")
            if allowed
            else (f"业务 {scenario} 无川渝通办事项，请勿填写 item", f"business {scenario!r} has no items: send none")
        )
        raise ProblemError(422, zh, en, field="item", allowed=allowed)
    return str(value)


def _json_line(data: dict[str, Any]) -> str:
    try:
        return orjson.dumps(data).decode("utf-8")
    except TypeError:  # a lone surrogate in a client's field
        return json.dumps(data, ensure_ascii=False)


def _log_scan(
    result: ScanResult,
    counter: Counter,
    elapsed: float,
    *,
    operator: str | None,
    serial_no: str | None,
    item: str | None,
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
                    "item": item,
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
        raise ProblemError(404, "本窗口没有这次核验", "no such scan for this counter")
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
        raise ProblemError(400, "字段 'restore' 须为布尔值", "field 'restore' must be a boolean", field="restore")
    if licence_type not in service.catalogue.licences:
        raise ProblemError(
            422,
            f"没有证照类型 {licence_type!r}",
            f"unknown licence type {licence_type!r}",
            field="type",
            allowed=sorted(service.catalogue.licences),
        )
    if province not in PROVINCES:
        raise ProblemError(
            422, f"没有省份 {province!r}", f"unknown province {province!r}", field="province", allowed=list(PROVINCES)
        )
    await service.revoke(licence_type, province, licence_no, reason=reason, restore=restore)
    log.info(json.dumps({"event": "revocation", "type": licence_type, "province": province, "restore": restore}))
    return json_response(
        {"type": licence_type, "province": province, "licence_no": licence_no, "revoked": not restore, "reason": reason}
    )


async def get_stats(request: web.Request) -> web.Response:
    """GET /v1/stats: 核验证照落地实效 figures."""
    require_admin(request)
    return json_response(stats_document(await request.app[appkeys.SERVICE].stats()))


async def get_catalogue(request: web.Request) -> web.Response:
    """GET /v1/catalogue."""
    return json_response(catalogue_document(request.app[appkeys.SERVICE].catalogue))


async def get_trust_list(request: web.Request) -> web.Response:
    """GET /v1/trust-list: the keys in use, with their provinces and units."""
    return json_response(request.app[appkeys.SERVICE].trust_list())


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: every check of :meth:`verifier.service.scan.ScanService.ready` passes; a 503 names each
    that fails (``checks``: check and detail)."""
    ready = await request.app[appkeys.SERVICE].ready()
    if ready.problems:
        zh, en = findings_detail(ready.problems)
        failing = unavailable(f"未就绪：{zh}", f"not ready: {en}", request.app[appkeys.SETTINGS])
        failing.extra["checks"] = [
            {"check": f.check, "detail": f"{finding_zh(f)} / {f.detail}"} for f in ready.problems
        ]
        raise failing
    return json_response({"status": "ready", "keys": ready.keys, "store": ready.store, "audit": await _audit(request)})


async def _audit(request: web.Request) -> dict[str, Any]:
    """The audit trail's side of readiness, told and never failing it: a trail that cannot be written now
    holds its events in the store, and scans go on. ``backlog``: events not yet written (None: the store
    cannot say now); ``writer``: this instance's, or ``separate``; ``failing_since``: when writing last
    started failing."""
    writer = request.app[appkeys.WRITER]
    try:
        backlog: int | None = await request.app[appkeys.AUDIT_FEED].backlog()
    except StoreUnavailableError:
        backlog = None
    failing = writer.state.failing_since if writer is not None else None
    return {
        "backlog": backlog,
        "writer": "separate" if writer is None else "this instance",
        "failing_since": timestamp(failing) if failing is not None else None,
    }


def add_routes(app: web.Application) -> None:
    """The API's routes."""
    app.router.add_post("/v1/scans", post_scan)
    app.router.add_get("/v1/scans/{scan_id}", get_scan)
    app.router.add_get("/v1/catalogue", get_catalogue)
    app.router.add_get("/v1/trust-list", get_trust_list)
    app.router.add_post("/v1/revocations", post_revocation)
    app.router.add_get("/v1/stats", get_stats)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", make_aiohttp_handler(app[appkeys.METRICS].exposed))  # Prometheus text format
