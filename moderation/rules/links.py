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

No backtracking pattern sees the text: every regular expression below is bounded, or has no two
quantifiers that can share a character, and every scan moves forward (or is memoised).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from enum import StrEnum

from moderation.rules.fold import fold


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


# --- WordPress: make_clickable, then check_comment's count ------------------------------------
# PHP's PCRE runs on bytes without UTF mode: \s is [ \t\n\v\f\r], \w is [A-Za-z0-9_], and every
# byte of a multibyte character is one of \x80-\xff. The text is read as its UTF-8 bytes, each
# byte one character (latin-1), so that lengths and classes are PHP's.

# wp_allowed_protocols()
_WP_PROTOCOLS = frozenset(
    {
        *("http", "https", "ftp", "ftps", "mailto", "news", "irc", "irc6", "ircs", "gopher"),
        *("nntp", "feed", "telnet", "mms", "rtsp", "sms", "svn", "tel", "fax", "xmpp", "webcal"),
        "urn",
    }
)
_WP_TAG = re.compile(r"(<[^<>]+>)")
_WP_CODE_OPEN = re.compile(r"<(?:code|pre|script|style)[ \t\n\x0b\x0c\r>]", re.I | re.A)
_WP_CODE_CLOSE = frozenset(("</code>", "</pre>", "</script>", "</style>"))
_WP_TAG_URL = re.compile(r"<[ \t\n\x0b\x0c\r]*\w{1,20}+://", re.A)
_WP_SPACE = re.compile(r"[ \t\n\x0b\x0c\r]")
_WP_NULL_SPACE = bytes.maketrans(b" \t\n\x0b\x0c\r", b"\0" * 6)
# _make_url_clickable_cb's pattern, its lookahead (?=\S{1,2000}\s) done by hand.
_WP_URL_HEAD = re.compile(r"[ \t\n\x0b\x0c\r(<.,;:!?]\w{1,20}+://", re.A)
_WP_URL_CHAR = r"[\w\x80-\xff#%~/@\[\]*(+=&$-]"
_WP_URL_BODY = re.compile(rf"{_WP_URL_CHAR}*+(?:['.,;:!?)]{_WP_URL_CHAR}++)*+", re.A)
_WP_WEB = re.compile(
    r"([ \t\n\x0b\x0c\r>])((?:www|ftp)\.[\w\x80-\xff#$%&~/.\-;:=,?@\[\]+]+)", re.I | re.A
)
_WP_EMAIL_HEAD = re.compile(r"[ \t\n\x0b\x0c\r>][.0-9a-z_+-]+@", re.I | re.A)
_WP_EMAIL_LABELS = re.compile(r"(?:[0-9a-z-]+\.)+", re.I | re.A)
_WP_EMAIL_TLD = re.compile(r"[0-9a-z]{2,}", re.I | re.A)
_WP_COLON = re.compile(r":|&#0*58;|&#x0*3a;", re.I)


def wordpress_count(text: str) -> int:
    """The links WordPress 6.1's ``check_comment()`` counts: ``<a `` ... ``href`` after
    ``make_clickable``, so bare URLs of its allowed protocols, ``www.``/``ftp.`` hosts and
    e-mail addresses count, outside ``<code>``, ``<pre>``, ``<script>`` and ``<style>``."""
    raw = text.encode("utf-8", "surrogatepass").decode("latin-1")
    return _wp_count_anchors(_wp_make_clickable(raw))


def _wp_count_anchors(s: str) -> int:
    # preg_match_all('/<a [^>]*href/i'): [^>]* cannot pass a '>', so each stretch between two
    # '>' holds at most one match, found when an "<a " in it has "href" after it.
    low = s.lower()
    count = pos = 0
    while (i := low.find("<a ", pos)) >= 0:
        end = low.find(">", i + 3)
        if end < 0:
            end = len(low)
        if low.find("href", i + 3, end) >= 0:
            count += 1
        pos = end + 1
    return count


def _wp_make_clickable(text: str) -> str:
    out = []
    nested = 0
    for piece in _WP_TAG.split(text):
        if _WP_CODE_OPEN.match(piece):
            nested += 1
        elif nested and piece.lower() in _WP_CODE_CLOSE:
            nested -= 1
        if nested or piece in ("", "0") or (piece[0] == "<" and not _WP_TAG_URL.match(piece)):
            out.append(piece)
        elif len(piece) > 10000:
            for chunk in _wp_split_by_whitespace(piece, 2100):
                out.append(chunk if len(chunk) > 2101 else _wp_make_clickable(chunk))
        else:
            padded = _wp_emails(_WP_WEB.sub(_wp_web_link, _wp_urls(f" {piece} ")))
            out.append(padded[1:-1])
    return _wp_unnest_anchors("".join(out))


def _wp_split_by_whitespace(s: str, goal: int) -> list[str]:
    nulls = s.encode("latin-1").translate(_WP_NULL_SPACE)
    chunks = []
    start = 0
    while goal < len(s) - start:
        pos = nulls.rfind(b"\0", start, start + goal + 1)
        if pos < 0:
            pos = nulls.find(b"\0", start + goal + 1)
            if pos < 0:
                break
        chunks.append(s[start : pos + 1])
        start = pos + 1
    rest = s[start:]
    if rest and rest != "0":  # PHP's `if ( $string )`: "0" is false
        chunks.append(rest)
    return chunks


