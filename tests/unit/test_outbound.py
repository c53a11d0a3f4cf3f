"""idp/outbound.py: the guarded fetcher every request made on a client's behalf goes through.

Each rule is attacked with real listeners on loopback addresses (plain and TLS, with a throwaway
CA) and, where DNS matters, a stand-in resolver: loopback without and with the development
setting, redirects to internal addresses, slow drips, floods, DNS rebinding, the concurrency
bound, the failure memory, and the one error text a client sees whatever went wrong.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading

import pytest

from idp import config, outbound
from idp.config import OutboundSettings
from idp.outbound import GENERIC_MESSAGE, Fetcher, OutboundError
from tests.listeners import (
    Listener,
    LocalCA,
    answer,
    drip,
    flood,
    hold,
    plain_http_on_a_tls_port,
    redirect,
    stall,
)

NAMES = ("localhost", "keys.corp.example", "rebind.example", "public.example")


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"), hosts=NAMES, ips=("127.0.0.1", "127.0.0.2", "::1"))


@pytest.fixture(scope="module")
def stranger_ca(tmp_path_factory) -> LocalCA:
    """A CA the fetcher does not trust."""
    return LocalCA(tmp_path_factory.mktemp("stranger"), hosts=NAMES, ips=("127.0.0.1",))


@pytest.fixture
def listeners():
    made = []

    def start(serve, **options) -> Listener:
        made.append(Listener(serve, **options))
        return made[-1]

    yield start
    for listener in made:
        listener.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fetcher(ca, clock):
    """fetcher(allow_http_loopback=True, ...) -> a Fetcher trusting the test CA."""
    def make(**settings) -> Fetcher:
        return Fetcher(OutboundSettings(**settings), tls=ca.client(), clock=clock)
    return make


class FakeDNS:
    """Stands in for the system resolver. ``table[name]`` is a list of answers given in turn (the
    last one repeats); each answer is a tuple of addresses. Other names do not resolve."""

    def __init__(self, table: dict) -> None:
        self.table, self.asked = table, []

    def __call__(self, host, port, *args, **kwargs):
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        turns = self.table[host]
        addresses = turns[min(self.asked.count(host), len(turns)) - 1]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in addresses]


@pytest.fixture
def dns(monkeypatch):
    def install(table: dict) -> FakeDNS:
        fake = FakeDNS(table)
        monkeypatch.setattr(outbound, "_getaddrinfo", fake)
        return fake
    return install


@pytest.fixture
def connects(monkeypatch):
    """Every address the fetcher connects to, in order (the connection itself goes ahead)."""
    seen = []

    def connect(sock, address):
        seen.append(address[:2])
        return socket.socket.connect(sock, address)

    monkeypatch.setattr(outbound._BoundedSocket, "connect", connect)
    return seen


@pytest.fixture
def reasons(caplog):
    """The reasons the fetcher logged, in order."""
    caplog.set_level(logging.WARNING, logger="idp.outbound")
    return lambda: [r.outbound_reason for r in caplog.records if r.name == "idp.outbound"]


def refused(fetcher: Fetcher, url: str, reasons, **options) -> str:
    """Fetch, expect the generic error, and return the reason that went to the log."""
    before = len(reasons())
    with pytest.raises(OutboundError) as info:
        fetcher.fetch(url, **options)
    assert str(info.value) == GENERIC_MESSAGE
    assert len(reasons()) == before + 1
    return reasons()[-1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ addresses
REFUSED = [
    "0.0.0.0", "0.1.2.3", "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.5.4", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "100.127.255.254", "192.0.0.8", "192.0.2.1", "198.18.0.1",
    "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
    "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2002:a00:1::", "fc00::1", "fd12:3456::1", "fe80::1",
    "fe80::1%1", "fec0::1", "ff02::1", "ff0e::1", "2001:db8::1", "100::1", "2001::1",
]
PUBLIC = ["8.8.8.8", "93.184.216.34", "::ffff:8.8.8.8", "64:ff9b::808:808", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", REFUSED)
def test_every_local_private_or_reserved_address_is_refused(address):
    assert outbound.refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert outbound.refusal(ipaddress.ip_address(address)) is None


# ------------------------------------------------------------------ scheme and loopback
def test_plain_http_to_loopback_only_with_the_development_setting(listeners, fetcher, reasons, connects):
    server = listeners(answer())
    assert refused(fetcher(), server.url("/jwks"), reasons) == "plain http"
    assert server.connections == 0 and connects == []

    dev = fetcher(allow_http_loopback=True)
    assert dev.fetch(server.url("/jwks")).body == b'{"keys": []}'
    assert dev.fetch(server.url("/jwks", host="localhost")).status == 200
    assert server.connections == 2


def test_plain_http_even_with_the_setting_reaches_loopback_only(fetcher, dns, reasons, connects):
    dns({"public.example": [("93.184.216.34",)], "lan.example": [("10.0.0.7",)]})
    dev = fetcher(allow_http_loopback=True)
    for url in ("http://public.example/logout", "http://lan.example/logout", "http://169.254.169.254/"):
        assert refused(dev, url, reasons) == "refused address (plain http to a non-loopback address)"
    assert connects == []


def test_https_to_loopback_only_when_the_operator_allow_lists_it(listeners, ca, fetcher, reasons, connects):
    server = listeners(answer(), tls=ca.server())
    assert refused(fetcher(), server.url("/jwks"), reasons) == "refused address (loopback)"
    assert refused(fetcher(), server.url("/jwks", host="localhost"), reasons) == "local host name"
    assert refused(fetcher(), server.url("/jwks", host="[::ffff:127.0.0.1]"), reasons) == \
        "refused address (loopback)"
    assert server.connections == 0 and connects == []

    assert fetcher(allow_hosts="127.0.0.1").fetch(server.url("/jwks")).status == 200
    assert fetcher(allow_hosts="127.0.0.0/8").fetch(server.url("/jwks")).status == 200
    assert fetcher(allow_hosts="localhost").fetch(server.url("/jwks", host="localhost")).status == 200
    assert server.sni == [None, None, "localhost"]  # (no SNI for an IP address)


def test_an_allow_listed_name_may_resolve_to_an_internal_address(listeners, ca, fetcher, dns, reasons):
    server = listeners(answer(), tls=ca.server())
    dns({"keys.corp.example": [("127.0.0.1",)], "other.corp.example": [("127.0.0.1",)]})
    corp = fetcher(allow_hosts="keys.corp.example")
    assert corp.fetch(server.url("/jwks", host="keys.corp.example")).status == 200
    assert server.sni == ["keys.corp.example"]
    assert refused(corp, server.url("/jwks", host="other.corp.example"), reasons) == "refused address (loopback)"
    assert server.connections == 1


def test_the_certificate_is_checked_against_the_name_not_the_address(listeners, ca, fetcher, dns, reasons):
    """The server's certificate is valid for 127.0.0.1, where the connection goes; the URL names
    another host, and that is what TLS checks (and asks for by SNI)."""
    server = listeners(answer(), tls=ca.server())
    dns({"unlisted.example": [("127.0.0.1",)]})
    assert refused(fetcher(allow_hosts="127.0.0.1"), server.url("/", host="unlisted.example"), reasons) == \
        "TLS failed"
    assert server.sni == ["unlisted.example"]


# ------------------------------------------------------------------ redirects
@pytest.mark.parametrize("where", ["inner", "http://169.254.169.254/latest/meta-data/", "https://[::1]/"])
def test_a_redirect_is_a_failure_and_is_not_followed(listeners, fetcher, reasons, connects, where):
    inner = listeners(answer(body=b"internal secrets"))
    location = inner.url("/admin") if where == "inner" else where
    outer = listeners(redirect(location))
    assert refused(fetcher(allow_http_loopback=True), outer.url("/jwks"), reasons) == "redirect (not followed)"
    assert inner.connections == 0
    assert connects == [("127.0.0.1", outer.port)]


# ------------------------------------------------------------------ time and size
@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n",  # the body drips
    b"HTTP/1.1 200 OK\r\nX-Drip: ",  # a header line drips
    b"HTTP/1.1 2",  # the status line drips
], ids=["body", "header", "status-line"])
def test_a_slow_drip_is_cut_at_the_deadline(listeners, fetcher, reasons, head):
    """Each byte comes well within any per-read timeout; the whole request still ends at its
    deadline (0.3 s here), long before the server would finish (3000 bytes, 10 ms apart)."""
    server = listeners(drip(head, limit=3000, pause=0.01))
    assert refused(fetcher(allow_http_loopback=True, timeout_seconds=0.3), server.url(), reasons) == "timed out"
    assert 0 < server.sent < 3000


def test_a_server_that_never_answers_is_cut_at_the_deadline(listeners, fetcher, reasons):
    server = listeners(stall)
    assert refused(fetcher(allow_http_loopback=True, timeout_seconds=0.3), server.url(), reasons) == "timed out"


@pytest.mark.parametrize("head,chunk", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\n\r\n", b"x" * 1024),  # declared
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"x" * 1024),  # until the server closes
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"400\r\n" + b"x" * 1024 + b"\r\n"),
], ids=["content-length", "close-delimited", "chunked"])
def test_an_oversized_body_is_cut(listeners, fetcher, reasons, head, chunk):
    """64 MiB offered; the fetcher stops after its limit and the server cannot send the rest."""
    server = listeners(flood(head, chunk, 64 * 1024))
    assert refused(fetcher(allow_http_loopback=True, max_response_bytes=1000), server.url(), reasons) == \
        "response too large"
    assert server.sent < len(chunk) * 64 * 1024


def test_endless_headers_are_cut_by_the_byte_budget(listeners, fetcher, reasons):
    """90 header lines of 4 kB, no body: within http.client's own limits (100 lines of 64 kB), so
    only the fetcher's budget (body limit + 64 kB for the head) refuses it."""
    server = listeners(flood(b"HTTP/1.1 200 OK\r\n", b"X-Pad: " + b"a" * 4000 + b"\r\n", 90))
    assert refused(fetcher(allow_http_loopback=True, max_response_bytes=1000), server.url(), reasons) == \
        "response too large"


