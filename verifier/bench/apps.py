"""The ceilings of the scan path's irreducible parts, each run in a process of its own by
``verifier bench`` (``python -m verifier.bench.apps KIND …``):

- ``empty``: an aiohttp app whose POST handler reads the body and answers a small JSON — the HTTP
  cost of a scan with nothing behind it (driven by wrk like the service). ``/redis`` on the same app
  adds one ``GET`` to Redis, a cross-check of the HTTP and Redis ceilings taken together.
- ``verify``: signature verification in a tight loop, one process, through the library the service
  uses for the algorithm: ES256 and EdDSA through cryptography, SM2 through GmSSL (gmssl-pyx).
- ``redis``: one Redis round trip through redis-py asyncio, from as many coroutines as wrk has
  connections, in one process: the Redis cost alone, without an HTTP server in front of it.

Each prints one JSON line (``verify`` and ``redis``) or serves until it is terminated (``empty``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from redis.asyncio import Redis

from verifier.web.eventloop import new_event_loop

_ANSWER = b'{"ok":true}'
_KEY = "bench:ceiling"


def empty_app(redis_url: str | None) -> web.Application:
    """The empty handler (and, with a Redis URL, the handler doing one GET)."""
    app = web.Application()

    async def empty(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=_ANSWER, content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(body=_ANSWER, content_type="application/json")

    app.router.add_post("/empty", empty)
    app.router.add_get("/healthz", healthz)
    if redis_url is not None:
        client = Redis.from_url(redis_url, decode_responses=True)

        async def one_get(request: web.Request) -> web.Response:
            await request.read()
            await client.get(_KEY)
            return web.Response(body=_ANSWER, content_type="application/json")

        async def close(app: web.Application) -> None:
            await client.aclose()

        app.router.add_post("/redis", one_get)
        app.on_cleanup.append(close)
    return app


def verify_rate(seconds: float, alg: str = "ES256") -> dict[str, Any]:
    """Raw verifications of ``alg`` per second, the library called as directly as the service calls it:
    ``public_key.verify(der_sig, msg, ECDSA(SHA256()))`` for ES256, ``public_key.verify(sig, msg)`` for
    EdDSA, GmSSL's ``sm2_verify(point, msg, der_sig, id)`` for SM2 (whose r‖s the service turns into DER)."""
    message = b"eyJhbGciOiJFUzI1NiJ9." + b"x" * 340  # the size of a driving licence's signing input
    check = _verifier(alg, message)
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(100):
            check()
        count += 100
    return {"alg": alg, "verifications": count, "seconds": round(elapsed, 3), "per_second": round(count / elapsed, 1)}


def _verifier(alg: str, message: bytes) -> Callable[[], object]:
    """One verification of a genuine ``alg`` signature of ``message``, as a call without arguments."""
    if alg == "SM2":
        from gmssl_pyx.gmsslext import sm2_sign, sm2_verify

        from verifier.core.sm2 import SIGNER_ID, Sm2PrivateKey

        key = Sm2PrivateKey.generate()
        der = sm2_sign(key.secret, key.public.point, message, SIGNER_ID)
        return lambda: sm2_verify(key.public.point, message, der, SIGNER_ID)
    if alg == "EdDSA":
        ed_private = ed25519.Ed25519PrivateKey.generate()
        ed_public, ed_signature = ed_private.public_key(), ed_private.sign(message)
        return lambda: ed_public.verify(ed_signature, message)
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key()
    algorithm = ec.ECDSA(hashes.SHA256())
    der_signature = private.sign(message, algorithm)  # DER already; the service converts a token's r‖s to it
    return lambda: public.verify(der_signature, message, algorithm)


async def redis_rate(url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    """Redis GETs per second from ``concurrency`` coroutines sharing one client, as the service's do."""
    client = Redis.from_url(url, decode_responses=True)
    await client.set(_KEY, "x" * 16)
    count = 0
    loop = asyncio.get_running_loop()
    stop = loop.time() + seconds

    async def worker() -> None:
        nonlocal count
        while loop.time() < stop:
            await client.get(_KEY)
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await client.aclose()
    return {"round_trips": count, "seconds": round(elapsed, 3), "per_second": round(count / elapsed, 1)}


def main(argv: list[str] | None = None) -> int:
    """Run one ceiling."""
    parser = argparse.ArgumentParser(prog="python -m verifier.bench.apps")
    parser.add_argument("kind", choices=["empty", "verify", "redis"])
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--redis-url")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--alg", choices=["ES256", "EdDSA", "SM2"], default="ES256")
    args = parser.parse_args(argv)
    if args.kind == "empty":
        app = empty_app(args.redis_url)
        web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None, loop=new_event_loop())
    elif args.kind == "verify":
        print(json.dumps(verify_rate(args.seconds, args.alg)), flush=True)
    else:
        loop = new_event_loop()
        try:
            result = loop.run_until_complete(redis_rate(args.redis_url, args.concurrency, args.seconds))
        finally:
            loop.close()
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
