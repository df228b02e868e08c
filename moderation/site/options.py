"""A WordPress site's own moderation settings, read from ``{prefix}options``.

WordPress's ``check_comment`` holds a comment with ``comment_max_links`` links or more, or with
one of the ``moderation_keys`` (one per line) in it; ``wp_check_comment_disallowed_list`` sends
one with a ``disallowed_keys`` word to the trash. With the ``wordpress`` preset the batch reads
these three options once and adds them to its rules: the site's moderation keys to
``MODERATION_HOLD_WORDS``, its disallowed keys to ``MODERATION_NEVER_APPROVE_WORDS``, and its
link limit where it is stricter than ``MODERATION_HOLD_LINKS``. Only the comment's text is
checked (WordPress also looks at the author, e-mail, URL, IP and user agent).
``MODERATION_SITE_RULES=off`` leaves them out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from moderation.settings import Settings

log = logging.getLogger(__name__)

OPTION_NAMES = ("moderation_keys", "disallowed_keys", "comment_max_links")


@dataclass(frozen=True, slots=True)
class SiteRules:
    hold_words: tuple[str, ...] = ()
    never_approve_words: tuple[str, ...] = ()
    max_links: int = 0


def read_site_rules(engine: Engine, settings: Settings) -> SiteRules:
    """The site's own rules, or none: not the wordpress preset, turned off, or no options
    table (a warning names why)."""
    if settings.preset != "wordpress" or settings.site_rules == "off":
        return SiteRules()
    table = f"{settings.table_prefix}options"
    options = sa.table(table, sa.column("option_name"), sa.column("option_value"))
    query = sa.select(options.c.option_name, options.c.option_value).where(
        options.c.option_name.in_(OPTION_NAMES)
    )
    try:
        with engine.connect() as conn:
            values = {str(name): str(value or "") for name, value in conn.execute(query)}
    except SQLAlchemyError as exc:
        log.warning(
            "could not read the site's moderation options from %s (%s); set "
            "MODERATION_SITE_RULES=off to skip them",
            table,
            type(exc).__name__,
        )
        return SiteRules()
    try:
        max_links = max(int(values.get("comment_max_links", "0").strip() or 0), 0)
    except ValueError:
        max_links = 0
    return SiteRules(
        hold_words=_lines(values.get("moderation_keys", "")),
        never_approve_words=_lines(values.get("disallowed_keys", "")),
        max_links=max_links,
    )


def _lines(value: str) -> tuple[str, ...]:
    """WordPress's keys: one per line, blank lines ignored."""
    return tuple(line.strip() for line in value.splitlines() if line.strip())