def test_a_response_at_the_size_limit_is_read_whole(listeners, fetcher):
    server = listeners(answer(body=b"y" * 1000))
    assert fetcher(allow_http_loopback=True, max_response_bytes=1000).fetch(server.url()).body == b"y" * 1000


# ------------------------------------------------------------------ DNS rebinding
def test_the_connection_goes_to_the_address_that_was_checked(listeners, ca, fetcher, dns, reasons):
    """The name first answers 127.0.0.2 (allow-listed: stands for a public address), then
    127.0.0.1 (refused). A fetcher that checked one answer and then connected by name would
    reach the second listener; this one connects to the address it checked, and refuses the
    next lookup's answer."""
    validated = listeners(answer(body=b'"validated"'), host="127.0.0.2", tls=ca.server())
    rebound = listeners(answer(body=b'"rebound"'), host="127.0.0.1", port=validated.port, tls=ca.server())
    lookups = dns({"rebind.example": [("127.0.0.2",), ("127.0.0.1",)]})
    guarded = fetcher(allow_hosts="127.0.0.2", failure_cache_seconds=0)
    url = validated.url("/jwks", host="rebind.example")

    assert guarded.fetch(url).body == b'"validated"'
    assert lookups.asked == ["rebind.example"]  # looked up once, connected to what was checked
    assert validated.sni == ["rebind.example"]  # TLS still speaks to, and checks, the name
    assert refused(guarded, url, reasons) == "refused address (loopback)"
    assert rebound.connections == 0


