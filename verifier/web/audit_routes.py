"""The audit trail read over HTTP: the effectiveness report (``GET /v1/reports``, the administrator's key; JSON,
or CSV with ``Accept: text/csv``) and a holder's usage log (``GET /v1/uses``, an app's key). A trail that cannot
be read now is a 503, never an empty answer.

The holder's ``sub`` comes in the query (contract.md) and goes no further than its keyed pseudonym: nothing
here logs it, and the service writes no access log (:func:`verifier.web.server.run`)."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from aiohttp import hdrs, web

from verifier.adapters.audit.trail import CHINA, TrailUnavailable, Use
from verifier.core.catalogue import Catalogue
from verifier.core.reasons import MESSAGES
from verifier.core.report import GROUPS, as_csv, parse_by, parse_days
from verifier.errors import ReportRequestError
from verifier.web import appkeys
from verifier.web.edge import channel_of, json_response, require_admin, unavailable
from verifier.web.problems import ProblemError

log = logging.getLogger("verifier")
_SUB_MAX = 64  # a token's sub is 8 characters; anything far longer is not one


def _one(request: web.Request, name: str) -> str | None:
    """The query parameter ``name`` if given, once at most (400 naming it when given twice)."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise ProblemError(400, f"参数 {name} 只能给一次", f"parameter '{name}' is given more than once", field=name)
    return values[0] if values else None


def _unreadable(request: web.Request, exc: BaseException) -> ProblemError:
    """503: the trail's database is out of reach or refuses now. Logged by kind only: a driver's message may
    quote the query's parameters."""
    log.warning("审计记录库暂时无法读取 / the audit trail cannot be read now: %s", type(exc).__name__)
    settings = request.app[appkeys.SETTINGS]
    return unavailable(
        "审计记录库暂时无法读取，请稍后重试",
        "the audit trail cannot be read now; retry shortly",
        settings,
    )


def _today(request: web.Request) -> date:
    """Today in China, by the service's clock."""
    return datetime.fromtimestamp(request.app[appkeys.SERVICE].clock(), CHINA).date()


def wants_csv(accept: str) -> bool:
    """Whether an ``Accept`` header prefers ``text/csv`` to ``application/json`` (by its q values)."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[media.lower()] = max(weight, weights.get(media.lower(), 0.0))
    return weights.get("text/csv", 0.0) > weights.get("application/json", 0.0)


async def get_reports(request: web.Request) -> web.Response:
    """GET /v1/reports: answers from ``from`` to ``to`` (China's days, both included; the last 30 days by
    default) grouped by ``by``, with the period's total."""
    require_admin(request)
    try:
        by = parse_by(_one(request, "by"))
        first, last = parse_days(_one(request, "from"), _one(request, "to"), _today(request))
    except ReportRequestError as exc:
        if exc.field == "by":
            raise ProblemError(400, exc.zh, exc.en, field=exc.field, allowed=list(GROUPS)) from None
        raise ProblemError(400, exc.zh, exc.en, field=exc.field) from None
    trail = request.app[appkeys.TRAIL]
    try:
        rows, total = await trail.report(first, last, by)
    except TrailUnavailable as exc:
        raise _unreadable(request, exc) from None
    if wants_csv(request.headers.get(hdrs.ACCEPT, "")):
        return web.Response(text=as_csv(rows, by), content_type="text/csv", charset="utf-8")
    return json_response(
        {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "by": list(by),
            "rows": [row.as_dict() for row in rows],
            "total": total.as_dict(),
        }
    )


async def get_uses(request: web.Request) -> web.Response:
    """GET /v1/uses?sub=S: where and for what the holder's licences shown through this app were checked, newest
    first; nothing about the clerk."""
    channel = channel_of(request)
    sub = _one(request, "sub")
    if not sub or len(sub) > _SUB_MAX:
        raise ProblemError(
            400,
            f"缺少参数 sub（持证人标识，至多 {_SUB_MAX} 个字符）",
            f"parameter 'sub' (the holder's subject, at most {_SUB_MAX} characters) is required",
            field="sub",
        )
    service = request.app[appkeys.SERVICE]
    try:
        uses = await request.app[appkeys.TRAIL].uses(service.identities.holder(sub), channel, service.catalogue)
    except TrailUnavailable as exc:
        raise _unreadable(request, exc) from None
    return json_response({"channel": channel, "uses": [use_document(use, service.catalogue) for use in uses]})


def use_document(use: Use, catalogue: Catalogue) -> dict[str, Any]:
    """One use as the holder's app shows it: when, where, for which business, which licence, the decision."""
    scenario = catalogue.scenarios.get(use.scenario)
    item = catalogue.items.get(use.item) if use.item is not None else None
    licence = catalogue.licences.get(use.type)
    return {
        "at": use.at,
        "institution": use.institution,
        "scenario": {"code": use.scenario, "name_zh": scenario.name_zh if scenario else None},
        "item": None if use.item is None else {"seq": use.item, "name_zh": item.name_zh if item else None},
        "licence": {"type": use.type, "name_zh": licence.name_zh if licence else None},
        "decision": use.decision,
        "reasons": [_reason(code) for code in use.reasons],
    }


def _reason(code: str) -> dict[str, str]:
    zh, en = MESSAGES.get(code, ("未知原因", "unknown reason"))
    return {"code": code, "message_zh": zh, "message_en": en}


def add_routes(app: web.Application) -> None:
    """The audit trail's routes."""
    app.router.add_get("/v1/reports", get_reports)
    app.router.add_get("/v1/uses", get_uses)
