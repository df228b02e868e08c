"""WordPress's REST API on the wire: routes, authentication, retries, and its errors.

The only module that knows httpx's and WordPress's errors: 401/403 become
:class:`SiteRefused` (exit 2), anything else that fails :class:`SiteUnavailable` (exit 5).
Reads are retried on 429, 5xx, timeouts and dropped connections, within
``MODERATION_WORDPRESS_TIMEOUT``; a write is sent once (its caller reads the comment again
when the answer is lost); a certificate the settings' authorities do not trust is never
retried. The password goes only into the Basic credentials of each request.
"""

from __future__ import annotations

from typing import Any

import httpx
import stamina

from moderation.errors import SiteRefused, SiteUnavailable
from moderation.redact import redact
from moderation.settings import Settings
from moderation.site.key import url_key
from moderation.tls import certificate_failure, tls_context

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class _Transient(Exception):
    """A failure worth one more try: 429, 5xx, a timeout or a dropped connection."""


class WordPressApi:
    """One site's REST API: ``send`` a request to a route, get WordPress's JSON back."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        assert settings.wordpress_url and settings.wordpress_user
        assert settings.wordpress_app_password is not None
        self.settings = settings
        self.base_url = url_key(settings.wordpress_url)
        self.name = redact(self.base_url)  # for every message
        self.routes: str = settings.wordpress_routes
        self.requests = 0  # sent, retries included (for the benchmark)
        self.client = httpx.Client(
            auth=(settings.wordpress_user, settings.wordpress_app_password.get_secret_value()),
            timeout=settings.wordpress_timeout,
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": "moderation"},
            # The settings' certificate authorities (nothing loaded for plain http); the
            # environment's proxy variables still apply, as httpx's own default has them.
            verify=tls_context(self.base_url, settings.certificate_authorities),
        )

    def close(self) -> None:
        self.client.close()

    def _url(self, route: str, params: dict[str, Any], style: str) -> tuple[str, dict[str, Any]]:
        base = self.base_url
        if style == "pretty":
            return f"{base}/wp-json{route}", params
        return f"{base}/", {"rest_route": route, **params}

    def send(self, method: str, route: str, params: dict[str, Any], body: Any = None) -> Any:
        """One request with retries within the timeout; the decoded answer and its headers."""
        if self.routes == "auto":
            self.routes = self._discover()
        url, query = self._url(route, params, self.routes)
        attempts = self.settings.retries + 1 if method == "GET" else 1
        try:
            for attempt in stamina.retry_context(
                on=_Transient,
                attempts=attempts,
                timeout=self.settings.wordpress_timeout,
                wait_initial=0.1,
                wait_max=2.0,
            ):
                with attempt:
                    return self._once(method, url, query, body)
        except _Transient as exc:
            raise SiteUnavailable(f"WordPress at {self.name} failed: {exc}") from exc
        raise AssertionError("unreachable")

    def _once(self, method: str, url: str, query: dict[str, Any], body: Any) -> Any:
        self.requests += 1
        try:
            answer = self.client.request(method, url, params=query, json=body)
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out after {self.settings.wordpress_timeout:g}s") from exc
        except httpx.TransportError as exc:
            tls = certificate_failure(exc)
            if tls is not None:
                raise SiteUnavailable(f"WordPress at {self.name} failed: TLS: {tls}") from exc
            raise _Transient(f"unreachable ({type(exc).__name__})") from exc
        if answer.status_code in (401, 403):
            raise SiteRefused(self._refusal(answer))
        if answer.status_code in RETRY_STATUSES:
            raise _Transient(f"HTTP {answer.status_code}{_code(answer)}")
        if answer.status_code == 404 and _code(answer) == " rest_comment_invalid_id":
            return None, answer.headers  # WordPress's own "no such comment": deleted
        if answer.status_code < 400 and _is_json(answer):
            try:
                return answer.json(), answer.headers
            except ValueError:
                pass
        # Anything else (no REST API there, a route turned off, a page that is not JSON) is
        # never read as "nothing pending".
        raise SiteUnavailable(
            f"WordPress at {self.name} answered HTTP {answer.status_code}{_code(answer)} "
            "to its REST API (check MODERATION_WORDPRESS_URL and MODERATION_WORDPRESS_ROUTES)"
        )

    def _refusal(self, answer: httpx.Response) -> str:
        return (
            f"WordPress at {self.name} refused MODERATION_WORDPRESS_USER (HTTP "
            f"{answer.status_code}{_code(answer)}): the user needs the `moderate_comments` "
            "capability (an Editor or Administrator) and MODERATION_WORDPRESS_APP_PASSWORD "
            "must be one of its Application Passwords"
        )

    def _discover(self) -> str:
        """``/wp-json/`` if the site answers there with JSON, else ``/?rest_route=``."""
        url, query = self._url("/wp/v2/comments", {"per_page": 1, "_fields": "id"}, "pretty")
        try:
            answer = self.client.get(url, params=query)
        except httpx.HTTPError:
            return "query"
        if answer.status_code in (401, 403) and _is_json(answer):
            raise SiteRefused(self._refusal(answer))
        return "pretty" if answer.status_code == 200 and _is_json(answer) else "query"


def _is_json(answer: httpx.Response) -> bool:
    return answer.headers.get("content-type", "").startswith("application/json")


def _code(answer: httpx.Response) -> str:
    """WordPress's error code (``rest_forbidden_context``...), never its full message."""
    if not _is_json(answer):
        return ""
    try:
        body = answer.json()
    except ValueError:
        return ""
    code = body.get("code") if isinstance(body, dict) else None
    return f" {code}" if isinstance(code, str) and code.isascii() and len(code) < 80 else ""
