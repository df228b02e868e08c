"""Counting links as each site renders them: WordPress's own count, CommonMark with linkify
from above, the lenient reading under both; and in time linear in the comment's length."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from moderation.rules.links import (
    LinkDialect,
    count_links,
    dialect_for,
    lenient_count,
    markdown_count,
    wordpress_count,
)


@pytest.mark.parametrize(
    ("preset", "dialect"),
    [
        ("wordpress", LinkDialect.WORDPRESS),
        ("wordpress-rest", LinkDialect.WORDPRESS),
        ("isso", LinkDialect.MARKDOWN),
        ("commento", LinkDialect.MARKDOWN),
        ("django", LinkDialect.ANY),
        ("tr", LinkDialect.ANY),
        ("custom", LinkDialect.ANY),
        (None, LinkDialect.ANY),
    ],
)
def test_each_preset_counts_in_its_site_s_dialect(preset: str | None, dialect: LinkDialect) -> None:
    assert dialect_for(preset) is dialect


# --- WordPress: the number check_comment() computes (checked against WordPress's own PHP in
# tests/live/test_wordpress_links.py) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Great post! http://a.example", 1),
        ("see https://a.example/x?y=1, ftp://b.example and ftps://c.example", 3),
        # every scheme of wp_allowed_protocols() followed by "://"; "news:x" is not a URL
        ("irc6://chat.example news:x tel:+1 mailto:me@a.example", 1),
        ("mailto://me@a.example", 1),
        # esc_url() drops a feed: URL with a second colon before any "/?"
        ("feed://a.example/x feed://b.example/x:y feed://c.example/?q:y", 2),
        ("javascript://a.example ssh://b.example", 0),
        ("www.a.example ftp.b.example WWW.C.EXAMPLE www. ftp.", 3),
        ("write to me@mail.example or you@x.co.uk.", 2),
        ("a@b.c", 0),
        ("http://日本.example www.ü.example", 2),
        # an anchor's own text is not linked twice; any "<a " ... "href" before a ">" counts
        ('<a href="http://a.example">http://a.example</a>', 1),
        ('<a href="http://a.example">www.a.example</a>', 1),
        ("<A HREF=x>1</A> <a\thref=y>2</a> <a title=z>3</a>", 1),
        ("<http://a.example>", 1),
        ("(see http://a.example/wiki/Foo_(bar)) and (http://b.example)", 2),
        ("http://a.example, http://b.example; http://c.example.", 3),
        # a piece of text starting with "<" (not a tag) is left alone
        ("<3 http://a.example", 0),
        ("x <3 http://a.example", 1),
    ],
)
def test_wordpress_links_schemes_hosts_and_addresses(text: str, expected: int) -> None:
    assert wordpress_count(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<code>http://a.example</code> http://b.example", 1),
        ("<pre><code>http://a.example</code> http://b.example</pre> http://c.example", 1),
        ("<script>www.a.example</script><style>www.b.example</style>", 0),
        ("</code> http://a.example", 1),  # a closing tag with nothing open closes nothing
    ],
)
def test_wordpress_leaves_code_pre_script_and_style_alone(text: str, expected: int) -> None:
    assert wordpress_count(text) == expected


def test_wordpress_counts_bytes_as_php_does() -> None:
    # make_clickable splits a piece of more than 10,000 bytes at whitespace into chunks and
    # leaves a chunk of more than 2,101 bytes without whitespace alone; URLs are limited to
    # 2,000 bytes. "é" is two bytes in UTF-8.
    assert wordpress_count("x " * 4000 + "e" * 1060 + "(http://a.example") == 1
    assert wordpress_count("x " * 4000 + "é" * 1060 + "(http://a.example") == 0
    assert wordpress_count("http://" + "e" * 1000 + ".example x") == 1
    assert wordpress_count("http://" + "é" * 1000 + ".example x") == 0
    assert wordpress_count("x" * 10001 + " http://a.example") == 1


def test_the_wordpress_dialect_never_counts_fewer_than_the_lenient_reading() -> None:
    text = "hxxp://a.example and h t t p://b.example"  # WordPress links neither
    assert wordpress_count(text) == 0
    assert count_links(text, LinkDialect.WORDPRESS) == lenient_count(text) == 2


# --- Markdown: never fewer than markdown-it with linkify --------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[cheap watches](http://watches.example)", 1),
        ('[a [nested] text](http://a.example) and [b](/x "title")', 2),
        ("[my\nsite](https://a.example)", 1),  # link text over a line break
        ("[http://a.example](http://a.example)", 1),
        # reference links: full, collapsed and shortcut, with their definitions
        (
            "read [the guide][1] or [this][]\n\n[1]: //guide.example\n[this]: http://this.example",
            2,
        ),
        ("a shortcut: [docs]\n\n[docs]: https://docs.example 'Docs'", 1),
        ("[undefined][nope] and [also undefined]", 0),
        # autolinks
        ("<https:host> and <a@b.example> and <mailto:x@y.example>", 3),
        # linkify: URLs, www., e-mail addresses and domains of its TLD list
        ("visit https://a.example/x?y=1, www.b.com or write to me@c.org", 3),
        ("fuzzy domains: shop.example.com, новости.рф, xn--p1ai.xn--p1ai, file.txt, e.g. this.", 3),
        ("**bold.com** and _under.com_ and snake_case.py", 2),
        ("http://a.example/Foo_(bar) and (http://b.example)", 2),
        ("local //localhost:8080/x and ftp://f.example", 2),
        ("\\[not a link](http://a.example)", 1),
    ],
)
def test_markdown_links_as_markdown_it_renders_them(text: str, expected: int) -> None:
    assert markdown_count(text) == expected
    assert count_links(text, LinkDialect.MARKDOWN) == max(expected, lenient_count(text))


@pytest.mark.parametrize(
    "text",
    [
        "![an image](http://img.example/a.png)",  # an image is counted as a link
        "`http://code.example`",  # a URL in code is counted
        "[x](javascript:alert(1))",  # and so is a link markdown-it refuses
    ],
)
def test_markdown_counts_from_above_where_the_renderer_may_differ(text: str) -> None:
    assert markdown_count(text) == 1


def test_any_dialect_takes_the_largest_reading() -> None:
    text = "<a href=x>a</a> www.b.com shop.co.uk [c](d)"
    assert wordpress_count(text) == 2  # the anchor and www.b.com
    assert markdown_count(text) == 3  # www.b.com, shop.co.uk and [c](d); HTML is no link
    assert lenient_count(text) == 3  # the anchor, www.b.com and [c](d)
    assert count_links(text) == count_links(text, LinkDialect.ANY) == 3
    assert count_links(text, "wordpress") == 3  # type: ignore[arg-type]
    assert markdown_count("www.example.example") == 0  # not a TLD linkify knows


# --- Linear time ------------------------------------------------------------------------------

DANGEROUS = [
    "[a](",
    "[",
    "](",
    "<a ",
    "<a href",
    "&amp;",
    "#x",
    "0123456789",
    "<!--",
    "`",
    " ",
    "http://a.",
    "www.a.",
    "a@b.",
    "[x][",
    "![",
    "<https:",
    "(",
    "\u200b",
    "a\u0301\u0302",
    "a.",
    "*a.com",
    "_x",
    "[1]: x\n",
    "a.com/,",
    "(b.com",
    "'",
    "..",
    "http://a.com/(",
    "a$",
    "é",
    "\n",
]
BUDGET = 0.5  # seconds per comment: ten times what 64 KB of any shape takes here


@st.composite
def hostile_comments(draw: st.DrawFn) -> str:
    unit = "".join(draw(st.lists(st.sampled_from(DANGEROUS), min_size=1, max_size=4)))
    size = draw(st.sampled_from([8 * 1024, 32 * 1024, 64 * 1024]))
    return ("Great post! " + unit * (size // len(unit) + 1))[:size]


@pytest.mark.parametrize("dialect", list(LinkDialect))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=hostile_comments())
def test_every_dialect_counts_a_64_kb_comment_of_any_shape_in_linear_time(
    dialect: LinkDialect, text: str
) -> None:
    started = time.perf_counter()
    count_links(text, dialect)
    assert time.perf_counter() - started < BUDGET


# --- Never fewer than markdown-it (differential) ----------------------------------------------

PIECES = [
    *("[", "]", "(", ")", "](", "[a]", "[a](b)", "[1]: http://x.com", "[1]", "[]", "![", "\\"),
    *("`", "*", "_", "&amp;", "&#58;", "<", ">", "<http://a.b>", "<a@b.c>", "<b>", "\n", "\n\n"),
    *(" ", "    ", "> ", "- ", "# ", "http://", "https://x.com/p", "ftp://", "mailto:", "//"),
    *("www.", "a.com", "b.org", "x.co", "y.it", "z.рф", "xn--p1ai", "localhost", "@", "a@b.com"),
    *(".", ",", ";", ":", "!", "?", "'", '"', "-", "/", "#", "=", "$", "+", "~", "{", "}", ":80"),
    *("é", "。", "a", "1", "\u00a0", "\u200b", "｜", "K", "ſ"),
]


def markdown_it_links(text: str) -> int:
    """link_open tokens of markdown-it (CommonMark, linkify on), inline children included."""
    markdown_it = pytest.importorskip("markdown_it")
    pytest.importorskip("linkify_it")
    parser = markdown_it.MarkdownIt("commonmark", {"linkify": True}).enable("linkify")

    def opened(tokens: list) -> int:  # type: ignore[type-arg]
        return sum((t.type == "link_open") + opened(t.children or []) for t in tokens)

    return opened(parser.parse(text))


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(PIECES), max_size=60).map("".join))
def test_markdown_never_counts_fewer_links_than_markdown_it(text: str) -> None:
    try:
        rendered = markdown_it_links(text)
    except RuntimeError:  # markdown-it-py's own inline parser gives up on a few of these
        assume(False)
    assert count_links(text, LinkDialect.MARKDOWN) >= markdown_count(text) >= rendered


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=2048))
def test_markdown_never_counts_fewer_links_than_markdown_it_on_any_text(text: str) -> None:
    try:
        rendered = markdown_it_links(text)
    except RuntimeError:
        assume(False)
    assert markdown_count(text) >= rendered
