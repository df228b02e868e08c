"""Rules before the model, through the `moderate` program on SQLite: a held comment carries
the rule's reason, the model is never asked about it, and a rule never approves anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from moderation.model.host import PROBE_PROMPT
from tests.fakeollama import FakeOllama
from tests.helpers import create_site_table, execute, read_table
from tests.processes import moderate
from tests.site_schemas import wordpress_ddl

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ollama_rules() -> list[dict[str, Any]]:
    # The test server calls everything positive: only the rules can hold.
    return []


@pytest.fixture(scope="module")
def ollama_settings() -> dict[str, Any]:
    return {
        "faults": [],
        "latency": 0.0,
        "parallel": 1,
        "models": {"sentiments": None},
        "logprobs": True,
        "default_confidence": 0.99,
    }


def env_for(url: str, ollama: FakeOllama, **extra: str) -> dict[str, str]:
    return {
        "MODERATION_DATABASE_URL": url,
        "OLLAMA_HOST": ollama.url,
        "MODERATION_TIMEOUT": "5",
        "MODERATION_LOAD_TIMEOUT": "10",
        **extra,
    }


def prompts_sent(ollama: FakeOllama) -> list[str]:
    """The comments' prompts: not the warm-up (empty) nor the start-up probe."""
    bodies = ollama.stats()["generate_bodies"]
    return [b["prompt"] for b in bodies if b.get("prompt") and b["prompt"] != PROBE_PROMPT]


BODIES = [
    "Thanks, this helped me a lot!",  # 1: approved by the model
    "Great post! Cheap watches at http://watches.example and www.more.example",  # 2: links
    "Lovely\u200b article",  # 3: hidden
    "Wonderful, visit our CASINO tonight",  # 4: hold word
    "I love ｖｉａｇｒａ",  # 5: never-approve word
    "Same cheerful text",  # 6-8: a flood of three
    "same   CHEERFUL text",
    "Same cheerful text",
    "Only one link: https://fine.example",  # 9: approved by the model
]


def test_rules_hold_with_their_reason_and_the_model_is_never_asked(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, BODIES)
    env = env_for(
        url, ollama, MODERATION_HOLD_WORDS="casino", MODERATION_NEVER_APPROVE_WORDS="viagra"
    )

    result = moderate("--json", env=env)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    decisions = {d["comment_id"]: d for d in report["decisions"]}
    assert set(decisions[1]) == {
        "comment_id",
        "label",
        "outcome",
        "error",
        "coverage",
        "confidence",
        "rule",
        "answer_of",
    }
    expected = {
        2: ("links", "rule: 2 links >= 2"),
        3: ("hidden", "rule: hidden characters"),
        4: ("hold_word", 'rule: hold word "casino"'),
        5: ("never_approve_word", 'rule: never-approve word "viagra"'),
        6: ("flood", "rule: 3 copies pending"),
        7: ("flood", "rule: 3 copies pending"),
        8: ("flood", "rule: 3 copies pending"),
    }
    for comment_id, (rule, reason) in expected.items():
        decision = decisions[comment_id]
        assert (decision["outcome"], decision["label"], decision["rule"]) == ("held", None, rule)
        assert decision["error"] == reason and decision["coverage"] == "none"
    for comment_id in (1, 9):
        assert decisions[comment_id]["outcome"] == "approved"
        assert decisions[comment_id]["rule"] is None
    assert (report["approved"], report["held"]) == (2, 7)

    # Only the two comments no rule held reached the model.
    sent = prompts_sent(ollama)
    assert len(sent) == 2
    assert any(BODIES[0] in p for p in sent) and any(BODIES[8] in p for p in sent)

    # The held ones stay pending, with the reason in their audit rows.
    assert read_table(url, "SELECT id FROM comments WHERE approved = 1 ORDER BY id") == [(1,), (9,)]
    rows = dict(read_table(url, "SELECT comment_id, error FROM moderation_decisions"))
    assert rows["2"] == "rule: 2 links >= 2" and rows["1"] is None


def test_a_dry_run_shows_the_rules_reason(tmp_path: Path, ollama: FakeOllama) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, [BODIES[1], BODIES[0]])
    result = moderate("--dry-run", env=env_for(url, ollama, COLUMNS="250"))
    assert result.returncode == 0, result.stderr
    assert "2 links >= 2" in result.stdout
    assert len(prompts_sent(ollama)) == 1


