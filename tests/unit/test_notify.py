"""Notifications after a batch, to real servers on 127.0.0.1: an SMTP server and a webhook."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from moderation.batch import notify
from moderation.batch.notify import Notifier
from moderation.batch.pipeline import run_batch
from moderation.batch.run_report import RunReport
from moderation.errors import SchemaError
from moderation.settings import Settings
from moderation.site.rows import PENDING_STATE, SiteRow
from moderation.site.table import CommentsTable
from moderation.storage import migrate
from moderation.storage.engines import create_engine
from moderation.storage.tables import comment_state
from tests.fakeollama import free_port
from tests.fakes import FakeClassifier
from tests.helpers import create_site_table, execute, make_settings, read_table
from tests.notifyservers import SmtpServer, Webhook

NEGATIVE = '{"label": "negative"}'
REVIEW = "https://example.com/moderation/review"


@pytest.fixture(autouse=True)
def _forget_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The secrets these tests make up must not be hidden in other tests' messages."""
    from moderation import redact

    monkeypatch.setattr(redact, "_remembered", set(redact._remembered))


def fake() -> FakeClassifier:
    return FakeClassifier({"idiot": NEGATIVE}, confidences={"maybe": 0.1}, server_errors={"boom"})


class Clock:
    def __init__(self) -> None:
        self.now = time.time() + 30  # half a minute ahead: an age in whole minutes is stable

    def __call__(self) -> float:
        return self.now


def settings_for(url: str, targets: str, **extra: object) -> Settings:
    return make_settings(url, notify_urls=targets, review_url=REVIEW, **extra)


WAITING_BODY = (
    "3 comments wait for a human:\n"
    "- negative: 1\n"
    "- uncertain (the model was not sure enough): 1\n"
    "- failed (the model gave no usable answer): 1\n"
    "The oldest has waited {age}.\n"
    f"Review them at {REVIEW}"
)


def test_comments_waiting_are_told_once_per_period_unless_they_change(
    sqlite_url: str, webhook: Webhook
) -> None:
    create_site_table(sqlite_url, ["Great post", "You idiot.", "maybe fine", "boom"])
    settings = settings_for(sqlite_url, webhook.url())
    clock = Clock()

    def batch() -> RunReport:
        return run_batch(settings, classifier=fake(), notifier=Notifier(settings, clock=clock))

    first = batch()
    assert first.exit_code == 3  # one failed: the notification changes nothing of that
    assert first.to_json()["notifications"] == {"sent": 1, "failed": 0, "suppressed": 0}
    title = "moderation: 3 comments wait for a human"
    assert webhook.messages() == [(title, WAITING_BODY.format(age="0 min"))]
    assert webhook.paths == ["/hooks/moderation"]

    clock.now += 30 * 60  # the same state within the hour: nothing
    second = batch()
    assert second.to_json()["notifications"] == {"sent": 0, "failed": 0, "suppressed": 1}
    assert len(webhook.posts) == 1

    execute(sqlite_url, "INSERT INTO comments (body, approved) VALUES ('another idiot', 0)")
    third = batch()  # a changed state: sent at once
    assert third.notifications == {"sent": 1, "failed": 0, "suppressed": 0}
    assert webhook.messages()[-1][0] == "moderation: 4 comments wait for a human"
    assert "- negative: 2\n" in webhook.messages()[-1][1]

    clock.now += 3600  # the period has passed: the same state is told again
    fourth = batch()
    assert fourth.notifications["sent"] == 1
    assert "The oldest has waited 1 h 30 min." in webhook.messages()[-1][1]
    assert len(webhook.posts) == 3

    # The state survives the process: it is in the tool's own table, hashed.
    rows = read_table(sqlite_url, "SELECT kind, sent_at, fingerprint FROM moderation_notifications")
    assert [(r[0], r[1]) for r in rows] == [("waiting", clock.now)]
    assert len(rows[0][2]) == 64


