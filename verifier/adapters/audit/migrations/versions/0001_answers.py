"""The answers table: on PostgreSQL partitioned by month of ``at`` (the partitions themselves are made
ahead by the trail, verifier.adapters.audit.trail), with a default partition so no row is ever refused.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from verifier.adapters.audit.schema import answers

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # SQLAlchemy Core writes the table; PostgreSQL's PARTITION BY goes after its columns.
        create = sa.schema.CreateTable(answers).compile(dialect=bind.dialect)
        op.execute(f"{str(create).rstrip()} PARTITION BY RANGE (at)")
        op.execute("CREATE TABLE audit_answers_default PARTITION OF audit_answers DEFAULT")
    else:
        answers.create(bind)
        return
    for index in answers.indexes:
        index.create(bind)


def downgrade() -> None:
    op.drop_table("audit_answers")
