"""The trail's database on both SQLite and PostgreSQL: migrations that can run twice, rows written once
however often their events are, retention — on PostgreSQL by dropping whole monthly partitions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from verifier.adapters.audit.trail import AuditTrail, engine_url
from verifier.core.catalogue import Catalogue
from verifier.service.ports import AuditEvent

NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def trail(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuditTrail]:
    """A migrated trail on SQLite in tmp_path, or on a fresh PostgreSQL database."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    made = AuditTrail(engine_url(url, tmp_path), retention_days=60)
    await made.migrate()
    yield made
    await made.close()


def event(catalogue: Catalogue, n: int, at: datetime) -> AuditEvent:
    """The n-th answer, given at ``at`` at the first counter of the registry."""
    counter = next(iter(catalogue.counters.values()))
    return AuditEvent(
        answer_id=f"cy:{{s0}}:audit/{n}-0", scan_id=f"s0-{n:016d}", at=at.isoformat().replace("+00:00", "Z"),
        counter=counter.id, scenario=counter.scenarios[0], item=None, serial_no=None, operator=None,
        type="driving-licence", issuing_province="SC", unit="sc-police", channel="jiaoguan-12123",
        decision="accepted", reasons=(), cached=False, holder="h",
    )  # fmt: skip


async def test_migrating_again_changes_nothing(trail: AuditTrail, catalogue: Catalogue) -> None:
    """A second start (or `verifier audit migrate` run twice) finds the schema at its newest and keeps the rows."""
    await trail.write([event(catalogue, 1, NOW)], catalogue)
    again = AuditTrail(trail.url)
    await again.migrate()
    assert await again.count() == 1
    await again.close()


async def test_an_event_written_twice_is_one_row(trail: AuditTrail, catalogue: Catalogue) -> None:
    """A batch written again (its writer died before acknowledging) adds nothing; a new event in it is added."""
    batch = [event(catalogue, n, NOW) for n in range(5)]
    await trail.write(batch, catalogue)
    await trail.write([*batch, event(catalogue, 5, NOW)], catalogue)
    assert await trail.count() == 6


async def test_rows_past_the_retention_are_dropped(trail: AuditTrail, catalogue: Catalogue) -> None:
    """With 60 days kept: rows of four months ago go, last week's stay."""
    old = [event(catalogue, n, NOW - timedelta(days=120)) for n in range(3)]
    recent = [event(catalogue, 10 + n, NOW - timedelta(days=7)) for n in range(2)]
    await trail.write(old + recent, catalogue)
    assert await trail.count() == 5
    await trail.prune(NOW)
    assert await trail.count() == 2


@pytest.mark.parametrize("trail", ["postgresql"], indirect=True)
async def test_postgresql_keeps_a_partition_a_month_and_drops_old_months_whole(
    trail: AuditTrail, catalogue: Catalogue
) -> None:
    """Months are China's: 2026-07-31 20:00 UTC is already August in Chongqing. Pruning at the end of November
    with 60 days kept (since October 1st, 04:00 UTC) drops July and August whole, and keeps October."""
    await trail.prepare(NOW)
    await trail.write([event(catalogue, 1, datetime(2026, 7, 31, 20, 0, tzinfo=UTC))], catalogue)
    await trail.write([event(catalogue, 2, datetime(2026, 7, 10, tzinfo=UTC))], catalogue)
    await trail.write([event(catalogue, 3, datetime(2026, 10, 15, tzinfo=UTC))], catalogue)
    assert await trail.partitions() == {
        "audit_answers_default", "audit_answers_y2026m07", "audit_answers_y2026m08", "audit_answers_y2026m10",
        "audit_answers_y2026m11", "audit_answers_y2026m12",
    }  # fmt: skip
    async with trail.engine.connect() as conn:
        august = await conn.execute(text("SELECT count(*) FROM audit_answers_y2026m08"))
        assert august.scalar_one() == 1
    assert await trail.prune(NOW) == 2
    assert "audit_answers_y2026m10" in await trail.partitions()
    assert not {"audit_answers_y2026m07", "audit_answers_y2026m08"} & await trail.partitions()
    assert await trail.count() == 1