def test_rebinding_from_a_public_to_a_private_address(fetcher, dns, reasons, monkeypatch):
    """First answer public, then private: the connect is to the public address given by the lookup
    (here it cannot connect: there is no network); the next fetch's private answer is refused."""
    lookups = dns({"rebind.example": [("93.184.216.34",), ("127.0.0.1",)],
                   "mixed.example": [("93.184.216.34", "10.0.0.1")]})
    tried = []

    def connect(sock, address):
        tried.append(address[:2])
        raise ConnectionRefusedError

    monkeypatch.setattr(outbound._BoundedSocket, "connect", connect)
    guarded = fetcher(failure_cache_seconds=0)
    assert refused(guarded, "https://rebind.example/jwks", reasons) == "connection or protocol error"
    assert tried == [("93.184.216.34", 443)]
    assert refused(guarded, "https://rebind.example/jwks", reasons) == "refused address (loopback)"
    # one refused address among public ones refuses the name: its owner picks which we would try
    assert refused(guarded, "https://mixed.example/jwks", reasons) == "refused address (private)"
    assert tried == [("93.184.216.34", 443)]
    assert lookups.asked == ["rebind.example", "rebind.example", "mixed.example"]


def test_a_lookup_that_hangs_ends_at_the_deadline(fetcher, monkeypatch, reasons):
    answered = threading.Event()
    monkeypatch.setattr(outbound, "_getaddrinfo", lambda *args, **kwargs: answered.wait(30) and [])
    try:
        guarded = fetcher(timeout_seconds=0.3)
        assert refused(guarded, "https://black-hole.example/jwks", reasons) == "name lookup timed out"
        assert guarded.registration_problem("https://black-hole.example/jwks") is None  # accepted
    finally:
        answered.set()


