"""Apply the tool's Alembic migrations, shipped inside the package, to a database.

Alembic is imported only when a migration must actually run: every batch checks the revision,
and cron pays that start-up cost every hour.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from moderation.errors import ConfigurationError, DatabaseError
from moderation.storage.engines import run_write, translate_errors

if TYPE_CHECKING:
    from alembic.config import Config

_SCRIPTS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "moderation_alembic_version"
# The newest revision in migrations/versions; a test checks it against Alembic's own answer.
HEAD = "0014"


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    return config


def alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The applied revision, or None when the tool's tables were never created."""
    with translate_errors(engine), engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        version = sa.table(VERSION_TABLE, sa.column("version_num"))
        return conn.execute(sa.select(version.c.version_num)).scalar()


def upgrade(engine: Engine) -> str:
    """Bring the tool's tables to the newest revision (in one transaction); return it."""
    if current_revision(engine) == HEAD:
        return HEAD  # the common case costs one cheap read, no write lock, no Alembic

    def _apply(conn: Connection) -> None:
        from alembic import command

        if conn.dialect.name == "postgresql":
            # Two replicas starting at once must not both create the tables. SQLite needs no
            # such lock: the write transaction already began with BEGIN IMMEDIATE.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('moderation_migrate'))")
        elif conn.dialect.name in ("mysql", "mariadb"):
            # MySQL commits each DDL statement on its own, so the transaction is no lock: a
            # named lock (held until released or the connection ends) serialises replicas.
            got = conn.exec_driver_sql("SELECT GET_LOCK('moderation_migrate', 60)").scalar()
            if got != 1:
                raise DatabaseError("another process is migrating the tool's tables")
            try:
                command.upgrade(_config(conn), "head")
            finally:
                conn.exec_driver_sql("SELECT RELEASE_LOCK('moderation_migrate')")
            return
        command.upgrade(_config(conn), "head")

    run_write(engine, _apply)
    return HEAD


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == HEAD


def ensure_current(engine: Engine, auto_migrate: bool) -> None:
    """Upgrade the tool's tables, or refuse (exit 2) when told not to and they are behind."""
    if auto_migrate:
        upgrade(engine)
    elif not is_current(engine):
        raise ConfigurationError(
            "the tool's tables are missing or out of date and MODERATION_AUTO_MIGRATE is off; "
            "run `moderate db upgrade`"
        )
