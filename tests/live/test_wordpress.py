"""A batch against a live WordPress (Debian's package, PHP's server, a persistent object cache).

With ``wordpress-rest`` every approval goes through WordPress's own REST API, so afterwards its
API lists the comments as approved (through the object cache), the post's ``comment_count``
is right, ``transition_comment_status`` fired for each and the post's author was mailed. The
SQL ``wordpress`` preset against the same site shows what writing the table under WordPress
leaves behind. Skipped where php, the ``wordpress`` package or MariaDB is missing, except in
CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from moderation.comment import text_hash
from moderation.humans.queue import ReviewQueue
from moderation.humans.web import ReviewApp
from moderation.settings import Settings
from moderation.site.open import open_site
from moderation.storage.engines import create_engine
from tests.fakeollama import FakeOllama
from tests.helpers import make_settings, read_table
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


def rest_settings(site: WordPressSite, tmp: Path) -> Settings:
    return make_settings(
        f"sqlite:///{tmp / 'moderation.db'}",
        preset="wordpress-rest",
        wordpress_url=site.url,
        wordpress_user=site.editor.login,
        wordpress_app_password=site.editor.app_password,
    )


def test_a_review_page_reject_lands_in_wordpress_trash(
    wordpress: WordPressSite, ollama: FakeOllama, tmp_path: Path
) -> None:
    [held] = wordpress.add_comments(["An awful thing to say, really."])
    env = rest_env(wordpress, ollama, tmp_path)
    assert moderate(env=env).returncode == 0
    assert wordpress.comment(held)["status"] == "hold"
    wordpress.clear_hooks()
    settings = rest_settings(wordpress, tmp_path)

    async def main() -> str:
        engine = create_engine(settings.database_url)
        with open_site(engine, settings) as site:
            review = ReviewApp(ReviewQueue(engine, site, "session"), "tester", token=None)
            async with TestClient(TestServer(review.build(), host="127.0.0.1")) as client:
                review.listening_on("127.0.0.1", client.port or 0)
                listed = await (await client.get("/")).text()
                assert "An awful thing to say, really." in listed
                form = {
                    "csrf": review.csrf,
                    "comment_id": str(held),
                    "text_hash": text_hash("An awful thing to say, really."),
                    "page": "0",
                }
                answer = await client.post(
                    "/reject", data=form, headers={"Origin": f"http://127.0.0.1:{client.port}"}
                )
                text = await answer.text()
        engine.dispose()
        return text

    page = asyncio.run(main())

    assert f"Rejected comment {held}." in page
    assert wordpress.comment(held)["status"] == "trash"
    assert held in wordpress.listed("trash")
    meta = wordpress.meta(held)
    assert meta["_wp_trash_meta_status"] == "0"
    assert abs(int(meta["_wp_trash_meta_time"]) - time.time()) < 600
    assert transitions(wordpress, held) == [("unapproved", "trash")]
    rows = read_table(
        settings.database_url,
        "SELECT comment_id, outcome, reviewer FROM moderation_decisions WHERE reviewer IS NOT NULL",
    )
    assert rows == [(str(held), "rejected", "tester")]


def test_a_user_without_moderate_comments_is_a_configuration_error(
    wordpress: WordPressSite, ollama: FakeOllama, tmp_path: Path
) -> None:
    [pending] = wordpress.add_comments(["Lovely, thank you."])
    env = rest_env(
        wordpress,
        ollama,
        tmp_path,
        MODERATION_WORDPRESS_USER=wordpress.author.login,
        MODERATION_WORDPRESS_APP_PASSWORD=wordpress.author.app_password,
    )
    ollama.configure(reset_stats=True)

    result = moderate(env=env)

    assert result.returncode == 2, result.stderr
    assert "moderate_comments" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert wordpress.author.app_password not in result.stderr + result.stdout
    assert ollama.stats()["generate_bodies"] == []
    assert wordpress.comment(pending)["status"] == "hold"
    # Leave nothing pending for the tests after this one.
    assert moderate(env=rest_env(wordpress, ollama, tmp_path)).returncode == 0


@pytest.fixture
def sql_batch(wordpress: WordPressSite) -> Iterator[None]:
    """A SQL batch leaves WordPress's cache stale: emptied afterwards, for the next tests."""
    yield
    wordpress.flush_cache()


def sql_env(site: WordPressSite, ollama: FakeOllama) -> dict[str, str]:
    return {
        "MODERATION_PRESET": "wordpress",
        "MODERATION_DATABASE_URL": site.database_url,
        "OLLAMA_HOST": ollama.url,
    }


@pytest.mark.usefixtures("sql_batch")
def test_the_sql_preset_is_invisible_to_a_persistent_object_cache(
    wordpress: WordPressSite, ollama: FakeOllama
) -> None:
    """The SQL preset's limit, as documented: WordPress, through its cache, still lists the
    comments the batch approved as pending, and no hook or mail followed."""
    ids = wordpress.add_comments(["SQL one: thanks!", "SQL two: great read."])
    assert set(ids) <= set(wordpress.listed("hold"))  # cached now
    wordpress.clear_hooks()

    result = moderate("--json", env=sql_env(wordpress, ollama))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["approved"] == 2
    assert set(ids) <= set(wordpress.listed("hold"))
    assert wordpress.hooks() == []


@pytest.mark.usefixtures("sql_batch")
def test_the_sql_preset_recounts_the_post(wordpress: WordPressSite, ollama: FakeOllama) -> None:
    before = wordpress.comment_count()
    wordpress.add_comments(["Recount one: thanks!", "Recount two: helpful."])

    result = moderate("--json", env=sql_env(wordpress, ollama))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["approved"] == 2
    assert wordpress.comment_count() == before + 2


def test_outcomes_read_what_wordpress_holds_now(
    wordpress: WordPressSite, ollama: FakeOllama, tmp_path: Path
) -> None:
    kept, taken_back = wordpress.add_comments(["Outcome one: thanks!", "Outcome two: lovely."])
    env = rest_env(wordpress, ollama, tmp_path)
    assert moderate(env=env).returncode == 0
    # A moderator takes one approval back in WordPress: its own trash, through its API.
    with wordpress.rest(wordpress.editor) as client:
        client.post(
            "/", params={"rest_route": f"/wp/v2/comments/{taken_back}"}, json={"status": "trash"}
        ).raise_for_status()

    result = moderate("outcomes", "--json", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # Comments held by earlier tests are decided again by this test's fresh database: waiting.
    assert (report["kept"], report["reversed"]) == (1, 1)
    assert report["decided"] == 2 + report["waiting"]
    assert report["reversed_ids"] == [str(taken_back)]
    assert str(kept) not in report["reversed_ids"]
