"""Requests the provider makes on a client's behalf: its jwks_uri, its back-channel logout URI.

Whoever registers a client chooses these URLs, so each is a way to make the provider reach
something on their behalf: its own loopback services, the cloud metadata address, the internal
network. Every such request goes through a ``Fetcher``, which

- resolves the name itself, refuses loopback, private, link-local, CGNAT, multicast, unspecified
  and reserved addresses (``refusal``), and connects to exactly the addresses it checked, with TLS
  SNI and the certificate checked against the name, so a name that answers differently a moment
  later (DNS rebinding) cannot move the connection;
- speaks https only (plain http only to loopback, and only with the development setting);
- follows no redirects (a 3xx is a failure);
- ends the whole request at one deadline (lookup, connect, TLS, send, read) and reads at most
  ``max_response_bytes`` of body;
- runs at most ``max_concurrent`` requests at once per process and refuses the next at once;
- remembers a failed URL for ``failure_cache_seconds`` and fails it again without a request.

Every failure raises ``OutboundError``, whose text never says why: "connection refused" against
"timed out" against "bad certificate" would tell a client what listens at an address, a port
scanner. The reason goes to the log for operators. Operators let internal services through with
``[outbound] allow_hosts``. Registration applies the same rules up front (``registration_problem``).
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import os
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as LookupTimeout
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import metrics
from .config import OutboundSettings
from .i18n import Text
from .i18n import lazy_gettext as _l

log = logging.getLogger(__name__)

#: All a client ever learns about a failed request.
GENERIC_MESSAGE = "The request to the client's endpoint failed."
#: Bytes allowed for the status line and headers on top of the body cap.
HEADER_ALLOWANCE = 64 * 1024
#: Failed URLs remembered at most (a flood of distinct URLs must not grow memory without end).
MAX_REMEMBERED_FAILURES = 4096
#: Names that never mean an internet host: RFC 6761 localhost, mDNS .local, RFC 8375 home.arpa,
#: ICANN's private-use .internal. A name without a dot is completed by the resolver's search list.
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa")

_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: Ranges the ipaddress properties (Python 3.11) count as global although no client endpoint lives
#: there: multicast, IPv6 site-local, the 6to4 relay anycast; and the ones its lists have changed over.
_ALSO_REFUSED = tuple(ipaddress.ip_network(net) for net in (
    "224.0.0.0/4", "240.0.0.0/4", "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15",
    "ff00::/8", "fec0::/10", "fc00::/7", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
))

#: The resolver (a module name so that tests can stand in for DNS).
_getaddrinfo = socket.getaddrinfo


class OutboundError(Exception):
    """A request on a client's behalf failed or was refused. The text is the same whatever the
    reason, so it can go back to the client."""

    def __init__(self) -> None:
        super().__init__(GENERIC_MESSAGE)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str


def embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to (IPv4-mapped, NAT64, 6to4): where a connection
    to it really goes."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why the provider may not connect to ``ip`` on a client's behalf (None: it may)."""
    ip = embedded_ipv4(ip) or ip
    if ip.is_unspecified or ip in _THIS_NETWORK:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"  # 169.254.169.254: cloud metadata
    if ip.is_multicast:
        return "multicast"
    if ip in _CGNAT:
        return "shared (CGNAT)"
    if ip.is_private:
        return "private"
    if ip.is_reserved or not ip.is_global or any(ip in net for net in _ALSO_REFUSED):
        return "reserved"
    return None


def is_local_name(host: str) -> bool:
    return host in LOCAL_NAMES or host.endswith(LOCAL_SUFFIXES) or "." not in host


class _Failed(Exception):
    """Why a request failed: ``reason`` (and ``details``) for the log; ``tell`` for a registrant,
    set only where the URL itself breaks a rule."""

    def __init__(self, reason: str, *, tell: Text | None = None, remember: bool = True, **details) -> None:
        super().__init__(reason)
        self.reason, self.tell, self.remember, self.details = reason, tell, remember, details


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str
    literal: bool  # the host is an IP address


