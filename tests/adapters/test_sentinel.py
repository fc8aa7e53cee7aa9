"""Redis behind Sentinel (``redis+sentinel://``): the service finds the primary through the sentinels and
follows a failover without a restart, answering 503 (never an acceptance without a claim) in between.
Real processes on free ports: one primary, two replicas, three sentinels."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import Client, ClientFactory
from tests.redis_sentinel import Deployment, replicating
from tests.scenes import Scene
from verifier.adapters.redis_pipe import RedisPipe
from verifier.issuer.mint import citizen_id
from verifier.service.settings import Settings

pytestmark = pytest.mark.redis

FIRST, OTHER = "cq-notary-zhixin-01", "cq-notary-zhixin-02"


async def until_ready(client: Client, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        async with client.get("/readyz") as response:
            if response.status == 200:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not ready within {limit} s")


async def test_the_pipe_finds_the_primary_through_the_sentinels(deployment: Deployment) -> None:
    """A redis+sentinel URL reaches the primary: a write goes through and the replicas get it."""
    await replicating(deployment)
    pipe = RedisPipe.from_url(deployment.url, timeout=2)
    try:
        assert await pipe.call("SET", "k", "v") == "OK"
        assert await pipe.call("WAIT", 2, 1000) == 2
    finally:
        await pipe.close()


@pytest.mark.parametrize(
    "url",
    ["redis+sentinel://127.0.0.1:1/", "redis+sentinel://127.0.0.1/cy", "redis+sentinel://127.0.0.1:1/cy/x/y"],
    ids=["no-service", "no-port", "too-deep"],
)
def test_a_sentinel_url_that_names_no_service_or_port_is_refused(url: str) -> None:
    """Malformed sentinel URLs are refused with a message saying the form."""
    with pytest.raises(ValueError, match=r"sentinel|SERVICE"):
        RedisPipe.from_url(url)


async def test_a_failover_is_followed_without_a_restart_and_no_code_is_accepted_twice(
    aiohttp_client: ClientFactory, scene: Scene, deployment: Deployment
) -> None:
    """100 codes accepted; the primary killed; scans answer 503 until the sentinels promote a replica, then
    are decided again by the same service; of the 100 codes, none is accepted again at another counter."""
    settings = Settings(
        redis_url=deployment.url, counter_rate=0, min_replica_acks=1, store_check_seconds=0.5, store_timeout=1.0
    )
    client = await aiohttp_client(scene.app(settings))
    await until_ready(client, 15)
    codes = [scene.driving_licence("SC", licence_no=citizen_id(1_100_000 + i)) for i in range(100)]
    for code in codes:
        status, body = await scene.post_scan(client, FIRST, code)
        assert (status, body.get("decision")) == (200, "accepted"), body
    old_port = await deployment.primary_port()
    assert old_port == deployment.primary.port

    deployment.primary.stop()  # SIGKILL
    killed = time.monotonic()
    timeline: dict[str, float] = {}
    statuses: dict[int, int] = {}
    fresh = 0
    while time.monotonic() - killed < 40:
        fresh += 1
        status, body = await scene.post_scan(
            client, FIRST, scene.driving_licence("SC", licence_no=citizen_id(1_200_000 + fresh))
        )
        statuses[status] = statuses.get(status, 0) + 1
        if "promoted" not in timeline and await deployment.primary_port() != old_port:
            timeline["promoted"] = time.monotonic() - killed
        if status == 503:
            timeline.setdefault("first_503", time.monotonic() - killed)
        else:
            assert status == 200, body
            if body["decision"] == "accepted":
                timeline["first_accepted_after"] = time.monotonic() - killed
                break
        await asyncio.sleep(0.1)
    assert "first_accepted_after" in timeline, (timeline, statuses)
    assert "first_503" in timeline

    again = [await scene.post_scan(client, OTHER, code) for code in codes]
    accepted_again = sum(1 for status, body in again if status == 200 and body["decision"] == "accepted")
    replayed = sum(
        1 for status, body in again if status == 200 and [r["code"] for r in body["reasons"]] == ["REPLAYED"]
    )
    print(json.dumps({"timeline_s": {k: round(v, 2) for k, v in timeline.items()}, "statuses": statuses,
                      "accepted_again": accepted_again, "replayed": replayed}))  # fmt: skip
    assert accepted_again == 0
    assert replayed == len(codes)


def test_the_compose_files_sentinel_profile_is_a_deployment_the_service_reads() -> None:
    """The optional Sentinel profile: three sentinels monitoring the compose Redis with a quorum of 2, and a
    verifier whose redis+sentinel URL names them and asks a replica to hold each claim."""
    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    sentinels = [name for name, service in services.items() if "--sentinel" in " ".join(service.get("command", []))]
    assert sentinels == ["sentinel-1", "sentinel-2", "sentinel-3"]
    config = services["sentinel-1"]["command"][2]
    assert "sentinel monitor cy redis 6379 2" in config
    serve = services["verifier-sentinel"]["command"]
    url = serve.split("--redis-url ")[1].split()[0]
    assert url == "redis+sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/cy"
    assert "--min-replica-acks 1" in serve
    assert all(
        services[name]["profiles"] == ["sentinel"] for name in [*sentinels, "verifier-sentinel", "redis-replica"]
    )
    RedisPipe.from_url(url)  # the service reads the URL (it connects only at the first call)
