"""The site key: which site the tool's memory, audit rows, outcomes, runs and lease belong to.

Everything the tool keeps is keyed by the site, not by the database: two WordPress sites can
share one database (multisite ``wp_comments`` and ``wp_2_comments``, or two prefixes), and
the memory of one must never steer the other. A site read from an SQL table is keyed by the
table's name as the settings give it (``wp_2_comments``; schema-qualified when the name
carries a schema, e.g. ``public.comments``). A site the tool reaches another way is keyed by
whatever names it for good: a site read through WordPress's REST API by its base URL,
normalised (``https://blog.example``: scheme and host in lower case, the default port and a
trailing slash left out, never a user name, password, query or fragment).

The table's name is used as written, not qualified with the connection's default schema or
database name: the tool's own tables live next to the site's table, so a database restored
under another name keeps its memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from moderation.settings import Settings

# The column's size in the tool's tables.
MAX_SITE_KEY = 255
# Rows written before the tool kept a site key (revision 0009 fills them with this): the first
# site that runs claims them (see ``moderation.storage.claim``).
UNCLAIMED = ""


def site_key(settings: Settings) -> str:
    """The key of the site these settings moderate."""
    if settings.preset == "wordpress-rest" and settings.wordpress_url:
        key = url_key(settings.wordpress_url)
    else:
        key = settings.comments_table
    if not key or len(key) > MAX_SITE_KEY:
        # The settings' own checks keep this from happening; fail closed if they ever do not.
        raise ValueError(f"a site key must be 1 to {MAX_SITE_KEY} characters: {key[:40]!r}")
    return key


def url_key(url: str) -> str:
    """A site's address, normalised: what names a site reached over HTTP."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/"), "", ""))
