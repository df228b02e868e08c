"""The review page: a small aiohttp.web app over :class:`ReviewQueue`.

aiohttp is already here (it carries the model requests), so the page costs no new dependency.
Comments are hostile input: the page is rendered inert (see ``review_render``) and a
Content-Security-Policy allows only the page's own script file. Every write is a POST that
must carry the page's CSRF token and come from the page's own origin; on loopback the Host
header must name loopback too (a DNS-rebinding page cannot pass). Off loopback a token is
required, asked for once per session: each sign-in gets its own random session, which expires
and can be ended (``/logout``); failed sign-ins are limited per client address and overall.
The server cuts off a request whose head or body comes too slowly and caps open connections
(overall and per address), so a few slow clients cannot starve a reviewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import signal
import time
import traceback
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from moderation.errors import ConfigurationError, ModerationError
from moderation.humans import reasons
from moderation.humans.queue import ReviewQueue, Ruling
from moderation.humans.render import render
from moderation.settings import Settings
from moderation.site.open import open_site
from moderation.storage import migrate
from moderation.storage.claim import claim
from moderation.storage.engines import connected
from moderation.vocabulary import Outcome

log = logging.getLogger(__name__)

COOKIE = "moderation_review"
PAGE_SIZE = 50
MAX_PICKS = 200  # comments one bulk ruling may name (a page's worth, and then some)
MAX_NOTICES = 256
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_PAGE = re.compile(r"[0-9]{1,6}")
STATIC = {"review.js": "text/javascript", "review.css": "text/css"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSION_LIFETIME = 8 * 3600.0  # seconds a sign-in lasts
MAX_SESSIONS = 100  # the oldest is ended beyond this many


@dataclass(frozen=True)
class ServerLimits:
    """How long a client may take to send a request, and how many connections may be open."""

    header_timeout: float = 10.0  # seconds from connecting to the end of the request head
    body_timeout: float = 10.0  # seconds to receive a request's body
    max_connections: int = 128  # open at once, from everywhere
    max_per_address: int = 16  # open at once from one address (a trusted proxy excepted)


@dataclass(frozen=True)
class LoginLimits:
    """Failed sign-ins allowed within ``window`` seconds; beyond them, 429 without a check."""

    per_address: int = 5
    overall: int = 20
    window: float = 60.0


class FailedLogins:
    """Recent failed sign-ins, per client address and overall (at most ``overall`` kept)."""

    def __init__(self, limits: LoginLimits) -> None:
        self.limits = limits
        self.overall: deque[float] = deque()
        self.by_address: dict[str, deque[float]] = {}

    def _forget_old(self, now: float) -> None:
        edge = now - self.limits.window
        while self.overall and self.overall[0] <= edge:
            self.overall.popleft()
        for address, times in list(self.by_address.items()):
            while times and times[0] <= edge:
                times.popleft()
            if not times:
                del self.by_address[address]

    def retry_after(self, address: str) -> float | None:
        """Seconds until ``address`` may try again; None when it may try now."""
        now = time.monotonic()
        self._forget_old(now)
        if len(self.overall) >= self.limits.overall:
            return self.overall[0] + self.limits.window - now
        times = self.by_address.get(address)
        if times is not None and len(times) >= self.limits.per_address:
            return times[0] + self.limits.window - now
        return None

    def failed(self, address: str) -> None:
        now = time.monotonic()
        self.overall.append(now)
        self.by_address.setdefault(address, deque()).append(now)


class ConnectionGuard:
    """Counts open connections and holds each one's deadline for its request head."""

    def __init__(self, limits: ServerLimits, trusted: frozenset[str]) -> None:
        self.limits = limits
        self.trusted = trusted
        self.open = 0
        self.by_address: Counter[str] = Counter()
        self.waiting: dict[object, _GuardedProtocol] = {}

    def admit(self, address: str) -> bool:
        if self.open >= self.limits.max_connections:
            return False
        if address not in self.trusted and self.by_address[address] >= self.limits.max_per_address:
            return False
        self.open += 1
        self.by_address[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]

    def head_received(self, handler: object) -> None:
        """A request's head arrived on this connection: its header deadline is met."""
        guarded = self.waiting.pop(handler, None)
        if guarded is not None:
            guarded.cancel_deadline()


