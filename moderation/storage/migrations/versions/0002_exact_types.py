"""Exact types on every database: DOUBLE epoch seconds, microsecond DATETIMEs, utf8mb4 on MySQL.

SQLAlchemy's Float is single precision on MySQL, which stored lease times in 128-second steps;
MySQL's DATETIME drops fractions of a second. PostgreSQL and SQLite already stored all of these
exactly; the statements are the same there so that every database ends with the same schema.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("moderation_runs", "moderation_decisions", "moderation_comment_state", "moderation_lease")
EPOCH_COLUMNS = {
    "moderation_runs": [("scheduled_for", True)],
    "moderation_decisions": [("latency_ms", True)],
    "moderation_lease": [("acquired_at", False), ("expires_at", False)],
}
TIME_COLUMNS = {
    "moderation_runs": [("started_at", False), ("finished_at", True)],
    "moderation_decisions": [("decided_at", False)],
    "moderation_comment_state": [("updated_at", False)],
}


def upgrade() -> None:
    is_mysql = op.get_bind().dialect.name in ("mysql", "mariadb")
    if is_mysql:
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ENGINE=InnoDB")
            op.execute(f"ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    for table, columns in EPOCH_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, nullable in columns:
                batch.alter_column(
                    name, type_=sa.Double(), existing_type=sa.Float(), existing_nullable=nullable
                )
    if is_mysql:
        for table, columns in TIME_COLUMNS.items():
            for name, nullable in columns:
                op.alter_column(
                    table,
                    name,
                    type_=mysql.DATETIME(fsp=6),
                    existing_type=mysql.DATETIME(),
                    existing_nullable=nullable,
                )


def downgrade() -> None:
    is_mysql = op.get_bind().dialect.name in ("mysql", "mariadb")
    if is_mysql:
        for table, columns in TIME_COLUMNS.items():
            for name, nullable in columns:
                op.alter_column(
                    table,
                    name,
                    type_=mysql.DATETIME(),
                    existing_type=mysql.DATETIME(fsp=6),
                    existing_nullable=nullable,
                )
    for table, columns in EPOCH_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, nullable in columns:
                batch.alter_column(
                    name, type_=sa.Float(), existing_type=sa.Double(), existing_nullable=nullable
                )
