"""examboard_rp against a provider that misbehaves: redirects, slow or endless answers, and answers
that are not what they should be. Each is a failed fetch: cached data keeps serving where there is
some, else 503 (never a 500, never a redirect followed, never the provider's URL shown)."""

from __future__ import annotations

import datetime as dt
import json
import ssl

import pytest
from examboard_rp import ProviderUnavailable, ResourceServer

from clients.services import results
from tests.clients.apps import protected_app
from tests.clients.listeners import FakeIssuer, Listener, endless, json_answer, raw_answer, redirect, trickle
from tests.live_provider import write_tls_files

AUDIENCE = "service"
OPAQUE = "opaque-token-0123456789abcdef"  # plausible: sent to introspection


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tls(tmp_path) -> dict:
    return write_tls_files(tmp_path / "tls")


@pytest.fixture
def idp():
    with Listener() as listener:
        yield listener


@pytest.fixture
def fake(idp) -> FakeIssuer:
    return FakeIssuer(idp, AUDIENCE)


# ------------------------------------------------------------------ redirects are never followed
def test_https_jwks_redirected_to_plain_http_cannot_smuggle_in_a_key(tls, monkeypatch):
    """The attack: an https provider's JWKS answers 302 to a plain-http URL serving the attacker's
    key; a token the attacker signed grants results.embargoed."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls["ca"]))  # the kit's default trust: the system's CAs
    with Listener(tls) as idp, Listener() as attacker:
        genuine = FakeIssuer(idp, AUDIENCE)
        forger = FakeIssuer(attacker, AUDIENCE)  # its own key, under the genuine key's kid
        forged = forger.sign(genuine.claims(profiles=["results.embargoed", "results.view"]))
        service = results.create_app({"issuer": idp.url, "audience": AUDIENCE,
                                      "results_day": (dt.date.today() + dt.timedelta(days=30)).isoformat()})
        assert service.test_client().get("/results", headers=bearer(genuine.sign())).status_code == 403  # TLS works

        idp.routes["/jwks.json"] = redirect(attacker.url + "/jwks.json")
        service = results.create_app({"issuer": idp.url, "audience": AUDIENCE,
                                      "results_day": (dt.date.today() + dt.timedelta(days=30)).isoformat()})
        answer = service.test_client().get("/results", headers=bearer(forged))
        assert answer.status_code == 503, answer.get_data(as_text=True)
        assert attacker.received == []
        assert idp.paths().count("/jwks.json") == 2


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_introspection_redirect_is_refused_and_the_secret_stays_home(idp, fake, status):
    with Listener() as elsewhere:
        idp.routes["/introspect"] = redirect(elsewhere.url + "/collect", status)
        rs = ResourceServer(idp.url, audience=AUDIENCE, client_secret="the-service-secret")
        with pytest.raises(ProviderUnavailable) as caught:
            rs.validate(OPAQUE)
        assert elsewhere.received == []  # neither the token nor Authorization: Basic went there
        assert caught.value.reason == "provider_redirected"
        sent = [r for r in idp.received if r.path == "/introspect"]
        assert len(sent) == 1 and sent[0].headers["Authorization"].startswith("Basic ")


def test_discovery_redirect_is_refused(idp):
    with Listener() as elsewhere:
        impostor = FakeIssuer(elsewhere, AUDIENCE)
        # its metadata names the configured issuer, so it would pass the issuer check
        elsewhere.routes["/.well-known/openid-configuration"] = json_answer(
            {"issuer": idp.url, "jwks_uri": elsewhere.url + "/jwks.json"})
        idp.routes["/.well-known/openid-configuration"] = redirect(
            elsewhere.url + "/.well-known/openid-configuration")
        rs = ResourceServer(idp.url, audience=AUDIENCE)
        with pytest.raises(ProviderUnavailable) as caught:
            rs.validate(impostor.sign(impostor.claims(iss=idp.url)))
        assert caught.value.reason == "provider_redirected"
        assert elsewhere.received == []


# ------------------------------------------------------------------ time and size
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_timeout_is_a_deadline_for_the_whole_call(tls, scheme):
    """A provider trickling its JWKS a byte every 20 ms never lets a single read wait for 0.5 s,
    yet the whole answer takes seconds: the call fails at the deadline."""
    with Listener(tls if scheme == "https" else None) as idp:
        fake = FakeIssuer(idp, AUDIENCE)
        idp.routes["/jwks.json"] = trickle(json.dumps(fake.jwks()).encode(), interval=0.02)
        rs = ResourceServer(idp.url, audience=AUDIENCE, timeout=0.5,
                            ssl_context=ssl.create_default_context(cafile=str(tls["ca"])))
        with pytest.raises(ProviderUnavailable) as caught:
            rs.validate(fake.sign())
        assert caught.value.reason == "provider_unreachable"
        assert idp.paths() == ["/.well-known/openid-configuration", "/jwks.json"]


def test_slow_status_line_counts_against_the_deadline(idp, fake):
    idp.routes["/.well-known/openid-configuration"] = trickle(json.dumps(fake.discovery).encode(),
                                                              interval=0.02, headers_too=True)
    with pytest.raises(ProviderUnavailable):
        ResourceServer(idp.url, audience=AUDIENCE, timeout=0.5).validate(fake.sign())


@pytest.mark.parametrize("answer", [endless(), raw_answer(b" " * (600 * 1024) + b"{}")],
                         ids=["endless", "over-the-cap"])
def test_answers_over_the_size_cap_are_refused(idp, fake, answer):
    idp.routes["/jwks.json"] = answer
    with pytest.raises(ProviderUnavailable) as caught:
        ResourceServer(idp.url, audience=AUDIENCE).validate(fake.sign())
    assert caught.value.reason == "provider_response_too_large"


# ------------------------------------------------------------------ TLS
def test_certificates_are_checked_and_ssl_context_trusts_a_private_ca(tls):
    with Listener(tls) as idp:
        fake = FakeIssuer(idp, AUDIENCE)
        with pytest.raises(ProviderUnavailable):  # a CA nobody configured: refused
            ResourceServer(idp.url, audience=AUDIENCE).validate(fake.sign())
        trusting = ssl.create_default_context(cafile=str(tls["ca"]))
        assert ResourceServer(idp.url, audience=AUDIENCE, ssl_context=trusting).validate(fake.sign()).sub


# ------------------------------------------------------------------ malformed answers
DEEP = b"[" * 100_000 + b"]" * 100_000
BAD_JWKS = {
    "not-json": raw_answer(b"<html>maintenance</html>"),
    "deeply-nested": raw_answer(DEEP),
    "json-null": raw_answer(b"null"),
    "not-an-object": json_answer([1, 2]),
    "keys-not-a-list": json_answer({"keys": "none"}),
    "kty-not-a-string": json_answer({"keys": [{"kty": ["EC"], "kid": "fake-1"}]}),
    "key-fields-wrong-types": json_answer({"keys": [{"kty": "EC", "kid": "fake-1", "crv": ["P-256"],
                                                     "x": 1, "y": {}}]}),
    "empty-key-set": json_answer({"keys": []}),
    "invalid-utf8": raw_answer(b'{"keys": ["\xff\xfe"]}'),
    "server-error": json_answer({"error": "oops"}, status=500),
    "redirect": redirect("http://127.0.0.1:9/jwks.json"),
}


@pytest.mark.parametrize("answer", BAD_JWKS.values(), ids=BAD_JWKS.keys())
def test_malformed_jwks_keeps_the_cached_keys(idp, fake, clock, answer):
    rs = ResourceServer(idp.url, audience=AUDIENCE, clock=clock, token_cache_size=0)
    http = protected_app(rs).test_client()
    assert http.get("/results", headers=bearer(fake.sign())).status_code == 200
    idp.routes["/jwks.json"] = answer
    clock.advance(300)  # the JWKS max-age: the kit asks again, gets nonsense, keeps what it has
    assert http.get("/results", headers=bearer(fake.sign())).status_code == 200
    assert idp.paths().count("/jwks.json") == 2


@pytest.mark.parametrize("answer", BAD_JWKS.values(), ids=BAD_JWKS.keys())
def test_malformed_jwks_with_nothing_cached_is_503(idp, fake, answer):
    idp.routes["/jwks.json"] = answer
    response = protected_app(ResourceServer(idp.url, audience=AUDIENCE)).test_client().get(
        "/results", headers=bearer(fake.sign()))
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert_no_provider_address(response, idp)


def good_discovery(issuer: str) -> dict:
    return {"issuer": issuer, "jwks_uri": issuer + "/jwks.json"}


BAD_DISCOVERY = {  # name -> issuer URL -> answer
    "not-json": lambda url: raw_answer(b"{'issuer': "),
    "deeply-nested": lambda url: raw_answer(DEEP),
    "not-an-object": lambda url: json_answer([good_discovery(url)]),
    "wrong-issuer": lambda url: json_answer({**good_discovery(url), "issuer": "https://idp.example.org"}),
    "issuer-not-a-string": lambda url: json_answer({**good_discovery(url), "issuer": [url]}),
    "jwks_uri-not-a-string": lambda url: json_answer({**good_discovery(url), "jwks_uri": {"url": url}}),
    "jwks_uri-unparseable": lambda url: json_answer({**good_discovery(url), "jwks_uri": "https://[::1/jwks"}),
    "jwks_uri-bad-port": lambda url: json_answer({**good_discovery(url),
                                                  "jwks_uri": "https://idp.example.org:99999/jwks.json"}),
    "jwks_uri-plain-http": lambda url: json_answer({**good_discovery(url),
                                                    "jwks_uri": "http://idp.example.org/jwks.json"}),
    "server-error": lambda url: raw_answer(b"Internal Server Error", status=500, content_type="text/plain"),
    "redirect": lambda url: redirect(url + "/elsewhere"),
}


@pytest.mark.parametrize("name", BAD_DISCOVERY)
def test_malformed_discovery_keeps_the_cached_metadata(idp, fake, clock, name):
    rs = ResourceServer(idp.url, audience=AUDIENCE, clock=clock, token_cache_size=0)
    http = protected_app(rs).test_client()
    assert http.get("/results", headers=bearer(fake.sign())).status_code == 200
    idp.routes["/.well-known/openid-configuration"] = BAD_DISCOVERY[name](idp.url)
    clock.advance(3600)  # metadata and keys both due: discovery fails, the known jwks_uri still serves
    assert http.get("/results", headers=bearer(fake.sign())).status_code == 200
    assert idp.paths().count("/.well-known/openid-configuration") == 2
    assert idp.paths().count("/jwks.json") == 2


@pytest.mark.parametrize("name", BAD_DISCOVERY)
def test_malformed_discovery_with_nothing_cached_is_503(idp, fake, name):
    idp.routes["/.well-known/openid-configuration"] = BAD_DISCOVERY[name](idp.url)
    response = protected_app(ResourceServer(idp.url, audience=AUDIENCE)).test_client().get(
        "/results", headers=bearer(fake.sign()))
    assert response.status_code == 503
    assert_no_provider_address(response, idp)


ACTIVE = {"active": True, "sub": "someone", "client_id": AUDIENCE, "scope": "openid"}
BAD_INTROSPECTION = {
    "not-json": raw_answer(b"active=true"),
    "deeply-nested": raw_answer(DEEP),
    "not-an-object": json_answer([ACTIVE]),
    "active-not-a-boolean": json_answer({**ACTIVE, "active": "true"}),
    "no-active": json_answer({k: v for k, v in ACTIVE.items() if k != "active"}),
    "token_type-not-a-string": json_answer({**ACTIVE, "token_type": 5}),
    "exp-not-a-number": json_answer({**ACTIVE, "exp": "soon"}),
    "exp-huge": raw_answer(b'{"active": true, "sub": "s", "client_id": "service", "exp": 1' + b"0" * 400 + b"}"),
    "aud-not-strings": json_answer({**ACTIVE, "aud": [1, 2]}),
    "sub-not-a-string": json_answer({**ACTIVE, "sub": {"id": 1}}),
    "profiles-not-strings": json_answer({**ACTIVE, "profiles": "results.view"}),
    "unauthorized": json_answer({"error": "invalid_client"}, status=401),
    "server-error": json_answer({"error": "oops"}, status=500),
}


@pytest.mark.parametrize("answer", BAD_INTROSPECTION.values(), ids=BAD_INTROSPECTION.keys())
def test_malformed_introspection_answer_is_503(idp, fake, answer):
    idp.routes["/introspect"] = answer
    rs = ResourceServer(idp.url, audience=AUDIENCE, client_secret="secret")
    response = protected_app(rs).test_client().get("/results", headers=bearer(OPAQUE))
    assert response.status_code == 503, response.get_data(as_text=True)
    assert_no_provider_address(response, idp)


def test_a_sound_introspection_answer_is_accepted(idp, fake):
    """The control for the test above: the same stand-in, answering properly."""
    idp.routes["/introspect"] = json_answer({**ACTIVE, "profiles": ["results.view"]})
    rs = ResourceServer(idp.url, audience=AUDIENCE, client_secret="secret")
    assert protected_app(rs).test_client().get("/results", headers=bearer(OPAQUE)).status_code == 200


# ------------------------------------------------------------------ what a 503 shows
def assert_no_provider_address(response, listener: Listener) -> None:
    port = listener.url.rsplit(":", 1)[1]
    shown = response.get_data(as_text=True) + "".join(f"{k}: {v}\n" for k, v in response.headers.items())
    assert "127.0.0.1" not in shown and port not in shown, shown


def test_unreachable_provider_503_does_not_show_its_url():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rs = ResourceServer(f"http://127.0.0.1:{port}", audience=AUDIENCE, timeout=1)
    with Listener() as stand_in:  # only to sign a token
        signed = FakeIssuer(stand_in, AUDIENCE).sign()
    response = protected_app(rs).test_client().get("/results", headers=bearer(signed))
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert str(port) not in body and "127.0.0.1" not in body and "well-known" not in body
    assert response.get_json()["error"] == "temporarily_unavailable"


def test_logout_endpoint_does_not_show_the_provider_url(idp, fake):
    """Anyone may POST to a back-channel logout URI: a token naming an unknown kid while the
    provider is unreachable must not tell them where the provider lives."""
    from examboard_rp import logout_response

    idp.routes["/jwks.json"] = json_answer({"error": "down"}, status=500)
    validator = ResourceServer(idp.url, audience=AUDIENCE).logout_validator()
    status, _, body = logout_response(validator, fake.sign(typ="logout+jwt"), lambda request: None)
    assert status == 400 and body["reason"] == "jwks_unavailable"
    assert "127.0.0.1" not in str(body)
