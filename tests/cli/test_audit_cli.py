"""``verifier audit migrate`` prints the schema version it brought the trail to, on PostgreSQL and on the
state folder's SQLite, and again on a trail already there; ``verifier audit writer`` writes the trail from
Redis until SIGINT, then stops cleanly (exit 0), saying so."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from redis import Redis

from tests.redis_server import RedisServer
from tests.scenes import Scene
from tests.service.desk import Desk
from verifier.adapters.redis_store import RedisStore
from verifier.issuer.mint import citizen_id

ROOT = Path(__file__).resolve().parents[2]


def _verifier(*argv: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verifier", *argv], env=_env(state), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def _env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFIER_")}
    return env | {"VERIFIER_STATE_DIR": str(state), "PYTHONPATH": str(ROOT)}


@pytest.mark.postgres
def test_migrate_brings_postgres_to_the_newest_version_and_says_it(postgres_url: str, tmp_path: Path) -> None:
    """Twice on an empty database: version 0001 printed alone each time, the answers table and its default
    partition made, the password-free URL named on standard error."""
    for _ in range(2):
        done = _verifier("audit", "migrate", "--audit-url", postgres_url, state=tmp_path)
        assert (done.returncode, done.stdout) == (0, "0001\n"), done.stderr
        assert "0001" in done.stderr
        assert postgres_url.rsplit("/", 1)[1] in done.stderr
    with psycopg.connect(postgres_url) as conn:
        tables = {name for (name,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"audit_answers_default", "audit_schema_version"} <= tables
    with psycopg.connect(postgres_url) as conn:
        partitioned = conn.execute("SELECT count(*) FROM pg_partitioned_table").fetchone()
    assert partitioned == (1,)


def test_migrate_without_a_url_makes_the_state_folders_sqlite_trail(tmp_path: Path) -> None:
    """No --audit-url: the trail is audit.sqlite3 in the state folder that --state-dir names."""
    state = tmp_path / "elsewhere"
    state.mkdir()
    done = _verifier("audit", "migrate", "--state-dir", str(state), state=tmp_path)
    assert (done.returncode, done.stdout) == (0, "0001\n"), done.stderr
    assert (state / "audit.sqlite3").exists()
    assert not (tmp_path / "audit.sqlite3").exists()


async def _answers(scene: Scene, url: str, count: int) -> None:
    """``count`` answers on the Redis at ``url``, their events waiting in its streams."""
    store = RedisStore.from_url(url, allow_volatile=True)
    try:
        desk = Desk(scene, store)
        for n in range(count):
            await desk.scan(scene.driving_licence("SC", licence_no=citizen_id(3_400_000 + n)))
    finally:
        await store.close()


@pytest.mark.redis
def test_the_writer_writes_from_redis_and_stops_on_sigint(
    scene: Scene, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Five answers waiting in Redis; a writer started on it and the state folder's trail writes all five,
    leaves the streams empty, reloads its rules on SIGHUP and goes on, and on SIGINT stops with exit 0, having
    said it started and stopped."""
    with Redis.from_url(redis_server.url) as client:
        client.flushdb()
    asyncio.run(_answers(scene, redis_server.url, 5))
    log = tmp_path / "writer.log"
    with log.open("w") as out:
        writer = subprocess.Popen(
            [sys.executable, "-m", "verifier", "audit", "writer", "--redis-url", redis_server.url],
            env=_env(tmp_path), stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    try:
        trail = tmp_path / "audit.sqlite3"
        deadline = time.monotonic() + 30
        while _rows(trail) < 5:
            assert writer.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        writer.send_signal(signal.SIGHUP)  # the rules reloaded, as `verifier serve` does: the writer goes on
        deadline = time.monotonic() + 10
        while "audit_writer_rules_reloaded" not in log.read_text():
            assert writer.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        writer.send_signal(signal.SIGINT)
        assert writer.wait(timeout=20) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(timeout=10)
    said = log.read_text()
    assert '"event": "audit_writer_started"' in said
    assert '"event": "audit_writer_stopped", ' in said
    assert '"events": 5' in said
    assert "Traceback" not in said
    with Redis.from_url(redis_server.url) as client:
        assert sum(int(client.xlen(key)) for key in client.scan_iter("cy:*:audit")) == 0


def _rows(trail: Path) -> int:
    if not trail.exists():
        return 0
    with closing(sqlite3.connect(trail)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM audit_answers").fetchone()[0])
        except sqlite3.OperationalError:  # not made yet
            return 0
