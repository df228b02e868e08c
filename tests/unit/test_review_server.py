"""The review page's HTTP surface without a browser: CSRF, origin, Host, token, escaping."""

from __future__ import annotations

import asyncio
import re
import secrets
import sys
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from moderation.batch.pipeline import run_batch
from moderation.comment import text_hash
from moderation.humans.queue import ReviewQueue
from moderation.humans.render import age, visible
from moderation.humans.web import COOKIE, CSP, MAX_PICKS, LoginLimits, ReviewApp
from moderation.settings import Settings
from moderation.site.table import CommentsTable
from moderation.storage.engines import create_engine
from tests.fakes import FakeClassifier
from tests.helpers import create_site_table, execute, make_settings, read_table
from tests.reviewsite import (
    BODIES,
    HOSTILE,
    PLAIN_BODIES,
    RULES,
    edit_comment,
    held_site,
    plain_rows,
    plain_site,
    reasons_site,
    rulings,
    status_of,
)

TOKEN = "correct horse battery staple"
Check = Callable[[TestClient[Any, Any], ReviewApp], Awaitable[None]]


def run_page(settings: Settings, check: Check, *, token: str | None = None, **options: Any) -> None:
    """Serve the page on 127.0.0.1 (a free port) and run ``check`` against it."""

    async def main() -> None:
        engine = create_engine(settings.database_url)
        queue = ReviewQueue(engine, CommentsTable.reflect(engine, settings), str(uuid.uuid4()))
        review = ReviewApp(queue, "tester", token=token, **options)
        async with TestClient(TestServer(review.build(), host="127.0.0.1")) as client:
            review.listening_on("127.0.0.1", client.port or 0)
            await check(client, review)
        engine.dispose()

    asyncio.run(main())


def form_for(review: ReviewApp, comment_id: int, **extra: str) -> dict[str, str]:
    values = {
        "csrf": review.csrf,
        "comment_id": str(comment_id),
        "text_hash": text_hash(BODIES[comment_id - 1]),
        "page": "0",
    }
    values.update(extra)
    return values


def origin(client: TestClient[Any, Any]) -> dict[str, str]:
    return {"Origin": f"http://127.0.0.1:{client.port}"}


@pytest.fixture
def site(sqlite_url: str) -> Settings:
    return held_site(sqlite_url)


def test_a_same_origin_post_with_the_token_writes_and_says_so(site: Settings) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        response = await client.post(
            "/reject", data=form_for(review, 1), headers=origin(client), allow_redirects=False
        )
        assert response.status == 303
        page = await client.get(response.headers["Location"])
        assert "Rejected comment 1." in await page.text()

    run_page(site, check)
    assert status_of(site.database_url, 1) == "trash"
    assert rulings(site.database_url) == [("1", "rejected", "tester", "sentiments", None)]


@pytest.mark.parametrize(
    ("headers", "drop_csrf", "csrf"),
    [
        ({}, True, None),  # same origin, no CSRF token
        ({}, False, "forged"),  # same origin, a wrong one
        ({"Origin": "http://evil.example"}, False, None),
        ({"Origin": "null"}, False, None),
        ({"Referer": "http://evil.example/page"}, False, None),
        ({"Sec-Fetch-Site": "cross-site"}, False, None),
        ({"Origin": "", "Referer": ""}, False, None),  # no evidence of origin at all
    ],
)
def test_a_forged_or_foreign_post_writes_nothing(
    site: Settings, headers: dict[str, str], drop_csrf: bool, csrf: str | None
) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        form = form_for(review, 1)
        if drop_csrf:
            del form["csrf"]
        if csrf is not None:
            form["csrf"] = csrf
        sent = {**origin(client), **headers}
        sent = {k: v for k, v in sent.items() if v}
        response = await client.post("/approve", data=form, headers=sent, allow_redirects=False)
        assert response.status == 403
        assert response.headers["Content-Security-Policy"] == CSP

    run_page(site, check)
    assert status_of(site.database_url, 1) == "0"
    assert rulings(site.database_url) == []


