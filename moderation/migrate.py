"""Apply the tool's Alembic migrations, shipped inside the package, to a database."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from .db import run_write, translate_errors

_SCRIPTS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "moderation_alembic_version"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The applied revision, or None when the tool's tables were never created."""
    with translate_errors(engine), engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the tool's tables to the newest revision (in one transaction); return it."""
    if current_revision(engine) == head_revision():
        return head_revision()  # the common case costs one cheap read, no write lock

    def _apply(conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            # Two replicas starting at once must not both create the tables. SQLite needs no
            # such lock: the write transaction already began with BEGIN IMMEDIATE.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('moderation_migrate'))")
        command.upgrade(_config(conn), "head")

    run_write(engine, _apply)
    return head_revision()


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
