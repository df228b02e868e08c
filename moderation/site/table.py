"""The site's own comments table: reflected, never altered, written only through one UPDATE.

Names come from the settings (or a preset), so a site's existing table (``wp_comments`` with a
status string, Isso's integer ``mode``, a boolean ``approved``) works as it is.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from moderation.site.rows import SiteRow

from moderation.comment import Comment, Page, read_comment
from moderation.errors import SchemaError
from moderation.settings import Settings
from moderation.site.authors import AuthorRecords
from moderation.site.companions import SiteCompanions
from moderation.site.deletion import delete_or_blank
from moderation.site.key import site_key
from moderation.site.status import (
    StatusValues,
    body_type_problem,
    check_flag_column,
    coerce_status,
    python_type,
    status_values,
)
from moderation.storage.engines import read_transaction, snapshot_transaction, translate_errors
from moderation.storage.memory import Remembered
from moderation.storage.tables import comment_state


class CommentsTable:
    """Queries on the site's table, built once from the reflected columns."""

    # Approvals commit with their audit rows, in the batch's transaction.
    writes_in_transaction = True
    # ... so a write's result is always known (see site.protocol).
    unsure: frozenset[str] = frozenset()

    def __init__(
        self, table: sa.Table, settings: Settings, companions: SiteCompanions | None = None
    ) -> None:
        self.table = table
        # What the system writes beside the status (see companions.py); nothing by default.
        self.companions = companions or SiteCompanions.none()
        self.kind = self.companions.type_column(table)
        # What the tool's memory, audit rows, outcomes and lease of this site are keyed by.
        self.site = site_key(settings)
        self.id = table.c[settings.comments_id_column]
        self.body = table.c[settings.comments_body_column]
        self.approved = table.c[settings.comments_approved_column]
        self.removed = (
            None
            if settings.comments_removed_column is None
            else table.c[settings.comments_removed_column]
        )
        problem = body_type_problem(self.body)
        if problem:
            raise SchemaError(
                f"the body column {self.body.name!r} (MODERATION_COMMENTS_BODY_COLUMN) {problem}"
            )
        if self.removed is not None:
            check_flag_column(self.removed)
        self.values: StatusValues = status_values(self.approved, settings)
        self.pending_value: Any = self.values.pending
        self.approved_value: Any = self.values.approved
        self.rejected_values: list[Any] = [
            coerce_status(self.approved, value) for value in settings.comments_rejected_values
        ]

        # Set by the comment system itself, not by a human (see ``moderation.site.presets``).
        self.system_values: list[Any] = [
            coerce_status(self.approved, value) for value in settings.comments_system_values
        ]
        self.purges_pending = settings.comments_purges_pending
        # Who wrote each comment, where the table says (see site.authors); None where not.
        self.authors = AuthorRecords.of(self, settings)

    @property
    def rejected_value(self) -> Any:
        """What a human's "Reject" writes to the status column: the first rejected value."""
        return self.rejected_values[0] if self.rejected_values else None

    @classmethod
    def reflect(cls, engine: Engine, settings: Settings) -> CommentsTable:
        name = settings.comments_table
        with translate_errors(engine):
            inspector = sa.inspect(engine)
            if not inspector.has_table(name):
                raise SchemaError(
                    f"the comments table {name!r} does not exist in "
                    f"{settings.safe_database_url} (set MODERATION_COMMENTS_TABLE or "
                    "MODERATION_PRESET, or run `moderate import FILE.jsonl` to create one)"
                )
            table = sa.Table(name, sa.MetaData(), autoload_with=engine)
        wanted = {
            "MODERATION_COMMENTS_ID_COLUMN": settings.comments_id_column,
            "MODERATION_COMMENTS_BODY_COLUMN": settings.comments_body_column,
            "MODERATION_COMMENTS_APPROVED_COLUMN": settings.comments_approved_column,
            "MODERATION_COMMENTS_REMOVED_COLUMN": settings.comments_removed_column,
        }
        missing = [
            f"{col!r} ({var})"
            for var, col in wanted.items()
            if col is not None and col not in table.c
        ]
        if missing:
            raise SchemaError(
                f"the comments table {name!r} has no column {', '.join(missing)}; "
                f"its columns are {', '.join(table.c.keys())}"
            )
        return cls(table, settings, SiteCompanions.reflect(engine, table, settings))

    @property
    def is_pending(self) -> sa.ColumnElement[bool]:
        pending = self.approved == sa.literal(self.pending_value, self.approved.type)
        if self.removed is None:
            return pending
        return sa.and_(pending, self.removed.is_not(sa.true()))

    @property
    def held_types(self) -> tuple[str, ...]:
        """Kinds of rows (the type column's values) never approved unread: WordPress's pings."""
        return self.companions.held_types

    @property
    def can_reject(self) -> bool:
        """Whether the mapping names a state meaning "a human rejected it"."""
        return self.removed is not None or self.rejected_value is not None

    def parse_id(self, key: str) -> Any:
        """A comment id from a form or URL as the id column's type; ValueError if it is not one.

        An integer id is plain ASCII digits (no "²", "1_0" or spaces, which ``int`` would take
        or choke on) within a signed 64-bit integer, the widest any database stores.
        """
        if python_type(self.id) is not int:
            return key
        if not _INTEGER_ID.fullmatch(key):
            raise ValueError(f"not an integer id: {key[:40]!r}")
        value = int(key)
        if not -(2**63) <= value < 2**63:
            raise ValueError("an integer id beyond 64 bits")
        return value

    def pending_pages(
        self, engine: Engine, page_size: int, remembered: Remembered | None = None
    ) -> Iterator[Page]:
        """Pending comments in id order, one page per short read transaction (keyset paging).

        Keyset rather than OFFSET: each page is an index range scan however deep the backlog,
        and rows approved meanwhile do not shift the pages. Text ids work the same way: the
        comparison and the ORDER BY use the same collation.

        With ``remembered``, the rows memory would skip are joined to their memory in the
        database and only counted: a rerun over a backlog of decided comments reads none of
        their texts (where the database can hash a text as ``comment.text_hash`` does).
        """
        kind = self.kind if self.kind is not None else sa.null()
        source: sa.FromClause = self.table
        skipped: sa.ColumnElement[Any] = sa.false()
        sql = None if remembered is None else self._key_and_hash(engine)
        if sql is not None:
            assert remembered is not None
            source, skipped = remembered.outerjoin(self.table, *sql)
        # Rows memory skips are only counted: while most rows are skipped, read many per
        # query (up to SKIPPING_ROWS), then cut pages of at most ``page_size`` comments to read
        # from them; a page's worth at a time again once most are to be read, so that memory
        # holds no more texts than a page's. Where the database numbers rows (window
        # functions), a skipped row does not even leave it, but for the query's last.
        limit = page_size
        numbered = sql is not None and _numbers_rows(engine)
        after: Any = None
        while True:
            chunk = (
                sa.select(
                    self.id.label("id"),
                    sa.case((skipped, sa.null()), else_=self.body).label("body"),
                    kind.label("kind"),
                    skipped.label("skipped"),
                )
                .select_from(source)
                .where(self.is_pending)
            )
            if after is not None:
                chunk = chunk.where(self.id > after)
            chunk = chunk.order_by(self.id).limit(limit)
            rows: Sequence[Sequence[Any]]
            with read_transaction(engine) as conn:
                if numbered:
                    rows = conn.execute(_only_read_and_last(chunk)).all()
                else:
                    plain = conn.execute(chunk).all()
                    rows = [(*row, n, len(plain)) for n, row in enumerate(plain, start=1)]
            if not rows:
                return
            for page in _cut_pages(rows, page_size, after):
                yield self.with_authors(engine, page)
            if rows[-1][5] < limit:
                return
            after = rows[-1][0]
            if sql is not None:
                read = sum(1 for row in rows if not row[3])
                mostly_skipped = read < limit // 2
                limit = (
                    min(limit * 4, max(page_size, SKIPPING_ROWS)) if mostly_skipped else page_size
                )

    def with_authors(self, engine: Engine, page: Page) -> Page:
        """The page with each comment's author record, read in one query for the page."""
        if self.authors is None or not page.comments:
            return page
        with read_transaction(engine) as conn:
            records = self.authors.read(conn, [c.id for c in page.comments])
        comments = [replace(c, author=records.get(c.id)) for c in page.comments]
        return replace(page, comments=comments)

    def count_if_all_skipped(self, engine: Engine, remembered: Remembered) -> int | None:
        """How many comments are pending when ``remembered`` skips every one of them; None
        when one is to be read, or where the database cannot hash a text.

        The newest pending comment is looked at first, so that the usual new comment ends the
        question at once; then the comments memory skips are counted against the pending ones,
        in the same snapshot, so that both counts are of the very same rows.
        """
        sql = self._key_and_hash(engine)
        if sql is None:
            return None
        key, text_hash = sql
        newest = sa.select(sa.func.max(self.id)).where(self.is_pending).scalar_subquery()
        source, skipped = remembered.outerjoin(self.table, key, text_hash)
        newest_to_read = (
            sa.select(self.id)
            .select_from(source)
            .where(self.id == newest, self.is_pending, sa.not_(skipped))
        )
        pending = sa.select(sa.func.count()).select_from(self.table).where(self.is_pending)
        skipped_count = (
            sa.select(sa.func.count())
            .select_from(self.skipped_by(engine, remembered, key, text_hash))
            .where(self.is_pending)
        )
        with snapshot_transaction(engine) as conn:
            if conn.execute(newest_to_read).first() is not None:
                return None
            total = int(conn.execute(pending).scalar_one())
            return total if conn.execute(skipped_count).scalar_one() == total else None

    def skipped_by(
        self,
        engine: Engine,
        remembered: Remembered,
        key: sa.ColumnElement[Any],
        text_hash: sa.ColumnElement[Any],
    ) -> sa.Join:
        """This table JOIN the memory rows that skip its comments: one row per comment."""
        lookup = None
        if engine.dialect.name == "sqlite" and python_type(self.id) is int:
            # Memory's rows walked, each comment found by its integer id (a rowid lookup):
            # cheaper on SQLite than looking each comment's memory up by its text key.
            lookup = self.id == sa.cast(comment_state.c.comment_id, sa.Integer)
        return remembered.skipped(self.table, key, text_hash, lookup)

    def pending_texts(self, engine: Engine, after: Any, upto: Any) -> Iterator[str]:
        """The texts of the pending comments with ids after ``after`` (None: from the first)
        up to ``upto``, in pages: what the flood rule counts of pages read unread."""
        while True:
            query = sa.select(self.id, self.body).where(self.is_pending, self.id <= upto)
            if after is not None:
                query = query.where(self.id > after)
            query = query.order_by(self.id).limit(TEXT_PAGE)
            with read_transaction(engine) as conn:
                rows = conn.execute(query).all()
            for row in rows:
                comment = read_comment(row[0], row[1])
                if comment.problem is None:
                    yield comment.body
            if len(rows) < TEXT_PAGE:
                return
            after = rows[-1][0]

    def _key_and_hash(
        self, engine: Engine
    ) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]] | None:
        """Each row's key as the tool's tables store it (``str(id)``) and its text's SHA-256 in
        hex (``comment.text_hash``), as SQL; None where the database or the id type cannot."""
        dialect = engine.dialect.name
        id_type = python_type(self.id)
        if id_type not in (int, str):
            return None  # str() of other types (dates, decimals) need not match the SQL's
        if dialect == "sqlite":
            # moderation_sha256 is registered on every SQLite connection (storage.engines);
            # it hashes the stored bytes, which are the text's UTF-8.
            key: sa.ColumnElement[Any] = self.id if id_type is str else sa.cast(self.id, sa.String)
            return key, sa.func.moderation_sha256(sa.cast(self.body, sa.LargeBinary))
        if dialect == "postgresql":
            version = engine.dialect.server_version_info or (0,)
            if version < (11,):
                return None  # sha256() is PostgreSQL 11's
            key = self.id if id_type is str else sa.cast(self.id, sa.String)
            digest = sa.func.sha256(_utf8_bytes(self.body, dialect))
            return key, sa.func.encode(digest, sa.literal_column("'hex'"))
        if dialect in ("mysql", "mariadb"):
            # In the collation of the tool's key column (utf8mb4_bin, storage.tables): equal
            # exactly as Python's strings are, and its primary key still serves the lookup.
            from sqlalchemy.dialects.mysql import CHAR

            key = sa.cast(self.id, CHAR(charset="utf8mb4")).collate("utf8mb4_bin")
            return key, sa.func.sha2(_utf8_bytes(self.body, dialect), 256)
        return None

    def current_rows(self, conn: Connection | None, keys: Sequence[str]) -> dict[str, SiteRow]:
        """The rows that still exist among ``keys``, as the table holds them now."""
        from moderation.site.rows import SiteStates

        assert conn is not None
        return SiteStates(self).lookup(conn, keys)

    def count_pending(self, engine: Engine) -> int:
        """How many comments are pending now (for a progress total; one COUNT query)."""
        query = sa.select(sa.func.count()).select_from(self.table).where(self.is_pending)
        with read_transaction(engine) as conn:
            return int(conn.execute(query).scalar_one())

    def approve(self, conn: Connection | None, comments: Sequence[Comment]) -> set[str]:
        """Approve those still pending with the body they were classified on; return their keys."""
        assert conn is not None
        approved = sa.literal(self.approved_value, self.approved.type)
        done = self._update_if_unchanged(
            conn, comments, {self.approved: approved}, self.approved == approved
        )
        self.companions.approved(conn, self, [c.id for c in comments if c.key in done])
        return done

    def reject(self, conn: Connection | None, comments: Sequence[Comment]) -> set[str]:
        """Reject those still pending and unchanged: the first rejected value, else the flag;
        where the system deletes rejected comments (Isso), as its own delete does."""
        assert conn is not None
        if self.rejected_value is not None:
            rejected = sa.literal(self.rejected_value, self.approved.type)
            if self.companions.spec.deletion is not None:
                done = delete_or_blank(self, conn, comments)
            else:
                done = self._update_if_unchanged(
                    conn, comments, {self.approved: rejected}, self.approved == rejected
                )
        elif self.removed is not None:
            done = self._update_if_unchanged(
                conn, comments, {self.removed: sa.true()}, self.removed.is_(sa.true())
            )
        else:
            raise ValueError("the comments mapping has no rejected state")
        ids = [c.id for c in comments if c.key in done]
        self.companions.rejected(conn, self, ids, self.pending_value, self.rejected_value)
        return done

    def unchanged(self, conn: Connection) -> sa.ColumnElement[bool]:
        """The edit guard, for one row: its id (``_id``), still pending, its body the bytes
        that were judged (``_body``); see ``guard_params``."""
        return sa.and_(
            self.id == sa.bindparam("_id"),
            self.is_pending,
            _utf8_bytes(self.body, conn.dialect.name)
            == sa.bindparam("_body", type_=sa.LargeBinary),
        )

    @staticmethod
    def guard_params(comment: Comment) -> dict[str, Any]:
        return {"_id": comment.id, "_body": comment.body.encode("utf-8", "surrogatepass")}

    def _update_if_unchanged(
        self,
        conn: Connection,
        comments: Sequence[Comment],
        values: dict[Any, Any],
        written: sa.ColumnElement[bool],
    ) -> set[str]:
        """Write ``values`` on the rows still pending with the body that was judged.

        The WHERE clause is the safety: a comment approved, rejected or edited since it was
        read is left alone, so a decision never applies to text its judge did not see. The body
        is compared as bytes, never through the column's collation (MySQL's defaults ignore
        case and trailing spaces). Returns the keys of the rows that now hold the new state.
        """
        comments = [c for c in comments if c.problem is None]
        if not comments:
            return set()
        statement = sa.update(self.table).where(self.unchanged(conn)).values(values)
        params = [self.guard_params(c) for c in comments]
        together_bytes = sum(len(p["_body"]) for p in params)
        if (
            conn.dialect.name in ("mysql", "mariadb")
            and len(comments) > 1
            and together_bytes <= MAX_TOGETHER_BYTES
        ):
            # PyMySQL sends an executemany UPDATE as one statement per row, a round trip and
            # the driver's pure-Python work each: one UPDATE for the chunk instead, the same
            # conditions as row values (the plain id list keeps the primary-key lookup).
            # Only when some row no longer matched, row by row.
            together = (
                sa.update(self.table)
                .where(
                    self.id.in_([p["_id"] for p in params]),
                    self.is_pending,
                    sa.tuple_(self.id, _utf8_bytes(self.body, conn.dialect.name)).in_(
                        [(p["_id"], p["_body"]) for p in params]
                    ),
                )
                .values(values)
            )
            savepoint = conn.begin_nested()
            if conn.execute(together).rowcount == len(comments):
                savepoint.commit()
                return self._now_holding(conn, comments, written)
            savepoint.rollback()
        elif conn.dialect.supports_sane_multi_rowcount and len(comments) > 1:
            # Fast path: one executemany. Only when some row no longer matched do we need to
            # know which, so undo it and go row by row.
            savepoint = conn.begin_nested()
            if conn.execute(statement, params).rowcount == len(comments):
                savepoint.commit()
                return self._now_holding(conn, comments, written)
            savepoint.rollback()
        matched = [
            c
            for c, p in zip(comments, params, strict=True)
            if conn.execute(statement, p).rowcount == 1
        ]
        return self._now_holding(conn, matched, written)

    def _now_holding(
        self, conn: Connection, comments: Sequence[Comment], written: sa.ColumnElement[bool]
    ) -> set[str]:
        """Of these, the ones whose row now holds the written state (in this same transaction).

        What the report and the audit trail call "approved" must be what the table holds: a
        matched row that a trigger or a type coercion left unchanged is not an approval.
        """
        if not comments:
            return set()
        query = sa.select(self.id).where(self.id.in_([c.id for c in comments]), written)
        return {str(row[0]) for row in conn.execute(query)}


