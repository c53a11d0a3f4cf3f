"""The OpenID Foundation conformance suite's "Basic OP" plan, module by module, plus the OAuth
behaviour around it (token errors, client credentials, introspection, revocation).

Each ``test_oidcc_*`` is named after the conformance module it mirrors (oidcc-server ->
test_oidcc_server). Modules that do not apply to a code-flow-only provider that neither
supports request objects nor registration by the suite are left out. Time is moved with
time_machine, never slept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
import time_machine
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey
from werkzeug.datastructures import MultiDict

from idp import protocol
from tests.support import (
    PASSWORD,
    authorize,
    exchange,
    make_account,
    make_client,
    pkce_pair,
    query,
    sign_in,
    token_request,
)

ISSUER = "http://localhost"
NONCE = "n-0S6_WzA2Mj"
EMAIL = "eo@centre.example"
PHONE = "+447700900123"
ALL_ALGS = ["RS256", "ES256", "EdDSA", "PS256"]


# ------------------------------------------------------------------ helpers


@pytest.fixture
def rp(app):
    """One person and one confidential (client_secret_basic) relying party."""
    with app.app_context():
        make_account(phone=PHONE)
        return make_client()


def new_client(app, **meta):
    with app.app_context():
        return make_client(**meta)


def redirect_params(response, rp) -> dict:
    """The parameters of a redirect back to the client; asserts it goes to the registered URI,
    each parameter appears once, and ``iss`` (RFC 9207) is there."""
    assert response.status_code in (302, 303), (response.status_code, response.get_data(as_text=True)[:800])
    location = urlsplit(response.location)
    expected = urlsplit(rp.redirect_uri)
    assert (location.scheme, location.netloc, location.path) == (expected.scheme, expected.netloc,
                                                                  expected.path), response.location
    assert not location.fragment, response.location
    raw = parse_qs(location.query, keep_blank_values=True)
    assert all(len(v) == 1 for v in raw.values()), f"repeated parameter in {response.location}"
    params = {k: v[0] for k, v in raw.items()}
    assert params.get("iss") == ISSUER, params
    return params


def code_params(response, rp, state="st") -> dict:
    params = redirect_params(response, rp)
    assert "error" not in params, params
    assert params.get("code"), params
    assert params.get("state") == state, params
    return params


def error_params(response, rp, error, state="st") -> dict:
    params = redirect_params(response, rp)
    allowed = (error,) if isinstance(error, str) else tuple(error)
    assert params.get("error") in allowed, params
    assert "code" not in params, params
    if state is None:
        assert "state" not in params, params
    else:
        assert params.get("state") == state, params
    return params


def assert_error_page(response):
    """An error shown to the person: never a redirect to an unverified place."""
    assert response.status_code == 400, (response.status_code, response.location)
    assert "Location" not in response.headers, response.headers.get("Location")
    assert response.mimetype == "text/html"


def auth_query(rp, **params) -> str:
    base = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
            "scope": "openid", "state": "st", "nonce": NONCE}
    base.update(params)
    return urlencode({k: v for k, v in base.items() if v is not None})


def start(http, rp, **params):
    """One GET /authorize, not followed."""
    return http.get("/authorize?" + auth_query(rp, **params))


def login(http, email=EMAIL, password=PASSWORD):
    response = sign_in(http, email, password)
    assert response.status_code == 303, response.get_data(as_text=True)


def finish_signin(http, response, email=EMAIL):
    """From a redirect to /signin, sign in and come back to /authorize."""
    assert response.status_code == 302 and response.location.startswith("/signin"), (
        response.status_code, response.location)
    signed = sign_in(http, email, PASSWORD, query(response.location)["authreq"])
    assert signed.status_code == 303, signed.get_data(as_text=True)
    return http.get(signed.location)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def basic(client) -> dict:
    raw = f"{client.client_id}:{client.client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def keyset(http) -> KeySet:
    return KeySet.import_key_set(http.get("/jwks.json").get_json())


def decode(http, token: str):
    return jwt.decode(token, keyset(http), algorithms=["RS256", "ES256", "EdDSA"])


def id_token_claims(http, token: str, rp) -> dict:
    decoded = decode(http, token)
    c = decoded.claims
    now = time.time()
    assert c["iss"] == ISSUER
    assert c["aud"] == rp.client_id or (isinstance(c["aud"], list) and rp.client_id in c["aud"])
    assert isinstance(c["exp"], int) and c["exp"] > now
    assert isinstance(c["iat"], int) and c["iat"] <= now + 1
    assert isinstance(c["sub"], str) and 0 < len(c["sub"]) <= 255
    return c


def half_hash(value: str, alg: str) -> str:
    digest = {"RS256": hashlib.sha256, "ES256": hashlib.sha256, "PS256": hashlib.sha256,
              "EdDSA": hashlib.sha512}[alg](value.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def assert_no_store(response):
    assert "no-store" in response.headers.get("Cache-Control", ""), dict(response.headers)


#: invalid_client without an Authorization header: RFC 6749 5.2 allows 400 or 401
BODY_AUTH_FAILED = (400, 401)


def assert_token_error(response, status: int | tuple, error: str | tuple):
    allowed = (error,) if isinstance(error, str) else error
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] in allowed, body
    assert isinstance(body.get("error_description"), str) and body["error_description"], body
    assert_no_store(response)


def full_flow(http, rp, *, scope="openid", auth="basic", extra=None, nonce=NONCE, state="st"):
    """authorize (signing in if needed) + exchange; the token response."""
    response, verifier = authorize(http, rp, scope=scope, extra=extra, nonce=nonce, state=state)
    params = code_params(response, rp, state=state)
    tokens = exchange(http, rp, params["code"], verifier, auth=auth)
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    return tokens.get_json()


def refresh(http, rp, refresh_token, auth="basic", **extra):
    return token_request(http, rp, {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra},
                        auth)


def introspect(http, client, token, auth="basic", **extra):
    return _client_post(http, "/introspect", client, {"token": token, **extra}, auth)


def revoke(http, client, token, auth="basic", **extra):
    return _client_post(http, "/revoke", client, {"token": token, **extra}, auth)


def _client_post(http, path, client, data, auth):
    headers = {}
    if auth == "basic":
        headers = basic(client)
    elif auth == "post":
        data = {**data, "client_id": client.client_id, "client_secret": client.client_secret}
    elif auth == "none":
        data = {**data, "client_id": client.client_id}
    return http.post(path, data=data, headers=headers)


def unsigned_jwt(claims: dict) -> str:
    def b64(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


# ------------------------------------------------------------------ oidcc-server & friends
def test_oidcc_server(app, client, rp):
    state = "a b&c=d/é?%20+"  # echoed exactly, whatever it holds
    response, verifier = authorize(client, rp, scope="openid", state=state)
    params = code_params(response, rp, state=state)
    assert set(params) == {"code", "state", "iss"}
    tokens = exchange(client, rp, params["code"], verifier)
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    assert tokens.mimetype == "application/json"
    assert_no_store(tokens)
    body = tokens.get_json()
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert body["scope"].split() == ["openid"]
    claims = id_token_claims(client, body["id_token"], rp)
    assert claims["nonce"] == NONCE
    info = client.get("/userinfo", headers=bearer(body["access_token"]))
    assert info.status_code == 200
    assert info.get_json()["sub"] == claims["sub"]


def test_oidcc_response_type_missing(app, client, rp):
    login(client)
    response = start(client, rp, response_type=None)
    error_params(response, rp, ("unsupported_response_type", "invalid_request"))


def test_authorization_errors_go_back_to_the_client_with_state_and_iss(app, client, rp):
    login(client)
    for response_type in ("token", "id_token", "code id_token", "code token"):
        response = start(client, rp, response_type=response_type)
        params = error_params(response, rp, ("unsupported_response_type", "unauthorized_client",
                                             "invalid_request"))
        assert "access_token" not in params and "id_token" not in params
        assert "access_token" not in response.location and "id_token=" not in response.location
    error_params(start(client, rp, scope="profile email"), rp, "invalid_scope")  # no openid
    error_params(start(client, rp, prompt="none login"), rp, "invalid_request")
    # without state, none comes back
    error_params(start(client, rp, scope="profile", state=None), rp, "invalid_scope", state=None)
    # and the request that is fine still gets its code
    code_params(start(client, rp), rp)


def test_oidcc_userinfo_get(app, client, rp):
    tokens = full_flow(client, rp, scope="openid email")
    response = client.get("/userinfo", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json()["email"] == EMAIL


def test_oidcc_userinfo_post_header(app, client, rp):
    tokens = full_flow(client, rp, scope="openid email")
    response = client.post("/userinfo", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["email"] == EMAIL


def test_oidcc_userinfo_post_body(app, client, rp):
    tokens = full_flow(client, rp, scope="openid email")
    response = client.post("/userinfo", data={"access_token": tokens["access_token"]})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["email"] == EMAIL


def test_userinfo_refuses_bad_requests(app, client, rp):
    tokens = full_flow(client, rp)
    none = client.get("/userinfo")
    assert none.status_code == 401
    assert none.headers["WWW-Authenticate"].startswith("Bearer")
    both = client.post("/userinfo", headers=bearer(tokens["access_token"]),
                       data={"access_token": tokens["access_token"]})
    assert both.status_code == 400 and both.get_json()["error"] == "invalid_request"
    forged = tokens["access_token"][:-4] + ("AAAA" if not tokens["access_token"].endswith("AAAA") else "BBBB")
    bad = client.get("/userinfo", headers=bearer(forged))
    assert bad.status_code == 401 and bad.get_json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    # an ID token is not an access token
    as_access = client.get("/userinfo", headers=bearer(tokens["id_token"]))
    assert as_access.status_code == 401


def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(app, client, rp):
    tokens = full_flow(client, rp, nonce=None)
    claims = id_token_claims(client, tokens["id_token"], rp)
    assert "nonce" not in claims


# ------------------------------------------------------------------ scopes
def _userinfo(http, rp, scope):
    tokens = full_flow(http, rp, scope=scope)
    response = http.get("/userinfo", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    return tokens, response.get_json()


def test_oidcc_scope_profile(app, client, rp):
    _, info = _userinfo(client, rp, "openid profile")
    assert info["name"] == "Ada Lovelace" and info["given_name"] == "Ada" and info["family_name"] == "Lovelace"
    assert info["locale"] == "en" and isinstance(info["updated_at"], int)
    assert not {"email", "phone_number", "role"} & set(info)


def test_oidcc_scope_email(app, client, rp):
    _, info = _userinfo(client, rp, "openid email")
    assert info["email"] == EMAIL and info["email_verified"] is True
    assert not {"name", "phone_number"} & set(info)


def test_oidcc_scope_phone(app, client, rp):
    _, info = _userinfo(client, rp, "openid phone")
    assert info["phone_number"] == PHONE and info["phone_number_verified"] is False
    assert not {"name", "email"} & set(info)


def test_oidcc_scope_all(app, client, rp):
    # address is not supported: it is ignored (OIDC Core 3.1.2.1), never an error
    tokens, info = _userinfo(client, rp, "openid profile email address phone")
    assert set(tokens["scope"].split()) == {"openid", "profile", "email", "phone"}
    for claim in ("name", "given_name", "family_name", "email", "email_verified", "phone_number"):
        assert claim in info, claim
    assert "address" not in info


def test_oidcc_ensure_other_scope_order_succeeds(app, client, rp):
    tokens, info = _userinfo(client, rp, "email openid")
    assert set(tokens["scope"].split()) == {"email", "openid"}
    id_token_claims(client, tokens["id_token"], rp)
    assert info["email"] == EMAIL


# ------------------------------------------------------------------ display, prompt, max_age
def test_oidcc_display_page(app, client, rp):
    tokens = full_flow(client, rp, extra={"display": "page"})
    id_token_claims(client, tokens["id_token"], rp)


def test_oidcc_display_popup(app, client, rp):
    tokens = full_flow(client, rp, extra={"display": "popup"})
    id_token_claims(client, tokens["id_token"], rp)


def test_oidcc_prompt_login(app, client, rp):
    first = id_token_claims(client, full_flow(client, rp)["id_token"], rp)
    with time_machine.travel(time.time() + 5, tick=True):
        response, verifier = authorize(client, rp, extra={"prompt": "login"}, follow_signin=False)
        # signed in already, yet prompt=login must ask again
        assert response.status_code == 302 and response.location.startswith("/signin"), response.location
        params = code_params(finish_signin(client, response), rp)
        tokens = exchange(client, rp, params["code"], verifier)
        assert tokens.status_code == 200, tokens.get_data(as_text=True)
        second = id_token_claims(client, tokens.get_json()["id_token"], rp)
    assert second["sub"] == first["sub"]
    assert second["auth_time"] >= first["auth_time"] + 5


def test_oidcc_prompt_none_not_logged_in(app, client, rp):
    response = start(client, rp, prompt="none", state="s-none")
    error_params(response, rp, "login_required", state="s-none")


def test_oidcc_prompt_none_logged_in(app, client, rp):
    first = id_token_claims(client, full_flow(client, rp)["id_token"], rp)
    response, verifier = authorize(client, rp, extra={"prompt": "none"}, follow_signin=False)
    params = code_params(response, rp)
    tokens = exchange(client, rp, params["code"], verifier)
    second = id_token_claims(client, tokens.get_json()["id_token"], rp)
    assert second["sub"] == first["sub"] and second["auth_time"] == first["auth_time"]


def test_oidcc_max_age_1(app, client, rp):
    first = id_token_claims(client, full_flow(client, rp)["id_token"], rp)
    with time_machine.travel(time.time() + 2, tick=True):
        # the session is older than max_age: prompt=none cannot satisfy it
        error_params(start(client, rp, max_age="1", prompt="none"), rp, "login_required")
        response, verifier = authorize(client, rp, extra={"max_age": "1"}, follow_signin=False)
        assert response.status_code == 302 and response.location.startswith("/signin"), response.location
        params = code_params(finish_signin(client, response), rp)
        tokens = exchange(client, rp, params["code"], verifier)
        assert tokens.status_code == 200, tokens.get_data(as_text=True)
        second = id_token_claims(client, tokens.get_json()["id_token"], rp)
    assert second["auth_time"] >= first["auth_time"] + 2


def test_oidcc_max_age_10000(app, client, rp):
    first = id_token_claims(client, full_flow(client, rp)["id_token"], rp)
    response, verifier = authorize(client, rp, extra={"max_age": "10000"}, follow_signin=False)
    params = code_params(response, rp)  # no second sign-in
    tokens = exchange(client, rp, params["code"], verifier)
    second = id_token_claims(client, tokens.get_json()["id_token"], rp)
    assert second["auth_time"] == first["auth_time"]  # auth_time is required when max_age was asked


def test_oidcc_id_token_hint(app, client, rp):
    first_tokens = full_flow(client, rp)
    first = id_token_claims(client, first_tokens["id_token"], rp)
    response, verifier = authorize(client, rp, follow_signin=False,
                                   extra={"prompt": "none", "id_token_hint": first_tokens["id_token"]})
    params = code_params(response, rp)
    second = id_token_claims(client, exchange(client, rp, params["code"], verifier).get_json()["id_token"], rp)
    assert second["sub"] == first["sub"]


def test_id_token_hint_for_another_person_is_not_answered_silently(app, client, rp):
    with app.app_context():
        make_account(email="other@centre.example")
    other_browser = app.test_client()
    response, verifier = authorize(other_browser, rp, email="other@centre.example")
    other_code = code_params(response, rp)["code"]
    other_id_token = exchange(other_browser, rp, other_code, verifier).get_json()["id_token"]
    login(client)  # this browser is eo@centre.example
    error_params(start(client, rp, prompt="none", id_token_hint=other_id_token), rp, "login_required")
    interactive = start(client, rp, id_token_hint=other_id_token)
    assert interactive.status_code == 302 and interactive.location.startswith("/signin"), interactive.location


def test_oidcc_login_hint(app, client, rp):
    response = start(client, rp, login_hint=EMAIL)
    assert response.status_code == 302 and response.location.startswith("/signin")
    page = client.get(response.location)
    assert page.status_code == 200
    assert f'value="{EMAIL}"' in page.get_data(as_text=True)
    code_params(finish_signin(client, response), rp)


def test_oidcc_ui_locales(app, client, rp):
    response = start(client, rp, ui_locales="cy-GB en")
    assert response.status_code == 302 and response.location.startswith("/signin")
    page = client.get(response.location)
    assert page.status_code == 200
    assert '<html lang="cy" ' in page.get_data(as_text=True)  # the root element, whatever its class
    code_params(finish_signin(client, response), rp)


def test_oidcc_claims_locales(app, client, rp):
    tokens = full_flow(client, rp, scope="openid profile", extra={"claims_locales": "cy en"})
    id_token_claims(client, tokens["id_token"], rp)


def test_acr_values_is_accepted(app, client, rp):
    # acr_values is a voluntary request (OIDC Core 3.1.2.1): it never fails the request
    tokens = full_flow(client, rp, extra={"acr_values": " ".join(protocol.ACR_VALUES)})
    assert id_token_claims(client, tokens["id_token"], rp)["acr"] in protocol.ACR_VALUES


@pytest.mark.parametrize("mode", ["fragment", "form_post", "query.jwt"])
def test_a_response_mode_not_supported_is_refused_not_ignored(app, client, rp, mode):
    """Discovery says query only: a client that asked for the code in the fragment or a posted
    form would not find it in the query, so the request is refused (at its redirect URI, in the
    query, the one way this provider answers) rather than answered another way."""
    login(client)
    error_params(start(client, rp, response_mode=mode), rp, "invalid_request")
    assert client.get("/.well-known/openid-configuration").get_json()["response_modes_supported"] == ["query"]


@pytest.mark.parametrize("mode", ["query", ""])  # sent empty: as if not sent (RFC 6749 section 3.1)
def test_response_mode_query_is_the_default_spelled_out(app, client, rp, mode):
    tokens = full_flow(client, rp, extra={"response_mode": mode})
    assert id_token_claims(client, tokens["id_token"], rp)


# ------------------------------------------------------------------ request objects
def test_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(app, client, rp):
    login(client)
    request_object = unsigned_jwt({"response_type": "code", "client_id": rp.client_id, "scope": "openid",
                                   "redirect_uri": rp.redirect_uri, "state": "st", "nonce": NONCE,
                                   "iss": rp.client_id, "aud": ISSUER})
    response = start(client, rp, request=request_object)
    # Discovery says request_parameter_supported=false: so it must be refused, not half-honoured.
    error_params(response, rp, "request_not_supported")
    assert client.get("/.well-known/openid-configuration").get_json()["request_parameter_supported"] is False


def test_oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(app, client, rp):
    login(client)
    response = start(client, rp, request_uri="https://rp.example/request.jwt")
    error_params(response, rp, "request_uri_not_supported")
    assert client.get("/.well-known/openid-configuration").get_json()["request_uri_parameter_supported"] is False


# ------------------------------------------------------------------ parameters given twice
#: a first and a second value for each parameter of an authorization request
_TWICE = {
    "response_type": ("code", "code"), "scope": ("openid", "openid profile"), "state": ("st", "st2"),
    "response_mode": ("query", "query"), "nonce": (NONCE, "n-2"), "display": ("page", "popup"),
    "prompt": ("none", "login"), "max_age": ("10000", "0"), "ui_locales": ("en", "cy"),
    "claims_locales": ("en", "cy"), "id_token_hint": ("a.b.c", "d.e.f"), "login_hint": (EMAIL, "x@y.example"),
    "acr_values": (protocol.ACR_MFA, protocol.ACR_PHISHING_RESISTANT), "claims": ("{}", "{}"),
    "request": ("a.b.", "c.d."), "registration": ("{}", "{}"), "code_challenge": ("a" * 43, "b" * 43),
    "code_challenge_method": ("S256", "S256"), "dpop_jkt": ("c" * 43, "d" * 43),
}
#: no redirect URI is known to be the client's while one of these is in doubt
_SHOWN_AS_A_PAGE = ("client_id", "redirect_uri", "request_uri")


def test_every_parameter_of_an_authorization_request_is_covered():
    assert set(_TWICE) | set(_SHOWN_AS_A_PAGE) == set(protocol.AUTHORIZATION_PARAMETERS)


@pytest.mark.parametrize("name", sorted(_TWICE))
def test_an_authorization_request_that_repeats_a_parameter_gets_invalid_request(app, client, rp, name):
    """RFC 6749 §3.1, §4.1.2.1: a parameter given twice is invalid_request, sent to the redirect URI,
    never a code nor a sign-in page; the first value was taken silently, so prompt=none&prompt=login
    got a code from the session (found by an outside probe). State goes back unless it is the one
    given twice."""
    login(client)
    first, second = _TWICE[name]
    base = [("response_type", "code"), ("client_id", rp.client_id), ("redirect_uri", rp.redirect_uri),
            ("scope", "openid"), ("state", "st"), ("nonce", NONCE), ("code_challenge", pkce_pair()[1]),
            ("code_challenge_method", "S256")]
    given = [*base, (name, second)] if name in dict(base) else [*base, (name, first), (name, second)]
    response = client.get("/authorize?" + urlencode(given))
    params = error_params(response, rp, "invalid_request", state=None if name == "state" else "st")
    assert name in params["error_description"], params


@pytest.mark.parametrize("signed_in", [True, False])
@pytest.mark.parametrize("prompts", [("none", "login"), ("login", "none")])
def test_prompt_given_twice_is_refused_whichever_comes_first(app, client, rp, prompts, signed_in):
    if signed_in:
        login(client)
    response = client.get("/authorize?" + auth_query(rp) + "&" + urlencode([("prompt", p) for p in prompts]))
    error_params(response, rp, "invalid_request")


def test_a_repeated_client_id_redirect_uri_or_request_uri_gets_an_error_page(app, client, rp):
    other = new_client(app, name="Other", redirect_uri="https://other.example/cb")
    login(client)
    evil = "https://evil.example/cb"
    for name, values in (("client_id", (rp.client_id, other.client_id)), ("client_id", (rp.client_id,) * 2),
                         ("redirect_uri", (evil, rp.redirect_uri)), ("redirect_uri", (rp.redirect_uri, evil)),
                         ("redirect_uri", (rp.redirect_uri,) * 2),
                         ("request_uri", ("urn:ietf:params:oauth:request_uri:x",) * 2), ("request_uri", ("a", "b"))):
        given = [(k, v) for k, v in parse_qsl(auth_query(rp)) if k != name] + [(name, v) for v in values]
        assert_error_page(client.get("/authorize?" + urlencode(given)))


# ------------------------------------------------------------------ redirect URIs and clients
def test_oidcc_ensure_registered_redirect_uri(app, client, rp):
    login(client)
    for uri in ("https://attacker.example/cb", "https://rp.example/cb/", "https://rp.example/cb?x=1",
                "https://rp.example/CB", "https://rp.example/cb/../cb", "http://rp.example/cb",
                "https://rp.example:443/cb", "https://rp.example/cb#frag"):
        for extra in ({}, {"prompt": "none"}, {"response_type": "token"}, {"scope": "profile"}):
            response = start(client, rp, redirect_uri=uri, **extra)
            assert_error_page(response)
    # while the registered URI, exactly, still works
    code_params(start(client, rp), rp)


def test_oidcc_ensure_redirect_uri_in_authorization_request(app, client, rp):
    login(client)
    assert_error_page(start(client, rp, redirect_uri=None))
    assert_error_page(start(client, rp, redirect_uri=None, prompt="none"))


def test_oidcc_unknown_client(app, client, rp):
    login(client)
    assert_error_page(start(client, rp, client_id="no-such-client"))
    assert_error_page(start(client, rp, client_id=None))
    assert_error_page(start(client, rp, client_id="x" * 500))


def test_oidcc_ensure_post_request_succeeds(app, client, rp):
    verifier, challenge = pkce_pair()
    form = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
            "scope": "openid email", "state": "post-st", "nonce": NONCE, "code_challenge": challenge,
            "code_challenge_method": "S256"}
    response = client.post("/authorize", data=form)  # not signed in yet: sign in, then come back
    params = code_params(finish_signin(client, response), rp, state="post-st")
    tokens = exchange(client, rp, params["code"], verifier)
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    claims = id_token_claims(client, tokens.get_json()["id_token"], rp)
    assert claims["nonce"] == NONCE
    # and signed in, a POST answers at once
    verifier, challenge = pkce_pair()
    again = client.post("/authorize", data={**form, "code_challenge": challenge})
    params = code_params(again, rp, state="post-st")
    assert exchange(client, rp, params["code"], verifier).status_code == 200


# ------------------------------------------------------------------ authorization codes
def test_oidcc_codereuse(app, client, rp):
    response, verifier = authorize(client, rp)
    code = code_params(response, rp)["code"]
    assert exchange(client, rp, code, verifier).status_code == 200
    assert_token_error(exchange(client, rp, code, verifier), 400, "invalid_grant")


def test_a_code_sent_by_another_client_is_refused_and_left_for_its_own(app, client, rp):
    """RFC 6749 section 4.1.3: the code must have been issued to the client exchanging it. Another
    client (a public one needs only a client_id anyone can send) gets invalid_grant, and the code
    is not spent: the real client's exchange still works, and nothing is revoked as a reuse."""
    other = new_client(app, name="Other", redirect_uri=rp.redirect_uri, token_endpoint_auth_method="none")
    response, verifier = authorize(client, rp)
    code = code_params(response, rp)["code"]
    stolen = client.post("/token", data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                         "redirect_uri": rp.redirect_uri, "client_id": other.client_id})
    assert_token_error(stolen, 400, "invalid_grant")
    mine = exchange(client, rp, code, verifier)
    assert mine.status_code == 200, mine.get_data(as_text=True)
    assert introspect(client, rp, mine.get_json()["access_token"]).get_json()["active"] is True
    # sent again by the other client once used: refused, and not a reuse that revokes the grant
    assert_token_error(client.post("/token", data={"grant_type": "authorization_code", "code": code,
                                                   "code_verifier": verifier, "redirect_uri": rp.redirect_uri,
                                                   "client_id": other.client_id}), 400, "invalid_grant")
    assert introspect(client, rp, mine.get_json()["access_token"]).get_json()["active"] is True


