"""Rules applied before the model: a comment one of them holds is never sent to it.

Sentiment is not acceptability: cheerful spam ("Great post! Cheap watches at http://...") reads
as positive. So each comment first meets a few rules, each a small named function
``(text, context) -> reason | None``; the first that gives a reason holds the comment for a
human, with that reason (it always starts with ``rule:``) in its audit row. A rule can only hold:
it never approves anything, and a comment no rule holds goes to the model as before.

Rules are data: ``RULES`` lists them in the order they are tried, and a rule with nothing to do
(its setting is 0 or empty) gives no reason.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from moderation.comment import AuthorRecord
from moderation.rules.fold import fold
from moderation.rules.links import LinkDialect, count_links, dialect_for
from moderation.settings import Settings
from moderation.text.canonical import canonical, flood_form

# Every rule's reason starts so: the review page tells a rule's hold from the model's by it.
RULE_PREFIX = "rule: "


@dataclass
class RuleContext:
    """What the rules know beyond the text: the site's settings and the batch's counts."""

    hold_links: int = 0
    # How the site renders links, so that the count is the site's own (see rules.links).
    link_dialect: LinkDialect = LinkDialect.ANY
    hold_hidden: bool = True
    hold_words: tuple[str, ...] = ()
    never_approve_words: tuple[str, ...] = ()
    max_duplicates: int = 0
    # Kinds of rows (the site's type column) held whatever their text: WordPress's pingbacks
    # and trackbacks, whose text is an excerpt the linking site chose.
    held_types: tuple[str, ...] = ()
    # The author's record (site.authors): hold an author with a comment rejected lately, and a
    # first-time author's comment with this many links or more (0: off).
    hold_rejected_authors: bool = True
    first_comment_links: int = 0
    # How many times each normalised text (its hash) was read so far in this batch.
    copies: Counter[int] = field(default_factory=Counter)

    def count(self, texts: Iterable[str]) -> None:
        """Count the copies of each text among comments the batch has read."""
        if self.max_duplicates:
            self.copies.update(flood_key(t) for t in texts)


Rule = Callable[[str, RuleContext], str | None]


# --- links ------------------------------------------------------------------------------


def links(text: str, context: RuleContext) -> str | None:
    if context.hold_links <= 0:
        return None
    found = count_links(text, context.link_dialect)
    if found >= context.hold_links:
        return f"rule: {found} links >= {context.hold_links}"
    return None


# --- hidden characters -------------------------------------------------------------------

_ZWJ, _VS16 = "\u200d", "\ufe0f"
_MAX_MARKS = 4


def _is_emoji(char: str) -> bool:
    return unicodedata.category(char) == "So" or "\U0001f000" <= char <= "\U0001faff"


def hidden_characters(text: str) -> str | None:
    """Why the visible text differs from what the model reads, or None: a tag character
    (U+E0000 to U+E007F), any other format character (category Cf) except a zero-width joiner
    between two emoji, or more than four combining marks in a row."""
    if text.isascii():
        return None
    marks = 0
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category in ("Mn", "Me"):
            marks += 1
            if marks > _MAX_MARKS:
                return f"more than {_MAX_MARKS} combining marks in a row"
            continue
        marks = 0
        if "\U000e0000" <= char <= "\U000e007f":
            return f"tag character U+{ord(char):04X}"
        if category == "Cf" and not (char == _ZWJ and _joins_emoji(text, index)):
            return f"format character U+{ord(char):04X}"
    return None


def _joins_emoji(text: str, index: int) -> bool:
    before = text[index - 1] if index > 0 else ""
    if before == _VS16 and index > 1:
        before = text[index - 2]
    after = text[index + 1] if index + 1 < len(text) else ""
    return bool(before) and bool(after) and _is_emoji(before) and _is_emoji(after)


def hidden(text: str, context: RuleContext) -> str | None:
    if not context.hold_hidden or hidden_characters(text) is None:
        return None
    return "rule: hidden characters"


# --- the site's own words ----------------------------------------------------------------


def read_words(value: str) -> tuple[str, ...]:
    """A setting's words: the lines of a file when the value names one, else a comma list.

    Blank lines and lines starting with ``#`` in a file are left out; each word is folded as
    the text is."""
    value = value.strip()
    if not value:
        return ()
    path = Path(value).expanduser()
    if "," not in value and path.is_file():
        parts = [
            line.strip()
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
    else:
        parts = [part.strip() for part in value.split(",") if part.strip()]
    return tuple(dict.fromkeys(w for w in (fold(p) for p in parts) if w))


def _word_in(text: str, words: tuple[str, ...]) -> str | None:
    """The first word found in the text as it is (folded), or in the text as a moderator
    reads it (``moderation.text.canonical``: markup, emphasis and look-alike letters undone),
    as WordPress looks for its disallowed keys in the text and in the text without tags."""
    if not words:
        return None
    view = fold(text)
    found = next((w for w in words if w in view), None)
    if found is not None:
        return found
    seen = canonical(text)
    return next((w for w in words if _canonical_word(w) in seen), None)


@lru_cache(maxsize=4096)
def _canonical_word(word: str) -> str:
    return canonical(word)


def hold_word(text: str, context: RuleContext) -> str | None:
    word = _word_in(text, context.hold_words)
    return None if word is None else f'rule: hold word "{word}"'


def never_approve_word(text: str, context: RuleContext) -> str | None:
    word = _word_in(text, context.never_approve_words)
    return None if word is None else f'rule: never-approve word "{word}"'


# --- floods ------------------------------------------------------------------------------


def flood_key(text: str) -> int:
    """The hash of the text's flood form: as a moderator reads it, without punctuation or
    symbols (``moderation.text.canonical.flood_form``), so that near-copies are copies.

    Python's own string hash: the counts live in this process only, and a batch counts every
    pending comment, so the key must cost little. The chance that two of a million distinct
    texts collide is below one in ten million, and a collision can only hold a comment.
    """
    return hash(flood_form(text))


def flood(text: str, context: RuleContext) -> str | None:
    if context.max_duplicates <= 0:
        return None
    copies = context.copies.get(flood_key(text), 0)
    if copies > context.max_duplicates:
        return f"rule: {copies} copies pending"
    return None


# --- the kind of row -----------------------------------------------------------------------

COMMENT_TYPE = "comment_type"


def comment_type(kind: str | None, context: RuleContext) -> str | None:
    """A row of a kind the preset holds (a pingback, a trackback): not a reader's comment, and
    its text is no reader's words, so its sentiment approves nothing. Only where the site's
    table has a type column (the ``wordpress`` preset's ``comment_type``)."""
    if kind is None or kind not in context.held_types:
        return None
    return f"rule: a {kind}, never approved unread"


# --- the author's record ------------------------------------------------------------------

AuthorRule = Callable[[str, AuthorRecord, RuleContext], str | None]


def author_rejected(text: str, record: AuthorRecord, context: RuleContext) -> str | None:
    """An author (same account, e-mail or IP) with a comment rejected within the window."""
    if not context.hold_rejected_authors or record.rejected <= 0:
        return None
    plural = "comment" if record.rejected == 1 else "comments"
    within = "" if record.window is None else f" in {record.window}"
    return f"rule: author had {record.rejected} {plural} rejected{within}"


def first_comment_links(text: str, record: AuthorRecord, context: RuleContext) -> str | None:
    """A first-time author's comment (no approved comment by the same account, or the same
    name and e-mail together) with links: where a spammer's first comment carries its link."""
    if context.first_comment_links <= 0 or not record.first_comment:
        return None
    found = count_links(text, context.link_dialect)
    if found >= context.first_comment_links:
        plural = "link" if found == 1 else "links"
        return f"rule: first comment by this author, {found} {plural}"
    return None


# Tried after the text's rules, on comments whose site tells their author (site.authors).
AUTHOR_RULES: dict[str, AuthorRule] = {
    "author_rejected": author_rejected,
    "first_comment_links": first_comment_links,
}

# In the order they are tried; the names are those the reports and the docs use.
RULES: dict[str, Rule] = {
    "links": links,
    "hidden": hidden,
    "never_approve_word": never_approve_word,
    "hold_word": hold_word,
    "flood": flood,
}


@dataclass(frozen=True, slots=True)
class Hold:
    rule: str
    reason: str


def check(
    text: str,
    context: RuleContext,
    *,
    kind: str | None = None,
    author: AuthorRecord | None = None,
) -> Hold | None:
    """The first rule that holds ``text``, with its reason; None when none does. The row's
    kind (``comment_type``) is tried first: it holds whatever the text says; the author's
    record (``author``, where the site tells it) last. Without a record the author's rules
    do nothing."""
    reason = comment_type(kind, context)
    if reason is not None:
        return Hold(COMMENT_TYPE, reason)
    for name, rule in RULES.items():
        reason = rule(text, context)
        if reason is not None:
            return Hold(name, reason)
    if author is not None:
        for name, author_rule in AUTHOR_RULES.items():
            reason = author_rule(text, author, context)
            if reason is not None:
                return Hold(name, reason)
    return None


def context_from(
    settings: Settings,
    *,
    site_hold_words: Iterable[str] = (),
    site_never_approve_words: Iterable[str] = (),
    site_max_links: int = 0,
    held_types: Iterable[str] = (),
) -> RuleContext:
    """The rules' context from the settings, with no copies counted yet; the site's own words
    are added to the configured ones, and its link limit applies where it is stricter."""
    limits = [n for n in (settings.hold_links, site_max_links) if n > 0]
    return RuleContext(
        hold_links=min(limits) if limits else 0,
        link_dialect=dialect_for(settings.preset),
        hold_hidden=settings.hold_hidden,
        hold_words=_merged(read_words(settings.hold_words), site_hold_words),
        never_approve_words=_merged(
            read_words(settings.never_approve_words), site_never_approve_words
        ),
        max_duplicates=settings.max_duplicates,
        held_types=tuple(held_types),
        hold_rejected_authors=settings.hold_rejected_authors,
        first_comment_links=settings.first_comment_max_links,
    )


def _merged(words: tuple[str, ...], more: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*words, *(w for w in (fold(m) for m in more) if w))))
