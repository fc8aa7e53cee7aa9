"""What the chaos cases share: shown codes, a ledger that counts what a case tried and what came back,
service instances built through the factory (with an injected clock when asked), and the Redis
processes a case starts, fills, freezes, kills and promotes.

A ledger counts every scan posted (tries), every 503, and every acceptance by scan id: the same code
accepted under two scan ids is accepted twice (a cached re-scan at the same counter answers the one
scan id again, and is not), and an acceptance of a licence after its revocation was answered 200 is a
revoked acceptance. Each case ends with :meth:`Ledger.assert_safe` unless it counts a documented loss.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from tests.forge import Kit
from tests.helpers import Client, ClientFactory
from tests.redis_server import RedisServer
from tests.scenes import Scene
from verifier.adapters.trust_source import JwksTrustSource
from verifier.issuer.mint import citizen_id
from verifier.service.settings import Settings
from verifier.web.app import create_app
from verifier.web.metrics import metric_total

SCENARIO = "notary-driving-licence"
# Every counter that handles the scenario: a code accepted at one is shown at another.
COUNTERS = (
    "cq-notary-zhixin-01",
    "cq-notary-zhixin-02",
    "cq-notary-yubei-01",
    "sc-notary-shudu-01",
    "sc-notary-shudu-02",
    "sc-notary-fucheng-01",
)
UNSAFE = "无法保证一次一验 / cannot guarantee one-time use"
CHECK_SECONDS = 0.2  # the instances of a case check their store this often
_APP = "jiaoguan-12123"


@dataclass(frozen=True, slots=True)
class Code:
    """One code a holder shows: the token, its licence number, its iat and exp (Unix s)."""

    token: str
    number: str
    iat: int
    exp: int


def mint(scene: Scene, label: str, *, now: float | None = None, ttl: int = 300) -> Code:
    """A Sichuan driving licence shown through 交管12123, as the issuer signs it at ``now``."""
    number = citizen_id(int(label))  # a driving licence's number is a citizen ID: the label picks one
    minted = scene.apps[_APP].present("driving-licence", "SC", licence_no=number, now=now, ttl=ttl)
    return Code(minted.token, number, int(minted.claims["iat"]), minted.expires_at)


def mint_many(scene: Scene, prefix: str, count: int, *, now: float | None = None, ttl: int = 300) -> list[Code]:
    """``count`` codes of distinct licences numbered ``prefix`` and a serial."""
    return [mint(scene, f"{prefix}{i:04d}", now=now, ttl=ttl) for i in range(count)]


def forge(scene: Scene, label: str, *, iat: int, exp: int) -> Code:
    """A code signed with the issuer's real key but with any ``iat`` and ``exp`` (see :mod:`tests.forge`)."""
    kit = Kit(scene.catalogue, scene.keyring, scene.keyring.trust_list(), int(time.time()))
    number = citizen_id(int(label))
    claims = kit.claims(iat=iat, exp=exp, no=number)
    return Code(kit.forge(claims), number, iat, exp)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a scan was answered: the status and the body."""

    status: int
    body: dict[str, Any]

    @property
    def decision(self) -> str | None:
        """``accepted`` or ``rejected``; None when the scan was not decided."""
        return self.body.get("decision") if self.status == 200 else None

    @property
    def reasons(self) -> list[str]:
        """The reason codes of a decision."""
        return [r["code"] for r in self.body.get("reasons", [])] if self.status == 200 else []

    @property
    def refused(self) -> bool:
        """A 503 problem that says one-time use cannot be guaranteed."""
        return self.status == 503 and str(self.body.get("detail", "")).startswith(UNSAFE)


@dataclass
class Ledger:
    """The figures of one case, counted as it goes."""

    case: str
    tries: int = 0
    unavailable: int = 0
    revoked_accepted: int = 0
    seconds: float = 0.0
    result: str = "not run"
    note: str = ""
    expected_loss: bool = False  # the case counts a loss it documents instead of asserting none
    problems: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # 503 bodies kept, by label
    _accepted: dict[str, set[str]] = field(default_factory=dict)
    _revoked: set[str] = field(default_factory=set)

    @property
    def accepted_twice(self) -> int:
        """Acceptances beyond the first of each code."""
        return sum(len(ids) - 1 for ids in self._accepted.values())

    @property
    def acceptances(self) -> int:
        """Distinct acceptances, of every code."""
        return sum(len(ids) for ids in self._accepted.values())

    def accepted(self, code: Code) -> set[str]:
        """The scan ids under which ``code`` was accepted."""
        return set(self._accepted.get(code.token, ()))

    async def scan(self, client: Client, scene: Scene, counter: str, code: Code) -> Answer:
        """Post ``code`` at ``counter`` and count the answer."""
        self.tries += 1
        body = {"token": code.token, "scenario": SCENARIO}
        async with client.post("/v1/scans", json=body, headers=scene.auth(counter)) as response:
            answer = Answer(response.status, await response.json(content_type=None))
        if answer.status == 503:
            self.unavailable += 1
        if answer.decision == "accepted":
            self._accepted.setdefault(code.token, set()).add(answer.body["scan_id"])
            if code.number in self._revoked:
                self.revoked_accepted += 1
        return answer

    async def scans(self, client: Client, scene: Scene, counter: str, codes: list[Code]) -> list[Answer]:
        """Post every code at ``counter`` at once."""
        return list(await asyncio.gather(*(self.scan(client, scene, counter, c) for c in codes)))

    async def revoke(self, client: Client, scene: Scene, code: Code) -> int:
        """Revoke the licence of ``code``; the status (a licence counts as revoked once answered 200)."""
        body = {"type": "driving-licence", "province": "SC", "licence_no": code.number, "reason": "吊销"}
        async with client.post("/v1/revocations", json=body, headers=scene.admin()) as response:
            await response.read()
            if response.status == 200:
                self._revoked.add(code.number)
            return response.status

    async def readyz(self, client: Client) -> tuple[int, dict[str, Any]]:
        """GET /readyz; a 503 body is kept under the name of each check it names."""
        async with client.get("/readyz") as response:
            body: dict[str, Any] = await response.json(content_type=None)
        if response.status == 503:
            self.keep("readyz " + ", ".join(sorted(checks(body))), body)
        return response.status, body

    def keep(self, label: str, body: dict[str, Any]) -> None:
        """Keep a body for the summary under ``label``, unless one with the same detail is kept."""
        if all(kept["detail"] != body["detail"] for _, kept in self.problems):
            self.problems.append((label, body))

    def assert_safe(self) -> None:
        """Nothing accepted twice, no revoked licence accepted."""
        figures = f"accepted twice: {self.accepted_twice}, revoked accepted: {self.revoked_accepted}"
        assert (self.accepted_twice, self.revoked_accepted) == (0, 0), figures


def checks(body: dict[str, Any]) -> set[str]:
    """The checks a /readyz 503 names."""
    return {c["check"] for c in body.get("checks", [])}


def settings(url: str, **options: Any) -> Settings:
    """Settings of an instance on ``url`` that checks its store every :data:`CHECK_SECONDS`."""
    return Settings(redis_url=url, **{"store_check_seconds": CHECK_SECONDS, "counter_rate": 0, **options})


async def instance(
    aiohttp_client: ClientFactory, scene: Scene, config: Settings, *, clock: Callable[[], float] | None = None
) -> Client:
    """A service instance through :func:`verifier.web.app.create_app`, trusting the scene's keys, on its
    own clock when ``clock`` is given; every counter's key is issued before it serves."""
    for counter in COUNTERS:
        scene.auth(counter)
    scene.admin()
    app = create_app(
        config,
        clock=clock,
        trust=JwksTrustSource.static(scene.keyring.trust_list()),
        catalogue=scene.catalogue,
        api_keys=scene.api_keys,
    )
    return await aiohttp_client(app)


