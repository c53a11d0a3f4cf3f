"""A relying party built with Authlib's OAuth 2 client, against the provider served over real HTTP.

The provider runs in werkzeug's server on 127.0.0.1 and a free port, with its issuer set to
that address, so discovery, redirects and token audiences are exactly what a deployed RP
sees. A ``requests`` session plays the browser (it fills in the sign-in pages and answers the
passkey challenge with the test passkey); Authlib's ``OAuth2Session`` plays the RP back end,
once per client authentication method.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server

from idp import create_app
from tests import support
from tests.background import Served
from tests.support import PASSWORD, make_account, make_client

REDIRECT_URI = "https://rp.example/cb"
EMAIL = "eo@centre.example"
SCOPE = "openid profile email"


@dataclass
class Live:
    app: object
    base: str
    meta: dict


@pytest.fixture
def live(make_settings):
    """The provider over HTTP; its issuer is the address it listens on."""
    holder: dict = {}

    def dispatch(environ, start_response):
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app = create_app(make_settings(server={"issuer": base}))
    holder["app"] = app
    served = Served(server, "idp-live")
    try:
        with app.app_context():
            make_account()
        meta = plain_session().get(base + "/.well-known/openid-configuration", timeout=10).json()
        yield Live(app, base, meta)
    finally:
        served.stop()
        app.extensions["idp.db"].dispose()
        app.extensions["idp.store"].close()


def plain_session() -> requests.Session:
    http = requests.Session()
    http.trust_env = False  # never through a proxy from the environment
    return http


def register(live: Live, **meta):
    with live.app.app_context():
        return make_client(redirect_uri=REDIRECT_URI, **meta)


class _FirstForm(HTMLParser):
    """The first POST form of a page: its action and the values a browser would submit."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False
        self._done = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self._done:
            return
        if tag == "form" and attrs.get("method", "get").lower() == "post":
            self._inside, self.action = True, attrs.get("action") or ""
        elif self._inside and tag == "input" and attrs.get("name"):
            if attrs.get("type", "text").lower() not in ("submit", "checkbox", "radio"):
                self.fields[attrs["name"]] = attrs.get("value") or ""
        elif self._inside and tag == "button" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form" and self._inside:
            self._inside, self._done = False, True


