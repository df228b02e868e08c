"""What every ``moderate`` command shares: settings, exit codes, and the one JSON object.

Kept apart from the command modules so that each of them imports this and nothing imports
them back: ``cli`` registers the commands of ``cli_eval``, and neither imports the other's app.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from moderation.vocabulary import exit_code_help

if TYPE_CHECKING:
    from moderation.settings import Settings

from moderation.vocabulary import ExitCode, RunStatus

log = logging.getLogger("moderation.cli")

# The epilog of `moderate --help`, generated from the exit codes themselves.
EXIT_CODES = exit_code_help()


class _Output:
    """Whether the running command promised one JSON object on stdout (``--json``)."""

    json = False
    printed = False


def promise_json(as_json: bool) -> None:
    _Output.json = as_json
    _Output.printed = False


def print_json(document: dict[str, Any]) -> None:
    """The command's one JSON object; a second call is a bug and prints nothing.

    Text stays readable (not ASCII-escaped), but characters that a terminal would obey or
    hide (controls, bidi and other format characters) are written as JSON escapes."""
    from moderation.text.inert import json_text

    if _Output.printed:
        return
    _Output.printed = True
    typer.echo(json_text(json.dumps(document, ensure_ascii=False, default=str)))


def failure_document(
    message: str, code: int, notifications: dict[str, int] | None = None
) -> dict[str, Any]:
    from moderation.redact import redact

    statuses: dict[int, RunStatus] = {
        ExitCode.LEASE_HELD: RunStatus.LEASE_HELD,
        ExitCode.INTERRUPTED: RunStatus.INTERRUPTED,
    }
    status = statuses.get(code, RunStatus.FAILED)
    document: dict[str, Any] = {
        "run_id": None,
        "status": status,
        "exit_code": code,
        "error": redact(message),
    }
    if notifications is not None:  # a batch that failed and told a human
        document["notifications"] = notifications
    return document


def say_error(message: str, kind: str = "error") -> None:
    """One line on stderr: a JSON log line when logs are JSON, so that every line is.

    A message may quote what it names (a path, a server's answer): its controls and format
    characters show as codes."""
    from moderation.redact import redact
    from moderation.text.inert import one_line

    message = one_line(redact(message))
    if _json_logs():
        log.error("moderate: %s: %s", kind, message)
    else:
        typer.echo(f"moderate: {kind}: {message}", err=True)


def fail(message: str, code: int, notifications: dict[str, int] | None = None) -> NoReturn:
    say_error(message)
    if _Output.json:
        print_json(failure_document(message, code, notifications))
    raise typer.Exit(code)


def _json_logs() -> bool:
    from moderation.logs import json_configured

    return json_configured()


@contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    from moderation.errors import ModerationError

    try:
        yield
    except ModerationError as exc:
        message = exc.message.splitlines()[0] if exc.message else type(exc).__name__
        fail(message, exc.exit_code, exc.notifications)
    except KeyboardInterrupt:
        fail("interrupted", ExitCode.INTERRUPTED)


@contextmanager
def importing() -> Iterator[None]:
    """Import the heavy modules with the cyclic garbage collector paused, then freeze what
    they made out of its way.

    Start-up makes a few hundred thousand objects that live as long as the process (modules,
    classes, SQLAlchemy's and pydantic's constructs): collecting while they are made frees
    nothing, and every later full collection would walk them all again. A tenth of the
    start-up of a batch with nothing to do (docs/performance.md).

    httpx imports its own command line (click, rich and pygments: a tenth of a batch's
    imports) when those are installed, as typer's dependencies are, and falls back to a stub
    when they are not; this process never runs httpx's command line, so it takes the stub.
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    enabled = gc.isenabled()
    gc.disable()
    try:
        with _ollamas_default_client_unused():
            yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


@contextmanager
def _ollamas_default_client_unused() -> Iterator[None]:
    """The ollama package builds a default client when it is imported (for ``ollama.chat``
    and the like), and building it loads the CA bundle: about 15 ms of every command that
    talks to a model, for a client this program never uses (it makes its own, per host).

    While the package is imported, httpx finds /dev/null as its certificate directory and
    no certificate file: nothing is loaded, and the unused client would trust no https
    server at all. SSL_CERT_FILE and SSL_CERT_DIR are as they were once it is imported.
    """
    if "ollama" in sys.modules:
        yield
        return
    saved = {name: os.environ.pop(name, None) for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    os.environ["SSL_CERT_DIR"] = os.devnull
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_settings(**overrides: Any) -> Settings:
    with importing():
        from pydantic import ValidationError

        from moderation.logs import configure
        from moderation.settings import (
            Settings,
            environment_name,
            misspelled_variables,
            requested_log_format,
        )

    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        # Say it in the chosen log format even though the settings that choose it are wrong.
        configure(requested_log_format(), "INFO")
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        where = environment_name(field) if field else "settings"
        # pydantic's "Value error, " before a validator's own words says nothing to a reader.
        message = str(first["msg"]).removeprefix("Value error, ")
        fail(f"invalid configuration: {where}: {message}", ExitCode.USAGE)
    configure(settings.log_format, settings.log_level)
    for name, source, suggestion in misspelled_variables(Path(".env")):
        hint = f"; did you mean {suggestion}?" if suggestion else ""
        log.warning("unknown variable %s (%s) is ignored%s", name, source, hint)
    return settings


def check_writable(path: Path, what: str) -> None:
    """Refuse, before any work, an output path that cannot be written.

    The nearest existing ancestor must be a writable directory (missing directories are created
    at write time), and the path itself must not be a directory or a read-only file. Nothing
    is created here.
    """
    from moderation.errors import ConfigurationError

    if path.is_dir():
        raise ConfigurationError(f"{what} {path} is a directory, not a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigurationError(f"{what} {path} is not writable")
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigurationError(f"{what} {path}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigurationError(f"{what} {path}: directory {ancestor} is not writable")


def require_database(settings: Settings, *, rest_creates: bool = False) -> None:
    """Refuse, before any work, a SQLite database that does not exist.

    Only `moderate import` and `moderate db upgrade` create the tool's database; with
    ``rest_creates``, so does a command that stores what it learns there when the site is
    WordPress's REST API (the database then holds the tool's own tables alone, as a batch's
    does). Every other command leaves no file behind: a mistyped path must not become an
    empty database that the next error takes for a site.
    """
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from moderation.site.open import is_rest
    from moderation.storage.engines import CREATED_BY, require_existing_sqlite_file

    rest = is_rest(settings)
    if rest and rest_creates:
        return
    try:
        url = make_url(settings.database_url)
    except sa.exc.ArgumentError:
        return  # said in full when the engine is made
    # With the REST preset there is nothing to import: a batch makes the database.
    created_by = "a batch (`moderate`) and `moderate db upgrade` create one" if rest else CREATED_BY
    require_existing_sqlite_file(url, created_by)
