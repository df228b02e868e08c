"""`moderate import`: all or nothing, clear errors, storable text."""

from __future__ import annotations

from pathlib import Path

import pytest

from moderation.errors import ConfigurationError
from moderation.site.importer import import_comments, sanitise
from moderation.storage.engines import create_engine
from tests.helpers import create_site_table, make_settings, read_table


def test_bad_line_names_its_number_and_writes_nothing(db_url: str, tmp_path: Path) -> None:
    create_site_table(db_url, ["existing"])
    source = tmp_path / "c.jsonl"
    source.write_text('{"body": "one"}\n{"body": "two"}\n{"body": 3}\n', encoding="utf-8")
    engine = create_engine(db_url)
    with pytest.raises(ConfigurationError, match=r"c.jsonl:3: expected an object"):
        import_comments(engine, make_settings(db_url), source)
    engine.dispose()
    assert read_table(db_url, "SELECT count(*) FROM comments") == [(1,)]


def test_invalid_json_and_missing_file(tmp_path: Path) -> None:
    source = tmp_path / "c.jsonl"
    source.write_text('{"body": "ok"}\n\n{oops\n', encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = create_engine(url)
    with pytest.raises(ConfigurationError, match=r"c.jsonl:3: invalid JSON"):
        import_comments(engine, make_settings(url), source)
    with pytest.raises(ConfigurationError, match="cannot read"):
        import_comments(engine, make_settings(url), tmp_path / "missing.jsonl")
    engine.dispose()


def test_creates_a_default_table_with_the_configured_names(db_url: str, tmp_path: Path) -> None:
    source = tmp_path / "c.jsonl"
    source.write_text('{"body": "hello"}\n{"text": "from fixtures"}\n', encoding="utf-8")
    settings = make_settings(
        db_url,
        comments_table="notes",
        comments_body_column="content",
        comments_approved_column="status",
        comments_approved_value="published",
        comments_pending_value="pending",
    )
    engine = create_engine(db_url)
    assert import_comments(engine, settings, source) == (2, 0, True)
    engine.dispose()
    rows = read_table(db_url, "SELECT id, content, status FROM notes ORDER BY id")
    assert rows == [(1, "hello", "pending"), (2, "from fixtures", "pending")]


def test_sanitise_only_what_the_database_cannot_store() -> None:
    assert sanitise("fine 🙂", "sqlite") == "fine 🙂"
    assert sanitise("nul\x00", "sqlite") == "nul\x00"
    assert sanitise("nul\x00", "postgresql") == "nul\ufffd"
    assert sanitise("lone \ud800", "sqlite") == "lone \ufffd"
