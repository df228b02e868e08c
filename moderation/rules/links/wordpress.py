"""The links WordPress counts in a comment: ``make_clickable``, then ``check_comment``'s count."""

from __future__ import annotations

import re
from bisect import bisect_left

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
