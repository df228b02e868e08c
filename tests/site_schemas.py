"""The comment systems' own tables, one definition per system and SQL dialect.

Written for these tests from each project's own schema (WordPress
``wp-admin/includes/schema.php``, Isso ``isso/db/comments.py``, Commento ``db/*.sql``,
django-contrib-comments' migrations); foreign keys to tables the tool never reads are left out.
Each ``*_DDL`` is a list of statements for ``tests.helpers.execute(url, *DDL, ...)``.
"""

from __future__ import annotations

from typing import Literal

# WordPress (MariaDB/MySQL, and SQLite as a stand-in) ---------------------------------------------

# Every column of wp_comments, in WordPress's order: (name, MariaDB type, SQLite type where
# SQLite's differs).
_WORDPRESS_COLUMNS: list[tuple[str, str, str | None]] = [
    (
        "comment_ID",
        "BIGINT(20) UNSIGNED NOT NULL AUTO_INCREMENT",
        "INTEGER PRIMARY KEY AUTOINCREMENT",
    ),
    ("comment_post_ID", "BIGINT(20) UNSIGNED NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"),
    ("comment_author", "TINYTEXT NOT NULL", None),
    ("comment_author_email", "VARCHAR(100) NOT NULL DEFAULT ''", None),
    ("comment_author_url", "VARCHAR(200) NOT NULL DEFAULT ''", None),
    ("comment_author_IP", "VARCHAR(100) NOT NULL DEFAULT ''", None),
    ("comment_date", "DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00'", None),
    ("comment_date_gmt", "DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00'", None),
    ("comment_content", "TEXT NOT NULL", None),
    ("comment_karma", "INT(11) NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"),
    ("comment_approved", "VARCHAR(20) NOT NULL DEFAULT '1'", None),
    ("comment_agent", "VARCHAR(255) NOT NULL DEFAULT ''", None),
    ("comment_type", "VARCHAR(20) NOT NULL DEFAULT 'comment'", None),
    ("comment_parent", "BIGINT(20) UNSIGNED NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"),
    ("user_id", "BIGINT(20) UNSIGNED NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"),
]
# MariaDB only (SQLite's key is the INTEGER PRIMARY KEY column itself).
_WORDPRESS_KEYS = [
    "PRIMARY KEY (comment_ID)",
    "KEY comment_post_ID (comment_post_ID)",
    "KEY comment_approved_date_gmt (comment_approved, comment_date_gmt)",
    "KEY comment_date_gmt (comment_date_gmt)",
    "KEY comment_parent (comment_parent)",
    "KEY comment_author_email (comment_author_email(10))",
]
_WORDPRESS_TABLE_OPTIONS = {
    "mariadb": " ENGINE=InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci",
    "sqlite": "",
}

# The review-queue tests compare rows by column position (comment_approved is column 8 there):
# their wp_comments leaves out these three columns, which the queue never reads.
WORDPRESS_REVIEW_LEFT_OUT = ("comment_author_url", "comment_author_IP", "comment_agent")


def wordpress_ddl(
    dialect: Literal["mariadb", "sqlite"], *, prefix: str = "wp_", left_out: tuple[str, ...] = ()
) -> str:
    """WordPress's ``{prefix}comments`` table, without the columns named in ``left_out``."""
    mariadb = dialect == "mariadb"
    lines = [
        f"{name} {mariadb_type if mariadb else sqlite_type or mariadb_type}"
        for name, mariadb_type, sqlite_type in _WORDPRESS_COLUMNS
        if name not in left_out
    ]
    if mariadb:
        lines += _WORDPRESS_KEYS
    body = ",\n    ".join(lines)
    return f"CREATE TABLE {prefix}comments (\n    {body}\n){_WORDPRESS_TABLE_OPTIONS[dialect]}"


# The two tables WordPress keeps beside its comments that a ruling touches: the post's
# ``comment_count`` and the comment meta (``_wp_trash_meta_*``); the posts table reduced to the
# columns a ruling reads or writes. SQLite has no UNSIGNED.
def wordpress_companions_ddl(
    dialect: Literal["mariadb", "sqlite"], *, prefix: str = "wp_"
) -> list[str]:
    mariadb = dialect == "mariadb"
    key = "BIGINT(20) UNSIGNED NOT NULL AUTO_INCREMENT" if mariadb else "INTEGER PRIMARY KEY"
    unsigned, signed = ("BIGINT(20) UNSIGNED", "BIGINT(20)") if mariadb else ("INTEGER", "INTEGER")
    options = _WORDPRESS_TABLE_OPTIONS[dialect]
    return [
        f"CREATE TABLE {prefix}posts (ID {key}, post_title TEXT NOT NULL,"
        " post_status VARCHAR(20) NOT NULL DEFAULT 'publish',"
        f" comment_count {signed} NOT NULL DEFAULT 0"
        f"{', PRIMARY KEY (ID)' if mariadb else ''}){options}",
        f"CREATE TABLE {prefix}commentmeta (meta_id {key},"
        f" comment_id {unsigned} NOT NULL DEFAULT 0,"
        " meta_key VARCHAR(255) DEFAULT NULL, meta_value LONGTEXT"
        f"{', PRIMARY KEY (meta_id), KEY comment_id (comment_id)' if mariadb else ''}){options}",
    ]


