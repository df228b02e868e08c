"""Settings: defaults, environment names, hosts, validation, hidden passwords."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from moderation.settings import HostSpec, Settings


def test_defaults_match_the_documented_contract() -> None:
    s = Settings()
    assert s.database_url == "sqlite:///moderation.db"
    assert s.hosts == [HostSpec("http://127.0.0.1:11434", 1)]
    assert (s.model, s.timeout, s.load_timeout, s.concurrency) == ("sentiments", 30, 300, 1)
    assert (s.comments_table, s.comments_id_column) == ("comments", "id")
    assert (s.comments_body_column, s.comments_approved_column) == ("body", "approved")


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODERATION_DATABASE_URL", "postgresql://u:pw@db/site")
    monkeypatch.setenv("OLLAMA_HOST", "gpu:11434")
    monkeypatch.setenv("MODERATION_MODEL", "other")
    monkeypatch.setenv("MODERATION_TIMEOUT", "7.5")
    monkeypatch.setenv("MODERATION_CONCURRENCY", "4")
    monkeypatch.setenv("MODERATION_COMMENTS_APPROVED_VALUE", "1")
    monkeypatch.setenv("MODERATION_COMMENTS_PENDING_VALUE", "0")
    s = Settings()
    assert s.hosts == [HostSpec("http://gpu:11434", 4)]
    assert (s.model, s.timeout) == ("other", 7.5)
    assert (s.comments_approved_value, s.comments_pending_value) == ("1", "0")
    assert s.safe_database_url == "postgresql://u:***@db/site"


def test_several_hosts_each_with_its_own_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOSTS", "http://a:11434*8, b:11434 ,http://c:1/*2")
    monkeypatch.setenv("MODERATION_CONCURRENCY", "3")
    assert Settings().hosts == [
        HostSpec("http://a:11434", 8),
        HostSpec("http://b:11434", 3),
        HostSpec("http://c:1", 2),
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"timeout": 0}, "greater than 0"),
        ({"concurrency": 0}, "greater than or equal to 1"),
        ({"comments_approved_value": "1"}, "set both"),
        ({"comments_approved_value": "x", "comments_pending_value": "x"}, "must differ"),
        ({"lease_seconds": 1}, "greater than or equal to 5"),
        ({"timeout": float("inf")}, "finite number"),
        ({"timeout": float("nan")}, "finite number"),
        ({"log_level": "LOUD"}, "must be one of DEBUG"),
        ({"ollama_host": "not a url"}, "not a valid URL"),
        ({"ollama_hosts": ["http://a*0"]}, "concurrency after"),
        ({"database_url": "not a url"}, "not a valid database URL"),
        ({"hold_words": "/no/such/words.txt"}, "no file /no/such/words.txt"),
        ({"never_approve_words": "lists/typo.txt"}, "no file lists/typo.txt"),
    ],
)
def test_invalid_settings_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**values)  # type: ignore[arg-type]


def test_rejected_states_and_the_review_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODERATION_COMMENTS_APPROVED_VALUE", "1")
    monkeypatch.setenv("MODERATION_COMMENTS_PENDING_VALUE", "0")
    monkeypatch.setenv("MODERATION_COMMENTS_REJECTED_VALUES", "trash, spam,,post-trashed")
    monkeypatch.setenv("MODERATION_COMMENTS_REMOVED_COLUMN", "is_removed")
    monkeypatch.setenv("MODERATION_REVIEW_TOKEN", "q7-Vx2mP9sLk4TzR")
    monkeypatch.setenv("MODERATION_REVIEW_TRUSTED_PROXIES", "127.0.0.1, ::1")
    s = Settings()
    assert s.comments_rejected_values == ["trash", "spam", "post-trashed"]
    assert s.comments_removed_column == "is_removed"
    assert s.review_token is not None
    assert s.review_token.get_secret_value() == "q7-Vx2mP9sLk4TzR"
    assert "q7-Vx2mP9sLk4TzR" not in repr(s)
    assert s.review_trusted_proxies == ["127.0.0.1", "::1"]
    monkeypatch.setenv("MODERATION_REVIEW_TRUSTED_PROXIES", "proxy.example")
    with pytest.raises(ValueError, match="IP addresses"):
        Settings()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {
                "comments_approved_value": "1",
                "comments_pending_value": "0",
                "comments_rejected_values": ["trash", "0"],
            },
            "must not hold the pending value",
        ),
        ({"review_token": "short"}, "at least 16 characters"),
    ],
)
def test_invalid_rejected_states_and_tokens(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**values)


def test_eval_history_defaults_to_the_data_directory_not_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert Settings().eval_history_path == tmp_path / "data" / "moderation" / "evals.jsonl"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".local" / "share" / "moderation" / "evals.jsonl"
    assert Settings().eval_history_path == expected
    assert Settings(eval_history="here.jsonl").eval_history_path == Path("here.jsonl")


def test_word_lists_that_are_words_or_existing_files_pass(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("casino\n", encoding="utf-8")
    for value in ("", "casino", "n/a, casino", "and/or,", str(words), f"  {words}  "):
        assert Settings(hold_words=value, never_approve_words=value).hold_words == value
