"""The audit trail's database: rows written idempotently, PostgreSQL's monthly partitions made ahead and
dropped past the retention, and the two readings of it — the effectiveness report and a holder's usage log.

One :class:`AuditTrail` per process, on an async SQLAlchemy engine: psycopg 3 for ``postgresql://`` URLs,
aiosqlite for ``sqlite:///`` (the embedded default, a file in the state folder)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, case, create_engine, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from verifier.adapters.audit.schema import answers
from verifier.core.catalogue import Catalogue
from verifier.core.report import ReportRow, explode_reasons
from verifier.service.ports import AuditEvent

CHINA = timezone(timedelta(hours=8), "CST")  # both provinces' clock: no daylight saving
MIGRATIONS = Path(__file__).with_name("migrations")
_PARTITION = re.compile(r"audit_answers_y(\d{4})m(\d{2})$")
_PARTITIONS = text(
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = 'audit_answers'::regclass"
)
_CONNECT = {"connect_timeout": 5}  # seconds: a PostgreSQL out of reach fails a write or migration in seconds
# What a database out of reach or refusing says, for the writer to wait and try again.
TrailUnavailable = (SQLAlchemyError, OSError)


def engine_url(url: str | None, state: Path) -> str:
    """SQLAlchemy's URL for ``--audit-url``: PostgreSQL through psycopg 3, else SQLite in the state folder."""
    if url is None:
        return f"sqlite+aiosqlite:///{state / 'audit.sqlite3'}"
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    raise ValueError(f"{url!r}: the audit trail takes postgresql://… or sqlite:///PATH")


@dataclass(frozen=True)
class Use:
    """One use of a licence, as its holder sees it: nothing about the clerk."""

    at: str  # ISO 8601, China time
    institution: str | None
    scenario: str
    item: int | None
    type: str
    decision: str
    reasons: tuple[str, ...]


