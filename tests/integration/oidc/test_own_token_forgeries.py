"""The provider's own check of the JWTs it signed (access tokens at userinfo, introspection and the
admin API; ID tokens as logout hints), attacked: every forgery is refused, whatever part of the token
it changes, and a genuine token of each signing algorithm is accepted."""

from __future__ import annotations

import base64
import json

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from idp.oidc import tokens
from idp.oidc.keys import KeyFolder
from tests.support import make_account, make_client


def b64(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def genuine(app):
    """A genuine access token, its parts, and the provider's ES256 signing key."""
    with app.app_context():
        make_account()
        client = make_client()
        from idp.extensions import client_cache

        registered = client_cache().get(client.client_id)
        token, _ = tokens.issue_access_token(registered, "client_credentials", None, "")
    kid, key = KeyFolder(app.config["IDP_SETTINGS"].keys_dir).load().signing_key("ES256")
    header, payload, signature = token.split(".")
    return token, json.loads(base64.urlsafe_b64decode(header + "==")), \
        json.loads(base64.urlsafe_b64decode(payload + "==")), kid, key


def forgeries(token, header, claims, kid, key):
    h, p, s = token.split(".")
    yield "accepted as it is", token
    yield "alg none", b64({**header, "alg": "none"}) + "." + p + "."
    secret = OctKey.import_key(b"x" * 32)
    yield "HMAC with a guessable secret", jwt.encode({**header, "alg": "HS256"}, claims, secret, algorithms=["HS256"])
    yield "signed by a key of its own", jwt.encode(header, claims, ECKey.generate_key("P-256"), algorithms=["ES256"])
    yield "claims changed", h + "." + b64({**claims, "sub": "someone-else"}) + "." + s
    yield "header alg changed", b64({**header, "alg": "RS256"}) + "." + p + "." + s
    yield "unknown kid", jwt.encode({**header, "kid": "no-such-key"}, claims, key, algorithms=["ES256"])
    yield "crit header", b64({**header, "crit": ["x"]}) + "." + p + "." + s
    yield "signature cut short", h + "." + p + "." + s[:-4]
    yield "signature not base64", h + "." + p + ".!!!!"
    yield "header not JSON", b64(b"{not json") + "." + p + "." + s
    yield "header a list", b64([header]) + "." + p + "." + s
    yield "deeply nested header", b64(b"[" * 3000 + b"]" * 3000) + "." + p + "." + s
    yield "other issuer", jwt.encode(header, {**claims, "iss": "https://evil.example"}, key, algorithms=["ES256"])
    yield "wrong typ", jwt.encode({**header, "typ": "JWT"}, claims, key, algorithms=["ES256"])
    yield "too long", token + "A" * 9000
    yield "two parts", h + "." + p


def test_every_forgery_is_refused(app, genuine):
    token, header, claims, kid, key = genuine
    with app.app_context():
        for name, candidate in forgeries(*genuine):
            verified = tokens.decode_own(candidate, typ="at+jwt")
            if name == "accepted as it is":
                assert verified is not None and verified["sub"] == claims["sub"]
            else:
                assert verified is None, name


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_each_signing_algorithm_verifies(make_settings, alg):
    from idp import create_app

    app = create_app(make_settings(keys={"access_token_alg": alg}))
    try:
        with app.app_context():
            make_account()
            client = make_client()
            from idp.extensions import client_cache

            token, _ = tokens.issue_access_token(client_cache().get(client.client_id), "client_credentials", None, "")
            assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == alg
            assert tokens.decode_own(token, typ="at+jwt")["client_id"] == client.client_id
            h, p, s = token.split(".")
            tampered = h + "." + b64({**json.loads(base64.urlsafe_b64decode(p + "==")), "scope": "admin_api"}) + "." + s
            assert tokens.decode_own(tampered, typ="at+jwt") is None
    finally:
        app.extensions["idp.db"].dispose()
        app.extensions["idp.store"].close()