def browser_sign_in(live: Live, browser: requests.Session, authorization_url: str) -> str:
    """Follow the authorization URL like a browser, filling in the sign-in pages (whatever their
    number) with the person's email and password, and answering a passkey challenge with the test
    passkey that make_account gave them; the callback URL the provider sends back."""
    response = browser.get(authorization_url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    assert urlsplit(urljoin(live.base, response.headers["Location"])).path == "/signin"
    for _ in range(8):
        if response.status_code in (301, 302, 303, 307):
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(REDIRECT_URI):
                assert location.startswith(REDIRECT_URI + "?"), location
                return location
            assert location.startswith(live.base + "/"), location
            response = browser.get(location, allow_redirects=False, timeout=10)
            continue
        assert response.status_code == 200, (response.status_code, response.text[:2000])
        form = _FirstForm()
        form.feed(response.text)
        assert form.action is not None, response.text[:2000]
        for name, value in (("email", EMAIL), ("password", PASSWORD)):
            if name in form.fields:
                form.fields[name] = value
        options = re.search(r'<script type="application/json" id="webauthn-options">(.*?)</script>',
                            response.text, re.S)
        if options and "credential" in form.fields:  # what the browser's WebAuthn API would do
            form.fields["credential"] = support.AUTHENTICATORS[EMAIL].get(options.group(1))
        assert "csrf_token" in form.fields
        response = browser.post(urljoin(response.url, form.action), data=form.fields, allow_redirects=False,
                                timeout=10)
    raise AssertionError("the sign-in journey never came back to the client")


def validate_id_token(live: Live, id_token: str, client_id: str, nonce: str | None, access_token: str) -> dict:
    jwks = KeySet.import_key_set(plain_session().get(live.meta["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(id_token, jwks, algorithms=live.meta["id_token_signing_alg_values_supported"])
    options = {"iss": {"essential": True, "value": live.base}, "aud": {"essential": True, "value": client_id},
               "sub": {"essential": True}, "exp": {"essential": True}, "iat": {"essential": True}}
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
    jwt.JWTClaimsRegistry(**options).validate(decoded.claims)
    assert decoded.claims["azp"] == client_id
    expected_at_hash = create_half_hash(access_token, decoded.header["alg"]).decode()
    assert decoded.claims["at_hash"] == expected_at_hash
    return decoded.claims


def run_rp(live: Live, session: OAuth2Session, client_id: str) -> tuple[dict, dict]:
    """The code flow, userinfo and a refresh, as an Authlib RP does them."""
    meta = live.meta
    assert meta["issuer"] == live.base
    browser = plain_session()
    nonce, verifier = generate_token(20), generate_token(48)
    url, state = session.create_authorization_url(meta["authorization_endpoint"], nonce=nonce,
                                                  code_verifier=verifier)
    callback = browser_sign_in(live, browser, url)
    params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    assert params["state"] == state
    assert params["iss"] == meta["issuer"]  # RFC 9207: the RP checks where the response came from

    token = session.fetch_token(meta["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert token["token_type"].lower() == "bearer" and token["refresh_token"]
    claims = validate_id_token(live, token["id_token"], client_id, nonce, token["access_token"])

    info = session.get(meta["userinfo_endpoint"], timeout=10)
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == claims["sub"] and info.json()["email"] == EMAIL

    refreshed = session.refresh_token(meta["token_endpoint"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert refreshed["access_token"] != token["access_token"]
    new_claims = validate_id_token(live, refreshed["id_token"], client_id, None, refreshed["access_token"])
    for claim in ("iss", "sub", "aud", "auth_time", "azp"):
        assert new_claims[claim] == claims[claim], claim
    info = session.get(meta["userinfo_endpoint"], timeout=10)  # with the refreshed access token
    assert info.status_code == 200 and info.json()["sub"] == claims["sub"]
    return token, refreshed


def rp_session(client_id, secret=None, **kwargs) -> OAuth2Session:
    session = OAuth2Session(client_id, secret, scope=SCOPE, redirect_uri=REDIRECT_URI,
                            code_challenge_method="S256", **kwargs)
    session.trust_env = False
    return session


# ------------------------------------------------------------------ one test per auth method
def test_client_secret_basic(live):
    registered = register(live, token_endpoint_auth_method="client_secret_basic")
    session = rp_session(registered.client_id, registered.client_secret,
                         token_endpoint_auth_method="client_secret_basic")
    run_rp(live, session, registered.client_id)


def test_client_secret_post(live):
    registered = register(live, token_endpoint_auth_method="client_secret_post")
    session = rp_session(registered.client_id, registered.client_secret,
                         token_endpoint_auth_method="client_secret_post")
    run_rp(live, session, registered.client_id)


def test_private_key_jwt(live):
    key = RSAKey.generate_key(2048, auto_kid=True)
    registered = register(live, token_endpoint_auth_method="private_key_jwt",
                          jwks={"keys": [key.as_dict(private=False)]})
    assert registered.client_secret is None
    session = rp_session(registered.client_id, key,
                         token_endpoint_auth_method=PrivateKeyJWT(live.meta["token_endpoint"]))
    sent: list[dict] = []

    def remember_assertions(response, *args, **kwargs):
        body = response.request.body or ""
        body = body.decode() if isinstance(body, bytes) else body
        form = {k: v[0] for k, v in parse_qs(body).items()}
        if "client_assertion" in form:
            sent.append(form)

    session.hooks["response"].append(remember_assertions)
    run_rp(live, session, registered.client_id)
    assert len(sent) == 2  # code exchange and refresh each carried an assertion ...
    assert sent[0]["client_assertion"] != sent[1]["client_assertion"]

    # ... and a used assertion (same jti) does not authenticate the client again
    replay = plain_session().post(live.meta["token_endpoint"], timeout=10, data={
        "grant_type": "authorization_code", "code": "not-a-code", "redirect_uri": REDIRECT_URI,
        "client_assertion_type": sent[0]["client_assertion_type"],
        "client_assertion": sent[0]["client_assertion"]})
    assert replay.status_code in (400, 401), replay.text
    assert replay.json()["error"] == "invalid_client", replay.text

    # a fresh assertion from the same key still works: the refusal above was the jti
    fresh = rp_session(registered.client_id, key,
                       token_endpoint_auth_method=PrivateKeyJWT(live.meta["token_endpoint"]))
    fresh.token = {"access_token": "x", "token_type": "Bearer", "refresh_token": session.token["refresh_token"]}
    assert fresh.refresh_token(live.meta["token_endpoint"])["refresh_token"]


def test_none_with_pkce(live):
    registered = register(live, token_endpoint_auth_method="none")
    assert registered.client_secret is None
    session = rp_session(registered.client_id, token_endpoint_auth_method="none")
    run_rp(live, session, registered.client_id)

    # and without PKCE a public client gets no code: the error comes back to the RP, with iss
    bare = OAuth2Session(registered.client_id, scope=SCOPE, redirect_uri=REDIRECT_URI,
                         token_endpoint_auth_method="none")
    url, state = bare.create_authorization_url(live.meta["authorization_endpoint"], nonce="n")
    browser = plain_session()
    response = browser.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302
    params = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}
    assert response.headers["Location"].startswith(REDIRECT_URI + "?")
    assert params["error"] == "invalid_request" and params["state"] == state
    assert params["iss"] == live.base and "code" not in params
