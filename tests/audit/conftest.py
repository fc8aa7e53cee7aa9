"""Fixtures of the audit trail's tests: one suite, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audit.known import Known, write_known
from tests.postgres_server import PostgresServer
from tests.scenes import Scene
from verifier.core.catalogue import Catalogue


@pytest.fixture(scope="package", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def trail_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty audit trail's URL (``--audit-url``): a SQLite file, or a fresh database of the session's
    PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('trail') / 'audit.sqlite3'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.database() as url:
        yield url


@pytest.fixture(scope="package")
def known(trail_url: str, catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> Known:
    """The trail holding the known scans (tests/audit/known.py), written once per database."""
    folder: Path = tmp_path_factory.mktemp("known")
    written = Known(Scene.build(catalogue, folder), trail_url)
    asyncio.run(write_known(written))
    return written