# ------------------------------------------------------------------ URL rules
@pytest.mark.parametrize("url,reason", [
    ("ftp://keys.example/jwks", "not https"),
    ("file:///etc/passwd", "not https"),
    ("gopher://127.0.0.1:6379/_INFO", "not https"),
    ("https://user:pw@keys.example/jwks", "user name or password in the URL"),
    ("https://keys.example:99999/jwks", "invalid port"),
    ("https:///jwks", "no host"),
    ("https://localhost/jwks", "local host name"),
    ("https://LOCALHOST./jwks", "local host name"),
    ("https://app.localhost/jwks", "local host name"),
    ("https://printer.local/jwks", "local host name"),
    ("https://metadata.google.internal/computeMetadata/v1/", "local host name"),
    ("https://router.home.arpa/", "local host name"),
    ("https://metadata/jwks", "local host name"),  # no dot: the resolver's search list completes it
    ("https://2130706433/jwks", "local host name"),  # 127.0.0.1 as one number
], ids=lambda v: v if "://" in v else "")
def test_urls_refused_before_any_lookup(fetcher, dns, reasons, connects, url, reason):
    lookups = dns({})
    assert refused(fetcher(), url, reasons) == reason
    assert lookups.asked == [] and connects == []


@pytest.mark.parametrize("url", ["https://127.1/", "https://0x7f.1/", "https://0177.0.0.1/"])
def test_other_spellings_of_loopback_resolve_to_it_and_are_refused(fetcher, reasons, connects, url):
    assert refused(fetcher(), url, reasons) == "refused address (loopback)"
    assert connects == []


# ------------------------------------------------------------------ concurrency
def test_requests_beyond_the_bound_are_refused_at_once_not_queued(listeners, fetcher, reasons):
    server = listeners(hold)
    guarded = fetcher(allow_http_loopback=True, max_concurrent=1)
    statuses = []
    first = threading.Thread(target=lambda: statuses.append(guarded.fetch(server.url("/a")).status))
    first.start()
    try:
        assert server.holding.wait(10)  # the first request is in flight and held
        assert refused(guarded, server.url("/b"), reasons) == "too many requests in flight"
        assert server.connections == 1
    finally:
        server.release.set()
        first.join(10)
    assert statuses == [200]
    assert guarded.fetch(server.url("/b")).status == 200  # the slot is free again


# ------------------------------------------------------------------ failure memory
def test_a_failed_url_fails_again_without_a_request_for_a_while(listeners, fetcher, reasons, clock):
    status = {"now": 503}
    server = listeners(lambda conn, listener: answer(status["now"])(conn, listener))
    guarded = fetcher(allow_http_loopback=True, failure_cache_seconds=10)
    url = server.url("/logout")
    assert refused(guarded, url, reasons) == "error status"
    status["now"] = 200
    assert refused(guarded, url, reasons) == "failed recently, not retried yet"
    assert server.connections == 1
    assert guarded.fetch(server.url("/another")).status == 200  # remembered per URL
    clock.now += 9.9
    assert refused(guarded, url, reasons) == "failed recently, not retried yet"
    clock.now += 0.1
    assert guarded.fetch(url).status == 200
    assert server.connections == 3


def test_the_failure_memory_is_bounded(fetcher, dns, monkeypatch, reasons):
    monkeypatch.setattr(outbound, "MAX_REMEMBERED_FAILURES", 3)
    dns({f"n{i}.example": [("10.0.0.1",)] for i in range(6)})
    guarded = fetcher()
    for i in range(6):
        refused(guarded, f"https://n{i}.example/", reasons)
    assert len(guarded._failures) == 3
    # the newest are kept
    assert refused(guarded, "https://n5.example/", reasons) == "failed recently, not retried yet"


# ------------------------------------------------------------------ what a client learns
def test_every_failure_looks_the_same_to_the_client(listeners, ca, stranger_ca, fetcher, reasons):
    """Closed port, open port answering an error, a port that does not speak TLS, a server that
    never answers, a certificate from an unknown CA: one text, no cause attached; the log tells
    operators which."""
    urls = {
        "closed port": f"https://127.0.0.1:{closed_port()}/jwks",
        "open port": listeners(answer(500), tls=ca.server()).url("/jwks"),
        "not TLS": listeners(plain_http_on_a_tls_port).url("/jwks", scheme="https"),
        "timeout": listeners(stall, tls=ca.server()).url("/jwks"),
        "unknown CA": listeners(answer(), tls=stranger_ca.server()).url("/jwks"),
    }
    guarded = fetcher(allow_hosts="127.0.0.1", timeout_seconds=0.5)
    seen = {}
    for case, url in urls.items():
        with pytest.raises(OutboundError) as info:
            guarded.fetch(url)
        error = info.value
        assert error.__cause__ is None and error.__suppress_context__
        seen[case] = (type(error), str(error), repr(error), error.args)
    assert len(set(seen.values())) == 1, seen
    assert str(error) == GENERIC_MESSAGE
    for leak in ("127.0.0.1", "refused", "timed", "TLS", "SSL", "500", "Error", "certificate"):
        assert leak not in str(error)
    assert reasons() == ["connection or protocol error", "error status", "TLS failed", "timed out", "TLS failed"]


