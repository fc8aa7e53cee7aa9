"""The edge of the HTTP shell: reading requests, authenticating keys, answering problems.

Every error that is not a decision leaves as RFC 9457 problem+json from :func:`problem_middleware`, and
every answer with the headers of :func:`verifier.web.server.hardened`. Every refused key is counted and
logged at a bounded rate (:mod:`verifier.web.signins`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import hdrs, web

from verifier.adapters.api_keys import ADMIN, app_channel
from verifier.core.catalogue import Counter
from verifier.errors import RateLimitedError, StoreUnavailableError, StoreUnsafeError, TrustNotLoadedError
from verifier.service.settings import Settings
from verifier.web import appkeys
from verifier.web.problems import ProblemError, halves, http_problem, problem
from verifier.web.server import hardened

log = logging.getLogger("verifier")


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer, UTF-8 with Chinese as is."""
    try:
        body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # an integer beyond 64 bits
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return web.Response(status=status, body=body, content_type="application/json")


def unavailable(zh: str, en: str, settings: Settings) -> ProblemError:
    """503: the scan cannot be decided now; retry after a moment."""
    return ProblemError(503, zh, en, headers={"Retry-After": str(settings.retry_after_seconds)})


@web.middleware
async def problem_middleware(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    """Turn every failure into problem+json, never a traceback in a body; harden every answer."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = http_problem(exc)
    except Exception as exc:  # each kind the service raises is answered; the rest is logged, and a 500
        response = _problem_for(request, exc)
    return hardened(response)


def _problem_for(request: web.Request, exc: Exception) -> web.Response:
    """The answer to a failure of a handler: its own problem, or what the service's errors mean over HTTP."""
    if isinstance(exc, ProblemError):
        return exc.response()
    metrics = request.app[appkeys.METRICS]
    settings = request.app[appkeys.SETTINGS]
    if isinstance(exc, RateLimitedError):
        metrics.rate_limited.labels(exc.counter).inc()
        wait = max(1, math.ceil(exc.retry_after))
        detail = f"本窗口核验过于频繁，请 {wait} 秒后重试 / this counter is over its scan rate; retry in {wait} s"
        return problem(429, detail, headers={hdrs.RETRY_AFTER: str(wait)})
    if isinstance(exc, TrustNotLoadedError | StoreUnsafeError):  # each says both: "中文 / English: …"
        if isinstance(exc, TrustNotLoadedError):
            metrics.trust_not_loaded.inc()
        else:
            metrics.store_errors.inc()
        return unavailable(*halves(str(exc), "暂时无法核验"), settings).response()
    if isinstance(exc, StoreUnavailableError):
        metrics.store_errors.inc()
        return unavailable("状态存储无法访问，未作判断", f"state store unavailable: {exc}", settings).response()
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return problem(500, "服务内部错误，未作判断 / internal error; the scan was not decided")


def _refuse(request: web.Request, reason: str, status: int, zh: str, en: str) -> ProblemError:
    """A refused key, counted and logged (without the key), as the problem to raise."""
    request.app[appkeys.SIGN_INS].refused(reason, request.remote)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return ProblemError(status, zh, en, headers=headers)


def principal(request: web.Request) -> str:
    """Who the Bearer key belongs to (a counter id, the administrator or an app); 401 otherwise, and 400 for two
    Authorization headers (which one a proxy or a framework reads differs: neither is taken)."""
    header = request.headers.getall(hdrs.AUTHORIZATION, ())
    if len(header) > 1:
        raise _refuse(
            request,
            "duplicate",
            400,
            "只能有一个 Authorization 请求头",
            "exactly one Authorization header, not several",
        )
    scheme, _, key = header[0].partition(" ") if header else ("", "", "")
    key = key.strip() if scheme.lower() == "bearer" else ""
    who = request.app[appkeys.API_KEYS].principal(key) if key else None
    if who is None:
        raise _refuse(
            request,
            "unknown" if key else "missing",
            401,
            "缺少密钥或密钥错误（Authorization: Bearer <密钥>）",
            "no or wrong API key (Authorization: Bearer <key>)",
        )
    return who


def counter_of(request: web.Request) -> Counter:
    """The counter whose key signed this request; 401 for any other key."""
    who = principal(request)
    counter = request.app[appkeys.SERVICE].catalogue.counters.get(who)
    if counter is None:
        raise _refuse(request, "not_counter", 401, "这不是窗口的密钥", "this key is not a counter's key")
    return counter


def require_admin(request: web.Request) -> None:
    """403 unless the administrator's key signed this request."""
    if principal(request) != ADMIN:
        raise _refuse(request, "not_admin", 403, "需要管理员密钥", "this needs the administrator's key")


def channel_of(request: web.Request) -> str:
    """The channel of the app (亮证渠道) whose key signed this request; 403 for a counter's or the
    administrator's key, and for the key of an app the catalogue no longer lists."""
    channel = app_channel(principal(request))
    if channel is None or channel not in request.app[appkeys.SERVICE].catalogue.channels:
        raise _refuse(request, "not_app", 403, "需要亮证 APP 的密钥", "this needs an app's key")
    return channel


async def json_body(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 415, 413 or 400 naming what is wrong."""
    if request.content_type != "application/json":
        raise ProblemError(
            415,
            f"Content-Type 须为 application/json，而不是 {request.content_type!r}",
            f"Content-Type must be application/json, not {request.content_type!r}",
        )
    if request.charset not in (None, "utf-8", "UTF-8"):
        raise ProblemError(
            415, f"charset 须为 utf-8，而不是 {request.charset!r}", f"charset must be utf-8, not {request.charset!r}"
        )
    raw = await request.read()  # raises 413 past client_max_size
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:  # strict RFC 8259: what it refuses, the standard parser judges and names
        body = None
    try:
        body = json.loads(raw.decode("utf-8")) if body is None else body
    except UnicodeDecodeError:
        raise ProblemError(400, "请求体不是有效的 UTF-8", "body is not valid UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise ProblemError(400, "请求体不是有效的 JSON", f"body is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(body, dict):
        raise ProblemError(400, "请求体须为 JSON 对象", "body must be a JSON object")
    return body


def optional_field(body: dict[str, Any], name: str, max_len: int) -> str | None:
    """A string field that may be absent; 400 naming the field if it is not text of at most ``max_len``."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProblemError(400, f"字段 {name!r} 须为字符串", f"field {name!r} must be a string", field=name)
    if len(value) > max_len:
        raise ProblemError(
            400,
            f"字段 {name!r} 超过 {max_len} 个字符",
            f"field {name!r} is longer than {max_len} characters",
            field=name,
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # JSON may escape a lone surrogate (\ud800), which no UTF-8 text holds
        raise ProblemError(
            400,
            f"字段 {name!r} 含有孤立的代理项转义，不是文本",
            f"field {name!r} holds a lone surrogate escape, not text",
            field=name,
        ) from None
    return value


def required_field(body: dict[str, Any], name: str, max_len: int) -> str:
    """A non-empty string field; 400 naming the field otherwise."""
    value = optional_field(body, name, max_len)
    if not value:
        raise ProblemError(
            400,
            f"缺少字段 {name!r}，须为非空字符串",
            f"field {name!r} is required and must be a non-empty string",
            field=name,
        )
    return value
