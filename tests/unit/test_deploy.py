"""Static checks of the deployment files in ``deploy/``: Kubernetes, cron, systemd, Dockerfile.

Nothing is deployed or built: the manifests are parsed and their guards checked against each
other and against the program (its settings' defaults, its exit codes, its packaging).
"""

from __future__ import annotations

import configparser
import itertools
import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from moderation.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CRONJOB = DEPLOY / "kubernetes" / "cronjob.yaml"
SECRET_EXAMPLE = DEPLOY / "kubernetes" / "secret.example.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
CRONTAB = DEPLOY / "crontab"
SYSTEMD = DEPLOY / "systemd"

# A URL with a password in it: scheme://user:password@host
CREDENTIALS_IN_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|DATABASE_URL", re.IGNORECASE)
NEEDS_A_HUMAN = {2, 4, 5}  # configuration, Ollama, database
NOT_A_FAILURE = {3}  # retried next run
# Another batch holds the lease: harmless while the holder lives, but a holder that died on
# another host holds it until it expires, so 75 is retried after the lease, not ignored.
LEASE_HELD = 75
# Seconds a batch may run past MODERATION_DEADLINE at most, on top of the deadline itself:
# the model check (MODERATION_TIMEOUT), a warm-up counted outside the deadline to be safe
# (MODERATION_LOAD_TIMEOUT), and the last answers and writes (MODERATION_TIMEOUT + 15).
KILL_MARGIN = 120


def worst_case_batch_seconds(variables: dict[str, str]) -> float:
    def setting(name: str, field: str) -> float:
        return float(variables.get(name, Settings.model_fields[field].default))

    timeout = setting("MODERATION_TIMEOUT", "timeout")
    load_timeout = setting("MODERATION_LOAD_TIMEOUT", "load_timeout")
    deadline = float(variables["MODERATION_DEADLINE"])
    return deadline + timeout + load_timeout + timeout + 15


# --- cron schedules -------------------------------------------------------------------------


