"""The JWS the provider puts together itself (idp.oidc.tokens.sign) is a standard one: for each
algorithm it signs with, joserfc verifies it with the published key, the header names that key,
and claims outside ASCII (Welsh names) come back as they went in."""

from __future__ import annotations

import base64
import json

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import protocol
from idp.extensions import keys
from idp.oidc import tokens

ALGS = [protocol.ES256, protocol.RS256, "EdDSA"]


@pytest.mark.parametrize("alg", ALGS)
def test_a_signed_token_verifies_with_the_published_key(app, alg):
    claims = {"iss": "http://localhost", "sub": "abc", "name": "Siân Ŵyn Jones", "n": 3, "list": ["a", "b"]}
    with app.app_context():
        token = tokens.sign(claims, alg, typ="at+jwt")
        again = tokens.sign(claims, alg, typ="at+jwt")  # the prepared signer, reused
        published = KeySet.import_key_set(keys().jwks(app.config["IDP_SETTINGS"].max_jwt_lifetime))
        signing_kid = keys().ring().signing_key(alg)[0]
        for each in (token, again):
            verified = jwt.decode(each, published, algorithms=[alg])
            assert verified.header == {"alg": alg, "kid": signing_kid, "typ": "at+jwt"}
            assert verified.claims == claims
            assert tokens.decode_own(each, typ="at+jwt") == claims
    header, payload, signature = token.split(".")
    assert "=" not in token and json.loads(base64.urlsafe_b64decode(payload + "==")) == claims
    if alg == protocol.ES256:
        assert len(base64.urlsafe_b64decode(signature + "==")) == 64  # r || s, not DER
