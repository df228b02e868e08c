"""Hiding credentials wherever a URL is printed, logged or stored.

Database URLs and Ollama hosts may carry a password (``postgresql://user:pw@host/db``,
``http://admin:secret@host``) or a credential in the query string (``?password=...``,
``?token=...``). :func:`redact_url` hides them in a URL the tool itself prints;
:func:`redact` hides them in any text, such as an error message from a driver that quotes the
URL. The secrets of the configured URLs are also remembered when the settings are built, so
that a message quoting a password on its own, or a mangled URL, still shows ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

HIDDEN = "***"
# Query parameters whose value is a credential (psycopg's password and sslpassword,
# sslkey paths, tokens, API keys, signatures...).
_SENSITIVE_KEY = re.compile(r"pass|pwd|secret|token|key|auth|credential|sig", re.IGNORECASE)
# A URL in free text: a scheme, "://", then anything up to white space or a quote.
# Where a query parameter's key starts: after "?", "&" (or "#", which a careless URL may hold).
_PARAM = re.compile(r"(?<=[?&#])([^=&?#]*)=")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
# A literal secret shorter than this is only hidden inside URLs: replacing every "pw" in a
# message would make it unreadable and hide nothing.
_MIN_REMEMBERED = 4
_remembered: set[str] = set()


def redact_url(url: str) -> str:
    """``url`` with the password (or a lone user-info token) and credential parameters hidden.

    Credential parameters are hidden first, each value up to the next "&" (so an "@", "#",
    "/" or "?" inside it stays hidden too); only then is the user-info looked for, ending at
    the *last* "@" left: an unencoded "@", "/" or "?" in a password must not leave any of it
    in view. A URL with an "@" only in its path or query is hidden too much rather than too
    little.
    """
    if "://" not in url:
        return url
    parts = _split(_hide_params(url))
    if parts is None:
        return url
    scheme, userinfo, rest = parts
    prefix = ""
    if userinfo is not None:
        user, colon, password = userinfo.partition(":")
        if colon and password:
            prefix = f"{user}:{HIDDEN}@"
        elif _lone_userinfo_is_secret(scheme):
            prefix = f"{HIDDEN}@"
        else:
            prefix = f"{user}{colon}@"
    return f"{scheme}://{prefix}{rest}"


def redact(text: str) -> str:
    """``text`` with every remembered secret and every URL credential hidden."""
    for secret in sorted(_remembered, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, HIDDEN)
    if "://" in text:
        text = _URL.sub(lambda m: redact_url(m.group()), text)
    return text


def remember_secrets(urls: Iterable[str]) -> None:
    """Remember the credentials in these URLs, so :func:`redact` hides them in any text."""
    for url in urls:
        for secret in url_secrets(url):
            if len(secret) >= _MIN_REMEMBERED:
                _remembered.add(secret)


def remember_whole(urls: Iterable[str]) -> None:
    """Remember URLs that are secrets as a whole (a notification service's URL carries its
    token in the path: ``slack://T/B/C``, ``tgram://bot-token/chat``), with their parts."""
    urls = list(urls)
    remember_secrets(urls)
    for url in urls:
        _scheme, sep, rest = url.partition("://")
        if len(url) >= _MIN_REMEMBERED:
            _remembered.add(url)
        if not sep:
            continue
        # A service's host and path segments are often tokens (slack://TokenA/TokenB/TokenC,
        # tgram://bot-token/chat-id); a host name with dots is not, nor a plain word
        # (json://host/hooks/moderation must not hide "moderation" in every message).
        address = rest.split("?", 1)[0].rsplit("@", 1)[-1]
        for segment in address.split("/"):
            # A port is too short to be taken for one; a bot's "id:secret" is not.
            for piece in (segment, *segment.split(":")):
                if _looks_like_token(piece):
                    _remembered.update((piece, unquote(piece)))


def _looks_like_token(piece: str) -> bool:
    if len(piece) < 8 or "." in piece:
        return False
    mixed_case = piece.lower() != piece and piece.upper() != piece
    return mixed_case or any(c.isdigit() for c in piece)


def url_secrets(url: str) -> set[str]:
    """The credential strings in ``url``, as written and percent-decoded."""
    if "://" not in url:
        return set()
    found = {value for _start, _end, value in _sensitive_values(url)}
    # The user-info read both after the parameters are hidden (as redact_url shows it) and
    # as written: whichever way a driver reads the URL, its password is remembered.
    for candidate in (_hide_params(url), url):
        parts = _split(candidate)
        if parts is None or parts[1] is None:
            continue
        scheme, userinfo, _rest = parts
        user, colon, password = (userinfo or "").partition(":")
        if colon and password:
            found.add(password)
        elif _lone_userinfo_is_secret(scheme):
            found.add(user)
    found.discard(HIDDEN)
    return {s for v in found if v and HIDDEN not in v for s in (v, unquote(v))}


def _lone_userinfo_is_secret(scheme: str) -> bool:
    # http://TOKEN@host: a web server's lone user-info is a token. A database URL's is a user
    # name (postgresql://user@host), which is no secret and must stay readable.
    return scheme.lower() in ("http", "https")


def _split(url: str) -> tuple[str, str | None, str] | None:
    """(scheme, user-info or None, the rest) of a URL; None when it is not one."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    at = rest.rfind("@")
    # sqlite:///path@x.db has no authority at all; a web URL always has one, so what comes
    # before its "@" is user-info even then (http:///TOKEN@host).
    if at < 0 or (rest.startswith("/") and not _lone_userinfo_is_secret(scheme)):
        return scheme, None, rest
    return scheme, rest[:at], rest[at + 1 :]


def _sensitive_values(url: str) -> list[tuple[int, int, str]]:
    """(start, end, value) of each credential parameter's value, wherever "?", "&" or "#"
    starts a ``key=value`` pair. A value runs to the next "&" or the end: a raw "#", "@",
    "/" or "?" in a password is part of it for SQLAlchemy, which reads the query to the end."""
    found = []
    for match in _PARAM.finditer(url):
        if not _SENSITIVE_KEY.search(match.group(1)):
            continue
        end = url.find("&", match.end())
        end = len(url) if end < 0 else end
        if end > match.end():
            found.append((match.end(), end, url[match.end() : end]))
    return found


def _hide_params(url: str) -> str:
    pieces: list[str] = []
    done = 0
    for start, end, _value in _sensitive_values(url):
        if start < done:
            continue
        pieces += (url[done:start], HIDDEN)
        done = end
    pieces.append(url[done:])
    return "".join(pieces)