# The most body bytes sent in one UPDATE for a chunk (MySQL/MariaDB): far below the smallest
# default max_allowed_packet (4 MiB on MySQL 5.7, 16 MiB on MariaDB), escapes included.
MAX_TOGETHER_BYTES = 1024 * 1024


def _numbers_rows(engine: Engine) -> bool:
    """Whether the database has window functions (SQLite 3.25, MariaDB 10.2, MySQL 8)."""
    dialect = engine.dialect
    version = dialect.server_version_info or (0,)
    if dialect.name == "sqlite":
        return sqlite3.sqlite_version_info >= (3, 25)
    if dialect.name in ("mysql", "mariadb"):
        return version >= ((10, 2) if getattr(dialect, "is_mariadb", False) else (8, 0))
    return True


def _only_read_and_last(chunk: sa.Select[Any]) -> sa.Select[Any]:
    """The rows of ``chunk`` to read, and its last row whatever it is, each with its place in
    the chunk (``n``) and the chunk's size (``total``): the skipped rows are counted from the
    gaps between places, in the database."""
    rows = chunk.subquery("chunk")
    places = sa.select(
        rows,
        sa.func.row_number().over(order_by=rows.c.id).label("n"),
        sa.func.count().over().label("total"),
    ).subquery("places")
    return (
        sa.select(places)
        .where(sa.or_(sa.not_(places.c.skipped), places.c.n == places.c.total))
        .order_by(places.c.id)
    )


