"""The TLS contexts of every HTTPS client the tool builds (model servers, WordPress), and
what a failed handshake is called in a message.

Over https a client verifies the server with certifi's bundle, or with the certificate
authorities the settings name (``MODERATION_CA_BUNDLE``, else ``SSL_CERT_FILE`` and
``SSL_CERT_DIR``; see :attr:`Settings.certificate_authorities`). The context is built here
rather than by each client with ``trust_env``: that would also let the proxy variables of the
environment in, and every client would load the bundle again (tens of milliseconds each, and
a model server has three connection pools). A plain-http server speaks no TLS, so its context
loads nothing and trusts no certificate at all: a handshake that still happened (a redirect
to https) would fail verification rather than go unverified.
"""

from __future__ import annotations

import contextlib
import functools
import re
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from moderation.errors import ConfigurationError
from moderation.settings import CertificateSource

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.DOTALL)
# OpenSSL's verification results that mean "no trusted CA issued this certificate": the ones a
# private CA's server gives to a client that was not told of that CA.
_UNKNOWN_ISSUER = frozenset({2, 18, 19, 20, 21})
# A connection closed under TLS: the server went away (a reset, worth retrying), not a
# handshake that can never succeed.
_CLOSED = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
_SEE = "docs/deployment.md#a-private-certificate-authority"


def tls_context(url: str, trust: Sequence[CertificateSource] = ()) -> ssl.SSLContext:
    """The TLS context of the connections to the server at ``url``, built once per kind.

    ``trust`` is ``Settings.certificate_authorities`` (empty: certifi's bundle); it is read
    only for an https server. A file it names that cannot be read is a
    :class:`ConfigurationError` naming its variable.
    """
    if urlsplit(url).scheme.lower() == "http":
        return _trusting_nothing()
    return _verifying(tuple(trust))


@functools.cache
def _verifying(trust: tuple[CertificateSource, ...]) -> ssl.SSLContext:
    if not trust:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    context: ssl.SSLContext | None = None
    for source in trust:
        with _reading(source):
            cafile, capath, cadata = _locations(source)
            if context is None:
                # Python's verifying defaults for this version; told where the CAs are, it
                # loads nothing else (not the system's default paths).
                context = ssl.create_default_context(cafile=cafile, capath=capath, cadata=cadata)
            else:
                context.load_verify_locations(cafile, capath, cadata)
    assert context is not None
    return context


@functools.cache
def _trusting_nothing() -> ssl.SSLContext:
    # PROTOCOL_TLS_CLIENT requires a certificate and checks the host name; no CA is loaded.
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _locations(source: CertificateSource) -> tuple[str | None, str | None, str | None]:
    """``source`` as ``load_verify_locations``'s ``cafile``, ``capath`` and ``cadata``."""
    if source.kind == "file":
        return source.path, None, None
    if source.kind == "hashed directory":
        # OpenSSL takes several directories, separated by ":".
        for part in source.path.split(":"):
            if not Path(part).is_dir():
                raise ConfigurationError(f"{source.variable}: {part} is not a directory")
        return None, source.path, None
    return None, None, _pem_directory(source.variable, Path(source.path))


@contextlib.contextmanager
def _reading(source: CertificateSource) -> Iterator[None]:
    """A CA file that cannot be read, as a configuration error naming its variable."""
    name, path = source.variable, source.path
    try:
        yield
    except FileNotFoundError:
        raise ConfigurationError(f"{name}: {path} does not exist") from None
    except OSError as exc:
        # ssl.SSLError is an OSError: a file that is not PEM, a certificate OpenSSL refuses.
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        raise ConfigurationError(
            f"{name}: {path} holds no certificate authority OpenSSL can read ({reason})"
        ) from exc


def _pem_directory(name: str, directory: Path) -> str:
    """Every PEM certificate of the files in ``directory`` (hidden ones left out, as the
    ``..data`` links of a mounted Kubernetes Secret or ConfigMap)."""
    found: list[bytes] = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        found.extend(_PEM.findall(path.read_bytes()))
    if not found:
        raise ConfigurationError(f"{name}: no PEM certificate in the files of {directory}")
    return b"\n".join(found).decode("ascii", "replace")


def certificate_failure(exc: BaseException) -> str | None:
    """What a TLS handshake that cannot succeed says, for one line, when it is in ``exc`` or
    its causes; else None.

    HTTP clients wrap the ``ssl`` error (httpx in ``ConnectError``, the ollama client that in
    the builtin ``ConnectionError``, aiohttp in ``ClientConnectorCertificateError``), always
    keeping it as a cause or context.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # aiohttp's wrapper is itself an ssl.CertificateError, with the real one inside.
        inner = getattr(current, "certificate_error", None)
        if isinstance(inner, ssl.SSLError):
            current = inner
        if isinstance(current, ssl.SSLCertVerificationError):
            reason = (
                getattr(current, "verify_message", None)
                or current.reason
                or "certificate verify failed"
            )
            if getattr(current, "verify_code", None) in _UNKNOWN_ISSUER:
                return (
                    f"the server's certificate is not trusted ({reason}); set "
                    f"MODERATION_CA_BUNDLE to the certificate authority that issued it ({_SEE})"
                )
            return f"the server's certificate is not trusted ({reason})"
        if isinstance(current, ssl.SSLError) and not isinstance(current, _CLOSED):
            # Such as https to a plain-http port (WRONG_VERSION_NUMBER): no retry helps.
            return f"the TLS handshake failed ({current.reason or current})"
        current = current.__cause__ or current.__context__
    return None
