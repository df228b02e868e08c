"""The rules applied before the model, one function at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from moderation.batch.decide import decide
from moderation.comment import Comment
from moderation.evaluation.evaluate import default_fixture_paths, load_fixtures
from moderation.model.reading import UNREAD, Reading
from moderation.resources import resource_path
from moderation.rules import (
    RULES,
    Hold,
    RuleContext,
    check,
    context_from,
    count_links,
    flood,
    flood_key,
    hidden,
    hidden_characters,
    hold_word,
    links,
    never_approve_word,
    read_words,
)
from moderation.vocabulary import Outcome
from tests.helpers import make_settings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("No links at all.", 0),
        ("Great post! Cheap watches at http://watches.example", 1),
        ("see https://a.example and www.b.example", 2),
        ('<A HREF="http://a.example">a</A>', 1),  # an anchor, any case: one link, not two
        ("<a title='x' href=http://a.example>a</a> and http://b.example", 2),
        ("[cheap](http://a.example)", 1),  # a markdown link: its URL is not counted again
        ("[a](http://a.example) [b](https://b.example) www.c.example", 3),
        ("hxxp://a.example hxxps[:]//b.example", 2),  # defanged schemes
        ("h t t p://a.example", 1),
        ("ｈｔｔｐｓ：／／ａ．example", 1),  # fullwidth, folded by NFKC
        ("http&#58;//a.example", 1),  # an entity, decoded as the delimiter defence decodes
        ("ht\u200btp://a.example", 1),  # split by an invisible character
        ("what a website, wow", 0),
    ],
)
def test_links_are_counted_once_each_in_every_disguise(text: str, expected: int) -> None:
    assert count_links(text) == expected


def test_links_hold_at_the_limit_and_not_below_and_zero_turns_the_rule_off() -> None:
    two = "Great post! http://a.example www.b.example"
    assert links(two, RuleContext(hold_links=2)) == "rule: 2 links >= 2"
    assert links(two, RuleContext(hold_links=3)) is None
    assert links("one http://a.example", RuleContext(hold_links=2)) is None
    assert links(two * 5, RuleContext(hold_links=0)) is None


@pytest.mark.parametrize(
    "text",
    [
        "approve me\U000e0061\U000e0070",  # tag characters
        "bad\u200bword",  # zero-width space
        "right-to-left \u202egnp.exe",  # an override
        "soft\u00adhyphen",  # a soft hyphen is a format character too
        "\u200dnot between emoji",
        "z\u0301\u0302\u0303\u0304\u0305algo",  # five combining marks in a row
    ],
)
def test_hidden_characters_hold(text: str) -> None:
    assert hidden_characters(text) is not None
    assert hidden(text, RuleContext()) == "rule: hidden characters"
    assert hidden(text, RuleContext(hold_hidden=False)) is None


@pytest.mark.parametrize(
    "text",
    [
        "plain ASCII",
        "Café, naïve, Ελληνικά, русский, 日本語",
        "family \U0001f468\u200d\U0001f469\u200d\U0001f467",  # joiners between emoji
        "heart \u2764\ufe0f\u200d\U0001f525",  # joiner after a variation selector
        "e\u0301\u0301\u0301\u0301",  # four marks: within the limit
    ],
)
def test_visible_text_is_not_held(text: str) -> None:
    assert hidden(text, RuleContext()) is None


def test_words_match_folded_substrings_in_any_case_and_disguise() -> None:
    context = RuleContext(
        hold_words=read_words("Cheap Watches, casino"),
        never_approve_words=read_words("viagra"),
    )
    assert (
        hold_word("CHEAP   watches? no, cheap watches!", context)
        == 'rule: hold word "cheap watches"'
    )
    assert hold_word("ｃａｓｉｎｏ tonight", context) == 'rule: hold word "casino"'
    assert hold_word("cas\u200bino", context) == 'rule: hold word "casino"'
    assert never_approve_word("Buy VIAGRA", context) == 'rule: never-approve word "viagra"'
    assert hold_word("a fine watch", context) is None
    assert never_approve_word("anything", RuleContext()) is None


def test_words_come_from_a_file_or_a_comma_list(tmp_path: Path) -> None:
    listing = tmp_path / "words.txt"
    listing.write_text("# the site's words\nCasino\n\n  cheap watches  \n", encoding="utf-8")
    assert read_words(str(listing)) == ("casino", "cheap watches")
    assert read_words(" a , B,,") == ("a", "b")
    assert read_words("") == ()


def test_floods_hold_beyond_the_limit_with_the_count() -> None:
    context = RuleContext(max_duplicates=2)
    context.count(["Nice post!", "nice   POST!", "other"])
    assert flood("Nice post!", context) is None  # two copies: within the limit
    context.count(["ｎｉｃｅ post!"])
    assert flood("nice post!", context) == "rule: 3 copies pending"
    assert flood("other", context) is None
    assert flood_key("a  b") == flood_key("A b") != flood_key("ab")
    off = RuleContext(max_duplicates=0)
    off.count(["x"] * 10)
    assert flood("x", off) is None


def test_check_names_the_first_rule_that_holds_and_rules_never_approve() -> None:
    context = RuleContext(hold_links=2, hold_words=("watches",), max_duplicates=2)
    hold = check("Cheap watches http://a.example http://b.example", context)
    assert hold is not None and (hold.rule, hold.reason) == ("links", "rule: 2 links >= 2")
    hold = check("cheap watches", context)
    assert hold is not None and hold.rule == "hold_word" and hold.rule in RULES
    assert check("Great post, thanks!", context) is None  # nothing held: the model decides


def test_the_context_follows_the_settings(tmp_path: Path) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'x.db'}",
        hold_links=3,
        hold_words="a,b",
        never_approve_words="c",
        max_duplicates=0,
    )
    context = context_from(settings)
    assert (context.hold_links, context.hold_words, context.never_approve_words) == (
        3,
        ("a", "b"),
        ("c",),
    )
    assert context.max_duplicates == 0
    defaults = context_from(make_settings(f"sqlite:///{tmp_path / 'y.db'}"))
    assert (defaults.hold_links, defaults.max_duplicates, defaults.hold_words) == (2, 2, ())


def test_the_red_team_set_is_cheerful_spam_outside_the_default_set() -> None:
    redteam = resource_path("fixtures") / "redteam" / "cheerful-spam.jsonl"
    assert redteam not in default_fixture_paths()
    fixtures = load_fixtures([redteam])
    assert len(fixtures) == 30
    assert {f.lang for f in fixtures} == {"en", "de", "es"}
    assert all(f.label == "negative" and set(f.tags) == {"spam", "redteam"} for f in fixtures)
    held = [f.id for f in fixtures if check(f.text, RuleContext(hold_links=2)) is not None]
    assert len(held) == 6  # two links or more; a single link or none is left to the model


@pytest.mark.parametrize("unqualified", [None, "unqualified: not yet"])
def test_a_rules_hold_is_never_an_approval(unqualified: str | None) -> None:
    hold = check("Great post! http://a.example http://b.example", RuleContext(hold_links=2))
    assert hold is not None
    reading = Reading(None, UNREAD, hold.reason, rule=hold.rule)
    for gate in (0.0, 0.5, 1.0):
        decision = decide(
            Comment(1, "x"),
            reading,
            would_approve=True,
            min_confidence=gate,
            unqualified=unqualified,
        )
        assert (decision.outcome, decision.label, decision.rule) == (Outcome.HELD, None, "links")
        assert decision.error == "rule: 2 links >= 2" and decision.raw_answer is None


def test_comment_type_holds_the_kinds_the_site_names_whatever_the_text() -> None:
    context = RuleContext(held_types=("pingback", "trackback"))
    assert check("Great post, thanks!", context, kind="pingback") == Hold(
        "comment_type", "rule: a pingback, never approved unread"
    )
    assert check("Great post, thanks!", context, kind="trackback") is not None
    # A reader's comment, a plugin's own type, or no type column at all: the text decides.
    assert check("Great post, thanks!", context, kind="comment") is None
    assert check("Great post, thanks!", context, kind="") is None
    assert check("Great post, thanks!", context) is None
    # Without held kinds (any mapping but the wordpress preset) the rule does nothing.
    assert check("Great post, thanks!", RuleContext(), kind="pingback") is None
