"""An operator's mistakes and a batch's sudden death, through the real program in a child process.

Each mistake must end in one line on stderr and a documented exit code, before any request to
the model server and without writing anything; a batch killed with -9 must not block the next.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from moderation.batch.lease import Lease
from tests.fakeollama import FakeOllama
from tests.helpers import create_site_table, read_table
from tests.processes import child_environment, moderate, start_moderate


@pytest.fixture(scope="module")
def ollama_rules() -> list[dict[str, Any]]:
    return [{"contains": "awful", "answer": '{"label": "negative"}'}]


@pytest.fixture(scope="module")
def ollama_settings() -> dict[str, Any]:
    return {"faults": [], "latency": 0.0}


@pytest.fixture
def site(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["lovely", "awful", "fine"])
    return url


def environment(url: str, ollama: FakeOllama, **extra: str) -> dict[str, str]:
    env = {"MODERATION_DATABASE_URL": url, "OLLAMA_HOST": ollama.url, "MODERATION_TIMEOUT": "5"}
    env.update(extra)
    return env


def requests_made(ollama: FakeOllama) -> int:
    return sum(ollama.stats()["requests"].values())


def tables(url: str) -> set[str]:
    return {r[0] for r in read_table(url, "SELECT name FROM sqlite_master WHERE type='table'")}


def assert_refused(result: subprocess.CompletedProcess[str], code: int, words: str) -> str:
    """Exit ``code``, exactly one stderr line containing ``words``, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert words in lines[0], lines[0]
    return lines[0]


# --- operator mistakes: one line, exit 2, before any request, nothing written ---------------