def _wp_urls(s: str) -> str:
    out: list[str] = []
    last = pos = 0
    space = -1  # the first whitespace at or after the last lookahead
    while match := _WP_URL_HEAD.search(s, pos):
        lead, after = match.start(), match.end()
        if space < after:
            space = _WP_SPACE.search(s, after).start()  # type: ignore[union-attr]  # s ends in " "
        if not 0 < space - after <= 2000:
            pos = lead + 1
            continue
        end = _WP_URL_BODY.match(s, after).end()  # type: ignore[union-attr]
        url, paren = s[lead + 1 : end], ""
        if s[end] == ")":
            paren = ")"
            end += 1
        link = _wp_url_link(url, paren)
        if link is not None:
            out += (s[last:lead], s[lead], link)
            last = end
        pos = end
    out.append(s[last:])
    return "".join(out)


def _wp_url_link(url: str, paren: str) -> str | None:
    """_make_url_clickable_cb: the anchor, or None where esc_url() empties the URL."""
    if paren and url.find("(") > 0:
        url, suffix = url + paren, ""
    else:
        suffix = paren
    opens, closes, end = url.count("("), url.count(")"), len(url)
    while opens < closes:  # parentheses only when paired
        cut = url.rfind(")", 0, end)
        opens -= url.count("(", cut, end)
        closes -= 1
        end = cut
    url, suffix = url[:end], url[end:] + suffix
    scheme = url[: url.find(":")].lower()
    if scheme not in _WP_PROTOCOLS or (scheme == "feed" and not _wp_feed_kept(url)):
        return None
    return f'<a href="{url}" rel="nofollow ugc">{url}</a>{suffix}'


def _wp_feed_kept(url: str) -> bool:
    # wp_kses_bad_protocol() reads "feed:" as a prefix and checks what follows it again: a
    # second colon (or &#58; / &#x3a;) before any "/?" changes the URL, and esc_url() drops it.
    kept: list[str] = []
    for char in url:  # _deep_replace of %0d/%0a until none is left
        kept.append(char)
        if char in "dDaA" and len(kept) >= 3 and kept[-2] == "0" and kept[-3] == "%":
            del kept[-3:]
    rest = "".join(kept).replace(";//", "://")
    rest = rest[rest.find(":") + 1 :]
    colon = _WP_COLON.search(rest)
    return colon is None or "/?" in rest[: colon.start()]


def _wp_web_link(match: re.Match[str]) -> str:
    dest, tail = "http://" + match.group(2), ""
    if dest[-1] in ".,;:)":
        dest, tail = dest[:-1], dest[-1]
    return f'{match.group(1)}<a href="{dest}" rel="nofollow ugc">{dest}</a>{tail}'


def _wp_emails(s: str) -> str:
    if "@" not in s:
        return s
    out: list[str] = []
    last = pos = 0
    while match := _WP_EMAIL_HEAD.search(s, pos):
        lead = match.start()
        end = _wp_email_end(s, match.end())
        if end < 0:
            pos = lead + 1
            continue
        email = s[lead + 1 : end]
        out += (s[last:lead], s[lead], '<a href="mailto:', email, '">', email, "</a>")
        last = pos = end
    out.append(s[last:])
    return "".join(out)


def _wp_email_end(s: str, start: int) -> int:
    # (([0-9a-z-]+\.)+[0-9a-z]{2,}): the most labels after which two letters or digits follow.
    labels = _WP_EMAIL_LABELS.match(s, start)
    if labels is None:
        return -1
    after = labels.end()
    while (tld := _WP_EMAIL_TLD.match(s, after)) is None:
        dot = s.rfind(".", start, after - 1)
        if dot < 0:
            return -1
        after = dot + 1
    return tld.end()


def _wp_unnest_anchors(s: str) -> str:
    # preg_replace('#(<a([ \r\n\t]+[^>]+?>|>))<a [^>]+?>([^>]+?)</a></a>#i', '$1$3</a>'),
    # each candidate "<a" decided from the next three '>' after it.
    low = s.lower()
    if "</a></a>" not in low:
        return s
    closes = [i for i, char in enumerate(low) if char == ">"]

    def next_close(at: int) -> int:
        k = bisect_left(closes, at)
        return closes[k] if k < len(closes) else -1

    out: list[str] = []
    last = 0
    at = low.find("<a")
    while at >= 0:
        outer = next_close(at + 2)
        if outer < 0:
            break
        opened = outer == at + 2 or (low[at + 2] in " \r\n\t" and outer - at - 2 >= 2)
        inner = next_close(outer + 4) if low.startswith("<a ", outer + 1) else -1
        close = next_close(inner + 1) if inner >= outer + 5 else -1
        if opened and close >= inner + 5 and low.startswith("</a></a>", close - 3):
            out += (s[last : outer + 1], s[inner + 1 : close - 3], "</a>")
            last = close + 5
            at = low.find("<a", last)
        else:
            at = low.find("<a", at + 1)
    out.append(s[last:])
    return "".join(out)


# --- Lenient: today's heuristics on the folded text -------------------------------------------

