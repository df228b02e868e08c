"""The rules on the author's record: they only hold, and do nothing without a record."""

from __future__ import annotations

from moderation.batch.checks import check as check_comment
from moderation.comment import AuthorRecord, Comment
from moderation.rules import RuleContext, check, context_from
from tests.helpers import make_settings

LINK = "My notes: https://notes.example.net/x"
FIRST = AuthorRecord(approved=0, rejected=0, pending=0, first_comment=True, window="90 days")
REGULAR = AuthorRecord(approved=3, rejected=0, pending=0, first_comment=False)


def context(**changes: object) -> RuleContext:
    settings = make_settings("sqlite://", **changes)
    return context_from(settings)


def test_without_a_record_the_author_rules_do_nothing() -> None:
    # moderate eval, the REST API, a table without author columns: no record.
    assert check(LINK, context()) is None
    assert check_comment(Comment(1, LINK), context(), frozenset()) is None


def test_a_rejected_author_is_held_with_the_count_and_the_window() -> None:
    record = AuthorRecord(approved=4, rejected=2, pending=1, first_comment=False, window="90 days")
    hold = check("Lovely post", context(), author=record)
    assert hold is not None
    assert (hold.rule, hold.reason) == (
        "author_rejected",
        "rule: author had 2 comments rejected in 90 days",
    )
    unwindowed = AuthorRecord(approved=0, rejected=1, pending=0, first_comment=True)
    hold = check("Lovely post", context(), author=unwindowed)
    assert hold is not None and hold.reason == "rule: author had 1 comment rejected"
    assert check("Lovely post", context(hold_rejected_authors=False), author=record) is None


def test_a_first_comment_with_links_is_held_and_a_regulars_is_not() -> None:
    hold = check(LINK, context(), author=FIRST)
    assert hold is not None and hold.rule == "first_comment_links"
    assert check("No link here", context(), author=FIRST) is None
    assert check(LINK, context(), author=REGULAR) is None
    assert check(LINK, context(first_comment_max_links=0), author=FIRST) is None
    assert check(LINK, context(first_comment_max_links=2), author=FIRST) is None


def test_the_comments_record_reaches_the_rules() -> None:
    reading = check_comment(Comment(1, LINK, author=FIRST), context(), frozenset())
    assert reading is not None and reading.rule == "first_comment_links"


def test_the_record_in_a_few_characters() -> None:
    assert FIRST.summary == "first"
    assert REGULAR.summary == "3✓"
    assert AuthorRecord(3, 1, 2, False).summary == "3✓ 1✗ +2"
