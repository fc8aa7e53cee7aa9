"""The edge of the HTTP shell: reading requests, authenticating keys, answering problems.

Every error that is not a decision leaves as RFC 9457 problem+json from :func:`problem_middleware`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from verifier.adapters.api_keys import ADMIN
from verifier.core.catalogue import Counter
from verifier.errors import StoreUnavailableError, StoreUnsafeError
from verifier.service.settings import Settings
from verifier.web import appkeys
from verifier.web.problems import ProblemError, problem

log = logging.getLogger("verifier")


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer, UTF-8 with Chinese as is."""
    try:
        body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # an integer beyond 64 bits
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return web.Response(status=status, body=body, content_type="application/json")


def unavailable(detail: str, settings: Settings) -> ProblemError:
    """503: the scan cannot be decided now; retry after a moment."""
    return ProblemError(503, detail, headers={"Retry-After": str(settings.retry_after_seconds)})


@web.middleware
async def problem_middleware(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    """Turn every failure into problem+json; never a traceback in a body."""
    try:
        response: web.StreamResponse = await handler(request)
    except ProblemError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem(
            exc.status,
            exc.reason or exc.text or "",
            headers={"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None,
        )
    except StoreUnavailableError as exc:
        request.app[appkeys.METRICS].store_errors += 1
        detail = str(exc) if isinstance(exc, StoreUnsafeError) else f"state store unavailable: {exc}"
        return unavailable(detail, request.app[appkeys.SETTINGS]).response()
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "internal error; the scan was not decided")
    return response


def principal(request: web.Request) -> str:
    """Who the Bearer key belongs to (a counter id or the administrator); 401 otherwise."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    who = request.app[appkeys.API_KEYS].principal(key.strip()) if scheme.lower() == "bearer" and key else None
    if who is None:
        raise ProblemError(
            401, "no or wrong API key (Authorization: Bearer <key>)", headers={"WWW-Authenticate": "Bearer"}
        )
    return who


def counter_of(request: web.Request) -> Counter:
    """The counter whose key signed this request; 401 for any other key."""
    who = principal(request)
    counter = request.app[appkeys.SERVICE].catalogue.counters.get(who)
    if counter is None:
        raise ProblemError(401, "this key is not a counter's key", headers={"WWW-Authenticate": "Bearer"})
    return counter


def require_admin(request: web.Request) -> None:
    """403 unless the administrator's key signed this request."""
    if principal(request) != ADMIN:
        raise ProblemError(403, "this needs the administrator's key")


async def json_body(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 415, 413 or 400 naming what is wrong."""
    if request.content_type != "application/json":
        raise ProblemError(415, f"Content-Type must be application/json, not {request.content_type!r}")
    if request.charset not in (None, "utf-8", "UTF-8"):
        raise ProblemError(415, f"charset must be utf-8, not {request.charset!r}")
    raw = await request.read()  # raises 413 past client_max_size
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:  # strict RFC 8259: what it refuses, the standard parser judges and names
        body = None
    try:
        body = json.loads(raw.decode("utf-8")) if body is None else body
    except UnicodeDecodeError:
        raise ProblemError(400, "body is not valid UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise ProblemError(400, f"body is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(body, dict):
        raise ProblemError(400, "body must be a JSON object")
    return body


def optional_field(body: dict[str, Any], name: str, max_len: int) -> str | None:
    """A string field that may be absent; 400 naming the field if it is not text of at most ``max_len``."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProblemError(400, f"field {name!r} must be a string", field=name)
    if len(value) > max_len:
        raise ProblemError(400, f"field {name!r} is longer than {max_len} characters", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # JSON may escape a lone surrogate (\ud800), which no UTF-8 text holds
        raise ProblemError(400, f"field {name!r} holds a lone surrogate escape, not text", field=name) from None
    return value


def required_field(body: dict[str, Any], name: str, max_len: int) -> str:
    """A non-empty string field; 400 naming the field otherwise."""
    value = optional_field(body, name, max_len)
    if not value:
        raise ProblemError(400, f"field {name!r} is required and must be a non-empty string", field=name)
    return value
