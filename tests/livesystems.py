"""The live comment systems the tests in ``tests/live`` run: each in a virtualenv of its own.

Isso and django-contrib-comments come from PyPI with dependencies of their own (Isso pins its
Werkzeug, Django brings its own world), so each lives in its own virtualenv under the cache
folder, never in the project's: ``.ci/run`` makes them (``ISSO_VENV``, ``DJANGO_VENV`` below).
Where one is missing a test skips with the command that installs it; under CI (``CI=true``)
it fails instead, so that a green CI never hides a system it did not run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "moderation"
ISSO_VENV = CACHE / "isso-venv"
DJANGO_VENV = CACHE / "django-venv"
ISSO_VERSION = "0.14.0"
DJANGO_VERSION = "5.2"
DJANGO_COMMENTS_VERSION = "2.2.0"


def require(problem: str | None) -> None:
    """Skip with ``problem`` on a developer's machine; fail under CI."""
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, but {problem}")
    pytest.skip(problem)


def venv_problem(venv: Path, program: str, install: str) -> str | None:
    """Why ``program`` cannot run from ``venv`` (with the command that fixes it), or None."""
    if (venv / "bin" / program).exists():
        return None
    return (
        f"needs {venv / 'bin' / program}: python3 -m venv {venv} && "
        f"{venv / 'bin' / 'pip'} install {install}"
    )


def isso_problem() -> str | None:
    return venv_problem(ISSO_VENV, "isso", f'"isso=={ISSO_VERSION}"')


def django_problem() -> str | None:
    return venv_problem(
        DJANGO_VENV,
        "django-admin",
        f'"Django=={DJANGO_VERSION}.*" "django-contrib-comments=={DJANGO_COMMENTS_VERSION}"',
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    """Until something listens on ``port``; fail early if ``process`` has exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nothing listened on 127.0.0.1:{port} within {seconds:.0f}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server this test started, and make sure it is gone."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
