"""The tool's own tables on every database: times held exactly, InnoDB and utf8mb4 with exact
types on MySQL, text ids paged, remembered and audited.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from moderation.batch.lease import Lease
from moderation.batch.pipeline import run_batch
from moderation.storage import migrate
from moderation.storage.engines import create_engine
from tests.fakes import FakeClassifier
from tests.helpers import make_settings, read_table


def test_lease_times_are_stored_exactly(db_url: str) -> None:
    # MySQL's FLOAT kept these in 128-second steps: "held until" was off and the next batch
    # was refused long after the lease had ended.
    engine = create_engine(db_url)
    migrate.upgrade(engine)
    now = 1_764_500_000.123456
    lease = Lease(engine, ttl=60.5, owner="exact", clock=lambda: now)
    lease.acquire("run")
    engine.dispose()
    assert read_table(db_url, "SELECT acquired_at, expires_at FROM moderation_lease") == [
        (now, now + 60.5)
    ]


@pytest.mark.mysql
def test_own_tables_on_mysql_are_innodb_utf8mb4_with_exact_types(mysql_url: str) -> None:
    engine = create_engine(mysql_url)
    migrate.upgrade(engine)
    engine.dispose()
    database = sa.engine.make_url(mysql_url).database
    columns = read_table(
        mysql_url,
        "SELECT table_name, column_name, column_type, collation_name"
        f" FROM information_schema.columns WHERE table_schema = '{database}'"
        " AND table_name LIKE 'moderation%%' AND table_name <> 'moderation_alembic_version'",
    )
    types = {(t, c): ct for t, c, ct, _ in columns}
    for table, column in [
        ("moderation_lease", "acquired_at"),
        ("moderation_lease", "expires_at"),
        ("moderation_runs", "scheduled_for"),
    ]:
        assert types[(table, column)] == "double"
    assert types[("moderation_runs", "started_at")] == "datetime(6)"
    assert not [c for c in columns if "float" in c[2]]
    assert {c[3] for c in columns if c[3] is not None} == {"utf8mb4_bin"}
    engines = read_table(
        mysql_url,
        "SELECT table_name, engine FROM information_schema.tables"
        f" WHERE table_schema = '{database}' AND table_name LIKE 'moderation%%'",
    )
    assert {e for _, e in engines} == {"InnoDB"}


def test_text_ids_are_paged_remembered_and_audited(db_url: str) -> None:
    # Commento-style hex keys, and keys differing only in case, across several keyset pages.
    ids = ["f3a9", "0b7c", "A1", "a1", "zz-9", "Ω-1", "10", "9"]
    metadata = sa.MetaData()
    site = sa.Table(
        "comments",
        metadata,
        sa.Column("hex", sa.String(64, collation=_binary_collation(db_url)), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("approved", sa.Boolean, nullable=False),
    )
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(
            sa.insert(site),
            [{"hex": i, "body": f"comment {i}", "approved": False} for i in ids],
        )
    engine.dispose()
    settings = make_settings(db_url, comments_id_column="hex", batch_size=3)

    first = run_batch(settings, classifier=FakeClassifier({"zz": '{"label": "negative"}'}))
    again = run_batch(settings, classifier=FakeClassifier())

    assert sorted(d.comment_id for d in first.decisions) == sorted(ids)
    assert first.counts()["approved"] == len(ids) - 1
    assert (again.counts()["considered"], again.skipped) == (0, 1)
    audited = read_table(db_url, "SELECT comment_id, outcome FROM moderation_decisions")
    assert sorted(audited) == sorted((i, "held" if i == "zz-9" else "approved") for i in ids)


def _binary_collation(url: str) -> str | None:
    # Keys that differ only in case need a case-sensitive column on MySQL, as a real site has.
    return "utf8mb4_bin" if url.startswith("mysql") else None
