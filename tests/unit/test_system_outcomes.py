"""Outcomes count humans only: what the comment system does by itself is ``system``, neither a
reversal nor a confirmation (WordPress's ``post-trashed``, Isso's purge of old pending rows)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from moderation.batch.pipeline import run_batch
from moderation.cli.app import app
from moderation.comment import text_hash
from moderation.humans.outcome_report import measure
from moderation.humans.outcomes import CONFIRMED, REVERSED, SYSTEM, WAITING, classify
from moderation.humans.since import Window
from moderation.settings import Settings
from moderation.site.rows import SYSTEM_STATE, SiteRow
from moderation.vocabulary import HumanOutcome
from tests import site_schemas
from tests.fakes import FakeClassifier
from tests.helpers import NEGATIVE, execute, make_settings

WORDPRESS_INSERT = (
    "INSERT INTO wp_comments (comment_ID, comment_post_ID, comment_author, comment_date,"
    " comment_date_gmt, comment_content, comment_approved)"
    " VALUES (:id, 7, 'reader', '2026-11-30 10:00:00', '2026-11-30 09:00:00', :c, '0')"
)
ISSO_INSERT = (
    "INSERT INTO comments (tid, id, created, mode, remote_addr, text, author, voters)"
    " VALUES (1, :id, 1764000000.0, 2, '127.0.0.0', :c, 'reader', X'00')"
)


def figures(settings: Settings) -> dict[str, Any]:
    return measure(settings, Window.parse("30d")).to_json()


@pytest.mark.parametrize("approved_by_tool", [True, False])
def test_a_state_the_system_set_is_nobodys_ruling(approved_by_tool: bool) -> None:
    row = SiteRow("1", "text", SYSTEM_STATE, "post-trashed")
    assert classify(approved_by_tool, row, text_hash("text")) == SYSTEM == HumanOutcome.SYSTEM


def test_a_missing_row_is_the_systems_only_for_a_hold_where_pending_rows_are_purged() -> None:
    held, approved = False, True
    assert classify(held, None, "h", purges_pending=True) == SYSTEM
    # Purges take only pending rows: an approved comment's row gone is a human's deletion.
    assert classify(approved, None, "h", purges_pending=True) == REVERSED
    assert classify(held, None, "h") == CONFIRMED


@pytest.fixture
def trashed_post(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """WordPress: the tool approves comment 1 and holds 2; then the post goes to the trash."""
    execute(
        sqlite_url,
        site_schemas.wordpress_ddl("sqlite"),
        rows=[
            (WORDPRESS_INSERT, {"id": 1, "c": "Thanks, this helped"}),
            (WORDPRESS_INSERT, {"id": 2, "c": "you idiot"}),
        ],
    )
    settings = make_settings(sqlite_url, preset="wordpress", site_rules="off")
    report = run_batch(settings, classifier=FakeClassifier({"idiot": NEGATIVE}))
    assert (report.counts()["approved"], report.counts()["held"]) == (1, 1)
    # What wp_trash_post_comments (wp-includes/post.php) does to every comment of the post.
    execute(sqlite_url, "UPDATE wp_comments SET comment_approved = 'post-trashed'")
    for name, value in {
        "MODERATION_DATABASE_URL": sqlite_url,
        "MODERATION_PRESET": "wordpress",
        "MODERATION_SITE_RULES": "off",
    }.items():
        monkeypatch.setenv(name, value)
    return settings


def test_a_trashed_post_is_neither_a_reversal_nor_a_confirmation(trashed_post: Settings) -> None:
    for _ in range(2):  # nothing recorded: the post may come back from the trash
        result = figures(trashed_post)
        assert (result["decided"], result[SYSTEM], result[REVERSED], result[CONFIRMED]) == (
            2,
            2,
            0,
            0,
        )
        # Neither decision says anything about the tool: no rate at all, not 100%.
        assert (result["reversal_rate"], result["release_rate"]) == (None, None)


def test_a_trashed_post_does_not_trip_the_reversal_rate_gate(trashed_post: Settings) -> None:
    result = CliRunner().invoke(app, ["outcomes", "--json", "--max-reversal-rate", "0.5"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["reversed"] == 0


def test_the_trashed_posts_comments_come_back_with_their_old_outcomes(
    trashed_post: Settings,
) -> None:
    # Restoring the post restores each comment's status (wp_untrash_post_comments).
    execute(
        trashed_post.database_url,
        "UPDATE wp_comments SET comment_approved = '1' WHERE comment_ID = 1",
        "UPDATE wp_comments SET comment_approved = '0' WHERE comment_ID = 2",
    )
    result = figures(trashed_post)
    assert (result["kept"], result[WAITING], result[SYSTEM]) == (1, 1, 0)


def test_isso_purging_an_old_held_comment_is_not_a_confirmation(sqlite_url: str) -> None:
    execute(
        sqlite_url,
        *site_schemas.ISSO_DDL,
        site_schemas.ISSO_THREAD,
        rows=[
            (ISSO_INSERT, {"id": 1, "c": "Lovely post"}),
            (ISSO_INSERT, {"id": 2, "c": "you idiot"}),
            (ISSO_INSERT, {"id": 3, "c": "idiot, deleted with replies"}),
        ],
    )
    settings = make_settings(sqlite_url, preset="isso")
    run_batch(settings, classifier=FakeClassifier({"idiot": NEGATIVE}))
    execute(
        sqlite_url,
        # Isso's purge: DELETE FROM comments WHERE mode = 2 AND created < now - purge-after.
        "DELETE FROM comments WHERE mode = 2 AND id = 2",
        # A moderator's deletion of a comment with replies: mode 4, the text blanked.
        "UPDATE comments SET mode = 4, text = '' WHERE id = 3",
    )
    result = figures(settings)
    assert (result["kept"], result[CONFIRMED], result[SYSTEM]) == (1, 1, 1)
    assert result["release_rate"] == 0.0  # one hold a human ruled on, none released
