"""The tests' own PostgreSQL: it answers, an outage refuses connections and keeps the committed data,
and each test's database is its own."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.postgres_server import INSTALL, PostgresServer, find_binaries

pytestmark = pytest.mark.postgres


def test_the_session_server_answers(postgres_server: PostgresServer) -> None:
    """The session's server answers ``select 1`` in the database ``verifier``, on its own port."""
    with psycopg.connect(postgres_server.url) as conn:
        assert conn.execute("SELECT 1, current_database()").fetchone() == (1, "verifier")
    assert postgres_server.port != 5432


@pytest.mark.skipif(find_binaries() is None, reason=INSTALL)
@pytest.mark.parametrize("mode", ["immediate", "fast"])
def test_a_stopped_server_refuses_and_keeps_its_data(tmp_path: Path, mode: str) -> None:
    """After a stop, connecting fails; started again on the same folder and port, the committed rows are there."""
    with PostgresServer(tmp_path) as server:
        with psycopg.connect(server.url) as conn:
            conn.execute("CREATE TABLE t (n int)")
            conn.execute("INSERT INTO t SELECT generate_series(1, 1000)")
        server.stop(mode)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.url, connect_timeout=2)
        server.start()
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (1000,)


def test_each_test_database_is_its_own(postgres_server: PostgresServer, postgres_url: str) -> None:
    """The test's database starts empty; a table made there is absent from another fresh database, which is
    dropped when its block ends."""
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
        conn.execute("CREATE TABLE mine (n int)")
    with postgres_server.database() as other:
        assert other != postgres_url
        with psycopg.connect(other) as conn:
            assert conn.execute("SELECT to_regclass('mine')").fetchone() == (None,)
        name = other.rsplit("/", 1)[1]
    with psycopg.connect(postgres_server.url) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None