def test_nothing_waiting_sends_nothing_and_a_new_wait_is_told_at_once(
    sqlite_url: str, webhook: Webhook
) -> None:
    create_site_table(sqlite_url, ["You idiot."])
    settings = settings_for(sqlite_url, webhook.url())
    clock = Clock()
    run_batch(settings, classifier=fake(), notifier=Notifier(settings, clock=clock))
    assert len(webhook.posts) == 1
    execute(sqlite_url, "UPDATE comments SET approved = 1")  # a human dealt with it
    quiet = run_batch(settings, classifier=fake(), notifier=Notifier(settings, clock=clock))
    assert quiet.notifications == {"sent": 0, "failed": 0, "suppressed": 0}
    execute(sqlite_url, "INSERT INTO comments (body, approved) VALUES ('idiot again', 0)")
    again = run_batch(settings, classifier=fake(), notifier=Notifier(settings, clock=clock))
    assert again.notifications["sent"] == 1  # not held back by the first one's hour
    assert webhook.messages()[-1][0] == "moderation: 1 comment waits for a human"


def test_a_dry_run_sends_nothing(sqlite_url: str, webhook: Webhook) -> None:
    create_site_table(sqlite_url, ["You idiot."])
    report = run_batch(settings_for(sqlite_url, webhook.url()), classifier=fake(), dry_run=True)
    assert report.notifications == {"sent": 0, "failed": 0, "suppressed": 0}
    assert webhook.posts == []


def test_an_email_through_a_real_smtp_server(sqlite_url: str, smtp_server: SmtpServer) -> None:
    create_site_table(sqlite_url, ["Great post", "You idiot."])
    settings = settings_for(sqlite_url, smtp_server.url())
    report = run_batch(settings, classifier=fake())
    assert report.notifications == {"sent": 1, "failed": 0, "suppressed": 0}
    assert smtp_server.logins == [("mod", "s3cr3t-mail")]
    [mail] = smtp_server.mails
    assert (mail.sender, mail.recipients) == ("a@example.com", ["b@example.com"])
    assert mail.subject == "moderation: 1 comment waits for a human"
    assert mail.text == (
        "1 comment waits for a human:\n"
        "- negative: 1\n"
        "The oldest has waited 0 min.\n"
        f"Review them at {REVIEW}"
    )


def test_a_failed_batch_is_told_within_the_limit(sqlite_url: str, webhook: Webhook) -> None:
    create_site_table(sqlite_url, ["hello"], table="posts")  # no `comments` table: exit 2
    engine = sa.create_engine(sqlite_url)
    migrate.upgrade(engine)
    engine.dispose()
    settings = settings_for(sqlite_url, webhook.url())
    for _ in range(2):
        with pytest.raises(SchemaError) as caught:
            run_batch(settings, classifier=fake())
    assert caught.value.exit_code == 2
    [(title, body)] = webhook.messages()  # the second within the hour: suppressed
    assert title == "moderation: batch failed (exit 2)"
    assert body == (
        f"A batch failed with exit code 2: {caught.value.message}\nNothing was approved by it."
    )


def test_a_model_that_may_not_approve_is_told(sqlite_url: str, webhook: Webhook) -> None:
    create_site_table(sqlite_url, ["fine"])
    settings = settings_for(sqlite_url, webhook.url())
    engine = sa.create_engine(sqlite_url)
    migrate.upgrade(engine)
    report = RunReport(run_id="r", dry_run=False, unqualified="unqualified: too many mistakes")
    tally = notify.after_batch(
        Notifier(settings), engine, CommentsTable.reflect(engine, settings), report
    )
    engine.dispose()
    assert tally.to_json() == {"sent": 1, "failed": 0, "suppressed": 0}
    assert webhook.messages() == [
        (
            "moderation: the model may not approve",
            "The model may not approve: unqualified: too many mistakes.\n"
            "Every comment it would have approved is held for a human; "
            "`moderate qualify` shows why.",
        )
    ]


