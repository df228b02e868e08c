"""`outcomes` through its Python API: a batch, scripted humans, exact figures, twice in a row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from moderation.batch.pipeline import run_batch
from moderation.comment import text_hash
from moderation.errors import ConfigurationError
from moderation.humans.outcome_report import measure, render_table
from moderation.humans.outcomes import (
    CONFIRMED,
    EDITED,
    KEPT,
    OTHER,
    RELEASED,
    REVERSED,
    WAITING,
    classify,
    from_ruling,
)
from moderation.humans.since import Window
from moderation.site.rows import SiteRow
from tests.fakes import FakeClassifier
from tests.helpers import NEGATIVE, create_site_table, execute, make_settings, read_table

ZERO = dict.fromkeys((KEPT, REVERSED, RELEASED, CONFIRMED, WAITING, EDITED, OTHER), 0)


def figures(url: str, since: str = "30d", **settings: Any) -> dict[str, Any]:
    return measure(make_settings(url, **settings), Window.parse(since)).to_json()


def counts(result: dict[str, Any]) -> dict[str, int]:
    return {name: result[name] for name in ZERO}


@pytest.mark.parametrize(
    ("approved", "state", "same_text", "expected"),
    [
        (True, "approved", True, KEPT),
        (True, "pending", True, REVERSED),
        (True, "rejected", True, REVERSED),
        (True, "rejected", False, REVERSED),  # Isso blanks a deleted comment's text
        (True, None, True, REVERSED),
        (True, "approved", False, EDITED),
        (True, "other", True, OTHER),
        (False, "approved", True, RELEASED),
        (False, "pending", True, WAITING),
        (False, "rejected", True, CONFIRMED),
        (False, None, True, CONFIRMED),
        (False, "pending", False, EDITED),
        (False, "other", True, OTHER),
    ],
)
def test_classification_table(
    approved: bool, state: str | None, same_text: bool, expected: str
) -> None:
    row = None if state is None else SiteRow("1", "text" if same_text else "changed", state)
    assert classify(approved, row, text_hash("text")) == expected


def test_a_humans_ruling_maps_onto_the_tools_decision() -> None:
    assert from_ruling(False, "approved") == RELEASED
    assert from_ruling(False, "rejected") == CONFIRMED
    assert from_ruling(True, "rejected") == REVERSED
    assert from_ruling(True, "approved") == KEPT


BODIES = [
    "great post",  # 1 approved, untouched: kept
    "thanks a lot",  # 2 approved, set pending again: reversed
    "you idiot",  # 3 held, approved by a human: released
    "idiot again",  # 4 held, deleted: confirmed
    "nice one",  # 5 approved, deleted: reversed
    "cool stuff",  # 6 approved, text edited: edited
    "idiot three",  # 7 held, untouched: waiting
    "idiot four",  # 8 held, untouched: waiting
]


def scripted_site(url: str) -> None:
    create_site_table(url, BODIES)
    run_batch(make_settings(url), classifier=FakeClassifier({"idiot": NEGATIVE}))
    execute(
        url,
        "UPDATE comments SET approved = false WHERE id = 2",
        "UPDATE comments SET approved = true WHERE id = 3",
        "DELETE FROM comments WHERE id IN (4, 5)",
        "UPDATE comments SET body = 'cool stuff, edited' WHERE id = 6",
    )


def test_scripted_humans_give_exact_figures_twice_in_a_row(db_url: str) -> None:
    scripted_site(db_url)

    first = figures(db_url)
    second = figures(db_url)

    expected = {**ZERO, KEPT: 1, REVERSED: 2, RELEASED: 1, CONFIRMED: 1, WAITING: 2, EDITED: 1}
    assert counts(first) == expected
    assert first["decided"] == 8
    assert first["reversal_rate"] == 2 / 4  # 4 approvals by the tool: 1, 2, 5, 6
    assert first["release_rate"] == 1 / 4  # 4 holds: 3, 4, 7, 8
    assert sorted(first["reversed_ids"]) == ["2", "5"]
    assert [(v["model_digest"], v["prompt_hash"], v["decided"]) for v in first["by_variant"]] == [
        ("sha256:fake", "p" * 64, 8)
    ]
    assert counts(first["by_variant"][0]) == expected
    moving = ("since", "until")  # the window moves with the clock
    assert {k: v for k, v in second.items() if k not in moving} == {
        k: v for k, v in first.items() if k not in moving
    }
    recorded = read_table(
        db_url, "SELECT comment_id, outcome FROM moderation_outcomes ORDER BY comment_id"
    )
    assert recorded == [("2", REVERSED), ("3", RELEASED), ("4", CONFIRMED), ("5", REVERSED)]


def test_a_recorded_outcome_survives_the_row_being_purged_or_restored(db_url: str) -> None:
    scripted_site(db_url)
    figures(db_url)
    # The released comment is purged, the reversed one approved again: what was seen stays.
    execute(
        db_url,
        "DELETE FROM comments WHERE id = 3",
        "UPDATE comments SET approved = true WHERE id = 2",
    )

    result = figures(db_url)

    assert (result[RELEASED], result[REVERSED], result[CONFIRMED], result[KEPT]) == (1, 2, 1, 1)


def test_only_the_latest_tool_decision_counts(db_url: str) -> None:
    create_site_table(db_url, ["you idiot", "fine"])
    settings = make_settings(db_url)
    run_batch(settings, classifier=FakeClassifier({"idiot": NEGATIVE}))
    # The author edits the held comment; the next batch (a new prompt) decides it again.
    execute(db_url, "UPDATE comments SET body = 'you are right' WHERE id = 1")
    run_batch(settings, classifier=FakeClassifier(prompt_hash="q" * 64))

    result = figures(db_url)

    assert result["decided"] == 2
    assert counts(result) == {**ZERO, KEPT: 2}
    assert sorted((v["prompt_hash"][0], v["kept"]) for v in result["by_variant"]) == [
        ("p", 1),
        ("q", 1),
    ]


def test_the_window_selects_by_the_time_of_the_latest_decision(db_url: str) -> None:
    scripted_site(db_url)
    old = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y-%m-%d %H:%M:%S")
    execute(db_url, f"UPDATE moderation_decisions SET decided_at = '{old}' WHERE comment_id = '1'")

    assert figures(db_url)["decided"] == 7
    assert figures(db_url, since="60d")["decided"] == 8
    assert figures(db_url, since="24h")["decided"] == 7
    iso = (datetime.now(UTC) - timedelta(days=41)).date().isoformat()
    assert figures(db_url, since=iso)["decided"] == 8


def test_a_reviewers_ruling_in_the_audit_trail_counts(db_url: str) -> None:
    create_site_table(db_url, ["you idiot", "idiot two"])
    run_batch(make_settings(db_url), classifier=FakeClassifier({"idiot": NEGATIVE}))
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    # A reviewer approved the first and rejected the second; then both rows were purged.
    for comment_id, ruling in (("1", "approved"), ("2", "rejected")):
        execute(
            db_url,
            "INSERT INTO moderation_decisions (run_id, comment_id, text_hash, outcome, model,"
            " prompt_hash, decided_at, reviewer) VALUES ('review', "
            f"'{comment_id}', 'h', '{ruling}', 'human', '-', '{now}', 'alice')",
        )
    execute(db_url, "DELETE FROM comments")

    result = figures(db_url)

    assert result["decided"] == 2
    assert counts(result) == {**ZERO, RELEASED: 1, CONFIRMED: 1}


def test_status_columns_with_rejected_values(db_url: str) -> None:
    create_site_table(
        db_url,
        ["ok 1", "ok 2", "idiot 3", "idiot 4", "ok 5"],
        status=("0", "1"),
    )
    settings = {
        "comments_approved_value": "1",
        "comments_pending_value": "0",
        "comments_rejected_values": "trash,spam",
    }
    run_batch(make_settings(db_url, **settings), classifier=FakeClassifier({"idiot": NEGATIVE}))
    execute(
        db_url,
        "UPDATE comments SET approved = 'trash' WHERE id = 1",
        "UPDATE comments SET approved = 'spam' WHERE id = 3",
        "UPDATE comments SET approved = '1' WHERE id = 4",
        "UPDATE comments SET approved = 'odd' WHERE id = 5",
    )

    for _ in range(2):
        result = figures(db_url, **settings)
        assert counts(result) == {**ZERO, KEPT: 1, REVERSED: 1, CONFIRMED: 1, RELEASED: 1, OTHER: 1}
        assert result["reversed_ids"] == ["1"]


def test_rejected_values_need_a_status_column(sqlite_url: str) -> None:
    create_site_table(sqlite_url, ["a"])
    with pytest.raises(ConfigurationError, match="is boolean: 'trash' is neither true nor false"):
        figures(sqlite_url, comments_rejected_values="trash")


def test_an_empty_window_has_no_rates(sqlite_url: str) -> None:
    create_site_table(sqlite_url, ["a"])
    result = figures(sqlite_url)
    assert result["decided"] == 0
    assert result["reversal_rate"] is None and result["release_rate"] is None
    assert result["by_variant"] == [] and result["reversed_ids"] == []


def test_many_variants_wrap_within_80_columns(sqlite_url: str) -> None:
    create_site_table(sqlite_url, [f"comment {i}" for i in range(7)])
    for i in range(7):
        run_batch(
            make_settings(sqlite_url, limit=1),
            classifier=FakeClassifier(digest=f"sha256:{i}" * 8, prompt_hash=str(i) * 64),
        )
    report = measure(make_settings(sqlite_url), Window.parse("7d"))
    lines = render_table(report)
    assert len(report.by_variant) == 7
    assert max(len(line) for line in lines) <= 80
    assert sum(line.startswith("decided") for line in lines) == 2  # all + 7 variants, 2 blocks


def test_outcomes_never_write_the_sites_table(db_url: str) -> None:
    scripted_site(db_url)
    before = read_table(db_url, "SELECT id, body, approved FROM comments ORDER BY id")
    figures(db_url)
    assert read_table(db_url, "SELECT id, body, approved FROM comments ORDER BY id") == before


def test_without_auto_migrate_the_tables_must_be_current(sqlite_url: str) -> None:
    create_site_table(sqlite_url, ["a"])
    with pytest.raises(ConfigurationError, match="moderate db upgrade"):
        figures(sqlite_url, auto_migrate=False)


def test_pages_of_one_give_the_same_figures(db_url: str) -> None:
    scripted_site(db_url)
    settings = make_settings(db_url)
    by_one = measure(settings, Window.parse("1d"), page_size=1).to_json()
    whole = measure(settings, Window.parse("1d")).to_json()
    moving = ("since", "until")
    assert {k: v for k, v in by_one.items() if k not in moving} == {
        k: v for k, v in whole.items() if k not in moving
    }
    assert read_table(db_url, "SELECT COUNT(*) FROM moderation_outcomes") == [(4,)]


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("24h", datetime(2026, 12, 1, 12, 0, tzinfo=UTC)),
        ("7d", datetime(2026, 11, 25, 12, 0, tzinfo=UTC)),
        (" 2w ", datetime(2026, 11, 18, 12, 0, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T08:30", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
        ("2026-11-01T08:30+02:00", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
    ],
)
def test_window_forms(since: str, expected: datetime) -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert Window.parse(since, now) == Window(expected, now)


@pytest.mark.parametrize("since", ["", "30", "d", "1y", "2026-13-01", "2026-12-03", "0h"])
def test_bad_windows(since: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^--since"):
        Window.parse(since, datetime(2026, 12, 2, 12, 0, tzinfo=UTC))


def test_a_second_sighting_keeps_the_first_record(db_url: str) -> None:
    """Two runs at once may both see a new outcome: the first record stays, neither fails."""
    from moderation.humans.outcomes import Judged, _record
    from moderation.storage.engines import create_engine, run_write

    scripted_site(db_url)
    figures(db_url)
    first = read_table(db_url, "SELECT decision_id, outcome, seen_at FROM moderation_outcomes")
    decision_id = first[0][0]
    late = Judged(decision_id, "x", "h", "approved", None, "p", CONFIRMED, None)
    engine = create_engine(db_url)
    run_write(engine, lambda conn: _record(conn, "comments", [late]))
    engine.dispose()
    assert (
        read_table(db_url, "SELECT decision_id, outcome, seen_at FROM moderation_outcomes") == first
    )
