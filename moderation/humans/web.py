"""The review page: a small aiohttp.web app over :class:`ReviewQueue`.

aiohttp is already here (it carries the model requests), so the page costs no new dependency.
Comments are hostile input: the page is rendered inert (see ``review_render``) and a
Content-Security-Policy allows only the page's own script file. Every write is a POST that
must carry the page's CSRF token and come from the page's own origin; on loopback the Host
header must name loopback too (a DNS-rebinding page cannot pass). Off loopback a token is
required, asked for once and then kept in an HttpOnly cookie.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
import secrets
import signal
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from moderation.errors import ConfigurationError, ModerationError
from moderation.humans.queue import ReviewQueue
from moderation.humans.render import render
from moderation.settings import Settings
from moderation.site.table import CommentsTable
from moderation.storage import migrate
from moderation.storage.engines import connected
from moderation.vocabulary import Outcome

log = logging.getLogger(__name__)

COOKIE = "moderation_review"
PAGE_SIZE = 20
MAX_NOTICES = 256
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_PAGE = re.compile(r"[0-9]{1,6}")
STATIC = {"review.js": "text/javascript", "review.css": "text/css"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
            "(16 characters or more) to serve beyond loopback"
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
    ) -> None:
        self.queue = queue
        self.reviewer = reviewer
        self.token = token
        self.page_size = page_size
        self.csrf = secrets.token_urlsafe(32)
        self.session = secrets.token_urlsafe(32)
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
        app.router.add_post("/approve", self.approve)
        app.router.add_post("/reject", self.reject)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await self._checked(request, handler)
        except web.HTTPException as exc:
            _secure(exc.headers)
            raise
        except ModerationError as exc:
            # A database failure: one line, no traceback (its parameters hold comment text).
            log.error("review page: %s", exc.message)
            response = self._error(503, exc.message.splitlines()[0])
        except Exception as exc:  # a bug: still a page with the same headers, and one line
            log.error(
                "review page: %s on %s %s%s",
                type(exc).__name__,
                request.method,
                request.path,
                _where(exc),
            )
            response = self._error(500, "Something went wrong; nothing else was changed.")
        _secure(response.headers)
        return response

    async def _checked(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.allowed_hosts is not None and request.host not in self.allowed_hosts:
            return self._error(421, "This page answers on its own address only.")
        if request.method == "POST":
            if not _same_origin(request):
                return self._error(403, "Refused: the request did not come from this page.")
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
        return hmac.compare_digest(cookie.encode(), self.session.encode())

    def _render(self, template: str, status: int = 200, **values: Any) -> web.Response:
        html = render(template, csrf=self.csrf, **values)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    def _error(self, status: int, message: str) -> web.Response:
        return self._render("review_message.html.j2", status, message=message)

    async def index(self, request: web.Request) -> web.Response:
        number = _page_number(request.query.get("page"))
        page = await asyncio.to_thread(self.queue.page, number, self.page_size)
        if number and not page.items and page.total:
            last = (page.total - 1) // self.page_size
            page = await asyncio.to_thread(self.queue.page, last, self.page_size)
        notice = self.notices.get(request.query.get("notice", ""))
        return self._render(
            "review.html.j2",
            page=page,
            notice=notice,
            reviewer=self.reviewer,
            can_reject=self.queue.comments.can_reject,
        )

    async def static_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=self.static[name], content_type=STATIC[name])

    async def login_form(self, request: web.Request) -> web.Response:
        if self.token is None or self._signed_in(request):
            raise web.HTTPSeeOther("/")
        return self._render("review_login.html.j2", wrong=False)

    async def login(self, request: web.Request) -> web.Response:
        if self.token is None:
            raise web.HTTPSeeOther("/")
        given = str((await request.post()).get("token", ""))
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            await asyncio.sleep(1.0)  # slows guessing
            return self._render("review_login.html.j2", 403, wrong=True)
        response = web.Response(status=303, headers={"Location": "/"})
        response.set_cookie(
            COOKIE, self.session, httponly=True, samesite="Strict", path="/", secure=request.secure
        )
        return response

    async def approve(self, request: web.Request) -> web.Response:
        return await self._rule(request, Outcome.APPROVED)

    async def reject(self, request: web.Request) -> web.Response:
        if not self.queue.comments.can_reject:
            return self._error(400, "This comments table has no rejected state.")
        return await self._rule(request, Outcome.REJECTED)

    async def _rule(self, request: web.Request, outcome: str) -> web.Response:
        form = await request.post()
        key, seen = str(form.get("comment_id", "")), str(form.get("text_hash", ""))
        if not key or not seen:
            return self._error(400, "The form is incomplete.")
        ruling = await asyncio.to_thread(self.queue.rule, key, seen, outcome, self.reviewer)
        verb = "Approved" if outcome == Outcome.APPROVED else "Rejected"
        if ruling.written:
            notice = ("done", f"{verb} comment {key}.")
        else:
            notice = ("changed", f"Comment {key} was left as it is: {ruling.change}.")
        notice_id = secrets.token_urlsafe(8)
        self.notices[notice_id] = notice
        while len(self.notices) > MAX_NOTICES:
            self.notices.popitem(last=False)
        page = _page_number(str(form.get("page", "0")))
        raise web.HTTPSeeOther(f"/?page={page}&notice={notice_id}")


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


async def serve(
    settings: Settings,
    host: str,
    port: int,
    reviewer: str,
    announce: Callable[[str], None],
) -> None:
    """Serve the page until SIGINT or SIGTERM; ``announce`` gets its URL once it listens."""
    check_exposure(host, settings)
    with connected(settings.database_url) as engine:
        comments = await asyncio.to_thread(CommentsTable.reflect, engine, settings)
        await asyncio.to_thread(migrate.ensure_current, engine, settings.auto_migrate)
        token = settings.review_token.get_secret_value() if settings.review_token else None
        # The session id stands in for a run id on the reviewer's audit rows.
        queue = ReviewQueue(engine, comments, str(uuid.uuid4()))
        review = ReviewApp(queue, reviewer, token=token)
        runner = web.AppRunner(review.build(), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            try:
                await site.start()
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                ) from exc
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