# A table that only borrows WordPress's names, on SQLite: five columns, filled by position, and
# an author that may be NULL (WordPress's own is NOT NULL).
WORDPRESS_NAMES_ONLY_SQLITE_DDL = [
    "CREATE TABLE wp_comments (comment_ID INTEGER PRIMARY KEY, comment_author TEXT, "
    "comment_date_gmt DATETIME, comment_content TEXT NOT NULL, "
    "comment_approved VARCHAR(20) NOT NULL DEFAULT '1')"
]


# Isso (SQLite) -----------------------------------------------------------------------------------

ISSO_DDL = [
    "CREATE TABLE threads (id INTEGER PRIMARY KEY, uri VARCHAR(256) UNIQUE, title VARCHAR(256))",
    "CREATE TABLE comments ("
    " tid REFERENCES threads(id), id INTEGER PRIMARY KEY, parent INTEGER,"
    " created FLOAT NOT NULL, modified FLOAT, mode INTEGER, remote_addr VARCHAR,"
    " text VARCHAR, author VARCHAR, email VARCHAR, website VARCHAR,"
    " likes INTEGER DEFAULT 0, dislikes INTEGER DEFAULT 0, voters BLOB NOT NULL,"
    " notification INTEGER NOT NULL DEFAULT 0)",
]
# The one thread every test's comments belong to (tid 1).
ISSO_THREAD = "INSERT INTO threads (id, uri, title) VALUES (1, '/post/', 'A post')"


# Commento (PostgreSQL) ---------------------------------------------------------------------------

COMMENTO_DDL = [
    "CREATE TABLE comments ("
    " commentHex TEXT NOT NULL UNIQUE PRIMARY KEY,"
    " domain TEXT NOT NULL, path TEXT NOT NULL, commenterHex TEXT NOT NULL,"
    " markdown TEXT NOT NULL, html TEXT NOT NULL, parentHex TEXT NOT NULL,"
    " score INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL DEFAULT 'unapproved',"
    " creationDate TIMESTAMP NOT NULL)",
    # Later migrations: soft deletion, and who deleted when.
    "ALTER TABLE comments ADD deleted BOOLEAN NOT NULL DEFAULT false",
    "ALTER TABLE comments ADD deleterHex TEXT",
    "ALTER TABLE comments ADD deletionDate TIMESTAMP",
]


# django-contrib-comments (PostgreSQL) ------------------------------------------------------------

DJANGO_DDL = [
    "CREATE TABLE django_comments ("
    " id integer NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,"
    " object_pk varchar(64) NOT NULL, user_name varchar(50) NOT NULL,"
    " user_email varchar(254) NOT NULL, user_url varchar(200) NOT NULL,"
    " comment text NOT NULL, submit_date timestamp with time zone NOT NULL,"
    " ip_address inet NULL, is_public boolean NOT NULL, is_removed boolean NOT NULL,"
    " content_type_id integer NOT NULL, site_id integer NULL, user_id integer NULL)",
    "CREATE INDEX django_comments_is_removed ON django_comments (is_removed)",
    "CREATE INDEX django_comments_object_pk ON django_comments (object_pk)",
    "CREATE INDEX django_comments_submit_date ON django_comments (submit_date)",
]

# What a ruling writes beside the comment: django's CommentFlag (``django_comment_flags``, with
# its unique (user, comment, flag)) and the user table it points to, reduced to its key.
DJANGO_FLAGS_DDL = [
    "CREATE TABLE auth_user (id integer NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,"
    " username varchar(150) NOT NULL UNIQUE)",
    "CREATE TABLE django_comment_flags ("
    " id integer NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,"
    " flag varchar(30) NOT NULL, flag_date timestamp with time zone NOT NULL,"
    " comment_id integer NOT NULL REFERENCES django_comments (id) DEFERRABLE INITIALLY DEFERRED,"
    " user_id integer NOT NULL REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED,"
    " UNIQUE (user_id, comment_id, flag))",
    "CREATE INDEX django_comment_flags_flag ON django_comment_flags (flag)",
]

# The blog table this tool started from (preset "tr", PostgreSQL) ---------------------------------

TR_DDL = [
    "CREATE TABLE comments (id bigserial PRIMARY KEY, body text, approved boolean,"
    " post_id bigint, inserted_at timestamp(0) NOT NULL DEFAULT now())"
]
