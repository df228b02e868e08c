"""The text as the rules read it."""

from __future__ import annotations

from moderation.text.view import normalised_view


def fold(text: str) -> str:
    """The text as the delimiter defence reads it: NFKC, HTML entities decoded, format
    characters and combining marks dropped; then lower case."""
    if text.isascii() and "&" not in text:
        # Nothing to normalise, ignore or decode: the view is the text (most comments).
        return text.casefold()
    return normalised_view(text)[0].casefold()
