"""Alembic's environment for the trail: always run by :meth:`verifier.adapters.audit.trail.AuditTrail.migrate`
on a connection it opened (alembic's "connection sharing" recipe), never from an ini file."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, version_table="audit_schema_version")
with context.begin_transaction():
    context.run_migrations()
