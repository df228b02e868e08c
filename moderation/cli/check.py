"""``moderate check``: whether everything a batch needs is in place, one line per part.

The parts, in the order a batch meets them: the model servers, the model on them, their log
probabilities, the site (its database or its API), the comments table and its mapping, the
tool's own tables, the model's qualification, the lease, the notification URLs and the review
page's address. Each line says what it found, and, when it fails, what to do; the command exits
with the documented code of the first failing part (0 when none fails).

A check changes nothing: it creates no file, table or row, takes no lease, and loads no model
(the servers are asked ``/api/tags`` and ``/api/version``, as ``ollama list`` would). A SQLite
database is opened read-only, and only when it exists. ``--notify-test`` is the one exception,
asked for by name: it sends one test message to each notification URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from moderation.cli.common import load_settings, print_json, promise_json
from moderation.vocabulary import ExitCode

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from moderation.settings import Settings

OK, NOTE, FAIL, SKIP = "ok", "note", "FAIL", "skip"


@dataclass
class Part:
    name: str
    status: str  # OK, NOTE (works, worth knowing), FAIL, SKIP (an earlier part failed)
    detail: str
    action: str = ""  # what to do, when it fails
    exit_code: int | None = None  # the documented code, when it fails

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def line(self) -> str:
        text = self.detail
        if self.action and self.action not in text:
            text += f"; {self.action}"
        return f"{self.status:<4}  {self.name:<18} {text}"


def failed(name: str, exc: Exception, action: str = "") -> Part:
    """A part that failed with one of the tool's errors: its message and exit code."""
    from moderation.errors import ModerationError

    if not isinstance(exc, ModerationError):
        raise exc
    message = exc.message.splitlines()[0] if exc.message else type(exc).__name__
    return Part(name, FAIL, message, action, int(exc.exit_code))


def check_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    notify_test: Annotated[
        bool,
        typer.Option("--notify-test", help="Send one test message to each notification URL."),
    ] = False,
) -> None:
    """Check the model servers, the model, the site, the tool's tables, the qualification,
    the lease and the notification settings; change nothing."""
    promise_json(as_json)
    settings = load_settings()
    parts, digest = asyncio.run(_model_parts(settings))
    parts += _site_parts(settings, digest)
    parts += [_notifications(settings, notify_test), _review_url(settings)]
    first = next((part for part in parts if part.failed), None)
    code = ExitCode.OK.value if first is None else first.exit_code or ExitCode.FAILED.value
    if as_json:
        print_json(
            {
                "parts": [_json(part) for part in parts],
                "failed": None if first is None else first.name,
                "exit_code": code,
            }
        )
    else:
        from moderation.redact import redact
        from moderation.text.inert import one_line

        for part in parts:
            typer.echo(one_line(redact(part.line())))
        if first is None:
            typer.echo("moderate check: every part is in place")
        else:
            typer.echo(f"moderate check: exit {code}, the first failing part: {first.name}")
    raise typer.Exit(code)


def _json(part: Part) -> dict[str, Any]:
    from moderation.redact import redact

    document = asdict(part)
    document["detail"] = redact(part.detail)
    document["action"] = redact(part.action) or None
    return document


# --- The model servers -----------------------------------------------------------------------


@dataclass
class _Probe:
    name: str
    error: Exception | None = None  # unreachable
    missing: bool = False
    digest: str | None = None
    version: str | None = None


async def _model_parts(settings: Settings) -> tuple[list[Part], str | None]:
    """The servers, the model and its log probabilities; and the model's digest (None when
    some server does not serve it)."""
    from moderation.errors import ModelMissing, OllamaUnavailable
    from moderation.model.host import OllamaHost, default_transport_factory

    factory = default_transport_factory(settings)
    hosts = [OllamaHost(spec, settings, factory) for spec in settings.hosts]

    async def probe(host: OllamaHost) -> _Probe:
        found = _Probe(host.name)
        try:
            found.digest = await host.check_model(settings.model)  # /api/tags
        except ModelMissing:
            found.missing = True
        except OllamaUnavailable as exc:
            found.error = exc
            return found
        found.version = await host.server_version()  # /api/version
        return found

    try:
        probes = await asyncio.gather(*(probe(host) for host in hosts))
    finally:
        for host in hosts:
            await host.close()
    return _model_lines(settings, probes)


