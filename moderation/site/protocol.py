"""What the batch, the review page and the outcomes need of a site, whichever it is.

Two implementations: the site's own SQL table (``site.table.CommentsTable``) and WordPress's
REST API (``site.wordpress_rest.WordPressRest``). Both write only to a comment still pending
with the very text that was judged, and report which comments now hold the written state.

``conn`` is a transaction on the tool's own database. The table writes inside it, so a
decision and its audit row commit together; an API writes over HTTP outside it, so each of its
writes is recorded as an intent first and its audit row commits after it (see
``storage.intents``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Set
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import Connection, Engine

from moderation.comment import Comment, Page

if TYPE_CHECKING:
    from moderation.site.rows import SiteRow
    from moderation.storage.memory import Remembered


class Site(Protocol):
    # True: ``approve``/``reject`` write through ``conn`` (one transaction with the audit
    # rows). False: they write elsewhere (HTTP) and take ``None``.
    writes_in_transaction: bool
    # What the tool's memory, audit rows, outcomes and lease of this site are keyed by
    # (moderation.site.key).
    site: str
    # The system deletes old pending comments by itself (a held comment's row can vanish
    # without a human): see humans.outcomes.classify.
    purges_pending: bool

    @property
    def held_types(self) -> tuple[str, ...]:
        """Comment types never approved unread (WordPress's pingbacks and trackbacks)."""

    @property
    def can_reject(self) -> bool:
        """Whether a human's Reject can be written."""

    @property
    def unsure(self) -> Set[str]:
        """Keys whose write was sent without learning whether it landed (its answer and a
        re-read were both lost): always empty where writes join the transaction."""

    def parse_id(self, key: str) -> Any:
        """The site's id for a stored key; ValueError if it cannot be one."""

    def pending_pages(
        self, engine: Engine, page_size: int, remembered: Remembered | None = None
    ) -> Iterator[Page]:
        """Pending comments, in id order, a page at a time; those ``remembered`` says to skip
        may be left out unread (counted in the page's ``skipped``)."""

    def pending_texts(self, engine: Engine, after: Any, upto: Any) -> Iterator[str]:
        """The texts of the pending comments with ids in (``after``, ``upto``]."""

    def count_if_all_skipped(self, engine: Engine, remembered: Remembered) -> int | None:
        """How many comments are pending when ``remembered`` skips them all; None when one is
        to be read, or where the site cannot tell without reading every comment."""

    def count_pending(self, engine: Engine) -> int:
        """How many comments are pending now."""

    def approve(self, conn: Connection | None, comments: Sequence[Comment]) -> set[str]:
        """Approve those still pending with the text judged; the keys now approved."""

    def reject(self, conn: Connection | None, comments: Sequence[Comment]) -> set[str]:
        """Reject those still pending with the text judged; the keys now rejected."""

    def current_rows(self, conn: Connection | None, keys: Sequence[str]) -> dict[str, SiteRow]:
        """The comments among ``keys`` that still exist, as the site holds them now."""
