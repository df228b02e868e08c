"""The record of each pending comment's author, read from the site's own table.

Who wrote a comment is in the columns the preset (or the ``MODERATION_COMMENTS_AUTHOR_*``
settings) names: an account, a name, an e-mail address, an IP address. A pending comment's
record counts the same author's approved, rejected and other pending comments, for a whole page
of pending comments in one query.

Matching follows the direction of the risk:

- what makes the tool more careful (a rejected or another pending comment) matches by account,
  or by e-mail, or by IP: a spammer who changes their name is still found;
- what would count an author as known (an approved comment) matches only by account, or, for a
  comment without one, by name and e-mail together, as WordPress's ``check_comment()`` does:
  a regular's e-mail written under another name is not the regular.

So a borrowed e-mail can only get a comment held, never spare it a rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from moderation.comment import AuthorRecord
from moderation.settings import Settings
from moderation.site.status import python_type

if TYPE_CHECKING:
    from moderation.site.table import CommentsTable

# Account values that name no account: WordPress's 0 for a visitor, Commento's "anonymous".
_NO_ACCOUNT = ("", "0", "anonymous")
_UNITS = {"h": "hour", "d": "day", "w": "week"}
_DURATION = re.compile(r"^\s*(\d+)\s*([hdw])\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AuthorColumns:
    """The columns of the site's table that say who wrote a comment and when; any may be
    missing (None)."""

    account: str | None = None
    name: str | None = None
    email: str | None = None
    url: str | None = None
    ip: str | None = None
    date: str | None = None

    @classmethod
    def of(cls, table: sa.Table, settings: Settings) -> AuthorColumns | None:
        """The configured columns the table has; None when none of them tells an author."""

        def present(name: str | None) -> str | None:
            return name if name is not None and name in table.c else None

        found = cls(
            account=present(settings.comments_author_account_column),
            name=present(settings.comments_author_name_column),
            email=present(settings.comments_author_email_column),
            url=present(settings.comments_author_url_column),
            ip=present(settings.comments_author_ip_column),
            date=present(settings.comments_date_column),
        )
        if found.account is None and found.email is None and found.ip is None:
            return None  # nothing to match an author by (a name alone is anyone's)
        return found


class AuthorRecords:
    """Reads the records of a page of pending comments, one query per page."""

    def __init__(
        self,
        comments: CommentsTable,
        columns: AuthorColumns,
        window: str,
        span: timedelta | None,
        now: datetime | None = None,
    ) -> None:
        self.comments = comments
        self.columns = columns
        self.window = window
        self.span = span
        self._now = now  # a fixed "now", for tests; the clock otherwise

    @classmethod
    def of(cls, comments: CommentsTable, settings: Settings) -> AuthorRecords | None:
        columns = AuthorColumns.of(comments.table, settings)
        if columns is None:
            return None
        return cls(comments, columns, settings.author_window, settings.author_window_span)

    def read(self, conn: Connection, ids: Sequence[Any]) -> dict[Any, AuthorRecord]:
        """The record of each of the comments ``ids`` (the site's id values), by id."""
        if not ids:
            return {}
        query, window = self.query(ids)
        records = {}
        for comment_id, approved, rejected, pending in conn.execute(query):
            records[comment_id] = AuthorRecord(
                approved=int(approved or 0),
                rejected=int(rejected or 0),
                pending=int(pending or 0),
                first_comment=not approved,
                window=window,
            )
        return records

    def query(self, ids: Sequence[Any]) -> tuple[sa.Select[Any], str | None]:
        """The page's records as one SELECT (each pending comment joined to the rows by the
        same author), and the window its rejected count covers."""
        table = self.comments.table
        mine, other = table.alias("mine"), table.alias("other")
        key = self.comments.id.name

        def col(alias: sa.FromClause, name: str | None) -> sa.ColumnElement[Any] | None:
            return None if name is None else alias.c[name]

        account = _same(
            col(mine, self.columns.account), col(other, self.columns.account), _has_account
        )
        has_account = _has_account(col(mine, self.columns.account))
        email = _same_email(col(mine, self.columns.email), col(other, self.columns.email))
        ip = _same(col(mine, self.columns.ip), col(other, self.columns.ip))
        name = _same(col(mine, self.columns.name), col(other, self.columns.name))

        careful = sa.or_(*(m for m in (account, email, ip) if m is not None))
        # Known: by account where the comment has one; else by name and e-mail together.
        by_name = None if name is None or email is None else sa.and_(name, email)
        known_parts = []
        if account is not None:
            assert has_account is not None
            known_parts.append(sa.and_(has_account, account))
        if by_name is not None:
            known_parts.append(
                by_name if has_account is None else sa.and_(sa.not_(has_account), by_name)
            )
        known = sa.or_(*known_parts) if known_parts else sa.false()

        status = other.c[self.comments.approved.name]
        removed = None if self.comments.removed is None else other.c[self.comments.removed.name]
        not_removed = sa.true() if removed is None else removed.is_not(sa.true())
        approved = sa.and_(status == self._status(self.comments.approved_value), not_removed)
        pending = sa.and_(status == self._status(self.comments.pending_value), not_removed)
        rejected_parts = []
        if self.comments.rejected_values:
            rejected_parts.append(
                status.in_([self._status(v) for v in self.comments.rejected_values])
            )
        if removed is not None:
            rejected_parts.append(removed.is_(sa.true()))
        rejected = sa.or_(*rejected_parts) if rejected_parts else sa.false()
        window = None
        date = col(other, self.columns.date)
        if date is not None:
            since = self._since(date)
            if since is not None:
                rejected = sa.and_(rejected, date >= since)
                window = _phrase(self.window)

        def counted(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
            return sa.func.count(sa.case((condition, other.c[key]), else_=sa.null()))

        query = (
            sa.select(
                mine.c[key],
                counted(sa.and_(approved, known)),
                counted(sa.and_(rejected, careful)),
                counted(sa.and_(pending, careful)),
            )
            .select_from(
                mine.outerjoin(other, sa.and_(other.c[key] != mine.c[key], sa.or_(careful, known)))
            )
            .where(mine.c[key].in_(list(ids)))
            .group_by(mine.c[key])
        )
        return query, window

    def _status(self, value: Any) -> sa.ColumnElement[Any]:
        return sa.literal(value, self.comments.approved.type)

    def _since(self, date: sa.ColumnElement[Any]) -> Any:
        """The window's start in the date column's own terms (a date-time in UTC, or Unix
        seconds for a number column such as Isso's ``created``); None if it cannot be told."""
        if not self.span:
            return None
        start = (self._now or datetime.now(UTC)) - self.span
        kind = python_type(date)  # type: ignore[arg-type]
        if kind in (int, float):
            return sa.literal(start.timestamp(), date.type)
        if getattr(date.type, "timezone", False):
            return sa.literal(start, date.type)
        return sa.literal(start.replace(tzinfo=None), date.type)


def _has(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """The column holds a value (not NULL, and not empty where it is text)."""
    if python_type(column) is str:  # type: ignore[arg-type]
        return sa.and_(column.is_not(None), column != "")
    return column.is_not(None)


def _has_account(column: sa.ColumnElement[Any] | None) -> sa.ColumnElement[bool] | None:
    if column is None:
        return None
    kind = python_type(column)  # type: ignore[arg-type]
    if kind is int:
        return sa.and_(column.is_not(None), column != 0)
    if kind is str:
        return sa.and_(column.is_not(None), column.not_in(_NO_ACCOUNT))
    return column.is_not(None)


def _same(
    mine: sa.ColumnElement[Any] | None,
    other: sa.ColumnElement[Any] | None,
    present: Any = None,
) -> sa.ColumnElement[bool] | None:
    """The other row has this comment's value, where this comment has one."""
    if mine is None or other is None:
        return None
    return sa.and_((present or _has)(mine), other == mine)


def _same_email(
    mine: sa.ColumnElement[Any] | None, other: sa.ColumnElement[Any] | None
) -> sa.ColumnElement[bool] | None:
    """The same address in any case (WordPress's MySQL collations ignore case too)."""
    if mine is None or other is None:
        return None
    return sa.and_(_has(mine), sa.func.lower(other) == sa.func.lower(mine))


def _phrase(value: str) -> str:
    """``90d`` as "90 days", ``1w`` as "1 week"."""
    match = _DURATION.match(value)
    if match is None:
        return value
    count, unit = int(match.group(1)), _UNITS[match.group(2).lower()]
    return f"{count} {unit}{'' if count == 1 else 's'}"
