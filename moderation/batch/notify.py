"""Telling a human after a batch: comments wait, a batch failed, the model may not approve.

Messages go through Apprise (the ``notify`` extra) to every URL of ``MODERATION_NOTIFY_URLS``.
Each kind of message is sent at most once per ``MODERATION_NOTIFY_EVERY`` while what it says
stays the same; the last one of each kind is kept in ``moderation_notifications``, so the limit
holds across cron runs. A message that cannot be sent is logged (without its URL) and counted;
it never fails the batch. The URLs are secrets: no message, log line or stored row holds them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from moderation.batch.run_report import RunReport
from moderation.batch.trust import UNQUALIFIED_THRESHOLD
from moderation.errors import LeaseHeld, LeaseLost, ModerationError, TickAlreadyRun
from moderation.humans.queue import CREATED_COLUMNS, as_datetime
from moderation.humans.queue import WAITING as WAITING_OUTCOMES
from moderation.redact import redact
from moderation.settings import Settings
from moderation.site.protocol import Site
from moderation.site.rows import PENDING_STATE
from moderation.site.table import CommentsTable
from moderation.storage.engines import read_transaction, run_write
from moderation.storage.tables import comment_state, notifications
from moderation.vocabulary import APPROVING_LABELS, Outcome

log = logging.getLogger(__name__)

WAITING, FAILED, UNQUALIFIED = "waiting", "failed", "unqualified"
# The reasons a comment waits, in the order a message lists them.
REASONS = ("negative", "uncertain", "failed", "unqualified")


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str
    title: str
    body: str
    # What the message says, without what changes by itself (the age): a new state sends again.
    state: str

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.kind}\n{self.state}".encode()).hexdigest()


@dataclass
class Tally:
    """Deliveries (one message to one URL): sent, failed, or suppressed by the rate limit."""

    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "suppressed": self.suppressed}


Send = Callable[[str, str, str], bool]  # (url, title, body) -> delivered


def apprise_send(url: str, title: str, body: str) -> bool:
    """Deliver one message to one Apprise URL; False when it could not be sent."""
    try:
        import apprise
    except ImportError:
        raise RuntimeError(
            "Apprise is not installed: pip install apprise (the checkout's `notify` extra: "
            "pip install '.[notify]')"
        ) from None

    # Apprise's own log lines may quote a URL's parts: only ours, redacted, are written.
    logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)
    target = apprise.Apprise()
    if not target.add(url):
        return False
    return bool(target.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT))


# --- What to say -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Waiting:
    counts: dict[str, int]
    oldest: datetime | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def waiting_comments(engine: Engine, comments: Site) -> Waiting:
    """The comments held or failed by the tool that are still pending, by reason."""
    if not isinstance(comments, CommentsTable):
        return _waiting_elsewhere(engine, comments)
    columns = comments.table.c
    created = next((columns[n] for n in CREATED_COLUMNS if n in columns), None)
    key = sa.cast(comments.id, sa.String(255))
    query = (
        sa.select(
            comment_state.c.outcome,
            comment_state.c.label,
            comment_state.c.min_confidence,
            comment_state.c.updated_at,
            created if created is not None else sa.null(),
        )
        .join(
            comment_state,
            sa.and_(comment_state.c.site == comments.site, comment_state.c.comment_id == key),
        )
        .where(comments.is_pending, comment_state.c.outcome.in_(WAITING_OUTCOMES))
    )
    counts = dict.fromkeys(REASONS, 0)
    oldest: datetime | None = None
    with read_transaction(engine) as conn:
        for outcome, label, gate, updated, posted in conn.execute(query):
            counts[_reason(outcome, label, gate)] += 1
            since = as_datetime(posted) or as_datetime(updated)
            if since is not None and (oldest is None or since < oldest):
                oldest = since
    return Waiting(counts, oldest)


def _waiting_elsewhere(engine: Engine, site: Site) -> Waiting:
    """The same count for a site outside the database (an API): the tool's waiting rows,
    then which of those the site still holds as pending, a page of keys at a time."""
    query = sa.select(
        comment_state.c.comment_id,
        comment_state.c.outcome,
        comment_state.c.label,
        comment_state.c.min_confidence,
        comment_state.c.updated_at,
    ).where(
        # This site's rows only: one tool database can serve several sites.
        comment_state.c.site == site.site,
        comment_state.c.outcome.in_(WAITING_OUTCOMES),
    )
    with read_transaction(engine) as conn:
        rows = conn.execute(query).all()
    counts = dict.fromkeys(REASONS, 0)
    oldest: datetime | None = None
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        with read_transaction(engine) as conn:
            now = site.current_rows(conn, [row[0] for row in chunk])
        for key, outcome, label, gate, updated in chunk:
            if key not in now or now[key].state != PENDING_STATE:
                continue
            counts[_reason(outcome, label, gate)] += 1
            since = as_datetime(updated)
            if since is not None and (oldest is None or since < oldest):
                oldest = since
    return Waiting(counts, oldest)


def _reason(outcome: str, label: str | None, gate: float | None) -> str:
    if outcome == Outcome.FAILED:
        return "failed"
    if label not in APPROVING_LABELS:
        return "negative"
    if gate is not None and gate >= UNQUALIFIED_THRESHOLD:
        return "unqualified"
    return "uncertain"


def waiting_notice(waiting: Waiting, settings: Settings, now: float) -> Notice | None:
    if waiting.total == 0:
        return None
    noun = "comment waits" if waiting.total == 1 else "comments wait"
    lines = [f"{waiting.total} {noun} for a human:"]
    labels = {
        "negative": "negative",
        "uncertain": "uncertain (the model was not sure enough)",
        "failed": "failed (the model gave no usable answer)",
        "unqualified": "held because the model may not approve",
    }
    lines += [f"- {labels[r]}: {waiting.counts[r]}" for r in REASONS if waiting.counts[r]]
    if waiting.oldest is not None:
        age = max(0.0, now - waiting.oldest.astimezone(UTC).timestamp())
        lines.append(f"The oldest has waited {describe_age(age)}.")
    if settings.review_url:
        lines.append(f"Review them at {settings.review_url}")
    state = ",".join(f"{r}={waiting.counts[r]}" for r in REASONS)
    title = f"moderation: {waiting.total} {noun} for a human"
    return Notice(WAITING, title, "\n".join(lines), state)


def unqualified_notice(reason: str) -> Notice:
    body = (
        f"The model may not approve: {reason}.\n"
        "Every comment it would have approved is held for a human; "
        "`moderate qualify` shows why."
    )
    return Notice(UNQUALIFIED, "moderation: the model may not approve", body, reason)


def failure_notice(error: ModerationError) -> Notice:
    code = int(error.exit_code)
    message = redact(error.message)
    body = f"A batch failed with exit code {code}: {message}\nNothing was approved by it."
    return Notice(FAILED, f"moderation: batch failed (exit {code})", body, f"{code}:{message}")


def describe_age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


# --- Sending, within the rate limit ------------------------------------------------------


class Notifier:
    """Sends notices to the configured URLs, at most once per period for the same state."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        send: Send | None = None,
    ) -> None:
        self.settings = settings
        self.urls = settings.notify_targets
        self.every = settings.notify_seconds
        self.clock = clock
        self.send = send or apprise_send
        # Each site has its own rate limit: one site's message must not silence another's.
        self.site = settings.site_key

    @property
    def enabled(self) -> bool:
        return bool(self.urls)

    def deliver(self, engine: Engine | None, notices: Iterable[Notice]) -> Tally:
        """Send each notice that is due; record it in ``engine`` (None: no rate limit)."""
        tally = Tally()
        for notice in notices:
            try:
                self._deliver(engine, notice, tally)
            except Exception as exc:  # a notification never fails the batch
                tally.failed += len(self.urls)
                self._log_failure(notice, f"{type(exc).__name__}: {exc}", tally)
        return tally

    def _deliver(self, engine: Engine | None, notice: Notice, tally: Tally) -> None:
        now = self.clock()
        if engine is not None and not self._due(engine, notice, now):
            tally.suppressed += len(self.urls)
            log.info(
                "notification %r not sent: the same was sent less than %s ago",
                notice.kind,
                self.settings.notify_every,
            )
            return
        delivered = 0
        for number, url in enumerate(self.urls, 1):
            scheme = url.partition("://")[0] if "://" in url else "?"
            try:
                ok = self.send(url, notice.title, notice.body)
                problem = "the service did not accept it" if not ok else ""
            except Exception as exc:
                ok, problem = False, f"{type(exc).__name__}: {exc}"
            if ok:
                delivered += 1
                tally.sent += 1
            else:
                tally.failed += 1
                self._log_failure(notice, f"URL {number} ({scheme}): {problem}", tally)
        if delivered and engine is not None:
            self._record(engine, notice, now)

    def _log_failure(self, notice: Notice, problem: str, tally: Tally) -> None:
        line = redact(f"notification {notice.kind!r} could not be sent to {problem}")
        tally.errors.append(line)
        log.warning("%s", line)

    def _due(self, engine: Engine, notice: Notice, now: float) -> bool:
        with read_transaction(engine) as conn:
            row = conn.execute(
                sa.select(notifications.c.sent_at, notifications.c.fingerprint).where(
                    notifications.c.site == self.site, notifications.c.kind == notice.kind
                )
            ).first()
        if row is None or row.fingerprint != notice.fingerprint:
            return True
        return now - row.sent_at >= self.every

    def _record(self, engine: Engine, notice: Notice, now: float) -> None:
        def write(conn: sa.Connection) -> None:
            conn.execute(
                sa.delete(notifications).where(
                    notifications.c.site == self.site, notifications.c.kind == notice.kind
                )
            )
            conn.execute(
                sa.insert(notifications).values(
                    site=self.site, kind=notice.kind, sent_at=now, fingerprint=notice.fingerprint
                )
            )

        run_write(engine, write)

    def forget_sent(self, engine: Engine, kinds: Iterable[str]) -> None:
        """A state that is over (nothing waits any more): its next message is sent at once."""
        kinds = list(kinds)

        def write(conn: sa.Connection) -> None:
            conn.execute(
                sa.delete(notifications).where(
                    notifications.c.site == self.site, notifications.c.kind.in_(kinds)
                )
            )

        run_write(engine, write)


