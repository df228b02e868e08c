"""`moderate outcomes` on each comment system's real schema, with scripted humans, via the CLI.

Every test fills the system's own table (the DDL of tests/site_schemas.py) with pending
comments, runs one batch against the stand-in model server, then does what that system's
moderators do (approve a held comment, trash or flag an approved one, delete a row, edit a
text), and checks the exact figures of `moderate outcomes --json`, twice in a row. Then it
exports the ruled comments and runs `moderate eval` on them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import site_schemas
from tests.fakeollama import FakeOllama
from tests.helpers import execute
from tests.processes import moderate

pytestmark = pytest.mark.integration

RULES = [{"contains": "idiot", "answer": '{"label": "negative"}'}]
# The comments, all pending at first, and what the model makes of them.
TEXTS = {
    "trashed": "Thanks, this helped 🎉",  # approved, then rejected by a human: reversed
    "pending again": "A question: part two?",  # approved, then pending or flagged: reversed
    "approved": "You idiot.",  # held, then approved by a human: released
    "deleted": "idiot, again",  # held, then the row is deleted: confirmed
    "untouched ok": "Lovely post",  # approved and left alone: kept
    "untouched held": "what an idiot",  # held and left alone: waiting
    "edited": "Nice write-up",  # approved, then its text edited: edited
    "rejected": "idiot spam here",  # held, then rejected by a human: confirmed
    "odd state": "Good point",  # approved, then a state that is none of the known: other
}
COUNTS = (
    "decided",
    "kept",
    "reversed",
    "released",
    "confirmed",
    "waiting",
    "edited",
    "other",
    "system",
)


@dataclass
class Site:
    """One system's table and what its moderators' actions look like in SQL."""

    url: str
    env: dict[str, str]
    table: str
    id_column: str
    body_column: str
    ids: dict[str, Any] = field(default_factory=dict)
    actions: dict[str, list[str]] = field(default_factory=dict)

    def where(self, name: str) -> str:
        value = self.ids[name]
        literal = f"'{value}'" if isinstance(value, str) else str(value)
        return f"WHERE {self.id_column} = {literal}"

    def sql(self, name: str, assignment: str) -> str:
        return f"UPDATE {self.table} SET {assignment} {self.where(name)}"

    def delete(self, name: str) -> str:
        return f"DELETE FROM {self.table} {self.where(name)}"

    def edit(self, name: str) -> str:
        body = self.body_column
        return self.sql(name, f"{body} = CONCAT({body}, ' (edited)')")


@pytest.fixture(scope="module")
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama(models={"sentiments": None}, rules=RULES) as fake:
        yield fake


def cli(site: Site, *args: str, ollama: FakeOllama, cwd: Path) -> Any:
    env = {
        "MODERATION_DATABASE_URL": site.url,
        "OLLAMA_HOST": ollama.url,
        "MODERATION_EVAL_HISTORY": str(cwd / "history.jsonl"),
        **site.env,
    }
    result = moderate(*args, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result


def script_and_measure(
    site: Site,
    scripted: list[str],
    ollama: FakeOllama,
    cwd: Path,
    expected: dict[str, int],
    exported: int,
    gone: int = 1,
) -> None:
    batch = json.loads(cli(site, "--json", ollama=ollama, cwd=cwd).stdout)
    assert batch["considered"] == len(site.ids)
    execute(site.url, *scripted)

    runs = [json.loads(cli(site, "outcomes", "--json", ollama=ollama, cwd=cwd).stdout)]
    runs.append(json.loads(cli(site, "outcomes", "--json", ollama=ollama, cwd=cwd).stdout))

    for result in runs:
        assert {name: result[name] for name in COUNTS} == expected
        approved = sum(1 for name in site.ids if "idiot" not in TEXTS[name])
        assert result["reversal_rate"] == expected["reversed"] / approved
        # In these scripts only held comments are taken away by the system; those are in
        # neither rate's denominator.
        held = len(site.ids) - approved - expected["system"]
        assert result["release_rate"] == expected["released"] / held
        assert sorted(result["reversed_ids"]) == sorted(
            str(site.ids[n]) for n in ("trashed", "pending again") if n in site.ids
        )

    out = cwd / "site.jsonl"
    export = cli(site, "fixtures", "export", "--out", str(out), ollama=ollama, cwd=cwd)
    assert f"wrote {exported} lines" in export.stdout
    assert f"{gone} rows were gone" in export.stdout
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    by_id = {r["id"]: r for r in records}
    assert by_id[f"site-{site.ids['approved']}"] == {
        "id": f"site-{site.ids['approved']}",
        "text": TEXTS["approved"],
        "expected": "approve",
        "tags": ["site", "released"],
    }
    assert by_id[f"site-{site.ids['untouched ok']}"]["expected"] == "approve"
    assert by_id[f"site-{site.ids['pending again']}"]["expected"] == "hold"

    evaluation = json.loads(cli(site, "eval", str(out), "--json", ollama=ollama, cwd=cwd).stdout)
    assert (evaluation["n"], evaluation["n_labelled"], evaluation["n_expected"]) == (
        exported,
        0,
        exported,
    )
    # The model approves every non-"idiot" text and holds the rest, exactly as in the batch:
    # every comment a human took back is a false approval, every release a missed approval.
    holds = [r for r in records if r["expected"] == "hold"]
    wrongly_approved = [r for r in holds if "idiot" not in r["text"]]
    assert evaluation["false_approval_rate"] == len(wrongly_approved) / len(holds)
    approves = [r for r in records if r["expected"] == "approve"]
    missed = [r for r in approves if "idiot" in r["text"]]
    assert evaluation["missed_approval_rate"] == len(missed) / len(approves)


ALL_NINE = {
    "decided": 9,
    "kept": 1,
    "reversed": 2,
    "released": 1,
    "confirmed": 2,
    "waiting": 1,
    "edited": 1,
    "other": 1,
    "system": 0,
}
# A held comment taken away by the comment system itself, not by a human.
ONE_BY_THE_SYSTEM = {**ALL_NINE, "confirmed": 1, "system": 1}


@pytest.mark.mysql
def test_wordpress_on_mariadb(mysql_url: str, ollama: FakeOllama, tmp_path: Path) -> None:
    insert = (
        "INSERT INTO blog_comments (comment_ID, comment_post_ID, comment_author, comment_date,"
        " comment_date_gmt, comment_content, comment_approved)"
        " VALUES (:id, 7, 'reader', '2026-11-30 10:00:00', '2026-11-30 09:00:00', :c, '0')"
    )
    ids = {name: 100 + i for i, name in enumerate(TEXTS)}
    execute(
        mysql_url,
        site_schemas.wordpress_ddl("mariadb", prefix="blog_"),
        rows=[(insert, {"id": ids[n], "c": TEXTS[n]}) for n in TEXTS],
    )
    env = {"MODERATION_PRESET": "wordpress", "MODERATION_TABLE_PREFIX": "blog_"}
    site = Site(mysql_url, env, "blog_comments", "comment_ID", "comment_content", ids)
    scripted = [
        site.sql("trashed", "comment_approved = 'trash'"),
        site.sql("pending again", "comment_approved = 'spam'"),
        site.sql("approved", "comment_approved = '1'"),
        site.delete("deleted"),
        site.edit("edited"),
        # WordPress itself, sending the comment's post to the trash: nobody ruled on it.
        site.sql("rejected", "comment_approved = 'post-trashed'"),
        site.sql("odd state", "comment_approved = 'akismet-pending'"),
    ]
    # Exported: kept, the two reversed, released; the deleted row is gone.
    script_and_measure(site, scripted, ollama, tmp_path, ONE_BY_THE_SYSTEM, exported=4)


def test_isso_on_sqlite(sqlite_url: str, ollama: FakeOllama, tmp_path: Path) -> None:
    insert = (
        "INSERT INTO comments (tid, id, created, mode, remote_addr, text, author, voters)"
        " VALUES (1, :id, :created, 2, '127.0.0.0', :text, 'reader', X'00')"
    )
    ids = {name: i for i, name in enumerate(TEXTS, start=1)}
    execute(
        sqlite_url,
        *site_schemas.ISSO_DDL,
        site_schemas.ISSO_THREAD,
        rows=[
            (insert, {"id": ids[n], "created": 1764000000.0 + ids[n], "text": TEXTS[n]})
            for n in TEXTS
        ],
    )
    site = Site(sqlite_url, {"MODERATION_PRESET": "isso"}, "comments", "id", "text", ids)
    scripted = [
        # Isso deletes a comment with replies by blanking it and setting mode 4.
        site.sql("trashed", "mode = 4, text = ''"),
        site.sql("pending again", "mode = 2"),
        site.sql("approved", "mode = 1"),
        # A held comment's row gone: purge-after or a moderator, Isso leaves no way to tell.
        site.delete("deleted"),
        site.sql("edited", "text = text || ' (edited)'"),
        site.sql("rejected", "mode = 4"),
        site.sql("odd state", "mode = 3"),
    ]
    # Exported: kept, reversed (pending again), released, confirmed; the blanked one is not.
    script_and_measure(site, scripted, ollama, tmp_path, ONE_BY_THE_SYSTEM, exported=4, gone=0)


@pytest.mark.postgres
def test_commento_on_postgres(postgres_url: str, ollama: FakeOllama, tmp_path: Path) -> None:
    ids = {name: secrets.token_hex(32) for name in TEXTS}
    insert = (
        "INSERT INTO comments (commentHex, domain, path, commenterHex, markdown, html, parentHex,"
        " state, creationDate) VALUES (:hex, 'example.org', '/post', 'anonymous', :md, :md,"
        " 'root', 'unapproved', '2026-11-30 10:00:00')"
    )
    execute(
        postgres_url,
        *site_schemas.COMMENTO_DDL,
        rows=[(insert, {"hex": ids[n], "md": TEXTS[n]}) for n in TEXTS],
    )
    site = Site(
        postgres_url, {"MODERATION_PRESET": "commento"}, "comments", "commenthex", "markdown", ids
    )
    scripted = [
        # A moderator's deletion keeps the row, marks it and replaces its text.
        site.sql("trashed", "deleted = true, markdown = '[deleted]', deleterHex = 'mod'"),
        site.sql("pending again", "state = 'unapproved'"),
        site.sql("approved", "state = 'approved'"),
        site.delete("deleted"),
        site.edit("edited"),
        site.sql("rejected", "state = 'flagged'"),
        site.sql("odd state", "state = 'shadowbanned'"),
    ]
    script_and_measure(site, scripted, ollama, tmp_path, ALL_NINE, exported=4)


@pytest.mark.postgres
def test_django_on_postgres(postgres_url: str, ollama: FakeOllama, tmp_path: Path) -> None:
    texts = [name for name in TEXTS if name != "odd state"]  # two booleans: no other state
    insert = (
        "INSERT INTO django_comments (id, object_pk, user_name, user_email, user_url, comment,"
        " submit_date, is_public, is_removed, content_type_id) VALUES (:id, '42', 'reader',"
        " 'r@example.org', '', :c, '2026-11-30 10:00:00+00', false, false, 7)"
    )
    ids = {name: i for i, name in enumerate(texts, start=1)}
    execute(
        postgres_url,
        *site_schemas.DJANGO_DDL,
        rows=[(insert, {"id": ids[n], "c": TEXTS[n]}) for n in texts],
    )
    site = Site(
        postgres_url, {"MODERATION_PRESET": "django"}, "django_comments", "id", "comment", ids
    )
    scripted = [
        site.sql("trashed", "is_removed = true"),
        site.sql("pending again", "is_public = false"),
        site.sql("approved", "is_public = true"),
        site.delete("deleted"),
        site.edit("edited"),
        site.sql("rejected", "is_removed = true"),
    ]
    expected = {**ALL_NINE, "decided": 8, "other": 0}
    script_and_measure(site, scripted, ollama, tmp_path, expected, exported=5)


@pytest.mark.postgres
def test_tr_on_postgres(postgres_url: str, ollama: FakeOllama, tmp_path: Path) -> None:
    execute(
        postgres_url,
        *site_schemas.TR_DDL,
        rows=[
            (
                "INSERT INTO comments (id, body, approved, post_id) VALUES (:i, :b, false, 3)",
                {"i": i, "b": TEXTS[n]},
            )
            for i, n in enumerate(TEXTS, start=1)
        ],
    )
    ids = {name: i for i, name in enumerate(TEXTS, start=1)}
    site = Site(postgres_url, {"MODERATION_PRESET": "tr"}, "comments", "id", "body", ids)
    scripted = [
        # No rejected state here: a moderator unpublishes or deletes.
        site.sql("trashed", "approved = false"),
        site.sql("pending again", "approved = false"),
        site.sql("approved", "approved = true"),
        site.delete("deleted"),
        site.edit("edited"),
        site.delete("rejected"),
        site.sql("odd state", "approved = NULL"),
    ]
    # Exported: kept, the two reversed, released; two rows are gone.
    script_and_measure(site, scripted, ollama, tmp_path, ALL_NINE, exported=4, gone=2)
