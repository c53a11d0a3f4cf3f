"""DPoP (RFC 9449), conformance style: tokens bound to the key that signed the token request's proof,
refused without a fresh proof by that key at userinfo and the admin API; every field of a proof
attacked; proofs used once; server nonces; clients registered to require DPoP; authorization codes
bound by ``dpop_jkt`` (also through PAR); public clients' refresh tokens bound to the key.
Time is moved with time_machine, never slept."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlencode

import pytest
import time_machine
from joserfc import jws
from joserfc.jwk import ECKey, OctKey

from idp.oidc import dpop
from tests.dpop_keys import OMIT, DPoPKey
from tests.support import (
    ADMIN_API_SCOPE,
    PASSWORD,
    authorize,
    exchange,
    make_account,
    make_admin_client,
    make_client,
    pkce_pair,
    query,
    sign_in,
    token_request,
)

ISSUER = "http://localhost"
TOKEN_URL = ISSUER + "/token"
USERINFO_URL = ISSUER + "/userinfo"


def claims_of(jwt_value: str) -> dict:
    part = jwt_value.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture
def service(app):
    """A service using client_credentials (the simplest grant to bind)."""
    with app.app_context():
        return make_client(name="Entries batch", grant_types=["client_credentials"], scope="entries",
                           redirect_uris=[])


@pytest.fixture
def rp(app):
    with app.app_context():
        make_account()
        return make_client()


@pytest.fixture
def public_rp(app):
    with app.app_context():
        make_account()
        return make_client(name="Mobile app", token_endpoint_auth_method="none",
                           scope="openid profile offline_access")


def service_token(http, service, key: DPoPKey | None, **proof_changes):
    return token_request(http, service, {"grant_type": "client_credentials"},
                         headers={"DPoP": key.proof("POST", TOKEN_URL, **proof_changes)} if key else None)


def code_for(http, rp, **extra):
    response, verifier = authorize(http, rp, extra=extra or None)
    assert response.status_code == 302, response.get_data(as_text=True)
    return query(response.location)["code"], verifier


def with_proof(http, rp, code, verifier, key, auth="basic", **proof_changes):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
            "code_verifier": verifier}
    return token_request(http, rp, data, auth,
                         headers={"DPoP": key.proof("POST", TOKEN_URL, **proof_changes)} if key else None)


def refresh(http, rp, refresh_token, key=None, auth="basic"):
    return token_request(http, rp, {"grant_type": "refresh_token", "refresh_token": refresh_token}, auth,
                         headers={"DPoP": key.proof("POST", TOKEN_URL)} if key else None)


def userinfo(http, token, key=None, scheme="DPoP", **proof_changes):
    headers = {"Authorization": f"{scheme} {token}"}
    if key is not None:
        headers["DPoP"] = key.proof("GET", USERINFO_URL, access_token=token, **proof_changes)
    return http.get("/userinfo", headers=headers)


def assert_token_error(response, error, status=400):
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.get_json()["error"] == error, response.get_json()


def assert_resource_refused(response, error):
    assert response.status_code == 401, (response.status_code, response.get_data(as_text=True))
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("DPoP "), challenge
    assert f'error="{error}"' in challenge and 'algs="' in challenge, challenge


def dpop_tokens(http, rp, key):
    code, verifier = code_for(http, rp)
    response = with_proof(http, rp, code, verifier, key)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


# ------------------------------------------------------------------ discovery and the token endpoint
def test_discovery_names_the_proof_algorithms(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert "ES256" in meta["dpop_signing_alg_values_supported"]
    assert not {"none", "HS256"} & set(meta["dpop_signing_alg_values_supported"])


@pytest.mark.parametrize("kind", ["EC", "RSA", "OKP"])
def test_a_proof_binds_the_access_token_to_its_key(client, service, kind):
    key = DPoPKey(kind)
    response = service_token(client, service, key)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}


def test_without_a_proof_the_token_is_a_bearer_token(client, service):
    body = service_token(client, service, None).get_json()
    assert body["token_type"] == "Bearer" and "cnf" not in claims_of(body["access_token"])


def test_introspection_shows_the_binding(client, service):
    key = DPoPKey()
    token = service_token(client, service, key).get_json()["access_token"]
    raw = f"{service.client_id}:{service.client_secret}".encode()
    answer = client.post("/introspect", data={"token": token},
                         headers={"Authorization": "Basic " + base64.b64encode(raw).decode()}).get_json()
    assert answer["active"] is True and answer["token_type"] == "DPoP" and answer["cnf"] == {"jkt": key.jkt}


def _hmac_proof():
    key = DPoPKey()
    secret = OctKey.generate_key(256)
    return key.proof("POST", TOKEN_URL, alg="HS256", jwk=secret.as_dict(private=False), sign_with=secret)


def _unsigned_proof():
    key = DPoPKey()
    good = key.proof("POST", TOKEN_URL)
    header = base64.urlsafe_b64encode(json.dumps({"typ": "dpop+jwt", "alg": "none",
                                                  "jwk": key.key.as_dict(private=False)}).encode()).rstrip(b"=")
    return header.decode() + "." + good.split(".")[1] + "."


def _private_key_in_header():
    key = DPoPKey()
    return key.proof("POST", TOKEN_URL, jwk=key.key.as_dict(private=True))


def _signed_by_another_key():
    key = DPoPKey()
    return key.proof("POST", TOKEN_URL, sign_with=ECKey.generate_key("P-256"))


def _short_rsa_key():
    from joserfc.jwk import RSAKey

    small = RSAKey.generate_key(1024, private=True, auto_kid=False)
    return DPoPKey().proof("POST", TOKEN_URL, alg="RS256", jwk=small.as_dict(private=False), sign_with=small)


def _header_only(header: dict) -> str:
    """A proof that is refused for its header alone (the signature is never reached)."""
    return base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode() + ".e30.AA"


def _with_jwk_member(name, value, kind="EC"):
    key = DPoPKey(kind)
    return key.proof("POST", TOKEN_URL, jwk={**key.key.as_dict(private=False), name: value})


def _payload_signed(payload: bytes) -> str:
    """A proof signed by its own key over any payload bytes (what no JSON encoder would write)."""
    key = DPoPKey()
    return jws.serialize_compact({"typ": "dpop+jwt", "alg": key.alg, "jwk": key.key.as_dict(private=False)},
                                 payload, key.key)


def _lone_surrogate_jti() -> str:
    claims = json.dumps({"jti": "JTI", "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time())})
    return _payload_signed(claims.replace("JTI", "\\ud800").encode())


BAD_PROOFS = {
    "wrong typ": lambda: DPoPKey().proof("POST", TOKEN_URL, typ="JWT"),
    "no typ": lambda: DPoPKey().proof("POST", TOKEN_URL, typ=OMIT),
    "alg none": _unsigned_proof,
    "HMAC": _hmac_proof,
    "private key in the header": _private_key_in_header,
    "signed by another key": _signed_by_another_key,
    "short RSA key": _short_rsa_key,
    "no jwk": lambda: DPoPKey().proof("POST", TOKEN_URL, jwk=OMIT),
    "other method": lambda: DPoPKey().proof("POST", TOKEN_URL, htm="GET"),
    "other URL": lambda: DPoPKey().proof("POST", TOKEN_URL, htu="https://attacker.example/token"),
    "other endpoint": lambda: DPoPKey().proof("POST", TOKEN_URL, htu=ISSUER + "/userinfo"),
    "too old": lambda: DPoPKey().proof("POST", TOKEN_URL, iat=int(time.time()) - 301),
    "from the future": lambda: DPoPKey().proof("POST", TOKEN_URL, iat=int(time.time()) + 120),
    "iat not a number": lambda: DPoPKey().proof("POST", TOKEN_URL, iat="now"),
    "no jti": lambda: DPoPKey().proof("POST", TOKEN_URL, jti=OMIT),
    "not a JWT": lambda: "not-a-jwt",
    "header not JSON": lambda: "eyJub3Q.e30.sig",
    "nested header": lambda: base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode() + ".e30.x",
    "huge": lambda: "a" * 20_000 + ".b.c",
    "kty a list": lambda: _header_only({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": ["EC"]}}),
    "kty an object": lambda: _header_only({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": {}}}),
    "jwk a list": lambda: _header_only({"typ": "dpop+jwt", "alg": "ES256", "jwk": [1]}),
    "crv a list": lambda: _with_jwk_member("crv", ["P-256"]),
    "x a number": lambda: _with_jwk_member("x", 5),
    "y an object": lambda: _with_jwk_member("y", {}),
    "n a list": lambda: _with_jwk_member("n", ["AQAB"], "RSA"),
    "e a number": lambda: _with_jwk_member("e", 65537, "RSA"),
    "jti a lone surrogate": _lone_surrogate_jti,
    "nested payload": lambda: _payload_signed(b"[" * 1500 + b"]" * 1500),
}


@pytest.mark.parametrize("make", BAD_PROOFS.values(), ids=BAD_PROOFS.keys())
def test_a_bad_proof_gets_no_token(client, service, make):
    response = token_request(client, service, {"grant_type": "client_credentials"}, headers={"DPoP": make()})
    assert_token_error(response, "invalid_dpop_proof")
    assert "access_token" not in response.get_json()


@pytest.mark.parametrize("kty", [["EC"], {}], ids=["list", "object"])
def test_a_bad_proof_is_refused_before_the_client_is_known(client, kty):
    """The proof is read before the client authenticates: its refusal is the same to anyone."""
    response = client.post("/token", data={"grant_type": "authorization_code", "code": "x"},
                           headers={"DPoP": _header_only({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": kty}})})
    assert_token_error(response, "invalid_dpop_proof")


def test_the_query_of_htu_is_ignored(client, service):
    response = service_token(client, service, DPoPKey(), htu=TOKEN_URL + "?x=1#frag")
    assert response.status_code == 200, response.get_data(as_text=True)


def test_two_dpop_headers_are_refused(client, service):
    key = DPoPKey()
    raw = f"{service.client_id}:{service.client_secret}".encode()
    response = client.post("/token", data={"grant_type": "client_credentials"},
                           headers=[("DPoP", key.proof("POST", TOKEN_URL)), ("DPoP", key.proof("POST", TOKEN_URL)),
                                    ("Authorization", "Basic " + base64.b64encode(raw).decode())])
    assert_token_error(response, "invalid_dpop_proof")


def test_a_proof_is_used_once(client, service):
    headers = {"DPoP": DPoPKey().proof("POST", TOKEN_URL)}
    assert token_request(client, service, {"grant_type": "client_credentials"}, headers=headers).status_code == 200
    assert_token_error(token_request(client, service, {"grant_type": "client_credentials"}, headers=headers),
                       "invalid_dpop_proof")


def test_without_the_store_no_proof_is_taken_on_trust(client, service, monkeypatch):
    """The store that remembers used proofs is unreachable: the token endpoint answers 503 (fail
    closed), never a token whose proof could not be checked for replay, never a 500."""
    from idp.store import StoreUnavailable

    def unreachable(*args, **kwargs):
        raise StoreUnavailable("store down")

    monkeypatch.setattr(dpop.PROOF_IDS, "add", unreachable)
    response = service_token(client, service, DPoPKey())
    assert response.status_code == 503, response.get_data(as_text=True)
    assert "access_token" not in response.get_data(as_text=True)


# ------------------------------------------------------------------ clients registered to require DPoP
def test_a_client_registered_for_dpop_gets_nothing_without_a_proof(app, client):
    with app.app_context():
        strict = make_client(name="Keys", grant_types=["client_credentials"], scope="entries", redirect_uris=[],
                             dpop_bound_access_tokens=True)
    refused = service_token(client, strict, None)
    assert_token_error(refused, "invalid_request")
    assert "DPoP" in refused.get_json()["error_description"]
    assert service_token(client, strict, DPoPKey()).get_json()["token_type"] == "DPoP"


def test_registration_accepts_and_checks_the_metadata(app):
    from idp.oidc import clients

    with app.app_context():
        assert clients.validate_metadata({"client_name": "x", "redirect_uris": ["https://a.example/cb"],
                                          "dpop_bound_access_tokens": True})["dpop_bound_access_tokens"] is True
        with pytest.raises(clients.ClientMetadataError):
            clients.validate_metadata({"client_name": "x", "redirect_uris": ["https://a.example/cb"],
                                       "dpop_bound_access_tokens": "yes"})


# ------------------------------------------------------------------ code flow, refresh
def test_code_flow_binds_access_token_and_a_confidential_clients_refresh(client, rp):
    key = DPoPKey()
    body = dpop_tokens(client, rp, key)
    assert body["token_type"] == "DPoP" and claims_of(body["access_token"])["cnf"]["jkt"] == key.jkt
    # a confidential client's refresh token is bound to its credentials, not the key (RFC 9449 §5)
    again = refresh(client, rp, body["refresh_token"], DPoPKey())
    assert again.status_code == 200 and again.get_json()["token_type"] == "DPoP"
    plain = refresh(client, rp, again.get_json()["refresh_token"])
    assert plain.status_code == 200 and plain.get_json()["token_type"] == "Bearer"


def test_a_public_clients_refresh_token_is_bound_to_its_key(client, public_rp):
    key, thief = DPoPKey(), DPoPKey()
    code, verifier = code_for(client, public_rp, scope="openid offline_access")
    body = with_proof(client, public_rp, code, verifier, key, auth="none").get_json()
    stolen = body["refresh_token"]
    assert_token_error(refresh(client, public_rp, stolen, auth="none"), "invalid_request")
    assert_token_error(refresh(client, public_rp, stolen, thief, auth="none"), "invalid_grant")
    # neither attempt used the token up: its holder goes on, and the next one is bound too
    renewed = refresh(client, public_rp, stolen, key, auth="none")
    assert renewed.status_code == 200, renewed.get_data(as_text=True)
    assert claims_of(renewed.get_json()["access_token"])["cnf"]["jkt"] == key.jkt
    assert_token_error(refresh(client, public_rp, renewed.get_json()["refresh_token"], auth="none"),
                       "invalid_request")


def test_a_bad_proof_does_not_use_the_code_up(client, rp):
    key = DPoPKey()
    code, verifier = code_for(client, rp)
    assert_token_error(with_proof(client, rp, code, verifier, key, htm="GET"), "invalid_dpop_proof")
    assert with_proof(client, rp, code, verifier, key).status_code == 200


# ------------------------------------------------------------------ dpop_jkt: codes bound at authorization
def test_dpop_jkt_binds_the_code(client, rp):
    key = DPoPKey()
    code, verifier = code_for(client, rp, dpop_jkt=key.jkt)
    assert_token_error(with_proof(client, rp, code, verifier, None), "invalid_request")
    assert_token_error(with_proof(client, rp, code, verifier, DPoPKey()), "invalid_grant")


def test_dpop_jkt_binds_the_code_right_key(client, rp):
    key = DPoPKey()
    code, verifier = code_for(client, rp, dpop_jkt=key.jkt)
    assert with_proof(client, rp, code, verifier, key).get_json()["token_type"] == "DPoP"


def test_a_malformed_dpop_jkt_is_refused(client, rp):
    response, _ = authorize(client, rp, extra={"dpop_jkt": "not a thumbprint"}, follow_signin=False)
    assert response.status_code == 302 and query(response.location)["error"] == "invalid_request"


def test_a_proof_at_par_binds_the_code(client, rp):
    key = DPoPKey()
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "scope": "openid",
              "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}
    raw = f"{rp.client_id}:{rp.client_secret}".encode()
    basic = "Basic " + base64.b64encode(raw).decode()
    mismatch = client.post("/par", data={**params, "dpop_jkt": DPoPKey().jkt},
                           headers={"Authorization": basic, "DPoP": key.proof("POST", ISSUER + "/par")})
    assert_token_error(mismatch, "invalid_dpop_proof")
    pushed = client.post("/par", data=params, headers={"Authorization": basic,
                                                       "DPoP": key.proof("POST", ISSUER + "/par")})
    assert pushed.status_code == 201, pushed.get_data(as_text=True)
    response = client.get("/authorize?" + urlencode({"client_id": rp.client_id,
                                                     "request_uri": pushed.get_json()["request_uri"]}))
    signed = sign_in(client, "eo@centre.example", PASSWORD, query(response.location)["authreq"])
    code = query(client.get(signed.location).location)["code"]
    assert with_proof(client, rp, code, verifier, key).get_json()["token_type"] == "DPoP"


def test_a_bound_code_taken_with_another_key_is_used_up(client, rp):
    """As with a wrong PKCE verifier: whoever stole the code gets nothing, and the code is gone."""
    key = DPoPKey()
    code, verifier = code_for(client, rp, dpop_jkt=key.jkt)
    assert_token_error(with_proof(client, rp, code, verifier, DPoPKey()), "invalid_grant")
    assert_token_error(with_proof(client, rp, code, verifier, key), "invalid_grant")


# ------------------------------------------------------------------ nonces
@pytest.fixture
def nonce_app(make_settings):
    from idp import create_app

    application = create_app(make_settings(tokens={"dpop_nonce_required": True}))
    application.config["TESTING"] = True
    yield application
    application.extensions["idp.db"].dispose()
    application.extensions["idp.store"].close()


def test_the_provider_hands_out_nonces_and_requires_them(nonce_app):
    http = nonce_app.test_client()
    with nonce_app.app_context():
        service = make_client(name="Batch", grant_types=["client_credentials"], scope="entries", redirect_uris=[])
    key = DPoPKey()
    first = service_token(http, service, key)
    assert_token_error(first, "use_dpop_nonce")
    nonce = first.headers["DPoP-Nonce"]
    ok = service_token(http, service, key, nonce=nonce)
    assert ok.status_code == 200 and ok.headers["DPoP-Nonce"]
    assert_token_error(service_token(http, service, key, nonce="made-up"), "use_dpop_nonce")
    assert_token_error(service_token(http, service, key, nonce="made-up é"), "use_dpop_nonce")
    with time_machine.travel(time.time() + 2 * 300 + 1, tick=False):
        stale = service_token(http, service, key, nonce=nonce, iat=int(time.time() + 601))
        assert_token_error(stale, "use_dpop_nonce")
        assert stale.headers["DPoP-Nonce"] != nonce


def test_a_code_survives_being_told_to_use_a_nonce(nonce_app):
    """openid-client retries once with the nonce, the same code in hand."""
    http = nonce_app.test_client()
    with nonce_app.app_context():
        make_account()
        rp = make_client()
    key = DPoPKey()
    code, verifier = code_for(http, rp)
    told = with_proof(http, rp, code, verifier, key)
    assert_token_error(told, "use_dpop_nonce")
    body = with_proof(http, rp, code, verifier, key, nonce=told.headers["DPoP-Nonce"]).get_json()
    assert body["token_type"] == "DPoP"
    token = body["access_token"]
    asked = userinfo(http, token, key)
    assert_resource_refused(asked, "use_dpop_nonce")
    answered = userinfo(http, token, key, nonce=asked.headers["DPoP-Nonce"])
    assert answered.status_code == 200 and answered.headers["DPoP-Nonce"]


# ------------------------------------------------------------------ resources: userinfo and the admin API
def test_userinfo_accepts_a_bound_token_with_its_proof(client, rp):
    key = DPoPKey()
    token = dpop_tokens(client, rp, key)["access_token"]
    answer = userinfo(client, token, key)
    assert answer.status_code == 200 and answer.get_json()["sub"]


@pytest.mark.parametrize("attack", ["as a bearer token", "no proof", "proof by another key", "proof for another token",
                                    "proof for another URL", "proof for POST", "replayed proof", "ath not ASCII"])
def test_userinfo_refuses_a_bound_token_without_its_proof(client, rp, attack):
    key = DPoPKey()
    token = dpop_tokens(client, rp, key)["access_token"]
    if attack == "as a bearer token":
        response, error = userinfo(client, token, scheme="Bearer"), "invalid_token"
    elif attack == "no proof":
        response, error = userinfo(client, token), "invalid_dpop_proof"
    elif attack == "proof by another key":
        response, error = userinfo(client, token, DPoPKey()), "invalid_token"
    elif attack == "proof for another token":
        response, error = userinfo(client, token, key, ath="A" * 43), "invalid_dpop_proof"
    elif attack == "ath not ASCII":
        response, error = userinfo(client, token, key, ath="é" * 43), "invalid_dpop_proof"
    elif attack == "proof for another URL":
        response, error = userinfo(client, token, key, htu=ISSUER + "/api/v1/me"), "invalid_dpop_proof"
    elif attack == "proof for POST":
        response, error = userinfo(client, token, key, htm="POST"), "invalid_dpop_proof"
    else:
        proof = key.proof("GET", USERINFO_URL, access_token=token)
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
        assert client.get("/userinfo", headers=headers).status_code == 200
        response, error = client.get("/userinfo", headers=headers), "invalid_dpop_proof"
    assert_resource_refused(response, error)
    assert "sub" not in (response.get_json() or {})


def test_a_bearer_token_is_not_sent_with_the_dpop_scheme(client, rp):
    code, verifier = code_for(client, rp)
    token = exchange(client, rp, code, verifier).get_json()["access_token"]
    assert_resource_refused(userinfo(client, token, DPoPKey()), "invalid_token")
    assert userinfo(client, token, scheme="Bearer").status_code == 200


def test_without_a_token_both_schemes_are_offered(client):
    challenge = client.get("/userinfo").headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="userinfo"') and 'DPoP realm="userinfo"' in challenge
    assert "error=" not in challenge


def test_the_admin_api_takes_a_bound_token_only_with_its_proof(app, client):
    with app.app_context():
        make_account()
        console = make_admin_client()
    key = DPoPKey()
    response, verifier = authorize(client, console, scope=ADMIN_API_SCOPE)
    body = with_proof(client, console, query(response.location)["code"], verifier, key).get_json()
    token = body["access_token"]
    url = ISSUER + "/api/v1/accounts"
    good = client.get("/api/v1/accounts", headers={"Authorization": f"DPoP {token}",
                                             "DPoP": key.proof("GET", url, access_token=token)})
    assert good.status_code == 200, good.get_data(as_text=True)
    as_bearer = client.get("/api/v1/accounts", headers={"Authorization": f"Bearer {token}"})
    assert_resource_refused(as_bearer, "invalid_token")
    stolen = client.get("/api/v1/accounts", headers={"Authorization": f"DPoP {token}",
                                               "DPoP": DPoPKey().proof("GET", url, access_token=token)})
    assert_resource_refused(stolen, "invalid_token")


def test_a_thief_with_an_old_bound_refresh_token_and_not_its_key_cannot_end_the_grant(client, app):
    """A public client's refresh token is bound to its key: a request without that key's proof is
    refused before the token is looked at as a reuse, so a thief holding an older (rotated) token
    cannot end the holder's grant with it (found by an outside probe: the reuse check came first)."""
    from tests.support import make_account, make_client

    with app.app_context():
        make_account()
        rp = make_client(name="Mobile app", token_endpoint_auth_method="none", scope="openid profile offline_access")
    key = DPoPKey()
    code, verifier = code_for(client, rp, scope="openid offline_access")
    old = with_proof(client, rp, code, verifier, key, auth="none").get_json()["refresh_token"]
    renewed = refresh(client, rp, old, key, auth="none")
    assert renewed.status_code == 200, renewed.get_data(as_text=True)
    assert refresh(client, rp, old, auth="none").status_code == 400  # no proof
    assert refresh(client, rp, old, DPoPKey(), auth="none").status_code == 400  # the thief's own key
    again = refresh(client, rp, renewed.get_json()["refresh_token"], key, auth="none")
    assert again.status_code == 200, again.get_data(as_text=True)