def test_oidcc_codereuse_30seconds(app, client, rp):
    response, verifier = authorize(client, rp, scope="openid email")
    code = code_params(response, rp)["code"]
    first = exchange(client, rp, code, verifier)
    assert first.status_code == 200
    tokens = first.get_json()
    assert client.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
    assert introspect(client, rp, tokens["access_token"]).get_json()["active"] is True
    with time_machine.travel(time.time() + 30, tick=True):
        assert_token_error(exchange(client, rp, code, verifier), 400, "invalid_grant")
        # what the first use issued is revoked (RFC 6749 4.1.2)
        assert client.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
        assert introspect(client, rp, tokens["access_token"]).get_json() == {"active": False}
        assert introspect(client, rp, tokens["refresh_token"],
                          token_type_hint="refresh_token").get_json() == {"active": False}
        assert_token_error(refresh(client, rp, tokens["refresh_token"]), 400, "invalid_grant")


def test_code_expires_after_60_seconds(app, client, rp):
    response, verifier = authorize(client, rp)
    code = code_params(response, rp)["code"]
    with time_machine.travel(time.time() + 61, tick=True):
        assert_token_error(exchange(client, rp, code, verifier), 400, "invalid_grant")


def test_code_is_bound_to_client_and_redirect_uri(app, client, rp):
    other = new_client(app, name="Other", redirect_uri="https://other.example/cb")
    response, verifier = authorize(client, rp)
    code = code_params(response, rp)["code"]
    stolen = token_request(client, other, {"grant_type": "authorization_code", "code": code,
                                           "redirect_uri": rp.redirect_uri, "code_verifier": verifier})
    assert_token_error(stolen, 400, "invalid_grant")

    response, verifier = authorize(client, rp)
    code = code_params(response, rp)["code"]
    wrong_uri = exchange(client, rp, code, verifier, redirect_uri="https://rp.example/other")
    assert_token_error(wrong_uri, 400, "invalid_grant")

    response, verifier = authorize(client, rp)
    code = code_params(response, rp)["code"]
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    assert token_request(client, rp, data).status_code == 400  # redirect_uri omitted at the token endpoint


