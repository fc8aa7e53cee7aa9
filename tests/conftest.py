"""Shared fixtures: the catalogue, a private state folder per test session so generated keys never
touch the user's own state folder, a scene of apps and keys per test, redis-servers (one, a cluster, or
behind Sentinel) and PostgreSQL servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres_server import INSTALL, PostgresServer, find_binaries
from tests.redis_cluster import Cluster
from tests.redis_sentinel import Deployment, started_deployment
from tests.redis_server import RedisServer
from tests.scenes import Scene
from verifier.adapters.catalogue_files import load_catalogue
from verifier.core.catalogue import Catalogue


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    """The real catalogue in data/."""
    return load_catalogue()


@pytest.fixture(scope="session", autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test session generates its own keys in a temporary state folder."""
    path = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VERIFIER_STATE_DIR", str(path))
        yield path


@pytest.fixture
def scene(catalogue: Catalogue, tmp_path: Path) -> Scene:
    """Real keys, the five apps, and a key file of counter keys in this test's own folder."""
    return Scene.build(catalogue, tmp_path)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole session, on a free port."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may stop, pause and restart."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A Redis Cluster for the module: three primaries with a replica each."""
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """Redis behind Sentinel of this test's own: a primary, two replicas, three sentinels."""
    with started_deployment(tmp_path) as started:
        yield started


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session, on a free port; its URL names the database ``verifier``."""
    if find_binaries() is None:
        pytest.skip(INSTALL)
    with PostgresServer(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own (its URL names the database ``verifier``), which it may stop and
    restart."""
    if find_binaries() is None:
        pytest.skip(INSTALL)
    with PostgresServer(tmp_path / "postgres") as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh empty database of this test's own on the session's PostgreSQL server, dropped afterwards."""
    with postgres_server.database() as url:
        yield url
