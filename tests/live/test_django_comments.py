"""django-contrib-comments 2.2 with Django 5.2 (from PyPI, in their own virtualenv) on SQLite.

A minimal Django site (``tests/data/django_comments_site.py``) makes its tables with its own
migrations and takes comments through django-contrib-comments' own form, held for moderation;
a batch with the ``django`` preset and a review-page Reject work on its database; then Django's
ORM, in that virtualenv, says what is public and which ``CommentFlag`` rows exist, and the
``get_comment_list`` template tag what a page would show.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

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
from tests.livesystems import DJANGO_VENV, django_problem, require

SITE = Path(__file__).parents[1] / "data" / "django_comments_site.py"
POSITIVE, NEUTRAL, IDIOT, CLOWN = (
    "Thanks, this helped",
    "A question about part two",
    "You idiot, nobody reads this",
    "What a clown writes this",
)
RULES = {"idiot": NEGATIVE, "clown": NEGATIVE, "question": '{"label": "neutral"}'}


def django(db: Path, *args: str) -> Any:
    """One command of the test site, run by the Django virtualenv's Python."""
    done = subprocess.run(
        [str(DJANGO_VENV / "bin" / "python"), str(SITE), str(db), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, int]:
    require(django_problem())
    db = tmp_path / "django.db"
    return db, int(django(db, "setup")["moderator"])


def review(db: Path, **settings: Any) -> tuple[dict[str, Any], ReviewQueue]:
    configured = Settings(
        database_url=f"sqlite:///{db}",
        preset="django",
        http_transport="httpx",
        qualify="off",
        **settings,
    )
    report = run_batch(configured, classifier=FakeClassifier(RULES)).to_json()
    engine = create_engine(configured.database_url)
    queue = ReviewQueue(engine, CommentsTable.reflect(engine, configured), str(uuid.uuid4()))
    return report, queue


def test_rulings_as_django_comments_moderation_makes_them(site: tuple[Path, int]) -> None:
    db, moderator = site
    good, neutral, idiot, clown = django(db, "post", POSITIVE, NEUTRAL, IDIOT, CLOWN)["ids"]
    assert django(db, "state")["shown"] == []  # held for moderation

    report, queue = review(db, django_moderator_id=moderator)
    assert (report["approved"], report["held"]) == (2, 2)
    assert queue.rule(str(idiot), text_hash(IDIOT), Outcome.APPROVED, "ana").written
    assert queue.rule(str(clown), text_hash(CLOWN), Outcome.REJECTED, "ana").written

    state = django(db, "state")
    assert state["shown"] == [POSITIVE, NEUTRAL, IDIOT]
    assert [(c["id"], c["is_public"], c["is_removed"]) for c in state["comments"]] == [
        (good, True, False),
        (neutral, True, False),
        (idiot, True, False),
        (clown, False, True),  # perform_delete: removed, never public
    ]
    # What perform_approve and perform_delete write, dated, in Django's own time zone handling.
    assert state["flags"] == [
        {"comment": good, "user": "moderator", "flag": "moderator approval", "aware": True},
        {"comment": neutral, "user": "moderator", "flag": "moderator approval", "aware": True},
        {"comment": idiot, "user": "moderator", "flag": "moderator approval", "aware": True},
        {"comment": clown, "user": "moderator", "flag": "moderator deletion", "aware": True},
    ]


def test_without_a_moderator_no_flag_is_written(site: tuple[Path, int]) -> None:
    db, _ = site
    django(db, "post", POSITIVE)

    report, _ = review(db)

    assert report["approved"] == 1
    state = django(db, "state")
    assert (state["shown"], state["flags"]) == ([POSITIVE], [])