def test_oidcc_server_client_secret_post(app, client, rp):
    post_client = new_client(app, name="Post", token_endpoint_auth_method="client_secret_post")
    response, verifier = authorize(client, post_client)
    code = code_params(response, post_client)["code"]
    tokens = exchange(client, post_client, code, verifier, auth="post")
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    id_token_claims(client, tokens.get_json()["id_token"], post_client)


@pytest.mark.parametrize("registered", ["client_secret_basic", "client_secret_post"])
def test_a_client_with_a_secret_may_send_it_either_way_at_every_endpoint(app, client, rp, registered):
    """As certified providers do (node oidc-provider, Keycloak): the token, introspection and
    revocation endpoints take the secret by Basic or in the body, whichever was registered."""
    rp = new_client(app, name="Either", token_endpoint_auth_method=registered)
    for auth in ("basic", "post"):
        tokens = full_flow(client, rp, scope="openid offline_access", auth=auth)
        assert refresh(client, rp, tokens["refresh_token"], auth=auth).status_code == 200
        looked_at = introspect(client, rp, tokens["access_token"], auth=auth)
        assert looked_at.status_code == 200 and looked_at.get_json()["active"] is True
        assert revoke(client, rp, tokens["access_token"], auth=auth).status_code == 200


@pytest.mark.parametrize("credentials", [b"%s:\xff\xfe", b"\xff:%s", b"%s\xc3"])
@pytest.mark.parametrize("path, form", [("/token", {"grant_type": "client_credentials"}),
                                        ("/introspect", {"token": "x"}), ("/revoke", {"token": "x"}),
                                        ("/par", {"response_type": "code", "scope": "openid"})])
