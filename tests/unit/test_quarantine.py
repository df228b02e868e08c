"""The last defence: a check that raises holds its comment; a comment that was in work when
the site's last two batches stopped is held unread; one stopped batch quarantines nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from moderation.batch import checks, quarantine
from moderation.batch.pipeline import run_batch
from moderation.comment import Comment
from moderation.rules import RuleContext
from moderation.storage import migrate
from moderation.storage.engines import create_engine
from moderation.storage.tables import runs
from tests.fakes import FakeClassifier
from tests.helpers import create_site_table, make_settings, read_table


def _add_runs(url: str, *specs: tuple[str, int | None, str | None], site: str = "") -> None:
    """Runs of ``site``, oldest first: (status, exit code, in_work JSON)."""
    engine = create_engine(url)
    migrate.ensure_current(engine, True)
    start = datetime.now(UTC) - timedelta(hours=len(specs))
    with engine.begin() as conn:
        for index, (status, exit_code, in_work) in enumerate(specs):
            conn.execute(
                sa.insert(runs).values(
                    id=str(uuid.uuid4()),
                    site=site,
                    started_at=start + timedelta(minutes=index),
                    status=status,
                    owner="host:1:x",
                    exit_code=exit_code,
                    in_work=in_work,
                )
            )
    engine.dispose()


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        ([("abandoned", None, '["1", "2"]'), ("abandoned", None, '["2", "3"]')], {"2"}),
        ([("fenced", 75, '["7"]'), ("abandoned", None, '["7"]')], {"7"}),
        ([("failed", 1, '["7"]'), ("fenced", 75, '["7"]')], {"7"}),
        # One stopped run, or a run between that ended well: nothing.
        ([("done", 0, None), ("abandoned", None, '["7"]')], set()),
        ([("abandoned", None, '["7"]'), ("done", 0, None)], set()),
        ([("abandoned", None, '["7"]')], set()),
        # A failure the operator can fix (a configuration error) is no comment's doing.
        ([("failed", 2, '["7"]'), ("abandoned", None, '["7"]')], set()),
        # Interrupted by a signal: the operator's doing.
        ([("interrupted", 130, '["7"]'), ("abandoned", None, '["7"]')], set()),
        ([("abandoned", None, "not json"), ("abandoned", None, '["7"]')], set()),
    ],
)
def test_a_comment_in_work_in_each_of_the_last_two_stopped_runs_is_quarantined(
    sqlite_url: str, specs: list[tuple[str, int | None, str | None]], expected: set[str]
) -> None:
    _add_runs(sqlite_url, *specs)
    engine = create_engine(sqlite_url)
    assert quarantine.quarantined(engine, "", "current") == expected
    engine.dispose()


def test_another_sites_stopped_runs_do_not_count(sqlite_url: str) -> None:
    _add_runs(sqlite_url, ("abandoned", None, '["7"]'), ("abandoned", None, '["7"]'), site="b")
    engine = create_engine(sqlite_url)
    assert quarantine.quarantined(engine, "", "current") == frozenset()
    assert quarantine.quarantined(engine, "b", "current") == {"7"}
    engine.dispose()


def test_a_check_that_raises_holds_its_comment_and_names_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(text: str, context: RuleContext, **row: object) -> None:
        raise RecursionError("deep")

    monkeypatch.setattr(checks.rules, "check", broken)
    reading = checks.check(Comment(1, "anything"), RuleContext(), frozenset())
    assert reading is not None and reading.verdict is None
    assert reading.rule == "check_failed"
    assert reading.unread_reason == "rule: could not be checked (RecursionError); held for a human"


def test_a_batch_holds_the_quarantined_comment_unread_and_moderates_the_rest(
    sqlite_url: str,
) -> None:
    create_site_table(sqlite_url, ["Lovely post", "Also lovely"])
    _add_runs(sqlite_url, ("abandoned", None, '["1"]'), ("fenced", 75, '["1"]'))
    fake = FakeClassifier()

    report = run_batch(make_settings(sqlite_url), classifier=fake)

    outcomes = {d.comment_id: (d.outcome, d.rule) for d in report.decisions}
    assert outcomes == {1: ("held", "quarantine"), 2: ("approved", None)}
    assert fake.asked == ["Also lovely"]
    (error,) = read_table(sqlite_url, "SELECT error FROM moderation_decisions WHERE comment_id='1'")
    assert error[0].startswith("rule: quarantined: in work each time the last 2 batches stopped")


def test_an_interrupted_batch_is_recorded_as_interrupted_and_quarantines_nothing(
    sqlite_url: str,
) -> None:
    create_site_table(sqlite_url, ["Lovely post", "Also lovely"])

    def interrupt(text: str) -> str:
        raise KeyboardInterrupt

    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            run_batch(make_settings(sqlite_url), classifier=FakeClassifier(default=interrupt))
    statuses = read_table(sqlite_url, "SELECT status, exit_code FROM moderation_runs")
    assert statuses == [("interrupted", 130)] * 2

    report = run_batch(make_settings(sqlite_url), classifier=FakeClassifier())
    assert [d.outcome for d in report.decisions] == ["approved", "approved"]
