"""JSON over HTTP to the provider (discovery, JWKS, introspection), on the standard library.

- https only, certificates checked (plain http only for a loopback development issuer);
- redirects are never followed: a 3xx answer is a failed fetch. Following one could lead from
  https to plain http or to another host, and would carry the service's client secret there;
- ``timeout`` is a deadline for the whole call: connecting, the TLS handshake, sending, and
  reading every byte of the answer, each socket operation waiting only for the time left;
- answers over ``MAX_BYTES``, and JSON nested deeper than ``bounded_json.MAX_DEPTH``, are refused.

Why http.client and not urllib, requests, urllib3 or httpx: their timeouts apply to each socket
operation, so a server that trickles a byte at a time holds the caller for as long as it likes;
none has a deadline for the whole body. (Name resolution is the system resolver's and is not
bounded by the deadline: resolve the issuer's host through a reliable local resolver.)
"""

from __future__ import annotations

import http.client
import io
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlencode, urlsplit

from . import bounded_json
from .errors import ConfigurationError, ProviderUnavailable, RPError

log = logging.getLogger(__name__)
MAX_BYTES = 512 * 1024
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.I)
_USER_AGENT = "examboard-rp"


@dataclass(frozen=True)
class Response:
    status: int
    data: object
    max_age: int | None


#: (url, form fields or None, extra headers, timeout) -> Response. Tests and unusual deployments
#: (an outbound proxy with its own client, say) may pass their own; whatever it raises or answers,
#: call_provider() below turns failures into ProviderUnavailable and refuses redirects.
Fetch = Callable[[str, dict | None, dict, float], Response]


def check_url(url: str, what: str) -> str:
    try:
        parts = urlsplit(url)
        secure = parts.scheme == "https" and parts.hostname
        loopback = parts.scheme == "http" and parts.hostname in LOOPBACK
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except (ValueError, TypeError, AttributeError):
        secure = loopback = False
    if secure or loopback:
        return url
    raise ConfigurationError("insecure_url", f"{what} must be an https URL (plain http only for "
                                             f"localhost), got {url!r}")


def max_age(cache_control: str | None) -> int | None:
    if not cache_control:
        return None
    if "no-store" in cache_control.lower() or "no-cache" in cache_control.lower():
        return 0
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


def call_provider(fetch: Fetch, url: str, form: dict | None, headers: dict, timeout: float) -> Response:
    """``fetch`` with every failure as ProviderUnavailable (logged with the URL, which the
    exception's public text never shows) and any redirect refused."""
    try:
        answer = fetch(url, form, headers, timeout)
    except RPError as exc:
        log.warning("examboard_rp: %s: %s", url, exc.description)
        raise ProviderUnavailable(exc.reason, f"{url}: {exc.description}") from None
    except Exception as exc:  # noqa: BLE001 - a custom fetch may raise anything; never a 500
        log.warning("examboard_rp: %s: %s", url, exc)
        raise ProviderUnavailable("provider_unreachable", f"{url}: {exc}") from None
    if not isinstance(answer, Response):
        raise ProviderUnavailable("provider_unreachable", f"{url}: the fetch function answered {answer!r}")
    if 300 <= answer.status < 400:
        log.warning("examboard_rp: %s answered with a redirect (HTTP %s); redirects are not followed",
                    url, answer.status)
        raise ProviderUnavailable("provider_redirected", f"{url}: HTTP {answer.status}, a redirect")
    return answer


def fetch_json(url: str, form: dict | None, headers: dict, timeout: float, *,
               ssl_context: ssl.SSLContext | None = None, max_bytes: int = MAX_BYTES) -> Response:
    """GET (or POST ``form``) ``url`` and parse its JSON, within ``timeout`` seconds in all.
    ``ssl_context``: whom to trust (default: the system's CAs, or SSL_CERT_FILE)."""
    deadline = time.monotonic() + timeout
    try:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body = urlencode(form).encode() if form is not None else None
        request_headers = {"Accept": "application/json", "User-Agent": _USER_AGENT, "Connection": "close",
                           **headers}
        if body is not None:
            request_headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection, answer = _Connection(parts, deadline, ssl_context), None
        try:
            connection.request("POST" if body is not None else "GET", target, body=body,
                               headers=request_headers)
            answer = connection.getresponse()
            if 300 <= answer.status < 400:  # refused by call_provider: no need to read it
                return Response(answer.status, None, None)
            length = answer.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise ProviderUnavailable("provider_response_too_large", f"over {max_bytes} bytes")
            raw = answer.read(max_bytes + 1)
            cache_control = answer.getheader("Cache-Control")
        finally:  # the answer first: with Connection: close, http.client leaves it to us
            if answer is not None:
                answer.close()
            connection.close()
    except (OSError, ValueError, http.client.HTTPException) as exc:  # refused, timeouts, TLS, bad URLs
        raise ProviderUnavailable("provider_unreachable", f"{type(exc).__name__}: {exc}") from None
    if len(raw) > max_bytes:
        raise ProviderUnavailable("provider_response_too_large", f"over {max_bytes} bytes")
    try:
        parsed = bounded_json.parse(raw) if raw else None
    except ValueError:
        raise ProviderUnavailable("provider_bad_json", f"HTTP {answer.status}, not JSON") from None
    return Response(answer.status, parsed, max_age(cache_control))


def time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the deadline for this request has passed")
    return left


class _Connection(http.client.HTTPConnection):
    """One request's connection. connect() opens the socket itself (TCP, then TLS for https)
    so that every step, and every later read and write, waits at most for the time left."""

    def __init__(self, parts: SplitResult, deadline: float, ssl_context: ssl.SSLContext | None) -> None:
        tls = parts.scheme == "https"
        if not tls and parts.scheme != "http":
            raise ValueError(f"unsupported scheme {parts.scheme!r}")
        super().__init__(parts.hostname or "", parts.port or (443 if tls else 80))
        self.default_port = 443 if tls else 80  # the Host header names the port only when not this
        self._deadline = deadline
        self._ssl_context = (ssl_context or ssl.create_default_context()) if tls else None

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=time_left(self._deadline))
        try:
            if self._ssl_context is not None:
                sock.settimeout(time_left(self._deadline))  # CPython bounds the whole handshake by it
                sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = _DeadlineSocket(sock, self._deadline)


class _DeadlineSocket:
    """The socket operations http.client uses, each limited to the time left. As with
    socket.makefile, the socket is closed once it and the reader made from it both are (http.client
    closes the connection as soon as it has the headers of a ``Connection: close`` answer)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock, self._deadline = sock, deadline
        self._readers, self._closed = 0, False

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(time_left(self._deadline))  # sendall's timeout covers all of data
        self._sock.sendall(data)

    def recv_into(self, buffer) -> int:
        self._sock.settimeout(time_left(self._deadline))
        return self._sock.recv_into(buffer)

    def makefile(self, mode: str = "rb", *args, **kwargs) -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_Reader(self))

    def close(self) -> None:
        self._closed = True
        if self._readers <= 0:
            self._sock.close()

    def reader_closed(self) -> None:
        self._readers -= 1
        if self._closed:
            self.close()


class _Reader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._sock.reader_closed()
        super().close()
