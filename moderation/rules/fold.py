"""The text as the rules read it."""

from __future__ import annotations

from moderation.text.view import plain_view


def fold(text: str) -> str:
    """The text as the delimiter defence reads it: NFKC, HTML entities decoded, format
    characters and combining marks dropped; then lower case. Linear in the text's length."""
    return plain_view(text).casefold()
