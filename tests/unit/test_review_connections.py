"""The review page's server under slow and many connections: timeouts and caps.

Each test serves the page on 127.0.0.1 as `moderate review` does (the same site and limits),
with small limits, and opens a handful of raw connections from loopback addresses.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest

from moderation.humans.queue import ReviewQueue
from moderation.humans.web import ReviewApp, ServerLimits, start_site
from moderation.settings import Settings
from moderation.site.table import CommentsTable
from moderation.storage.engines import create_engine
from tests.reviewsite import held_site, rulings

Check = Callable[[int, ReviewApp], Awaitable[None]]
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def run_server(settings: Settings, limits: ServerLimits, check: Check) -> None:
    async def main() -> None:
        engine = create_engine(settings.database_url)
        queue = ReviewQueue(engine, CommentsTable.reflect(engine, settings), str(uuid.uuid4()))
        review = ReviewApp(queue, "tester", token=None, limits=limits)
        runner = await start_site(review, "127.0.0.1", 0)
        try:
            port = runner.addresses[0][1]
            review.listening_on("127.0.0.1", port)
            await asyncio.wait_for(check(port, review), 30)
        finally:
            await runner.cleanup()
            engine.dispose()

    asyncio.run(main())


async def connect(port: int, source: str = "127.0.0.1") -> Connection:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def half_sent(port: int, source: str) -> Connection:
    """A request head that never ends."""
    reader, writer = await connect(port, source)
    writer.write(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: 1".encode())
    await writer.drain()
    return reader, writer


async def answer(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes, or TimeoutError after ``within`` s."""
    return await asyncio.wait_for(reader.read(), within)


async def get_page(port: int, source: str = "127.0.0.1") -> bytes:
    reader, writer = await connect(port, source)
    writer.write(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    await writer.drain()
    try:
        return await answer(reader, 10)
    finally:
        writer.close()


@pytest.fixture
def site(sqlite_url: str) -> Settings:
    return held_site(sqlite_url)


def test_a_request_head_that_never_ends_is_cut_off(site: Settings) -> None:
    async def check(port: int, review: ReviewApp) -> None:
        started = time.monotonic()
        slow = [await half_sent(port, "127.0.0.2") for _ in range(5)]
        answers = await asyncio.gather(*(answer(reader, 5) for reader, _ in slow))
        assert time.monotonic() - started < 4
        for text in answers:
            assert text.startswith(b"HTTP/1.1 408"), text
            assert b"Content-Security-Policy" in text
        for _, writer in slow:
            writer.close()

    run_server(site, ServerLimits(header_timeout=0.5), check)


def test_a_body_that_never_ends_is_cut_off_and_writes_nothing(site: Settings) -> None:
    async def check(port: int, review: ReviewApp) -> None:
        reader, writer = await connect(port)
        form = f"csrf={review.csrf}&comment_id=1&text_hash=x"
        writer.write(
            (
                f"POST /approve HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Origin: http://127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(form) + 500}\r\n\r\n{form}"
            ).encode()
        )
        await writer.drain()
        started = time.monotonic()
        text = await answer(reader, 5)
        assert time.monotonic() - started < 4
        assert text.startswith(b"HTTP/1.1 408"), text
        assert b"Content-Security-Policy" in text
        writer.close()

    run_server(site, ServerLimits(body_timeout=0.5), check)
    assert rulings(site.database_url) == []


def test_open_connections_are_capped_and_a_normal_request_still_gets_through(
    site: Settings,
) -> None:
    limits = ServerLimits(header_timeout=20, max_connections=6, max_per_address=4)

    async def check(port: int, review: ReviewApp) -> None:
        held = [await half_sent(port, "127.0.0.2") for _ in range(4)]
        refused = [await half_sent(port, "127.0.0.2") for _ in range(3)]
        for reader, _ in refused:  # over the per-address cap: answered at once, closed
            text = await answer(reader, 2)
            assert text.startswith(b"HTTP/1.1 503"), text
        for reader, _ in held:  # still open: no answer yet
            with pytest.raises(TimeoutError):
                await answer(reader, 0.2)
        # Another address still gets the page.
        assert (await get_page(port)).startswith(b"HTTP/1.1 200")
        # Two more from a third address fill the overall cap: now everyone waits outside.
        held += [await half_sent(port, "127.0.0.3") for _ in range(2)]
        await asyncio.sleep(0.1)
        assert (await get_page(port)).startswith(b"HTTP/1.1 503")
        for _, writer in held:
            writer.close()
        # Once the server has seen them close, the page is served again.
        for _ in range(50):
            if (await get_page(port)).startswith(b"HTTP/1.1 200"):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the page was not served again after the slow connections closed")

    run_server(site, limits, check)


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad <b>Header</b>\r\n\r\n",
        b"GET /" + b"<b>" * 3000 + b" HTTP/1.1\r\n\r\n",
        b"<b>BLAH</b>\r\n\r\n",
    ],
)
def test_a_malformed_request_gets_a_plain_400_with_the_same_headers(
    site: Settings, head: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async def check(port: int, review: ReviewApp) -> None:
        reader, writer = await connect(port)
        writer.write(head)
        await writer.drain()
        text = await answer(reader, 5)
        writer.close()
        assert text.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400")), text
        assert b"Content-Security-Policy: " in text and b"X-Content-Type-Options" in text
        assert b"<b>" not in text  # the input is not echoed

    with caplog.at_level("DEBUG"):
        run_server(site, ServerLimits(), check)
    assert "Traceback" not in caplog.text and "<b>" not in caplog.text
