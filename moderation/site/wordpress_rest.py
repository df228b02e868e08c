"""A WordPress site through its own REST API (``MODERATION_PRESET=wordpress-rest``).

Every approval and ruling is a ``POST /wp/v2/comments/<id>`` with ``status``, so WordPress
runs ``wp_set_comment_status`` (or ``wp_trash_comment``/``wp_spam_comment``) itself: its
object cache, the post's ``comment_count``, the ``transition_comment_status`` hooks and the
mail to the post's author all follow, as when a moderator clicks Approve. The requests, their
retries and errors are ``wordpress_http``'s; nothing here fails open.

Reading: the ids of the pending comments (``status=hold``, ``orderby=id``, 100 a page:
WordPress's largest), then their texts 100 at a time with ``include=``. WordPress pages by
offset and knows no "id after"; ``pending_id_pages`` keeps the batch's own approvals from
shifting the pages under it. Only comments of type ``comment`` are listed (the API's default):
pingbacks and trackbacks stay for a human.

The edit guard: right before writing, the comment is read again (``context=edit``: its raw
text and status) and written only if the raw text is, byte for byte, the text that was judged
and it is still pending. A window remains between that read and the write (one round trip):
an edit landing in it is published unjudged (the write sets only the status), and a human's
ruling landing in it is replaced by the tool's, as when two moderators click at once in
wp-admin. WordPress offers no conditional update that would close it.

Order of record: WordPress cannot join the tool's transaction, so each write is recorded as
an intent first, then sent, then marked done with its audit row (``storage.intents``). A crash
between two of these steps leaves an open intent, which the next batch settles by reading the
comment (``batch.settle``). A write whose answer and re-read were both lost is named in
``unsure``: its intent stays open for the next batch, which reads what WordPress holds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
from sqlalchemy.engine import Connection, Engine

from moderation import crashpoints
from moderation.comment import Comment, Page, read_comment
from moderation.errors import ModerationError, SiteUnavailable
from moderation.settings import Settings
from moderation.site.rows import (
    APPROVED_STATE,
    OTHER_STATE,
    PENDING_STATE,
    REJECTED_STATE,
    SYSTEM_STATE,
    SiteRow,
)
from moderation.site.wordpress_http import WordPressApi
from moderation.storage.memory import Remembered

log = logging.getLogger(__name__)

PER_PAGE = 100  # WordPress refuses more
PENDING, APPROVED, TRASH = "hold", "approved", "trash"
STATES = {
    PENDING: PENDING_STATE,
    APPROVED: APPROVED_STATE,
    TRASH: REJECTED_STATE,
    "spam": REJECTED_STATE,
    # WordPress's own doing when the post went to the trash: nobody's ruling on the comment.
    "post-trashed": SYSTEM_STATE,
}
__all__ = ["WordPressRest"]


class WordPressRest:
    """The REST API of one WordPress site (one site of a multisite: one URL each)."""

    can_reject = True
    writes_in_transaction = False  # intent, HTTP, then the audit rows (see the module's notes)
    # WordPress never deletes a held comment by itself; pingbacks and trackbacks are not
    # listed (the API's default type is "comment"), so none is read to be held by its type.
    purges_pending = False
    held_types: tuple[str, ...] = ()

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.api = WordPressApi(settings, transport)
        # Names the site in the tool's tables and reports (moderation.site.key).
        self.site = settings.site_key
        # Keys this process approved or trashed: a write retried after an unclear answer (or
        # a database transaction run again) must still be counted as the tool's own.
        self._written: dict[str, str] = {}
        self._lock = threading.Lock()  # the writer's thread adds, the reader's counts
        # After a failure mid-chunk the keys written so far are returned (their audit rows
        # must commit); the next call raises it.
        self.failure: ModerationError | None = None
        # Keys whose write was sent but whose result WordPress never told (the answer and the
        # re-read both failed): whether they were written is for a later read to say.
        self.unsure: set[str] = set()

    @property
    def routes(self) -> str:
        return self.api.routes

    def close(self) -> None:
        self.api.close()

    def _send(self, method: str, route: str, params: dict[str, Any], body: Any = None) -> Any:
        return self.api.send(method, route, params, body)

    def check(self) -> None:
        """Fail now, before any model work, if the site cannot be moderated with these
        credentials (``context=edit`` on pending comments needs ``moderate_comments``)."""
        self._send("GET", "/wp/v2/comments", _pending_query(per_page=1))

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    # -- reading ----------------------------------------------------------------------------
    def parse_id(self, key: str) -> int:
        if not key.isascii() or not key.isdigit() or len(key) > 19:
            raise ValueError(f"not a WordPress comment id: {key[:40]!r}")
        return int(key)

    def count_pending(self, engine: Engine | None = None) -> int:
        self._raise_failure()
        _, headers = self._send("GET", "/wp/v2/comments", _pending_query(per_page=1))
        return int(headers.get("X-WP-Total", "0"))

    def pending_id_pages(self) -> Iterator[list[int]]:
        """The pending ids in ascending order, a page of at most 100 at a time, read lazily.

        WordPress pages by offset and knows no "id after": as the batch approves the comments
        it has read, the later ones move to lower offsets. The next offset is therefore the
        number read minus the number this site wrote since, less one: the page starts with the
        last id already read, and if it does not (others moderated meanwhile, or a write is
        still on its way) the read steps back until it overlaps. Ids at or below the last one
        read are dropped, so none is read twice and none is skipped.
        """
        last, read, offset = 0, 0, 0
        while True:
            found, _ = self._send("GET", "/wp/v2/comments", _pending_query(offset=offset))
            ids = [int(item["id"]) for item in found or []]
            if offset > 0 and (not ids or ids[0] > last):
                offset = max(0, offset - PER_PAGE)  # no overlap: something may lie before
                continue
            new = [i for i in ids if i > last]
            if new:
                yield new
                last, read = new[-1], read + len(new)
            if len(ids) < PER_PAGE:
                return
            if not new:
                offset += len(ids)  # only ids already read: look further on
                continue
            with self._lock:
                written = sum(1 for key in self._written if int(key) <= last)
            offset = max(0, read - written - 1)

    def pending_pages(
        self, engine: Engine | None, page_size: int, remembered: Remembered | None = None
    ) -> Iterator[Page]:
        """Every pending comment is read: memory is applied to them as read (``remembered``
        is for SQL sites, which leave skipped rows out in the query)."""
        after: int | None = None
        for comments in self._pending_comment_pages(page_size):
            last = comments[-1].id
            yield Page(comments, 0, after, last)
            after = last

    def count_if_all_skipped(self, engine: Engine | None, remembered: Remembered) -> int | None:
        return None  # only by reading every pending comment over HTTP: the pages do that

    def pending_texts(self, engine: Engine | None, after: Any, upto: Any) -> Iterator[str]:
        for comments in self._pending_comment_pages(PER_PAGE):
            for comment in comments:
                within = (after is None or comment.id > after) and comment.id <= upto
                if within and comment.problem is None:
                    yield comment.body

    def _pending_comment_pages(self, page_size: int) -> Iterator[list[Comment]]:
        self._raise_failure()
        waiting: list[int] = []
        id_pages = self.pending_id_pages()
        while True:
            self._raise_failure()
            more = next(id_pages, None)
            if more is not None:
                waiting.extend(more)
                if len(waiting) < page_size:
                    continue
            if not waiting:
                return
            chosen, waiting = waiting[:page_size], waiting[page_size:]
            rows = self._rows(chosen, status=PENDING)
            page = [read_comment(key, row["raw"]) for key, row in sorted(rows.items())]
            if page:
                yield page
            if more is None and not waiting:
                return

    def _rows(self, ids: Sequence[int], status: str) -> dict[int, dict[str, Any]]:
        """These comments (those of ``status``), by id: raw text and status."""
        rows: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), PER_PAGE):
            chunk = ids[start : start + PER_PAGE]
            query = {
                "include": ",".join(map(str, chunk)),
                "status": status,
                "context": "edit",
                "orderby": "id",
                "order": "asc",
                "per_page": PER_PAGE,
                "_fields": "id,status,content",
            }
            found, _ = self._send("GET", "/wp/v2/comments", query)
            for item in found or []:
                rows[int(item["id"])] = _row(item)
        return rows

    def current_rows(self, conn: Connection | None, keys: Sequence[str]) -> dict[str, SiteRow]:
        """The comments among ``keys`` that still exist, in any status (trash and spam too)."""
        ids = []
        for key in keys:
            try:
                ids.append(self.parse_id(key))
            except ValueError:
                continue
        found = {}
        for comment_id, row in self._rows(ids, status="any").items():
            comment = read_comment(comment_id, row["raw"])
            state = STATES.get(row["status"], OTHER_STATE)
            found[comment.key] = SiteRow(comment.key, comment.body, state, row["status"])
        return found

    # -- writing ----------------------------------------------------------------------------
    def approve(self, conn: Connection | None, comments: Sequence[Comment]) -> set[str]:
        return self._write(comments, APPROVED)

    def reject(self, conn: Connection | None, comments: Sequence[Comment]) -> set[str]:
        """A human's Reject: WordPress's own trash (it keeps the status to restore and the
        time, and empties it after ``EMPTY_TRASH_DAYS``)."""
        return self._write(comments, TRASH)

    def _write(self, comments: Sequence[Comment], status: str) -> set[str]:
        self._raise_failure()
        written: set[str] = set()
        for comment in comments:
            if comment.problem is not None:
                continue
            try:
                if self._write_one(comment, status):
                    written.add(comment.key)
            except ModerationError as exc:
                # Those written so far are returned, so that their audit rows commit; the
                # rest stay pending, and the next call stops the batch.
                self.failure = exc
                break
        return written

    def _write_one(self, comment: Comment, status: str) -> bool:
        route = f"/wp/v2/comments/{int(comment.id)}"
        if self._written.get(comment.key) == status:
            return True
        found, _ = self._send("GET", route, {"context": "edit", "_fields": "id,status,content"})
        if found is None:
            return False  # deleted meanwhile
        row = _row(found)
        if row["status"] != PENDING or not _same_text(row["raw"], comment.body):
            return False  # ruled on or edited since it was judged
        crashpoints.reach("after-intent")
        self.unsure.add(comment.key)
        try:
            answer, _ = self._send("POST", route, {}, {"status": status})
        except SiteUnavailable:
            # The answer was lost or WordPress failed: what it holds now is the truth.
            answer = self._send("GET", route, {"context": "edit", "_fields": "id,status"})[0]
        self.unsure.discard(comment.key)
        held = answer is not None and answer.get("status") == status
        if held:
            with self._lock:
                self._written[comment.key] = status
            log.info("WordPress comment %s is now %s", comment.key, status)
        crashpoints.reach("after-write")
        return held


def _pending_query(offset: int = 0, per_page: int = PER_PAGE) -> dict[str, Any]:
    return {
        "status": PENDING,
        "context": "edit",
        "orderby": "id",
        "order": "asc",
        "per_page": per_page,
        "offset": offset,
        "_fields": "id",
    }


def _row(item: dict[str, Any]) -> dict[str, Any]:
    content = item.get("content")
    raw = content.get("raw") if isinstance(content, dict) else None
    return {"status": str(item.get("status")), "raw": raw if isinstance(raw, str) else ""}


def _same_text(now: str, judged: str) -> bool:
    """Compared as bytes: no normalisation, case folding or trimming."""
    return now.encode("utf-8", "surrogatepass") == judged.encode("utf-8", "surrogatepass")
