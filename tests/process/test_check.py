"""`moderate check`: one line per part, the exit code of the first failing part, and nothing
changed: no file, table, row or lease, and no model loaded (only `/api/tags` and
`/api/version` are asked).

The healthy set-up is a SQLite site with two pending comments and a model qualified on the
shipped fixtures (the test server answers the negative ones negative, the rest positive, sure);
each other test breaks one part of a copy of it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from moderation.batch.lease import lease_name, new_owner
from moderation.evaluation.evaluate import default_fixture_paths, load_fixtures
from tests.fakeollama import FakeOllama, free_port
from tests.helpers import create_site_table, execute, make_settings, prompt_needle
from tests.notifyservers import Webhook
from tests.processes import moderate

pytestmark = pytest.mark.integration

NEG = '{"label": "negative"}'
NEGATIVES = [f for f in load_fixtures(default_fixture_paths()) if f.label == "negative"]
PARTS = [
    "model server",
    "model",
    "log probabilities",
    "site",
    "comments",
    "tool's tables",
    "qualification",
    "lease",
    "notifications",
    "review URL",
]


@pytest.fixture(scope="module")
def ollama_rules() -> list[dict[str, Any]]:
    return [{"contains": prompt_needle(f.text), "answer": NEG} for f in NEGATIVES]


@pytest.fixture(scope="module")
def ollama_settings() -> dict[str, Any]:
    return {
        "default_answer": '{"label": "positive"}',
        "default_confidence": 0.99,
        "logprobs": True,
        "models": {"sentiments": None},
        "faults": [],
    }


@pytest.fixture(scope="module")
def qualified_site(
    tmp_path_factory: pytest.TempPathFactory, server: FakeOllama, ollama_rules: Any
) -> Path:
    """A site database whose model is qualified, made once for the module."""
    server.configure(rules=ollama_rules, default_confidence=0.99, logprobs=True)
    folder = tmp_path_factory.mktemp("qualified")
    path = folder / "site.db"
    url = f"sqlite:///{path}"
    create_site_table(url, ["Thank you, this was really useful.", "What a lovely photo."])
    env = {"MODERATION_DATABASE_URL": url, "OLLAMA_HOST": server.url, "MODERATION_QUALIFY": "auto"}
    made = moderate("qualify", env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    return path


@pytest.fixture
def site(tmp_path: Path, qualified_site: Path, ollama: FakeOllama) -> dict[str, str]:
    """The healthy set-up's environment, on this test's own copy of the database."""
    folder = tmp_path / "site"
    folder.mkdir()
    shutil.copy(qualified_site, folder / "site.db")
    return {
        "MODERATION_DATABASE_URL": f"sqlite:///{folder / 'site.db'}",
        "OLLAMA_HOST": ollama.url,
        "MODERATION_QUALIFY": "auto",
        "MODERATION_TIMEOUT": "5",
    }


def lines_of(stdout: str) -> dict[str, str]:
    """Each part's line, by the part's name."""
    found = {}
    for line in stdout.splitlines():
        match = re.match(r"^(ok|note|FAIL|skip)\s+(.+?)\s{2,}(.*)$", line)
        if match:
            found[match[2]] = f"{match[1]} {match[3]}"
    return found


def check(env: dict[str, str], *args: str, cwd: Path | None = None) -> Any:
    return moderate("check", *args, env=env, cwd=cwd, timeout=60)


def first_failure(result: Any, part: str, code: int) -> str:
    """Assert that ``part`` is the first failing part and the exit code is its; its line."""
    assert result.returncode == code, result.stdout + result.stderr
    lines = lines_of(result.stdout)
    assert list(lines) == PARTS, result.stdout
    failing = [name for name, line in lines.items() if line.startswith("FAIL")]
    assert failing[0] == part, result.stdout
    assert result.stdout.rstrip().endswith(f"exit {code}, the first failing part: {part}")
    assert "Traceback" not in result.stderr
    return lines[part]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_healthy_set_up_passes_and_nothing_changes(
    site: dict[str, str], ollama: FakeOllama
) -> None:
    database = Path(site["MODERATION_DATABASE_URL"].removeprefix("sqlite:///"))
    before, files = digest(database), sorted(database.parent.iterdir())
    ollama.reset_stats()

    result = check(site)
    as_json = check(site, "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    lines = lines_of(result.stdout)
    assert list(lines) == PARTS
    assert all(line.startswith("ok ") for line in lines.values()), result.stdout
    assert "reachable: http://127.0.0.1:" in lines["model server"]
    assert "'sentiments' on every server (digest " in lines["model"]
    assert "2 pending" in lines["comments"] and "'approved'" in lines["comments"]
    assert "qualified at threshold 0.9000" in lines["qualification"]
    assert lines["lease"] == "ok free (no batch has run)"
    assert result.stdout.rstrip().endswith("moderate check: every part is in place")
    document = json.loads(as_json.stdout)
    assert document["exit_code"] == 0 and document["failed"] is None
    assert [p["name"] for p in document["parts"]] == PARTS
    assert {p["status"] for p in document["parts"]} == {"ok"}
    # Nothing changed, and no model was loaded or asked anything.
    assert digest(database) == before and sorted(database.parent.iterdir()) == files
    assert set(ollama.stats()["requests"]) == {"/api/tags", "/api/version"}


def test_an_unreachable_model_server_exits_4(site: dict[str, str]) -> None:
    env = {**site, "OLLAMA_HOST": f"http://127.0.0.1:{free_port()}"}
    line = first_failure(check(env), "model server", 4)
    assert "connection refused; start it with `ollama serve`" in line
    assert lines_of(check(env).stdout)["model"].startswith("skip ")


def test_a_missing_model_exits_4(site: dict[str, str], ollama: FakeOllama) -> None:
    ollama.configure(models={})
    line = first_failure(check(site), "model", 4)
    assert "model 'sentiments' not found on http://127.0.0.1:" in line
    assert line.endswith("run `moderate model create` (it builds the model on every server)")


def test_a_server_without_log_probabilities_exits_4(
    site: dict[str, str], ollama: FakeOllama
) -> None:
    ollama.configure(logprobs=False)
    line = first_failure(check(site), "log probabilities", 4)
    assert "(Ollama 0.12.10)" in line and "upgrade Ollama to 0.12.11 or later" in line
    assert "generate" not in str(ollama.stats()["requests"])


def test_a_sqlite_database_that_does_not_exist_exits_2_and_stays_so(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    env = {"OLLAMA_HOST": ollama.url}
    line = first_failure(check(env, cwd=folder), "site", 2)
    assert "the SQLite database sqlite:///moderation.db does not exist" in line
    assert list(folder.iterdir()) == []


def test_an_unreachable_database_server_exits_5(site: dict[str, str]) -> None:
    url = f"postgresql://app:s3cret-pw@127.0.0.1:{free_port()}/app"
    result = check({**site, "MODERATION_DATABASE_URL": url})
    line = first_failure(result, "site", 5)
    assert "database error on postgresql" in line
    assert "check the server, the user and the password" in line
    assert "s3cret-pw" not in result.stdout + result.stderr


class _Refusing(BaseHTTPRequestHandler):
    """WordPress answering a user without the `moderate_comments` capability."""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "code": "rest_forbidden_context",
                "message": "Sorry, you are not allowed to edit comments.",
                "data": {"status": 403},
            }
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_wordpress() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_wordpress_user_without_the_capability_exits_2(
    site: dict[str, str], refusing_wordpress: str, tmp_path: Path
) -> None:
    password = "abcd EFGH ijkl MNOP qrst UVWX"
    env = {
        **site,
        "MODERATION_PRESET": "wordpress-rest",
        "MODERATION_WORDPRESS_URL": refusing_wordpress,
        "MODERATION_WORDPRESS_USER": "editor",
        "MODERATION_WORDPRESS_APP_PASSWORD": password,
        "MODERATION_DATABASE_URL": f"sqlite:///{tmp_path / 'own.db'}",
    }
    result = check(env)
    line = first_failure(result, "site", 2)
    assert "moderate_comments" in line
    assert password not in result.stdout + result.stderr
    assert not (tmp_path / "own.db").exists()


def test_a_missing_comments_table_exits_2(site: dict[str, str]) -> None:
    line = first_failure(check({**site, "MODERATION_COMMENTS_TABLE": "posts"}), "comments", 2)
    assert "the comments table 'posts' does not exist" in line


def test_missing_tool_tables_without_auto_migration_exit_2(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    url = f"sqlite:///{tmp_path / 'bare.db'}"
    create_site_table(url, ["hello"])
    env = {"MODERATION_DATABASE_URL": url, "OLLAMA_HOST": ollama.url}
    assert lines_of(check(env).stdout)["tool's tables"].startswith("note missing")

    line = first_failure(check({**env, "MODERATION_AUTO_MIGRATE": "false"}), "tool's tables", 2)
    assert line.endswith("MODERATION_AUTO_MIGRATE is off; run `moderate db upgrade`")


def test_an_unqualified_model_exits_8(site: dict[str, str]) -> None:
    env = {**site, "MODERATION_MAX_FALSE_APPROVAL": "0.01"}  # a new key: qualified afresh
    assert moderate("qualify", env=env).returncode == 8

    line = first_failure(check(env), "qualification", 8)
    assert "sentiments: unqualified:" in line
    assert "`moderate qualify` shows the table and what would change the verdict" in line


def test_a_model_not_qualified_yet_is_a_note(site: dict[str, str], ollama: FakeOllama) -> None:
    ollama.configure(models={"sentiments": "sha256:" + "2" * 64})  # a new digest
    result = check(site)
    assert result.returncode == 0, result.stdout
    assert lines_of(result.stdout)["qualification"].startswith(
        "note 'sentiments' is not qualified yet: the first batch qualifies it"
    )


def test_a_lease_held_by_a_live_batch_exits_75(site: dict[str, str]) -> None:
    url = site["MODERATION_DATABASE_URL"]
    name = lease_name(make_settings(url).site_key)
    owner = new_owner()  # this test's own process: alive
    execute(
        url,
        "INSERT INTO moderation_lease (name, owner, token, acquired_at, expires_at) "
        f"VALUES ('{name}', '{owner}', 7, strftime('%s', 'now'), strftime('%s', 'now') + 600)",
    )
    line = first_failure(check(site), "lease", 75)
    assert f"lease held by {owner}" in line and "the holder looks alive" in line


def test_a_notification_url_apprise_cannot_read_exits_2(site: dict[str, str]) -> None:
    secret = "json://hooks.example/s3cret-token"
    env = {**site, "MODERATION_NOTIFY_URLS": f"{secret} nonsense://x/s3cret-too"}
    result = check(env)
    line = first_failure(result, "notifications", 2)
    assert "URL 2 (nonsense) of MODERATION_NOTIFY_URLS is not an Apprise URL" in line
    assert "s3cret" not in result.stdout + result.stderr


def test_notify_test_sends_one_message_to_each_url(site: dict[str, str], webhook: Webhook) -> None:
    env = {
        **site,
        "MODERATION_NOTIFY_URLS": webhook.url(),
        "MODERATION_REVIEW_URL": "https://x.test/",
    }

    untested = check(env)
    assert untested.returncode == 0 and webhook.posts == []
    sent = check(env, "--notify-test")

    assert sent.returncode == 0, sent.stdout
    assert "a test message was sent to each" in lines_of(sent.stdout)["notifications"]
    assert webhook.messages()[0][0] == "moderation: a test message"
    dead = {**env, "MODERATION_NOTIFY_URLS": f"json://127.0.0.1:{free_port()}/hook"}
    line = first_failure(check(dead, "--notify-test"), "notifications", 2)
    assert "the test message to URL 1 (json) could not be sent" in line


def test_a_review_url_that_is_not_http_exits_2(site: dict[str, str]) -> None:
    line = first_failure(
        check({**site, "MODERATION_REVIEW_URL": "review.example/mod"}), "review URL", 2
    )
    assert "MODERATION_REVIEW_URL is not an http(s) address" in line


def test_json_names_the_first_failing_part(site: dict[str, str], ollama: FakeOllama) -> None:
    ollama.configure(models={})
    result = check({**site, "MODERATION_REVIEW_URL": "nope"}, "--json")
    assert result.returncode == 4
    document = json.loads(result.stdout)
    assert (document["failed"], document["exit_code"]) == ("model", 4)
    failing = [p for p in document["parts"] if p["status"] == "FAIL"]
    assert [(p["name"], p["exit_code"]) for p in failing] == [("model", 4), ("review URL", 2)]


def test_a_wordpress_rest_site_before_its_first_batch(tmp_path: Path, ollama: FakeOllama) -> None:
    from tests.process.test_write_intents import environment
    from tests.tlsfiles import serve_handler
    from tests.unit.test_wordpress_rest import FakeWordPress

    wordpress = FakeWordPress({1: "Thanks!", 2: "Nice photo", 3: "Interesting"})
    with serve_handler(wordpress.handle) as url:
        result = check({**environment(url, ollama, tmp_path), "MODERATION_QUALIFY": "auto"})

    assert result.returncode == 0, result.stdout + result.stderr
    lines = lines_of(result.stdout)
    assert lines["site"].startswith(f"ok WordPress at {url}: the user may moderate comments")
    assert lines["comments"].endswith("; 3 pending")
    assert (
        lines["tool's tables"].startswith("note ")
        and "the first batch creates them" in lines["tool's tables"]
    )
    assert lines["qualification"].startswith("note 'sentiments' is not qualified yet")
    assert {method for method, _, _, _ in wordpress.sent} == {"GET"}
    assert not (tmp_path / "own.db").exists()
