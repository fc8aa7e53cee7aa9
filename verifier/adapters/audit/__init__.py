"""The audit trail: one row per answer a counter got, in PostgreSQL (``--audit-url``) or, by default, in
SQLite in the state folder — the same tables, migrations and queries on both (SQLAlchemy Core, alembic).

- :mod:`.schema`: the table; :mod:`.migrations`: its versions, applied by :func:`.trail.AuditTrail.migrate`.
- :mod:`.trail`: writing rows idempotently, the monthly partitions and retention, the report and usage queries.
- :mod:`.writer`: the loop that takes events from the store's feed and writes them, acknowledging after commit.
"""
