"""The shipped migrations create exactly the tables the code declares, and touch nothing else."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from moderation.storage import migrate
from moderation.storage.engines import create_engine
from moderation.storage.tables import metadata
from tests.helpers import create_site_table, read_table


def test_migrations_match_the_declared_tables(db_url: str) -> None:
    create_site_table(db_url, ["a comment"])
    engine = create_engine(db_url)
    assert migrate.upgrade(engine) == migrate.HEAD
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": lambda name, type_, _parent: (
                    type_ != "table" or name in metadata.tables
                ),
                "compare_type": True,
            },
        )
        assert compare_metadata(context, metadata) == []
    engine.dispose()


def test_upgrade_is_idempotent_and_leaves_the_site_alone(db_url: str) -> None:
    create_site_table(db_url, ["a comment"])
    engine = create_engine(db_url)

    def columns() -> list[tuple[str, str, bool]]:
        return [
            (c["name"], str(c["type"]), c["nullable"])
            for c in sa.inspect(engine).get_columns("comments")
        ]

    before = columns()
    migrate.upgrade(engine)
    migrate.upgrade(engine)
    assert migrate.is_current(engine)
    assert columns() == before
    assert not sa.inspect(engine).has_table("alembic_version")  # the site's own, if any
    engine.dispose()
    assert read_table(db_url, "SELECT body FROM comments") == [("a comment",)]


def test_the_declared_head_is_alembics_head() -> None:
    assert migrate.alembic_head() == migrate.HEAD
