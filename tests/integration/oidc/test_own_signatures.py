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


def test_a_token_checked_before_fails_at_once_when_its_key_is_withdrawn(app, monkeypatch):
    """Tokens whose signature held are remembered (the same token is checked again and again),
    but only under the keys they were checked with: a key withdrawn (compromised) takes its
    remembered tokens with it."""
    from idp.oidc.keys import KeyCache

    monkeypatch.setattr(KeyCache, "CHECK_EVERY", 0.0)  # see the keyring's change at once
    with app.app_context():
        old_kid = keys().ring().signing_key(protocol.ES256)[0]
        token = tokens.sign({"iss": "http://localhost", "sub": "abc"}, protocol.ES256, typ="at+jwt")
        assert tokens.decode_own(token, typ="at+jwt") is not None
        assert token in tokens._own_signatures().current()[1]
        keys().folder.generate(protocol.ES256, now_=True)
        keys().folder.retire(old_kid, immediately=True)
        assert tokens.decode_own(token, typ="at+jwt") is None


def test_what_a_caller_does_with_the_claims_does_not_change_the_next_answer(app):
    with app.app_context():
        token = tokens.sign({"iss": "http://localhost", "sub": "abc"}, protocol.ES256, typ="at+jwt")
        first = tokens.decode_own(token, typ="at+jwt")
        first["sub"] = "someone else"
        assert tokens.decode_own(token, typ="at+jwt")["sub"] == "abc"
        assert tokens.decode_own(token, typ="JWT".lower()) is None  # the type is checked every time


def test_the_remembered_tokens_are_bounded(app, monkeypatch):
    monkeypatch.setattr(tokens._OwnSignatures, "VERIFIED_LIMIT", 3)
    with app.app_context():
        for n in range(10):
            token = tokens.sign({"iss": "http://localhost", "sub": str(n)}, protocol.ES256, typ="at+jwt")
            assert tokens.decode_own(token, typ="at+jwt")["sub"] == str(n)
            assert len(tokens._own_signatures().current()[1]) <= 3


def test_a_token_has_one_spelling(app):
    """base64url as JWS writes it and nothing else: characters outside the alphabet, padding, or
    spare bits set in a segment's last character make another token (and would let one token be
    remembered under any number of spellings)."""
    with app.app_context():
        token = tokens.sign({"iss": "http://localhost", "sub": "abc"}, protocol.ES256, typ="at+jwt")
        assert tokens.decode_own(token, typ="at+jwt") is not None
        header, payload, signature = token.split(".")
        last = signature[-1]
        # ES256's 64-byte signature leaves 4 spare bits in its last character: set one
        spare = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        sibling = spare[spare.index(last) ^ 1]
        for spelling in (token + "****", token + "==", f"{header}.{payload}.{signature[:10]}\n{signature[10:]}",
                         f"{header}.{payload}.{signature[:-1]}{sibling}", f"{header} .{payload}.{signature}"):
            assert tokens.decode_own(spelling, typ="at+jwt") is None, spelling
        assert len(tokens._own_signatures().current()[1]) == 1


def test_nested_claims_a_caller_changes_are_its_own(app):
    with app.app_context():
        token = tokens.sign({"iss": "http://localhost", "sub": "abc", "amr": ["pwd", "otp"],
                             "profiles": [{"id": "results"}]}, protocol.ES256, typ="at+jwt")
        first = tokens.decode_own(token, typ="at+jwt")
        first["amr"].append("hwk")
        first["profiles"][0]["id"] = "everything"
        again = tokens.decode_own(token, typ="at+jwt")
        assert again["amr"] == ["pwd", "otp"] and again["profiles"] == [{"id": "results"}]