async def eventually(probe: Callable[[], Awaitable[bool]], what: str, limit: float = 10.0) -> float:
    """Seconds until ``probe`` holds (polled every 50 ms); fails past ``limit``."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if await probe():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {limit} s")


async def until_ready(ledger: Ledger, client: Client, limit: float = 10.0) -> float:
    """Seconds until /readyz answers 200."""

    async def ready() -> bool:
        return (await ledger.readyz(client))[0] == 200

    return await eventually(ready, "ready", limit)


async def until_found(client: Client, limit: float = 10.0) -> float:
    """Seconds until the instance's own periodic check has found the store unsafe (its metrics say so;
    reading them checks nothing, unlike /readyz)."""

    async def unsafe() -> bool:
        async with client.get("/metrics") as response:
            return metric_total(await response.text(), "verifier_store_safe") == 0

    return await eventually(unsafe, "the store found unsafe", limit)


async def at(moment: float) -> None:
    """Sleep until the wall clock reads ``moment`` (Unix s)."""
    await asyncio.sleep(max(0.0, moment - time.time()))


async def next_second(after: float = 0.05) -> float:
    """Sleep until ``after`` seconds past the next whole second; that moment."""
    moment = math.floor(time.time()) + 1 + after
    await at(moment)
    return moment


class Servers:
    """The redis-servers of one case, each in a folder of its own; all killed at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[RedisServer] = []
        self.admins: list[RedisAdmin] = []

    def make(self, *extra_args: str) -> RedisServer:
        """A server not yet started (by default with its append-only file, everysec)."""
        folder = self.directory / f"redis-{len(self.started)}"
        folder.mkdir()
        server = RedisServer(folder, extra_args=extra_args)
        self.started.append(server)
        return server

    def start(self, *extra_args: str) -> RedisServer:
        """A server, started."""
        server = self.make(*extra_args)
        server.start()
        return server

    def replica_of(self, primary: RedisServer, *extra_args: str) -> RedisServer:
        """A replica of ``primary``, started (it syncs in the background)."""
        return self.start("--replicaof", "127.0.0.1", str(primary.port), *extra_args)

    def admin(self, server: RedisServer) -> RedisAdmin:
        """A plain client of ``server``, closed at the end of the case."""
        admin = RedisAdmin(server)
        self.admins.append(admin)
        return admin

    async def close(self) -> None:
        """Close the clients and kill every server still running."""
        for admin in self.admins:
            await admin.close()
        for server in self.started:
            server.stop()

    def __iter__(self) -> Iterator[RedisServer]:
        return iter(self.started)


