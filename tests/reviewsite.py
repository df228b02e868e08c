"""A site with comments the tool held or failed, ready for the review page.

The decisions come from a real batch (the pipeline with a scripted classifier), so the rows
the page reads are the ones a batch writes.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from moderation.batch.pipeline import run_batch
from moderation.settings import Settings
from moderation.storage import migrate
from moderation.storage.tables import runs
from moderation.vocabulary import RunStatus
from tests.fakes import FakeClassifier
from tests.helpers import create_site_table, make_settings, read_table
from tests.site_schemas import wordpress_companions_ddl, wordpress_ddl

NEGATIVE = '{"label": "negative"}'
HOSTILE = (
    'hostile <script>window.__pwned = 1; alert("x")</script>'
    '<img src="http://203.0.113.9/x.png" onerror="alert(2)">'
    '<a href="javascript:alert(3)">click</a> \u202egnp.exe'
)
# Held (negative), failed (unparseable), approved by the tool, and the hostile one (held by the
# links rule, before the model is asked).
BODIES = [
    "You are an idiot and this post is garbage.",
    "Thanks, this helped me a lot!",
    "mumble mumble",
    HOSTILE,
    "Another idiot take.",
]
RULES = {"idiot": NEGATIVE, "hostile": NEGATIVE, "mumble": "It could be anything."}
STATUS = ("0", "1")  # WordPress-like: '0' pending, '1' approved


def status_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "comments_pending_value": "0",
        "comments_approved_value": "1",
        "comments_rejected_values": ["trash", "spam"],
    }
    values.update(overrides)
    return make_settings(url, **values)


def held_site(url: str, settings: Settings | None = None, bodies: list[str] = BODIES) -> Settings:
    """Create the site's table and run one batch; comments 1, 3, 4, 5 then wait for a human."""
    create_site_table(url, bodies, status=STATUS)
    settings = settings or status_settings(url)
    run_batch(settings, classifier=FakeClassifier(RULES))
    return settings


def status_of(url: str, comment_id: int) -> Any:
    rows = read_table(url, f"SELECT approved FROM comments WHERE id = {comment_id}")
    return rows[0][0] if rows else None


def rulings(url: str) -> list[tuple[Any, ...]]:
    return read_table(
        url,
        "SELECT comment_id, outcome, reviewer, model, label FROM moderation_decisions "
        "WHERE reviewer IS NOT NULL ORDER BY id",
    )


