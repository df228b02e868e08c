"""A rejection that deletes, as Isso's own delete does (``isso/db/comments.py`` ``delete``).

Isso serves every row its thread API finds: a rejected comment kept with its text would be
served again. So a rejected comment is deleted; one that has replies (rows whose ``parent`` is
its id) is kept for them, with the rejected mode and its text, author and website blanked.
Then, as Isso's ``_remove_stale``, any rejected row left without replies is deleted too.

The edit guard holds as for any ruling: only a row still pending with the very text that was
judged is deleted or blanked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from moderation.comment import Comment

if TYPE_CHECKING:
    from moderation.site.table import CommentsTable


def delete_or_blank(
    comments: CommentsTable, conn: Connection, rejected: Sequence[Comment]
) -> set[str]:
    """Delete or blank each of these still pending and unchanged; return their keys."""
    deletion = comments.companions.spec.deletion
    assert deletion is not None
    rejected = [c for c in rejected if c.problem is None]
    if not rejected:
        return set()
    table = comments.table
    parent = table.c[deletion.parent]
    with_replies = {
        row[0]
        for row in conn.execute(
            sa.select(parent).where(parent.in_([c.id for c in rejected])).distinct()
        )
    }
    status = sa.literal(comments.rejected_value, comments.approved.type)
    blanked: dict[Any, Any] = {comments.approved: status}
    blanked.update({table.c[k]: v for k, v in deletion.blanked.items() if k in table.c})
    blank = sa.update(table).where(comments.unchanged(conn)).values(blanked)
    delete = sa.delete(table).where(comments.unchanged(conn))
    done: set[str] = set()
    for comment in rejected:
        statement = blank if comment.id in with_replies else delete
        if conn.execute(statement, comments.guard_params(comment)).rowcount == 1:
            done.add(comment.key)
    if done:
        _remove_stale(conn, comments, parent, status)
    return done


def _remove_stale(
    conn: Connection, comments: CommentsTable, parent: sa.Column[Any], status: Any
) -> None:
    """Delete rejected rows that no longer have replies, until none is left (a chain of
    deleted comments kept only for each other goes at once)."""
    replied = sa.select(parent).where(parent.is_not(None))
    stale = sa.delete(comments.table).where(
        comments.approved == status, comments.id.not_in(replied)
    )
    while conn.execute(stale).rowcount:
        continue
