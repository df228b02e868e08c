"""``moderate review``: the local page where a human approves or rejects held comments."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from moderation.cli.common import errors_to_exit_codes, fail, load_settings, require_database


def review_command(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; off loopback needs a token.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="0 picks a free port.")
    ] = 8765,
    reviewer: Annotated[
        str | None,
        typer.Option("--reviewer", help="Name on the audit rows; default: the login name."),
    ] = None,
    secure_cookie: Annotated[
        bool,
        typer.Option(
            "--secure-cookie",
            help="Mark the session cookie Secure: the page is reached over HTTPS (a TLS proxy).",
        ),
    ] = False,
) -> None:
    """Serve a page of the held and failed comments still pending; prints its URL first."""
    from moderation.humans.web import serve

    settings = load_settings()
    name = reviewer or _login_name()
    if not name.strip() or len(name) > 255:
        fail("--reviewer must be 1 to 255 characters", 2)

    def announce(url: str) -> None:
        typer.echo(url)  # the first line of output, for scripts and tests to read

    import asyncio  # here, not at the top: `moderate --help` need not load it

    with errors_to_exit_codes():
        require_database(settings)
        asyncio.run(serve(settings, host, port, name, announce, secure_cookie=secure_cookie))


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (containers)
        return "reviewer"
