"""Engines, transactions and database error translation.

SQLite needs care to be a safe shared store: a busy timeout, and write transactions that take
the write lock up front (``BEGIN IMMEDIATE``): a deferred transaction that reads and then
writes can fail with SQLITE_BUSY without waiting. pysqlite's own transaction handling is
switched off so that SQLAlchemy's BEGIN is the one used.

WAL (readers do not block the writer) is a property of the file, kept for good, and it adds
``-wal``/``-shm`` files beside it: the tool switches to it only on a database file it creates
itself (absent or empty when the engine is made, e.g. ``moderate import``'s new file). A
site's own file (Isso's ``comments.db``) keeps the journal mode its owner chose; the busy
timeout covers the waits of a rollback journal.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url

from moderation.errors import ConfigurationError, DatabaseError
from moderation.redact import redact, redact_url

log = logging.getLogger(__name__)

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE = "moderation_write"


# The drivers the extras install; SQLAlchemy's bare defaults (psycopg2, mysqlclient) are not.
_DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}
_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}
# The package each extra brings, as pip names it: the project itself is on no package index.
_DRIVER_PACKAGES = {"postgres": "'psycopg[binary]'", "mysql": "pymysql"}


@contextmanager
def connected(url: str, *, read_only: bool = False, must_exist: bool = False) -> Iterator[Engine]:
    """``create_engine`` for the length of a ``with`` block, its pool closed at the end."""
    engine = create_engine(url, read_only=read_only, must_exist=must_exist)
    try:
        yield engine
    finally:
        engine.dispose()


def create_engine(url: str, *, read_only: bool = False, must_exist: bool = False) -> Engine:
    """An engine for ``url``; ``read_only`` (dry runs) makes the database refuse every write.

    ``must_exist``: a SQLite file that is not there is an error rather than a new empty
    database (SQLite creates the file on connect): a mistyped path must not look like a site
    with no comments, and a dry run must not leave a file behind.
    """
    parsed = make_url(url)
    if must_exist:
        require_existing_sqlite_file(parsed)
    if parsed.drivername in _DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=_DEFAULT_DRIVERS[parsed.drivername])
    backend = parsed.get_backend_name()
    options: dict[str, Any] = {"pool_pre_ping": True}
    if backend in ("mysql", "mariadb"):
        # Comments are any Unicode (emoji too): utf8mb4, never the 3-byte `utf8`.
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        options["isolation_level"] = "REPEATABLE READ"
    try:
        engine = sa.create_engine(parsed, **options)
    except ImportError as exc:
        extra = _EXTRAS.get(backend)
        hint = (
            f": pip install {_DRIVER_PACKAGES[extra]} (the checkout's `{extra}` extra: "
            f"pip install '.[{extra}]')"
            if extra
            else ""
        )
        raise ConfigurationError(
            f"the {parsed.get_driver_name()} driver for {backend} is not installed{hint}"
        ) from exc
    except sa.exc.ArgumentError as exc:
        where = redact_url(parsed.render_as_string(hide_password=False))
        raise ConfigurationError(f"cannot use database {where}: {redact(str(exc))}") from exc
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, read_only, wal=not read_only and _creates_file(parsed))
    elif read_only and engine.dialect.name == "postgresql":
        engine = engine.execution_options(postgresql_readonly=True)
    elif read_only:
        _configure_mysql_read_only(engine)
    return engine


# What creates the tool's database, for the message that says it does not exist.
CREATED_BY = "`moderate import` and `moderate db upgrade` create one"


def require_existing_sqlite_file(url: sa.URL, created_by: str = CREATED_BY) -> None:
    """Refuse a SQLite file that is not there (connecting would create it): only the commands
    that make the tool's database may; every other one leaves no file behind."""
    if not url.drivername.startswith("sqlite"):
        return
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or "uri" in url.query:
        return
    if not Path(database).is_file():
        raise ConfigurationError(
            f"the SQLite database {database} does not exist (check MODERATION_DATABASE_URL; "
            f"{created_by})"
        )