_L_ANCHOR = re.compile(r"<a\s", re.I)
_L_HREF = re.compile(r"href\s*=", re.I)
_L_VALUE = re.compile(r"\s*[\"']?[^\"'\s>]*")
_L_NON_SPACE = re.compile(r"\S")
# A bare URL: a scheme (and its disguises: hxxp, h t t p, fullwidth once folded) or www.
_L_SCHEME = r"h\s?[tx]\s?[tx]\s?p\s?s?\s?(?::|\[:\])\s?/\s?/"
_L_BARE = re.compile(rf"(?:{_L_SCHEME}|\bwww\s?\.)[^\s<>\"'()\[\]]+", re.I)


class _Next:
    """The next occurrence of a character at or after a position that only grows."""

    def __init__(self, text: str, char: str) -> None:
        self.text, self.char = text, char
        self.found: int | None = -1  # None: there is none any more

    def __call__(self, at: int) -> int:
        if self.found is not None and self.found < at:
            k = self.text.find(self.char, at)
            self.found = k if k >= 0 else None
        return -1 if self.found is None else self.found


def _inside(starts: list[int], ends: list[int], at: int) -> bool:
    k = bisect_right(starts, at) - 1
    return k >= 0 and at < ends[k]


def lenient_count(text: str) -> int:
    """HTML anchors (any whitespace after ``<a``), markdown links ``[text](url)`` and bare URLs
    with disguised schemes, on the folded text; the URL of an anchor or a markdown link is not
    counted again as a bare URL."""
    view = fold(text)
    # <a\s[^>]*?href\s*=\s*["']?([^"'\s>]*): an anchor is the first "<a" after the last ">"
    # before an "href=", taken in order; an href before the one an anchor ends at has none.
    a_starts: list[int] = []
    a_ends: list[int] = []
    pos = floor = 0
    for href in _L_HREF.finditer(view):
        at = href.start()
        if at < pos:
            continue
        low = max(pos, floor)
        floor = at + 1
        anchor = _L_ANCHOR.search(view, max(low, view.rfind(">", low, at) + 1), at)
        if anchor is not None:
            a_starts.append(anchor.start())
            pos = _L_VALUE.match(view, href.end()).end()  # type: ignore[union-attr]
            a_ends.append(pos)

    # \[[^\]\n]*\]\(\s*([^)\s]+)[^)]*\): from the first "[", the first "]" or line end decides
    # for every "[" before it.
    m_starts: list[int] = []
    m_ends: list[int] = []
    next_bracket, next_line, next_paren = _Next(view, "]"), _Next(view, "\n"), _Next(view, ")")
    next_text = -1
    pos = 0
    while (start := view.find("[", pos)) >= 0:
        bracket, line = next_bracket(start + 1), next_line(start + 1)
        if bracket < 0:
            break
        if 0 <= line < bracket:
            pos = line + 1
            continue
        pos = bracket + 1
        if not view.startswith("(", bracket + 1):
            continue
        paren = next_paren(bracket + 2)
        if paren < 0:
            break
        if next_text < bracket + 2:
            found = _L_NON_SPACE.search(view, bracket + 2)
            next_text = found.start() if found else len(view)
        if next_text >= paren:
            continue
        pos = paren + 1
        if not _inside(a_starts, a_ends, start):
            m_starts.append(start)
            m_ends.append(pos)

    bare = sum(
        1
        for match in _L_BARE.finditer(view)
        if not _inside(a_starts, a_ends, match.start())
        and not _inside(m_starts, m_ends, match.start())
    )
    return len(a_starts) + len(m_starts) + bare


# --- Markdown: CommonMark with linkify, counted from above ------------------------------------
# Exact where markdown-it is simple to follow (a link's destination, a definition), and an upper
# bound where its inline parser decides what is text: every place the text may be cut into
# separate text tokens (emphasis, escapes, entities, code spans, brackets, HTML) is considered
# both ways, each candidate link is kept to the shortest extent it can have, and the count is
# the most candidates that fit side by side. So the count is never below markdown-it's.

