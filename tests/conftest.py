"""Shared fixtures: databases (SQLite always; PostgreSQL and MariaDB when configured).

PostgreSQL tests read MODERATION_TEST_POSTGRES_URL, MariaDB/MySQL tests
MODERATION_TEST_MYSQL_URL, and skip with that reason when it is unset; `.ci/run` always sets
both. Each test gets its own schema (PostgreSQL) or database (MySQL), so tests never see each
other's rows and parallel runs never collide.

The folders say what kind a test is, and the tests in two of them carry a marker of the
folder's name: ``unit`` (in-process), ``process`` (marker ``process``: runs `moderate` or other
child processes), ``backends`` (suites that exist for PostgreSQL and MariaDB; SQLite alone when
neither is configured), ``live`` (marker ``live``: a real model or a browser). The quick loop is
``python -m pytest -m "not process and not live"``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import stamina

from tests.fakeollama import FakeOllama
from tests.helpers import (
    MYSQL_ENV,
    PG_ENV,
    REALMODEL_ENV,
    mysql_base_url,
    postgres_base_url,
    psycopg_url,
)
from tests.notifyservers import SmtpServer, Webhook

# tests/<folder>/... -> the marker every test in it carries.
FOLDER_MARKERS = {"process": "process", "live": "live"}
TESTS = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder, before ``-m`` selects."""
    for item in items:
        parts = item.path.relative_to(TESTS).parts if item.path.is_relative_to(TESTS) else ()
        marker = FOLDER_MARKERS.get(parts[0]) if len(parts) > 1 else None
        if marker is not None:
            item.add_marker(marker)


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
def ollama_rules() -> list[dict[str, Any]]:
    """The rules the module's test server answers by; a module that needs some overrides this."""
    return []


@pytest.fixture(scope="module")
def ollama_settings() -> dict[str, Any]:
    """Settings set back on the module's test server before each test (``FakeOllama.configure``
    keywords); a module that needs some overrides this."""
    return {}


@pytest.fixture(scope="module")
def server(ollama_rules: list[dict[str, Any]]) -> Iterator[FakeOllama]:
    """An Ollama-compatible test server shared by a module, answering by ``ollama_rules``."""
    with FakeOllama(models={"sentiments": None}, rules=ollama_rules) as fake:
        yield fake


@pytest.fixture
def ollama(
    server: FakeOllama, ollama_rules: list[dict[str, Any]], ollama_settings: dict[str, Any]
) -> FakeOllama:
    """The module's server before each test: ``ollama_rules`` again, ``ollama_settings`` (only
    the keys named there are set back; others keep what an earlier test left), fresh
    statistics."""
    server.configure(rules=ollama_rules, **ollama_settings, reset_stats=True)
    return server


@pytest.fixture
def postgres_url() -> Iterator[str]:
    base = postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    # No pool: a test may terminate every backend, and teardown must still get a connection.
    engine = sa.create_engine(psycopg_url(base), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    yield f"{psycopg_url(base)}{separator}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


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


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A JSON webhook receiver on 127.0.0.1 (Apprise's ``json://``)."""
    with Webhook() as receiver:
        yield receiver


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1 without TLS, accepting the login ``mod``/``s3cr3t-mail``."""
    with SmtpServer("mod", "s3cr3t-mail") as server:
        yield server
