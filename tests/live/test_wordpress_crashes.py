"""kill -9 at every point of a write, against a live WordPress (Debian's package, PHP's server).

``MODERATION_TEST_CRASH_AT`` (see ``moderation/crashpoints.py``) kills the real `moderate`
with SIGKILL before a write's intent is recorded, between the intent and the write, or between
the write and its confirmation; a batch, or the review page in the middle of a ruling. After
the next batch, every comment WordPress shows approved (or trashed by a reviewer) has exactly
one decision row in the tool's database, and WordPress's own ``transition_comment_status``
hook fired once for it: nothing was written twice. Skipped where php, the ``wordpress``
package or MariaDB is missing, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import http.client
import re
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moderation.comment import text_hash
from tests.fakeollama import FakeOllama
from tests.helpers import NEGATIVE, read_table
from tests.processes import moderate, start_moderate
from tests.wordpress_site import WordPressSite, missing, required

KILLED = -signal.SIGKILL


@pytest.fixture(scope="module")
def ollama_rules() -> list[dict[str, Any]]:
    return [{"contains": "awful", "answer": NEGATIVE}]


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


def rest_env(site: WordPressSite, ollama: FakeOllama, tmp: Path) -> dict[str, str]:
    return {
        "MODERATION_PRESET": "wordpress-rest",
        "MODERATION_WORDPRESS_URL": site.url,
        "MODERATION_WORDPRESS_USER": site.editor.login,
        "MODERATION_WORDPRESS_APP_PASSWORD": site.editor.app_password,
        "MODERATION_DATABASE_URL": f"sqlite:///{tmp / 'moderation.db'}",
        "OLLAMA_HOST": ollama.url,
    }


def transitions(site: WordPressSite, comment_id: int) -> list[tuple[str, str]]:
    return [
        (h["old"], h["new"])
        for h in site.hooks()
        if h["hook"] == "transition_comment_status" and h["comment"] == comment_id
    ]


def rows_of(env: dict[str, str], ids: list[int]) -> list[tuple[str, str, str | None]]:
    keys = ", ".join(f"'{i}'" for i in ids)
    return [
        (str(c), str(o), r)
        for c, o, r in read_table(
            env["MODERATION_DATABASE_URL"],
            "SELECT comment_id, outcome, reviewer FROM moderation_decisions "
            f"WHERE comment_id IN ({keys}) ORDER BY id",
        )
    ]


def open_intents(env: dict[str, str]) -> int:
    query = "SELECT count(*) FROM moderation_write_intents WHERE state = 'open'"
    return int(read_table(env["MODERATION_DATABASE_URL"], query)[0][0])


def trash(site: WordPressSite, ids: list[int]) -> None:
    """Leave nothing pending for the next case (each case's database is new)."""
    with site.rest(site.editor) as client:
        for comment_id in ids:
            client.post(
                "/",
                params={"rest_route": f"/wp/v2/comments/{comment_id}"},
                json={"status": "trash"},
            ).raise_for_status()


@pytest.mark.parametrize(
    "crash_at", ["before-intent", "after-intent", "after-write", "after-write:2"]
)
def test_a_batch_killed_at_any_point_leaves_every_approval_explained(
    wordpress: WordPressSite, ollama: FakeOllama, tmp_path: Path, crash_at: str
) -> None:
    good = wordpress.add_comments(
        [f"{crash_at}: thank you!", f"{crash_at}: nice photos.", f"{crash_at}: lovely post."]
    )
    [bad] = wordpress.add_comments([f"{crash_at}: an awful thing to say."])
    wordpress.clear_hooks()
    env = rest_env(wordpress, ollama, tmp_path)

    killed = moderate("--json", env={**env, "MODERATION_TEST_CRASH_AT": crash_at})

    assert killed.returncode == KILLED, killed.stderr
    written = [i for i in good if wordpress.comment(i)["status"] == "approved"]
    assert len(written) == {"after-write": 1, "after-write:2": 2}.get(crash_at, 0)
    assert rows_of(env, [*good, bad]) == []  # the chunk's audit rows never committed

    settled = moderate("--json", env=env)

    assert settled.returncode == 0, settled.stderr
    assert set(good) <= set(wordpress.listed("approve"))
    assert bad in wordpress.listed("hold")
    rows = rows_of(env, [*good, bad])
    # Every approval WordPress shows has exactly one decision row; every comment one row.
    assert Counter(c for c, o, _ in rows if o == "approved") == {str(i): 1 for i in good}
    assert Counter(c for c, _, _ in rows) == {str(i): 1 for i in [*good, bad]}
    # Nothing was written twice: WordPress moved each approved comment once.
    for comment_id in good:
        assert transitions(wordpress, comment_id) == [("unapproved", "approved")]
    assert transitions(wordpress, bad) == []
    assert open_intents(env) == 0
    trash(wordpress, [bad])


def post_ruling(port: int, verb: str, comment_id: int, text: str) -> int | None:
    """One ruling on the review page, as its form sends it; None if the page died answering."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/")
    listing = connection.getresponse().read().decode()
    connection.close()
    match = re.search(r'name="csrf" value="([^"]+)"', listing)
    assert match is not None, listing[:2000]
    form = f"csrf={match.group(1)}&comment_id={comment_id}&text_hash={text_hash(text)}&page=0"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": f"http://127.0.0.1:{port}",
    }
    try:
        connection.request("POST", f"/{verb}", body=form, headers=headers)
        return connection.getresponse().status
    except (ConnectionError, http.client.HTTPException):
        return None
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("verb", "crash_at", "status"),
    [
        ("approve", "before-intent", "hold"),
        ("approve", "after-intent", "hold"),
        ("approve", "after-write", "approved"),
        ("reject", "after-write", "trash"),
    ],
)
def test_a_review_page_killed_mid_ruling_is_settled_by_the_next_batch(
    wordpress: WordPressSite,
    ollama: FakeOllama,
    tmp_path: Path,
    verb: str,
    crash_at: str,
    status: str,
) -> None:
    text = f"Review {verb} {crash_at}: an awful thing to say."
    [held] = wordpress.add_comments([text])
    env = rest_env(wordpress, ollama, tmp_path)
    assert moderate(env=env).returncode == 0
    assert wordpress.comment(held)["status"] == "hold"
    wordpress.clear_hooks()
    page = start_moderate(
        "review",
        "--port",
        "0",
        "--reviewer",
        "tester",
        env={**env, "MODERATION_TEST_CRASH_AT": crash_at},
    )
    try:
        assert page.stdout is not None
        port = int(page.stdout.readline().strip().rsplit(":", 1)[1].strip("/"))
        assert post_ruling(port, verb, held, text) is None
        assert page.wait(60) == KILLED
    finally:
        if page.poll() is None:
            page.kill()
        page.communicate()
    assert wordpress.comment(held)["status"] == status
    assert rows_of(env, [held]) == [(str(held), "held", None)]

    settled = moderate("--json", env=env)

    assert settled.returncode == 0, settled.stderr
    ruling = "approved" if verb == "approve" else "rejected"
    expected: list[tuple[str, str, str | None]] = [(str(held), "held", None)]
    if status != "hold":
        expected.append((str(held), ruling, "tester"))
    assert rows_of(env, [held]) == expected
    moves = (
        [] if status == "hold" else [("unapproved", "approved" if verb == "approve" else "trash")]
    )
    assert transitions(wordpress, held) == moves
    assert open_intents(env) == 0
    if status == "hold":
        trash(wordpress, [held])
