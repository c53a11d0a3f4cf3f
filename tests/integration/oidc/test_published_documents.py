"""The JWKS and the discovery metadata are answered ahead of Flask (idp.oidc.published), and are
still the provider's responses in every other way: the security headers, a request id and an
access line, 405 for other methods, and a JSON error (not a stack trace) when the keys cannot be
read."""

from __future__ import annotations

import json
import logging

import pytest

PATHS = ("/jwks.json", "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")


@pytest.mark.parametrize("path", PATHS)
def test_the_documents_are_provider_responses(app, client, path, caplog):
    with caplog.at_level(logging.INFO, logger="idp.request"):
        answer = client.get(path + "?anything=ignored", headers={"X-Request-Id": "abc-123"})
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert answer.headers["Cache-Control"].startswith("public, max-age=")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert answer.headers["X-Request-Id"] == "abc-123"
    assert int(answer.headers["Content-Length"]) == len(answer.data)
    json.loads(answer.data)
    assert [(r.path, r.status) for r in caplog.records if getattr(r, "request_id", None) == "abc-123"] == \
        [(path, 200)]
    head = client.head(path)
    assert head.status_code == 200 and head.data == b"" and head.headers["Content-Length"] == str(len(answer.data))
    for method in ("POST", "PUT", "DELETE"):
        refused = client.open(path, method=method, data="x" * 100)
        assert refused.status_code == 405 and refused.headers["Allow"] == "GET, HEAD, OPTIONS", method
    assert client.options(path).headers["Allow"] == "GET, HEAD, OPTIONS"


def test_the_metadata_names_this_issuer_and_the_keys_in_use(app, client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["issuer"] == app.config["IDP_SETTINGS"].server.issuer
    assert meta["jwks_uri"] == meta["issuer"] + "/jwks.json"
    published = {k["alg"] for k in client.get("/jwks.json").get_json()["keys"]}
    assert set(meta["id_token_signing_alg_values_supported"]) <= published


def test_an_unreadable_keyring_is_a_503_not_a_stack_trace(app, client, keys_dir):
    (keys_dir / "keyring.json").write_text("{ not json")
    app.extensions["idp.keys"]._checked = 0.0  # (look at the folder now, not in a second)
    app.extensions["idp.keys"]._version = None
    answer = client.get("/jwks.json")
    assert answer.status_code == 503 and answer.get_json() == {"error": "temporarily_unavailable"}
    assert answer.headers["Retry-After"] == "5" and "X-Request-Id" in answer.headers