def _raw_response(status: int, reason: str) -> bytes:
    """A whole response written straight to a connection aiohttp is not serving yet."""
    body = f"{reason}\n".encode()
    headers = {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"}
    _secure(headers)
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _GuardedProtocol(asyncio.Protocol):
    """aiohttp's protocol for one connection, admitted under the caps and given a deadline."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.address = ""
        self.admitted = False
        self.deadline: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if peer else ""
        if not self.guard.admit(self.address):
            transport.write(_raw_response(503, "Service Unavailable"))
            transport.close()
            return
        self.admitted = True
        self.transport = transport
        loop = asyncio.get_running_loop()
        self.deadline = loop.call_later(self.guard.limits.header_timeout, self._too_slow)
        self.guard.waiting[self.inner] = self
        self.inner.connection_made(transport)

    def cancel_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _too_slow(self) -> None:
        self.deadline = None
        self.guard.waiting.pop(self.inner, None)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_raw_response(408, "Request Timeout"))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.admitted:
            return
        self.admitted = False
        self.cancel_deadline()
        self.guard.waiting.pop(self.inner, None)
        self.guard.release(self.address)
        self.inner.connection_lost(exc)


class _PlainErrors(RequestHandler):
    """aiohttp's protocol, answering a malformed request with a plain page and the security
    headers: no traceback in the log, nothing of the request echoed back."""

    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        log.warning(
            "review page: answered %s to a malformed request from %s (%s)",
            status,
            request.remote,
            type(exc).__name__ if exc is not None else "no detail",
        )
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already under way")
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        response = web.Response(status=status, text=f"{status} {reason}\n")
        _secure(response.headers)
        response.force_close()
        return response


class GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a :class:`ConnectionGuard`."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard):
        super().__init__(runner)
        self.host = host
        self.port = port
        self.guard = guard

    @property
    def name(self) -> str:
        return page_url(self.host, self.port)

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        # What web.Server() makes, with plain error pages: its arguments are the runner's.
        options: dict[str, Any] = getattr(server, "_kwargs", {})

        def connection() -> _GuardedProtocol:
            return _GuardedProtocol(self.guard, _PlainErrors(server, loop=loop, **options))

        self._server = await loop.create_server(connection, self.host, self.port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, settings: Settings) -> None:
    """Refuse (exit 2) to listen beyond loopback without a token."""
    if not is_loopback(host) and settings.review_token is None:
        raise ConfigurationError(
            f"refusing to serve the review page on {host}: set MODERATION_REVIEW_TOKEN "
            "(16 characters or more; make one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(24))"`) to serve beyond '
            "loopback"
        )


def _same_origin(request: web.Request) -> bool:
    """Fetch metadata, Origin and Referer, when sent, must all name this server; none fails."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site != "same-origin":
        return False
    sources = [request.headers.get(name) for name in ("Origin", "Referer")]
    given = [source for source in sources if source is not None]
    if any(urlsplit(source).netloc != request.host for source in given):
        return False
    return bool(given) or fetch_site == "same-origin"


class ReviewApp:
    """Routes, checks and rendering; one instance per running page."""

    def __init__(
        self,
        queue: ReviewQueue,
        reviewer: str,
        *,
        token: str | None,
        page_size: int = PAGE_SIZE,
        secure_cookie: bool = False,
        trusted_proxies: frozenset[str] = frozenset(),
        session_lifetime: float = SESSION_LIFETIME,
        login_limits: LoginLimits | None = None,
        limits: ServerLimits | None = None,
    ) -> None:
        self.queue = queue
        self.reviewer = reviewer
        self.token = token
        self.page_size = page_size
        self.csrf = secrets.token_urlsafe(32)
        # Always mark the session cookie Secure (the page is reached over HTTPS through a
        # proxy); else only when a trusted proxy says so with X-Forwarded-Proto.
        self.secure_cookie = secure_cookie
        # Proxies whose X-Forwarded-Proto and X-Forwarded-For are believed; no one else's.
        self.trusted_proxies = trusted_proxies
        self.session_lifetime = session_lifetime
        # sha256 of each session id -> when it ends (time.monotonic()); oldest first.
        self.sessions: OrderedDict[bytes, float] = OrderedDict()
        self.failed_logins = FailedLogins(login_limits or LoginLimits())
        self.limits = limits or ServerLimits()
        self.connections = ConnectionGuard(self.limits, trusted_proxies)
        # Host headers accepted; None accepts any (off loopback, where the token guards).
        self.allowed_hosts: set[str] | None = None
        self.notices: OrderedDict[str, tuple[str, str]] = OrderedDict()
        static = resources.files("moderation.humans") / "static"
        self.static = {name: (static / name).read_bytes() for name in STATIC}

    def listening_on(self, host: str, port: int) -> None:
        """On loopback, accept only loopback Host headers: a DNS-rebinding page cannot pass."""
        if is_loopback(host):
            names = {host if ":" not in host else f"[{host}]", "127.0.0.1", "localhost", "[::1]"}
            self.allowed_hosts = {f"{name}:{port}" for name in names}

    def build(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        app.router.add_get("/", self.index)
        app.router.add_get("/static/{name}", self.static_file)
        app.router.add_get("/login", self.login_form)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_post("/approve", self.approve)
        app.router.add_post("/reject", self.reject)
        app.router.add_post("/bulk", self.bulk)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # The head is in: the connection met its header deadline.
        self.connections.head_received(request.protocol)
        try:
            response = await self._checked(request, handler)
        except web.HTTPException as exc:
            _secure(exc.headers)
            exc.force_close()  # one request per connection: no idle or half-sent second one
            raise
        except ModerationError as exc:
            # A database failure: one line, no traceback (its parameters hold comment text).
            log.error("review page: %s", exc.message)
            response = self._error(503, exc.message.splitlines()[0])
        except Exception as exc:  # a bug: still a page with the same headers, and one line
            log.error(
                "review page: %s on %s %r%s",
                type(exc).__name__,
                request.method,
                request.raw_path[:200],
                _where(exc),
            )
            response = self._error(500, "Something went wrong; the server's log says where.")
        _secure(response.headers)
        response.force_close()
        return response

    async def _checked(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.allowed_hosts is not None and request.host not in self.allowed_hosts:
            return self._error(421, "This page answers on its own address only.")
        if request.method == "POST":
            if not _same_origin(request):
                return self._error(403, "Refused: the request did not come from this page.")
            try:
                await asyncio.wait_for(request.read(), self.limits.body_timeout)
            except TimeoutError:
                return self._error(408, "Refused: the request's body came too slowly.")
            form = await request.post()
            given = str(form.get("csrf", ""))
            if not hmac.compare_digest(given.encode(), self.csrf.encode()):
                return self._error(403, "Refused: the form's token is missing or stale.")
        public = request.path == "/login" or request.path.startswith("/static/")
        if self.token is not None and not public and not self._signed_in(request):
            if request.method == "POST":
                return self._error(403, "Refused: sign in first.")
            raise web.HTTPSeeOther("/login")
        return await handler(request)

    def _signed_in(self, request: web.Request) -> bool:
        cookie = request.cookies.get(COOKIE, "")
        if not cookie:
            return False
        # Looked up by its hash: the time a lookup takes says nothing about the session ids.
        key = hashlib.sha256(cookie.encode()).digest()
        ends = self.sessions.get(key)
        if ends is None:
            return False
        if ends <= time.monotonic():
            del self.sessions[key]
            return False
        return True

    def _new_session(self) -> str:
        session = secrets.token_urlsafe(32)
        self.sessions[hashlib.sha256(session.encode()).digest()] = (
            time.monotonic() + self.session_lifetime
        )
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)
        return session

    def _from_trusted_proxy(self, request: web.Request) -> bool:
        return (request.remote or "") in self.trusted_proxies

    def client_address(self, request: web.Request) -> str:
        """The client's address: the peer's, or the one a trusted proxy says it forwarded."""
        if self._from_trusted_proxy(request):
            forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
            if forwarded:
                return forwarded
        return request.remote or ""

    def _over_tls(self, request: web.Request) -> bool:
        if self.secure_cookie or request.secure:
            return True
        if not self._from_trusted_proxy(request):
            return False
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return proto == "https"

    def _render(self, template: str, status: int = 200, **values: Any) -> web.Response:
        html = render(template, csrf=self.csrf, **values)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    def _error(self, status: int, message: str) -> web.Response:
        return self._render("review_message.html.j2", status, message=message)

    async def index(self, request: web.Request) -> web.Response:
        number = _page_number(request.query.get("page"))
        reason = _reason(request.query.get("reason"))
        page = await asyncio.to_thread(self.queue.page, number, self.page_size, reason)
        if number and not page.items and page.total:
            last = (page.total - 1) // self.page_size
            page = await asyncio.to_thread(self.queue.page, last, self.page_size, reason)
        notice = self.notices.get(request.query.get("notice", ""))
        return self._render(
            "review.html.j2",
            page=page,
            notice=notice,
            reviewer=self.reviewer,
            rejects_here=not self.queue.comments.can_reject,
            can_sign_out=self.token is not None,
            reasons=reasons.REASONS,
            titles=reasons.TITLES,
            plain_untrusted=reasons.plain_untrusted,
            href=_href,
        )

    async def static_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=self.static[name], content_type=STATIC[name])

    async def login_form(self, request: web.Request) -> web.Response:
        if self.token is None or self._signed_in(request):
            raise web.HTTPSeeOther("/")
        return self._render("review_login.html.j2", wrong=False, limited=False)

    async def login(self, request: web.Request) -> web.Response:
        if self.token is None:
            raise web.HTTPSeeOther("/")
        given = str((await request.post()).get("token", ""))
        # No await from here to the failure's record: parallel guesses cannot slip past.
        address = self.client_address(request)
        wait = self.failed_logins.retry_after(address)
        if wait is not None:
            response = self._render("review_login.html.j2", 429, wrong=False, limited=True)
            response.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
            return response
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            self.failed_logins.failed(address)
            log.warning("review page: a failed sign-in from %s", address)
            return self._render("review_login.html.j2", 403, wrong=True, limited=False)
        response = web.Response(status=303, headers={"Location": "/"})
        response.set_cookie(
            COOKIE,
            self._new_session(),
            httponly=True,
            samesite="Strict",
            path="/",
            secure=self._over_tls(request),
            max_age=max(1, int(self.session_lifetime)),
        )
        return response

    async def logout(self, request: web.Request) -> web.Response:
        cookie = request.cookies.get(COOKIE, "")
        self.sessions.pop(hashlib.sha256(cookie.encode()).digest(), None)
        response = web.Response(status=303, headers={"Location": "/login" if self.token else "/"})
        response.del_cookie(COOKIE, path="/", secure=self._over_tls(request), samesite="Strict")
        return response

    async def approve(self, request: web.Request) -> web.Response:
        return await self._rule(request, Outcome.APPROVED)

    async def reject(self, request: web.Request) -> web.Response:
        return await self._rule(request, Outcome.REJECTED)

    async def _rule(self, request: web.Request, outcome: str) -> web.Response:
        form = await request.post()
        key, seen = str(form.get("comment_id", "")), str(form.get("text_hash", ""))
        if not key or not seen:
            return self._error(400, "The form is incomplete.")
        ruling = await asyncio.to_thread(self.queue.rule, key, seen, outcome, self.reviewer)
        verb = _VERBS[outcome]
        if ruling.site_unchanged:
            notice = ("done", f"{verb} comment {key} here; the site's row is unchanged.")
        elif ruling.written:
            notice = ("done", f"{verb} comment {key}.")
        else:
            notice = ("changed", f"Comment {key} was left as it is: {ruling.change}.")
        raise self._back(form, notice)

    async def bulk(self, request: web.Request) -> web.Response:
        """Approve or reject every selected comment, each only if it is as the reviewer saw it."""
        form = await request.post()
        outcome = {"approve": Outcome.APPROVED, "reject": Outcome.REJECTED}.get(
            str(form.get("action", ""))
        )
        picks = [str(value).rpartition(":") for value in form.getall("pick", [])]
        if outcome is None or any(not key or not seen for key, _, seen in picks):
            return self._error(400, "The form is incomplete.")
        if len(picks) > MAX_PICKS:
            return self._error(400, f"Select at most {MAX_PICKS} comments at once.")
        if not picks:
            raise self._back(form, ("changed", "Nothing was selected."))
        rulings: list[tuple[str, Ruling]] = []
        for key, _, seen in dict.fromkeys(picks):  # each comment once, in the page's order
            ruling = await asyncio.to_thread(self.queue.rule, key, seen, outcome, self.reviewer)
            rulings.append((key, ruling))
        raise self._back(form, _bulk_notice(outcome, rulings))

    def _back(self, form: Any, notice: tuple[str, str]) -> web.HTTPSeeOther:
        """Back to the page and filter the ruling came from, with ``notice`` shown on it."""
        notice_id = secrets.token_urlsafe(8)
        self.notices[notice_id] = notice
        while len(self.notices) > MAX_NOTICES:
            self.notices.popitem(last=False)
        page = _page_number(str(form.get("page", "0")))
        reason = _reason(str(form.get("reason", "")))
        return web.HTTPSeeOther(_href(reason=reason, page=page, notice=notice_id))


_VERBS: dict[str, str] = {Outcome.APPROVED: "Approved", Outcome.REJECTED: "Rejected"}


def _bulk_notice(outcome: str, rulings: list[tuple[str, Ruling]]) -> tuple[str, str]:
    """One line for a bulk ruling: how many were written, and what kept the others."""
    written = [ruling for _, ruling in rulings if ruling.written]
    left = [(key, ruling.change) for key, ruling in rulings if not ruling.written]
    count = len(written)
    said = f"{_VERBS[outcome]} {count} comment{'' if count == 1 else 's'}"
    if written and all(ruling.site_unchanged for ruling in written):
        said += (
            " here; the site's rows are unchanged"
            if count > 1
            else " here; the site's row is unchanged"
        )
    if not left:
        return ("done", said + ".")
    reasons_left = "; ".join(f"comment {key}: {change}" for key, change in left)
    were = "was left as it is" if len(left) == 1 else "were left as they are"
    return ("changed", f"{said}. {len(left)} {were} ({reasons_left}).")


def _reason(value: str | None) -> str | None:
    """A reason filter from the query or a form: one of the reasons, else no filter."""
    return value if value in reasons.REASONS else None


def _href(reason: str | None = None, page: int = 0, notice: str | None = None) -> str:
    """The page's own address for a filter, page number and notice (each only when set)."""
    query = {"reason": reason, "page": page or None, "notice": notice}
    given = urlencode({name: value for name, value in query.items() if value is not None})
    return f"/?{given}" if given else "/"


def _secure(headers: Any) -> None:
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cache-Control"] = "no-store"


def _page_number(value: str | None) -> int:
    """A page number from the query or a form: ASCII digits only, else the first page."""
    return int(value) if value is not None and _PAGE.fullmatch(value) else 0


def _where(exc: BaseException) -> str:
    """ " at file:line" of the innermost frame: enough to find a bug, without its values."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""


def page_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


async def start_site(review: ReviewApp, host: str, port: int) -> web.AppRunner:
    """Serve ``review`` on host:port under its connection limits; the caller cleans up."""
    # After an answer to a request whose body never came, read what is left for at most a
    # second (aiohttp's default: ten), so the client sees the answer before the close.
    runner = web.AppRunner(review.build(), access_log=None, lingering_time=1.0)
    await runner.setup()
    try:
        await GuardedSite(runner, host, port, review.connections).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return runner


async def serve(
    settings: Settings,
    host: str,
    port: int,
    reviewer: str,
    announce: Callable[[str], None],
    *,
    secure_cookie: bool = False,
) -> None:
    """Serve the page until SIGINT or SIGTERM; ``announce`` gets its URL once it listens."""
    check_exposure(host, settings)
    with connected(settings.database_url) as engine, contextlib.ExitStack() as stack:
        comments = await asyncio.to_thread(stack.enter_context, open_site(engine, settings))
        await asyncio.to_thread(migrate.ensure_current, engine, settings.auto_migrate)
        await asyncio.to_thread(claim, engine, comments.site)
        token = settings.review_token.get_secret_value() if settings.review_token else None
        # The session id stands in for a run id on the reviewer's audit rows.
        queue = ReviewQueue(engine, comments, str(uuid.uuid4()))
        review = ReviewApp(
            queue,
            reviewer,
            token=token,
            secure_cookie=secure_cookie,
            trusted_proxies=frozenset(settings.review_trusted_proxies),
            session_lifetime=settings.review_session_hours * 3600,
        )
        runner = await start_site(review, host, port)
        try:
            bound = runner.addresses[0][1]
            review.listening_on(host, bound)
            announce(page_url(host, bound))
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()
