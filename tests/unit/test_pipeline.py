"""The batch through its Python API, with a scripted classifier, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from moderation.batch.pipeline import STALE, run_batch
from moderation.errors import ConfigurationError, SchemaError
from moderation.settings import DEFAULT_MIN_CONFIDENCE
from tests.fakes import FakeClassifier
from tests.helpers import create_site_table, make_settings, read_table

NEGATIVE = '{"label": "negative"}'
NEUTRAL = '{"label": "neutral"}'


def approved_flags(
    url: str, table: str = "comments", column: str = "approved", key: str = "id"
) -> list[object]:
    return [row[0] for row in read_table(url, f"SELECT {column} FROM {table} ORDER BY {key}")]


def test_approves_positive_and_neutral_and_holds_negative(db_url: str) -> None:
    create_site_table(db_url, ["Great post, thanks!", "Which version is this?", "You idiot."])
    fake = FakeClassifier({"idiot": NEGATIVE, "version": NEUTRAL})

    report = run_batch(make_settings(db_url), classifier=fake)

    assert [bool(v) for v in approved_flags(db_url)] == [True, True, False]
    assert report.to_json()["approved"] == 2 and report.to_json()["held"] == 1
    assert report.exit_code == 0
    assert [(d.comment_id, d.label, d.outcome) for d in report.decisions] == [
        (1, "positive", "approved"),
        (2, "neutral", "approved"),
        (3, "negative", "held"),
    ]
    rows = read_table(
        db_url,
        "SELECT comment_id, label, outcome, raw_answer, model, model_digest, prompt_hash, options,"
        " run_id, error FROM moderation_decisions ORDER BY comment_id",
    )
    assert [r[:3] for r in rows] == [
        ("1", "positive", "approved"),
        ("2", "neutral", "approved"),
        ("3", "negative", "held"),
    ]
    assert rows[2][3] == NEGATIVE
    assert {r[4:7] for r in rows} == {("sentiments", "sha256:fake", "p" * 64)}
    # The request options, and the approval threshold the outcomes were decided under.
    assert json.loads(rows[0][7]) == {"temperature": 0.0, "min_confidence": DEFAULT_MIN_CONFIDENCE}
    assert {r[8] for r in rows} == {report.run_id}
    run = read_table(
        db_url, "SELECT status, considered, approved, held, failed, exit_code FROM moderation_runs"
    )
    assert run == [("done", 3, 2, 1, 0, 0)]
    assert fake.closed


def test_every_decision_is_explained_by_its_audit_row(db_url: str) -> None:
    create_site_table(db_url, ["fine", "bad"])
    run_batch(make_settings(db_url), classifier=FakeClassifier({"bad": NEGATIVE}))
    rows = read_table(
        db_url,
        "SELECT c.approved, d.outcome, d.label FROM comments c "
        "JOIN moderation_decisions d ON d.comment_id = CAST(c.id AS VARCHAR(255)) ORDER BY c.id",
    )
    assert [(bool(a), o, label) for a, o, label in rows] == [
        (True, "approved", "positive"),
        (False, "held", "negative"),
    ]


def test_failures_stay_pending_and_are_retried_a_bounded_number_of_times(db_url: str) -> None:
    create_site_table(db_url, ["ok comment", "confusing comment"])
    settings = make_settings(db_url, max_attempts=2)
    answers = {"confusing": "I think it could be positive or negative"}

    first = FakeClassifier(answers)
    report = run_batch(settings, classifier=first)
    assert report.exit_code == 3
    assert report.to_json()["decisions"][1] == {
        "comment_id": 2,
        "label": None,
        "outcome": "failed",
        "error": "unparseable answer",
        "coverage": "whole",
        "confidence": None,
        "rule": None,
        "answer_of": None,
    }
    assert [bool(v) for v in approved_flags(db_url)] == [True, False]

    second = FakeClassifier(answers)
    run_batch(settings, classifier=second)
    assert second.asked == ["confusing comment"]

    third = FakeClassifier(answers)
    report = run_batch(settings, classifier=third)
    assert third.asked == []  # out of attempts: waits for a human
    assert report.skipped == 1 and report.exit_code == 0
    assert [bool(v) for v in approved_flags(db_url)] == [True, False]


def test_held_comments_are_not_asked_again_until_text_model_or_prompt_changes(db_url: str) -> None:
    create_site_table(db_url, ["this is awful"])
    settings = make_settings(db_url)
    run_batch(settings, classifier=FakeClassifier(default=NEGATIVE))

    again = FakeClassifier(default=NEGATIVE)
    report = run_batch(settings, classifier=again)
    assert again.asked == [] and report.skipped == 1

    new_model = FakeClassifier(default=NEGATIVE, digest="sha256:other")
    run_batch(settings, classifier=new_model)
    assert new_model.asked == ["this is awful"]

    new_prompt = FakeClassifier(default=NEGATIVE, digest="sha256:other", prompt_hash="q" * 64)
    run_batch(settings, classifier=new_prompt)
    assert new_prompt.asked == ["this is awful"]

    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE comments SET body = 'edited: this is fine' WHERE id = 1")
    engine.dispose()
    edited = FakeClassifier(default=NEGATIVE, digest="sha256:other", prompt_hash="q" * 64)
    run_batch(settings, classifier=edited)
    assert edited.asked == ["edited: this is fine"]


def test_approved_comments_are_never_sent(db_url: str) -> None:
    create_site_table(db_url, ["already fine", "new one"], approved={1})
    fake = FakeClassifier()
    run_batch(make_settings(db_url), classifier=fake)
    assert fake.asked == ["new one"]


def test_comment_edited_while_classified_is_not_approved(db_url: str) -> None:
    create_site_table(db_url, ["nice post"])
    engine = sa.create_engine(db_url)

    def edit_then_answer(_text: str) -> str:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE comments SET body = 'spam spam' WHERE id = 1")
        return '{"label": "positive"}'

    report = run_batch(make_settings(db_url), classifier=FakeClassifier(default=edit_then_answer))
    engine.dispose()
    assert [(d.outcome, d.error) for d in report.decisions] == [("failed", STALE)]
    assert approved_flags(db_url) == [False] or approved_flags(db_url) == [0]


@pytest.mark.parametrize("edited", ["NICE POST", "nice post  ", "nice pośt"])
def test_an_edit_the_collation_would_ignore_is_still_an_edit(db_url: str, edited: str) -> None:
    # MySQL's default collations compare case-insensitively and ignore trailing spaces: the
    # guard must compare bytes, or the edited text is approved unread.
    create_site_table(db_url, ["nice post"])
    engine = sa.create_engine(db_url)

    def edit_then_answer(_text: str) -> str:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE comments SET body = :body WHERE id = 1"), {"body": edited})
        return '{"label": "positive"}'

    report = run_batch(make_settings(db_url), classifier=FakeClassifier(default=edit_then_answer))
    engine.dispose()
    assert [(d.outcome, d.error) for d in report.decisions] == [("failed", STALE)]
    assert [bool(v) for v in approved_flags(db_url)] == [False]
    assert read_table(db_url, "SELECT body FROM comments") == [(edited,)]


def test_an_edit_inside_a_chunk_fails_only_the_edited_comment(db_url: str) -> None:
    # Several decisions are applied together (on MySQL/MariaDB in one UPDATE): the edit guard
    # still compares each row's own bytes, whatever the collation would ignore.
    create_site_table(db_url, ["nice post", "good one", "thanks a lot", "well said"])
    engine = sa.create_engine(db_url)

    def edit_then_answer(_text: str) -> str:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE comments SET body = 'THANKS A LOT' WHERE id = 3")
        return '{"label": "positive"}'

    fake = FakeClassifier({"thanks": edit_then_answer})
    report = run_batch(make_settings(db_url), classifier=fake)
    engine.dispose()
    assert sorted((d.comment_id, d.outcome, d.error) for d in report.decisions) == [
        (1, "approved", None),
        (2, "approved", None),
        (3, "failed", STALE),
        (4, "approved", None),
    ]
    assert [bool(v) for v in approved_flags(db_url)] == [True, True, False, True]


def test_comment_approved_by_a_human_meanwhile_is_left_alone(db_url: str) -> None:
    create_site_table(db_url, ["nice post", "another"])
    engine = sa.create_engine(db_url)

    def approve_first(_text: str) -> str:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE comments SET approved = true WHERE id = 1")
        return '{"label": "positive"}'

    report = run_batch(make_settings(db_url), classifier=FakeClassifier({"nice": approve_first}))
    engine.dispose()
    assert [(d.comment_id, d.outcome) for d in report.decisions] == [
        (1, "failed"),
        (2, "approved"),
    ]


def test_status_string_column_with_mapped_names(db_url: str) -> None:
    create_site_table(
        db_url,
        ["Thanks!", "Get rich quick http://spam.example", "Is there a part two?"],
        table="wp_comments",
        id_column="comment_ID",
        body_column="comment_content",
        approved_column="comment_approved",
        status=("0", "1"),
    )
    settings = make_settings(
        db_url,
        comments_table="wp_comments",
        comments_id_column="comment_ID",
        comments_body_column="comment_content",
        comments_approved_column="comment_approved",
        comments_approved_value="1",
        comments_pending_value="0",
    )
    before = sa.inspect(sa.create_engine(db_url)).get_columns("wp_comments")
    report = run_batch(settings, classifier=FakeClassifier({"spam": NEGATIVE, "part two": NEUTRAL}))
    after = sa.inspect(sa.create_engine(db_url)).get_columns("wp_comments")
    assert report.counts()["approved"] == 2
    flags = approved_flags(db_url, "wp_comments", "comment_approved", '"comment_ID"')
    assert flags == ["1", "0", "1"]
    assert [(c["name"], str(c["type"])) for c in before] == [
        (c["name"], str(c["type"])) for c in after
    ]


def test_dry_run_writes_nothing_at_all(sqlite_url: str) -> None:
    create_site_table(sqlite_url, ["lovely", "horrible person"])
    engine = sa.create_engine(sqlite_url)
    tables_before = sa.inspect(engine).get_table_names()

    report = run_batch(
        make_settings(sqlite_url), dry_run=True, classifier=FakeClassifier({"horrible": NEGATIVE})
    )

    assert sa.inspect(engine).get_table_names() == tables_before == ["comments"]
    assert approved_flags(sqlite_url) == [0, 0]
    assert report.run_id is None
    assert [(d.label, d.outcome) for d in report.decisions] == [
        ("positive", "approved"),
        ("negative", "held"),
    ]


def test_dry_run_after_a_real_run_respects_memory(db_url: str) -> None:
    create_site_table(db_url, ["horrible"])
    run_batch(make_settings(db_url), classifier=FakeClassifier(default=NEGATIVE))
    counts = read_table(db_url, "SELECT count(*) FROM moderation_decisions")
    fake = FakeClassifier(default=NEGATIVE)
    report = run_batch(make_settings(db_url), dry_run=True, classifier=fake)
    assert fake.asked == [] and report.skipped == 1
    assert read_table(db_url, "SELECT count(*) FROM moderation_decisions") == counts


def test_limit_bounds_the_model_calls(db_url: str) -> None:
    create_site_table(db_url, [f"comment {i}" for i in range(10)])
    fake = FakeClassifier()
    report = run_batch(make_settings(db_url, batch_size=3), limit=4, classifier=fake)
    assert len(fake.asked) == 4 and report.counts()["approved"] == 4
    assert sum(bool(v) for v in approved_flags(db_url)) == 4


def test_one_failing_comment_does_not_stop_the_others(db_url: str) -> None:
    create_site_table(db_url, ["one", "two BOOM", "three"])
    fake = FakeClassifier(server_errors={"BOOM"})
    report = run_batch(make_settings(db_url), classifier=fake)
    assert [d.outcome for d in report.decisions] == ["approved", "failed", "approved"]
    assert report.exit_code == 3


def test_pages_and_concurrency_give_the_same_decisions(sqlite_url: str) -> None:
    bodies = [f"comment {i} {'bad' if i % 3 == 0 else 'good'}" for i in range(60)]
    create_site_table(sqlite_url, bodies)
    fake = FakeClassifier({"bad": NEGATIVE}, slots=8, delay=0.001)
    report = run_batch(make_settings(sqlite_url, batch_size=7), classifier=fake)
    assert sorted(fake.asked) == sorted(bodies)
    assert sorted((d.comment_id, d.outcome) for d in report.decisions) == [
        (i + 1, "held" if i % 3 == 0 else "approved") for i in range(60)
    ]


def test_missing_table_and_columns_are_reported_clearly(sqlite_url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"SQLite database .* does not exist"):
        run_batch(make_settings(sqlite_url), classifier=FakeClassifier())
    create_site_table(sqlite_url, [], table="unrelated")  # the file, without the site's table
    with pytest.raises(SchemaError, match="table 'comments' does not exist"):
        run_batch(make_settings(sqlite_url), classifier=FakeClassifier())
    create_site_table(sqlite_url, ["x"])
    with pytest.raises(SchemaError, match=r"no column 'content' \(MODERATION_COMMENTS_BODY"):
        run_batch(
            make_settings(sqlite_url, comments_body_column="content"), classifier=FakeClassifier()
        )


def test_without_auto_migrate_the_tables_must_exist(sqlite_url: str) -> None:
    create_site_table(sqlite_url, ["x"])
    with pytest.raises(ConfigurationError, match="moderate db upgrade"):
        run_batch(make_settings(sqlite_url, auto_migrate=False), classifier=FakeClassifier())


def test_nothing_pending_never_loads_the_model(db_url: str) -> None:
    create_site_table(db_url, ["old"], approved={1})
    fake = FakeClassifier()
    report = run_batch(make_settings(db_url), classifier=fake)
    assert fake.warm_ups == 0 and fake.asked == [] and report.exit_code == 0
