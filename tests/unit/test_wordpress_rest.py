"""The wordpress-rest site against WordPress's REST API faked with respx: the exact requests,
pages, the edit guard, 401/403 as a configuration error, failures that approve nothing, and a
password that shows nowhere."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from moderation.batch.pipeline import run_batch
from moderation.comment import Comment
from moderation.errors import SiteRefused, SiteUnavailable
from moderation.settings import Settings
from moderation.site.key import url_key
from moderation.site.wordpress_rest import WordPressRest
from moderation.vocabulary import ExitCode
from tests.fakes import FakeClassifier
from tests.helpers import make_settings, read_table

URL = "https://blog.example"
PASSWORD = "abcd EFGH ijkl MNOP qrst UVWX"
NEGATIVE = '{"label": "negative"}'


class FakeWordPress:
    """The comments endpoints of WordPress 6.1 (``class-wp-rest-comments-controller.php``),
    at ``/?rest_route=`` (a site without pretty permalinks) or ``/wp-json/``."""

    def __init__(self, texts: dict[int, str], pretty: bool = False) -> None:
        self.comments = {i: {"raw": t, "status": "hold"} for i, t in texts.items()}
        self.pretty = pretty
        self.sent: list[tuple[str, str, dict[str, str], Any]] = []
        self.fail_posts: set[int] = set()  # a POST that WordPress applies but answers 500
        self.edit_before_post: dict[int, str] = {}

    def handle(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        if request.url.path.startswith("/wp-json"):
            if not self.pretty:
                return httpx.Response(301, headers={"Location": f"{URL}/"}, text="")
            route = request.url.path.removeprefix("/wp-json")
        else:
            route = params.pop("rest_route", "")
        body = json.loads(request.content) if request.content else None
        self.sent.append((request.method, route, params, body))
        if request.headers.get("authorization") != httpx.BasicAuth("mod", PASSWORD)._auth_header:
            return _json(401, {"code": "rest_not_logged_in", "message": "no"})
        parts = route.strip("/").split("/")
        if parts[-1] == "comments":
            return self.listing(params)
        comment_id = int(parts[-1])
        if comment_id not in self.comments:
            return _json(404, {"code": "rest_comment_invalid_id", "message": "Invalid ID."})
        comment = self.comments[comment_id]
        if request.method == "POST":
            if comment_id in self.edit_before_post:
                comment["raw"] = self.edit_before_post.pop(comment_id)
            comment["status"] = body["status"]
            if comment_id in self.fail_posts:
                return _json(500, {"code": "rest_comment_failed_edit", "message": "x"})
        return _json(200, self.show(comment_id))

    def show(self, comment_id: int) -> dict[str, Any]:
        c = self.comments[comment_id]
        return {"id": comment_id, "status": c["status"], "content": {"raw": c["raw"]}}

    def listing(self, params: dict[str, str]) -> httpx.Response:
        status = params.get("status", "approve")
        ids = sorted(
            i for i, c in self.comments.items() if status == "any" or c["status"] == status
        )
        if "include" in params:
            wanted = {int(i) for i in params["include"].split(",")}
            ids = [i for i in ids if i in wanted]
        per_page, page = int(params.get("per_page", 10)), int(params.get("page", 1))
        offset = int(params.get("offset") or 0) or (page - 1) * per_page
        shown = ids[offset : offset + per_page]
        pages = max(1, -(-len(ids) // per_page))
        headers = {"X-WP-Total": str(len(ids)), "X-WP-TotalPages": str(pages)}
        return _json(200, [self.show(i) for i in shown], headers)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def settings_for(tmp_path: Any, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "preset": "wordpress-rest",
        "wordpress_url": URL,
        "wordpress_user": "mod",
        "wordpress_app_password": PASSWORD,
    }
    values.update(overrides)
    return make_settings(f"sqlite:///{tmp_path / 'own.db'}", **values)


@pytest.fixture
def mocked() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


def serve(router: respx.MockRouter, wp: FakeWordPress) -> None:
    router.route(host="blog.example").mock(side_effect=wp.handle)


def test_pending_comments_are_read_by_ids_then_texts_a_hundred_at_a_time(
    mocked: respx.MockRouter, tmp_path: Any
) -> None:
    wp = FakeWordPress({i: f"comment {i}" for i in range(1, 251)})
    wp.comments[7]["status"] = "approved"
    serve(mocked, wp)
    site = WordPressRest(settings_for(tmp_path))

    pages = [page.comments for page in site.pending_pages(None, 200)]

    assert [len(p) for p in pages] == [200, 49]
    assert pages[0][0] == Comment(1, "comment 1")
    assert all(c.key != "7" for page in pages for c in page)
    listing = [s for s in wp.sent if s[1] == "/wp/v2/comments"]
    # The discovery asked /wp-json/ first, was redirected, and every request since is the
    # rest_route form.
    assert str(mocked.calls[0].request.url).startswith(f"{URL}/wp-json/wp/v2/comments?")
    assert site.routes == "query"
    assert all(str(c.request.url).startswith(f"{URL}/?rest_route=") for c in mocked.calls[1:])
    ids = [params for _, _, params, _ in listing if params.get("_fields") == "id"]
    # Each page starts at the last id already read (an overlap of one), by offset.
    assert ids == [
        {
            "status": "hold",
            "context": "edit",
            "orderby": "id",
            "order": "asc",
            "per_page": "100",
            "offset": str(offset),
            "_fields": "id",
        }
        for offset in (0, 99, 198)
    ]
    texts = [params for _, _, params, _ in listing if "include" in params]
    assert [len(p["include"].split(",")) for p in texts] == [100, 100, 49]
    assert texts[0]["status"] == "hold" and texts[0]["context"] == "edit"
    assert texts[0]["_fields"] == "id,status,content" and texts[0]["per_page"] == "100"


@pytest.mark.parametrize("others", [0, 3, 150])
def test_pages_skip_nothing_while_the_batch_and_others_moderate(
    mocked: respx.MockRouter, tmp_path: Any, others: int
) -> None:
    """The batch approves each page as it goes, and a moderator trashes ``others`` comments
    already read: the offsets shift under the reader, yet every comment is read once."""
    wp = FakeWordPress({i: f"comment {i}" for i in range(1, 501)})
    serve(mocked, wp)
    site = WordPressRest(settings_for(tmp_path, wordpress_routes="query"))
    seen: list[int] = []

    for page in site.pending_pages(None, 70):
        seen.extend(int(c.id) for c in page.comments)
        site.approve(None, page.comments[::2])  # the batch approves half of what it read
        for comment_id in [i for i in seen if wp.comments[i]["status"] == "hold"][:others]:
            wp.comments[comment_id]["status"] = "trash"

    assert seen == list(range(1, 501))


def test_pretty_routes_are_used_when_the_site_answers_there(
    mocked: respx.MockRouter, tmp_path: Any
) -> None:
    wp = FakeWordPress({1: "hello"}, pretty=True)
    serve(mocked, wp)
    site = WordPressRest(settings_for(tmp_path, wordpress_url=f"{URL}/"))

    assert site.count_pending() == 1
    assert site.routes == "pretty"
    assert all(
        str(call.request.url).startswith(f"{URL}/wp-json/wp/v2/comments") for call in mocked.calls
    )


def test_an_approval_rereads_and_writes_only_the_text_that_was_judged(
    mocked: respx.MockRouter, tmp_path: Any
) -> None:
    wp = FakeWordPress({1: "Thanks", 2: "Thanks ", 3: "thanks", 4: "Thanks", 5: "Thanks"})
    wp.comments[4]["status"] = "trash"  # a human was faster
    serve(mocked, wp)
    site = WordPressRest(settings_for(tmp_path, wordpress_routes="query"))
    judged = [Comment(i, "Thanks") for i in (1, 2, 3, 4, 5, 6)]
    del wp.comments[5]  # deleted meanwhile

    approved = site.approve(None, judged)

    assert approved == {"1"}
    posts = [(route, body) for method, route, _, body in wp.sent if method == "POST"]
    assert posts == [("/wp/v2/comments/1", {"status": "approved"})]
    rereads = [(r, p) for m, r, p, _ in wp.sent if m == "GET" and r != "/wp/v2/comments"]
    assert rereads[0] == (
        "/wp/v2/comments/1",
        {"context": "edit", "_fields": "id,status,content"},
    )
    assert [wp.comments[i]["status"] for i in (1, 2, 3, 4)] == ["approved", "hold", "hold", "trash"]


def test_a_lost_answer_to_a_write_is_settled_by_reading_the_comment_again(
    mocked: respx.MockRouter, tmp_path: Any
) -> None:
    wp = FakeWordPress({1: "Thanks", 2: "Nice"})
    wp.fail_posts = {1}
    serve(mocked, wp)
    site = WordPressRest(settings_for(tmp_path, wordpress_routes="query"))

    assert site.approve(None, [Comment(1, "Thanks"), Comment(2, "Nice")]) == {"1", "2"}
    # A POST is never sent twice.
    assert [r for m, r, _, _ in wp.sent if m == "POST"] == [
        "/wp/v2/comments/1",
        "/wp/v2/comments/2",
    ]


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_user_is_a_configuration_error_naming_the_capability(
    mocked: respx.MockRouter, tmp_path: Any, status: int
) -> None:
    mocked.route(host="blog.example").mock(
        return_value=_json(status, {"code": "rest_forbidden_context", "message": "Sorry"})
    )
    site = WordPressRest(settings_for(tmp_path, wordpress_routes="query"))

    with pytest.raises(SiteRefused) as caught:
        site.check()

    assert caught.value.exit_code == ExitCode.USAGE
    assert "moderate_comments" in caught.value.message
    assert f"HTTP {status} rest_forbidden_context" in caught.value.message
    assert PASSWORD not in caught.value.message and "Sorry" not in caught.value.message
    assert len(mocked.calls) == 1  # never retried


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(503), httpx.Response(502), httpx.ReadTimeout("slow"), httpx.ConnectError("no")],
)
def test_server_errors_and_timeouts_are_retried_then_fail_closed(
    mocked: respx.MockRouter, tmp_path: Any, failure: Any
) -> None:
    mocked.route(host="blog.example").mock(side_effect=[failure] * 10)
    site = WordPressRest(settings_for(tmp_path, wordpress_routes="query", retries=2))

    with pytest.raises(SiteUnavailable) as caught:
        site.count_pending()

    assert caught.value.exit_code == ExitCode.DATABASE
    assert len(mocked.calls) == 3


def test_a_failure_mid_chunk_keeps_what_was_written_and_stops_the_next_call(
    mocked: respx.MockRouter, tmp_path: Any
) -> None:
    wp = FakeWordPress({1: "Thanks", 2: "Nice", 3: "Good"})
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        # The first comment's re-read and write pass; then WordPress goes away.
        return wp.handle(request) if calls["n"] <= 2 else httpx.Response(503)

    mocked.route(host="blog.example").mock(side_effect=flaky)
    site = WordPressRest(settings_for(tmp_path, wordpress_routes="query"))
    judged = [Comment(i, t) for i, t in ((1, "Thanks"), (2, "Nice"), (3, "Good"))]

    assert site.approve(None, judged) == {"1"}
    with pytest.raises(SiteUnavailable):
        site.approve(None, judged[2:])
    assert [wp.comments[i]["status"] for i in (1, 2, 3)] == ["approved", "hold", "hold"]


@pytest.mark.parametrize(
    "answer",
    [
        _json(404, {"code": "rest_no_route", "message": "No route"}),
        httpx.Response(200, text="<html>a theme's page</html>"),
        httpx.Response(200, text="{not json", headers={"content-type": "application/json"}),
    ],
)
def test_an_answer_that_is_not_the_comments_api_is_never_nothing_pending(
    mocked: respx.MockRouter, tmp_path: Any, answer: httpx.Response
) -> None:
    mocked.route(host="blog.example").mock(return_value=answer)
    site = WordPressRest(settings_for(tmp_path, wordpress_routes="query"))

    with pytest.raises(SiteUnavailable, match="MODERATION_WORDPRESS_URL"):
        list(site.pending_pages(None, 100))


def test_current_rows_ask_for_any_status_and_name_the_states(
    mocked: respx.MockRouter, tmp_path: Any
) -> None:
    wp = FakeWordPress({1: "a", 2: "b", 3: "c", 4: "d"})
    wp.comments[1]["status"] = "approved"
    wp.comments[2]["status"] = "trash"
    wp.comments[3]["status"] = "spam"
    serve(mocked, wp)
    site = WordPressRest(settings_for(tmp_path, wordpress_routes="query"))

    rows = site.current_rows(None, ["1", "2", "3", "4", "9", "x"])

    assert {k: r.state for k, r in rows.items()} == {
        "1": "approved",
        "2": "rejected",
        "3": "rejected",
        "4": "pending",
    }
    (_, _, params, _) = wp.sent[-1]
    assert params["status"] == "any" and params["include"] == "1,2,3,4,9"


def test_a_batch_approves_through_the_api_and_records_what_wordpress_holds(
    mocked: respx.MockRouter, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    wp = FakeWordPress({1: "Thanks!", 2: "awful", 3: "Nice", 4: "Lovely"})
    wp.edit_before_post = {}
    serve(mocked, wp)
    settings = settings_for(tmp_path)
    caplog.set_level(logging.DEBUG)

    # An edit lands between the batch's read and its re-read: comment 4 is left alone.
    original = wp.handle

    def edit_four(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.params.get("rest_route") == "/wp/v2/comments/4":
            wp.comments[4]["raw"] = "Lovely <a href='x'>spam</a>"
        return original(request)

    mocked.routes.clear()
    mocked.route(host="blog.example").mock(side_effect=edit_four)
    report = run_batch(settings, classifier=FakeClassifier({"awful": NEGATIVE}))

    assert (report.tally["approved"], report.tally["held"], report.tally["failed"]) == (2, 1, 1)
    assert [wp.comments[i]["status"] for i in (1, 2, 3, 4)] == [
        "approved",
        "hold",
        "approved",
        "hold",
    ]
    rows = read_table(
        settings.database_url,
        "SELECT comment_id, outcome FROM moderation_decisions ORDER BY comment_id",
    )
    assert rows == [("1", "approved"), ("2", "held"), ("3", "approved"), ("4", "failed")]
    assert PASSWORD not in caplog.text
    assert PASSWORD.replace(" ", "") not in caplog.text


def test_a_dry_run_writes_nothing(mocked: respx.MockRouter, tmp_path: Any) -> None:
    wp = FakeWordPress({1: "Thanks!", 2: "Nice"})
    serve(mocked, wp)

    report = run_batch(settings_for(tmp_path), classifier=FakeClassifier(), dry_run=True)

    assert report.tally["approved"] == 2
    assert [m for m, _, _, _ in wp.sent] == ["GET"] * len(wp.sent)
    assert all(c["status"] == "hold" for c in wp.comments.values())


def test_the_settings_need_all_three_and_hide_the_password(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="MODERATION_WORDPRESS_APP_PASSWORD"):
        settings_for(tmp_path, wordpress_app_password=None)
    with pytest.raises(ValueError, match="https://"):
        settings_for(tmp_path, wordpress_url="blog.example")
    settings = settings_for(tmp_path)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("HTTPS://Blog.Example/", "https://blog.example"),
        ("https://blog.example:443/news/", "https://blog.example/news"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://user:pw@blog.example/?x=1", "https://blog.example"),
    ],
)
def test_the_site_key_is_the_normalised_url(url: str, key: str) -> None:
    assert url_key(url) == key


def test_waiting_comments_are_those_wordpress_still_holds_as_pending(
    mocked: respx.MockRouter, tmp_path: Any
) -> None:
    from moderation.batch.notify import waiting_comments
    from moderation.storage.engines import create_engine

    wp = FakeWordPress({1: "awful", 2: "awful too", 3: "Thanks"})
    serve(mocked, wp)
    settings = settings_for(tmp_path)
    run_batch(settings, classifier=FakeClassifier({"awful": NEGATIVE}))
    wp.comments[2]["status"] = "trash"  # a moderator was there meanwhile
    engine = create_engine(settings.database_url)
    site = WordPressRest(settings)

    waiting = waiting_comments(engine, site)

    engine.dispose()
    assert waiting.total == 1 and waiting.counts["negative"] == 1