def _cut_pages(rows: Sequence[Sequence[Any]], page_size: int, after: Any) -> Iterator[Page]:
    """Pages of at most ``page_size`` comments to read, from one chunk's rows: (id, body,
    kind, skipped, place, chunk size), with places missing where skipped rows were left out."""
    comments: list[Comment] = []
    skipped_rows = 0
    place = 0
    for comment_id, body, kind, skipped, n, _ in rows:
        skipped_rows += n - place - 1  # the skipped rows left out before this one
        place = n
        if skipped:
            skipped_rows += 1
            continue
        comments.append(read_comment(comment_id, body, kind=kind))
        if len(comments) == page_size:
            yield Page(comments, skipped_rows, after, comment_id)
            after, comments, skipped_rows = comment_id, [], 0
    if comments or skipped_rows:
        yield Page(comments, skipped_rows, after, rows[-1][0])


# Rows per query when memory's skipped rows are left out in the query (pending_pages).
SKIPPING_ROWS = 5000
# Rows per query when reading texts only (pending_texts).
TEXT_PAGE = 2000

_INTEGER_ID = re.compile(r"-?[0-9]{1,20}")


def _utf8_bytes(column: sa.Column[Any], dialect: str) -> sa.ColumnElement[Any]:
    """The column's text as UTF-8 bytes, so that ``=`` compares bytes on every database."""
    if dialect in ("mysql", "mariadb"):
        return sa.cast(
            sa.func.convert(column.op("USING")(sa.literal_column("utf8mb4"))), sa.LargeBinary
        )
    if dialect == "postgresql":
        return sa.func.convert_to(column, sa.literal_column("'UTF8'"))
    return sa.cast(column, sa.LargeBinary)