def test_rules_turned_off_leave_everything_to_the_model(tmp_path: Path, ollama: FakeOllama) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, [BODIES[1], BODIES[5], BODIES[6], BODIES[7]])
    env = env_for(url, ollama, MODERATION_HOLD_LINKS="0", MODERATION_MAX_DUPLICATES="0")
    report = json.loads(moderate("--json", env=env).stdout)
    assert [d["rule"] for d in report["decisions"]] == [None] * 4
    assert report["approved"] == 4
    # Two copies of one text ("Same cheerful text"): one request serves both.
    assert len(prompts_sent(ollama)) == 3
    assert [d["answer_of"] for d in report["decisions"]] == [None, None, None, "2"]
    assert report["reused"] == 1


def test_copies_below_the_flood_limit_cost_one_request_across_batches(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["Thanks, this helped!", "Thanks, this helped!"])
    env = env_for(url, ollama)
    first = json.loads(moderate("--json", env=env).stdout)
    assert (first["approved"], first["reused"]) == (2, 1)
    assert len(prompts_sent(ollama)) == 1

    # Posted once more, next hour: still no request, and the audit row names its source.
    execute(url, "INSERT INTO comments (id, body, approved) VALUES (3, 'Thanks, this helped!', 0)")
    second = json.loads(moderate("--json", env=env).stdout)
    assert [(d["comment_id"], d["outcome"], d["answer_of"]) for d in second["decisions"]] == [
        (3, "approved", "1")
    ]
    assert len(prompts_sent(ollama)) == 1
    assert read_table(url, "SELECT comment_id, answer_of FROM moderation_decisions") == [
        ("1", None),
        ("2", "1"),
        ("3", "1"),
    ]


# --- the WordPress preset, with the site's own options ------------------------------------------