def _model_lines(settings: Settings, probes: list[_Probe]) -> tuple[list[Part], str | None]:
    from moderation.model.host import LOGPROBS_SINCE, offers_logprobs

    down = [p for p in probes if p.error is not None]
    up = [p for p in probes if p.error is None]
    parts: list[Part] = []
    if down:
        first = failed("model server", down[0].error)  # type: ignore[arg-type]
        if up:
            first.detail += f" ({len(up)} of {len(probes)} answer; a batch leaves it out)"
        parts.append(first)
    else:
        versions = ", ".join(f"{p.name} (Ollama {p.version or 'of unknown version'})" for p in up)
        parts.append(Part("model server", OK, f"reachable: {versions}"))
    if not up:
        parts.append(Part("model", SKIP, "no server answered"))
        parts.append(Part("log probabilities", SKIP, "no server answered"))
        return parts, None

    model = settings.model
    missing = [p for p in up if p.missing]
    digests = {p.digest for p in up if not p.missing}
    digest: str | None = None
    if missing:
        where = ", ".join(p.name for p in missing)
        parts.append(
            Part(
                "model",
                FAIL,
                f"model {model!r} not found on {where}",
                "run `moderate model create` (it builds the model on every server)",
                ExitCode.OLLAMA,
            )
        )
    elif len(digests) > 1:
        parts.append(
            Part(
                "model",
                FAIL,
                f"the servers hold different versions of {model!r}",
                "run `moderate model create` against each of them",
                ExitCode.USAGE,
            )
        )
    else:
        digest = digests.pop() or ""
        shown = f"digest {digest.removeprefix('sha256:')[:12]}" if digest else "no digest"
        parts.append(Part("model", OK, f"{model!r} on every server ({shown})"))

    if settings.min_confidence == 0:
        parts.append(Part("log probabilities", OK, "not needed: MODERATION_MIN_CONFIDENCE=0"))
        return parts, digest
    since = ".".join(str(n) for n in LOGPROBS_SINCE)
    without = [p for p in up if p.version is not None and offers_logprobs(p.version) is False]
    unknown = [p for p in up if p.version is None or offers_logprobs(p.version) is None]
    if without:
        names = ", ".join(f"{p.name} (Ollama {p.version})" for p in without)
        parts.append(
            Part(
                "log probabilities",
                FAIL,
                f"not offered by {names}: no answer could have a confidence, so none would "
                "be approved",
                f"upgrade Ollama to {since} or later (or set MODERATION_MIN_CONFIDENCE=0 to "
                "approve without a confidence)",
                ExitCode.OLLAMA,
            )
        )
    elif unknown:
        names = ", ".join(p.name for p in unknown)
        parts.append(
            Part(
                "log probabilities",
                NOTE,
                f"cannot tell from the version of {names}; a batch asks one token to find out",
            )
        )
    else:
        parts.append(Part("log probabilities", OK, f"offered (Ollama {since} or later)"))
    return parts, digest


# --- The site and the tool's tables ------------------------------------------------------------


@contextmanager
def _read_only(url: str) -> Iterator[Engine | None]:
    """A read-only engine on ``url``; None for a SQLite file that does not exist (opening it
    would create it)."""
    from sqlalchemy.engine import make_url

    from moderation.errors import ConfigurationError
    from moderation.storage.engines import connected, require_existing_sqlite_file

    try:
        require_existing_sqlite_file(make_url(url))
    except ConfigurationError:
        yield None
        return
    with connected(url, read_only=True) as engine:
        yield engine


def _site_parts(settings: Settings, digest: str | None) -> list[Part]:
    from moderation.errors import ModerationError
    from moderation.site.open import is_rest

    names = ("site", "comments", "tool's tables", "qualification", "lease")
    try:
        with _read_only(settings.database_url) as engine:
            parts = _rest_site(settings) if is_rest(settings) else _table_site(settings, engine)
            failing = next((part for part in parts if part.failed), None)
            if failing is not None:
                reason = f"needs the {failing.name} part, which failed"
                return parts + [Part(name, SKIP, reason) for name in names[len(parts) :]]
            return parts + _own_parts(settings, engine, digest)
    except ModerationError as exc:  # an engine that cannot be made: a driver, a URL
        return [failed("site", exc)] + [Part(name, SKIP, "the site failed") for name in names[1:]]


def _table_site(settings: Settings, engine: Engine | None) -> list[Part]:
    from moderation.errors import ModerationError
    from moderation.site.table import CommentsTable
    from moderation.storage.engines import CREATED_BY, read_transaction

    where = settings.safe_database_url
    if engine is None:
        return [
            Part(
                "site",
                FAIL,
                f"the SQLite database {where} does not exist",
                f"check MODERATION_DATABASE_URL ({CREATED_BY})",
                ExitCode.USAGE,
            )
        ]
    try:
        with read_transaction(engine) as conn:
            conn.exec_driver_sql("SELECT 1")
    except ModerationError as exc:
        return [failed("site", exc, "check the server, the user and the password in the URL")]
    parts = [Part("site", OK, f"database {where} answers")]
    try:
        table = CommentsTable.reflect(engine, settings)
        pending = table.count_pending(engine)
    except ModerationError as exc:
        return [*parts, failed("comments", exc)]
    values = table.values
    status = f"status {table.approved.name!r} ({_value(values.pending)} pending, "
    status += f"{_value(values.approved)} approved"
    if table.rejected_value is not None:
        status += f", {_value(table.rejected_value)} rejected"
    status += ")"
    removed = "" if table.removed is None else f", removed {table.removed.name!r}"
    parts.append(
        Part(
            "comments",
            OK,
            f"table {table.table.name!r}: id {table.id.name!r}, body {table.body.name!r}, "
            f"{status}{removed}; {pending} pending",
        )
    )
    return parts


