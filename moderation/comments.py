"""The site's own comments table: reflected, never altered, written only through one UPDATE.

Names come from the settings, so a site's existing table (``wp_comments`` with a status string,
a Rails ``comments`` table with a boolean) works as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .db import read_transaction, translate_errors
from .errors import SchemaError
from .settings import Settings


@dataclass(frozen=True, slots=True)
class Comment:
    id: Any  # the site's own id value, whatever its type
    body: str

    @property
    def key(self) -> str:
        """The id as stored in the tool's own tables."""
        return str(self.id)

    @property
    def text_hash(self) -> str:
        return text_hash(self.body)


def text_hash(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


class CommentsTable:
    """Queries on the site's table, built once from the reflected columns."""

    def __init__(self, table: sa.Table, settings: Settings) -> None:
        self.table = table
        self.id = table.c[settings.comments_id_column]
        self.body = table.c[settings.comments_body_column]
        self.approved = table.c[settings.comments_approved_column]
        removed = settings.comments_removed_column
        self.removed: sa.Column[Any] | None = None if removed is None else table.c[removed]
        self.rejected_values: list[Any] = []
        if settings.comments_pending_value is None:
            self.pending_value: Any = False
            self.approved_value: Any = True
        else:
            assert settings.comments_approved_value is not None
            self.pending_value = coerce_status(self.approved, settings.comments_pending_value)
            self.approved_value = coerce_status(self.approved, settings.comments_approved_value)
            self.rejected_values = [
                coerce_status(self.approved, value) for value in settings.comments_rejected_values
            ]

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
                    f"{settings.safe_database_url} (set MODERATION_COMMENTS_TABLE, "
                    "or run `moderate import FILE.jsonl` to create a default one)"
                )
            table = sa.Table(name, sa.MetaData(), autoload_with=engine)
        wanted = {
            "MODERATION_COMMENTS_ID_COLUMN": settings.comments_id_column,
            "MODERATION_COMMENTS_BODY_COLUMN": settings.comments_body_column,
            "MODERATION_COMMENTS_APPROVED_COLUMN": settings.comments_approved_column,
        }
        if settings.comments_removed_column is not None:
            wanted["MODERATION_COMMENTS_REMOVED_COLUMN"] = settings.comments_removed_column
        missing = [f"{col!r} ({var})" for var, col in wanted.items() if col not in table.c]
        if missing:
            raise SchemaError(
                f"the comments table {name!r} has no column {', '.join(missing)}; "
                f"its columns are {', '.join(table.c.keys())}"
            )
        return cls(table, settings)

    @property
    def is_pending(self) -> sa.ColumnElement[bool]:
        pending = self.approved == sa.literal(self.pending_value, self.approved.type)
        if self.removed is None:
            return pending
        return sa.and_(pending, sa.or_(self.removed.is_(None), self.removed == sa.false()))

    @property
    def can_reject(self) -> bool:
        """Whether the mapping names a state meaning "a human rejected it"."""
        return self.removed is not None or self.rejected_value is not None

    def parse_id(self, key: str) -> Any:
        """A comment id from a form or URL as the id column's type; ValueError if it is not one."""
        try:
            python_type = self.id.type.python_type
        except NotImplementedError:
            return key
        return int(key) if python_type is int else key

    def pending_pages(self, engine: Engine, page_size: int) -> Iterator[list[Comment]]:
        """Pending comments in id order, one page per short read transaction (keyset paging).

        Keyset rather than OFFSET: each page is an index range scan however deep the backlog,
        and rows approved meanwhile do not shift the pages.
        """
        last: Any = None
        while True:
            query = sa.select(self.id, self.body).where(self.is_pending)
            if last is not None:
                query = query.where(self.id > last)
            query = query.order_by(self.id).limit(page_size)
            with read_transaction(engine) as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            yield [Comment(row[0], row[1] if row[1] is not None else "") for row in rows]
            if len(rows) < page_size:
                return
            last = rows[-1][0]

    def approve(self, conn: Connection, comments: Sequence[Comment]) -> set[str]:
        """Approve those still pending with the body they were classified on; return their keys."""
        values = {self.approved: sa.literal(self.approved_value, self.approved.type)}
        return self._update_if_unchanged(conn, comments, values)

    def reject(self, conn: Connection, comments: Sequence[Comment]) -> set[str]:
        """Reject (removed flag, else the first rejected value) those still pending, unchanged."""
        if self.removed is not None:
            values = {self.removed: sa.literal(True, self.removed.type)}
        elif self.rejected_value is not None:
            values = {self.approved: sa.literal(self.rejected_value, self.approved.type)}
        else:
            raise ValueError("the comments mapping has no rejected state")
        return self._update_if_unchanged(conn, comments, values)

    def _update_if_unchanged(
        self, conn: Connection, comments: Sequence[Comment], values: dict[Any, Any]
    ) -> set[str]:
        """Write ``values`` on the rows still pending with the body that was judged.

        The WHERE clause is the safety: a comment approved, rejected or edited since it was
        read is left alone, so a decision never applies to text its judge did not see.
        """
        if not comments:
            return set()
        statement = (
            sa.update(self.table)
            .where(
                self.id == sa.bindparam("_id"),
                self.is_pending,
                self.body == sa.bindparam("_body"),
            )
            .values(values)
        )
        params = [{"_id": c.id, "_body": c.body} for c in comments]
        if conn.dialect.supports_sane_multi_rowcount and len(comments) > 1:
            # Fast path: one executemany. Only when some row no longer matched do we need to
            # know which, so undo it and go row by row.
            savepoint = conn.begin_nested()
            if conn.execute(statement, params).rowcount == len(comments):
                savepoint.commit()
                return {c.key for c in comments}
            savepoint.rollback()
        return {
            c.key
            for c, p in zip(comments, params, strict=True)
            if conn.execute(statement, p).rowcount == 1
        }

    def current(self, conn: Connection, comment_id: Any) -> CurrentRow | None:
        """The row as it is now (None when it is gone), to say what changed."""
        removed = sa.false() if self.removed is None else self.removed
        columns = [self.body, self.approved, self.is_pending, removed]
        row = conn.execute(sa.select(*columns).where(self.id == comment_id)).first()
        if row is None:
            return None
        body, status, pending, is_removed = row
        return CurrentRow(body if body is not None else "", status, bool(pending), bool(is_removed))


@dataclass(frozen=True, slots=True)
class CurrentRow:
    body: str
    status: Any
    pending: bool
    removed: bool


def coerce_status(column: sa.Column[Any], value: str) -> Any:
    """A configured status value as the column's Python type ('1' for an INTEGER column -> 1)."""
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return value
    if python_type is bool:
        return value.strip().lower() in {"1", "true", "t", "yes", "y"}
    if python_type is int:
        return int(value)
    return value
