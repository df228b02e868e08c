"""The `moderate outcomes` figures of a scripted site, end to end with the real program.

Usage (from a clone, in the project's virtualenv; no Ollama needed)::

    python bench/scripted_site.py

The shipped fixtures are imported as pending comments into a fresh SQLite database, one batch
runs against the Ollama-compatible test server scripted as an imperfect model (it answers each
comment's true label, except that it is fooled by sarcasm and fake JSON, and finds questions
hostile), then scripted moderators act on what the tool did, using the fixtures' labels as
their judgement:

* an approved comment whose label is negative is deleted if it is spam, else set pending;
* a held comment whose label is positive or neutral is approved;
* a held spam comment is deleted;
* three approved comments are edited by their authors.

Then `moderate outcomes` (table and JSON), `moderate fixtures export`, and `moderate eval` on
the export with the same scripted model.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # tests.fakeollama, when run as `python bench/scripted_site.py`

from tests.fakeollama import FakeOllama  # noqa: E402

FOOLED_BY = ("sarcasm", "fake-json")


def answer_for(fixture: dict[str, Any]) -> str:
    label = fixture["label"]
    if label == "negative" and set(fixture["tags"]) & set(FOOLED_BY):
        label = "positive"
    elif "question" in fixture["tags"]:
        label = "negative"
    return json.dumps({"label": label})


def moderate(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "moderation", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode not in (0, 3):
        raise SystemExit(f"moderate {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def script_moderators(path: Path, fixtures: dict[str, dict[str, Any]]) -> dict[str, int]:
    db = sqlite3.connect(path)
    decided = dict(
        db.execute(
            "SELECT c.body, d.outcome FROM moderation_decisions d"
            " JOIN comments c ON CAST(c.id AS TEXT) = d.comment_id"
        ).fetchall()
    )
    actions = {"set pending": 0, "deleted": 0, "approved": 0, "edited": 0}
    for body, outcome in decided.items():
        fixture = fixtures[body]
        spam = "spam" in fixture["tags"]
        if outcome == "approved" and fixture["label"] == "negative":
            if spam:
                db.execute("DELETE FROM comments WHERE body = ?", (body,))
                actions["deleted"] += 1
            else:
                db.execute("UPDATE comments SET approved = 0 WHERE body = ?", (body,))
                actions["set pending"] += 1
        elif outcome != "approved" and fixture["label"] != "negative":
            db.execute("UPDATE comments SET approved = 1 WHERE body = ?", (body,))
            actions["approved"] += 1
        elif outcome != "approved" and spam:
            db.execute("DELETE FROM comments WHERE body = ?", (body,))
            actions["deleted"] += 1
    edited = db.execute("SELECT id FROM comments WHERE approved = 1 ORDER BY id LIMIT 3").fetchall()
    for (comment_id,) in edited:
        db.execute("UPDATE comments SET body = body || ' (edit)' WHERE id = ?", (comment_id,))
        actions["edited"] += 1
    db.commit()
    db.close()
    return actions


def main() -> None:
    source = REPO_ROOT / "fixtures" / "comments.jsonl"
    lines = source.read_text(encoding="utf-8").splitlines()
    fixtures = {f["text"]: f for f in map(json.loads, filter(None, lines))}
    # The test server matches rules by substring of the prompt, so each rule names a comment by
    # a stretch of its text that the prompt renders unchanged.
    rules = [{"contains": text[:40], "answer": answer_for(f)} for text, f in fixtures.items()]
    with tempfile.TemporaryDirectory() as directory, FakeOllama(rules=rules) as server:
        path = Path(directory) / "site.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MODERATION_", "OLLAMA"))}
        env.update(
            MODERATION_DATABASE_URL=f"sqlite:///{path}",
            OLLAMA_HOST=server.url,
            MODERATION_CONCURRENCY="4",
            MODERATION_EVAL_HISTORY=str(Path(directory) / "history.jsonl"),
        )
        moderate("import", str(source), env=env)
        batch = json.loads(moderate("--json", env=env))
        print(
            f"batch: {batch['considered']} considered, {batch['approved']} approved, "
            f"{batch['held']} held, {batch['failed']} failed"
        )
        print(f"moderators: {script_moderators(path, fixtures)}")
        print(moderate("outcomes", env=env), end="")
        figures = json.loads(moderate("outcomes", "--json", env=env))
        print(f"reversed ids (newest first): {', '.join(figures['reversed_ids'][:20])} ...")
        out = Path(directory) / "site.jsonl"
        print(moderate("fixtures", "export", "--out", str(out), env=env), end="")
        evaluation = json.loads(moderate("eval", str(out), "--json", env=env))
        print(
            f"eval on the export: {evaluation['n']} fixtures ({evaluation['n_expected']} with an "
            f"expected decision), false-approval rate {evaluation['false_approval_rate']:.3f}, "
            f"missed-approval rate {evaluation['missed_approval_rate']:.3f}"
        )


if __name__ == "__main__":
    main()