def _cron_field(field: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in field.split(","):
        base, slash, step_text = part.partition("/")
        step = int(step_text) if slash else 1
        if base == "*":
            start, stop = low, high
        elif "-" in base:
            first, last = base.split("-")
            start, stop = int(first), int(last)
        else:
            start = int(base)
            stop = high if slash else start
        if step < 1 or not low <= start <= stop <= high:
            raise ValueError(f"bad cron field {field!r}")
        values.update(range(start, stop + 1, step))
    return values


def schedule_period_seconds(schedule: str) -> int:
    """The shortest time between two runs of a day-independent five-field cron schedule."""
    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError(f"not a five-field cron schedule: {schedule!r}")
    minute, hour, day_of_month, month, day_of_week = fields
    if (day_of_month, month, day_of_week) != ("*", "*", "*"):
        raise ValueError(f"only day-independent schedules are understood: {schedule!r}")
    runs = sorted(h * 60 + m for h in _cron_field(hour, 0, 23) for m in _cron_field(minute, 0, 59))
    gaps = [later - earlier for earlier, later in itertools.pairwise(runs)]
    gaps.append(runs[0] + 24 * 60 - runs[-1])  # from the last run of a day to the next day's first
    return min(gaps) * 60


@pytest.mark.parametrize(
    ("schedule", "period"),
    [
        ("17 * * * *", 3600),
        ("0 * * * *", 3600),
        ("*/15 * * * *", 900),
        ("0,30 * * * *", 1800),
        ("5 */2 * * *", 7200),
        ("0 3 * * *", 86400),
        ("0 9-17 * * *", 3600),
    ],
)
def test_schedule_period_parser(schedule: str, period: int) -> None:
    assert schedule_period_seconds(schedule) == period


@pytest.mark.parametrize("schedule", ["@hourly", "17 * * *", "60 * * * *", "0 0 1 * *"])
def test_schedule_period_parser_refuses_what_it_does_not_understand(schedule: str) -> None:
    with pytest.raises(ValueError):
        schedule_period_seconds(schedule)


# --- systemd units --------------------------------------------------------------------------


class _Assignments(dict[str, Any]):
    """configparser's dict type: a repeated key adds to the list, an empty value resets it.

    This is how systemd reads list settings (ReadWritePaths=, Environment=, ExecStart=...).
    """

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, list) and value != [""] and isinstance(self.get(key), list):
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Each section's keys with the values assigned to them, in order, after the last reset."""
    parser = configparser.ConfigParser(
        strict=False,
        interpolation=None,
        delimiters=("=",),
        dict_type=_Assignments,
        default_section="systemd has no default section",
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(text)
    unit: dict[str, dict[str, list[str]]] = {}
    for section in parser.sections():
        unit[section] = {}
        for key, joined in parser.items(section):
            values = joined.split("\n")
            if "" in values:
                values = values[len(values) - values[::-1].index("") :]
            unit[section][key] = values
    return unit


def load_unit(name: str) -> dict[str, dict[str, list[str]]]:
    return parse_unit((SYSTEMD / name).read_text(encoding="utf-8"))


def single(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"[{section}] {key}= is set {len(values)} times"
    return values[0]


def words(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> list[str]:
    return [word for value in unit[section].get(key, []) for word in value.split()]


def unit_environment(unit: dict[str, dict[str, list[str]]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for assignment in words(unit, "Service", "Environment"):
        name, _, value = assignment.partition("=")
        env[name] = value
    return env


_TIMESPAN_UNITS = {
    "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3,
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip


def timespan_seconds(text: str) -> float:
    """A systemd time span: "50min", "1h 30min", "90" (seconds)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text.strip())
    assert parts and re.fullmatch(r"(\s*\d+(\.\d+)?\s*[a-z]*)+", text), f"bad time span {text!r}"
    return sum(float(number) * _TIMESPAN_UNITS[unit or "s"] for number, unit in parts)


def is_yes(value: str) -> bool:
    return value.lower() in {"1", "yes", "y", "true", "t", "on"}


def test_unit_parser_handles_repeated_keys_and_resets() -> None:
    unit = parse_unit(
        "[Service]\n"
        "# a comment\n"
        "ReadWritePaths=/a\n"
        "ReadWritePaths=/b /c\n"
        "ExecStart=/bin/true\n"
        "ExecStart=\n"
        "ExecStart=/bin/false --x=y\n"
        "CapabilityBoundingSet=\n"
    )
    assert words(unit, "Service", "ReadWritePaths") == ["/a", "/b", "/c"]
    assert unit["Service"]["ExecStart"] == ["/bin/false --x=y"]
    assert unit["Service"]["CapabilityBoundingSet"] == []


@pytest.mark.parametrize(
    ("text", "seconds"), [("50min", 3000), ("60", 60), ("1h 30min", 5400), ("2m30s", 150)]
)
def test_timespan_parser(text: str, seconds: float) -> None:
    assert timespan_seconds(text) == seconds


# --- Kubernetes -----------------------------------------------------------------------------


def load_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def find_kind(path: Path, kind: str) -> dict[str, Any]:
    found = [doc for doc in load_documents(path) if doc.get("kind") == kind]
    assert len(found) == 1, f"{path.name}: expected one {kind}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def cronjob() -> dict[str, Any]:
    return find_kind(CRONJOB, "CronJob")


@pytest.fixture(scope="module")
def job_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]
    return spec


@pytest.fixture(scope="module")
def pod_spec(job_spec: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job_spec["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec["containers"]
    assert len(containers) == 1
    only: dict[str, Any] = containers[0]
    return only


@pytest.fixture(scope="module")
def env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries = {entry["name"]: entry for entry in container["env"]}
    assert len(entries) == len(container["env"]), "an environment variable is set twice"
    return entries


def literal_env(env: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: entry["value"] for name, entry in env.items() if "value" in entry}


@pytest.fixture(scope="module")
def period(cronjob: dict[str, Any]) -> int:
    return schedule_period_seconds(cronjob["spec"]["schedule"])


def test_cronjob_identity(cronjob: dict[str, Any]) -> None:
    assert cronjob["apiVersion"] == "batch/v1"
    assert cronjob["metadata"]["name"] == "comment-moderation"
    assert cronjob["spec"].get("suspend", False) is False


def test_cronjob_runs_hourly_in_utc(cronjob: dict[str, Any], period: int) -> None:
    spec = cronjob["spec"]
    assert isinstance(spec["schedule"], str)
    assert period == 3600
    assert spec["timeZone"] == "Etc/UTC"
    # Kubernetes refuses CRON_TZ/TZ inside the schedule when timeZone is set.
    assert "TZ" not in spec["schedule"]


def test_cronjob_never_overlaps_and_never_gets_stuck(cronjob: dict[str, Any], period: int) -> None:
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    # Bounded, so that missed schedules are counted over a short window only (more than 100
    # missed schedules stop an unbounded CronJob); above the controller's 10 s sync period.
    deadline = spec["startingDeadlineSeconds"]
    assert isinstance(deadline, int)
    assert 10 < deadline < period


def test_cronjob_history_limits(cronjob: dict[str, Any]) -> None:
    assert cronjob["spec"]["successfulJobsHistoryLimit"] == 3
    assert cronjob["spec"]["failedJobsHistoryLimit"] == 5


def test_job_is_bounded_below_the_schedule_period(job_spec: dict[str, Any], period: int) -> None:
    assert isinstance(job_spec["backoffLimit"], int)
    assert 0 <= job_spec["backoffLimit"] <= 3
    active = job_spec["activeDeadlineSeconds"]
    assert isinstance(active, int)
    assert 0 < active < period
    assert job_spec["ttlSecondsAfterFinished"] > 0
    assert job_spec["template"]["spec"]["restartPolicy"] == "Never"


def test_batch_deadline_ends_before_the_job_and_the_lease(
    job_spec: dict[str, Any], env: dict[str, dict[str, Any]]
) -> None:
    deadline = float(env["MODERATION_DEADLINE"]["value"])
    assert 0 < deadline < job_spec["activeDeadlineSeconds"]
    worst = worst_case_batch_seconds(literal_env(env))
    assert worst + KILL_MARGIN <= job_spec["activeDeadlineSeconds"]
    # The lease is renewed while the batch runs: it only has to be short, not longer than it.
    lease = float(
        literal_env(env).get(
            "MODERATION_LEASE_SECONDS", Settings.model_fields["lease_seconds"].default
        )
    )
    assert lease <= 120, "a dead holder on another host blocks the next batch this long"


def test_exit_codes_that_a_retry_cannot_help_fail_the_job_at_once(
    job_spec: dict[str, Any], container: dict[str, Any]
) -> None:
    no_retry: set[int] = set()
    for rule in job_spec.get("podFailurePolicy", {}).get("rules", []):
        on_exit = rule.get("onExitCodes")
        if rule["action"] == "FailJob" and on_exit:
            assert on_exit["operator"] == "In"
            assert on_exit.get("containerName", container["name"]) == container["name"]
            no_retry.update(on_exit["values"])
    assert {2, 3} <= no_retry
    assert not {4, 5} & no_retry, "Ollama or the database may be back a minute later: retry"
    assert LEASE_HELD not in no_retry, "a dead holder's lease expires within a minute: retry"
    # Kubernetes' back-off doubles from 10 s: the last retry must come after the lease expired.
    waits = sum(10 * 2**i for i in range(job_spec["backoffLimit"]))
    assert waits > Settings.model_fields["lease_seconds"].default


def test_pod_runs_as_the_images_non_root_user(
    pod_spec: dict[str, Any], container: dict[str, Any]
) -> None:
    pod = pod_spec["securityContext"]
    own = container["securityContext"]
    uid, gid = dockerfile_user()
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == uid == 10001
    assert pod["runAsGroup"] == gid == 10001
    assert isinstance(pod["fsGroup"], int)
    assert pod["fsGroup"] > 0
    assert own.get("runAsNonRoot", True) is True
    assert own.get("runAsUser", uid) == uid
    assert own.get("runAsGroup", gid) == gid
    assert own["allowPrivilegeEscalation"] is False
    assert own["readOnlyRootFilesystem"] is True
    assert own["capabilities"]["drop"] == ["ALL"]
    assert not own["capabilities"].get("add")
    assert own.get("privileged", False) is False
    seccomp = own.get("seccompProfile", pod.get("seccompProfile"))
    assert seccomp == {"type": "RuntimeDefault"}
    assert pod_spec.get("hostNetwork", False) is False


def test_read_only_root_has_a_writable_tmp(
    pod_spec: dict[str, Any], container: dict[str, Any]
) -> None:
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    assert "/tmp" in mounts
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_container_image_and_arguments(container: dict[str, Any]) -> None:
    image = container["image"]
    assert image.startswith("registry.example.com/comment-moderation:")
    tag = image.rpartition(":")[2]
    assert tag and "/" not in tag and tag != "latest"
    assert container["args"] == ["--json"]
    assert "command" not in container, "the image's ENTRYPOINT is moderate"


def test_database_url_comes_from_a_secret(env: dict[str, dict[str, Any]]) -> None:
    url = env["MODERATION_DATABASE_URL"]
    assert "value" not in url
    assert url["valueFrom"]["secretKeyRef"] == {"name": "comment-moderation", "key": "database-url"}
    for name, entry in env.items():
        if SECRET_NAME.search(name):
            assert "value" not in entry, f"{name} must come from a Secret"


def test_environment_values_are_valid_settings(
    env: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    literal = literal_env(env)
    assert all(isinstance(value, str) for value in literal.values()), "env values are strings"
    assert literal["OLLAMA_HOST"] == "http://ollama.ollama.svc:11434"
    assert literal["MODERATION_LOG_FORMAT"] == "json"
    for name in list(os.environ):
        if name.startswith(("MODERATION_", "OLLAMA_")):
            monkeypatch.delenv(name)
    for name, value in literal.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MODERATION_DATABASE_URL", "postgresql+psycopg://moderation@db/site")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.deadline == float(literal["MODERATION_DEADLINE"])


def _quantity(text: str) -> float:
    number = re.fullmatch(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?", str(text))
    assert number, f"unexpected quantity {text!r}"
    scale = {None: 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[number.group(2)]
    return float(number.group(1)) * scale


def test_resources_are_requested_and_memory_is_limited(container: dict[str, Any]) -> None:
    requests = container["resources"]["requests"]
    limits = container["resources"]["limits"]
    assert _quantity(requests["cpu"]) == 0.1
    assert _quantity(requests["memory"]) == 128 * 2**20
    assert _quantity(limits["memory"]) == 256 * 2**20
    assert _quantity(limits["memory"]) >= _quantity(requests["memory"])


def test_no_password_in_the_cronjob_file() -> None:
    text = CRONJOB.read_text(encoding="utf-8")
    assert not CREDENTIALS_IN_URL.search(text)
    assert "CHANGE_ME" not in text
    assert [doc["kind"] for doc in load_documents(CRONJOB)] == ["CronJob"], (
        "the Secret lives in its own file, so that applying the CronJob never overwrites it"
    )


def test_secret_example_matches_the_reference_and_holds_a_placeholder(
    env: dict[str, dict[str, Any]],
) -> None:
    secret = find_kind(SECRET_EXAMPLE, "Secret")
    reference = env["MODERATION_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert secret["apiVersion"] == "v1"
    assert secret["metadata"]["name"] == reference["name"]
    url = secret["stringData"][reference["key"]]
    assert url.startswith("postgresql+psycopg://")
    assert ":CHANGE_ME@" in url


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments left out."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "FROM":
            stages.append([])
        assert stages, f"{keyword} before the first FROM"
        stages[-1].append((keyword, arguments))
    return stages


def dockerfile_user() -> tuple[int, int]:
    users = [args for keyword, args in dockerfile_stages()[-1] if keyword == "USER"]
    assert users, "the final stage sets no USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit(), "USER must be numeric, so that runAsNonRoot can verify it"
    assert group.isdigit(), "USER must give a numeric group"
    return int(user), int(group)


def env_assignments(arguments: str) -> Iterator[tuple[str, str]]:
    for word in shlex.split(arguments):
        name, equals, value = word.partition("=")
        assert equals, f"use ENV NAME=value: {arguments!r}"
        yield name, value


def test_dockerfile_has_a_builder_and_a_final_stage_on_a_pinned_base() -> None:
    stages = dockerfile_stages()
    assert len(stages) == 2
    for stage in stages:
        image = stage[0][1].split()[0]
        assert image == "python:3.12-slim"
    assert re.fullmatch(r"python:3\.12-slim\s+AS\s+builder", stages[0][0][1], re.IGNORECASE)
    builder = " ".join(args for _, args in stages[0])
    assert re.search(r"pip wheel .*\.\[postgres\]|python -m build", builder)
    final = " ".join(args for _, args in stages[1])
    assert "from=builder" in final
    assert "--no-index" in final
    assert re.search(r"pip install .*moderation\[postgres\]", final)


def test_dockerfile_copies_everything_the_wheel_is_built_from() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {"pyproject.toml", pyproject["project"]["readme"], *wheel["packages"]}
    needed.update(wheel.get("force-include", {}))
    copied: set[str] = set()
    for keyword, arguments in dockerfile_stages()[0]:
        if keyword == "COPY":
            sources = [w for w in shlex.split(arguments) if not w.startswith("--")][:-1]
            copied.update(str(PurePosixPath(source)) for source in sources)
    assert needed <= copied


def test_dockerfile_final_stage_runs_moderate_as_a_non_root_user() -> None:
    final = dockerfile_stages()[-1]
    uid, gid = dockerfile_user()
    assert uid == gid == 10001
    keywords = [keyword for keyword, _ in final]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN"), (
        "USER comes after the last RUN, so that nothing runs as root at run time"
    )
    entrypoints = [args for keyword, args in final if keyword == "ENTRYPOINT"]
    assert [json.loads(entrypoint) for entrypoint in entrypoints] == [["moderate"]]
    assert "CMD" not in keywords
    workdirs = [args for keyword, args in final if keyword == "WORKDIR"]
    assert workdirs[-1] == "/app"
    env = dict(
        assignment
        for keyword, args in final
        if keyword == "ENV"
        for assignment in env_assignments(args)
    )
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_dockerfile_bakes_in_no_secret() -> None:
    assert not CREDENTIALS_IN_URL.search(DOCKERFILE.read_text(encoding="utf-8"))
    for keyword, arguments in dockerfile_instructions():
        if keyword == "ENV":
            names = [name for name, _ in env_assignments(arguments)]
        elif keyword == "ARG":
            names = [arguments.partition("=")[0]]
        else:
            continue
        for name in names:
            assert not SECRET_NAME.search(name), f"{keyword} {name}: pass secrets at run time"


# --- crontab --------------------------------------------------------------------------------


def crontab_lines() -> tuple[dict[str, str], list[str]]:
    variables: dict[str, str] = {}
    jobs: list[str] = []
    text = CRONTAB.read_text(encoding="utf-8")
    assert text.endswith("\n"), "cron ignores a last line without a newline"
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assignment = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)", line)
        if assignment:
            variables[assignment.group(1)] = assignment.group(2)
        else:
            jobs.append(line)
    return variables, jobs


def test_crontab_runs_moderate_hourly_as_its_own_user() -> None:
    variables, jobs = crontab_lines()
    assert len(jobs) == 1
    fields = jobs[0].split(None, 6)
    assert len(fields) == 7, "five time fields, a user, a command (/etc/cron.d format)"
    schedule, user, command = " ".join(fields[:5]), fields[5], fields[6]
    assert schedule_period_seconds(schedule) == 3600
    assert user == "moderation"
    assert "%" not in command, "cron turns an unescaped % into a newline"
    assert re.search(r"/moderate --json(\s|$)", command)
    assert ">> /var/log/moderation.jsonl" in command
    # The environment file's variables are exported before moderate starts.
    assert re.search(r"set -a && \. \S*env && set \+a && ", command)
    assert "flock" not in command, "the program holds its own lease"
    assert variables.get("SHELL") == "/bin/sh"


def test_crontab_explains_the_exit_codes() -> None:
    comments = "\n".join(
        line for line in CRONTAB.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    )
    for code in NEEDS_A_HUMAN | NOT_A_FAILURE | {LEASE_HELD}:
        assert re.search(rf"^#\s+{code}\s", comments, re.MULTILINE), f"exit code {code}"
    assert "75  another batch holds the lease: a skip, harmless" not in comments


# --- systemd --------------------------------------------------------------------------------


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
}


def check_common_service(unit: dict[str, dict[str, list[str]]]) -> list[str]:
    """Checks shared by both services; returns ExecStart's words."""
    service = unit["Service"]
    assert single(unit, "Service", "User") == "moderation"
    assert single(unit, "Service", "EnvironmentFile") == "/etc/moderation/env"
    for key, value in HARDENING.items():
        assert single(unit, "Service", key) == value, key
    exec_start = shlex.split(single(unit, "Service", "ExecStart"))
    assert exec_start[0] == "/srv/moderation/.venv/bin/moderate"
    writable = {path.lstrip("-") for path in words(unit, "Service", "ReadWritePaths")}
    metrics = exec_start[exec_start.index("--metrics-file") + 1]
    assert str(PurePosixPath(metrics).parent) in writable, "the textfile collector directory"
    assert single(unit, "Service", "WorkingDirectory") in writable, "the SQLite directory"
    assert "DynamicUser" not in service
    return exec_start


def test_batch_service_is_a_oneshot_run_of_moderate() -> None:
    unit = load_unit("moderation.service")
    exec_start = check_common_service(unit)
    assert single(unit, "Service", "Type") == "oneshot"
    assert exec_start[1:] == [
        "--json",
        "--metrics-file",
        "/var/lib/node_exporter/textfile_collector/moderation.prom",
    ]
    success = {int(code) for code in words(unit, "Service", "SuccessExitStatus")}
    assert success >= NOT_A_FAILURE
    assert not success & NEEDS_A_HUMAN
    assert LEASE_HELD not in success, "a holder that died elsewhere must not pass for a skip"
    # Retried once its lease has expired; a configuration error is not retried.
    assert single(unit, "Service", "Restart") == "on-failure"
    restart = timespan_seconds(single(unit, "Service", "RestartSec"))
    assert restart > Settings.model_fields["lease_seconds"].default
    assert "2" in words(unit, "Service", "RestartPreventExitStatus")
    assert int(single(unit, "Unit", "StartLimitBurst")) <= 3


def test_batch_service_stops_itself_before_systemd_kills_it() -> None:
    unit = load_unit("moderation.service")
    timer = load_unit("moderation.timer")
    timeout = timespan_seconds(single(unit, "Service", "TimeoutStartSec"))
    assert timeout == 3000
    assert single(timer, "Timer", "OnCalendar") == "hourly"
    assert timeout + timespan_seconds(single(timer, "Timer", "RandomizedDelaySec")) < 3600
    deadline = float(unit_environment(unit)["MODERATION_DEADLINE"])
    assert deadline < timeout
    assert worst_case_batch_seconds(unit_environment(unit)) + KILL_MARGIN <= timeout


@pytest.mark.parametrize("name", ["moderation.service", "moderation-serve.service"])
def test_optional_writable_directories_do_not_stop_the_unit(name: str) -> None:
    """systemd refuses to start a unit whose ReadWritePaths= is missing, unless prefixed '-'.

    Only the StateDirectory= is created by systemd itself; every other path is optional.
    """
    unit = load_unit(name)
    created = {f"/var/lib/{d}" for d in words(unit, "Service", "StateDirectory")}
    for path in words(unit, "Service", "ReadWritePaths"):
        assert path.startswith("-") or path in created, f"{path} needs the '-' prefix"


def test_timer_starts_the_batch_service_hourly_and_catches_up() -> None:
    timer = load_unit("moderation.timer")
    assert single(timer, "Timer", "OnCalendar") == "hourly"
    assert is_yes(single(timer, "Timer", "Persistent"))
    assert 0 < timespan_seconds(single(timer, "Timer", "RandomizedDelaySec")) <= 300
    assert single(timer, "Install", "WantedBy") == "timers.target"
    target = timer["Timer"].get("Unit", ["moderation.service"])[0]
    assert target == "moderation.service"
    assert (SYSTEMD / target).is_file()


def test_serve_service_runs_the_foreground_scheduler() -> None:
    unit = load_unit("moderation-serve.service")
    exec_start = check_common_service(unit)
    assert exec_start[1:4] == ["serve", "--every", "1h"]
    assert single(unit, "Service", "Type") != "oneshot"
    assert single(unit, "Service", "Restart") == "on-failure"
    assert "2" in words(unit, "Service", "RestartPreventExitStatus")
    assert single(unit, "Service", "KillSignal") == "SIGTERM"
    # On SIGTERM `moderate serve` waits MODERATION_TIMEOUT + 15 s for the answers in flight.
    timeout = float(
        unit_environment(unit).get("MODERATION_TIMEOUT", Settings.model_fields["timeout"].default)
    )
    assert timespan_seconds(single(unit, "Service", "TimeoutStopSec")) > timeout + 15
    assert single(unit, "Install", "WantedBy") == "multi-user.target"


@pytest.mark.parametrize("name", ["moderation.service", "moderation-serve.service"])
def test_the_sqlite_databases_the_readme_names_are_writable(name: str) -> None:
    """ProtectSystem=strict makes every other path read-only: a batch on the README's Isso
    database must be able to write it and its journal beside it (the directory)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    databases = {PurePosixPath(path) for path in re.findall(r"sqlite:///(/[^'\"\s]+)", readme)}
    assert PurePosixPath("/var/lib/isso/comments.db") in databases
    writable = {path.lstrip("-") for path in words(load_unit(name), "Service", "ReadWritePaths")}
    for database in databases:
        assert str(database.parent) in writable, f"{database.parent} is read-only in {name}"
