"""Back-channel logout, end to end over real HTTP: a person signs in to two relying parties the
test runs (one receives logout tokens with the examboard-rp kit's Flask view, the other checks them
itself with joserfc against the provider's JWKS); ending the session at the provider reaches both,
each with a valid logout token (RFC 8417 event, the session's ``sid``, no ``nonce``), and each ends
its own session. An RP that is down when the session ends gets the token when it is back."""

from __future__ import annotations

import time

import pytest

from idp.oidc import backchannel
from tests.clients.relying_party import Browser, SigningInRP
from tests.support import _csrf
from tests.tcp_proxy import TcpProxy

EMAIL = "eo@centre.example"


@pytest.fixture
def provider(make_provider):
    # The RPs listen on plain-http loopback: the development setting lets the provider reach them.
    # No failure memory, so a retry the test runs "as if its time had come" is attempted.
    live = make_provider(outbound={"allow_http_loopback": True, "failure_cache_seconds": 0})
    live.person(EMAIL)
    return live


@pytest.fixture
def rps(provider):
    made = []

    def make(name, logout, backchannel_logout_uri=None):
        rp = SigningInRP(provider, name, logout)
        made.append(rp)
        return rp.register(backchannel_logout_uri)

    yield make
    for rp in made:
        rp.close()


def wait_for(predicate, timeout=20.0) -> bool:
    """Delivery is off the request path: wait for its effect (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def sign_out_at_provider(browser: Browser) -> None:
    page = browser.get("/account")
    assert page.status_code == 200
    answer = browser.post("/signout", data={"csrf_token": _csrf(page.get_data(as_text=True))})
    assert answer.status_code in (200, 303), answer.get_data(as_text=True)
    assert browser.get("/account").status_code in (302, 303)  # the provider's own session is over


def test_ending_the_session_logs_the_person_out_of_both_rps(provider, rps):
    kit_rp, plain_rp = rps("kit", "kit"), rps("plain", "joserfc")
    browser = Browser(provider.issuer)
    first = kit_rp.sign_in(browser, EMAIL)
    second = plain_rp.sign_in(browser, EMAIL)  # single sign-on: no second sign-in at the provider
    assert first["sid"] and first["sid"] == second["sid"] and first["sub"] == second["sub"]
    bystander = Browser(provider.issuer)  # someone else's session at the kit RP is not touched
    provider.person("other@centre.example")
    assert kit_rp.sign_in(bystander, "other@centre.example")["sid"] != first["sid"]

    sign_out_at_provider(browser)

    assert wait_for(lambda: not kit_rp.signed_in(browser) and not plain_rp.signed_in(browser))
    assert kit_rp.signed_in(bystander)
    for rp in (kit_rp, plain_rp):
        [claims] = rp.logouts
        assert claims["iss"] == provider.issuer and claims["aud"] == rp.client_id
        assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
        assert claims["sid"] == first["sid"] and claims["sub"] == first["sub"]
        assert "nonce" not in claims and claims["jti"]
    assert plain_rp.refused == []
    assert kit_rp.logouts[0]["jti"] != plain_rp.logouts[0]["jti"]


def test_an_rp_that_is_down_gets_the_logout_token_when_it_is_back(provider, rps):
    kit_rp = rps("kit", "kit")
    # The plain RP's logout endpoint is reached through a proxy the test can cut: "down" is a
    # refused connection, as when the service is restarting.
    plain_rp = SigningInRP(provider, "plain", "joserfc")
    proxy = TcpProxy("127.0.0.1", int(plain_rp.url.rsplit(":", 1)[1]))
    try:
        plain_rp.register(f"http://127.0.0.1:{proxy.port}/backchannel-logout")
        browser = Browser(provider.issuer)
        kit_rp.sign_in(browser, EMAIL)
        plain_rp.sign_in(browser, EMAIL)
        proxy.cut()
        sign_out_at_provider(browser)  # answered although one RP cannot be reached

        assert wait_for(lambda: not kit_rp.signed_in(browser))   # the RP that is up: at once
        assert wait_for(lambda: proxy.refused >= 1)               # the provider tried the other
        assert plain_rp.signed_in(browser) and plain_rp.logouts == []

        proxy.restore()
        with provider.app.app_context():
            # Its retry is due after the first backoff step: run due jobs as if that time had come
            # (the provider's own poller may get there first; either way it is delivered once).
            backchannel.deliver_due(now=time.time() + backchannel.BACKOFF[0] + 1)
        assert wait_for(lambda: not plain_rp.signed_in(browser))
        assert len(plain_rp.logouts) == 1 and plain_rp.refused == []
    finally:
        proxy.close()
        plain_rp.close()


def test_discovery_advertises_backchannel_logout_with_sessions(provider):
    import requests

    meta = requests.get(provider.issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert meta["backchannel_logout_supported"] is True
    assert meta["backchannel_logout_session_supported"] is True
