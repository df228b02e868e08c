"""How the comment systems people run store their comments, as settings values.

Each preset fills the table and column settings for one system; any single variable set by the
operator still wins. Every mapping was read from the system's own schema and code:

- WordPress (``wp-admin/includes/schema.php``): ``{prefix}comments.comment_approved`` is a
  ``varchar(20)``; ``'0'`` awaits moderation, ``'1'`` is approved; ``'spam'``, ``'trash'`` and
  ``'post-trashed'`` are a human's (or a plugin's) rejection. Any other value is left alone.
- Isso (``isso/db/comments.py``): ``comments.mode`` is an INTEGER; 1 accepted, 2 pending,
  4 deleted (the text is blanked, the row kept for its replies).
- Commento (``db/*.sql``, PostgreSQL only): ``comments.commentHex`` is a TEXT primary key
  (PostgreSQL folds the unquoted name to ``commenthex``), the text is ``markdown``, ``state`` is
  ``'unapproved'``/``'approved'``/``'flagged'`` (flagged as spam), and ``deleted`` marks a
  comment removed by a moderator (its text replaced, its state left as it was).
- django-contrib-comments (``django_comments`` migrations): ``is_public`` false means awaiting
  moderation, ``is_removed`` true means removed by a moderator: pending is ``is_public = false
  AND is_removed = false``, approving sets ``is_public = true``.
- ``tr``: the blog table this tool started from: ``comments.approved`` is a boolean, NULL is
  not pending.
"""

from __future__ import annotations

from typing import Any

PRESET_NAMES = ("wordpress-rest", "wordpress", "isso", "commento", "django", "tr")
DEFAULT_TABLE_PREFIX = "wp_"

_PRESETS: dict[str, dict[str, Any]] = {
    # No table: the site is read and written through its REST API (site/wordpress_rest.py).
    "wordpress-rest": {},
    "wordpress": {
        "comments_table": "{prefix}comments",
        "comments_id_column": "comment_ID",
        "comments_body_column": "comment_content",
        "comments_approved_column": "comment_approved",
        "comments_approved_value": "1",
        "comments_pending_value": "0",
        "comments_rejected_values": ["trash", "spam", "post-trashed"],
    },
    "isso": {
        "comments_table": "comments",
        "comments_id_column": "id",
        "comments_body_column": "text",
        "comments_approved_column": "mode",
        "comments_approved_value": "1",
        "comments_pending_value": "2",
        "comments_rejected_values": ["4"],
    },
    "commento": {
        "comments_table": "comments",
        "comments_id_column": "commenthex",
        "comments_body_column": "markdown",
        "comments_approved_column": "state",
        "comments_approved_value": "approved",
        "comments_pending_value": "unapproved",
        "comments_removed_column": "deleted",
        "comments_rejected_values": ["flagged"],
    },
    "django": {
        "comments_table": "django_comments",
        "comments_id_column": "id",
        "comments_body_column": "comment",
        "comments_approved_column": "is_public",
        "comments_removed_column": "is_removed",
    },
    "tr": {
        "comments_table": "comments",
        "comments_id_column": "id",
        "comments_body_column": "body",
        "comments_approved_column": "approved",
    },
}


def preset_values(name: str, table_prefix: str) -> dict[str, Any]:
    """The settings a preset fills, with the WordPress table prefix applied."""
    values = dict(_PRESETS[name])
    if "comments_table" in values:
        values["comments_table"] = values["comments_table"].format(prefix=table_prefix)
    return values
