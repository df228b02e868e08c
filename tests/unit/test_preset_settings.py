"""A preset's settings: what it fills in, what single variables override, what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from moderation.settings import Settings
from moderation.site.presets import Companions, preset_companions


def test_a_preset_fills_the_mapping_and_single_variables_still_win() -> None:
    wordpress = Settings(preset="wordpress")
    assert (
        wordpress.comments_table,
        wordpress.comments_id_column,
        wordpress.comments_body_column,
        wordpress.comments_approved_column,
        wordpress.comments_pending_value,
        wordpress.comments_approved_value,
        wordpress.comments_rejected_values,
        wordpress.comments_system_values,
    ) == (
        "wp_comments",
        "comment_ID",
        "comment_content",
        "comment_approved",
        "0",
        "1",
        ["trash", "spam"],
        ["post-trashed"],
    )
    assert Settings(preset="wordpress", table_prefix="site2_").comments_table == "site2_comments"
    overridden = Settings(preset="wordpress", comments_table="legacy", comments_approved_value="2")
    assert (overridden.comments_table, overridden.comments_approved_value) == ("legacy", "2")
    django = Settings(preset="django")
    assert (django.comments_removed_column, django.comments_pending_value) == ("is_removed", None)
    commento = Settings(preset="commento")
    assert (commento.comments_id_column, commento.comments_rejected_values) == (
        "commenthex",
        ["flagged"],
    )


def test_preset_and_rejected_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODERATION_PRESET", "Isso")
    monkeypatch.setenv("MODERATION_COMMENTS_REJECTED_VALUES", "4, 8")
    settings = Settings()
    assert (settings.preset, settings.comments_approved_column) == ("isso", "mode")
    assert settings.comments_rejected_values == ["4", "8"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"preset": "drupal"}, "'wordpress', 'isso', 'commento', 'django' or 'tr'"),
        ({"preset": "wordpress", "table_prefix": "wp; DROP"}, "table_prefix"),
        ({"preset": "wordpress", "comments_rejected_values": "0,spam"}, "pending value"),
    ],
)
def test_bad_preset_settings_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(**values)


def test_a_preset_names_what_its_system_writes_beside_the_status() -> None:
    wordpress = preset_companions("wordpress", "site2_")
    assert wordpress.post_counts is not None and wordpress.trash_meta is not None
    assert (wordpress.post_counts.table, wordpress.trash_meta.table) == (
        "site2_posts",
        "site2_commentmeta",
    )
    assert (wordpress.type_column, wordpress.held_types) == (
        "comment_type",
        ("pingback", "trackback"),
    )
    isso = preset_companions("isso", "wp_")
    assert isso.deletion is not None and isso.deletion.parent == "parent"
    django = preset_companions("django", "wp_")
    assert django.flags is not None
    assert (django.flags.approved, django.flags.rejected) == (
        "moderator approval",
        "moderator deletion",
    )
    # A custom mapping, and the presets whose systems write nothing more: the status alone.
    for name in (None, "commento", "tr"):
        assert preset_companions(name, "wp_") == Companions()