class _Bounded:
    """A socket whose every blocking call ends by the request's deadline and that reads at most
    ``budget`` bytes in all: a server that drips bytes or never stops sending is cut off."""

    deadline = 0.0
    budget = 0

    def time_left(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self.settimeout(left)

    def recv_into(self, buffer, *args, **kwargs):
        self.time_left()
        received = super().recv_into(buffer, *args, **kwargs)
        self.budget -= received
        if self.budget < 0:
            raise _Failed("response too large")
        return received

    def send(self, data, *args):
        self.time_left()
        return super().send(data, *args)

    def sendall(self, data, *args):
        self.time_left()
        return super().sendall(data, *args)


class _BoundedSocket(_Bounded, socket.socket):
    pass


class _BoundedTLSSocket(_Bounded, ssl.SSLSocket):
    pass


class Fetcher:
    """The guarded fetcher. Settings come in explicitly; one instance per process (``for_app``)
    so its concurrency bound and failure memory are the process's."""

    def __init__(self, settings: OutboundSettings, *, tls: ssl.SSLContext | None = None,
                 clock=time.monotonic) -> None:
        self.settings = settings
        self._allowed_names, self._allowed_networks = settings.allow_list()
        # certificate and host name checked (create_default_context); tests pass one trusting their CA
        self._tls = tls or ssl.create_default_context()
        self._tls.sslsocket_class = _BoundedTLSSocket
        self._clock = clock  # for the failure memory only; deadlines use time.monotonic
        self._slots = threading.BoundedSemaphore(settings.max_concurrent)
        self._failures: dict[str, float] = {}
        self._lock = threading.Lock()
        self._lookups: ThreadPoolExecutor | None = None
        self._lookups_pid = 0

    # ---------------------------------------------------------------- public
    def fetch(self, url: str, *, method: str = "GET", body: bytes | None = None,
              headers: dict[str, str] | None = None, purpose: str = "client endpoint") -> Response:
        """Request ``url`` and return a 2xx response; anything else raises OutboundError."""
        try:
            target = self._target(url)
            if self._failed_recently(url):
                raise _Failed("failed recently, not retried yet", remember=False)
            if not self._slots.acquire(blocking=False):
                raise _Failed("too many requests in flight", remember=False, limit=self.settings.max_concurrent)
            try:
                response = self._request(target, method, body, headers or {})
            finally:
                self._slots.release()
        except _Failed as failure:
            self._log(url, purpose, failure)
            if failure.remember:
                self._remember_failure(url)
            raise OutboundError() from None
        return response

    def registration_problem(self, url: str) -> Text | None:
        """What is wrong with ``url`` as a URL the provider will request (None: nothing), in words
        for the registrant (a lazy message, idp.i18n). A name that does not resolve now is accepted: the check at connect
        time still applies when it does."""
        try:
            target = self._target(url)
        except _Failed as failure:
            return failure.tell
        try:
            addresses = self._resolve(target, time.monotonic() + self.settings.timeout_seconds)
        except _Failed:
            return None
        if any(self._address_refusal(target, ip) for _, _, ip in addresses):
            if target.literal:
                return _l("must not point at a loopback, private, link-local, multicast or reserved address")
            return _l("has a host name that resolves to a loopback, private, link-local or reserved address")
        return None

    # ---------------------------------------------------------------- rules
    def _target(self, url: str) -> _Target:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http"):
            raise _Failed("not https", tell=_l("must use https"), remember=False)
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise _Failed("invalid port", tell=_l("has an invalid port"), remember=False) from None
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise _Failed("no host", tell=_l("must name a host"), remember=False)
        if parts.username is not None or parts.password is not None:
            raise _Failed("user name or password in the URL", tell=_l("must not contain a user name or password"),
                          remember=False)
        if scheme == "http" and not self.settings.allow_http_loopback:
            raise _Failed("plain http", remember=False, tell=_l("must use https (plain http to loopback needs "
                          "the development setting [outbound] allow_http_loopback)"))
        try:
            ipaddress.ip_address(host)
            literal = True
        except ValueError:
            literal = False
        if scheme == "https" and not literal and host not in self._allowed_names and is_local_name(host):
            raise _Failed("local host name", remember=False, tell=_l("must not name a local host (localhost, "
                          "*.localhost, *.local, *.internal, a name without a dot)"))
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return _Target(scheme, host, port, path, literal)

    def _address_refusal(self, target: _Target, ip) -> str | None:
        unwrapped = embedded_ipv4(ip) or ip
        if target.scheme == "http":  # development: loopback only
            return None if unwrapped.is_loopback else "plain http to a non-loopback address"
        if target.host in self._allowed_names or any(
                address in net for net in self._allowed_networks for address in (ip, unwrapped)):
            return None
        return refusal(ip)

    # ---------------------------------------------------------------- the request
    def _request(self, target: _Target, method: str, body: bytes | None, headers: dict) -> Response:
        deadline = time.monotonic() + self.settings.timeout_seconds
        addresses = self._resolve(target, deadline)
        for _, _, ip in addresses:
            # every address must pass, not just one: the name's owner chooses which we would try
            why = self._address_refusal(target, ip)
            if why:
                raise _Failed(f"refused address ({why})", address=str(ip))
        sock = response = None
        try:
            sock = self._connect(addresses, deadline)
            if target.scheme == "https":
                sock.time_left()
                sock = self._tls.wrap_socket(sock, server_hostname=target.host)  # SNI + certificate
                sock.deadline, sock.budget = deadline, self.settings.max_response_bytes + HEADER_ALLOWANCE
                connection = http.client.HTTPSConnection(target.host, target.port, context=self._tls)
            else:
                connection = http.client.HTTPConnection(target.host, target.port)
            connection.sock = sock  # connected to the checked address: it never connects by name
            connection.request(method, target.path, body=body, headers={
                "User-Agent": "examboard-idp", "Connection": "close", **headers})
            response = connection.getresponse()
            return self._read(response)
        except _Failed:
            raise
        except TimeoutError:
            raise _Failed("timed out") from None
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raise _Failed("TLS failed", detail=str(exc)) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise _Failed("connection or protocol error", detail=f"{type(exc).__name__}: {exc}") from None
        finally:
            if response is not None:
                response.close()
            if sock is not None:
                sock.close()

    def _read(self, response: http.client.HTTPResponse) -> Response:
        if 300 <= response.status < 400:
            raise _Failed("redirect (not followed)", status=response.status)
        if not 200 <= response.status < 300:
            raise _Failed("error status", status=response.status)
        limit = self.settings.max_response_bytes
        declared = response.getheader("Content-Length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:  # ('²' is a latin-1 digit)
            raise _Failed("response too large", declared=int(declared))
        data = response.read(limit + 1)
        if len(data) > limit:
            raise _Failed("response too large")
        return Response(response.status, data, response.getheader("Content-Type", ""))

    def _resolve(self, target: _Target, deadline: float) -> list[tuple]:
        """(family, socket address, ip) for each address of the host, looked up by the deadline."""
        if target.literal:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_NUMERICHOST)
        else:
            # in a worker thread: the system resolver has no timeout of its own that we set
            lookup = self._lookup_pool().submit(_getaddrinfo, target.host, target.port, type=socket.SOCK_STREAM)
            try:
                infos = lookup.result(timeout=max(0.0, deadline - time.monotonic()))
            except LookupTimeout:
                lookup.cancel()
                raise _Failed("name lookup timed out") from None
            except (OSError, UnicodeError) as exc:
                raise _Failed("name did not resolve", detail=str(exc)) from None
        addresses = [(family, sockaddr, ipaddress.ip_address(sockaddr[0]))
                     for family, _, _, _, sockaddr in infos if family in (socket.AF_INET, socket.AF_INET6)]
        if not addresses:
            raise _Failed("name did not resolve")
        return addresses

    def _connect(self, addresses: list[tuple], deadline: float) -> socket.socket:
        failure: OSError | None = None
        for family, sockaddr, _ in addresses:
            sock = _BoundedSocket(family, socket.SOCK_STREAM)
            sock.deadline, sock.budget = deadline, self.settings.max_response_bytes + HEADER_ALLOWANCE
            try:
                sock.time_left()
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                failure = exc
        raise failure

    def _lookup_pool(self) -> ThreadPoolExecutor:
        if self._lookups_pid != os.getpid():  # made after a fork: the parent's threads are not here
            with self._lock:
                if self._lookups_pid != os.getpid():
                    self._lookups = ThreadPoolExecutor(self.settings.max_concurrent,
                                                       thread_name_prefix="idp-outbound-lookup")
                    self._lookups_pid = os.getpid()
        return self._lookups

    # ---------------------------------------------------------------- failure memory and log
    def resting_for(self, url: str) -> float:
        """Seconds before ``url`` may be tried again after a recent failure (0: now). A caller with
        its own retry schedule waits this out instead of spending an attempt on it."""
        until = self._failures.get(url)
        return max(0.0, until - self._clock()) if until is not None else 0.0

    def _failed_recently(self, url: str) -> bool:
        until = self._failures.get(url)
        return until is not None and self._clock() < until

    def _remember_failure(self, url: str) -> None:
        seconds = self.settings.failure_cache_seconds
        if seconds <= 0:
            return
        with self._lock:
            now = self._clock()
            if len(self._failures) >= MAX_REMEMBERED_FAILURES:
                for key in [k for k, until in self._failures.items() if until <= now]:
                    del self._failures[key]
                while len(self._failures) >= MAX_REMEMBERED_FAILURES:
                    del self._failures[next(iter(self._failures))]  # the oldest
            self._failures.pop(url, None)
            self._failures[url] = now + seconds

    @staticmethod
    def _log(url: str, purpose: str, failure: _Failed) -> None:
        metrics.outbound_failed(purpose, failure.reason)
        details = {f"outbound_{key}": value for key, value in failure.details.items()}
        log.warning("outbound request (%s) failed: %s", purpose, failure.reason,
                    extra={"outbound_url": loggable(url), "outbound_purpose": purpose,
                           "outbound_reason": failure.reason, **details})


def loggable(url: str) -> str:
    """``url`` fit for the log: neither user info nor query string, either may carry a secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


_made = threading.Lock()
EXTENSION = "idp.outbound"


def for_app(app) -> Fetcher:
    """The app's fetcher, made on first use: one per app, so one per serving process."""
    fetcher = app.extensions.get(EXTENSION)
    if fetcher is None:
        with _made:
            fetcher = app.extensions.get(EXTENSION)
            if fetcher is None:
                fetcher = app.extensions[EXTENSION] = Fetcher(app.config["IDP_SETTINGS"].outbound)
    return fetcher


__all__ = ["GENERIC_MESSAGE", "Fetcher", "OutboundError", "Response", "embedded_ipv4", "for_app", "loggable", "refusal"]