def test_basic_credentials_that_are_not_utf8_are_a_client_that_failed_to_authenticate(client, rp, credentials,
                                                                                      path, form):
    """Base64 of bytes that are no text: 401 invalid_client at every endpoint that authenticates
    clients (Authlib's own decoding let the error out: a 500, and an error logged per request)."""
    raw = credentials % rp.client_id.encode() if b"%s" in credentials else credentials
    answer = client.post(path, data=form, headers={"Authorization": "Basic " + base64.b64encode(raw).decode()})
    assert answer.status_code == 401 and answer.get_json()["error"] == "invalid_client", answer.data


def test_a_private_key_jwt_or_public_client_never_authenticates_with_a_secret(app, client, rp):
    """Nothing to check a secret against, and nothing is looked up as one: sending a client_secret
    (either way) is invalid_client, even one that is some other client's real secret."""
    jwks = {"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                      "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "k1"}]}
    jwt_client = new_client(app, name="JWT", token_endpoint_auth_method="private_key_jwt", jwks=jwks)
    public = new_client(app, name="SPA", token_endpoint_auth_method="none")
    for other in (jwt_client, public):
        pretender = other.__class__(other.client_id, rp.client_secret, other.redirect_uri)
        for auth in ("basic", "post"):
            data = {"grant_type": "refresh_token", "refresh_token": "x" * 43}
            assert_token_error(token_request(client, pretender, data, auth), BODY_AUTH_FAILED, "invalid_client")
            refused = introspect(client, pretender, "x" * 43, auth=auth)
            assert refused.status_code in BODY_AUTH_FAILED and refused.get_json()["error"] == "invalid_client"