@pytest.mark.parametrize(
    ("variables", "words"),
    [
        ({"MODERATION_LOG_LEVEL": "LOUD"}, "MODERATION_LOG_LEVEL"),
        ({"MODERATION_TIMEOUT": "inf"}, "MODERATION_TIMEOUT"),
        ({"MODERATION_TIMEOUT": "nan"}, "MODERATION_TIMEOUT"),
        ({"MODERATION_LOAD_TIMEOUT": "inf"}, "MODERATION_LOAD_TIMEOUT"),
        ({"OLLAMA_HOST": "not a url"}, "OLLAMA_HOST"),
        ({"MODERATION_LEASE_SECONDS": "0.5"}, "MODERATION_LEASE_SECONDS"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2_before_any_request(
    site: str, ollama: FakeOllama, variables: dict[str, str], words: str
) -> None:
    result = moderate(env=environment(site, ollama, **variables))
    assert_refused(result, 2, words)
    assert requests_made(ollama) == 0
    assert tables(site) == {"comments"}
    assert read_table(site, "SELECT count(*) FROM comments WHERE approved") == [(0,)]


def test_unwritable_metrics_file_is_refused_before_the_batch(
    site: str, ollama: FakeOllama, tmp_path: Path
) -> None:
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    for target in (tmp_path, a_file / "moderation.prom"):
        result = moderate("--metrics-file", str(target), env=environment(site, ollama))
        assert_refused(result, 2, "--metrics-file")
    assert requests_made(ollama) == 0
    assert tables(site) == {"comments"}
    assert a_file.read_text() == "x"


def test_serve_refuses_an_unwritable_metrics_file_at_start(
    site: str, ollama: FakeOllama, tmp_path: Path
) -> None:
    result = moderate(
        "serve", "--every", "1h", "--run-now", "--metrics-file", str(tmp_path),
        env=environment(site, ollama),
    )  # fmt: skip
    assert_refused(result, 2, "is a directory")
    assert requests_made(ollama) == 0


def test_eval_refuses_unwritable_report_and_history_before_any_request(
    ollama: FakeOllama, tmp_path: Path
) -> None:
    env = environment("sqlite:///unused.db", ollama)
    result = moderate("eval", "--limit", "3", "--report", str(tmp_path), env=env, cwd=tmp_path)
    assert_refused(result, 2, "--report")
    history_dir = tmp_path / "history"
    history_dir.mkdir()
    env["MODERATION_EVAL_HISTORY"] = str(history_dir)
    result = moderate("eval", "--limit", "3", env=env, cwd=tmp_path)
    assert_refused(result, 2, "MODERATION_EVAL_HISTORY")
    assert requests_made(ollama) == 0
    assert list(history_dir.iterdir()) == []


def test_misspelled_variable_warns_with_the_closest_name(
    site: str, ollama: FakeOllama, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("MODERATION_BATCHSIZE=10\n")
    env = environment(site, ollama, MODERATION_CONCURENCY="4")
    result = moderate("--dry-run", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "unknown variable" in line]
    assert len(warnings) == 2, result.stderr
    assert "MODERATION_CONCURENCY" in result.stderr
    assert "did you mean MODERATION_CONCURRENCY?" in result.stderr
    assert "did you mean MODERATION_BATCH_SIZE?" in result.stderr
    assert ".env" in result.stderr


# --- the database path --------------------------------------------------------------------


def test_dry_run_and_history_never_create_a_database(ollama: FakeOllama, tmp_path: Path) -> None:
    env = {"OLLAMA_HOST": ollama.url}  # the default: sqlite:///moderation.db, not there
    for args in (("--dry-run",), ("history",), ()):
        result = moderate(*args, env=env, cwd=tmp_path)
        assert_refused(result, 2, "does not exist")
    typo = {"MODERATION_DATABASE_URL": f"sqlite:///{tmp_path / 'stie.db'}", **env}
    assert_refused(moderate("--dry-run", env=typo, cwd=tmp_path), 2, "stie.db")
    assert_refused(moderate("serve", "--every", "1h", env=typo, cwd=tmp_path), 2, "stie.db")
    assert list(tmp_path.iterdir()) == []
    assert requests_made(ollama) == 0
    # The two commands whose job is to create it still do.
    result = moderate("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "moderation.db").is_file()


# --- --json: always exactly one object -----------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "variables", "code"),
    [
        (("--json",), {"MODERATION_TIMEOUT": "inf"}, 2),
        (("--json", "--limit", "0"), {}, 2),
        (("--json",), {"MODERATION_COMMENTS_TABLE": "nope"}, 2),
        (("--json",), {"OLLAMA_HOST": "http://127.0.0.1:{port}"}, 4),
        (("--json",), {"MODERATION_DATABASE_URL": "postgresql://127.0.0.1:{port}/x"}, 5),
    ],
)
def test_json_prints_one_object_on_every_failure(
    site: str, ollama: FakeOllama, args: tuple[str, ...], variables: dict[str, str], code: int
) -> None:
    port = str(closed_port())
    env = environment(site, ollama, **{k: v.format(port=port) for k, v in variables.items()})
    result = moderate(*args, env=env)
    assert result.returncode == code, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    document = json.loads(lines[0])
    assert document["status"] == "failed"
    assert document["exit_code"] == code
    assert document["error"]
    assert "Traceback" not in result.stderr


def test_json_success_carries_the_exit_code(site: str, ollama: FakeOllama) -> None:
    result = moderate("--json", env=environment(site, ollama))
    document = json.loads(result.stdout)
    assert (result.returncode, document["exit_code"], document["status"]) == (0, 0, "done")


# --- logs -------------------------------------------------------------------------------------


def test_json_logs_keep_every_stderr_line_json_even_for_retries(
    site: str, ollama: FakeOllama
) -> None:
    # Two 503s: stamina schedules retries and logs them through its own logger.
    ollama.configure(faults=[{"times": 2, "kind": "status", "status": 503}])
    env = environment(site, ollama, MODERATION_LOG_FORMAT="json", MODERATION_CONCURENCY="2")
    result = moderate("--json", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    entries = [json.loads(line) for line in lines]  # every line, not only most
    retries = [e for e in entries if e["message"] == "stamina.retry_scheduled"]
    assert len(retries) == 2
    assert retries[0]["logger"] == "stamina"
    assert retries[0]["stamina.retry_num"] == 1
    assert any("MODERATION_CONCURENCY" in e["message"] for e in entries)


def test_config_error_with_json_logs_is_a_json_line(site: str, ollama: FakeOllama) -> None:
    env = environment(site, ollama, MODERATION_LOG_FORMAT="json", MODERATION_LOG_LEVEL="LOUD")
    result = moderate(env=env)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "MODERATION_LOG_LEVEL" in json.loads(line)["message"]


def test_log_lines_follow_a_redirected_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """A progress bar swaps sys.stderr to print log lines above itself; the handler must
    write to the stderr of the moment, not the one it saw when logging was configured."""
    import io
    import logging

    from moderation.logs import configure

    configure("text", "INFO")
    replaced = io.StringIO()
    original, sys.stderr = sys.stderr, replaced
    try:
        logging.getLogger("moderation.test").warning("above the bar")
    finally:
        sys.stderr = original
    assert "above the bar" in replaced.getvalue()
    assert "above the bar" not in capsys.readouterr().err


# --- the lease after kill -9 ----------------------------------------------------------------


def test_killed_batch_is_taken_over_at_once_on_the_same_host(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, [f"comment {i}" for i in range(40)])
    ollama.configure(latency=0.3)
    env = environment(url, ollama, MODERATION_BATCH_SIZE="1")  # the default 60 s lease
    holder = start_moderate("--json", env=env)
    try:
        deadline = time.monotonic() + 30
        while ollama.stats()["completed"] < 2:
            assert holder.poll() is None and time.monotonic() < deadline, "holder did not start"
            time.sleep(0.02)
        # Alive: the second batch stands down and says the holder looks alive.
        busy = moderate("--json", env=env)
        line = assert_refused(busy, 75, "looks alive")
        assert f"process {holder.pid} is running on this host" in line
        assert json.loads(busy.stdout)["status"] == "lease-held"
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    finally:
        holder.kill()
        holder.wait()
    [(expires_at,)] = read_table(url, "SELECT expires_at FROM moderation_lease")
    killed = time.time()
    assert expires_at > killed + 10, "the dead holder's lease has not expired yet"
    ollama.configure(latency=0.0)
    result = moderate("--json", env=env)
    elapsed = time.time() - killed
    print(f"kill -9 -> next batch done: {elapsed:.2f} s (lease had {expires_at - killed:.0f} s)")
    assert result.returncode == 0, result.stderr
    assert f"taking over the lease from {socket.gethostname()}:{holder.pid}:" in result.stderr
    assert json.loads(result.stdout)["status"] == "done"
    statuses = [r[0] for r in read_table(url, "SELECT status FROM moderation_runs")]
    assert sorted(statuses) == ["abandoned", "done"]
    assert read_table(url, "SELECT count(*) FROM comments WHERE approved = false") == [(0,)]


def _engine(url: str) -> sa.Engine:
    from moderation.storage import migrate
    from moderation.storage.engines import create_engine

    engine = create_engine(url)
    migrate.upgrade(engine)
    return engine


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_dead_holder_on_this_host_is_fenced_out_after_take_over(sqlite_url: str) -> None:
    from moderation.errors import LeaseLost
    from moderation.storage.engines import run_write

    create_site_table(sqlite_url, [])
    engine = _engine(sqlite_url)
    dead = Lease(engine, 60, owner=f"{socket.gethostname()}:{_dead_pid()}:{namespace()}gone")
    first = dead.acquire()
    second = Lease(engine, 60).acquire()
    assert second == first + 1  # the token only grows
    with pytest.raises(LeaseLost):
        run_write(engine, dead.fence)  # were it alive after all, it could not write
    engine.dispose()


def test_holder_on_another_host_is_not_taken_over(sqlite_url: str) -> None:
    from moderation.errors import LeaseHeld

    create_site_table(sqlite_url, [])
    engine = _engine(sqlite_url)
    Lease(engine, 60, owner="elsewhere.example:1:abcd").acquire()
    with pytest.raises(LeaseHeld, match="whether the holder is alive is unknown"):
        Lease(engine, 60).acquire()
    engine.dispose()


def namespace() -> str:
    """The id prefix that names this PID namespace in a lease owner (see new_owner)."""
    from moderation.batch.lease import new_owner

    ident = new_owner().split(":")[2]
    return ident.partition(".")[0] + "." if "." in ident else ""


def test_a_holder_in_another_pid_namespace_is_not_taken_for_dead(sqlite_url: str) -> None:
    """Containers with host networking share the host name, not the process table."""
    from moderation.errors import LeaseHeld

    create_site_table(sqlite_url, [])
    engine = _engine(sqlite_url)
    Lease(engine, 60, owner=f"{socket.gethostname()}:{_dead_pid()}:4026599999.abcd").acquire()
    with pytest.raises(LeaseHeld, match="another container"):
        Lease(engine, 60).acquire()
    engine.dispose()


def test_a_reused_pid_is_not_mistaken_for_the_holder() -> None:
    from moderation.batch.lease import inspect_holder

    host = socket.gethostname()
    newcomer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.2)
        owner = f"{host}:{newcomer.pid}:{namespace()}abcd"
        # The lease was taken long before this process started: the PID was reused.
        assert inspect_holder(owner, time.time() - 600).alive is False
        assert inspect_holder(owner, time.time()).alive is True
    finally:
        newcomer.kill()
        newcomer.wait()
    assert inspect_holder(f"{host}:{os.getpid()}:{namespace()}x", 0.0).alive is True


# --- serve and the metrics file -------------------------------------------------------------


def test_a_failing_report_does_not_kill_the_timer() -> None:
    from moderation.batch.scheduler import PeriodicModerator
    from moderation.settings import Settings

    calls: list[float] = []

    def batch(_settings: Settings, **kwargs: object) -> str:
        calls.append(time.monotonic())
        return "report"

    def broken_report(_report: object) -> None:
        raise PermissionError("metrics directory became read-only")

    timer = PeriodicModerator(
        Settings(), every=0.1, run_now=True, batch=batch, on_report=broken_report
    )
    timer.start()
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert timer.running
    assert timer.stop(timeout=2)
    assert len(calls) >= 3, "the timer thread died with its first failed report"
    assert timer.failures >= 2


def test_one_shot_batch_reports_even_when_the_metrics_file_fails(
    site: str, ollama: FakeOllama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from moderation.batch import prometheus as metrics_export
    from moderation.cli.app import app

    def disk_full(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(metrics_export, "write_metrics", disk_full)
    monkeypatch.setenv("MODERATION_DATABASE_URL", site)
    monkeypatch.setenv("OLLAMA_HOST", ollama.url)
    monkeypatch.setenv("MODERATION_QUALIFY", "off")
    metrics = tmp_path / "moderation.prom"
    result = CliRunner().invoke(app, ["--json", "--metrics-file", str(metrics)])
    assert result.exit_code == 7
    assert result.exception is None or isinstance(result.exception, SystemExit)
    document = json.loads(result.stdout)
    assert (document["approved"], document["held"], document["exit_code"]) == (2, 1, 7)
    assert "No space left on device" in document["error"]
    assert "could not write the metrics file" in result.stderr
    plain = CliRunner().invoke(app, ["--metrics-file", str(metrics)])
    assert plain.exit_code == 7
    assert "considered" in plain.stdout


# --- what a user sees -----------------------------------------------------------------------


def test_progress_bar_counts_answers_against_a_total(site: str, ollama: FakeOllama) -> None:
    """On a terminal the bar shows answers out of the pending count, never 'N/?'."""
    import pty
    import re

    ollama.configure(latency=0.4)
    master, slave = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "moderation"],
        env={**child_environment(environment(site, ollama)), "COLUMNS": "100"},
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    child.wait(timeout=60)
    os.close(master)
    # Erasing the bar's line is where a line printed above it starts.
    raw = b"".join(chunks).replace(b"\x1b[2K", b"\n")
    screen = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", raw).decode()
    assert child.returncode == 0, screen
    assert re.search(r"classifying.* [1-3]/3 ", screen), screen
    assert "/?" not in screen
    # The log lines arrive whole, on lines of their own, not spliced into the bar.
    assert re.search(r"^\S+ \S+ INFO \[\w{8}\] batch started on ", screen, re.MULTILINE), screen


def test_history_fits_80_columns_when_piped(site: str, ollama: FakeOllama) -> None:
    env = environment(site, ollama, COLUMNS="80")
    for _ in range(2):
        assert moderate(env=env).returncode == 0
    result = moderate("history", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), result.stdout
    assert "…" not in result.stdout
    for header in ("started (UTC)", "run", "status", "asked", "appr", "held", "fail", "exit"):
        assert header in result.stdout
    assert "model sentiments" in result.stdout
    [run, *_] = json.loads(moderate("history", "--json", env=env).stdout)
    for key in ("started_at", "finished_at"):
        assert run[key].endswith("+00:00"), run[key]


def test_dry_run_table_says_why_a_comment_failed(site: str, ollama: FakeOllama) -> None:
    ollama.configure(faults=[{"contains": "fine", "kind": "status", "status": 500}])
    env = environment(site, ollama, COLUMNS="120", MODERATION_RETRIES="0")
    result = moderate("--dry-run", env=env)
    assert result.returncode == 3, result.stderr
    [row] = [line for line in result.stdout.splitlines() if "stay pending" in line]
    assert "HTTP 500" in row


def test_eval_limit_is_a_sample_of_every_label(ollama: FakeOllama, tmp_path: Path) -> None:
    env = environment("sqlite:///unused.db", ollama)
    result = moderate("eval", "--limit", "9", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["n"] == 9
    per_label = {truth: sum(row.values()) for truth, row in document["confusion"].items()}
    assert per_label == {"positive": 3, "neutral": 3, "negative": 3}


def test_stratified_sample_is_seeded_proportional_and_in_order() -> None:
    from moderation.evaluation.evaluate import Fixture, stratified_sample

    fixtures = [Fixture(f"p{i}", "x", "positive", None, ()) for i in range(60)]
    fixtures += [Fixture(f"n{i}", "x", "negative", None, ()) for i in range(30)]
    fixtures += [Fixture(f"u{i}", "x", "neutral", None, ()) for i in range(10)]
    sample = stratified_sample(fixtures, 10)
    labels = [f.label for f in sample]
    assert (labels.count("positive"), labels.count("negative"), labels.count("neutral")) == (
        6,
        3,
        1,
    )
    assert sample == stratified_sample(fixtures, 10)  # the same sample every time
    assert sample == sorted(sample, key=fixtures.index)
    assert sample != fixtures[:10]
    assert stratified_sample(fixtures, 500) == fixtures


def test_the_command_modules_import_no_cycle() -> None:
    """Module-level imports between the package's modules form no cycle (cli <-> cli_eval)."""
    import ast

    package = Path(__file__).resolve().parents[2] / "moderation"
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = set()
        for node in tree.body:  # module level only: imports inside functions are lazy
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    imported.add(node.module.split(".")[0])
                else:
                    imported.update(alias.name for alias in node.names)
        graph[path.stem] = imported & {p.stem for p in package.glob("*.py")}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(module for module in graph if reaches(module, module, {module}))
    assert cycles == []