def _configure_mysql_read_only(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET SESSION TRANSACTION READ ONLY")
        cursor.close()


def _creates_file(url: sa.URL) -> bool:
    """Whether connecting creates this SQLite file (or fills an empty one): only then is the
    file the tool's own, to put in WAL mode."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or "uri" in url.query:
        return False
    path = Path(database)
    return not path.exists() or (path.is_file() and path.stat().st_size == 0)


# Copied for each text: hashlib.sha256() looks its algorithm up by name in OpenSSL on every
# call (8% of the time a short comment takes), and a rerun hashes every pending one.
_EMPTY_SHA256 = hashlib.sha256()


def _sha256_hex(value: object) -> str | None:
    """SHA-256 of a blob, in hex (``comment.text_hash`` of a text's UTF-8 bytes)."""
    if not isinstance(value, bytes):
        return None
    digest = _EMPTY_SHA256.copy()
    digest.update(value)
    return digest.hexdigest()


def _configure_sqlite(engine: Engine, read_only: bool, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself
        # A site's SQLite file may hold bytes that are not UTF-8; decode them lossily instead
        # of failing the whole page. Such a body never matches in the approval UPDATE, so the
        # comment fails closed and stays pending for a human.
        # (A partial of the C method, not a lambda: it runs for every text value read.)
        dbapi_connection.text_factory = functools.partial(
            bytes.decode, encoding="utf-8", errors="replace"
        )
        # The text hash in SQL, for leaving out comments decided before (site.table).
        dbapi_connection.create_function("moderation_sha256", 1, _sha256_hex, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if read_only:
            # Even switching to WAL rewrites the file header: a dry run must not.
            cursor.execute("PRAGMA query_only = ON")
        elif wal:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    with translate_errors(engine), engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def snapshot_transaction(engine: Engine) -> Iterator[Connection]:
    """A read transaction whose statements all see one snapshot of the database.

    SQLite's read transaction already does (WAL keeps its snapshot; a rollback journal's
    shared lock keeps writers out); the servers are asked for REPEATABLE READ.
    """
    options = {} if engine.dialect.name == "sqlite" else {"isolation_level": "REPEATABLE READ"}
    with translate_errors(engine), engine.connect() as raw:
        conn = raw.execution_options(**options)
        with conn.begin():
            yield conn


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    with translate_errors(engine), engine.connect() as raw:
        conn = raw.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


def run_write(engine: Engine, work: Callable[[Connection], T], attempts: int = 5) -> T:
    """Run ``work`` in one write transaction, retrying the whole transaction when locked.

    Retrying only the failed statement would be wrong: the transaction was rolled back.
    """
    for attempt in range(1, attempts + 1):
        try:
            with write_transaction(engine) as conn:
                return work(conn)
        except DatabaseError as exc:
            if attempt == attempts or not _is_lock_error(exc.__cause__):
                raise
            delay = min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5)
            log.warning("database is locked; retrying the transaction in %.2fs", delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


# MySQL/MariaDB: 1205 lock wait timeout, 1213 deadlock (InnoDB rolled the transaction back).
_MYSQL_RETRYABLE = {1205, 1213}


def _is_lock_error(exc: BaseException | None) -> bool:
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    args = getattr(exc.orig, "args", ())
    if args and args[0] in _MYSQL_RETRYABLE:
        return True
    text = str(exc.orig).lower()
    return "database is locked" in text or "database table is locked" in text or "busy" in text


@contextmanager
def translate_errors(engine: Engine) -> Iterator[None]:
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(describe_error(engine, exc)) from exc


def describe_error(engine: Engine, exc: sa.exc.SQLAlchemyError) -> str:
    """A one-line message with no SQL parameters (they hold comment text) and no password."""
    orig = getattr(exc, "orig", None) or exc
    first_line = (redact(str(orig)).strip().splitlines() or [type(orig).__name__])[0][:300]
    where = redact_url(engine.url.render_as_string(hide_password=False))
    return f"database error on {where}: {first_line}"