# --- The two places a batch ends ---------------------------------------------------------


def after_batch(notifier: Notifier, engine: Engine, comments: Site, report: RunReport) -> Tally:
    """After a batch that ran: comments waiting, a model that may not approve, a lost lease."""
    notices = []
    over = []
    try:
        waiting = waiting_comments(engine, comments)
    except Exception as exc:
        tally = Tally(failed=len(notifier.urls))
        line = redact(f"notification 'waiting' not sent: reading the waiting comments: {exc}")
        tally.errors.append(line)
        log.warning("%s", line)
        return tally
    notice = waiting_notice(waiting, notifier.settings, notifier.clock())
    if notice is None:
        over.append(WAITING)
    else:
        notices.append(notice)
    if report.unqualified is not None:
        notices.append(unqualified_notice(report.unqualified))
    else:
        over.append(UNQUALIFIED)
    if report.lease_lost:
        notices.append(failure_notice(LeaseLost()))
    else:
        over.append(FAILED)  # this batch ran to its end: an earlier failure is over
    try:
        notifier.forget_sent(engine, over)
    except Exception as exc:
        log.warning("%s", redact(f"could not update the notification state: {exc}"))
    return notifier.deliver(engine, notices)


def after_failure(notifier: Notifier, error: BaseException, *, scheduled: bool) -> Tally | None:
    """After a batch refused or failed (exit 2, 4, 5, 75): tell a human, within the limit.

    A timer's tick that finds another replica's batch running is how replicas share the work,
    not a failure: it sends nothing.
    """
    if not isinstance(error, ModerationError) or isinstance(error, TickAlreadyRun):
        return None
    if scheduled and isinstance(error, LeaseHeld):
        return None
    from moderation.storage.engines import connected

    notice = failure_notice(error)
    tally = None
    try:
        with connected(notifier.settings.database_url, must_exist=True) as engine:
            if sa.inspect(engine).has_table(notifications.name):
                tally = notifier.deliver(engine, [notice])
    except Exception:  # the database failed too: nothing limits the rate
        pass
    # Without the database (it failed, or its tables are not there yet) every failure sends.
    return tally if tally is not None else notifier.deliver(None, [notice])
