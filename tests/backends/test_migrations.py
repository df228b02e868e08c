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


def test_the_site_key_revision_downgrades_keeping_one_sites_memory(db_url: str) -> None:
    from alembic import command

    engine = create_engine(db_url)
    migrate.upgrade(engine)
    rows = [
        ("wp_2_comments", "1", "approved"),
        ("wp_comments", "1", "held"),
        ("wp_comments", "2", "approved"),
    ]
    with engine.begin() as conn:
        for site, comment_id, outcome in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO moderation_comment_state (site, comment_id, text_hash, outcome,"
                    " prompt_hash, failures, run_id, updated_at) VALUES (:s, :c, 'h', :o, 'p', 0,"
                    " 'r', '2026-12-01 10:00:00')"
                ),
                {"s": site, "c": comment_id, "o": outcome},
            )
    with engine.begin() as conn:
        command.downgrade(migrate._config(conn), "0008")
    assert migrate.current_revision(engine) == "0008"
    # The first site in key order stays whole; the old key cannot hold two sites' comment 1.
    assert read_table(
        db_url, "SELECT comment_id, outcome FROM moderation_comment_state ORDER BY comment_id"
    ) == [("1", "approved")]
    migrate.upgrade(engine)
    assert migrate.is_current(engine)
    engine.dispose()