def test_the_log_keeps_secrets_out(fetcher, caplog):
    caplog.set_level(logging.WARNING, logger="idp.outbound")
    with pytest.raises(OutboundError):
        fetcher().fetch(f"https://user:hunter2@127.0.0.1:{closed_port()}/jwks?token=s3cret", method="POST",
                        body=b"logout_token=eyJsecret")
    record = caplog.records[-1]
    text = str(vars(record))
    assert record.outbound_url.startswith("https://127.0.0.1:") and record.outbound_url.endswith("/jwks")
    for secret in ("hunter2", "s3cret", "eyJsecret"):
        assert secret not in text


# ------------------------------------------------------------------ registration and settings
@pytest.mark.parametrize("url,words", [
    ("http://127.0.0.1:8080/logout", "plain http to loopback needs the development setting"),
    ("ftp://keys.example/jwks", "must use https"),
    ("https://localhost/jwks", "must not name a local host"),
    ("https://intranet/jwks", "must not name a local host"),
    ("https://127.0.0.1/jwks", "must not point at a loopback"),
    ("https://[::1]/jwks", "must not point at a loopback"),
    ("https://169.254.169.254/latest/meta-data/", "must not point at"),
    ("https://[fd00::1]/jwks", "must not point at"),
    ("https://user:pw@keys.example/jwks", "user name or password"),
    ("https://internal.example/jwks", "resolves to a loopback, private"),
    ("https://127.1/jwks", "resolves to"),
])
def test_registration_refuses_what_the_fetcher_would(fetcher, dns, url, words):
    if "127.1" not in url:
        dns({"internal.example": [("93.184.216.34", "10.1.2.3")]})
    assert words in fetcher().registration_problem(url)


def test_registration_accepts_what_the_fetcher_would(fetcher, dns):
    dns({"keys.example": [("93.184.216.34",)], "keys.corp.example": [("10.20.0.5",)],
         "keys.corp.internal": [("10.20.0.6",)]})
    assert fetcher().registration_problem("https://keys.example/jwks") is None
    assert fetcher().registration_problem("https://does-not-resolve.example/jwks") is None  # the guard at connect
    assert fetcher(allow_hosts="keys.corp.example").registration_problem("https://keys.corp.example/") is None
    assert fetcher(allow_hosts="10.20.0.0/16").registration_problem("https://keys.corp.example/") is None
    assert fetcher(allow_http_loopback=True).registration_problem("http://127.0.0.1:8080/logout") is None
    # a local name passes only when listed by name, not through a network
    assert fetcher(allow_hosts="keys.corp.internal").registration_problem("https://keys.corp.internal/") is None
    assert "local host" in fetcher(allow_hosts="10.20.0.0/16").registration_problem("https://keys.corp.internal/")


@pytest.mark.parametrize("section,words", [
    ({"allow_hosts": "10.0.0.0/33"}, "allow_hosts: '10.0.0.0/33' is neither a host name nor an IP network"),
    ({"allow_hosts": "good.example, bad host"}, "'bad host'"),
    ({"timeout_seconds": 0}, "timeout_seconds: expected more than 0"),
    ({"max_concurrent": 0}, "max_concurrent: expected 1 or more"),
    ({"max_response_bytes": 0}, "max_response_bytes: expected 1 or more"),
    ({"failure_cache_seconds": -1}, "failure_cache_seconds: expected a value of 0 or more"),
])
def test_bad_outbound_settings_are_refused_at_start(section, words):
    with pytest.raises(config.ConfigError) as info:
        config.load(None, env={}, outbound=section)
    assert words in str(info.value)


def test_outbound_settings_from_the_environment():
    settings = config.load(None, env={"IDP_OUTBOUND_ALLOW_HTTP_LOOPBACK": "true",
                                      "IDP_OUTBOUND_ALLOW_HOSTS": "keys.corp.example, 10.20.0.0/16"}).outbound
    assert settings.allow_http_loopback is True
    assert settings.allow_list() == (frozenset({"keys.corp.example"}), (ipaddress.ip_network("10.20.0.0/16"),))
    assert config.load(None, env={}).outbound.allow_http_loopback is False
