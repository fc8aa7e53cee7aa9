"""The audit trail's table. One row per answer (a first scan or a re-scan), keyed by the answer's id and
time: the time is PostgreSQL's partition key (a partition a month), so it is part of the key, and an
answer's time never changes — writing an event twice writes one row.

``day`` and ``month`` are China's calendar (UTC+8, as both provinces live by), kept beside the time so
reports group by plain columns on both databases. The counter's institution and its GB/T 2260 divisions
are copied in as they were when the answer was given. No licence number, name or ``sub``: ``holder`` is the
keyed pseudonym of the token's ``sub`` (verifier.core.identity)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, MetaData, String, Table

metadata = MetaData()

answers = Table(
    "audit_answers",
    metadata,
    Column("answer_id", String(120), primary_key=True),
    Column("at", DateTime(timezone=True), primary_key=True),
    Column("day", String(10), nullable=False),  # YYYY-MM-DD, China time
    Column("month", String(7), nullable=False),  # YYYY-MM, China time
    Column("scan_id", String(40), nullable=False),
    Column("counter", String(80), nullable=False),
    Column("institution", String(80)),
    Column("province", String(2)),  # the counter's: SC | CQ
    Column("city", String(6)),  # GB/T 2260 code of the counter's city (500000 for Chongqing's bodies)
    Column("district", String(6)),  # ... of its district or county, where known
    Column("scenario", String(80), nullable=False),
    Column("item", Integer),  # 川渝通办 item number, when the business named one
    Column("serial_no", String(200)),
    Column("operator", String(200)),
    Column("type", String(80), nullable=False),  # licence type code; "-" for a token naming none we know
    Column("issuing_province", String(2), nullable=False),
    Column("unit", String(80), nullable=False),
    Column("channel", String(40), nullable=False),
    Column("decision", String(10), nullable=False),
    Column("reasons", String(400), nullable=False),  # reason codes, comma-separated; "" for an acceptance
    Column("cached", Boolean, nullable=False),
    Column("holder", String(40)),  # keyed pseudonym of sub; NULL for a token whose signature did not verify
    Index("audit_answers_day", "day"),
    Index("audit_answers_holder", "holder", "channel", "at"),
)
