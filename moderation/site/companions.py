"""What a ruling writes beside the comment's status, as the system's own moderation does.

A status column alone can leave a site inconsistent: WordPress shows a post's stale
``comment_count`` and never purges a trashed comment without its ``_wp_trash_meta_*`` rows;
django-contrib-comments' moderation records who approved or removed a comment in
``django_comment_flags``. The preset names these tables (``presets.Companions``); here they are
reflected once and written in the ruling's own transaction, so a ruling and its companions land
together or not at all.

A companion table the database does not have is left out with a warning (a WordPress site
always has its posts and comment meta; a table that only borrows WordPress's names has no
posts to count). The moderator named by MODERATION_DJANGO_MODERATOR_ID must exist: without
the flags table, or with no such user, the batch stops before it approves anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from moderation.errors import SchemaError
from moderation.settings import Settings
from moderation.site.presets import Companions, Flags, PostCounts, TrashMeta, preset_companions
from moderation.storage.engines import read_transaction

if TYPE_CHECKING:
    from moderation.site.table import CommentsTable

log = logging.getLogger(__name__)


class SiteCompanions:
    """The companion tables of one site, reflected, and the writes a ruling makes to them."""

    def __init__(
        self,
        spec: Companions,
        tables: dict[str, sa.Table],
        moderator: int | None = None,
    ) -> None:
        self.spec = spec
        self.tables = tables
        self.moderator = moderator

    @classmethod
    def none(cls) -> SiteCompanions:
        return cls(Companions(), {})

    @classmethod
    def reflect(cls, engine: Engine, comments: sa.Table, settings: Settings) -> SiteCompanions:
        spec = preset_companions(settings.preset, settings.table_prefix)
        inspector = sa.inspect(engine)
        tables: dict[str, sa.Table] = {}
        wanted: list[tuple[str, tuple[str, ...]]] = []
        if spec.post_counts is not None:
            counts = spec.post_counts
            wanted.append((counts.table, (counts.key, counts.count)))
        if spec.trash_meta is not None:
            meta = spec.trash_meta
            wanted.append((meta.table, (meta.comment, meta.key, meta.value)))
        flags = spec.flags if settings.django_moderator_id is not None else None
        if flags is not None:
            wanted.append((flags.table, (flags.comment, flags.user, flags.flag, flags.date)))
        for name, columns in wanted:
            table = _reflect(engine, inspector, name, columns)
            if table is not None:
                tables[name] = table
            elif flags is not None and name == flags.table:
                raise SchemaError(
                    f"MODERATION_DJANGO_MODERATOR_ID is set, but the table {name!r} with columns "
                    f"{', '.join(columns)} is not in {settings.safe_database_url}"
                )
            else:
                log.warning(
                    "the %s preset's table %r (columns %s) is not there: rulings leave it out",
                    settings.preset,
                    name,
                    ", ".join(columns),
                )
        if spec.post_counts is not None and spec.post_counts.post not in comments.c:
            tables.pop(spec.post_counts.table, None)
        if spec.type_column is not None and spec.type_column not in comments.c:
            spec = replace(spec, type_column=None, held_types=())
        if spec.deletion is not None and spec.deletion.parent not in comments.c:
            raise SchemaError(
                f"the comments table {comments.name!r} has no column {spec.deletion.parent!r}, "
                "which a rejection must check for replies"
            )
        found = cls(spec, tables, settings.django_moderator_id if flags is not None else None)
        if flags is not None:
            found.check_moderator(engine)
        return found

    # --- what the batch and the review page read --------------------------------------------

    def type_column(self, comments: sa.Table) -> sa.Column[Any] | None:
        name = self.spec.type_column
        return None if name is None else comments.c[name]

    @property
    def held_types(self) -> tuple[str, ...]:
        return self.spec.held_types if self.spec.type_column is not None else ()

    # --- writes, in the ruling's transaction -------------------------------------------------

    def approved(self, conn: Connection, comments: CommentsTable, ids: Sequence[Any]) -> None:
        if not ids:
            return
        self._recount(conn, comments, ids)
        self._flag(conn, ids, lambda f: f.approved)

    def rejected(
        self, conn: Connection, comments: CommentsTable, ids: Sequence[Any], before: Any, value: Any
    ) -> None:
        """``before``: the status the rows had (pending); ``value``: the one written."""
        if not ids:
            return
        self._trash_meta(conn, ids, before, value)
        self._recount(conn, comments, ids)
        self._flag(conn, ids, lambda f: f.rejected)

    def _recount(self, conn: Connection, comments: CommentsTable, ids: Sequence[Any]) -> None:
        """The approved comments of each post these belong to, counted as
        ``wp_update_comment_count_now`` counts them (status = approved value, nothing else)."""
        spec = self.spec.post_counts
        if spec is None or spec.table not in self.tables:
            return
        posts = self.tables[spec.table]
        post = comments.table.c[spec.post]
        post_ids = [
            row[0]
            for row in conn.execute(sa.select(post).where(comments.id.in_(ids)).distinct())
            if row[0]  # WordPress: a comment of no post (0) counts for nothing
        ]
        if not post_ids:
            return
        approved = comments.approved == sa.literal(comments.approved_value, comments.approved.type)
        count = (
            sa.select(sa.func.count())
            .select_from(comments.table)
            .where(post == posts.c[spec.key], approved)
            .scalar_subquery()
        )
        conn.execute(
            sa.update(posts).where(posts.c[spec.key].in_(post_ids)).values({spec.count: count})
        )

    def _trash_meta(self, conn: Connection, ids: Sequence[Any], before: Any, value: Any) -> None:
        """As ``wp_trash_comment``: drop any old pair, then the status before and the time."""
        spec = self.spec.trash_meta
        if spec is None or spec.table not in self.tables or str(value) not in spec.values:
            return
        meta = self.tables[spec.table]
        keys = (spec.status_key, spec.time_key)
        conn.execute(
            sa.delete(meta).where(meta.c[spec.comment].in_(ids), meta.c[spec.key].in_(keys))
        )
        now = str(int(time.time()))
        conn.execute(
            sa.insert(meta),
            [
                {spec.comment: comment_id, spec.key: key, spec.value: text}
                for comment_id in ids
                for key, text in ((spec.status_key, str(before)), (spec.time_key, now))
            ],
        )

    def _flag(self, conn: Connection, ids: Sequence[Any], which: Callable[[Flags], str]) -> None:
        """As django-contrib-comments' ``get_or_create``: one flag per (user, comment, flag)."""
        spec = self.spec.flags
        if spec is None or self.moderator is None or spec.table not in self.tables:
            return
        flags = self.tables[spec.table]
        flag = which(spec)
        existing = {
            row[0]
            for row in conn.execute(
                sa.select(flags.c[spec.comment]).where(
                    flags.c[spec.comment].in_(ids),
                    flags.c[spec.user] == self.moderator,
                    flags.c[spec.flag] == flag,
                )
            )
        }
        # Django keeps times in UTC (USE_TZ): aware where the column has a time zone, naive
        # UTC where it has none (SQLite, MySQL), never the database session's local time.
        date = flags.c[spec.date]
        now = datetime.now(UTC)
        if not getattr(date.type, "timezone", False):
            now = now.replace(tzinfo=None)
        rows = [
            {spec.comment: i, spec.user: self.moderator, spec.flag: flag, spec.date: now}
            for i in ids
            if i not in existing
        ]
        if rows:
            conn.execute(sa.insert(flags), rows)

    def check_moderator(self, engine: Engine) -> None:
        """The moderator must be a user: the flag's foreign key says in which table."""
        spec = self.spec.flags
        assert spec is not None and self.moderator is not None
        user = self.tables[spec.table].c[spec.user]
        for key in user.foreign_keys:
            target = key.column
            with read_transaction(engine) as conn:
                found = conn.execute(
                    sa.select(sa.func.count()).where(target == self.moderator)
                ).scalar_one()
            if not found:
                raise SchemaError(
                    f"MODERATION_DJANGO_MODERATOR_ID={self.moderator} names no row of "
                    f"{target.table.name!r}: set it to the id of the Django user who moderates"
                )


def _reflect(
    engine: Engine, inspector: Any, name: str, columns: tuple[str, ...]
) -> sa.Table | None:
    if not inspector.has_table(name):
        return None
    table = sa.Table(name, sa.MetaData(), autoload_with=engine, resolve_fks=True)
    return table if all(c in table.c for c in columns) else None


__all__ = ["Flags", "PostCounts", "SiteCompanions", "TrashMeta"]
