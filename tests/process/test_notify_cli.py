"""Notifications from the real `moderate` program: its batch, its failures and `serve`'s timer."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.fakeollama import FakeOllama, free_port
from tests.helpers import create_site_table
from tests.notifyservers import Webhook
from tests.processes import moderate, start_moderate

pytestmark = pytest.mark.integration

SECRETS = ("S3cretPathToken", "hunter2secret", "WrongPassw0rd")


@pytest.fixture(scope="module")
def ollama_rules() -> list[dict[str, Any]]:
    return [{"contains": "idiot", "answer": '{"label": "negative"}'}]


def env_for(url: str, ollama: FakeOllama | str, targets: str) -> dict[str, str]:
    return {
        "MODERATION_DATABASE_URL": url,
        "OLLAMA_HOST": ollama if isinstance(ollama, str) else ollama.url,
        "MODERATION_TIMEOUT": "5",
        "MODERATION_LOAD_TIMEOUT": "10",
        "MODERATION_NOTIFY_URLS": targets,
        "MODERATION_NOTIFY_EVERY": "1h",
    }


def database_dump(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


def test_a_batch_notifies_and_no_secret_leaks(
    tmp_path: Path, ollama: FakeOllama, webhook: Webhook
) -> None:
    path = tmp_path / "site.db"
    url = f"sqlite:///{path}"
    create_site_table(url, ["Thanks, lovely", "you idiot"])
    closed = free_port()
    targets = ", ".join(
        (
            webhook.url("/hooks/S3cretPathToken"),
            f"json://hook:hunter2secret@127.0.0.1:{closed}/x",
            f"mailto://mod:WrongPassw0rd@127.0.0.1:{closed}?from=a@example.com&to=b@example.com"
            "&mode=insecure",
        )
    )
    env = env_for(url, ollama, targets)

    first = moderate("--json", env=env)
    assert first.returncode == 0, first.stderr  # two deliveries failed: the batch did not
    report = json.loads(first.stdout)
    assert report["notifications"] == {"sent": 1, "failed": 2, "suppressed": 0}
    assert (report["approved"], report["held"]) == (1, 1)
    assert webhook.paths == ["/hooks/S3cretPathToken"]
    assert webhook.messages() == [
        (
            "moderation: 1 comment waits for a human",
            "1 comment waits for a human:\n- negative: 1\nThe oldest has waited 0 min.",
        )
    ]
    assert "notification 'waiting' could not be sent to URL 2 (json)" in first.stderr
    assert "notification 'waiting' could not be sent to URL 3 (mailto)" in first.stderr

    second = moderate("--json", env=env)  # an hourly cron an hour early: nothing new
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["notifications"] == {"sent": 0, "failed": 0, "suppressed": 3}
    assert len(webhook.posts) == 1

    text = moderate(env=env)  # the plain report too
    everything = "\n".join(
        (first.stdout, first.stderr, second.stdout, second.stderr, text.stdout, text.stderr)
    )
    everything += database_dump(path)
    for secret in SECRETS:
        assert secret not in everything


def test_a_refused_batch_notifies_and_keeps_its_exit_code(
    tmp_path: Path, ollama: FakeOllama, webhook: Webhook
) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["hello"], table="posts")  # no `comments` table
    result = moderate("--json", env=env_for(url, ollama, webhook.url("/hooks/S3cretPathToken")))
    assert result.returncode == 2, result.stderr
    document = json.loads(result.stdout)
    assert (document["status"], document["exit_code"]) == ("failed", 2)
    assert document["notifications"] == {"sent": 1, "failed": 0, "suppressed": 0}
    [(title, body)] = webhook.messages()
    assert title == "moderation: batch failed (exit 2)"
    assert body.startswith("A batch failed with exit code 2: ")
    assert body.endswith("\nNothing was approved by it.")
    assert "S3cretPathToken" not in result.stdout + result.stderr


def test_ollama_down_is_told_with_exit_4(tmp_path: Path, webhook: Webhook) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["hello"])
    result = moderate(env=env_for(url, f"http://127.0.0.1:{free_port()}", webhook.url()))
    assert result.returncode == 4, result.stderr
    [(title, _body)] = webhook.messages()
    assert title == "moderation: batch failed (exit 4)"


def test_serve_notifies_from_its_timer(
    tmp_path: Path, ollama: FakeOllama, webhook: Webhook
) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["you idiot"])
    process = start_moderate(
        "serve", "--every", "1h", "--run-now", env=env_for(url, ollama, webhook.url())
    )
    try:
        webhook.wait_for(1, timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0
    assert webhook.messages()[0][0] == "moderation: 1 comment waits for a human"