class RedisAdmin:
    """A plain client of one server for the case's own moves: config, memory, replication, keys."""

    def __init__(self, server: RedisServer) -> None:
        self.client: Redis = Redis.from_url(server.url, decode_responses=True)

    async def info(self, section: str) -> dict[str, Any]:
        """One INFO section."""
        reply: dict[str, Any] = await self.client.info(section)
        return reply

    async def claims(self) -> int:
        """One-time-use claims held."""
        return len([key async for key in self.client.scan_iter("cy:*:j:*", count=1000)])

    async def fill(self, total_bytes: int, *, prefix: str = "other", value_bytes: int = 1024, ttl: int = 3600) -> int:
        """Write ``total_bytes`` of other keys (each with a TTL, so a volatile policy may evict them too);
        the number written."""
        value = "x" * value_bytes
        count = total_bytes // value_bytes
        for start in range(0, count, 500):
            async with self.client.pipeline(transaction=False) as pipe:
                for i in range(start, min(count, start + 500)):
                    pipe.set(f"{prefix}:{i}", value, ex=ttl)
                await pipe.execute()
        return count

    async def wait_replicated(self, replicas: int = 1, limit: float = 10.0) -> float:
        """Seconds until ``replicas`` replicas are connected, online and have acknowledged every write."""

        async def caught_up() -> bool:
            info = await self.info("replication")
            offset = info.get("master_repl_offset")
            online = [
                info[f"slave{i}"]
                for i in range(int(info.get("connected_slaves", 0)))
                if info[f"slave{i}"].get("state") == "online"
            ]
            return len(online) >= replicas and all(r.get("offset") == offset for r in online)

        return await eventually(caught_up, f"{replicas} replica(s) caught up", limit)

    async def promote(self) -> None:
        """REPLICAOF NO ONE: the replica becomes a primary."""
        await self.client.replicaof("NO", "ONE")

    async def close(self) -> None:
        """Close the client."""
        await self.client.aclose()