def test_referer_or_fetch_metadata_alone_pass_the_origin_check(site: Settings) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        here = f"http://127.0.0.1:{client.port}/?page=0"
        for comment_id, headers in ((1, {"Referer": here}), (5, {"Sec-Fetch-Site": "same-origin"})):
            response = await client.post(
                "/approve",
                data=form_for(review, comment_id),
                headers=headers,
                allow_redirects=False,
            )
            assert response.status == 303

    run_page(site, check)
    assert [status_of(site.database_url, n) for n in (1, 5)] == ["1", "1"]


def test_a_foreign_host_header_is_refused_on_loopback(site: Settings) -> None:
    # A DNS-rebinding page names its own host; the page answers only to loopback names.
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        rebound = {"Host": f"evil.example:{client.port}"}
        assert (await client.get("/", headers=rebound)).status == 421
        response = await client.post(
            "/approve",
            data=form_for(review, 1),
            headers={**rebound, "Origin": f"http://evil.example:{client.port}"},
            allow_redirects=False,
        )
        assert response.status == 421
        assert (await client.get("/", headers={"Host": f"localhost:{client.port}"})).status == 200

    run_page(site, check)
    assert rulings(site.database_url) == []


def test_hostile_comments_are_escaped_and_the_page_runs_only_its_own_script(
    site: Settings,
) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        response = await client.get("/")
        html = await response.text()
        assert response.headers["Content-Security-Policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/review.js" defer>']
        assert "<img" not in html and 'href="javascript:' not in html
        assert "&lt;script&gt;window.__pwned = 1;" in html
        assert '<span class="ctl">U+202E</span>gnp.exe' in html
        assert "\u202e" not in html
        script = await client.get("/static/review.js")
        assert script.headers["Content-Type"].startswith("text/javascript")
        assert (await client.get("/static/other.js")).status == 404

    run_page(site, check)


def test_without_a_rejected_state_reject_is_recorded_here_and_says_so(sqlite_url: str) -> None:
    settings = plain_site(sqlite_url)
    before = plain_rows(sqlite_url)

    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        html = await (await client.get("/")).text()
        assert "Approve</button>" in html and "Reject</button>" in html
        assert "the site's row is unchanged (still pending)" in html  # said before, too
        form = {
            "csrf": review.csrf,
            "comment_id": "1",
            "text_hash": text_hash(PLAIN_BODIES[0]),
            "page": "0",
        }
        response = await client.post("/reject", data=form, headers=origin(client))
        assert response.status == 200
        html = await response.text()
        assert "Rejected comment 1 here; the site&#39;s row is unchanged." in html
        assert 'data-comment-id="1"' not in html and 'data-comment-id="3"' in html

    run_page(settings, check)
    assert plain_rows(sqlite_url) == before
    assert rulings(sqlite_url) == [("1", "rejected", "tester", "sentiments", None)]


def test_a_comment_shows_the_post_and_time_its_table_has_and_no_blanks(sqlite_url: str) -> None:
    settings = plain_site(sqlite_url)

    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        html = await (await client.get("/")).text()
        assert html.count('<span class="post">post 41</span>') == 2
        assert html.count("<time datetime=") == 2 and "min ago</time>" in html
        assert 'class="author"' not in html

    run_page(settings, check)


def test_an_empty_author_shows_nothing(sqlite_url: str) -> None:
    create_site_table(sqlite_url, ["you idiot", "idiot two"])
    execute(sqlite_url, "UPDATE comments SET author = '' WHERE id = 1")
    execute(sqlite_url, "UPDATE comments SET author = 'Ana' WHERE id = 2")
    settings = make_settings(sqlite_url)
    run_batch(settings, classifier=FakeClassifier(RULES))

    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        html = await (await client.get("/")).text()
        assert re.findall(r'<bdi class="author">([^<]*)</bdi>', html) == ["Ana"]
        assert "<time" not in html and 'class="post"' not in html

    run_page(settings, check)


def test_the_token_is_asked_once_and_kept_in_an_httponly_cookie(site: Settings) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        first = await client.get("/", allow_redirects=False)
        assert first.status == 303 and first.headers["Location"] == "/login"
        refused = await client.post("/approve", data=form_for(review, 1), headers=origin(client))
        assert refused.status == 403
        wrong = await client.post(
            "/login", data={"csrf": review.csrf, "token": "x" * 20}, headers=origin(client)
        )
        assert wrong.status == 403
        signed = await client.post(
            "/login",
            data={"csrf": review.csrf, "token": TOKEN},
            headers=origin(client),
            allow_redirects=False,
        )
        assert signed.status == 303
        cookie = signed.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        assert "Comments waiting for a human" in await (await client.get("/")).text()
        done = await client.post(
            "/approve", data=form_for(review, 1), headers=origin(client), allow_redirects=False
        )
        assert done.status == 303

    run_page(site, check, token=TOKEN)
    assert status_of(site.database_url, 1) == "1"


def test_visible_shows_reordering_characters_as_codes() -> None:
    assert str(visible("a\u202eb\u2066c<i>")) == (
        'a<span class="ctl">U+202E</span>b<span class="ctl">U+2066</span>c&lt;i&gt;'
    )
    assert str(visible("line\nnext\ttab")) == "line\nnext\ttab"
    assert HOSTILE.startswith("hostile")


HANGUL_FILLERS = "\u115f\u1160\u3164\uffa0"


def test_visible_shows_every_format_character_and_filler_as_a_code() -> None:
    hidden = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    hidden += list(HANGUL_FILLERS) + [chr(c) for c in range(0xE0000, 0xE0080)]
    for char in hidden:
        assert str(visible(f"a{char}b")) == (f'a<span class="ctl">U+{ord(char):04X}</span>b'), (
            f"U+{ord(char):04X}"
        )
    # A sentence in tag characters behind a friendly one: every hidden letter shows.
    smuggled = "Great post, thanks!" + "".join(chr(0xE0000 + ord(c)) for c in "approve")
    shown = str(visible(smuggled))
    assert shown.count('class="ctl"') == 7 and "U+E0061" in shown
    # Ordinary text, accents and emoji stay as they are.
    for text in ("café naïve", "日本語", "👍🏽", "line\nnext\ttab"):
        assert str(visible(text)) == text


def test_age_reads_like_a_person_would_say_it() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 12, 2, tzinfo=UTC)
    assert [age(now - timedelta(seconds=s), now) for s in (5, 120, 7200, 3 * 86400)] == [
        "just now",
        "2 min ago",
        "2 h ago",
        "3 d ago",
    ]
    assert age(None, now) == ""