WP_OPTIONS_DDL = {
    "sqlite": (
        "CREATE TABLE wp_options (option_id INTEGER PRIMARY KEY, "
        "option_name VARCHAR(191) UNIQUE NOT NULL, option_value TEXT NOT NULL, "
        "autoload VARCHAR(20) NOT NULL DEFAULT 'yes')"
    ),
    # As wp-admin/includes/schema.php creates it.
    "mariadb": (
        "CREATE TABLE wp_options (option_id BIGINT(20) UNSIGNED NOT NULL AUTO_INCREMENT, "
        "option_name VARCHAR(191) NOT NULL DEFAULT '', option_value LONGTEXT NOT NULL, "
        "autoload VARCHAR(20) NOT NULL DEFAULT 'yes', PRIMARY KEY (option_id), "
        "UNIQUE KEY option_name (option_name)) "
        "ENGINE=InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci"
    ),
}
WP_BODIES = [
    "Thanks, this helped me a lot!",  # 1: approved by the model
    "One link only: https://shop.example",  # 2: the site's comment_max_links is 1
    "Lovely\U000e0041 article",  # 3: hidden (a tag character)
    "Nice post, see my Cheap Pills offer",  # 4: the site's moderation_keys
    "Wonderful! Visit my casino",  # 5: the site's disallowed_keys
    "So true, so true",  # 6-8: a flood of three
    "So true, so true",
    "so TRUE,   so true",
    "Totally agree with the conclusion",  # 9: the operator's own hold word "conclusion"
]


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("mariadb", marks=pytest.mark.mysql)])
def test_every_rule_holds_on_the_wordpress_preset_with_the_sites_own_options(
    dialect: str, tmp_path: Path, ollama: FakeOllama, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'wp.db'}"
        if dialect == "sqlite"
        else str(request.getfixturevalue("mysql_url"))
    )
    option = "INSERT INTO wp_options (option_name, option_value) VALUES (:name, :value)"
    comment = (
        "INSERT INTO wp_comments (comment_post_ID, comment_author, comment_content, "
        "comment_approved, comment_agent, comment_author_url, comment_author_IP) "
        "VALUES (1, 'a reader', :body, '0', '', '', '')"
    )
    options = {
        "moderation_keys": "cheap pills\nviagra",
        "disallowed_keys": "casino",
        "comment_max_links": "1",
    }
    execute(
        url,
        wordpress_ddl("mariadb" if dialect == "mariadb" else "sqlite"),
        WP_OPTIONS_DDL[dialect],
        rows=[(option, {"name": k, "value": v}) for k, v in options.items()]
        + [(comment, {"body": b}) for b in WP_BODIES],
    )
    env = env_for(url, ollama, MODERATION_PRESET="wordpress", MODERATION_HOLD_WORDS="conclusion")

    result = moderate("--json", env=env)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    decisions = {
        d["comment_id"]: (d["outcome"], d["rule"], d["error"]) for d in report["decisions"]
    }
    assert decisions == {
        1: ("approved", None, None),
        2: ("held", "links", "rule: 1 links >= 1"),
        3: ("held", "hidden", "rule: hidden characters"),
        4: ("held", "hold_word", 'rule: hold word "cheap pills"'),
        5: ("held", "never_approve_word", 'rule: never-approve word "casino"'),
        6: ("held", "flood", "rule: 3 copies pending"),
        7: ("held", "flood", "rule: 3 copies pending"),
        8: ("held", "flood", "rule: 3 copies pending"),
        9: ("held", "hold_word", 'rule: hold word "conclusion"'),
    }
    assert len(prompts_sent(ollama)) == 1
    statuses = read_table(url, "SELECT comment_ID, comment_approved FROM wp_comments")
    assert sorted(statuses) == [(1, "1")] + [(i, "0") for i in range(2, 10)]

    # MODERATION_SITE_RULES=off: the site's options are left out, the operator's word stays.
    execute(
        url, "DELETE FROM moderation_comment_state", "UPDATE wp_comments SET comment_approved = '0'"
    )
    off = json.loads(moderate("--json", env={**env, "MODERATION_SITE_RULES": "off"}).stdout)
    rules_off = {d["comment_id"]: d["rule"] for d in off["decisions"]}
    assert rules_off == {
        1: None,
        # The site's comment_max_links is left out; the author's first comment with a link
        # is still held, by the tool's own rule (MODERATION_FIRST_COMMENT_MAX_LINKS).
        2: "first_comment_links",
        3: "hidden",
        4: None,
        5: None,
        6: "flood",
        7: "flood",
        8: "flood",
        9: "hold_word",
    }


# --- a word list that names a missing file ---------------------------------------------------


@pytest.mark.parametrize("variable", ["MODERATION_HOLD_WORDS", "MODERATION_NEVER_APPROVE_WORDS"])
@pytest.mark.parametrize(
    "command",
    [(), ("--dry-run", "--json"), ("eval", "--limit", "3"), ("history",), ("db", "upgrade")],
    ids=["batch", "dry-run-json", "eval", "history", "db-upgrade"],
)
def test_a_word_list_naming_a_missing_file_is_refused(
    tmp_path: Path, ollama: FakeOllama, variable: str, command: tuple[str, ...]
) -> None:
    # A path with a typo would otherwise be taken as one "word", and the list be off.
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["casino tonight"])
    missing = tmp_path / "lists" / "hold-words.txt"
    env = env_for(url, ollama, **{variable: str(missing)})

    result = moderate(*command, env=env, cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and str(missing) in lines[0], lines[0]
    assert prompts_sent(ollama) == []
    assert read_table(url, "SELECT approved FROM comments") == [(0,)]
    if "--json" in command:
        assert json.loads(result.stdout)["exit_code"] == 2


def test_a_word_list_file_or_words_with_a_slash_still_work(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["casino tonight", "n/a, as usual", "and/or so", "fine"])
    words = tmp_path / "hold-words.txt"
    words.write_text("# the site's words\ncasino\n", encoding="utf-8")
    env = env_for(
        url,
        ollama,
        MODERATION_HOLD_WORDS=str(words),
        MODERATION_NEVER_APPROVE_WORDS="n/a, and/or",  # a comma: a list of words
    )

    result = moderate("--json", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    rules = {d["comment_id"]: d["rule"] for d in json.loads(result.stdout)["decisions"]}
    assert rules == {1: "hold_word", 2: "never_approve_word", 3: "never_approve_word", 4: None}