class AuditTrail:
    """The trail on one database. ``retention_days``: rows older are dropped (:meth:`prune`)."""

    def __init__(self, url: str, *, retention_days: int = 400, pool_size: int = 2) -> None:
        self.url = url
        self.retention_days = retention_days
        self.postgres = url.startswith("postgresql")
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self.postgres:
            # connect_timeout: a PostgreSQL out of reach fails a write in seconds, and the writer waits and retries.
            options |= {"pool_size": pool_size, "max_overflow": 0, "connect_args": _CONNECT}
        self.engine: AsyncEngine = create_async_engine(url, **options)
        self._months: set[str] = set()  # partitions known to exist
        self._migrated = False

    async def close(self) -> None:
        """Release the connections."""
        await self.engine.dispose()

    async def migrate(self) -> None:
        """Bring the schema to the newest version (alembic), once even if several processes start at once."""
        await asyncio.to_thread(_upgrade, self.engine.url.set(drivername=_SYNC_DRIVERS[self.engine.url.drivername]))
        self._migrated = True

    async def version(self) -> str:
        """The schema's version as the database records it (alembic's table, named in migrations/env.py)."""
        await self._schema()
        async with self.engine.connect() as conn:
            return str((await conn.execute(text("SELECT version_num FROM audit_schema_version"))).scalar_one())

    async def _schema(self) -> None:
        """The schema at its newest version before the first use (a service starts with its database away)."""
        if not self._migrated:
            await self.migrate()

    async def write(self, events: Sequence[AuditEvent], catalogue: Catalogue) -> None:
        """Insert one row per event in one transaction; an event already written is skipped."""
        await self._schema()
        rows = [row(event, catalogue) for event in events]
        if not rows:
            return
        if self.postgres:
            await self._partitions({r["month"] for r in rows})
            statement: Any = postgresql.insert(answers).on_conflict_do_nothing()
        else:
            statement = sqlite.insert(answers).on_conflict_do_nothing()
        async with self.engine.begin() as conn:
            await conn.execute(statement, rows)

    async def _partitions(self, months: Iterable[str]) -> None:
        """Make the month partitions rows are about to need (this month's and the next are made at start)."""
        for month in sorted(set(months) - self._months):
            year, mon = map(int, month.split("-"))
            start, end = _month(year, mon)
            name = f"audit_answers_y{year:04d}m{mon:02d}"
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(
                        text(
                            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF audit_answers "
                            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                        )
                    )
            except DBAPIError as exc:
                # The default partition already holds rows of that month (a month never made ahead):
                # its rows stay there, found by every query all the same, and pruned by date.
                if "default partition" not in str(exc):
                    raise
            self._months.add(month)

    async def prepare(self, now: datetime) -> None:
        """Make this month's and next month's partitions (PostgreSQL), so the writer rarely has to."""
        await self._schema()
        if self.postgres:
            this = now.astimezone(CHINA)
            following = _month(this.year, this.month)[1]
            await self._partitions({this.strftime("%Y-%m"), following.strftime("%Y-%m")})

    async def prune(self, now: datetime) -> int:
        """Drop what is older than the retention: whole months of partitions on PostgreSQL (cheap), row by row
        elsewhere. Returns the partitions dropped (PostgreSQL) or rows deleted (SQLite)."""
        await self._schema()
        cutoff = now - timedelta(days=self.retention_days)
        async with self.engine.begin() as conn:
            if not self.postgres:
                result = await conn.execute(answers.delete().where(answers.c.at < cutoff))
                return int(result.rowcount)
            names = await conn.execute(_PARTITIONS)
            dropped = 0
            for (name,) in names.all():
                match = _PARTITION.match(name)
                if match is None:
                    continue
                year, mon = int(match[1]), int(match[2])
                if _month(year, mon)[1] <= cutoff:
                    await conn.execute(text(f"DROP TABLE {name}"))
                    self._months.discard(f"{year:04d}-{mon:02d}")
                    dropped += 1
            await conn.execute(text("DELETE FROM audit_answers_default WHERE at < :cutoff"), {"cutoff": cutoff})
            return dropped

    async def partitions(self) -> set[str]:
        """The names of the answers table's partitions (PostgreSQL)."""
        async with self.engine.connect() as conn:
            return {name for (name,) in await conn.execute(_PARTITIONS)}

    async def count(self) -> int:
        """Rows in the trail."""
        await self._schema()
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(answers))).scalar_one())

    async def report(self, first: date, last: date, by: Sequence[str]) -> tuple[list[ReportRow], ReportRow]:
        """Answers from day ``first`` to day ``last`` (China's calendar, both included) grouped by ``by``
        (verifier.core.report.GROUPS), each group with its answers, first scans, acceptances and rejections;
        and the period's total (grouped by ``reason``, the rows add up to more: a rejection counts per reason)."""
        await self._schema()
        rows = await self._grouped(first, last, by)
        total = (await self._grouped(first, last, ()))[0] if by else rows[0]
        return rows, total

    async def _grouped(self, first: date, last: date, by: Sequence[str]) -> list[ReportRow]:
        """Answers from day ``first`` to day ``last`` (China's calendar, both included) grouped by ``by``."""
        grouped = [answers.c.reasons if name == "reason" else answers.c[name] for name in by]
        accepted = func.sum(case((answers.c.decision == "accepted", 1), else_=0))
        first_scans = func.sum(case((answers.c.cached.is_(False), 1), else_=0))
        query = (
            select(*grouped, func.count(), first_scans, accepted)
            .where(answers.c.day >= first.isoformat(), answers.c.day <= last.isoformat())
            .group_by(*grouped)
        )
        async with self.engine.connect() as conn:
            result = await conn.execute(query)
            rows = [
                ReportRow(dict(zip(by, values[: len(by)], strict=True)), int(n), int(f or 0), int(a or 0))
                for *values, n, f, a in result
            ]
        return explode_reasons(rows, by)

    async def uses(self, holder: str, channel: str, catalogue: Catalogue, limit: int = 200) -> list[Use]:
        """The holder's uses of licences shown through ``channel``, newest first: first answers only (a
        re-scan is the same use), and nothing about the clerk."""
        await self._schema()
        c = answers.c
        query = (
            select(c.at, c.institution, c.scenario, c.item, c.type, c.decision, c.reasons)
            .where(c.holder == holder, c.channel == channel, c.cached.is_(False))
            .order_by(c.at.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            result = await conn.execute(query)
            found = result.all()
        uses = []
        for at, institution, scenario, item, kind, decision, reasons in found:
            known = catalogue.institutions.get(institution or "")
            uses.append(
                Use(
                    at=_aware(at).astimezone(CHINA).isoformat(timespec="seconds"),
                    institution=known.name_zh if known else None,
                    scenario=scenario,
                    item=item,
                    type=kind,
                    decision=decision,
                    reasons=tuple(r for r in reasons.split(",") if r),
                )
            )
        return uses


def row(event: AuditEvent, catalogue: Catalogue) -> dict[str, Any]:
    """The trail's row of an event, with the counter's institution and divisions as the catalogue has them now."""
    at = datetime.fromisoformat(event.at.replace("Z", "+00:00")).astimezone(UTC)
    day = at.astimezone(CHINA).isoformat()[:10]  # YYYY-MM-DD: isoformat costs a third of strftime
    counter = catalogue.counters.get(event.counter)
    institution = counter.institution if counter else None
    return {
        "answer_id": event.answer_id,
        "at": at,
        "day": day,
        "month": day[:7],
        "scan_id": event.scan_id,
        "counter": event.counter,
        "institution": institution.code if institution else None,
        "province": institution.province if institution else None,
        "city": institution.city_division if institution else None,
        "district": institution.district_division if institution else None,
        "scenario": event.scenario,
        "item": int(event.item) if event.item else None,
        "serial_no": event.serial_no,
        "operator": event.operator,
        "type": event.type,
        "issuing_province": event.issuing_province,
        "unit": event.unit,
        "channel": event.channel,
        "decision": event.decision,
        "reasons": ",".join(event.reasons),
        "cached": event.cached,
        "holder": event.holder,
    }


def _month(year: int, mon: int) -> tuple[datetime, datetime]:
    """The first instant of a China month and of the month after it: a partition's bounds."""
    return datetime(year, mon, 1, tzinfo=CHINA), datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=CHINA)


def _aware(at: datetime) -> datetime:
    """SQLite gives the stored UTC time back without its offset."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


# Alembic runs on a synchronous connection, in a thread of its own: its context is a module-level global, so
# one migration at a time in a process (the lock); PostgreSQL's advisory lock makes it one across processes.
_SYNC_DRIVERS = {"postgresql+psycopg": "postgresql+psycopg", "sqlite+aiosqlite": "sqlite"}
_MIGRATING = threading.Lock()


def _upgrade(url: URL) -> None:
    # As the trail's own engine: a PostgreSQL out of reach fails the migration in seconds, not the system's minutes.
    options = {"connect_args": _CONNECT} if url.get_backend_name() == "postgresql" else {}
    engine = create_engine(url, poolclass=NullPool, **options)
    try:
        with _MIGRATING, engine.begin() as connection:
            if engine.dialect.name == "postgresql":  # the others wait, then find the work done
                connection.execute(text("SELECT pg_advisory_xact_lock(20261130)"))
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
