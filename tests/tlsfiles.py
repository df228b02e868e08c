"""A private certificate authority for tests, and an HTTPS server on 127.0.0.1 signed by it.

The certificates are made with the ``openssl`` command (the tests that need them skip without
it): a CA, and a server certificate it signed for ``127.0.0.1`` (an IP subject alternative
name, as a client checking the host name requires). Nothing in the system's or certifi's
bundles trusts that CA, so a client trusts the server only when it is given ``ca.pem``.
"""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

_SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


@dataclass(frozen=True)
class PrivateCA:
    """A CA's certificate (``ca``) and a server's certificate and key signed by it."""

    ca: Path
    cert: Path
    key: Path


def make_private_ca(directory: Path) -> PrivateCA:
    """A new CA and a certificate for ``127.0.0.1`` signed by it, in ``directory``."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command makes the test CA and the server's certificate")
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key = directory / "server.pem", directory / "server.key"
    request, extensions = directory / "server.csr", directory / "server.ext"
    extensions.write_text(_SERVER_EXTENSIONS, encoding="ascii")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_extensions = ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"]
    commands = [
        ["req", "-x509", *ec, "-days", "2", "-subj", "/CN=moderation test CA"],
        ["req", "-new", *ec, "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(request)],
        ["x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key)],
    ]
    commands[0] += ["-addext", ca_extensions[0], "-addext", ca_extensions[1]]
    commands[0] += ["-keyout", str(ca_key), "-out", str(ca)]
    commands[2] += ["-set_serial", "2", "-days", "2", "-extfile", str(extensions)]
    commands[2] += ["-out", str(cert)]
    for command in commands:
        subprocess.run(["openssl", *command], check=True, capture_output=True)
    return PrivateCA(ca, cert, key)


def hashed_directory(authority: PrivateCA, directory: Path) -> Path:
    """A directory holding the CA as OpenSSL looks certificates up in ``SSL_CERT_DIR``: named
    by its subject's hash (what ``openssl rehash`` does)."""
    directory.mkdir(parents=True, exist_ok=True)
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(authority.ca)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    shutil.copy(authority.ca, directory / f"{subject_hash}.0")
    return directory


def server_context(authority: PrivateCA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(authority.cert, authority.key)
    return context


Handler = Callable[[httpx.Request], httpx.Response]


@contextlib.contextmanager
def serve_https(handle: Handler, authority: PrivateCA) -> Iterator[str]:
    """Serve ``handle`` (an httpx-style handler, as respx's side effects are) over TLS on
    127.0.0.1 in a thread; yields the server's ``https://127.0.0.1:PORT`` address."""
    with serve_handler(handle, server_context(authority)) as url:
        yield url


@contextlib.contextmanager
def serve_handler(handle: Handler, context: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve ``handle`` on 127.0.0.1 in a thread, over TLS when ``context`` is given; yields
    the server's address (``http://`` or ``https://127.0.0.1:PORT``)."""
    scheme = "http" if context is None else "https"

    class Request(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = httpx.Request(
                self.command,
                f"{scheme}://127.0.0.1:{self.server.server_address[1]}{self.path}",
                headers=list(self.headers.items()),
                content=self.rfile.read(length) if length else b"",
            )
            response = handle(request)
            body = response.read()
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer  # http.server's names

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests assert on what the client says."""

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self) -> tuple[Any, Any]:
            conn, address = super().get_request()
            if context is None:
                return conn, address
            return context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), (
                address
            )

        def finish_request(self, request: Any, client_address: Any) -> None:
            # In the request's own thread: a client that refuses the certificate fails here,
            # never in the accepting loop.
            if context is not None:
                request.do_handshake()
            super().finish_request(request, client_address)

        def handle_error(self, request: Any, client_address: Any) -> None:
            """A client that refused the certificate is expected here; nothing to print."""

    server = Server(("127.0.0.1", 0), Request)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