# linkify-it's P (punctuation) is a newer Unicode than this Python's: these were unassigned.
_NEWER_PUNCT = frozenset(
    chr(code)
    for code in (
        *(0x1B4E, 0x1B4F, 0x1B7F, 0x10D6E, 0x113D4, 0x113D5, 0x113D7, 0x113D8, 0x11BE1),
        *(0x16D6D, 0x16D6E, 0x16D6F, 0x1E5FF),
        *range(0x11B00, 0x11B0A),
        *range(0x11F43, 0x11F50),
    )
)
_ASCII_PUNCT = frozenset("!\"#%&'()*,-./:;?@[\\]_{}")
_SEPARATORS = "<>\uff5c"
_ZCC = r"\x00-\x20\x7f-\x9f\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_MD_WORD_END = re.compile(f"[{_ZCC}]")
_MD_HIT = re.compile(r"[.@]|localhost|https?:|ftp:|mailto:|//", re.I)
_MD_RUN = re.compile(r"[A-Za-z0-9$+=^`|~\-\x80-\U0010ffff]*")
_MD_XN = re.compile(r"xn--[a-z0-9\-]{1,59}", re.I)
# Labels of letters, digits and ASCII symbols, each followed by a dot: valid labels for
# linkify-it, found in one step (what else it takes is checked a label at a time).
_MD_LABEL_CHAR = r"(?:[^\W_]|[$+=^`|~])"
_MD_CHAIN = re.compile(
    rf"(?:(?:(?i:xn--[a-z0-9\-]{{1,59}})|{_MD_LABEL_CHAR}"
    rf"(?:(?:{_MD_LABEL_CHAR}|-){{0,61}}{_MD_LABEL_CHAR})?)\.)*"
)
_MD_TLD = re.compile(
    "biz|com|edu|gov|net|org|pro|web|xxx|aero|asia|coop|info|museum|name|shop|рф|"
    "a[cdefgilmnoqrstuwxz]|b[abdefghijmnorstvwyz]|c[acdfghiklmnoruvwxyz]|d[ejkmoz]|e[cegrstu]|"
    "f[ijkmor]|g[abdefghilmnpqrstuwy]|h[kmnrtu]|i[delmnoqrst]|j[emop]|k[eghimnprwyz]|"
    "l[abcikrstuvy]|m[acdeghklmnopqrstuvwxyz]|n[acefgilopruz]|om|p[aefghklmnrstwy]|qa|"
    "r[eosuw]|s[abcdeghijklmnortuvxyz]|t[cdfghjklmnortvwz]|u[agksyz]|v[aceginu]|w[fs]|y[et]|"
    "z[amw]|xn--[a-z0-9\\-]{1,59}",
    re.I,
)
_MD_IP4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
)
_MD_LOCALHOST = re.compile("localhost", re.I)
_MD_SCHEME_AT = re.compile(r"(?=(https?:|ftp:|mailto:|//))", re.I)
_MD_AUTH_STOP = re.compile(r"[@/\[\]()]")
_MD_PATH_PLAIN = re.compile(f"[^()\\[\\]{{}}.,\"'?!\\-;{_SEPARATORS}{_ZCC}]*")
_MD_PATH_CLOSE = {"[": "]", "(": ")", "{": "}"}
# A character a fuzzy link's host may follow (linkify-it's tpl_link_fuzzy), before what may be
# the host's first label and its dot.
_MD_FUZZY_PREFIX = re.compile(
    "(?:[!\"#%&'()*,;?\\[\\\\\\]{}$+<=>^`|\uff5c]|[^\\w\\x00-\\x7f])"
    "(?=[A-Za-z0-9~\\x80-\\U0010ffff][A-Za-z0-9$+=^`|~\\-\\x80-\\U0010ffff]{0,62}\\.)"
)
_MD_NAME_FIRST = frozenset(
    "-;:&=+$,.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_\u017f\u212a\u0130\u0131"
)
_MD_NAME = _MD_NAME_FIRST | {'"'}
# Where markdown-it may end one text token and start the next: escapes and hard breaks,
# entities, emphasis, code spans, links and images, HTML and autolinks.
_MD_CUT = re.compile(
    r"\\[!-/:-@\[-`{-~\n]|&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
    # underscores between two letters or digits never emphasise
    r"|(?<!\w)_+|(?<!_)_++(?!\w)"
    r"|`+|\*+|!(?=\[)|\]\(?|[\[)<>]"
)
# Candidates tried (with the words holding them) before the rest of a comment is bounded by
# its link-like characters: some 15 ms; 64 KB of the corpora's prose tries 550 to 1,800.
_MD_BUDGET = 2000
# More definitions than this (no comment has them) and every bracketed label counts as defined.
_MD_MANY_DEFINITIONS = 100
_MD_PROTO = re.compile(r"(?=(?:https?|ftp)://)", re.I)
# A link the inline parser certainly makes: "[" (not escaped, not after "]") plain text "](" a
# plain destination, a plain title, on one line.
_MD_CERTAIN_LINK = re.compile(
    r"(?<![\]\\])\[[^\[\]`<>\\\n]*\]\("
    r"[ \t]*(?:([^\s()\\<>`\"'&\[\]]+)(?:[ \t]+\"[^\"\\\n<>`]*\")?)?[ \t]*\)"
)
_MD_UNSURE_LINK = re.compile(r"\]\([^)]*\)")
_MD_BAD_PROTO = re.compile(r"(?:vbscript|javascript|file|data):", re.I)
# A bracketed label without brackets in it (escapes skipped), and a definition markdown-it
# surely reads as one: up to three spaces, the label, a plain destination, a plain title.
_MD_GROUP = re.compile(r"\\[\s\S]|\[((?:[^\[\]\\]|\\[\s\S])*)\]")
_MD_DEFINITION = re.compile(
    r"^ {0,3}\[([^\[\]\\\n]*)\]:[ \t]*([^\s()\\<>`\"'&\[\]]+)"
    r"(?:[ \t]+(?:\"[^\"\\\n]*\"|'[^'\\\n]*'|\([^()\\\n]*\)))?[ \t]*$",
    re.M,
)
_MD_AUTOLINK = re.compile(r"<([^<>\x00-\x20]*)>")
_MD_AUTOLINK_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{1,31}:")


def _punct(char: str) -> bool:
    """Unicode punctuation as linkify-it's P."""
    if char < "\x80":
        return char in _ASCII_PUNCT
    return unicodedata.category(char)[0] == "P" or char in _NEWER_PUNCT


