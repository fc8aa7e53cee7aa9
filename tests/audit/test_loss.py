"""Nothing lost between the decision and the trail, on real processes: a redis-server, a PostgreSQL server,
``verifier serve`` (writing the trail itself) and two ``verifier audit writer`` processes beside it. 200 scans
over HTTP; in the middle PostgreSQL is stopped for 20 s, and one standalone writer is killed (SIGKILL) while it
holds events it took and could not write. Once PostgreSQL is back the survivors take those over
(``--audit-claim-idle 2``): exactly 200 rows, one per scan, none twice — and every scan was answered, 200,
while PostgreSQL was down."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from redis.asyncio import Redis

from tests.audit.streams import backlog, pending, until
from tests.helpers import wait_ready
from tests.postgres_server import PostgresServer
from tests.redis_server import RedisServer, free_port
from verifier.bench.mint import mint_bodies, publish_keys

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

SCANS = 200
BEFORE, DURING = 80, 60  # scans posted before the outage and during it; the rest after it
OUTAGE = 20.0  # seconds PostgreSQL is down
COUNTER = "cq-notary-zhixin-01"
SCENARIO = "notary-driving-licence"


@dataclass
class Site:
    """The processes of one deployment, each stopped by its own id at the end."""

    root: Path
    redis: RedisServer
    postgres: PostgresServer
    stack: ExitStack
    env: dict[str, str] = field(default_factory=dict)
    key: str = ""  # the counter's API key

    def start(self, name: str, *argv: str) -> subprocess.Popen[str]:
        """``python -m verifier *argv``, its output in ``<name>.log``; terminated (then killed) at the end."""
        with (self.root / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "verifier", *argv], stdout=log, stderr=subprocess.STDOUT, env=self.env, text=True
            )
        self.stack.callback(_end, process)
        return process

    def log(self, name: str) -> str:
        """What a process has written so far."""
        return (self.root / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def writer(self, name: str) -> tuple[subprocess.Popen[str], str]:
        """A ``verifier audit writer`` and its consumer name, once it has said it started."""
        process = self.start(name, "audit", "writer", "--redis-url", self.redis.url, "--audit-url",
                             self.postgres.url, "--audit-claim-idle", "2")  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            started = re.search(r'"event": "audit_writer_started".*?"consumer": "([^"]+)"', self.log(name))
            if started:
                return process, started[1]
            time.sleep(0.1)
        raise AssertionError(f"{name} did not start: {self.log(name)[-2000:]}")


def _end(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def site(tmp_path: Path, own_redis: RedisServer, own_postgres: PostgresServer) -> Iterator[Site]:
    """Keys published in a state folder of the test's own, an environment with nothing else of VERIFIER_…, and
    the counter's API key in Redis."""
    state = tmp_path / "state"
    publish_keys(state, "sc-police", ["ES256"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFIER_")}
    env |= {"VERIFIER_STATE_DIR": str(state), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    key = subprocess.run(
        [sys.executable, "-m", "verifier", "counters", "key", COUNTER, "--redis-url", own_redis.url],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
    with ExitStack() as stack:
        yield Site(tmp_path, own_redis, own_postgres, stack, env, key)


def _rows(url: str) -> tuple[int, int, int, set[str]]:
    """Rows, distinct scan ids, distinct answer ids, and the scan ids, in the trail."""
    with psycopg.connect(url) as conn:
        rows, scans, answers = conn.execute(
            "SELECT count(*), count(DISTINCT scan_id), count(DISTINCT answer_id) FROM audit_answers"
        ).fetchone() or (0, 0, 0)
        ids = {scan_id for (scan_id,) in conn.execute("SELECT scan_id FROM audit_answers")}
    return rows, scans, answers, ids


def _row_count(url: str) -> int:
    try:
        return _rows(url)[0]
    except psycopg.Error:  # the table not made yet
        return 0


async def test_200_scans_with_postgres_down_and_a_writer_killed_leave_exactly_200_rows(site: Site) -> None:
    """200 scans, PostgreSQL stopped for 20 s in the middle and a standalone writer killed holding events it
    took: 200 rows, one per scan, no scan twice; every scan answered 200 and accepted, the outage's promptly."""
    bodies = mint_bodies(site.root / "state", 7_000_000, SCANS, SCENARIO)
    port = free_port()
    serve = site.start("serve", "serve", "--port", str(port), "--redis-url", site.redis.url, "--audit-url",
                       site.postgres.url, "--audit-claim-idle", "2", "--counter-rate", "0")  # fmt: skip
    wait_ready(port, process=serve)
    doomed, doomed_name = site.writer("writer-a")
    survivor, _ = site.writer("writer-b")
    redis = Redis.from_url(site.redis.url, decode_responses=True)
    answered: dict[str, list[tuple[int, dict[str, Any], float]]] = {"before": [], "during": [], "after": []}
    figures: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {site.key}"}
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers=headers) as http:

        async def post(phase: str, body: dict[str, Any]) -> None:
            started = time.monotonic()
            async with http.post("/v1/scans", json=body) as response:
                answer = await response.json(content_type=None)
                answered[phase].append((response.status, answer, time.monotonic() - started))

        async def post_all(phase: str, chosen: list[dict[str, Any]]) -> None:
            for i in range(0, len(chosen), 8):
                await asyncio.gather(*(post(phase, body) for body in chosen[i : i + 8]))

        try:
            await post_all("before", bodies[:BEFORE])
            await until(lambda: _rows_are(site.postgres.url, BEFORE), "the first scans' rows")

            site.postgres.stop()
            down = time.monotonic()
            for body in bodies[BEFORE : BEFORE + DURING]:  # a scan every ~0.1 s, the writers taking as they come
                await post("during", body)
                if "pending_at_kill" not in figures and (held := await pending(redis, doomed_name)):
                    doomed.kill()  # SIGKILL: no goodbye, its events stay pending in the group
                    doomed.wait(timeout=10)
                    figures |= {"pending_at_kill": held, "killed_after_s": round(time.monotonic() - down, 1)}
                await asyncio.sleep(0.1)
            assert "pending_at_kill" in figures, "the doomed writer never held an event"
            figures["backlog_during_outage"] = await backlog(redis)
            await asyncio.sleep(max(0.0, down + OUTAGE - time.monotonic()))
            site.postgres.start()
            up = time.monotonic()
            figures["outage_s"] = round(up - down, 1)

            await post_all("after", bodies[BEFORE + DURING :])
            await until(lambda: _drained(site.postgres.url, redis), "every row, and an empty backlog", limit=40)
            figures["drained_after_s"] = round(time.monotonic() - up, 1)
            figures["pending_of_the_dead_writer_at_the_end"] = await pending(redis, doomed_name)
            figures["backlog_at_the_end"] = await backlog(redis)
        finally:
            await redis.aclose()

    rows, scans, answers, ids = _rows(site.postgres.url)
    every = [answer for phase in answered.values() for answer in phase]
    outage = answered["during"]
    figures |= {"rows": rows, "distinct_scans": scans, "distinct_answers": answers,
                "statuses": sorted({status for status, _, _ in every}),
                "slowest_scan_before_ms": round(max(s for _, _, s in answered["before"]) * 1000),
                "slowest_scan_during_outage_ms": round(max(s for _, _, s in outage) * 1000)}  # fmt: skip
    print(json.dumps(figures))
    assert len(every) == SCANS
    assert all(status == 200 and body["decision"] == "accepted" for status, body, _ in every), every
    assert len(outage) == DURING
    assert figures["slowest_scan_during_outage_ms"] < 2000
    assert (rows, scans, answers) == (SCANS, SCANS, SCANS)
    assert ids == {body["scan_id"] for _, body, _ in every}
    assert figures["pending_at_kill"] > 0
    assert figures["pending_of_the_dead_writer_at_the_end"] == 0
    assert figures["backlog_at_the_end"] == 0

    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(timeout=20) == 0
    said = site.log("writer-b")
    assert '"event": "audit_writer_progress"' in said
    assert '"event": "audit_writer_stopped"' in said
    assert "Traceback" not in said + site.log("serve")


async def _rows_are(url: str, count: int) -> bool:
    return _row_count(url) == count


async def _drained(url: str, redis: Redis) -> bool:
    return _row_count(url) >= SCANS and await backlog(redis) == 0