# ------------------------------------------------------------------ PKCE
def test_oidcc_ensure_pkce(app, client, rp):
    # a valid S256 verifier
    response, verifier = authorize(client, rp, pkce=True)
    assert exchange(client, rp, code_params(response, rp)["code"], verifier).status_code == 200
    # the wrong verifier
    response, _ = authorize(client, rp, pkce=True)
    wrong, _ = pkce_pair()
    assert_token_error(exchange(client, rp, code_params(response, rp)["code"], wrong), 400, "invalid_grant")
    # no verifier for a code issued with a challenge
    response, _ = authorize(client, rp, pkce=True)
    result = exchange(client, rp, code_params(response, rp)["code"], None)
    assert_token_error(result, 400, ("invalid_request", "invalid_grant"))
    # a verifier for a code issued without a challenge
    response, _ = authorize(client, rp, pkce=False)
    result = exchange(client, rp, code_params(response, rp)["code"], pkce_pair()[0])
    assert_token_error(result, 400, ("invalid_request", "invalid_grant"))


def test_oidcc_ensure_pkce_required_for_public_client(app, client, rp):
    public = new_client(app, name="SPA", token_endpoint_auth_method="none")
    login(client)
    error_params(start(client, public), public, "invalid_request")
    response, verifier = authorize(client, public, pkce=True)
    code = code_params(response, public)["code"]
    assert_token_error(exchange(client, public, code, None, auth="none"), 400,
                       ("invalid_request", "invalid_grant"))
    response, verifier = authorize(client, public, pkce=True)
    code = code_params(response, public)["code"]
    tokens = exchange(client, public, code, verifier, auth="none")
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    id_token_claims(client, tokens.get_json()["id_token"], public)


def test_oidcc_ensure_pkce_plain_method_rejected(app, client, rp):
    login(client)
    verifier = secrets.token_urlsafe(48)
    response = start(client, rp, code_challenge=verifier, code_challenge_method="plain")
    error_params(response, rp, "invalid_request")
    # a challenge without a method means plain (RFC 7636 4.3): refused as well
    error_params(start(client, rp, code_challenge=verifier), rp, "invalid_request")


# ------------------------------------------------------------------ ID token
def test_oidcc_id_token_claims(app, client, rp):
    tokens = full_flow(client, rp, scope="openid profile")
    decoded = decode(client, tokens["id_token"])
    assert decoded.header["alg"] == "RS256"
    assert decoded.header["kid"] in {k["kid"] for k in client.get("/jwks.json").get_json()["keys"]}
    c = id_token_claims(client, tokens["id_token"], rp)
    assert c["aud"] == rp.client_id and c["azp"] == rp.client_id
    assert c["nonce"] == NONCE
    assert isinstance(c["auth_time"], int) and c["auth_time"] <= c["iat"]
    assert c["exp"] > c["iat"]
    assert c["acr"] in protocol.ACR_VALUES
    assert isinstance(c["amr"], list) and c["amr"] and all(isinstance(m, str) for m in c["amr"])
    assert isinstance(c["sid"], str) and c["sid"]
    assert c["at_hash"] == half_hash(tokens["access_token"], "RS256")
    assert c["sub"] != EMAIL and "@" not in c["sub"]
    with app.app_context():
        from idp.accounts.models import Account, SsoSession
        from idp.extensions import db

        account = db.session.query(Account).filter_by(email_key=EMAIL).one()
        assert c["sub"] == account.sub
        entry = db.session.query(SsoSession).filter_by(sid=c["sid"]).one()
        # sid, auth_time, acr and amr describe the sign-in that actually happened
        assert entry.account_id == account.id
        assert (c["auth_time"], c["acr"], c["amr"]) == (entry.auth_time, entry.acr, list(entry.amr))


def test_id_token_registered_alg_and_at_hash(app, client, rp):
    for alg in ("ES256", "EdDSA"):
        other = new_client(app, name=f"Alg {alg}", id_token_signed_response_alg=alg)
        tokens = full_flow(client, other)
        decoded = decode(client, tokens["id_token"])
        assert decoded.header["alg"] == alg
        assert decoded.claims["at_hash"] == half_hash(tokens["access_token"], alg)


# ------------------------------------------------------------------ refresh tokens
def test_oidcc_refresh_token(app, client, rp):
    tokens = full_flow(client, rp, scope="openid profile email")
    original = id_token_claims(client, tokens["id_token"], rp)
    seen = {tokens["refresh_token"]}
    current = tokens
    for _ in range(2):
        response = refresh(client, rp, current["refresh_token"])
        assert response.status_code == 200, response.get_data(as_text=True)
        assert_no_store(response)
        current = response.get_json()
        assert current["refresh_token"] not in seen  # rotated on every use
        seen.add(current["refresh_token"])
        assert set(current["scope"].split()) == {"openid", "profile", "email"}
        refreshed = id_token_claims(client, current["id_token"], rp)
        for claim in ("iss", "sub", "aud", "auth_time", "azp"):
            assert refreshed[claim] == original[claim], claim
        assert refreshed["at_hash"] == half_hash(current["access_token"], "RS256")
        assert client.get("/userinfo", headers=bearer(current["access_token"])).status_code == 200
    # the first refresh token again: reuse
    assert_token_error(refresh(client, rp, tokens["refresh_token"]), 400, "invalid_grant")
    # ... revokes the whole family: the newest refresh token and access token too
    assert_token_error(refresh(client, rp, current["refresh_token"]), 400, "invalid_grant")
    assert client.get("/userinfo", headers=bearer(current["access_token"])).status_code == 401
    assert introspect(client, rp, current["refresh_token"]).get_json() == {"active": False}
    assert introspect(client, rp, current["access_token"]).get_json() == {"active": False}


def test_each_authorization_in_a_session_gets_a_working_refresh_token(app, client, rp):
    """A client that signs the same person in again in the same browser session (a second tab,
    a silent prompt=none renewal) gets a refresh token that works, like the first time."""
    first = full_flow(client, rp)
    second = full_flow(client, rp, extra={"prompt": "none"})
    third = full_flow(client, rp)
    for n, tokens in enumerate((first, second, third), start=1):
        assert introspect(client, rp, tokens["refresh_token"]).get_json()["active"] is True, n
        response = refresh(client, rp, tokens["refresh_token"], scope="openid")
        assert response.status_code == 200, (n, response.get_data(as_text=True))


def test_refresh_token_rules(app, client, rp):
    other = new_client(app, name="Other", redirect_uri="https://other.example/cb")
    tokens = full_flow(client, rp, scope="openid profile")
    # another client presenting it gets invalid_grant, and that is not a reuse by the owner
    assert_token_error(refresh(client, other, tokens["refresh_token"]), 400, "invalid_grant")
    narrower = refresh(client, rp, tokens["refresh_token"], scope="openid")
    assert narrower.status_code == 200, narrower.get_data(as_text=True)
    assert narrower.get_json()["scope"].split() == ["openid"]
    wider = refresh(client, rp, narrower.get_json()["refresh_token"], scope="openid profile email")
    assert_token_error(wider, 400, "invalid_scope")
    # a refused request does not use the token up
    latest = narrower.get_json()["refresh_token"]
    lifetime = app.config["IDP_SETTINGS"].tokens.refresh_token_lifetime
    with time_machine.travel(time.time() + lifetime + 5, tick=True):
        assert_token_error(refresh(client, rp, latest, scope="openid"), 400, "invalid_grant")
    again = refresh(client, rp, latest, scope="openid")
    assert again.status_code == 200, again.get_data(as_text=True)


def _registered_scope(app, rp, scope: str) -> None:
    """Board staff change the client's registered scope, the rest as it is."""
    from idp.oidc import clients

    with app.app_context():
        current = clients.describe(clients.get(rp.client_id))
        kept = ("client_name", "redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types",
                "token_endpoint_auth_method")
        clients.update(rp.client_id, {**{k: current[k] for k in kept}, "scope": scope}, actor="board",
                       pepper=app.extensions["idp.pepper"])


