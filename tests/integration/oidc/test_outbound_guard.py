"""The outbound guard as clients meet it: registration (RFC 7591 endpoint and `idp client create`)
refuses jwks_uri and backchannel_logout_uri values the provider must not request; private_key_jwt
with a jwks_uri fails with one invalid_client description whatever went wrong; back-channel
logout posts only where the guard allows."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from idp import create_app, outbound
from idp.oidc import backchannel, client_jwks, clients, registration, server
from tests.listeners import Listener, LocalCA, answer, plain_http_on_a_tls_port, stall

# one backend: which addresses the provider refuses to fetch: nothing here depends on storage
pytestmark = pytest.mark.one_backend

GOOD = {"client_name": "Results", "redirect_uris": ["https://results.example/cb"]}
KEY = ECKey.generate_key("P-256", auto_kid=True)
JWKS = json.dumps({"keys": [KEY.as_dict(private=False)]}).encode()


@pytest.fixture
def make_app(make_settings):
    made = []

    def build(**outbound_settings):
        app = create_app(make_settings(outbound=outbound_settings))
        app.config["TESTING"] = True
        made.append(app)
        return app

    yield build
    for app in made:
        app.extensions["idp.db"].dispose()
        app.extensions["idp.store"].close()


@pytest.fixture
def listeners():
    made = []

    def start(serve, **options) -> Listener:
        made.append(Listener(serve, **options))
        return made[-1]

    yield start
    for listener in made:
        listener.close()


@pytest.fixture
def dns(monkeypatch):
    """Names the provider's lookups see on top of the system's: three on internal addresses."""
    table = {"internal.example": "10.0.0.5", "keys.corp.example": "10.20.0.5", "metadata.example": "169.254.169.254"}

    def lookup(host, port, *args, **kwargs):
        if host not in table:
            return socket.getaddrinfo(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port))]

    monkeypatch.setattr(outbound, "_getaddrinfo", lookup)


def _register(http, app, meta):
    with app.app_context():
        token = registration.issue_initial_token(actor="test")
    return http.post("/register", json=meta, headers={"Authorization": f"Bearer {token}"})


def _assertion(client_id: str) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": "http://localhost/token", "iat": now, "exp": now + 60,
              "jti": secrets.token_urlsafe(16)}
    return jwt.encode({"alg": "ES256", "kid": KEY.kid}, claims, KEY)


def _token(http, client_id: str):
    return http.post("/token", data={
        "grant_type": "client_credentials", "client_id": client_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": _assertion(client_id)})


def _jwt_client(app, jwks_uri: str) -> str:
    with app.app_context():
        return clients.create({"client_name": "Keys at a URI", "token_endpoint_auth_method": "private_key_jwt",
                               "jwks_uri": jwks_uri, "grant_types": ["client_credentials"], "scope": "svc"},
                              actor="test", pepper=app.extensions["idp.pepper"]).client.client_id


# ------------------------------------------------------------------ registration
BAD = [
    ("http://127.0.0.1:8080/x", "plain http to loopback needs the development setting"),
    ("http://rp.example/x", "must use https"),
    ("https://localhost/x", "must not name a local host"),
    ("https://app.localhost/x", "must not name a local host"),
    ("https://printer.local/x", "must not name a local host"),
    ("https://intranet/x", "must not name a local host"),
    ("https://127.0.0.1/x", "must not point at a loopback"),
    ("https://[::1]/x", "must not point at a loopback"),
    ("https://[::ffff:127.0.0.1]/x", "must not point at a loopback"),
    ("https://0.0.0.0/x", "must not point at"),
    ("https://[::]/x", "must not point at"),
    ("https://169.254.169.254/latest/meta-data/", "must not point at"),
    ("https://10.1.2.3/x", "must not point at"),
    ("https://192.168.0.10/x", "must not point at"),
    ("https://100.64.0.1/x", "must not point at"),
    ("https://[fc00::1]/x", "must not point at"),
    ("https://[fe80::1]/x", "must not point at"),
    ("https://user:pw@rp.example/x", "user name or password"),
    ("https://internal.example/x", "resolves to a loopback, private"),
    ("https://metadata.example/x", "resolves to a loopback, private"),
    ("https://127.1/x", "resolves to a loopback, private"),
]


@pytest.mark.parametrize("field", ["jwks_uri", "backchannel_logout_uri"])
@pytest.mark.parametrize("uri,words", BAD, ids=[b[0] for b in BAD])
def test_registration_refuses_uris_the_provider_must_not_request(app, client, dns, field, uri, words):
    meta = {**GOOD, field: uri}
    if field == "jwks_uri":
        meta["token_endpoint_auth_method"] = "private_key_jwt"
    response = _register(client, app, meta)
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"] == "invalid_client_metadata"
    assert body["error_description"].startswith(field + " ") and words in body["error_description"]


def test_registration_accepts_the_exceptions_operators_choose(make_app, dns):
    app = make_app(allow_http_loopback=True, allow_hosts="keys.corp.example")
    http = app.test_client()
    for meta in ({**GOOD, "backchannel_logout_uri": "http://127.0.0.1:8101/logout"},
                 {**GOOD, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://keys.corp.example/j"},
                 # a name that does not resolve now: accepted, the guard checks again at each request
                 {**GOOD, "backchannel_logout_uri": "https://rp.example/logout"},
                 # redirect URIs are followed by the browser, not requested by the provider: unchanged
                 {**GOOD, "redirect_uris": ["http://127.0.0.1:8080/cb", "http://localhost/cb"]}):
        response = _register(http, app, meta)
        assert response.status_code == 201, (meta, response.get_json())


def test_the_cli_refuses_them_too(settings, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(IDP_DATABASE_URL=settings.database_url, IDP_DATA_DIR=str(settings.data_dir),
               IDP_KEYS_DIR=str(settings.keys_dir), IDP_SECRET_KEY="test-secret-key",
               IDP_LOGGING_LEVEL="WARNING", IDP_ISSUER="http://localhost")
    if settings.store.redis_url:
        env.update(IDP_REDIS_URL=settings.store.redis_url, IDP_STORE_PREFIX=settings.store.prefix)
    idp = str(Path(sys.executable).with_name("idp"))

    def create(*args, extra_env=None):
        return subprocess.run([idp, "client", "create", "--name", "CLI client", "--redirect-uri",
                               "https://rp.example/cb", *args], cwd=tmp_path, env={**env, **(extra_env or {})},
                              capture_output=True, text=True, timeout=60, check=False)

    for args, words in [
        (("--backchannel-logout-uri", "https://169.254.169.254/latest/meta-data/"),
         "backchannel_logout_uri must not point at"),
        (("--auth-method", "private_key_jwt", "--jwks-uri", "https://localhost/jwks"), "jwks_uri must not name a local host"),
        (("--backchannel-logout-uri", "http://127.0.0.1:8101/logout"), "needs the development setting"),
    ]:
        done = create(*args)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith("idp: error: invalid_client_metadata: ") and words in done.stderr, done.stderr
    allowed = create("--backchannel-logout-uri", "http://127.0.0.1:8101/logout",
                     extra_env={"IDP_OUTBOUND_ALLOW_HTTP_LOOPBACK": "true"})
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["backchannel_logout_uri"] == "http://127.0.0.1:8101/logout"


# ------------------------------------------------------------------ private_key_jwt with a jwks_uri
def test_private_key_jwt_fetches_keys_from_a_loopback_jwks_uri_with_the_development_setting(make_app, listeners):
    keys = listeners(answer(body=JWKS))
    app = make_app(allow_http_loopback=True)
    client_id = _jwt_client(app, keys.url("/jwks"))
    response = _token(app.test_client(), client_id)
    assert response.status_code == 200, response.get_json()
    assert keys.connections == 1


@pytest.fixture(scope="module")
def cas(tmp_path_factory) -> tuple[LocalCA, LocalCA]:
    """Two CAs: the provider is made to trust the first (SSL_CERT_FILE), not the second."""
    return tuple(LocalCA(tmp_path_factory.mktemp(name), hosts=("localhost",), ips=("127.0.0.1",))
                 for name in ("trusted", "untrusted"))


def test_every_jwks_uri_failure_is_the_same_invalid_client(make_app, listeners, cas, monkeypatch):
    """A closed port, an open one answering an error, one not speaking TLS, one never answering,
    an untrusted certificate, a document that is not a JWK Set: the client sees one answer.
    (127.0.0.1 is allow-listed so that these listeners can be reached at all.)"""
    trusted, untrusted = cas
    monkeypatch.setenv("SSL_CERT_FILE", str(trusted.files["ca"]))  # read when the app's fetcher is made
    monkeypatch.setattr(client_jwks, "_cache", {})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    uris = {
        "closed port": f"https://127.0.0.1:{closed}/jwks",
        "error status": listeners(answer(500), tls=trusted.server()).url("/jwks"),
        "not TLS": listeners(plain_http_on_a_tls_port).url("/jwks", scheme="https"),
        "timeout": listeners(stall).url("/jwks", scheme="https"),
        "untrusted certificate": listeners(answer(body=JWKS), tls=untrusted.server()).url("/jwks"),
        "not a JWK Set": listeners(answer(body=b"<html>hello</html>")).url("/jwks"),
    }
    app = make_app(allow_hosts="127.0.0.1", allow_http_loopback=True, timeout_seconds=0.5)
    http = app.test_client()
    working = listeners(answer(body=JWKS), tls=trusted.server()).url("/jwks")
    assert _token(http, _jwt_client(app, working)).status_code == 200  # the same path, succeeding
    answers = {}
    for case, uri in uris.items():
        response = _token(http, _jwt_client(app, uri))
        answers[case] = (response.status_code, response.get_data(as_text=True))
    assert len(set(answers.values())) == 1, answers
    status, body = answers["closed port"]
    assert status == 401  # the one answer to every failed client authentication
    assert json.loads(body) == {"error": "invalid_client", "error_description": server.CLIENT_AUTH_FAILED}


# ------------------------------------------------------------------ back-channel logout
def test_back_channel_logout_posts_only_where_the_guard_allows(make_app, listeners):
    receiver = listeners(answer(200, b""))
    guarded, development = make_app(), make_app(allow_http_loopback=True)
    with guarded.app_context():
        assert backchannel._post(receiver.url("/logout"), "a.logout.token") is False
    assert receiver.connections == 0
    with development.app_context():
        assert backchannel._post(receiver.url("/logout"), "a.logout.token") is True
    assert receiver.connections == 1