def _value(value: object) -> str:
    """A status value as the column holds it: true/false for a boolean, quoted text."""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


def _rest_site(settings: Settings) -> list[Part]:
    from moderation.errors import ModerationError
    from moderation.site.wordpress_rest import WordPressRest

    site = WordPressRest(settings)
    try:
        site.check()
        pending = site.count_pending()
    except ModerationError as exc:
        return [failed("site", exc)]
    finally:
        site.close()
    url = settings.wordpress_url
    return [
        Part("site", OK, f"WordPress at {url}: the user may moderate comments"),
        Part("comments", OK, f"WordPress's comments through its REST API; {pending} pending"),
    ]


def _own_parts(settings: Settings, engine: Engine | None, digest: str | None) -> list[Part]:
    """The tool's tables, the qualification and the lease, read from the tool's database."""
    from moderation.errors import ModerationError
    from moderation.storage import migrate

    if engine is None:  # a WordPress REST site's own database, not made yet
        note = "not created yet: the first batch creates them (or `moderate db upgrade`)"
        return [
            Part("tool's tables", NOTE, f"{settings.safe_database_url} {note}"),
            _not_qualified_yet(settings, "qualification"),
            Part("lease", OK, "free (no batch has run)"),
        ]
    try:
        revision = migrate.current_revision(engine)
    except ModerationError as exc:
        return [failed("tool's tables", exc)] + [
            Part(name, SKIP, "the tool's tables failed") for name in ("qualification", "lease")
        ]
    parts = [_tables(settings, revision)]
    current = revision == migrate.HEAD
    parts.append(_qualification(settings, engine, digest, current))
    parts.append(_lease(settings, engine, revision is not None))
    return parts


def _tables(settings: Settings, revision: str | None) -> Part:
    from moderation.storage import migrate

    if revision == migrate.HEAD:
        return Part("tool's tables", OK, f"at revision {revision}, this version's")
    found = "missing" if revision is None else f"at revision {revision}, before {migrate.HEAD}"
    if settings.auto_migrate:
        return Part("tool's tables", NOTE, f"{found}: the next batch migrates them")
    return Part(
        "tool's tables",
        FAIL,
        f"{found}, and MODERATION_AUTO_MIGRATE is off",
        "run `moderate db upgrade`",
        ExitCode.USAGE,
    )


def _not_qualified_yet(settings: Settings, name: str) -> Part:
    if settings.qualify == "off":
        return _qualify_off()
    return Part(
        name,
        NOTE,
        f"{settings.model!r} is not qualified yet: the first batch qualifies it on the "
        "labelled fixtures before it approves anything (or run `moderate qualify`)",
    )


def _qualify_off() -> Part:
    return Part(
        "qualification",
        NOTE,
        "off (MODERATION_QUALIFY=off): approvals rest on the model's own confidence alone",
    )


def _qualification(settings: Settings, engine: Engine, digest: str | None, current: bool) -> Part:
    from moderation.errors import ModerationError
    from moderation.evaluation.evaluate import fixtures_hash, load_fixtures
    from moderation.evaluation.qualify import fixture_paths, qualification_key
    from moderation.model.host import answer_identity
    from moderation.model.prompts import load_prompt
    from moderation.storage import qualifications
    from moderation.storage.engines import read_transaction
    from moderation.storage.memory import Identity

    if settings.qualify == "off":
        return _qualify_off()
    if digest is None:
        return Part("qualification", SKIP, "needs the model's digest, which the servers lack")
    try:
        prompt = load_prompt(settings.prompt)
        paths = fixture_paths(settings)
        load_fixtures(paths)  # a broken fixture file fails qualification too
        identity = Identity(
            settings.model, digest or None, prompt.hash, answer_identity(settings.structured_output)
        )
        key = qualification_key(settings, identity, fixtures_hash(paths))
        found = None
        if current:
            with read_transaction(engine) as conn:
                found = qualifications.find(conn, key)
    except ModerationError as exc:
        return failed("qualification", exc)
    if found is None:
        return _not_qualified_yet(settings, "qualification")
    if not found.qualified:
        return Part(
            "qualification",
            FAIL,
            found.verdict(),
            "`moderate qualify` shows the table and what would change the verdict; until "
            "then every comment waits for a human (`moderate review`)",
            ExitCode.UNQUALIFIED,
        )
    return Part("qualification", OK, found.verdict())


