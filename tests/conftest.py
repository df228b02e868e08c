"""Shared fixtures: databases (SQLite always; PostgreSQL and MariaDB when configured).

PostgreSQL tests read MODERATION_TEST_POSTGRES_URL, MariaDB/MySQL tests
MODERATION_TEST_MYSQL_URL, and skip with that reason when it is unset; `.ci/run` always sets
both. Each test gets its own schema (PostgreSQL) or database (MySQL), so tests never see each
other's rows and parallel runs never collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
import stamina

from moderation.settings import Settings
from tests.fakeollama import FakeOllama

PG_ENV = "MODERATION_TEST_POSTGRES_URL"
MYSQL_ENV = "MODERATION_TEST_MYSQL_URL"
# "required": the real-model tests fail instead of skipping when the model cannot run.
REALMODEL_ENV = "MODERATION_TEST_REALMODEL"


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    # Retries still happen (and are counted); only the back-off sleeps are skipped.
    stamina.set_testing(True, attempts=100, cap=True)
    yield
    stamina.set_testing(False)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Tests build their Settings explicitly; a developer's own variables must not leak in."""
    for name in list(os.environ):
        ours = name.startswith("MODERATION_") or name in ("OLLAMA_HOST", "OLLAMA_HOSTS")
        if ours and name not in (PG_ENV, MYSQL_ENV, REALMODEL_ENV):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file, and relative SQLite paths land here


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[FakeOllama]:
    """An Ollama-compatible test server shared by a module, answering by the module's RULES."""
    with FakeOllama(models={"sentiments": None}, rules=request.module.RULES) as fake:
        yield fake


@pytest.fixture
def ollama(server: FakeOllama, request: pytest.FixtureRequest) -> FakeOllama:
    """The module's server before each test: its RULES again, the module's OLLAMA_SETTINGS
    (only the keys named there are set back; others keep what an earlier test left), fresh
    statistics."""
    settings = getattr(request.module, "OLLAMA_SETTINGS", {})
    server.configure(rules=request.module.RULES, **settings, reset_stats=True)
    return server


def postgres_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://127.0.0.1/test)")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    base = postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    # No pool: a test may terminate every backend, and teardown must still get a connection.
    engine = sa.create_engine(_psycopg(base), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    yield f"{_psycopg(base)}{separator}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def mysql_base_url() -> str:
    url = os.environ.get(MYSQL_ENV)
    if not url:
        pytest.skip(
            f"MariaDB/MySQL tests need {MYSQL_ENV} (e.g. mysql+pymysql://root@127.0.0.1:3306/test)"
        )
    return url


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A database of its own for this test on the configured MariaDB/MySQL server."""
    base = sa.engine.make_url(mysql_base_url())
    if base.drivername == "mysql":
        base = base.set(drivername="mysql+pymysql")
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    yield base.set(database=name).render_as_string(hide_password=False)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name}")
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'site.db'}"


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mysql),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'site.db'}"
    if request.param == "mariadb":
        return str(request.getfixturevalue("mysql_url"))
    return str(request.getfixturevalue("postgres_url"))


def create_site_table(
    url: str,
    bodies: list[str],
    *,
    table: str = "comments",
    id_column: str = "id",
    body_column: str = "body",
    approved_column: str = "approved",
    status: tuple[str, str] | None = None,
    approved: set[int] | None = None,
) -> sa.Table:
    """A site's own comments table; `status` = (pending, approved) makes it a string column."""
    metadata = sa.MetaData()
    approved_type: sa.types.TypeEngine[Any] = sa.Boolean() if status is None else sa.String(8)
    site = sa.Table(
        table,
        metadata,
        sa.Column(id_column, sa.Integer, primary_key=True),
        sa.Column(body_column, sa.Text, nullable=False),
        sa.Column(approved_column, approved_type, nullable=False),
        sa.Column("author", sa.String(80)),
    )
    pending_value, approved_value = (False, True) if status is None else status
    approved_ids = approved or set()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        metadata.create_all(conn)
        if bodies:
            conn.execute(
                sa.insert(site),
                [
                    {
                        id_column: i,
                        body_column: body,
                        approved_column: approved_value if i in approved_ids else pending_value,
                    }
                    for i, body in enumerate(bodies, start=1)
                ],
            )
    engine.dispose()
    return site


def read_table(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(row) for row in conn.exec_driver_sql(query)]
    engine.dispose()
    return rows


def execute(url: str, *statements: str, rows: Sequence[tuple[str, dict[str, Any]]] = ()) -> None:
    """Run ``statements``, then each ``(insert, values)`` of ``rows``, in one transaction."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
        for insert, values in rows:
            conn.execute(sa.text(insert), values)
    engine.dispose()


def make_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": url, "http_transport": "httpx"}
    values.update(overrides)
    return Settings(**values)
