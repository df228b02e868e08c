"""How the comment systems people run store their comments, as settings values.

Each preset fills the table and column settings for one system; any single variable set by the
operator still wins. Every mapping was read from the system's own schema and code:

- WordPress (``wp-admin/includes/schema.php``): ``{prefix}comments.comment_approved`` is a
  ``varchar(20)``; ``'0'`` awaits moderation, ``'1'`` is approved; ``'spam'`` and ``'trash'``
  are a human's (or a plugin's) rejection. ``'post-trashed'`` is WordPress's own doing
  (``wp_trash_post_comments`` in ``wp-includes/post.php`` sets it on every comment of a post
  sent to the trash, and restores the old status when the post comes back): not a human's
  ruling on the comment. Any other value is left alone.
- Isso (``isso/db/comments.py``): ``comments.mode`` is an INTEGER; 1 accepted, 2 pending,
  4 deleted (the text is blanked, the row kept for its replies). A deleted comment without
  replies loses its row, and so does a pending one older than ``purge-after`` (``purge`` deletes
  ``mode = 2`` rows by age): a held comment's missing row cannot be told to be a moderator's
  deletion, so it is the system's doing. An approved (mode 1) row is never purged: its missing
  row is a human's deletion.
- Commento (``db/*.sql``, PostgreSQL only): ``comments.commentHex`` is a TEXT primary key
  (PostgreSQL folds the unquoted name to ``commenthex``), the text is ``markdown``, ``state`` is
  ``'unapproved'``/``'approved'``/``'flagged'`` (flagged as spam), and ``deleted`` marks a
  comment removed by a moderator (its text replaced, its state left as it was).
- django-contrib-comments (``django_comments`` migrations): ``is_public`` false means awaiting
  moderation, ``is_removed`` true means removed by a moderator: pending is ``is_public = false
  AND is_removed = false``, approving sets ``is_public = true``.
- ``tr``: the blog table this tool started from: ``comments.approved`` is a boolean, NULL is
  not pending.

Beside the status column, a ruling writes what the system's own moderation writes (its
``Companions``, read from the same sources): WordPress recounts the post's ``comment_count``
(``wp_update_comment_count_now``) and marks a trashed comment for its daily purge
(``wp_trash_comment``), and its pingbacks and trackbacks are held unread; Isso's delete removes
the row, or blanks it when it has replies; django-contrib-comments' moderation views write a
``CommentFlag``. A custom mapping (no preset) writes only its status column.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
        "comments_rejected_values": ["trash", "spam"],
        "comments_system_values": ["post-trashed"],
        "comments_author_account_column": "user_id",
        "comments_author_name_column": "comment_author",
        "comments_author_email_column": "comment_author_email",
        "comments_author_url_column": "comment_author_url",
        "comments_author_ip_column": "comment_author_IP",
        "comments_date_column": "comment_date_gmt",
    },
    "isso": {
        "comments_table": "comments",
        "comments_id_column": "id",
        "comments_body_column": "text",
        "comments_approved_column": "mode",
        "comments_approved_value": "1",
        "comments_pending_value": "2",
        "comments_rejected_values": ["4"],
        "comments_purges_pending": True,
        "comments_author_name_column": "author",
        "comments_author_email_column": "email",
        "comments_author_url_column": "website",
        # remote_addr is not matched: Isso keeps the address with its last part zeroed (a
        # /24 for IPv4), which many readers share.
        "comments_date_column": "created",
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
        "comments_author_account_column": "commenterhex",
        "comments_date_column": "creationdate",
    },
    "django": {
        "comments_table": "django_comments",
        "comments_id_column": "id",
        "comments_body_column": "comment",
        "comments_approved_column": "is_public",
        "comments_removed_column": "is_removed",
        "comments_author_account_column": "user_id",
        "comments_author_name_column": "user_name",
        "comments_author_email_column": "user_email",
        "comments_author_url_column": "user_url",
        "comments_author_ip_column": "ip_address",
        "comments_date_column": "submit_date",
    },
    "tr": {
        "comments_table": "comments",
        "comments_id_column": "id",
        "comments_body_column": "body",
        "comments_approved_column": "approved",
        # Used where the table has it.
        "comments_author_account_column": "user_id",
    },
}


@dataclass(frozen=True, slots=True)
class PostCounts:
    """A count of approved comments kept on each post, recounted after a ruling."""

    table: str  # "{prefix}posts"
    key: str  # the post's id
    count: str  # the count column
    post: str  # the comments table's column naming its post


@dataclass(frozen=True, slots=True)
class TrashMeta:
    """Meta rows marking a rejected comment for the system's own purge: the status it had and
    when it was rejected (Unix seconds), written when the rejected value is one of ``values``."""

    table: str  # "{prefix}commentmeta"
    comment: str
    key: str
    value: str
    status_key: str
    time_key: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Deletion:
    """A rejection deletes the row; one with replies (rows whose ``parent`` is its id) keeps
    the rejected status with ``blanked`` written over its text and author, and a rejected row
    left without replies is then deleted in turn."""

    parent: str
    blanked: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Flags:
    """A row naming the moderator for each ruling, once per (user, comment, flag)."""

    table: str
    comment: str
    user: str
    flag: str
    date: str
    approved: str  # the flag an approval writes
    rejected: str  # the flag a rejection writes


@dataclass(frozen=True, slots=True)
class Companions:
    """What a preset's system writes beside the status column; all optional."""

    post_counts: PostCounts | None = None
    trash_meta: TrashMeta | None = None
    # A column telling comments from other kinds of rows, and the kinds never approved unread.
    type_column: str | None = None
    held_types: tuple[str, ...] = ()
    deletion: Deletion | None = None
    flags: Flags | None = None


_COMPANIONS: dict[str, Companions] = {
    "wordpress": Companions(
        post_counts=PostCounts("{prefix}posts", "ID", "comment_count", "comment_post_ID"),
        trash_meta=TrashMeta(
            "{prefix}commentmeta",
            "comment_id",
            "meta_key",
            "meta_value",
            "_wp_trash_meta_status",
            "_wp_trash_meta_time",
            # wp_trash_comment and wp_spam_comment both write them; the purge empties trash.
            ("trash", "spam"),
        ),
        # A pingback's or trackback's text is an excerpt of the linking page, chosen by its
        # author: its sentiment says nothing about whether the link belongs on the post.
        type_column="comment_type",
        held_types=("pingback", "trackback"),
    ),
    "isso": Companions(
        deletion=Deletion("parent", {"text": "", "author": None, "website": None}),
    ),
    "django": Companions(
        flags=Flags(
            "django_comment_flags",
            "comment_id",
            "user_id",
            "flag",
            "flag_date",
            "moderator approval",
            "moderator deletion",
        ),
    ),
}


def preset_companions(name: str | None, table_prefix: str) -> Companions:
    """What the preset's system writes beside the status; nothing for no preset."""
    found = _COMPANIONS.get(name or "", Companions())
    if found.post_counts is not None:
        table = found.post_counts.table.format(prefix=table_prefix)
        found = replace(found, post_counts=replace(found.post_counts, table=table))
    if found.trash_meta is not None:
        table = found.trash_meta.table.format(prefix=table_prefix)
        found = replace(found, trash_meta=replace(found.trash_meta, table=table))
    return found


def preset_values(name: str, table_prefix: str) -> dict[str, Any]:
    """The settings a preset fills, with the WordPress table prefix applied."""
    values = dict(_PRESETS[name])
    if "comments_table" in values:
        values["comments_table"] = values["comments_table"].format(prefix=table_prefix)
    return values