def test_a_database_failure_is_a_one_line_page_not_a_traceback(site: Settings) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        engine = create_engine(site.database_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE comments RENAME TO comments_gone")
        engine.dispose()
        response = await client.get("/")
        assert response.status == 503
        html = await response.text()
        assert "database error on sqlite:///" in html and "no such table" in html
        assert "Traceback" not in html and response.headers["Content-Security-Policy"] == CSP

    run_page(site, check)


def test_a_partly_read_long_comment_says_so(site: Settings) -> None:
    engine = create_engine(site.database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE moderation_decisions SET coverage = '2 of 5 windows' WHERE comment_id = '1'"
        )
        conn.exec_driver_sql(
            "UPDATE moderation_decisions SET coverage = 'whole' WHERE comment_id <> '1'"
        )
    engine.dispose()

    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        html = await (await client.get("/")).text()
        assert html.count("long comment:") == 1
        assert "long comment: read in 2 of 5 windows" in html

    run_page(site, check)


def test_why_the_model_may_not_approve_is_said_once_at_the_top(site: Settings) -> None:
    reason = "unqualified: false approval >= 1.00 at every threshold on 367 fixtures"
    engine = create_engine(site.database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE moderation_decisions SET error = ?, label = 'positive' "
            "WHERE comment_id IN ('1', '5')",
            (reason,),
        )
    engine.dispose()

    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        html = await (await client.get("/")).text()
        top, _, cards = html.partition("<main>")
        # Once, above the comments, in a moderator's words; the tool's own words beside them.
        assert "The model may not approve anything yet." in top
        assert "On its test it would publish too many comments that should be held." in top
        assert "waits here too: 2 comments" in top
        assert html.count(reason.replace(">", "&gt;")) == 1
        assert reason.replace(">", "&gt;") in top
        # On each card, a short line.
        assert cards.count("Waits only because the model may not approve yet (see above).") == 2
        assert "unqualified:" not in cards

    run_page(site, check)


def test_nothing_is_said_about_the_model_when_no_comment_waits_for_it(site: Settings) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        html = await (await client.get("/")).text()
        assert "may not approve anything yet" not in html

    run_page(site, check)


def test_filters_list_one_reason_with_the_count_of_each(sqlite_url: str) -> None:
    settings = reasons_site(sqlite_url, REASONS_ORDER)

    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        html = await (await client.get("/")).text()
        filters = re.findall(r'<a href="([^"]*)"[^>]*>([^<]*) <span class="n">(\d+)</span>', html)
        assert filters == [
            ("/", "All", "6"),
            ("/?reason=negative", "Negative", "2"),
            ("/?reason=unqualified", "Model not trusted yet", "1"),
            ("/?reason=rule", "Held by a rule", "1"),
            ("/?reason=failed", "Failed", "2"),
        ]
        assert commented(html) == ["6", "5", "4", "3", "2", "1"]
        html = await (await client.get("/", params={"reason": "failed"})).text()
        assert commented(html) == ["6", "2"]
        assert 'href="/?reason=failed" class="reason-failed" aria-current="page"' in html
        assert "<title>Review: 6 waiting</title>" in html
        for odd in ("bogus", "Failed", ""):
            html = await (await client.get("/", params={"reason": odd})).text()
            assert commented(html) == ["6", "5", "4", "3", "2", "1"], odd

    run_page(settings, check)


def test_pages_and_rulings_keep_the_filter(sqlite_url: str) -> None:
    settings = reasons_site(sqlite_url, REASONS_ORDER)

    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        html = await (await client.get("/", params={"reason": "negative"})).text()
        assert commented(html) == ["4"]
        assert '<a href="/?reason=negative&amp;page=1" rel="next">Older</a>' in html
        html = await (await client.get("/", params={"reason": "negative", "page": "1"})).text()
        assert commented(html) == ["1"]
        assert '<a href="/?reason=negative" rel="prev">Newer</a>' in html
        assert '<input type="hidden" name="reason" value="negative">' in html
        form = {
            "csrf": review.csrf,
            "comment_id": "1",
            "text_hash": text_hash(body_of(sqlite_url, 1)),
            "page": "1",
            "reason": "negative",
        }
        response = await client.post(
            "/approve", data=form, headers=origin(client), allow_redirects=False
        )
        assert response.headers["Location"].startswith("/?reason=negative&page=1&notice=")
        # Page 1 of the filter is gone: its last page is shown, with the notice.
        html = await (await client.get(response.headers["Location"])).text()
        assert commented(html) == ["4"] and "Approved comment 1." in html

    run_page(settings, check, page_size=1)


def test_bulk_rulings_write_each_comment_as_it_was_seen(site: Settings) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        html = await (await client.get("/")).text()
        assert '<form method="post" action="/bulk" id="bulk" class="bulk">' in html
        assert html.count('name="pick"') == 4 and html.count('form="bulk"') == 4
        approved = await bulk(client, review, "approve", 1, 5)
        assert "Approved 2 comments." in approved
        edit_comment(site.database_url, 3, body="mumble, edited")
        rejected = await bulk(client, review, "reject", 3, 4)
        assert (
            "Rejected 1 comment. 1 was left as it is "
            "(comment 3: its text was edited since the page was shown)."
        ) in rejected
        assert "Nothing was selected." in await bulk(client, review, "reject")

    run_page(site, check)
    assert [status_of(site.database_url, n) for n in (1, 3, 4, 5)] == ["1", "0", "trash", "1"]
    assert [r[:3] for r in rulings(site.database_url)] == [
        ("1", "approved", "tester"),
        ("5", "approved", "tester"),
        ("4", "rejected", "tester"),
    ]


def test_a_bulk_reject_without_a_rejected_state_is_recorded_here(sqlite_url: str) -> None:
    settings = plain_site(sqlite_url)
    before = plain_rows(sqlite_url)

    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        picks = [f"{n}:{text_hash(PLAIN_BODIES[n - 1])}" for n in (1, 3)]
        form = {"csrf": review.csrf, "action": "reject", "pick": picks}
        response = await client.post("/bulk", data=form, headers=origin(client))
        html = await response.text()
        assert "Rejected 2 comments here; the site&#39;s rows are unchanged." in html
        assert "Nothing is waiting for a human." in html

    run_page(settings, check)
    assert plain_rows(sqlite_url) == before
    assert [r[:2] for r in rulings(sqlite_url)] == [("1", "rejected"), ("3", "rejected")]


@pytest.mark.parametrize(
    ("headers", "form"),
    [
        ({}, {"csrf": None}),  # no CSRF token
        ({}, {"csrf": "forged"}),
        ({"Origin": "http://evil.example"}, {}),
        ({"Sec-Fetch-Site": "cross-site"}, {}),
        ({}, {"action": "publish"}),
        ({}, {"pick": "1"}),  # no text hash
    ],
)
def test_a_forged_or_odd_bulk_post_writes_nothing(
    site: Settings, headers: dict[str, str], form: dict[str, str | None]
) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        sent: dict[str, Any] = {
            "csrf": review.csrf,
            "action": "approve",
            "pick": [f"{n}:{text_hash(BODIES[n - 1])}" for n in (1, 5)],
        }
        sent.update(form)
        sent = {k: v for k, v in sent.items() if v is not None}
        response = await client.post(
            "/bulk", data=sent, headers={**origin(client), **headers}, allow_redirects=False
        )
        assert response.status in (400, 403)
        assert response.headers["Content-Security-Policy"] == CSP

    run_page(site, check)
    assert [status_of(site.database_url, n) for n in (1, 5)] == ["0", "0"]
    assert rulings(site.database_url) == []


def test_a_bulk_post_names_at_most_a_few_pages_of_comments(site: Settings) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        picks = [f"{n}:{'0' * 64}" for n in range(1, MAX_PICKS + 2)]
        form = {"csrf": review.csrf, "action": "reject", "pick": picks}
        response = await client.post("/bulk", data=form, headers=origin(client))
        assert response.status == 400

    run_page(site, check)
    assert rulings(site.database_url) == []


REASONS_ORDER = ["negative", "failed", "rule", "negative", "unqualified", "failed"]


def commented(html: str) -> list[str]:
    return re.findall(r'data-comment-id="([^"]+)"', html)


def body_of(url: str, comment_id: int) -> str:
    return str(read_table(url, f"SELECT body FROM comments WHERE id = {comment_id}")[0][0])


async def bulk(
    client: TestClient[Any, Any], review: ReviewApp, action: str, *comment_ids: int
) -> str:
    picks = [f"{n}:{text_hash(BODIES[n - 1])}" for n in comment_ids]
    form = {"csrf": review.csrf, "action": action, "pick": picks, "page": "0"}
    response = await client.post("/bulk", data=form, headers=origin(client))
    assert response.status == 200
    return await response.text()


SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Cache-Control")


def test_a_comment_held_by_a_rule_says_which(site: Settings) -> None:
    # The hostile comment (4) has two links: the links rule held it, the model was not asked.
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        html = await (await client.get("/")).text()
        assert html.count("Held by a rule: 2 links &gt;= 2") == 1
        assert html.count("not sent to the model") == 1
        assert "too long for the model to read" not in html
        assert "rule: 2 links" not in html.replace("Held by a rule: 2 links", "")

    run_page(site, check)


def assert_secured(response: Any) -> None:
    assert response.headers["Content-Security-Policy"] == CSP
    for name in SECURITY_HEADERS:
        assert name in response.headers, name


@pytest.mark.parametrize("page", ["²", "٣", "1_0", " 1", "-1", "99999999999999999999", "1e3"])
def test_an_odd_page_number_shows_the_first_page(site: Settings, page: str) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        response = await client.get("/", params={"page": page})
        assert response.status == 200
        assert_secured(response)
        assert 'data-comment-id="5"' in await response.text()

    run_page(site, check)


def test_an_odd_page_number_on_a_ruling_writes_it_and_shows_the_first_page(site: Settings) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        response = await client.post(
            "/approve",
            data=form_for(review, 1, page="²"),
            headers=origin(client),
            allow_redirects=False,
        )
        assert response.status == 303
        assert response.headers["Location"].startswith("/?notice=")  # the first page
        page = await client.get(response.headers["Location"])
        assert page.status == 200 and "Approved comment 1." in await page.text()

    run_page(site, check)
    assert status_of(site.database_url, 1) == "1"


@pytest.mark.parametrize(
    "comment_id", [str(2**63), str(2**64 + 1), str(-(2**63) - 1), "²", "1_0", "9" * 400]
)
def test_a_comment_id_out_of_range_is_no_such_comment(site: Settings, comment_id: str) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        form = {**form_for(review, 1), "comment_id": comment_id}
        response = await client.post("/approve", data=form, headers=origin(client))
        assert response.status == 200
        assert_secured(response)
        assert "no such comment" in await response.text()

    run_page(site, check)
    assert rulings(site.database_url) == []


def test_a_body_that_is_not_text_does_not_break_the_page(site: Settings) -> None:
    engine = create_engine(site.database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE comments SET body = X'00ff41' WHERE id = 5")
    engine.dispose()

    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        response = await client.get("/")
        assert response.status == 200
        html = await response.text()
        assert 'data-comment-id="5"' in html and 'data-comment-id="1"' in html
        assert "&lt;bytes: b&#39;\\x00\\xffA&#39;&gt;" in html
        match = re.search(r'name="text_hash" value="([0-9a-f]+)"', html)
        assert match is not None
        form = {**form_for(review, 5), "text_hash": match.group(1)}
        ruled = await client.post("/approve", data=form, headers=origin(client))
        assert ruled.status == 200
        assert_secured(ruled)

    run_page(site, check)
    assert status_of(site.database_url, 5) == "0"


def test_an_unexpected_failure_is_a_plain_500_with_the_same_headers(
    site: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        def broken(*_args: object) -> None:
            raise RuntimeError("boom with <b>input</b>")

        review.queue.page = broken  # type: ignore[method-assign]
        response = await client.get("/")
        assert response.status == 500
        assert_secured(response)
        html = await response.text()
        assert "Traceback" not in html and "<b>input</b>" not in html
        for path, method in (("/nowhere", "GET"), ("/approve", "GET"), ("/", "DELETE")):
            other = await client.request(method, path)
            assert other.status in (404, 405), path
            assert_secured(other)

    with caplog.at_level("ERROR"):
        run_page(site, check)
    assert "RuntimeError" in caplog.text and "Traceback" not in caplog.text


# --- Token guessing, sessions ---------------------------------------------------------------


async def sign_in(
    client: TestClient[Any, Any], review: ReviewApp, token: str = TOKEN, **headers: str
) -> Any:
    return await client.post(
        "/login",
        data={"csrf": review.csrf, "token": token},
        headers={**origin(client), **headers},
        allow_redirects=False,
    )


def session_cookie(response: Any) -> str:
    morsel = response.cookies[COOKIE]
    return str(morsel.value)


def test_failed_logins_are_limited_per_address_whatever_the_parallelism(site: Settings) -> None:
    limits = LoginLimits(per_address=5, overall=50, window=60)

    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        guesses = await asyncio.gather(
            *(sign_in(client, review, f"wrong-guess-{n:04d}-xxxxxxxx") for n in range(60))
        )
        statuses = sorted(response.status for response in guesses)
        assert statuses.count(403) == 5 and statuses.count(429) == 55
        limited = next(r for r in guesses if r.status == 429)
        assert 0 < int(limited.headers["Retry-After"]) <= 60
        assert_secured(limited)
        # While limited, not even the right token is tried from this address.
        assert (await sign_in(client, review)).status == 429

    run_page(site, check, token=TOKEN, login_limits=limits)


def test_failed_logins_are_limited_overall_across_addresses(site: Settings) -> None:
    limits = LoginLimits(per_address=3, overall=7, window=60)
    proxy = frozenset({"127.0.0.1"})  # the addresses below come through a trusted proxy

    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        statuses = []
        for n in range(12):
            forwarded = {"X-Forwarded-For": f"198.51.100.{n}"}
            response = await sign_in(client, review, f"wrong-guess-{n:04d}-xxxxxx", **forwarded)
            statuses.append(response.status)
        assert statuses == [403] * 7 + [429] * 5
        # A new address is refused too, once the overall limit is reached.
        fresh = await sign_in(client, review, **{"X-Forwarded-For": "203.0.113.7"})
        assert fresh.status == 429

    run_page(site, check, token=TOKEN, login_limits=limits, trusted_proxies=proxy)


def test_each_login_gets_its_own_session_and_a_logout_ends_it(site: Settings) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        first, second = await sign_in(client, review), await sign_in(client, review)
        assert first.status == second.status == 303
        one, two = session_cookie(first), session_cookie(second)
        assert one != two and TOKEN not in one
        assert "Max-Age=" in first.headers["Set-Cookie"]
        client.session.cookie_jar.clear()
        as_one = {"Cookie": f"{COOKIE}={one}"}
        assert (await client.get("/", headers=as_one, allow_redirects=False)).status == 200
        out = await client.post(
            "/logout",
            data={"csrf": review.csrf},
            headers={**origin(client), **as_one},
            allow_redirects=False,
        )
        assert out.status == 303 and out.headers["Location"] == "/login"
        assert session_cookie(out) == ""
        client.session.cookie_jar.clear()
        replayed = await client.get("/", headers=as_one, allow_redirects=False)
        assert replayed.status == 303 and replayed.headers["Location"] == "/login"
        as_two = {"Cookie": f"{COOKIE}={two}"}
        assert (await client.get("/", headers=as_two, allow_redirects=False)).status == 200

    run_page(site, check, token=TOKEN)


def test_a_session_expires(site: Settings) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        signed = await sign_in(client, review)
        assert "Max-Age=1" in signed.headers["Set-Cookie"]
        cookie = {"Cookie": f"{COOKIE}={session_cookie(signed)}"}
        client.session.cookie_jar.clear()
        assert (await client.get("/", headers=cookie, allow_redirects=False)).status == 200
        await asyncio.sleep(1.3)
        expired = await client.get("/", headers=cookie, allow_redirects=False)
        assert expired.status == 303 and expired.headers["Location"] == "/login"

    run_page(site, check, token=TOKEN, session_lifetime=1.0)


@pytest.mark.parametrize(
    ("options", "headers", "secure"),
    [
        ({}, {}, False),
        ({}, {"X-Forwarded-Proto": "https"}, False),  # from anyone: not believed
        ({"secure_cookie": True}, {}, True),
        ({"trusted_proxies": frozenset({"127.0.0.1"})}, {"X-Forwarded-Proto": "https"}, True),
        ({"trusted_proxies": frozenset({"127.0.0.1"})}, {"X-Forwarded-Proto": "http"}, False),
        ({"trusted_proxies": frozenset({"192.0.2.1"})}, {"X-Forwarded-Proto": "https"}, False),
    ],
)
def test_the_cookie_is_secure_behind_tls(
    site: Settings, options: dict[str, Any], headers: dict[str, str], secure: bool
) -> None:
    async def check(client: TestClient[Any, Any], review: ReviewApp) -> None:
        signed = await sign_in(client, review, **headers)
        assert signed.status == 303
        attributes = [part.strip().lower() for part in signed.headers["Set-Cookie"].split(";")]
        assert ("secure" in attributes) is secure

    run_page(site, check, token=TOKEN, **options)


@pytest.mark.parametrize(
    "weak", ["a" * 16, "aaaaaaaabbbbbbbb", "abcdabcdabcdabcd", "0123456789abcdef", "x" * 40]
)
def test_a_weak_token_is_refused_with_a_way_to_make_one(weak: str) -> None:
    with pytest.raises(ValueError) as raised:
        Settings(review_token=weak)
    message = str(raised.value)
    assert 'python -c "import secrets; print(secrets.token_urlsafe(24))"' in message
    assert weak not in message


def test_a_strong_token_is_accepted() -> None:
    for token in (TOKEN, secrets.token_urlsafe(24), "Tr0ub4dor&3-horse-staple"):
        assert Settings(review_token=token).review_token is not None
