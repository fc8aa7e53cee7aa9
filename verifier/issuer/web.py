"""The mock issuer over HTTP: its public keys, and fresh presentation tokens for the simulated apps.

    GET  /.well-known/jwks.json   the public keys of every issuing unit (verifier.core.trust format);
                                  ?province=SC (or CQ): that province's units' keys only, as each
                                  province's licence platform publishes its own
    POST /v1/presentations        {"type", "province", "channel", "licence_no"?, "holder"?, "ttl"?,
                                   "unit"?, "attributes"?} -> {"token", "claims", "expires_at", …}

Errors are RFC 9457 ``application/problem+json`` from one middleware: 400 for a body that is not a
JSON object with the right fields, 422 (with ``allowed``) for what the catalogue does not allow.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from verifier.core.catalogue import PROVINCES, Catalogue
from verifier.errors import MintRefusedError, VerifierError
from verifier.issuer.keys import KeyRing, KeyStore
from verifier.issuer.mint import mint
from verifier.web.problems import ProblemError, halves, http_problem, problem

CATALOGUE = web.AppKey("issuer_catalogue", Catalogue)
KEYS = web.AppKey("issuer_keys", KeyStore)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("issuer_clock")

MAX_BODY = 16 * 1024
# Request member -> (keyword of mint, JSON type, required)
_FIELDS: dict[str, tuple[str, type, bool]] = {
    "type": ("licence_type", str, True),
    "province": ("province", str, True),
    "channel": ("channel", str, True),
    "licence_no": ("licence_no", str, False),
    "holder": ("holder", str, False),
    "ttl": ("ttl", int, False),
    "unit": ("unit", str, False),
    "attributes": ("attributes", dict, False),
}


def create_issuer_app(
    catalogue: Catalogue | None = None, *, keys: KeyStore | None = None, clock: Callable[[], float] | None = None
) -> web.Application:
    """The issuer app; reads ``data/`` and the state folder only when they are not given."""
    if catalogue is None:
        from verifier.adapters.catalogue_files import load_catalogue

        catalogue = load_catalogue()
    app = web.Application(middlewares=[_problems], client_max_size=MAX_BODY)
    app[CATALOGUE] = catalogue
    app[KEYS] = keys or KeyStore(catalogue.units.values())
    app[CLOCK] = clock or time.time
    app.router.add_get("/.well-known/jwks.json", _jwks)
    app.router.add_post("/v1/presentations", _presentations)
    return app


async def _jwks(request: web.Request) -> web.Response:
    province = request.query.get("province")
    if province is not None and province not in PROVINCES:
        raise ProblemError(400, "省份须为 SC 或 CQ", "province must be SC or CQ", field="province")
    ring = request.app[KEYS].keyring(request.app[CLOCK]())
    # no-cache: a cache between issuer and verifier must not hold a withdrawn key past the verifier's refresh
    return web.json_response(province_jwks(ring, province), headers={"Cache-Control": "no-cache"})


def province_jwks(ring: KeyRing, province: str | None) -> dict[str, Any]:
    """The public keys of ``province``'s units (None: of every unit) as a JWKS."""
    return {"keys": [k for k in ring.jwks()["keys"] if province in (None, k["province"])]}


async def _presentations(request: web.Request) -> web.Response:
    options = _options(await _json_body(request))
    now = request.app[CLOCK]()
    try:
        minted = mint(request.app[CATALOGUE], request.app[KEYS].keyring(now), now=now, **options)
    except MintRefusedError as exc:
        zh, en = halves(str(exc), "签发方拒绝签发")  # the issuer's refusals say both: "中文 / English"
        raise ProblemError(422, zh, en, field=exc.field, allowed=list(exc.allowed)) from None
    answer = {"token": minted.token, "claims": minted.claims, "expires_at": minted.expires_at}
    return web.json_response({**answer, "kid": minted.kid, "size": minted.size}, dumps=_dumps)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise _malformed("body", "请求体不是有效的 JSON", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _malformed("body", "请求体须为 JSON 对象", "the body must be a JSON object")
    return body


def _options(body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        fields = ", ".join(_FIELDS)
        raise _malformed(
            unknown[0], f"没有字段 {unknown[0]!r}，可用：{fields}", f"unknown field {unknown[0]!r}; fields are {fields}"
        )
    options: dict[str, Any] = {}
    for name, (keyword, kind, required) in _FIELDS.items():
        if name not in body:
            if required:
                raise _malformed(name, f"缺少字段 {name!r}", f"field {name!r} is required")
            continue
        value = body[name]
        if type(value) is not kind or (isinstance(value, dict) and not all(isinstance(v, str) for v in value.values())):
            zh, en = _JSON_NAMES[kind]
            raise _malformed(name, f"字段 {name!r} 须为{zh}", f"field {name!r} must be {en}")
        options[keyword] = value
    return options


_JSON_NAMES = {
    str: ("字符串", "a string"),
    int: ("整数", "an integer"),
    dict: ("字符串组成的对象", "an object of strings"),
}


def _malformed(field: str, zh: str, en: str) -> ProblemError:
    return ProblemError(400, zh, en, field=field)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProblemError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return http_problem(exc)
    except VerifierError as exc:
        return problem(500, f"签发方内部错误 / [{exc.code}] {exc}")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