def test_a_notification_that_cannot_be_sent_changes_nothing_and_hides_the_secret(
    sqlite_url: str, webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    create_site_table(sqlite_url, ["Great post", "You idiot."])
    closed = f"json://hook:hunter2secret@127.0.0.1:{free_port()}/hooks/Tok3nPath99"
    settings = settings_for(sqlite_url, f"{closed}, {webhook.url()}")
    with caplog.at_level(logging.INFO):
        report = run_batch(settings, classifier=fake())
    assert report.exit_code == 0
    assert report.to_json()["notifications"] == {"sent": 1, "failed": 1, "suppressed": 0}
    assert len(webhook.posts) == 1  # the other URL still got it
    failures = [r.getMessage() for r in caplog.records if "could not be sent" in r.getMessage()]
    assert failures == [
        "notification 'waiting' could not be sent to URL 1 (json): the service did not accept it"
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("hunter2secret", "Tok3nPath99"):
        assert secret not in logged
        assert secret not in str(report.to_json())


def test_apprise_urls_are_remembered_as_secrets(sqlite_url: str) -> None:
    from moderation.redact import redact

    token = "slack://T1AAAAAAA/B2BBBBBBB/C3cccccccccccccc"
    make_settings(sqlite_url, notify_urls=f"{token} tgram://123456789:ABCdefGHIjkl/4242")
    assert redact(f"failed: {token}") == "failed: ***"
    assert "C3cccccccccccccc" not in redact("posting to C3cccccccccccccc failed")
    assert "ABCdefGHIjkl" not in redact("bot 123456789:ABCdefGHIjkl refused")


def test_plain_words_of_a_url_stay_readable(sqlite_url: str) -> None:
    from moderation.redact import redact

    make_settings(sqlite_url, notify_urls="json://127.0.0.1:9/hooks/moderation")
    assert redact("pip install 'moderation[notify]'") == "pip install 'moderation[notify]'"
    assert redact("sent to json://127.0.0.1:9/hooks/moderation") == "sent to ***"


def test_a_held_lease_is_told_from_cron_but_not_from_a_timer(
    sqlite_url: str, webhook: Webhook
) -> None:
    from moderation.errors import LeaseHeld, TickAlreadyRun

    create_site_table(sqlite_url, ["fine"])
    notifier = Notifier(settings_for(sqlite_url, webhook.url()))
    # Replicas' timers share the ticks through the lease: that is no failure.
    assert notify.after_failure(notifier, LeaseHeld("busy"), scheduled=True) is None
    assert notify.after_failure(notifier, TickAlreadyRun("done"), scheduled=False) is None
    assert webhook.posts == []
    # From cron, a batch still running when the next starts means they overlap.
    tally = notify.after_failure(notifier, LeaseHeld("busy"), scheduled=False)
    assert tally is not None and tally.to_json()["sent"] == 1
    assert webhook.messages() == [
        (
            "moderation: batch failed (exit 75)",
            "A batch failed with exit code 75: busy\nNothing was approved by it.",
        )
    ]


class _SiteBehindAnApi:
    """A site reached through an API, as the batch sees it: every key it is asked about is a
    pending comment."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.asked: list[str] = []

    def current_rows(self, conn: object, keys: list[str]) -> dict[str, SiteRow]:
        self.asked += keys
        return {key: SiteRow(key, "text", PENDING_STATE) for key in keys}


def test_the_waiting_count_of_a_site_behind_an_api_counts_that_site_alone(
    sqlite_url: str,
) -> None:
    engine = migrate_engine(sqlite_url)
    now = datetime.now(UTC)
    rows = [("blog-a", str(i), "held") for i in range(3)] + [("blog-b", "1", "held")]
    with engine.begin() as conn:
        conn.execute(
            sa.insert(comment_state),
            [
                {
                    "site": site,
                    "comment_id": key,
                    "text_hash": "h",
                    "outcome": outcome,
                    "label": "negative",
                    "prompt_hash": "p",
                    "run_id": "r",
                    "updated_at": now,
                }
                for site, key, outcome in rows
            ],
        )
    site = _SiteBehindAnApi("blog-b")

    waiting = notify.waiting_comments(engine, site)  # type: ignore[arg-type]

    assert waiting.total == 1
    assert site.asked == ["1"]
    engine.dispose()


def migrate_engine(url: str) -> sa.engine.Engine:
    engine = create_engine(url)
    migrate.ensure_current(engine, True)
    return engine
