"""Untrusted text made inert: controls, format characters and separators as codes, markup as
written, whatever the text holds."""

from __future__ import annotations

import io
import json
import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.markup import escape, render

from moderation.cli.untrusted import CODE_STYLE, cell
from moderation.text import inert

# Any code point, lone surrogates included (a JSON string from a site's API can carry one).
ANY_TEXT = st.text(st.characters(codec=None, categories=None, exclude_categories=()))
# Text salted with what attacks a terminal or a page.
HOSTILE = st.lists(
    st.sampled_from(
        [
            "\x1b[2J",
            "\x1b]8;;http://evil.example\x1b\\",
            "\x9b31m",
            "\u202e",
            "\u2066",
            "\u2069",
            "\u200b",
            "\U000e0041",
            "\u2028",
            "\n",
            "\t",
            "\r",
            "\x7f",
            "[/quote]",
            "[link=https://evil.example]",
            "[conceal]",
            "[/]",
            "\\",
            "<b>",
            "&amp;",
            "plain",
            "é",
            "👍🏽",
        ]
    )
).map("".join)
TEXT = st.one_of(ANY_TEXT, HOSTILE)
UNSHOWABLE = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def unshowable(text: str, allowed: str = "") -> list[str]:
    return [c for c in text if c not in allowed and unicodedata.category(c) in UNSHOWABLE]


@given(TEXT)
def test_plain_text_has_no_control_or_format_character(text: str) -> None:
    assert unshowable(inert.plain(text), allowed="\n\t") == []
    assert unshowable(inert.one_line(text), allowed="\t") == []
    assert unshowable(inert.plain(text, keep=""), allowed="") == []


@given(TEXT)
def test_text_without_hidden_characters_is_unchanged(text: str) -> None:
    if not any(inert.hidden(c) for c in text if c not in "\n\t"):
        assert inert.plain(text) == text


@given(TEXT)
def test_every_hidden_character_is_shown_by_its_code(text: str) -> None:
    shown = inert.one_line(text)
    codes = re.findall(r"<U\+([0-9A-F]{4,6})>", shown)
    # Codes the text itself spells are counted too: at least one per hidden character.
    hidden = [c for c in text if c != "\t" and inert.hidden(c)]
    assert len(codes) >= len(hidden)
    assert [c for run, is_code in inert.pieces(text, inert.ONE_LINE) if is_code for c in run] == (
        hidden
    )


@given(TEXT)
def test_no_rich_markup_survives(text: str) -> None:
    rendered = cell(text)
    # Markup is shown as written: the text rich shows is the inert text, character for
    # character, and the only style in it is the codes'.
    assert rendered.plain == inert.one_line(text)
    assert {span.style for span in rendered.spans} <= {CODE_STYLE}
    # Escaped for rich's markup instead, no tag survives rendering. (Its text can differ: rich
    # doubles a trailing backslash, one reason the commands print a Text, never markup.)
    assert render(escape(inert.one_line(text))).spans == []


@given(TEXT)
def test_a_terminal_receives_no_escape_but_the_codes_style(text: str) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=4000)
    console.print(cell(text), soft_wrap=True, highlight=False)
    written = out.getvalue()
    assert "\x1b]" not in written  # no OSC: no hyperlink, no title
    sgr = re.compile(r"\x1b\[[0-9;]*m")
    assert unshowable(sgr.sub("", written), allowed="\n") == []
    assert set(sgr.findall(written)) <= {"\x1b[7m", "\x1b[0m"}


@given(TEXT)
def test_html_is_escaped_with_codes(text: str) -> None:
    shown = inert.html(text)
    assert unshowable(shown, allowed="\n\t") == []
    without_codes = re.sub(r'<span class="ctl">U\+[0-9A-F]{4,6}</span>', "", shown)
    assert "<" not in without_codes and ">" not in without_codes


@given(st.recursive(TEXT, lambda inner: st.lists(inner) | st.dictionaries(TEXT, inner)))
def test_json_text_is_the_same_document_with_nothing_raw(document: object) -> None:
    written = inert.json_text(json.dumps(document, ensure_ascii=False))
    assert json.loads(written) == document
    assert unshowable(written) == []
    written.encode("utf-8")  # no lone surrogate left to fail the output


def test_codes_as_the_review_page_shows_them() -> None:
    assert inert.plain("a\u202eb\u2066c\x1b[2J\U000e0041") == (
        "a<U+202E>b<U+2066>c<U+001B>[2J<U+E0041>"
    )
    assert inert.plain("line\nnext\ttab\r") == "line\nnext\ttab<U+000D>"
    assert inert.one_line("line\nnext\ttab") == "line<U+000A>next\ttab"
    assert (
        inert.html("a\u202e<i>'\"&") == 'a<span class="ctl">U+202E</span>&lt;i&gt;&#39;&#34;&amp;'
    )
    assert inert.json_text('"\u202e\U000e0041\ud800"') == '"\\u202e\\udb40\\udc41\\ud800"'


def test_letters_marks_and_emoji_are_shown_as_they_are() -> None:
    for text in ("¡Qué bien! Привет, 你好", "e\u0301", "👍🏽 🇪🇸", "\u3000full width"):
        assert inert.plain(text) == text
    # A zero-width joiner is a format character: shown, even between emoji, as on the page.
    assert inert.plain("👨\u200d👩") == "👨<U+200D>👩"
