"""`fixtures export` through its Python API: what is written, what is not, and failures."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from moderation.batch.pipeline import run_batch
from moderation.errors import ConfigurationError, SchemaError
from moderation.evaluation.evaluate import load_fixtures
from moderation.humans.export import export_fixtures
from moderation.humans.since import Window
from tests.fakes import FakeClassifier
from tests.helpers import NEGATIVE, create_site_table, execute, make_settings

STATUS = {
    "comments_approved_value": "1",
    "comments_pending_value": "0",
    "comments_rejected_values": "trash,spam",
}


def test_rejected_rows_with_replaced_text_are_not_exported(db_url: str, tmp_path: Path) -> None:
    create_site_table(
        db_url, ["kind words", "idiot", "idiot too", "fine", "idiot 5"], status=("0", "1")
    )
    settings = make_settings(db_url, **STATUS)
    run_batch(settings, classifier=FakeClassifier({"idiot": NEGATIVE}))
    execute(
        db_url,
        "UPDATE comments SET approved = 'spam' WHERE id = 2",
        # Removed by a moderator, its text replaced the way Commento and Isso do.
        "UPDATE comments SET approved = 'trash', body = '[deleted]' WHERE id = 3",
        "UPDATE comments SET approved = 'trash' WHERE id = 4",
        "DELETE FROM comments WHERE id = 5",
    )
    out = tmp_path / "site.jsonl"

    result = export_fixtures(settings, Window.parse("1d"), out, force=False)

    assert (result.lines, result.gone, result.changed) == (3, 1, 1)
    fixtures = load_fixtures([out])
    assert [(f.id, f.text, f.expected, f.tags) for f in fixtures] == [
        ("site-1", "kind words", "approve", ("site", "kept")),
        ("site-2", "idiot", "hold", ("site", "confirmed")),
        ("site-4", "fine", "hold", ("site", "reversed")),
    ]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_undecodable_bytes_are_exported_as_replacement_characters(
    sqlite_url: str, tmp_path: Path
) -> None:
    create_site_table(sqlite_url, ["x"])
    execute(sqlite_url, "UPDATE comments SET body = CAST(X'636166C3A920FF21' AS TEXT) WHERE id = 1")
    # The tool cannot approve such a text (it fails closed); a human approves it.
    run_batch(make_settings(sqlite_url), classifier=FakeClassifier())
    execute(sqlite_url, "UPDATE comments SET approved = 1")
    out = tmp_path / "site.jsonl"
    result = export_fixtures(make_settings(sqlite_url), Window.parse("1d"), out, force=False)
    assert result.lines == 1
    record = json.loads(out.read_text(encoding="utf-8"))
    assert (record["text"], record["tags"]) == ("caf\u00e9 \ufffd!", ["site", "released"])


def test_a_failure_leaves_no_file_behind(sqlite_url: str, tmp_path: Path) -> None:
    create_site_table(sqlite_url, ["x"], table="other")
    out = tmp_path / "site.jsonl"
    with pytest.raises(SchemaError, match="does not exist"):
        export_fixtures(make_settings(sqlite_url), Window.parse("1d"), out, force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.db"]


def test_refuses_an_existing_file_or_a_missing_directory(sqlite_url: str, tmp_path: Path) -> None:
    create_site_table(sqlite_url, ["x"])
    out = tmp_path / "site.jsonl"
    out.write_text("mine\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="exists; use --force"):
        export_fixtures(make_settings(sqlite_url), Window.parse("1d"), out, force=False)
    assert out.read_text(encoding="utf-8") == "mine\n"
    with pytest.raises(ConfigurationError, match="is not a directory"):
        export_fixtures(
            make_settings(sqlite_url), Window.parse("1d"), tmp_path / "no" / "x.jsonl", False
        )
