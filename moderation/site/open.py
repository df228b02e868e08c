"""The site a batch, the review page or the outcomes work on, from the settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine

from moderation.settings import Settings
from moderation.site.protocol import Site
from moderation.site.table import CommentsTable


def is_rest(settings: Settings) -> bool:
    """The site is WordPress's REST API; ``MODERATION_DATABASE_URL`` holds only the tool's
    own tables."""
    return settings.preset == "wordpress-rest"


@contextmanager
def open_site(engine: Engine, settings: Settings, *, check: bool = True) -> Iterator[Site]:
    """The site's table in ``engine``, or WordPress's REST API (checked for access first,
    so that a refused password stops everything before any model work)."""
    if not is_rest(settings):
        yield CommentsTable.reflect(engine, settings)
        return
    from moderation.site.wordpress_rest import WordPressRest

    site = WordPressRest(settings)
    try:
        if check:
            site.check()
        yield site
    finally:
        site.close()