def test_a_refresh_carries_only_the_scopes_the_client_still_holds(app, client, rp):
    """A scope taken from the client's registration (board staff, or the client itself through RFC
    7592) is taken from its grants too, as /authorize and client_credentials would not give it: the
    refreshed tokens, and the grant's next refresh token, carry only what the client still holds,
    and the claims the scope released go with it (RFC 6749 §6 lets a refresh narrow, never widen).
    Found by an outside probe: a refresh issued the grant's stored scope, role and centre included,
    for as long as the client kept refreshing."""
    tokens = full_flow(client, rp, scope="openid profile access offline_access")
    assert "role" in decode(client, tokens["access_token"]).claims
    _registered_scope(app, rp, "openid profile email offline_access")
    # asked for alone, refused (the token is not used up); asked for by name, left out as /authorize
    # leaves it out
    assert_token_error(refresh(client, rp, tokens["refresh_token"], scope="access"), 400, "invalid_scope")
    named = refresh(client, rp, tokens["refresh_token"], scope="openid access")
    assert named.status_code == 200 and named.get_json()["scope"] == "openid"
    assert "role" not in decode(client, named.get_json()["access_token"]).claims
    response = refresh(client, rp, named.get_json()["refresh_token"])
    assert response.status_code == 200, response.get_data(as_text=True)
    current = response.get_json()
    assert current["scope"].split() == ["openid", "profile", "offline_access"]
    access = decode(client, current["access_token"]).claims
    assert access["scope"] == current["scope"] and not {"role", "centre", "profiles"} & set(access)
    assert not {"role", "centre", "profiles"} & set(id_token_claims(client, current["id_token"], rp))
    assert introspect(client, rp, current["refresh_token"]).get_json()["scope"] == current["scope"]
    # given back to the client, it does not come back to the grant: that takes a new sign-in
    _registered_scope(app, rp, "openid profile access offline_access")
    again = refresh(client, rp, current["refresh_token"])
    assert again.status_code == 200 and again.get_json()["scope"] == "openid profile offline_access"
    assert_token_error(refresh(client, rp, again.get_json()["refresh_token"], scope="openid access"), 400,
                       "invalid_scope")
    assert "access" in full_flow(client, rp, scope="openid access")["scope"].split()


def test_a_refresh_is_refused_once_the_client_may_no_longer_use_openid(app, client, rp):
    """Every grant is an OpenID Connect one (/authorize requires openid): once the client is no
    longer registered for openid, its grants give nothing (invalid_scope, as /authorize answers),
    and the refresh token is not used up should the scope be given back."""
    tokens = full_flow(client, rp, scope="openid profile")
    _registered_scope(app, rp, "profile email")
    for asked in ({}, {"scope": "profile"}):
        assert_token_error(refresh(client, rp, tokens["refresh_token"], **asked), 400, "invalid_scope")
    _registered_scope(app, rp, "openid profile")
    response = refresh(client, rp, tokens["refresh_token"])
    assert response.status_code == 200 and response.get_json()["scope"] == "openid profile"


# ------------------------------------------------------------------ token endpoint errors
def test_token_endpoint_errors(app, client, rp):
    response, verifier = authorize(client, rp)
    code = code_params(response, rp)["code"]
    wrong_secret = rp.__class__(rp.client_id, "not-the-secret", rp.redirect_uri)
    bad_client = exchange(client, wrong_secret, code, verifier)
    assert_token_error(bad_client, 401, "invalid_client")
    assert bad_client.headers.get("WWW-Authenticate", "").lower().startswith("basic")
    unknown = rp.__class__("unknown-client", "secret", rp.redirect_uri)
    assert_token_error(exchange(client, unknown, code, verifier), 401, "invalid_client")
    no_auth = client.post("/token", data={"grant_type": "authorization_code", "code": code,
                                          "redirect_uri": rp.redirect_uri, "code_verifier": verifier})
    assert_token_error(no_auth, 401, "invalid_client")
    assert_token_error(token_request(client, rp, {"grant_type": "authorization_code", "code": "nope",
                                                  "redirect_uri": rp.redirect_uri}), 400, "invalid_grant")
    # none of that used the code up
    assert exchange(client, rp, code, verifier).status_code == 200
    assert_token_error(token_request(client, rp, {"grant_type": "password", "username": EMAIL,
                                                  "password": PASSWORD}), 400, "unsupported_grant_type")
    assert_token_error(token_request(client, rp, {}), 400, ("unsupported_grant_type", "invalid_request"))


@pytest.mark.parametrize("repeated, second", [
    ("grant_type", "client_credentials"), ("grant_type", "authorization_code"), ("code", "not-the-code"),
    ("redirect_uri", "https://evil.example/cb"), ("code_verifier", "x" * 50), ("client_id", "the same"),
    ("client_secret", "not-the-secret"),
])
def test_a_token_request_that_repeats_a_parameter_is_invalid_request(app, client, rp, repeated, second):
    """RFC 6749 §3.2, §5.2: a parameter sent twice is invalid_request, whatever the second value
    (the first was taken silently: found by an outside probe). Refused before anything is looked
    at: the code is not used up."""
    response, verifier = authorize(client, rp)
    code = code_params(response, rp)["code"]
    form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", rp.redirect_uri),
            ("code_verifier", verifier), ("client_id", rp.client_id), ("client_secret", rp.client_secret)]
    second = rp.client_id if second == "the same" else second
    answer = client.post("/token", data=MultiDict([*form, (repeated, second)]))
    assert_token_error(answer, 400, "invalid_request")
    assert repeated in answer.get_json()["error_description"]
    assert exchange(client, rp, code, verifier).status_code == 200


def test_a_refresh_or_service_token_request_that_repeats_a_parameter_is_invalid_request(app, client, rp):
    service = new_client(app, name="Batch", grant_types=["client_credentials"], scope="results.read results.write")
    tokens = full_flow(client, rp, scope="openid profile")
    form = [("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"]), ("scope", "openid")]
    for repeated in (("refresh_token", "another"), ("scope", "openid profile"), ("grant_type", "refresh_token")):
        answer = client.post("/token", data=MultiDict([*form, repeated]), headers=basic(rp))
        assert_token_error(answer, 400, "invalid_request")
    # the same parameter in the query and the body is given twice too
    answer = client.post("/token?scope=openid", data=MultiDict(form), headers=basic(rp))
    assert_token_error(answer, 400, "invalid_request")
    assert refresh(client, rp, tokens["refresh_token"]).status_code == 200  # not used up
    twice = client.post("/token", data=MultiDict([("grant_type", "client_credentials"), ("scope", "results.read"),
                                                  ("scope", "results.write")]), headers=basic(service))
    assert_token_error(twice, 400, "invalid_request")


# ------------------------------------------------------------------ client credentials
def test_client_credentials(app, client, rp):
    service = new_client(app, name="Service", grant_types=["client_credentials"], redirect_uris=[],
                         post_logout_redirect_uris=[], scope="reports.read reports.write")
    response = token_request(client, service, {"grant_type": "client_credentials"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_no_store(response)
    body = response.get_json()
    assert "refresh_token" not in body and "id_token" not in body
    assert set(body["scope"].split()) == {"reports.read", "reports.write"}
    decoded = decode(client, body["access_token"])
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.claims["sub"] == service.client_id and decoded.claims["client_id"] == service.client_id
    # a service token is no person's: userinfo refuses it
    assert client.get("/userinfo", headers=bearer(body["access_token"])).status_code == 401
    assert introspect(client, service, body["access_token"]).get_json()["active"] is True

    narrowed = token_request(client, service, {"grant_type": "client_credentials", "scope": "reports.read"})
    assert narrowed.status_code == 200 and narrowed.get_json()["scope"] == "reports.read"
    assert_token_error(token_request(client, service, {"grant_type": "client_credentials", "scope": "openid"}),
                       400, "invalid_scope")
    assert_token_error(token_request(client, service, {"grant_type": "client_credentials", "scope": "admin"}),
                       400, "invalid_scope")
    # a confidential client not registered for client_credentials
    assert_token_error(token_request(client, rp, {"grant_type": "client_credentials"}), 400,
                       "unauthorized_client")
    # a public client can never use it
    public = new_client(app, name="SPA", token_endpoint_auth_method="none")
    assert_token_error(token_request(client, public, {"grant_type": "client_credentials"}, auth="none"),
                       BODY_AUTH_FAILED, "invalid_client")


def _jwt_client(app, grant_types=("client_credentials",)):
    keys = {"RS256": RSAKey.generate_key(2048, auto_kid=True),
            "PS256": RSAKey.generate_key(2048, auto_kid=True),
            "ES256": ECKey.generate_key("P-256", auto_kid=True),
            "EdDSA": OKPKey.generate_key("Ed25519", auto_kid=True)}
    jwks = {"keys": [k.as_dict(private=False) for k in keys.values()]}
    registered = new_client(app, name="JWT client", token_endpoint_auth_method="private_key_jwt", jwks=jwks,
                            grant_types=list(grant_types), redirect_uris=[], post_logout_redirect_uris=[],
                            scope="svc")
    return registered, keys


def _assertion(client_id, key, alg, aud=ISSUER + "/token", **over):
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60,
              "jti": secrets.token_urlsafe(16), **over}
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])