def edit_comment(url: str, comment_id: int, **values: Any) -> None:
    engine = sa.create_engine(url)
    table = sa.Table("comments", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        if values:
            conn.execute(sa.update(table).where(table.c.id == comment_id).values(**values))
        else:
            conn.execute(sa.delete(table).where(table.c.id == comment_id))
    engine.dispose()


PLAIN_BODIES = ["You are an idiot.", "Thanks, a great read.", "Another idiot take."]


def plain_site(url: str, bodies: list[str] = PLAIN_BODIES) -> Settings:
    """A site's own simple table, no preset: a boolean ``approved`` (no rejected state), the
    post each comment is on and when it was written; then one batch."""
    metadata = sa.MetaData()
    table = sa.Table(
        "comments",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("approved", sa.Boolean, nullable=False),
        sa.Column("post_id", sa.Integer),
        sa.Column("inserted_at", sa.DateTime),
    )
    start = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(
            sa.insert(table),
            [
                {
                    "id": n,
                    "body": body,
                    "approved": False,
                    "post_id": 40 + n % 2,
                    "inserted_at": start - timedelta(minutes=10 * (len(bodies) - n)),
                }
                for n, body in enumerate(bodies, start=1)
            ],
        )
    engine.dispose()
    settings = make_settings(url)
    run_batch(settings, classifier=FakeClassifier(RULES))
    return settings


def plain_rows(url: str) -> list[tuple[Any, ...]]:
    return read_table(
        url, "SELECT id, body, approved, post_id, inserted_at FROM comments ORDER BY id"
    )


POSITIVE = '{"label": "positive"}'
UNPARSEABLE = "It could be anything."
# One comment for each reason a comment waits for, as the batches below make them wait.
REASON_TEXTS = {
    "negative": "You are an idiot and this post is garbage.",
    "unsure": "Well, I suppose it is fine, in its way.",
    "unqualified": "Great post, thanks for writing it!",
    "rule": "Cheap pills at http://a.example and http://b.example",
    "quarantined": "The comment every batch stopped on.",
    "long": "A very long comment. " * 1600,
    "failed": "mumble mumble",
}


class ScriptedModel(FakeClassifier):
    """Answers each comment by its exact text: negative, unparseable, or positive, sure or
    not; anything else (the qualification's fixtures) positive and sure."""

    def __init__(self, reasons: dict[str, str]) -> None:
        answers = {"negative": NEGATIVE, "failed": UNPARSEABLE}
        by_text = {text: answers.get(reason, POSITIVE) for text, reason in reasons.items()}
        super().__init__(default=lambda text: by_text.get(text, POSITIVE))
        self.unsure = {text for text, reason in reasons.items() if reason == "unsure"}

    async def classify(self, text: str) -> Any:
        self.confidence = 0.5 if text in self.unsure else 1.0
        return await super().classify(text)


def make_them_wait(settings: Settings, reasons: Sequence[str], bodies: Sequence[str]) -> None:
    """Two real batches over a site whose comments (ids 1, 2, ...: ``bodies``, all pending, in
    a string status column) then wait for a human for ``reasons``, one per comment.

    The first batch runs after two batches that died while working on the quarantined ones,
    with a confidence threshold of 0.8 and without qualification: it holds the negative,
    unsure, ruled, quarantined and long ones and fails the garbled ones. The second qualifies
    the model on the shipped fixtures, where it fails, so it holds the comments it finds
    positive as unqualified. Each batch meets only its own comments: the others are out of
    the pending state meanwhile, as a moderator's "hold for later" would put them.
    """
    engine = sa.create_engine(settings.database_url)
    migrate.upgrade(engine)
    table = sa.Table(settings.comments_table, sa.MetaData(), autoload_with=engine)
    key = table.c[settings.comments_id_column]
    status = table.c[settings.comments_approved_column]

    def ids(*wanted: str) -> list[int]:
        return [n for n, reason in enumerate(reasons, start=1) if reason in wanted]

    def put(value: str | None, *wanted: str) -> None:
        with engine.begin() as conn:
            conn.execute(sa.update(table).where(key.in_(ids(*wanted))).values({status: value}))

    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(runs),
            [
                {
                    "id": str(uuid.uuid4()),
                    "started_at": now - timedelta(minutes=minutes),
                    "status": RunStatus.ABANDONED,
                    "owner": "a batch that died",
                    "site": settings.site_key,
                    "in_work": json.dumps([str(n) for n in ids("quarantined")]),
                }
                for minutes in (60, 30)
            ],
        )
    model = ScriptedModel(dict(zip(bodies, reasons, strict=True)))
    pending = settings.comments_pending_value
    put("parked", "unqualified")
    run_batch(settings.model_copy(update={"min_confidence": 0.8}), classifier=model)
    put("parked", "unsure")
    put(pending, "unqualified")
    run_batch(settings.model_copy(update={"qualify": "auto"}), classifier=model)
    put(pending, "unsure")
    engine.dispose()


def reasons_site(url: str, reasons: Sequence[str]) -> Settings:
    """A site whose comment n waits for ``reasons[n - 1]`` (``REASON_TEXTS`` numbered: each
    text ends with its id, so that no two are the same)."""
    bodies = [f"{REASON_TEXTS[reason]} ({n})" for n, reason in enumerate(reasons, start=1)]
    create_site_table(url, bodies, status=STATUS)
    settings = status_settings(url)
    make_them_wait(settings, reasons, bodies)
    return settings


