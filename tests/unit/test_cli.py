"""The command line through typer's runner: help, subcommands, metrics file, JSON logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from moderation.cli.app import app
from moderation.storage import migrate
from tests.fakeollama import FakeOllama
from tests.helpers import create_site_table, read_table

runner = CliRunner()


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOllama]:
    rules = [{"contains": "awful", "answer": '{"label": "negative"}'}]
    with FakeOllama(models={"sentiments": None}, rules=rules) as fake:
        yield fake


@pytest.fixture
def env(server: FakeOllama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    monkeypatch.setenv("MODERATION_DATABASE_URL", url)
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    monkeypatch.setenv("MODERATION_TIMEOUT", "5")
    monkeypatch.setenv("MODERATION_QUALIFY", "off")
    return url


def test_help_lists_every_subcommand() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("import", "history", "serve", "eval", "db", "model"):
        assert command in result.output
    assert "75 another batch holds the lease" in " ".join(result.output.split())


def test_db_upgrade_creates_only_the_tools_tables(env: str) -> None:
    create_site_table(env, ["x"])
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"is at revision {migrate.HEAD}" in result.output
    tables = {r[0] for r in read_table(env, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {
        "comments",
        "moderation_alembic_version",
        "moderation_runs",
        "moderation_decisions",
        "moderation_comment_state",
        "moderation_lease",
        "moderation_outcomes",
        "moderation_qualifications",
        "moderation_notifications",
        "moderation_write_intents",
        "moderation_brake_figures",
        "moderation_brake_marks",
        "moderation_brake_sites",
    }


def test_metrics_file_has_counts_and_last_success(env: str, tmp_path: Path) -> None:
    create_site_table(env, ["lovely", "awful", "fine"])
    metrics = tmp_path / "textfile" / "moderation.prom"
    result = runner.invoke(app, ["--metrics-file", str(metrics), "--json"])
    assert result.exit_code == 0, result.output
    families = {f.name: f for f in text_string_to_metric_families(metrics.read_text())}
    by_outcome = {
        s.labels["outcome"]: s.value for s in families["moderation_batch_decisions"].samples
    }
    assert by_outcome == {
        "considered": 3,
        "approved": 2,
        "held": 1,
        "failed": 0,
        "skipped": 0,
    }
    assert families["moderation_batch_exit_code"].samples[0].value == 0
    assert families["moderation_last_success_timestamp_seconds"].samples[0].value > 0
    latency = families["moderation_model_latency_seconds"]
    count = next(s.value for s in latency.samples if s.name.endswith("_count"))
    assert count == 3
    assert oct(metrics.stat().st_mode)[-3:] == "644"


def test_json_logs_carry_the_run_id(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    create_site_table(env, ["awful " + str(i) for i in range(3)])
    monkeypatch.setenv("MODERATION_LOG_FORMAT", "json")
    monkeypatch.setenv("MODERATION_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("MODERATION_LEASE_SECONDS", "1")
    result = runner.invoke(app, ["--json"])
    assert result.exit_code == 2  # too short a lease to renew
    assert "MODERATION_LEASE_SECONDS" in result.output
    monkeypatch.setenv("MODERATION_LEASE_SECONDS", "5")
    monkeypatch.setenv("MODERATION_DEADLINE", "60")  # longer than the lease: it is renewed
    result = runner.invoke(app, ["--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert lines, "expected JSON log lines"
    assert {line["run_id"] for line in lines if line["run_id"]} == {report["run_id"]}


def test_history_without_tables_is_empty(env: str) -> None:
    create_site_table(env, [])
    result = runner.invoke(app, ["history", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


IMPORT_OLLAMA_AS_THE_COMMANDS_DO = """
import json, os, ssl
loaded = []
original = ssl.SSLContext.load_verify_locations
def recording(self, cafile=None, capath=None, cadata=None):
    loaded.append(str(cafile or capath or "cadata"))
    return original(self, cafile, capath, cadata)
ssl.SSLContext.load_verify_locations = recording
from moderation.cli.common import importing
with importing():
    import ollama
names = ("SSL_CERT_FILE", "SSL_CERT_DIR")
print(json.dumps({"loaded": loaded, "after": {n: os.environ.get(n) for n in names}}))
"""


@pytest.mark.parametrize("own", [None, "SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_the_ollama_packages_unused_default_client_loads_no_ca_bundle(
    own: str | None, tmp_path: Path
) -> None:
    """Nothing is loaded for it, and the certificate settings are as they were after."""
    import os
    import subprocess
    import sys

    import certifi

    names = ("SSL_CERT_FILE", "SSL_CERT_DIR")
    env = {k: v for k, v in os.environ.items() if k not in names}
    mine = certifi.where() if own == "SSL_CERT_FILE" else str(tmp_path)
    if own is not None:
        env[own] = mine
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_OLLAMA_AS_THE_COMMANDS_DO],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == {
        "loaded": [os.devnull],
        "after": {name: mine if name == own else None for name in names},
    }
