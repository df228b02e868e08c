"""One comment as the tool sees it: the site's id, the text, and its hash.

The one data type every stage shares (the site reads it, the model reads its text, the tool's
memory keys it), so it depends on nothing else in the package.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class AuthorRecord:
    """What the site's own table says of a pending comment's author (``site.authors``).

    ``approved`` counts the author's approved comments matched only by account, or by name and
    e-mail together (what counts an author as known); ``rejected`` and ``pending`` the author's
    rejected and other pending comments matched by account, e-mail or IP (what makes the tool
    more careful), ``rejected`` within ``window`` (a phrase such as "90 days", None when the
    table keeps no date and all are counted). A record only ever holds a comment.
    """

    approved: int
    rejected: int
    pending: int
    first_comment: bool
    window: str | None = None

    @property
    def summary(self) -> str:
        """The record in a few characters: ``first``, ``3✓ 1✗``, ``first 2✗ +1`` (approved,
        rejected, and other pending comments after the ``+``)."""
        parts = ["first" if self.first_comment else f"{self.approved}✓"]
        if self.rejected:
            parts.append(f"{self.rejected}✗")
        if self.pending:
            parts.append(f"+{self.pending}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Comment:
    id: Any  # the site's own id value, whatever its type
    body: str
    # Why this row cannot be classified (its body is not text); None for a normal comment.
    problem: str | None = None
    # The kind of row, where the site's table says (WordPress's comment_type: "comment",
    # "pingback", "trackback"...); None where it does not.
    kind: str | None = None
    # The author's record in the site's table, where the site keeps its authors; None where
    # it does not (a custom table without author columns, the REST API, ``moderate eval``).
    author: AuthorRecord | None = None

    @property
    def key(self) -> str:
        """The id as stored in the tool's own tables."""
        return str(self.id)

    @property
    def text_hash(self) -> str:
        return text_hash(self.body)


@dataclass(frozen=True, slots=True)
class Page:
    """Pending comments in id order, a page of them: those to read, and how many of the
    page's rows the site left out unread because memory skips them (``skipped``). Its ids lie
    after ``after`` (None for the first page) up to ``last``, both included in no other page.
    """

    comments: list[Comment]
    skipped: int
    after: Any
    last: Any


def text_hash(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


def read_comment(comment_id: Any, value: Any, *, kind: Any = None) -> Comment:
    """One row as a Comment; a value that is not text becomes a comment that fails alone."""
    kind = None if kind is None else str(kind)
    if isinstance(value, str):
        return Comment(comment_id, value, kind=kind)
    if value is None:
        return Comment(comment_id, "", kind=kind)
    # Its repr stands in for the text in the audit row's hash, so a later fix to real text
    # counts as an edit and is asked afresh.
    return Comment(
        comment_id,
        f"<{type(value).__name__}: {repr(value)[:200]}>",
        problem=f"the body is not text ({type(value).__name__})",
        kind=kind,
    )