# A moderator's morning on a WordPress blog (its own tables, on SQLite): 300 comments waiting,
# each reason's count, and what its comments say, in two halves put together every way: no two
# comments alike, since the flood rule holds a text that comes back.
DAY: dict[str, tuple[int, list[str], list[str]]] = {
    "negative": (
        110,
        [
            "Only an idiot would write a post like this.",
            "This is garbage.",
            "Worst article on the whole site.",
            "You clearly have no idea what you are talking about.",
            "Stop posting this nonsense.",
            "Pathetic.",
            "What a waste of ten minutes.",
            "Absolute rubbish from start to finish.",
            "Did a child write this?",
            "Embarrassing for everyone involved.",
            "Typical clueless take.",
        ],
        [
            "Delete your blog.",
            "Nobody cares.",
            "My cat writes better code.",
            "Unsubscribed.",
            "Learn to write first.",
            "Go back to school.",
            "Do everyone a favour and stop.",
            "I want my time back.",
            "Clown.",
            "Get a real job.",
        ],
    ),
    "unqualified": (
        90,
        [
            "Thanks for this!",
            "Great write-up.",
            "Very clear, merci.",
            "This saved me an afternoon.",
            "Bookmarked for the team.",
            "Lovely explanation.",
            "Exactly what I needed.",
            "Nice one.",
            "Helpful as always.",
            "Good read.",
        ],
        [
            "Does it work with version 3 of the plugin?",
            "Could you cover PostgreSQL next?",
            "Small typo in step 4: --froce.",
            "Sharing it with my students.",
            "The second approach worked first time.",
            "Any plans for a video version?",
            "Works on ARM too, by the way.",
            "Waiting for part two.",
            "Tried it on Debian 13, no issues.",
        ],
    ),
    "rule": (
        35,
        [
            "Great post!",
            "Nice article.",
            "Very informative.",
            "Thanks for sharing.",
            "Loved it.",
            "Interesting.",
            "Well said.",
        ],
        [
            "Cheap watches at https://watches.example and https://deals.example",
            "Free spins: www.casino-bonus.example, http://spins.example",
            "Best VPN deals http://vpn.example http://vpn2.example",
            "Work from home, see https://jobs.example or https://money.example",
            "Followers for sale at http://fans.example and http://likes.example",
        ],
    ),
    "unsure": (
        25,
        [
            "Meh.",
            "Hmm, interesting take.",
            "Well, that is one way to do it.",
            "Not sure about this.",
            "I suppose it is fine.",
        ],
        [
            "I've read better.",
            "Though I am not convinced.",
            "Time will tell.",
            "It depends.",
            "We will see.",
        ],
    ),
    "failed": (
        25,
        ["See above.", "Following.", "Any update?", "Bump.", "Same here."],
        ["Thanks.", "Cheers.", "Regards, Olu.", "Ping.", "Sent from my phone."],
    ),
    "quarantined": (
        10,
        ["Here is my config, pasted whole:", "Output of the last run:"],
        [f"part {n}{' █' * 30}" for n in range(1, 6)],
    ),
    "long": (
        5,
        [f"A very long comment, pasted from a forum thread, part {n}." for n in range(1, 6)],
        [" And it goes on and on." * 1400],
    ),
}
# The first comments shown, newest first: each is one of its reason's count.
SHOWN_FIRST = [
    ("negative", 'Nice "tutorial". <script>alert("you got hacked")</script>'),
    ("unqualified", "Thanks, the migration guide saved my weekend!"),
    ("rule", "Loved it \u202etxt.exe download here http://files.example http://mirror.example"),
    ("unsure", "Meh. I've read better, but it is fine I guess."),
    ("quarantined", "Here is my config, pasted whole:" + " ▒" * 40),
    ("failed", "Same question as the others, does it work on Windows?"),
    ("unqualified", "Does this work with version 3.2 of the diagrams plugin?"),
    ("negative", "No entiendo nada, este artículo es basura."),
]
AUTHORS = [
    "Ana", "troll42", "Mallory", "Lucía", "Bob", "eve", "Chen", "Priya", "Olu", "Sam",
    "J. Martin", "Kenji", "Marta", "dev_null", "Fatima", "Tom", "Ines", "Grzegorz",
]  # fmt: skip


def day_site(url: str) -> Settings:
    """A WordPress site (``MODERATION_PRESET=wordpress``) whose 300 waiting comments cover
    every reason, the newest few of each among the first ones shown."""
    rng = random.Random(7)
    newest = SHOWN_FIRST[::-1]
    rest = []
    for reason, (count, firsts, seconds) in DAY.items():
        shown = sum(1 for r, _ in newest if r == reason)
        texts = [f"{first} {second}" for second in seconds for first in firsts]
        rest += [(reason, text) for text in texts[: count - shown]]
    rng.shuffle(rest)
    rest.sort(key=lambda c: c[0] != "long")  # the oldest: a page of them is mostly one comment
    reasons = [reason for reason, _ in rest + newest]
    bodies = [text for _, text in rest + newest]
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [
        {
            "id": n,
            "post": 100 + rng.randrange(12),
            "author": rng.choice(AUTHORS),
            "date": (now - timedelta(minutes=7 * (len(bodies) - n) + 3)).strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "body": body,
        }
        for n, body in enumerate(bodies, start=1)
    ]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(wordpress_ddl("sqlite"))
        for statement in wordpress_companions_ddl("sqlite"):
            conn.exec_driver_sql(statement)
        # The site's own moderation options, as a fresh WordPress has them.
        conn.exec_driver_sql(
            "CREATE TABLE wp_options (option_id INTEGER PRIMARY KEY, option_name VARCHAR(191) "
            "NOT NULL UNIQUE, option_value TEXT NOT NULL, autoload VARCHAR(20) NOT NULL)"
        )
        conn.exec_driver_sql(
            "INSERT INTO wp_options (option_name, option_value, autoload) VALUES "
            "('moderation_keys', '', 'no'), ('disallowed_keys', '', 'no'), "
            "('comment_max_links', '2', 'yes')"
        )
        conn.execute(
            sa.text(
                "INSERT INTO wp_comments (comment_ID, comment_post_ID, comment_author, "
                "comment_date, comment_date_gmt, comment_content, comment_approved) "
                "VALUES (:id, :post, :author, :date, :date, :body, '0')"
            ),
            rows,
        )
    engine.dispose()
    settings = make_settings(url, preset="wordpress")
    make_them_wait(settings, reasons, bodies)
    return settings
