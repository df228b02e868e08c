"""Alembic environment: always run from :mod:`moderation.migrate` with a live connection."""

from __future__ import annotations

from alembic import context

from moderation.storage.tables import metadata

VERSION_TABLE = "moderation_alembic_version"

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # The site may use Alembic for its own schema: never touch its `alembic_version`.
    version_table=VERSION_TABLE,
    include_name=lambda name, type_, _parent: type_ != "table" or name in metadata.tables,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
