"""Copies of one text: one model request, a decision each, and the source of the answer kept."""

from __future__ import annotations

from moderation.batch.pipeline import run_batch
from tests.fakes import FakeClassifier
from tests.helpers import create_site_table, execute, make_settings, read_table

NEGATIVE = '{"label": "negative"}'


def test_copies_in_one_batch_share_one_request(db_url: str) -> None:
    create_site_table(db_url, ["Nice post", "You idiot", "Nice post", "You idiot", "Thanks"])
    fake = FakeClassifier({"idiot": NEGATIVE}, slots=4, delay=0.05)

    report = run_batch(make_settings(db_url), classifier=fake)

    assert sorted(fake.asked) == ["Nice post", "Thanks", "You idiot"]
    assert [(d.comment_id, d.outcome, d.answer_of) for d in report.decisions] == [
        (1, "approved", None),
        (2, "held", None),
        (3, "approved", "1"),
        (4, "held", "2"),
        (5, "approved", None),
    ]
    assert report.reused == 2 and report.to_json()["reused"] == 2
    # Both copies approved in the site's table, and each audit row says whose answer it is.
    assert read_table(db_url, "SELECT approved FROM comments ORDER BY id") in (
        [(True,), (False,), (True,), (False,), (True,)],
        [(1,), (0,), (1,), (0,), (1,)],
    )
    rows = read_table(
        db_url,
        "SELECT comment_id, label, answer_of, latency_ms FROM moderation_decisions "
        "ORDER BY comment_id",
    )
    assert [r[:3] for r in rows] == [
        ("1", "positive", None),
        ("2", "negative", None),
        ("3", "positive", "1"),
        ("4", "negative", "2"),
        ("5", "positive", None),
    ]
    assert rows[2][3] == 0 and rows[0][3] > 0  # no request, no latency


def test_a_failed_request_is_not_shared(db_url: str) -> None:
    create_site_table(db_url, ["flaky text", "flaky text"])
    fake = FakeClassifier(server_errors={"flaky"}, slots=1)

    report = run_batch(make_settings(db_url, max_attempts=3), classifier=fake)

    assert fake.asked == ["flaky text", "flaky text"]
    assert [(d.outcome, d.answer_of) for d in report.decisions] == [
        ("failed", None),
        ("failed", None),
    ]
    assert report.reused == 0


def test_a_later_copy_takes_the_answer_from_the_audit_trail(db_url: str) -> None:
    create_site_table(db_url, ["Great post, thanks!", "You idiot"])
    settings = make_settings(db_url)
    run_batch(settings, classifier=FakeClassifier({"idiot": NEGATIVE}))

    # The same texts posted again, under new ids.
    execute(
        db_url,
        "INSERT INTO comments (id, body, approved) VALUES (3, 'Great post, thanks!', false)",
        "INSERT INTO comments (id, body, approved) VALUES (4, 'You idiot', false)",
        "INSERT INTO comments (id, body, approved) VALUES (5, 'Something new', false)",
    )
    later = FakeClassifier({"idiot": NEGATIVE})
    report = run_batch(settings, classifier=later)

    assert later.asked == ["Something new"]
    assert [(d.comment_id, d.outcome, d.answer_of) for d in report.decisions] == [
        (3, "approved", "1"),
        (4, "held", "2"),
        (5, "approved", None),
    ]


def test_another_model_or_prompt_asks_again(db_url: str) -> None:
    create_site_table(db_url, ["Great post, thanks!"])
    settings = make_settings(db_url)
    run_batch(settings, classifier=FakeClassifier())
    execute(
        db_url,
        "INSERT INTO comments (id, body, approved) VALUES (2, 'Great post, thanks!', false)",
        "INSERT INTO comments (id, body, approved) VALUES (3, 'Great post, thanks!', false)",
    )

    other_model = FakeClassifier(digest="sha256:other")
    report = run_batch(settings, classifier=other_model)
    assert other_model.asked == ["Great post, thanks!"]  # once, for both copies
    assert [(d.comment_id, d.answer_of) for d in report.decisions] == [(2, None), (3, "2")]

    execute(
        db_url, "INSERT INTO comments (id, body, approved) VALUES (4, 'Great post, thanks!', false)"
    )
    other_prompt = FakeClassifier(prompt_hash="q" * 64)
    report = run_batch(settings, classifier=other_prompt)
    assert other_prompt.asked == ["Great post, thanks!"]
    assert [(d.comment_id, d.answer_of) for d in report.decisions] == [(4, None)]


def test_a_dry_run_reuses_answers_without_writing(db_url: str) -> None:
    create_site_table(db_url, ["Great post", "Great post"])
    settings = make_settings(db_url)
    run_batch(settings, classifier=FakeClassifier())
    execute(db_url, "INSERT INTO comments (id, body, approved) VALUES (3, 'Great post', false)")

    fake = FakeClassifier()
    report = run_batch(settings, classifier=fake, dry_run=True)

    assert fake.asked == []
    assert [(d.comment_id, d.outcome, d.answer_of) for d in report.decisions] == [
        (3, "approved", "1")
    ]
