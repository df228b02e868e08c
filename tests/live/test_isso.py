"""Isso itself (0.14 from PyPI, in its own virtualenv) on loopback, moderated by a batch.

Comments are posted through Isso's own API with its moderation on (202: pending, not served);
a batch with the ``isso`` preset works on Isso's SQLite file while Isso runs; then Isso's thread
API (``GET /?uri=``) is asked what it serves. A review-page Reject must leave nothing of the
held text for Isso to serve: the row is deleted, or blanked when it has replies.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from moderation.batch.pipeline import run_batch
from moderation.comment import text_hash
from moderation.humans.queue import ReviewQueue
from moderation.settings import Settings
from moderation.site.table import CommentsTable
from moderation.storage.engines import create_engine
from moderation.vocabulary import Outcome
from tests.fakes import FakeClassifier
from tests.helpers import NEGATIVE
from tests.livesystems import ISSO_VENV, free_port, isso_problem, require, stop, wait_for_port

POSITIVE, REPLY, IDIOT, CLOWN = (
    "Thanks, this helped",
    "Calm down, please",
    "You idiot, nobody reads this",
    "What a clown writes this",
)
RULES = {"idiot": NEGATIVE, "clown": NEGATIVE}


@dataclass
class Isso:
    url: str
    db: Path

    def post(self, text: str, **fields: Any) -> int:
        answer = httpx.post(
            f"{self.url}/new",
            params={"uri": "/post/1"},
            json={"text": text, "author": "reader", "title": "Post 1", **fields},
        )
        assert answer.status_code == 202, answer.text  # accepted for moderation
        assert answer.json()["mode"] == 2
        return int(answer.json()["id"])

    def served(self) -> list[dict[str, Any]]:
        """Every comment Isso's thread API serves for the post, replies flattened."""
        answer = httpx.get(f"{self.url}/", params={"uri": "/post/1"})
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = []
        todo = list(answer.json()["replies"])
        while todo:
            item = todo.pop(0)
            found.append(item)
            todo.extend(item.get("replies") or [])
        return found

    def served_text(self) -> str:
        return " ".join(str(item["text"]) for item in self.served())


@pytest.fixture
def isso(tmp_path: Path) -> Iterator[Isso]:
    require(isso_problem())
    port = free_port()
    db = tmp_path / "isso.db"
    config = tmp_path / "isso.cfg"
    config.write_text(
        "[general]\n"
        f"dbpath = {db}\n"
        # The site Isso serves, which it tries to reach at start: loopback, never the network.
        f"host = http://127.0.0.1:{port}/\n"
        "[server]\n"
        f"listen = http://127.0.0.1:{port}/\n"
        "[moderation]\n"
        "enabled = true\n"
        # The rate limit (two comments a minute from one address) is not under test.
        "[guard]\n"
        "enabled = false\n",
        encoding="utf-8",
    )
    log = (tmp_path / "isso.log").open("wb")
    process = subprocess.Popen(
        [str(ISSO_VENV / "bin" / "isso"), "-c", str(config), "run"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process)
        yield Isso(f"http://127.0.0.1:{port}", db)
    finally:
        stop(process)
        log.close()


def moderate(isso: Isso) -> tuple[dict[str, Any], ReviewQueue]:
    """One batch with the isso preset on Isso's own file, and the review queue on it."""
    settings = Settings(
        database_url=f"sqlite:///{isso.db}", preset="isso", http_transport="httpx", qualify="off"
    )
    report = run_batch(settings, classifier=FakeClassifier(RULES)).to_json()
    engine = create_engine(settings.database_url)
    queue = ReviewQueue(engine, CommentsTable.reflect(engine, settings), str(uuid.uuid4()))
    return report, queue


def test_isso_serves_what_the_batch_approved_and_nothing_a_human_rejected(isso: Isso) -> None:
    good = isso.post(POSITIVE)
    idiot = isso.post(IDIOT)
    clown = isso.post(CLOWN, website="https://clown.example")
    reply = isso.post(REPLY, parent=clown)
    assert isso.served() == []  # moderation on: nothing is served yet

    report, queue = moderate(isso)

    assert (report["approved"], report["held"]) == (2, 2)
    # The approved reply's parent is still pending, so Isso shows neither yet.
    assert [item["id"] for item in isso.served()] == [good]

    # A human rejects the comment without replies: Isso's own delete removes the row.
    assert queue.rule(str(idiot), text_hash(IDIOT), Outcome.REJECTED, "ana").written
    assert "idiot" not in isso.served_text()
    assert httpx.get(f"{isso.url}/id/{idiot}").status_code == 404

    # And the one with a reply: kept for the reply, with nothing of its author's left.
    assert queue.rule(str(clown), text_hash(CLOWN), Outcome.REJECTED, "ana").written
    served = {item["id"]: item for item in isso.served()}
    assert set(served) == {good, clown, reply}
    assert "clown" not in isso.served_text()
    blanked = served[clown]
    assert (blanked["mode"], blanked["author"], blanked["website"]) == (4, None, None)
    assert blanked["text"] in ("", "<p></p>")
    assert served[reply]["text"] == f"<p>{REPLY}</p>"


def test_a_reject_of_a_comment_edited_since_it_was_shown_changes_nothing(isso: Isso) -> None:
    idiot = isso.post(IDIOT)
    _, queue = moderate(isso)
    engine = create_engine(f"sqlite:///{isso.db}")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE comments SET text = 'You idiot!' WHERE id = ?", (idiot,))

    assert not queue.rule(str(idiot), text_hash(IDIOT), Outcome.REJECTED, "ana").written
    with engine.begin() as conn:
        row = conn.exec_driver_sql("SELECT mode, text FROM comments WHERE id = ?", (idiot,))
        assert row.all() == [(2, "You idiot!")]  # still pending, for a human to see again
    assert isso.served() == []