def _lease(settings: Settings, engine: Engine, tables: bool) -> Part:
    import sqlalchemy as sa

    from moderation.batch.lease import held_message, inspect_holder, lease_name
    from moderation.errors import ModerationError
    from moderation.storage.engines import read_transaction
    from moderation.storage.tables import leases

    if not tables:
        return Part("lease", OK, "free (no batch has run)")
    try:
        with read_transaction(engine) as conn:
            row = conn.execute(
                sa.select(leases).where(leases.c.name == lease_name(settings.site_key))
            ).first()
    except ModerationError as exc:
        return failed("lease", exc)
    if row is None:
        return Part("lease", OK, "free (no batch has run)")
    if row.expires_at <= time.time():
        return Part("lease", OK, f"free (last held by {row.owner})")
    holder = inspect_holder(row.owner, row.acquired_at)
    if holder.alive is False:
        return Part(
            "lease", OK, f"free: held by {row.owner}, but {holder.reason}; the next batch takes it"
        )
    return Part(
        "lease",
        FAIL,
        held_message(row.owner, row.expires_at, holder),
        "a batch started now would exit 75: retry after the lease; repeated, a second "
        "scheduler runs batches of the same site",
        ExitCode.LEASE_HELD,
    )


# --- Telling humans ------------------------------------------------------------------------------


def _notifications(settings: Settings, send_test: bool) -> Part:
    urls = settings.notify_targets
    if not urls:
        return Part("notifications", OK, "off (MODERATION_NOTIFY_URLS is unset)")
    try:
        import apprise
    except ImportError:
        return Part(
            "notifications",
            FAIL,
            "MODERATION_NOTIFY_URLS is set, but Apprise is not installed",
            "pip install apprise (the checkout's `notify` extra: pip install '.[notify]')",
            ExitCode.USAGE,
        )
    import logging

    # Apprise's own log lines may quote a URL's parts; a URL is a secret, never shown.
    logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)
    schemes = [_scheme(url) for url in urls]
    bad = [i for i, url in enumerate(urls, 1) if not apprise.Apprise().add(url)]
    if bad:
        which = ", ".join(f"URL {i} ({schemes[i - 1]})" for i in bad)
        return Part(
            "notifications",
            FAIL,
            f"{which} of MODERATION_NOTIFY_URLS is not an Apprise URL",
            "fix it (formats: https://github.com/caronc/apprise/wiki)",
            ExitCode.USAGE,
        )
    detail = f"{len(urls)} URL{'s' if len(urls) > 1 else ''} ({', '.join(schemes)}) understood"
    if not send_test:
        return Part("notifications", OK, detail + " (`--notify-test` sends a test message)")
    return _send_test(urls, schemes, detail)


def _send_test(urls: list[str], schemes: list[str], detail: str) -> Part:
    from moderation.batch.notify import apprise_send

    send: Callable[[str, str, str], bool] = apprise_send
    title = "moderation: a test message"
    body = "Sent by `moderate check --notify-test`: this URL reaches you."
    failed_urls = [i for i, url in enumerate(urls, 1) if not _sent(send, url, title, body)]
    if failed_urls:
        which = ", ".join(f"URL {i} ({schemes[i - 1]})" for i in failed_urls)
        return Part(
            "notifications",
            FAIL,
            f"{detail}, but the test message to {which} could not be sent",
            "check that URL's host, user and password",
            ExitCode.USAGE,
        )
    return Part("notifications", OK, f"{detail}; a test message was sent to each")


def _sent(send: Callable[[str, str, str], bool], url: str, title: str, body: str) -> bool:
    try:
        return send(url, title, body)
    except Exception:
        return False


def _scheme(url: str) -> str:
    """What a URL may show of itself: its scheme, when it has a plain one."""
    scheme, separator, _ = url.partition("://")
    plain = separator and scheme.isascii() and scheme.replace("+", "").isalnum()
    return scheme.lower() if plain and len(scheme) <= 20 else "no scheme"


def _review_url(settings: Settings) -> Part:
    from urllib.parse import urlsplit

    from moderation.redact import redact_url

    url = settings.review_url
    if not url:
        if settings.notify_targets:
            return Part(
                "review URL",
                NOTE,
                "unset: the message that comments wait cannot link the review page "
                "(MODERATION_REVIEW_URL)",
            )
        return Part("review URL", OK, "unset (only notifications use it)")
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        return Part(
            "review URL",
            FAIL,
            "MODERATION_REVIEW_URL is not an http(s) address",
            "set it to the address moderators open, e.g. https://example.com/moderation/",
            ExitCode.USAGE,
        )
    return Part("review URL", OK, redact_url(url))
