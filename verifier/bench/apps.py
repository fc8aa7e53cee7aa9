"""The ceilings of the scan path's irreducible parts, each run in a process of its own by
``verifier bench`` (``python -m verifier.bench.apps KIND …``):

- ``empty``: an aiohttp app whose POST handler reads the body and answers a small JSON — the HTTP
  cost of a scan with nothing behind it (driven by wrk like the service). ``/redis`` on the same app
  adds one ``GET`` to Redis, a cross-check of the HTTP and Redis ceilings taken together.
- ``verify``: ES256 signature verification through cryptography in a tight loop, one process.
- ``redis``: one Redis round trip through redis-py asyncio, from as many coroutines as wrk has
  connections, in one process: the Redis cost alone, without an HTTP server in front of it.

Each prints one JSON line (``verify`` and ``redis``) or serves until it is terminated (``empty``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
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


def verify_rate(seconds: float) -> dict[str, Any]:
    """Raw ES256 verifications per second: ``public_key.verify(der_sig, msg, ECDSA(SHA256()))``."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key()
    message = b"eyJhbGciOiJFUzI1NiJ9." + b"x" * 340  # the size of a driving licence's signing input
    algorithm = ec.ECDSA(hashes.SHA256())
    der = private.sign(message, algorithm)  # DER already; the service converts a token's r‖s to it
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(100):
            public.verify(der, message, algorithm)
        count += 100
    return {"verifications": count, "seconds": round(elapsed, 3), "per_second": round(count / elapsed, 1)}


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
    args = parser.parse_args(argv)
    if args.kind == "empty":
        app = empty_app(args.redis_url)
        web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None, loop=new_event_loop())
    elif args.kind == "verify":
        print(json.dumps(verify_rate(args.seconds)), flush=True)
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
