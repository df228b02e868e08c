"""kill -9 at every point of a WordPress write, against the fake WordPress on a real socket.

A write through WordPress's REST API takes three steps: the intent is recorded, WordPress is
written, the intent is marked done with the audit row. ``MODERATION_TEST_CRASH_AT`` kills the
real `moderate` (SIGKILL) before the intent, between the intent and the write, or between
the write and its confirmation; the next batch settles what was left before it reads new
work. Afterwards every comment WordPress shows approved has exactly one decision row, every
comment was decided once, and no comment was written twice. The same matrix against a live
WordPress: tests/live/test_wordpress_crashes.py.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from moderation.comment import text_hash
from tests.fakeollama import FakeOllama
from tests.helpers import NEGATIVE, read_table
from tests.processes import moderate, start_moderate
from tests.tlsfiles import serve_handler
from tests.unit.test_wordpress_rest import PASSWORD, FakeWordPress

TEXTS = {1: "Thanks, this helped!", 2: "An awful thing to say.", 3: "Nice photos.", 4: "Lovely."}
APPROVED = {1, 3, 4}
KILLED = -signal.SIGKILL


@pytest.fixture(scope="module")
def ollama_rules() -> list[dict[str, Any]]:
    return [{"contains": "awful", "answer": NEGATIVE}]


def environment(url: str, ollama: FakeOllama, tmp: Path) -> dict[str, str]:
    return {
        "MODERATION_PRESET": "wordpress-rest",
        "MODERATION_WORDPRESS_URL": url,
        "MODERATION_WORDPRESS_USER": "mod",
        "MODERATION_WORDPRESS_APP_PASSWORD": PASSWORD,
        "MODERATION_WORDPRESS_ROUTES": "query",
        "MODERATION_DATABASE_URL": f"sqlite:///{tmp / 'own.db'}",
        "OLLAMA_HOST": ollama.url,
    }


def posts(wp: FakeWordPress) -> Counter[int]:
    return Counter(int(route.rsplit("/", 1)[1]) for m, route, _, _ in wp.sent if m == "POST")


def decisions(env: dict[str, str]) -> list[tuple[str, str, str | None, str]]:
    return [
        (str(c), str(o), r, str(run))
        for c, o, r, run in read_table(
            env["MODERATION_DATABASE_URL"],
            "SELECT comment_id, outcome, reviewer, run_id FROM moderation_decisions ORDER BY id",
        )
    ]


def intents(env: dict[str, str]) -> Counter[str]:
    rows = read_table(env["MODERATION_DATABASE_URL"], "SELECT state FROM moderation_write_intents")
    return Counter(str(state) for (state,) in rows)


# What the killed batch leaves: approved in WordPress, open intents.
LEFT = {
    "before-intent": (set(), 0),
    "after-intent": (set(), 3),
    "after-write": ({1}, 3),
    "after-write:2": ({1, 3}, 3),
}


@pytest.mark.parametrize("crash_at", list(LEFT))
def test_a_batch_killed_at_any_point_of_a_write_leaves_every_approval_explained(
    tmp_path: Path, ollama: FakeOllama, crash_at: str
) -> None:
    wp = FakeWordPress(TEXTS)
    with serve_handler(wp.handle) as url:
        env = environment(url, ollama, tmp_path)

        killed = moderate("--json", env={**env, "MODERATION_TEST_CRASH_AT": crash_at})

        assert killed.returncode == KILLED, killed.stderr
        written, open_intents = LEFT[crash_at]
        assert {i for i, c in wp.comments.items() if c["status"] == "approved"} == written
        assert decisions(env) == []  # the chunk's audit rows never committed
        assert intents(env) == (Counter({"open": open_intents}) if open_intents else Counter())
        [(crashed_run,)] = read_table(
            env["MODERATION_DATABASE_URL"], "SELECT id FROM moderation_runs"
        )

        settled = moderate("--json", env=env)

    assert settled.returncode == 0, settled.stderr
    if open_intents:
        assert (
            f"{open_intents} write(s) left unfinished by an earlier run: {len(written)} found "
            f"written and recorded, {open_intents - len(written)} found unwritten and dropped"
        ) in settled.stderr
    report = json.loads(settled.stdout)
    # The written ones are settled, not asked again; the rest are decided by this batch.
    assert sorted(d["comment_id"] for d in report["decisions"]) == sorted(set(TEXTS) - written)
    assert {i for i, c in wp.comments.items() if c["status"] == "approved"} == APPROVED
    rows = decisions(env)
    # Every approval WordPress shows has exactly one decision row; every comment one row.
    assert Counter(c for c, o, _, _ in rows if o == "approved") == {str(i): 1 for i in APPROVED}
    assert Counter(c for c, _, _, _ in rows) == {str(i): 1 for i in TEXTS}
    # A settled approval is the killed run's decision, recorded by the next batch.
    assert {c for c, _, _, run in rows if run == crashed_run} == {str(i) for i in written}
    # Nothing was written twice.
    assert posts(wp) == {i: 1 for i in APPROVED}
    assert intents(env)["open"] == 0
    assert intents(env)["done"] == len(APPROVED)
    assert intents(env)["dropped"] == open_intents - len(written)


def review_page(
    env: dict[str, str], crash_at: str
) -> tuple[Any, Callable[[str, int, str], int | None]]:
    """`moderate review` in a child process; a function that posts a ruling to it."""
    process = start_moderate(
        "review",
        "--port",
        "0",
        "--reviewer",
        "tester",
        env={**env, "MODERATION_TEST_CRASH_AT": crash_at},
    )
    assert process.stdout is not None
    page = process.stdout.readline().strip()
    port = int(page.rsplit(":", 1)[1].strip("/"))

    def rule(verb: str, comment_id: int, text: str) -> int | None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/")
        answer = connection.getresponse()
        cookie = answer.getheader("Set-Cookie", "").split(";", 1)[0]
        listing = answer.read().decode()
        connection.close()
        match = re.search(r'name="csrf" value="([^"]+)"', listing)
        assert match is not None, listing[:2000]
        form = f"csrf={match.group(1)}&comment_id={comment_id}&text_hash={text_hash(text)}&page=0"
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": f"http://127.0.0.1:{port}",
        }
        if cookie:
            headers["Cookie"] = cookie
        try:
            connection.request("POST", f"/{verb}", body=form, headers=headers)
            return connection.getresponse().status
        except (ConnectionError, http.client.HTTPException):
            return None  # the page was killed while it answered
        finally:
            connection.close()

    return process, rule


@pytest.mark.parametrize(
    ("verb", "crash_at", "status"),
    [
        ("approve", "after-intent", "hold"),
        ("approve", "after-write", "approved"),
        ("reject", "after-write", "trash"),
        ("reject", "before-intent", "hold"),
    ],
)
def test_a_review_page_killed_mid_ruling_is_settled_by_the_next_batch(
    tmp_path: Path, ollama: FakeOllama, verb: str, crash_at: str, status: str
) -> None:
    wp = FakeWordPress({2: TEXTS[2]})
    with serve_handler(wp.handle) as url:
        env = environment(url, ollama, tmp_path)
        assert moderate(env=env).returncode == 0
        assert wp.comments[2]["status"] == "hold"
        process, rule = review_page(env, crash_at)
        try:
            assert rule(verb, 2, TEXTS[2]) is None
            assert process.wait(30) == KILLED
        finally:
            if process.poll() is None:
                process.kill()
            process.communicate()
        assert wp.comments[2]["status"] == status
        assert [o for _, o, _, _ in decisions(env)] == ["held"]  # no ruling recorded yet

        settled = moderate("--json", env=env)

        assert settled.returncode == 0, settled.stderr
        assert json.loads(settled.stdout)["decisions"] == []  # held before: not asked again
    rows = [(c, o, r) for c, o, r, _ in decisions(env)]
    ruling = "approved" if verb == "approve" else "rejected"
    if status == "hold":
        assert rows == [("2", "held", None)]
    else:
        assert rows == [("2", "held", None), ("2", ruling, "tester")]
    assert sum(posts(wp).values()) == (0 if status == "hold" else 1)
    assert intents(env)["open"] == 0