def _jwt_token_request(http, client_id, assertion):
    return http.post("/token", data={
        "grant_type": "client_credentials", "client_id": client_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})


def test_discovery_token_endpoint_auth_signing_algs_are_all_accepted(app, client):
    registered, keys = _jwt_client(app)
    advertised = client.get("/.well-known/openid-configuration").get_json()[
        "token_endpoint_auth_signing_alg_values_supported"]
    refused = {}
    for alg in advertised:
        response = _jwt_token_request(client, registered.client_id,
                                      _assertion(registered.client_id, keys[alg], alg))
        if response.status_code != 200:
            refused[alg] = response.get_json()
    assert not refused, f"advertised but refused private_key_jwt algorithms: {refused}"


def test_private_key_jwt_assertion_rules(app, client):
    registered, keys = _jwt_client(app)
    cid, key = registered.client_id, keys["ES256"]
    once = _assertion(cid, key, "ES256")
    assert _jwt_token_request(client, cid, once).status_code == 200
    assert_token_error(_jwt_token_request(client, cid, once), BODY_AUTH_FAILED, "invalid_client")  # jti replay
    assert_token_error(_jwt_token_request(client, cid, _assertion(cid, key, "ES256", aud="https://elsewhere")),
                       BODY_AUTH_FAILED, "invalid_client")
    now = int(time.time())
    expired = _assertion(cid, key, "ES256", exp=now - 120, iat=now - 300)
    assert_token_error(_jwt_token_request(client, cid, expired), BODY_AUTH_FAILED, "invalid_client")
    assert_token_error(_jwt_token_request(client, cid, _assertion(cid, key, "ES256", iss="someone-else")),
                       BODY_AUTH_FAILED, "invalid_client")
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    assert_token_error(_jwt_token_request(client, cid, _assertion(cid, stranger, "ES256")), BODY_AUTH_FAILED,
                       "invalid_client")
    assert _jwt_token_request(client, cid, _assertion(cid, key, "ES256", aud=ISSUER)).status_code == 200


@pytest.mark.parametrize("path, form", [("/token", {"grant_type": "client_credentials"}),
                                        ("/introspect", {"token": "x"}), ("/revoke", {"token": "x"}),
                                        ("/par", {"response_type": "code", "scope": "openid"})])
def test_an_unknown_client_is_answered_as_a_wrong_secret_is(app, client, rp, monkeypatch, path, form):
    """Which client_ids exist must not show: Authlib said "does not exist" of an unknown one and
    named the methods tried for a wrong secret. One answer (401 invalid_client, one description,
    the Basic challenge) however the credentials are sent, and the same secret-hashing work."""
    import idp.secrets

    hashed = []
    fast_hash = idp.secrets.fast_hash
    monkeypatch.setattr(idp.secrets, "fast_hash", lambda *args: hashed.append(args) or fast_hash(*args))
    nobody = rp.__class__("no-such-client", "x" * 43, rp.redirect_uri)
    wrong = rp.__class__(rp.client_id, "x" * 43, rp.redirect_uri)
    answers, work = set(), {}
    for auth in ("basic", "post", "none"):
        for who in (nobody, wrong):
            hashed.clear()
            refused = _client_post(client, path, who, form, auth)
            answers.add((refused.status_code, refused.get_data(as_text=True), refused.headers.get("WWW-Authenticate")))
            work.setdefault(auth, set()).add(len(hashed))
    if path == "/token":  # private_key_jwt: an assertion naming nobody, and a registered client's not signed by it
        registered, _keys = _jwt_client(app)
        stranger = ECKey.generate_key("P-256", auto_kid=True)
        for cid in ("no-such-client", registered.client_id):
            refused = _jwt_token_request(client, cid, _assertion(cid, stranger, "ES256"))
            answers.add((refused.status_code, refused.get_data(as_text=True), refused.headers.get("WWW-Authenticate")))
    assert len(answers) == 1, answers
    status, body, challenge = answers.pop()
    assert status == 401 and json.loads(body)["error"] == "invalid_client"
    assert challenge.startswith("Basic ") and 'error="invalid_client"' in challenge
    assert all(len(counts) == 1 for counts in work.values()), work


def test_an_assertion_expiring_unreasonably_far_ahead_is_invalid_client(app, client):
    """RFC 7523 §3: its jti would be remembered until then (10**20 was beyond what Redis takes as an
    expiry, a 500; 10**12 a record for millennia). Refused before anything is remembered."""
    from idp.oidc.grants import ASSERTION_IDS, MAX_ASSERTION_LIFETIME

    registered, keys = _jwt_client(app)
    cid, key = registered.client_id, keys["ES256"]
    now = int(time.time())
    for exp in (now + MAX_ASSERTION_LIFETIME + 60, 10**12, 10**20, 2**63, 1e30):
        jti = secrets.token_urlsafe(16)
        response = _jwt_token_request(client, cid, _assertion(cid, key, "ES256", exp=exp, jti=jti))
        assert_token_error(response, BODY_AUTH_FAILED, "invalid_client")
        with app.app_context():
            assert ASSERTION_IDS.get(f"{cid}:{jti}") is None, exp
    # an hour from a clock 20 seconds fast: what Authlib's clients make, and within the leeway
    within = _assertion(cid, key, "ES256", exp=now + MAX_ASSERTION_LIFETIME + 20)
    assert _jwt_token_request(client, cid, within).status_code == 200


def test_an_assertion_whose_payload_is_not_text_or_too_deep_is_invalid_client(app, client):
    """Read before any client is known (the deep one) or once its signature verifies (the surrogate,
    a store key): either way the client's error, never a 500."""
    registered, keys = _jwt_client(app)
    cid, key = registered.client_id, keys["ES256"]
    header = {"alg": "ES256", "kid": key.kid}
    claims = json.dumps({"iss": cid, "sub": cid, "aud": ISSUER + "/token", "exp": int(time.time()) + 60,
                         "jti": "JTI"}).replace("JTI", "\\ud800")
    deep = b"[" * 5000 + b"]" * 5000
    for assertion in (jws.serialize_compact(header, claims.encode(), key), jws.serialize_compact(header, deep, key),
                      "e30." + base64.urlsafe_b64encode(deep).decode().rstrip("=") + ".AA"):
        assert_token_error(_jwt_token_request(client, cid, assertion), BODY_AUTH_FAILED, "invalid_client")


