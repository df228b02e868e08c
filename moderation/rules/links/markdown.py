"""The links a CommonMark renderer with linkify makes of a comment, counted from above."""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right, insort
from collections.abc import Callable

from moderation.rules.links.lenient import inside

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
        if ("@" in content or _MD_AUTOLINK_SCHEME.match(content)) and not inside(
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
            and not inside(mask_starts, mask_ends, o)
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