def _pseudo_letter(char: str) -> bool:
    """linkify-it's pseudo letter, for a character inside a word (never whitespace)."""
    return char not in _SEPARATORS and not _punct(char)


def _port_ok(digits: str) -> bool:
    """linkify-it's port: up to 65535 in five digits, any four."""
    if len(digits) <= 4 or (len(digits) == 5 and digits[0] in "12345"):
        return True
    if len(digits) != 5 or digits[0] != "6":
        return False
    rest = digits[1:]  # 6[0-4]ddd | 65[0-4]dd | 655[0-2]d | 6553[0-5]
    return any(
        rest.startswith(fixed) and rest[len(fixed)] in last
        for fixed, last in (("", "01234"), ("5", "01234"), ("55", "012"), ("553", "012345"))
    )


def markdown_count(text: str) -> int:
    """Never fewer than the links markdown-it (CommonMark, linkify on) renders as ``<a>``."""
    t = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    masks, certain = _md_certain_links(t)
    intervals: list[tuple[int, int]] = []
    masks = sorted(masks + _md_references(t, masks, intervals))
    mask_starts = [s for s, _ in masks]
    mask_ends = [e for _, e in masks]
    # Whatever the link after a "](", its closing parenthesis is not before the first one, so
    # the latest "](" (outside the sure links) before each ")" stands for all of them.
    for match in _MD_UNSURE_LINK.finditer(t, 0, t.rfind(")") + 1):
        close, before = match.end(), match.end() - 1
        while (at := t.rfind("](", match.start(), before)) >= 0:
            k = bisect_right(mask_starts, at) - 1
            if k < 0 or at >= mask_ends[k]:
                intervals.append((at, close))
                break
            before = mask_starts[k]
    for match in _MD_AUTOLINK.finditer(t):
        content = match.group(1)
        if ("@" in content or _MD_AUTOLINK_SCHEME.match(content)) and not _inside(
            mask_starts, mask_ends, match.start()
        ):
            intervals.append(match.span())
    scan = t
    if masks:
        pieces: list[str] = []
        last = 0
        for start, end in masks:
            pieces += (t[last:start], " " * (end - start))
            last = end
        scan = "".join(pieces) + t[last:]
    _md_linkify(scan, intervals)
    return certain + _most_disjoint(intervals)


def _most_disjoint(intervals: list[tuple[int, int]]) -> int:
    count, end = 0, -1
    for start, stop in sorted(intervals, key=lambda interval: interval[1]):
        if start >= end:
            count, end = count + 1, stop
    return count


def _md_certain_links(t: str) -> tuple[list[tuple[int, int]], int]:
    """Inline links markdown-it surely makes (plain text, plain destination, one line): their
    extents, kept out of the rest of the count, and how many."""
    masks = [
        match.span()
        for match in _MD_CERTAIN_LINK.finditer(t)
        if not (match.group(1) and _MD_BAD_PROTO.match(match.group(1)))
    ]
    return masks, len(masks)


def _normal_label(label: str) -> str:
    # Coarser than markdown-it's normalizeReference: labels it finds equal are equal here.
    return " ".join(label.lower().upper().split())


