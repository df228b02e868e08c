"""Comment text is written by an adversary: through the real program, every surface that shows
it (the dry-run table, ``--json``, the eval report and table) shows it inert. Rich markup is
printed as written, and escapes, controls and bidi characters appear as their codes, never as
hyperlinks, hidden text, a cleared screen or reordered words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fakeollama import FakeOllama
from tests.helpers import create_site_table
from tests.processes import moderate

ESC = "\x1b"
OSC8 = "\x1b]8;"

BODIES = [
    "Nice [/quote] work",
    "[link=https://evil.example]x[/link] and [bold red]loud",
    "[conceal]hidden[/conceal] text",
    "clear \x1b[2J screen",
    "go \x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\ here",
    "bidi \u202egnp.exe \u2066isolated\u2069 \u200bzw",
    "c1 \x9b2J and del \x7f and nel \x85 end",
]
# The model server's error text reaches the table as the reason a comment stays pending.
FAULTY = "zq-fault, a comment the server fails on"
HOSTILE_ERROR = "no [/b] \x1b]8;;http://evil.example\x1b\\x\x1b]8;;\x1b\\ \u202eboom"


@pytest.fixture(scope="module")
def ollama_settings() -> dict[str, Any]:
    return {
        "faults": [
            {
                "contains": "zq-fault",
                "kind": "status",
                "status": 500,
                "body": {"error": HOSTILE_ERROR},
            }
        ],
        "latency": 0.0,
    }


@pytest.fixture
def site(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, BODIES)
    return url


def environment(url: str, ollama: FakeOllama, **extra: str) -> dict[str, str]:
    return {
        "MODERATION_DATABASE_URL": url,
        "OLLAMA_HOST": ollama.url,
        "MODERATION_TIMEOUT": "5",
        "MODERATION_LOAD_TIMEOUT": "10",
        "MODERATION_RETRIES": "0",
        # Plain output unless a test asks for a terminal's: a developer's settings stay out.
        "TTY_COMPATIBLE": "",
        "FORCE_COLOR": "",
        "NO_COLOR": "",
        **extra,
    }


def assert_inert(output: str) -> None:
    assert ESC not in output
    assert "\x9b" not in output and "\x85" not in output and "\x7f" not in output
    for char in "\u202e\u2066\u2069\u200b":
        assert char not in output, f"raw U+{ord(char):04X}"


def test_dry_run_table_shows_hostile_comments_inert(site: str, ollama: FakeOllama) -> None:
    result = moderate("--dry-run", env=environment(site, ollama, COLUMNS="250"))

    assert result.returncode == 0, result.stderr
    assert "MarkupError" not in result.stderr and "Traceback" not in result.stderr
    out = result.stdout
    assert_inert(out)
    assert_inert(result.stderr)
    # Markup is shown as written, not applied.
    assert "Nice [/quote] work" in out
    assert "[link=https://evil.example]x[/link]" in out
    assert "[conceal]hidden[/conceal]" in out
    # Escapes, controls and bidi characters as their codes.
    assert "clear <U+001B>[2J screen" in out
    assert "go <U+001B>]8;;http://evil.example<U+001B>\\click" in out
    assert "bidi <U+202E>gnp.exe <U+2066>isolated<U+2069> <U+200B>zw" in out
    assert "c1 <U+009B>2J and del <U+007F> and nel" in out


def test_dry_run_table_shows_a_servers_error_text_inert(tmp_path: Path, ollama: FakeOllama) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["fine", FAULTY])
    result = moderate("--dry-run", env=environment(url, ollama, COLUMNS="250"))

    assert result.returncode == 3, result.stderr  # one comment failed and stays pending
    assert_inert(result.stdout)
    assert "stay pending: HTTP 500: no [/b] <U+001B>]8;;http://evil.example" in result.stdout
    assert "<U+202E>boom" in result.stdout


def test_dry_run_on_a_terminal_emits_no_hyperlink_or_hidden_text(
    site: str, ollama: FakeOllama
) -> None:
    # Colours forced, as on a terminal: styles are escapes now, but only the program's own.
    env = environment(site, ollama, FORCE_COLOR="1", COLUMNS="250")
    result = moderate("--dry-run", env=env)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert ESC in out  # the colours are on
    assert OSC8 not in out
    assert "\x1b[2J" not in out
    assert "\x1b[8m" not in out  # concealed text
    for char in "\u202e\u2066\u2069\u200b\x9b\x85":
        assert char not in out
    assert "[conceal]hidden[/conceal]" in out


def test_dry_run_json_escapes_controls_and_bidi_characters(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, [*BODIES, FAULTY])
    result = moderate("--dry-run", "--json", env=environment(url, ollama))

    assert result.returncode == 3, result.stderr
    assert ESC not in result.stdout
    for char in "\u202e\u2066\u2069\u200b\x9b\x85\x7f":
        assert char not in result.stdout, f"raw U+{ord(char):04X}"
    assert "\\u001b" in result.stdout and "\\u202e" in result.stdout
    document = json.loads(result.stdout)
    # Escaped, not altered: the JSON still carries the server's text exactly.
    errors = [d["error"] for d in document["decisions"] if d["outcome"] == "failed"]
    assert errors == [f"HTTP 500: {HOSTILE_ERROR}"]
    assert_inert(result.stderr)


def test_dry_run_without_a_terminal_keeps_plain_text_readable(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["¡Qué bien! Привет, 你好 👍🏽 e\u0301"])
    result = moderate("--dry-run", env=environment(url, ollama, COLUMNS="250"))
    assert result.returncode == 0, result.stderr
    assert "¡Qué bien! Привет, 你好 👍🏽 e\u0301" in result.stdout
    assert "<U+" not in result.stdout


# --- moderate eval ------------------------------------------------------------------------


def test_eval_report_and_table_show_bidi_and_controls_as_codes(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    ollama.configure(
        rules=[{"contains": "zq-", "answer": '{"label": "positive"}'}], default_answer="no"
    )
    fixtures = tmp_path / "hostile.jsonl"
    records = [
        {
            "id": "bidi\u202e1",
            "text": "zq-1 \u202egnp.exe \u2066x\u2069 \x1b[2J <b>bold</b>",
            "label": "negative",
            "lang": "e\u202en",
            "tags": ["[link=https://evil.example]t[/link]", "tag\u2067"],
        },
        {"id": "plain", "text": "zq-2 fine", "label": "positive", "tags": ["[/quote]"]},
    ]
    fixtures.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    env = environment(
        f"sqlite:///{tmp_path / 'unused.db'}",
        ollama,
        MODERATION_EVAL_HISTORY=str(tmp_path / "history.jsonl"),
        COLUMNS="250",
    )
    report = tmp_path / "report.html"

    result = moderate("eval", str(fixtures), "--report", str(report), env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert_inert(result.stdout)
    assert "[link=https://evil.example]t[/link]" in result.stdout
    assert "tag<U+2067>" in result.stdout
    html = report.read_text(encoding="utf-8")
    for char in "\u202e\u2066\u2069\u2067\x1b":
        assert char not in html, f"raw U+{ord(char):04X}"
    assert '<span class="ctl">U+202E</span>gnp.exe' in html
    assert '<span class="ctl">U+001B</span>[2J' in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert 'tag<span class="ctl">U+2067</span>' in html
    assert "bidi" in html and '<span class="ctl">U+202E</span>1' in html


def test_eval_json_escapes_bidi_characters(tmp_path: Path, ollama: FakeOllama) -> None:
    ollama.configure(
        rules=[{"contains": "zq-", "answer": '{"label": "positive"}'}], default_answer="no"
    )
    fixtures = tmp_path / "hostile.jsonl"
    record = {"id": "a", "text": "zq-1 \u202egnp.exe", "label": "negative", "tags": ["t\u2066"]}
    fixtures.write_text(json.dumps(record) + "\n", encoding="utf-8")
    env = environment(
        f"sqlite:///{tmp_path / 'unused.db'}",
        ollama,
        MODERATION_EVAL_HISTORY=str(tmp_path / "history.jsonl"),
    )
    result = moderate("eval", str(fixtures), "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\u2066" not in result.stdout
    assert "t\u2066" in json.loads(result.stdout)["per_tag"]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_log_lines_quote_a_servers_error_text_inert(
    tmp_path: Path, ollama: FakeOllama, log_format: str
) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, [FAULTY])
    env = environment(url, ollama, MODERATION_LOG_LEVEL="DEBUG", MODERATION_LOG_FORMAT=log_format)
    result = moderate("--dry-run", "--json", env=env)

    assert result.returncode == 3, result.stderr
    assert_inert(result.stderr)
    lines = result.stderr.splitlines()
    if log_format == "json":
        lines = [json.loads(line)["message"] for line in lines]
    quoted = [line for line in lines if "HTTP 500" in line]
    assert len(quoted) == 1, result.stderr
    # One line, whatever the server's text holds.
    assert "(HTTP 500: no [/b] <U+001B>]8;;http://evil.example<U+001B>\\x" in quoted[0]
    assert "<U+202E>boom)" in quoted[0]


def test_an_error_line_shows_what_it_quotes_inert(tmp_path: Path, ollama: FakeOllama) -> None:
    missing = tmp_path / "lists\u202e\x1b[2J" / "words.txt"
    env = environment(
        f"sqlite:///{tmp_path / 'site.db'}", ollama, MODERATION_HOLD_WORDS=str(missing)
    )
    result = moderate("history", env=env, cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    assert_inert(result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "lists<U+202E><U+001B>[2J/words.txt" in lines[0]
