"""A batch against a live WordPress (Debian's package, PHP's server, a persistent object cache).

With ``wordpress-rest`` every approval goes through WordPress's own REST API, so afterwards its
API lists the comments as approved (through the object cache), the post's ``comment_count``
is right, ``transition_comment_status`` fired for each and the post's author was mailed. The
SQL ``wordpress`` preset against the same site shows what writing the table under WordPress
leaves behind. Skipped where php, the ``wordpress`` package or MariaDB is missing, except in
CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakeollama import FakeOllama
from tests.processes import moderate
from tests.wordpress_site import WordPressSite, missing, required

NEG = '{"label": "negative"}'


@pytest.fixture(scope="module")
def ollama_rules() -> list[dict[str, Any]]:
    return [{"contains": "awful", "answer": NEG}]


@pytest.fixture(scope="module")
def ollama_settings() -> dict[str, Any]:
    return {"faults": [], "latency": 0.0}


@pytest.fixture(scope="module")
def wordpress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WordPressSite]:
    reason = missing()
    if reason:
        if required():
            pytest.fail(f"CI=true, but no live WordPress: {reason}")
        pytest.skip(f"no live WordPress: {reason}")
    site = WordPressSite(tmp_path_factory.mktemp("wordpress")).start()
    yield site
    site.close()


def rest_env(site: WordPressSite, ollama: FakeOllama, tmp: Path, **extra: str) -> dict[str, str]:
    return {
        "MODERATION_PRESET": "wordpress-rest",
        "MODERATION_WORDPRESS_URL": site.url,
        "MODERATION_WORDPRESS_USER": site.editor.login,
        "MODERATION_WORDPRESS_APP_PASSWORD": site.editor.app_password,
        "MODERATION_DATABASE_URL": f"sqlite:///{tmp / 'moderation.db'}",
        "OLLAMA_HOST": ollama.url,
        **extra,
    }


def transitions(site: WordPressSite, comment_id: int) -> list[tuple[str, str]]:
    return [
        (h["old"], h["new"])
        for h in site.hooks()
        if h["hook"] == "transition_comment_status" and h["comment"] == comment_id
    ]


def test_a_rest_batch_is_what_wordpress_itself_shows(
    wordpress: WordPressSite, ollama: FakeOllama, tmp_path: Path
) -> None:
    good = wordpress.add_comments(["Thank you, this was really useful!", "Nice photos."])
    bad = wordpress.add_comments(["This is awful and so are you."])
    count_before = wordpress.comment_count()
    # Read once through WordPress so the object cache holds the pending list.
    assert set(good + bad) <= set(wordpress.listed("hold"))
    wordpress.clear_hooks()
    env = rest_env(wordpress, ollama, tmp_path)

    dry = moderate("--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["approved"] == 2
    assert set(good + bad) <= set(wordpress.listed("hold"))
    assert wordpress.hooks() == []

    result = moderate("--json", env=env)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["approved"], report["held"]) == (2, 1)
    # Through WordPress's own API (and its persistent object cache): approved, not pending.
    approved = wordpress.listed("approve")
    assert set(good) <= set(approved)
    assert bad[0] in wordpress.listed("hold")
    assert not set(good) & set(wordpress.listed("hold"))
    assert wordpress.comment_count() == count_before + 2
    for comment_id in good:
        assert transitions(wordpress, comment_id) == [("unapproved", "approved")]
    assert transitions(wordpress, bad[0]) == []
    mails = [h for h in wordpress.hooks() if h["hook"] == "wp_mail"]
    # comments_notify is on: WordPress mails the post's author once per approved comment.
    assert sorted(m["to"] for m in mails) == [wordpress.post_author_email] * 2
    assert env["MODERATION_WORDPRESS_APP_PASSWORD"] not in result.stdout + result.stderr