def _md_references(
    t: str, masks: list[tuple[int, int]], intervals: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Reference links whose label has a definition, as intervals; returns the definition lines
    markdown-it surely reads as definitions (no link), to be kept out of the count."""
    if "]:" not in t:
        return []
    groups = [(m.start(), m.end() - 1) for m in _MD_GROUP.finditer(t) if m.group(1) is not None]
    labelled = [(o, c) for o, c in groups if t.startswith(":", c + 1)]
    if not labelled:
        return []
    definitions: list[tuple[int, int]] = []
    sure_groups = set()
    everything = len(labelled) > _MD_MANY_DEFINITIONS  # then every label counts as defined
    defined = set() if everything else {_normal_label(t[o + 1 : c]) for o, c in labelled}
    defined.discard("")
    if not everything:
        previous_end = -2
        for line in _MD_DEFINITION.finditer(t):
            start = line.start()
            if not _normal_label(line.group(1)) or _MD_BAD_PROTO.match(line.group(2)):
                continue
            # Not a paragraph's continuation: the line before is blank or a definition too.
            before = t.rfind("\n", 0, start - 1) + 1 if start else 0
            if start and previous_end != start - 1 and t[before : start - 1].strip():
                continue
            definitions.append(line.span())
            sure_groups.add(t.index("[", start))
            previous_end = line.end()
    mask_starts = [s for s, _ in masks]
    mask_ends = [e for _, e in masks]
    for o, c in groups:
        if (
            o not in sure_groups
            and not _inside(mask_starts, mask_ends, o)
            and (everything or _normal_label(t[o + 1 : c]) in defined)
        ):
            intervals.append((o, c + 1))
    return definitions


def _md_linkify(scan: str, intervals: list[tuple[int, int]]) -> None:
    """Every link linkify-it may find in some text token of markdown-it's, as the shortest
    interval it can have."""
    reverse = scan[::-1]
    size = len(scan)
    word_end = spent = 0
    while hit := _MD_HIT.search(scan, word_end):
        after = _MD_WORD_END.search(scan, hit.start())
        word_end = after.start() if after else size
        before = _MD_WORD_END.search(reverse, size - hit.start())
        word_start = size - before.start() if before else 0
        word = _Word(scan, word_start, word_end, intervals)
        spent += word.candidates
        if spent > _MD_BUDGET:
            # Past the budget (a comment made of link-like runs, far beyond prose), every
            # remaining link still has one of these characters to itself.
            intervals.extend((h.start(), h.start() + 1) for h in _MD_HIT.finditer(scan, word_start))
            return
        word.find()


Finder = Callable[[int, int], int]


class _Word:
    """The links linkify-it may find in one word (a run without whitespace or controls), cut
    into text tokens in any of the ways markdown-it may cut it."""

    def __init__(self, text: str, start: int, end: int, out: list[tuple[int, int]]) -> None:
        w = text[start:end]
        self.w, self.offset, self.out = w, start, out
        self.ascii = w.isascii()
        self.paths: dict[tuple[int, int], int] = {}
        self.hosts: dict[tuple[int, int], int] = {}
        self.chains: dict[int, list[tuple[int, int, int, int]]] = {}
        self.text, self.end = text, end
        self.cuts: list[int] = []
        self.starts: set[int] = set()
        self.schemes = list(_MD_SCHEME_AT.finditer(w))
        self.prefixes = list(_MD_FUZZY_PREFIX.finditer(w)) if "." in w else []
        self.candidates = 1 + len(self.schemes) + w.count("@") + len(self.prefixes)

    def find(self) -> None:
        """Adds the intervals of the word's links."""
        w, text, start, end = self.w, self.text, self.offset, self.end
        # Where a text token may end (cuts) and start; one character past the word lets an
        # escape see the line break after it.
        spans = [m.span() for m in _MD_CUT.finditer(text, start, min(end + 1, len(text)))]
        self.cuts = [cut - start for cut, _ in spans if cut < end]
        self.starts = {after - start for _, after in spans}
        protos = [m.start() - start for m in _MD_PROTO.finditer(text, start, end)]
        if protos:
            self.cuts = sorted(self.cuts + protos)
            self.starts.update(protos)
        for match in self.schemes:
            self.scheme(match.start(), match.group(1).lower())
        at = w.find("@", 1)
        while at > 0:
            self.email(at)
            at = w.find("@", at + 1)
        if "." in w:
            after_prefix = {0}
            self.fuzzy(0)
            for match in self.prefixes:
                start = match.end()
                prefix = w[start - 1]
                if prefix >= "\x80" and prefix != "\uff5c" and not _punct(prefix):
                    continue
                after_prefix.add(start)
                self.fuzzy_after_prefix(start)
            for start in self.starts - after_prefix:
                self.fuzzy(start)

    def starts_token(self, s: int) -> bool:
        return s == 0 or s in self.starts

    def add(self, start: int, readings: list[tuple[Finder, int]], after: int) -> None:
        """Keeps the shortest extent a link starting at ``start`` has in any tokenisation and
        any of its readings (a regular expression's alternatives, each found by
        ``find(arg, limit)``): the text token ends at the first cut after ``after`` where the
        reading finds the link whole, or at the end of the word."""
        cuts = self.cuts
        k = bisect_right(cuts, after)
        limits = cuts[k : k + 3]
        more = len(cuts) - k > 3
        if not more:
            limits.append(len(self.w))
        best = -1
        for find, arg in readings:
            for limit in limits:
                end = find(arg, limit)
                if end >= 0:
                    break
            else:
                if not more:
                    continue
                end = limits[-1] + 1  # the link, if any, is longer than the last cut tried
            if best < 0 or end < best:
                best = end
        if best >= 0:
            self.out.append((self.offset + start, self.offset + best))

    # schemes: http(s)/ftp also by markdown-it's own rule, which takes any non-letter before
    def scheme(self, s: int, name: str) -> None:
        w = self.w
        before = w[s - 1] if s else ""
        if name in ("http:", "https:", "ftp:"):
            if self.starts_token(s) or not (
                before.isascii() and (before.isalnum() or before == "+")
            ):
                v = s + len(name)
                if not w.startswith("//", v):
                    return
                self.add(s, [(self.http_user, v), (self.http, v)], v)
                # markdown-it's linkify rule ends a text token where its link ends, and an
                # e-mail address may start there (nothing else starts on punctuation).
                if "@" in w:
                    whole = self.http_user(v, len(w))
                    if whole < 0:
                        whole = self.http(v, len(w))
                    while whole > v and w[whole - 1] == "*":
                        whole -= 1
                    if whole > v:
                        self.starts.add(whole)
            return
        if not (
            self.starts_token(s) or (before != "_" and (before in _SEPARATORS or _punct(before)))
        ):
            return
        if name == "mailto:":
            self.add(s, [(self.mailto, s + 7)], s + 7)
        elif self.starts_token(s) or before not in ":/":
            p = s + 2
            readings = [(self.slashes_user_local, p), (self.slashes_user, p)]
            self.add(s, [*readings, (self.slashes_local, p), (self.slashes, p)], p)

    def user(self, p: int, limit: int) -> int:
        """Where the host starts after ``user:password@``, or -1."""
        stop = _MD_AUTH_STOP.search(self.w, p, min(limit, p + 51))
        if stop and stop.group() == "@" and stop.start() > p:
            return stop.start() + 1
        return -1

    def http_user(self, v: int, limit: int) -> int:
        host = self.user(v + 2, limit)
        return self.http(host - 2, limit) if host >= 0 else -1

    def http(self, v: int, limit: int) -> int:
        if v + 2 > limit:
            return -1
        end = self.host(v + 2, limit, "domain", 0, True)
        return self.path(end, limit) if end >= 0 else -1

    def slashes_user_local(self, p: int, limit: int) -> int:
        host = self.user(p, limit)
        return self.slashes_local(host, limit) if host >= 0 else -1

    def slashes_user(self, p: int, limit: int) -> int:
        host = self.user(p, limit)
        return self.slashes(host, limit) if host >= 0 else -1

    def slashes_local(self, p: int, limit: int) -> int:
        local = _MD_LOCALHOST.match(self.w, p, limit)
        if local is None:
            return -1
        end = self.port(local.end(), limit)
        return self.path(end, limit) if end >= 0 and self.terminates(end, limit) else -1

    def slashes(self, p: int, limit: int) -> int:
        end = self.host(p, limit, "root", 1, True)
        return self.path(end, limit) if end >= 0 else -1

    def mailto(self, v: int, limit: int) -> int:
        w = self.w
        if v >= limit or w[v] not in _MD_NAME_FIRST:
            return -1
        k = v + 1
        while k < limit and k - v < 64 and w[k] in _MD_NAME:
            k += 1
        if k >= limit or w[k] != "@":
            return -1
        return self.host(k + 1, limit, "domain", 0, False)

    def email(self, at: int) -> None:
        w = self.w
        s = -1
        for k in range(at - 1, max(-1, at - 65), -1):
            if w[k] not in _MD_NAME:
                break
            if w[k] in _MD_NAME_FIRST and (self.starts_token(k) or w[k - 1] in '<>\uff5c"('):
                s = k
                break
        if s >= 0:
            self.add(s, [(self.email_ip, at + 1), (self.email_domain, at + 1)], at)

    def email_ip(self, p: int, limit: int) -> int:
        ip = _MD_IP4.match(self.w, p, limit)
        return ip.end() if ip and self.terminates(ip.end(), limit) else -1

    def email_domain(self, p: int, limit: int) -> int:
        return self.host(p, limit, "tld", 1, False)

    def fuzzy(self, s: int) -> None:
        w = self.w
        if s >= len(w):
            return
        if not self.starts_token(s):
            before = w[s - 1]
            if before in ".:/-_@" or not (before in "$+<=>^`|\uff5c" or _punct(before)):
                return
        self.fuzzy_after_prefix(s)

    def fuzzy_after_prefix(self, s: int) -> None:
        w = self.w
        n = len(w)
        char = w[s]
        if char in "$+<=>^`|\uff5c" or (char in _ASCII_PUNCT if char < "\x80" else _punct(char)):
            return
        # The first label, whole in every token that has the dot after it.
        first = self.run(s, n)
        if first >= n or w[first] != "." or not self.label(s, first):
            return
        cuts = self.cuts
        if cuts and cuts[-1] > first:
            self.add(s, [(self.fuzzy_rest, first)], first)
            return
        end = self.hosts.get((first, n))
        if end is None:
            end = self.fuzzy_host(first, n)
        if end >= 0:
            self.out.append((self.offset + s, self.offset + self.path(end, n)))

    def fuzzy_rest(self, dot: int, limit: int) -> int:
        end = self.fuzzy_host(dot, limit)
        return self.path(end, limit) if end >= 0 else -1

    def chain(self, p: int, limit: int) -> tuple[int, int, int, int]:
        """The labels, each followed by a dot, from p: where the last run starts and ends, the
        last dot and the one before it (-1 when there are fewer)."""
        w = self.w
        last = previous = -1
        while True:
            q = _MD_CHAIN.match(w, p, limit).end()  # type: ignore[union-attr]
            if q > p:  # plain labels, skipped in one step
                before = w.rfind(".", p, q - 1)
                previous, last, p = before if before >= 0 else last, q - 1, q
            j = self.run(p, limit)
            if not (j < limit and w[j] == "." and self.label(p, j)):
                return p, j, last, previous
            previous, last, p = last, j, j + 1

    def fuzzy_host(self, dot: int, limit: int) -> int:
        """(domain.)+ tld, port and terminator, from the first dot; shared by every start of
        the same chain of labels."""
        known = self.hosts.get((dot, limit))
        if known is not None:
            return known
        spans = self.chains.setdefault(limit, [])
        k = bisect_right(spans, (dot, len(self.w) + 1)) - 1
        if k >= 0 and spans[k][0] <= dot <= spans[k][1]:
            _, last, found, shorter = spans[k]
        else:
            w = self.w
            p, j, last, previous = self.chain(dot + 1, limit)
            if last < 0:
                last, previous = dot, -1
            elif previous < 0:
                previous = dot
            found = -1
            if j > p and _MD_TLD.fullmatch(w, p, j):
                end = self.port(j, limit)
                if end >= 0 and self.terminates(end, limit):
                    found = end
            shorter = -1
            if (
                found < 0
                and previous >= 0
                and (p >= limit or (_punct(w[p]) and w[p] != "-"))
                and _MD_TLD.fullmatch(w, previous + 1, last)
            ):
                shorter = last
            insort(spans, (dot, last, found, shorter))
        # One label fewer only when the start's first dot is not the chain's last.
        result = found if found >= 0 else (shorter if dot < last else -1)
        self.hosts[(dot, limit)] = result
        return result

    def host(self, p: int, limit: int, last: str, min_dots: int, port: bool) -> int:
        """linkify-it's host (labels, a last label of the kind asked), port, terminator."""
        w = self.w
        q, j, last_dot, previous = self.chain(p, limit)
        dots = 0 if last_dot < 0 else (1 if previous < 0 else 2)  # as many as matter
        if dots >= min_dots and self.last_label(last, q, j):
            end = self.port(j, limit) if port else j
            return end if end >= 0 and self.terminates(end, limit) else -1
        if (
            dots > min_dots
            and (q >= limit or (_punct(w[q]) and w[q] != "-"))
            and self.last_label(last, previous + 1 if previous >= 0 else p, last_dot)
        ):
            return last_dot
        return -1

    def last_label(self, kind: str, i: int, j: int) -> bool:
        if kind == "tld":
            return j > i and _MD_TLD.fullmatch(self.w, i, j) is not None
        if kind == "root":
            return 0 < j - i <= 63 and (
                "-" not in self.w[i:j] or _MD_XN.fullmatch(self.w, i, j) is not None
            )
        return self.label(i, j)

    def label(self, i: int, j: int) -> bool:
        if not 0 < j - i <= 63:
            return False
        w = self.w
        if j - i == 1:
            return w[i] != "-"
        return (w[i] != "-" and w[j - 1] != "-") or _MD_XN.fullmatch(w, i, j) is not None

    def run(self, p: int, limit: int) -> int:
        """The end of the pseudo letters and hyphens from p (64 at most: no label is longer)."""
        w = self.w
        stop = p + 64
        if stop > limit:
            stop = limit
        end = _MD_RUN.match(w, p, stop).end()  # type: ignore[union-attr]
        if not self.ascii:
            for k in range(p, end):
                if w[k] >= "\x80" and not _pseudo_letter(w[k]):
                    return k
        return end

    def port(self, h: int, limit: int) -> int:
        w = self.w
        if not (h + 1 < limit and w[h] == ":" and w[h + 1].isdecimal()):
            return h
        j = h + 1
        while j < limit and w[j].isdecimal():
            j += 1
        return j if _port_ok(w[h + 1 : j]) else -1

    def terminates(self, t: int, limit: int) -> bool:
        if t >= limit:
            return True
        w = self.w
        char = w[t]
        if char in _SEPARATORS:
            return True
        if not _punct(char) or char in "-_":
            return False
        if t + 1 >= limit:
            return True
        if char == ":":
            return not w[t + 1].isdecimal()
        if char == ".":
            return w[t + 1] != "-" and _punct(w[t + 1])
        return True

    def path(self, t: int, limit: int) -> int:
        w = self.w
        if t >= limit or w[t] not in "/?#":
            return t
        end = self.path_loop(t + 1, limit)
        if end > t + 1:
            return end
        return t + 1 if w[t] == "/" else t

    def path_loop(self, i: int, limit: int) -> int:
        """linkify-it's src_path repetition; where unsure it stops early (a shorter link)."""
        w = self.w
        seen = []
        while i < limit:
            known = self.paths.get((i, limit))
            if known is not None:
                i = known
                break
            seen.append(i)
            plain = _MD_PATH_PLAIN.match(w, i, limit).end()  # type: ignore[union-attr]
            if plain > i:
                i = plain
                continue
            char = w[i]
            if char in _MD_PATH_CLOSE:
                close = w.find(_MD_PATH_CLOSE[char], i + 1, limit)
                if close < 0:
                    break
                i = close + 1
            elif char == '"' or char == "'":
                close = w.find(char, i + 1, limit)
                if close > i + 1:
                    i = close + 1
                elif (
                    char == "'" and i + 1 < limit and (w[i + 1] == "-" or _pseudo_letter(w[i + 1]))
                ):
                    i += 1
                else:
                    break
            elif char == ".":
                k = i
                while k < limit and w[k] == ".":
                    k += 1
                if (
                    k - i >= 2
                    and k < limit
                    and w[k].isascii()
                    and (w[k].isalnum() or w[k] in "%/&")
                ):
                    i = k + 1
                elif i + 1 < limit and w[i + 1] != ".":
                    i += 1
                else:
                    break
            elif char == "-":
                while i < limit and w[i] == "-":
                    i += 1
            elif char in ",;":
                if i + 1 >= limit:
                    break
                i += 1
            elif char == "!":
                k = i
                while k < limit and w[k] == "!":
                    k += 1
                if k >= limit:
                    break
                i = k
            elif char == "?":
                if i + 1 >= limit or w[i + 1] == "?":
                    break
                i += 1
            else:
                break
        for each in seen:
            self.paths[(each, limit)] = i
        return i