# ------------------------------------------------------------------ introspection
def test_introspection(app, client, rp):
    other = new_client(app, name="Other", redirect_uri="https://other.example/cb")
    public = new_client(app, name="SPA", token_endpoint_auth_method="none")
    tokens = full_flow(client, rp, scope="openid profile")
    own = introspect(client, rp, tokens["access_token"])
    assert own.status_code == 200
    assert_no_store(own)
    body = own.get_json()
    assert body["active"] is True and body["client_id"] == rp.client_id and body["iss"] == ISSUER
    assert body["sub"] == id_token_claims(client, tokens["id_token"], rp)["sub"]
    assert set(body["scope"].split()) == {"openid", "profile"}
    assert body["exp"] > time.time()
    refresh_view = introspect(client, rp, tokens["refresh_token"], token_type_hint="refresh_token").get_json()
    assert refresh_view["active"] is True and refresh_view["client_id"] == rp.client_id

    # another client learns nothing about it
    assert introspect(client, other, tokens["access_token"]).get_json() == {"active": False}
    assert introspect(client, other, tokens["refresh_token"]).get_json() == {"active": False}
    # only authenticated, confidential clients may introspect
    anonymous = client.post("/introspect", data={"token": tokens["access_token"]})
    assert anonymous.status_code == 401 and anonymous.get_json()["error"] == "invalid_client"
    assert introspect(client, public, tokens["access_token"], auth="none").status_code == 401
    wrong = rp.__class__(rp.client_id, "wrong", rp.redirect_uri)
    assert introspect(client, wrong, tokens["access_token"]).status_code == 401
    # garbage is simply inactive
    assert introspect(client, rp, "garbage").get_json() == {"active": False}
    # and so is an expired access token
    lifetime = app.config["IDP_SETTINGS"].tokens.access_token_lifetime
    with time_machine.travel(time.time() + lifetime + 5, tick=True):
        assert introspect(client, rp, tokens["access_token"]).get_json() == {"active": False}
        assert client.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401


@pytest.mark.parametrize("hint", ["id_token", "urn:ietf:params:oauth:token-type:jwt"])
def test_a_token_type_hint_of_no_kind_known_here_is_ignored(client, rp, hint):
    """RFC 7662 §2.1, RFC 7009 §2.1: the hint may be ignored; the token is looked up as with none."""
    tokens = full_flow(client, rp)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        seen = introspect(client, rp, token, token_type_hint=hint)
        assert seen.status_code == 200 and seen.get_json()["active"] is True, seen.get_json()
    assert revoke(client, rp, tokens["refresh_token"], token_type_hint=hint).status_code == 200
    assert introspect(client, rp, tokens["refresh_token"]).get_json() == {"active": False}


# ------------------------------------------------------------------ revocation
def test_revocation(app, client, rp):
    tokens = full_flow(client, rp)
    assert revoke(client, rp, tokens["refresh_token"], token_type_hint="refresh_token").status_code == 200
    assert_token_error(refresh(client, rp, tokens["refresh_token"], scope="openid"), 400, "invalid_grant")
    assert introspect(client, rp, tokens["refresh_token"]).get_json() == {"active": False}
    # the grant's access token goes with it (RFC 7009 2.1)
    assert client.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401

    access_only = full_flow(client, rp)
    assert client.get("/userinfo", headers=bearer(access_only["access_token"])).status_code == 200
    response = revoke(client, rp, access_only["access_token"], token_type_hint="access_token")
    assert response.status_code == 200
    assert_no_store(response)
    assert client.get("/userinfo", headers=bearer(access_only["access_token"])).status_code == 401
    assert introspect(client, rp, access_only["access_token"]).get_json() == {"active": False}
    # revoking again, or revoking garbage, is still 200 (RFC 7009 2.2)
    assert revoke(client, rp, access_only["access_token"]).status_code == 200
    assert revoke(client, rp, "garbage").status_code == 200


def test_revocation_needs_the_owning_client(app, client, rp):
    other = new_client(app, name="Other", redirect_uri="https://other.example/cb")
    public = new_client(app, name="SPA", token_endpoint_auth_method="none")
    tokens = full_flow(client, rp)
    anonymous = client.post("/revoke", data={"token": tokens["access_token"]})
    assert anonymous.status_code == 401
    revoke(client, other, tokens["access_token"])
    revoke(client, other, tokens["refresh_token"])
    # someone else's revocation request changes nothing
    assert client.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
    assert refresh(client, rp, tokens["refresh_token"], scope="openid").status_code == 200
    # a public client revokes its own tokens with its client_id alone
    response, verifier = authorize(client, public)
    mine = exchange(client, public, code_params(response, public)["code"], verifier, auth="none").get_json()
    assert revoke(client, public, mine["refresh_token"], auth="none").status_code == 200
    assert_token_error(refresh(client, public, mine["refresh_token"], auth="none", scope="openid"), 400,
                       "invalid_grant")


@pytest.mark.parametrize("path", ["/introspect", "/revoke"])
@pytest.mark.parametrize("repeated, second", [
    ("token", "access token"), ("token_type_hint", "access_token"), ("client_id", "the same"),
    ("client_secret", "not-the-secret"),
])
def test_introspection_and_revocation_refuse_a_repeated_parameter(app, client, rp, path, repeated, second):
    """RFC 6749 §3.2 (RFC 7009, RFC 7662 build on it): invalid_request, and nothing revoked."""
    tokens = full_flow(client, rp)
    second = {"access token": tokens["access_token"], "the same": rp.client_id}.get(second, second)
    form = [("token", tokens["refresh_token"]), ("token_type_hint", "refresh_token"), ("client_id", rp.client_id),
            ("client_secret", rp.client_secret)]
    answer = client.post(path, data=MultiDict([*form, (repeated, second)]))
    assert_token_error(answer, 400, "invalid_request")
    for token in (tokens["refresh_token"], tokens["access_token"]):
        assert introspect(client, rp, token).get_json()["active"] is True


# ------------------------------------------------------------------ discovery and keys
def test_oidcc_discovery(app, client, rp):
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200 and response.mimetype == "application/json"
    meta = response.get_json()
    assert meta["issuer"] == ISSUER
    # every endpoint listed is served here, under the issuer
    endpoints = {"authorization_endpoint": ("GET", {400}), "token_endpoint": ("POST", {400, 401}),
                 "userinfo_endpoint": ("GET", {401}), "jwks_uri": ("GET", {200}),
                 "introspection_endpoint": ("POST", {401}), "revocation_endpoint": ("POST", {401}),
                 "end_session_endpoint": ("GET", {200})}
    for name, (method, statuses) in endpoints.items():
        url = meta[name]
        assert url.startswith(ISSUER + "/"), (name, url)
        answered = client.open(url[len(ISSUER):], method=method)
        assert answered.status_code in statuses, (name, answered.status_code)
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
    assert set(meta["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post",
                                                                  "private_key_jwt", "none"}
    assert meta["subject_types_supported"] == ["public"]
    assert set(meta.get("response_modes_supported", ["query"])) <= {"query"}
    assert {"openid", "profile", "email", "phone"} <= set(meta["scopes_supported"])
    assert "address" not in meta["scopes_supported"]  # not implemented, so not listed
    assert meta["request_parameter_supported"] is False and meta["request_uri_parameter_supported"] is False
    assert meta.get("claims_parameter_supported", False) is False
    assert "none" not in meta["id_token_signing_alg_values_supported"]
    assert "RS256" in meta["id_token_signing_alg_values_supported"]
    published = {k["alg"] for k in client.get("/jwks.json").get_json()["keys"]}
    assert set(meta["id_token_signing_alg_values_supported"]) <= published
    for claim in ("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "email", "name"):
        assert claim in meta["claims_supported"], claim
    assert set(meta["acr_values_supported"]) == set(protocol.ACR_VALUES)
    assert set(meta.get("prompt_values_supported", [])) >= {"none", "login"}
    assert "frontchannel_logout_supported" not in meta or meta["frontchannel_logout_supported"] is False
    # the RFC 8414 path says the same
    assert client.get("/.well-known/oauth-authorization-server").get_json() == meta


def test_oidcc_jwks(app, client):
    response = client.get("/jwks.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    cache = response.headers.get("Cache-Control", "")
    assert "max-age=" in cache and "no-store" not in cache
    keys = response.get_json()["keys"]
    kids = [k["kid"] for k in keys]
    assert all(kids) and len(set(kids)) == len(kids)
    for key in keys:
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key), key
        assert key.get("use", "sig") == "sig"
        assert key["alg"] in ALL_ALGS
    assert {"RS256", "ES256"} <= {k["alg"] for k in keys}
    KeySet.import_key_set(response.get_json())
