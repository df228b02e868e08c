"""Counting a comment's links as the site that shows it renders them.

Three readings of a comment, each linear in its length:

- ``wordpress_count``: the number WordPress's ``check_comment()`` compares with
  ``comment_max_links`` (6.1, ``wp-includes/comment.php``): ``preg_match_all('/<a [^>]*href/i')``
  over the comment after the ``comment_text`` filter's ``make_clickable``
  (``wp-includes/formatting.php``), reproduced step by step on the comment's UTF-8 bytes.
- ``markdown_count``: never fewer than the links a CommonMark renderer with linkify (markdown-it
  with linkify-it) makes of the comment: inline links and images, reference links with a
  definition, autolinks, and linkify's bare URLs, e-mail addresses and domains.
- ``lenient_count``: anchors, markdown links and bare URLs in every disguise (``hxxp``,
  ``h t t p``, ``[:]``, fullwidth letters) on the folded text.

``count_links`` takes the largest of the readings that apply to the site's dialect, so a
comment the lenient reading holds is held on every site.

No backtracking pattern sees the text: every regular expression in these modules is bounded, or
has no two quantifiers that can share a character, and every scan moves forward (or is
memoised). One module per reading: ``wordpress``, ``markdown``, ``lenient``.
"""

from __future__ import annotations

from enum import StrEnum

from moderation.rules.links.lenient import lenient_count
from moderation.rules.links.markdown import markdown_count
from moderation.rules.links.wordpress import wordpress_count

__all__ = [
    "LinkDialect",
    "count_links",
    "dialect_for",
    "lenient_count",
    "markdown_count",
    "wordpress_count",
]


class LinkDialect(StrEnum):
    """How the site turns a comment's text into links."""

    WORDPRESS = "wordpress"
    MARKDOWN = "markdown"
    ANY = "any"


_PRESET_DIALECTS = {
    "wordpress": LinkDialect.WORDPRESS,
    "wordpress-rest": LinkDialect.WORDPRESS,
    "isso": LinkDialect.MARKDOWN,
    "commento": LinkDialect.MARKDOWN,
}


def dialect_for(preset: str | None) -> LinkDialect:
    """The dialect of a site preset; a preset that renders no known way counts every way."""
    return _PRESET_DIALECTS.get(preset or "", LinkDialect.ANY)


def count_links(text: str, dialect: LinkDialect = LinkDialect.ANY) -> int:
    """The comment's links as the dialect's site renders them, never fewer than the lenient
    reading finds."""
    dialect = LinkDialect(dialect)
    lenient = lenient_count(text)
    if dialect is LinkDialect.WORDPRESS:
        return max(wordpress_count(text), lenient)
    if dialect is LinkDialect.MARKDOWN:
        return max(markdown_count(text), lenient)
    return max(wordpress_count(text), markdown_count(text), lenient)
