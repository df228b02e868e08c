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
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
# A literal secret shorter than this is only hidden inside URLs: replacing every "pw" in a
# message would make it unreadable and hide nothing.
_MIN_REMEMBERED = 4
_remembered: set[str] = set()


def redact_url(url: str) -> str:
    """``url`` with the password (or a lone user-info token) and credential parameters hidden.

    The user-info ends at the *last* "@": an unencoded "@", "/" or "?" in a password must not
    leave any of it in view. A URL with an "@" only in its path or query is hidden too much
    rather than too little.
    """
    parts = _split(url)
    if parts is None:
        return url
    scheme, userinfo, rest = parts
    prefix = ""
    if userinfo is not None:
        user, colon, _password = userinfo.partition(":")
        if colon:
            prefix = f"{user}:{HIDDEN}@"
        else:
            prefix = f"{HIDDEN}@" if _lone_userinfo_is_secret(scheme) else f"{user}@"
    at = _first_of(rest, "?#")
    return f"{scheme}://{prefix}{rest[:at]}{_redact_query(rest[at:])}"


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


def url_secrets(url: str) -> set[str]:
    """The credential strings in ``url``, as written and percent-decoded."""
    parts = _split(url)
    if parts is None:
        return set()
    scheme, userinfo, rest = parts
    found = {value for _key, value in _sensitive_params(rest[_first_of(rest, "?#") :])}
    if userinfo is not None:
        user, colon, password = userinfo.partition(":")
        if colon:
            found.add(password)
        elif _lone_userinfo_is_secret(scheme):
            found.add(user)
    return {s for v in found if v for s in (v, unquote(v))}


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
    if at < 0 or rest.startswith("/"):  # sqlite:///path@x.db has no authority at all
        return scheme, None, rest
    return scheme, rest[:at], rest[at + 1 :]


def _redact_query(tail: str) -> str:
    if not tail.startswith("?"):
        return tail
    query, hash_, fragment = tail[1:].partition("#")
    parts = []
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        parts.append(f"{key}={HIDDEN}" if eq and value and _SENSITIVE_KEY.search(key) else part)
    return "?" + "&".join(parts) + hash_ + fragment


def _sensitive_params(tail: str) -> list[tuple[str, str]]:
    if not tail.startswith("?"):
        return []
    query = tail[1:].partition("#")[0]
    pairs = (part.partition("=") for part in query.split("&"))
    return [(k, v) for k, eq, v in pairs if eq and v and _SENSITIVE_KEY.search(k)]


def _first_of(text: str, characters: str) -> int:
    positions = [i for i in (text.find(c) for c in characters) if i >= 0]
    return min(positions, default=len(text))
