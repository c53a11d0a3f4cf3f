"""Pushed authorization requests (RFC 9126), conformance style: the client pushes its request
(authenticated as at /token), the browser carries only ``client_id`` and ``request_uri``; a
request_uri is used once, by its own client, within its lifetime; what is pushed is validated
exactly as /authorize would validate it. Time is moved with time_machine, never slept."""

from __future__ import annotations

import base64
import json
import secrets
import time
from urllib.parse import urlencode

import pytest
import time_machine
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.oidc import par
from tests.support import PASSWORD, exchange, make_account, make_client, pkce_pair, query, sign_in

ISSUER = "http://localhost"
EMAIL = "eo@centre.example"
URN = "urn:ietf:params:oauth:request_uri:"


@pytest.fixture
def rp(app):
    with app.app_context():
        make_account()
        return make_client()


def new_client(app, **meta):
    with app.app_context():
        return make_client(**meta)


def basic(client) -> dict:
    raw = f"{client.client_id}:{client.client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def request_params(rp, **changes) -> dict:
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
              "scope": "openid", "state": "pushed-state", "nonce": "pushed-nonce",
              "code_challenge": challenge, "code_challenge_method": "S256", "_verifier": verifier}
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


def push(http, rp, auth="basic", **changes):
    """POST /par; returns (response, PKCE verifier)."""
    params = request_params(rp, **changes)
    verifier = params.pop("_verifier")
    headers = {}
    if auth == "basic":
        headers = basic(rp)
    elif auth == "post":
        params["client_secret"] = rp.client_secret
    return http.post("/par", data=params, headers=headers), verifier


def pushed(http, rp, **changes) -> tuple[str, str]:
    response, verifier = push(http, rp, **changes)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["request_uri"], verifier


def use(http, client_id, request_uri, **extra):
    return http.get("/authorize?" + urlencode({"client_id": client_id, "request_uri": request_uri, **extra}))


def assert_par_error(response, error, status=(400,)):
    assert response.status_code in status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    assert response.get_json()["error"] == error, response.get_json()
    assert response.get_json()["error_description"]
    assert "no-store" in response.headers["Cache-Control"]


def assert_error_page(response):
    """No redirect: nothing known says where this client's browser should go."""
    assert response.status_code == 400, (response.status_code, response.location)
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"


def signed_in_code(http, response) -> dict:
    """From /authorize: sign in if asked, come back, return the redirect's parameters."""
    if response.status_code == 302 and response.location.startswith("/signin"):
        signed = sign_in(http, EMAIL, PASSWORD, query(response.location)["authreq"])
        assert signed.status_code == 303, signed.get_data(as_text=True)
        response = http.get(signed.location)
    assert response.status_code == 302, response.get_data(as_text=True)
    return query(response.location)


# ------------------------------------------------------------------ discovery
def test_discovery_advertises_the_endpoint(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["pushed_authorization_request_endpoint"] == ISSUER + "/par"
    assert meta["require_pushed_authorization_requests"] is False


# ------------------------------------------------------------------ happy path
@pytest.mark.parametrize("auth", ["basic", "post"])
def test_pushed_request_signs_in_and_issues_a_code(app, client, rp, auth):
    response, verifier = push(client, rp, auth=auth)
    assert response.status_code == 201 and "no-store" in response.headers["Cache-Control"]
    body = response.get_json()
    assert body["request_uri"].startswith(URN) and body["expires_in"] == 60
    # everything but client_id and request_uri in the query is ignored: the pushed values are used
    answer = signed_in_code(client, use(client, rp.client_id, body["request_uri"], state="from-the-browser",
                                        redirect_uri="https://evil.example/cb", scope="openid email"))
    assert answer["state"] == "pushed-state" and answer["iss"] == ISSUER and answer["code"]
    tokens = exchange(client, rp, answer["code"], verifier)
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    claims = jwt.decode(tokens.get_json()["id_token"], _keys(client)).claims
    assert claims["nonce"] == "pushed-nonce" and claims["aud"] == rp.client_id
    assert tokens.get_json()["scope"] == "openid"


def test_public_client_pushes_with_pkce(app, client):
    with app.app_context():
        make_account()
    public = new_client(app, name="Public", token_endpoint_auth_method="none")
    params = request_params(public)
    verifier = params.pop("_verifier")
    response = client.post("/par", data=params)
    assert response.status_code == 201, response.get_data(as_text=True)
    answer = signed_in_code(client, use(client, public.client_id, response.get_json()["request_uri"]))
    assert exchange(client, public, answer["code"], verifier, auth="none").status_code == 200
    # a public client without PKCE is refused when it pushes, as /authorize would refuse it
    params = request_params(public, code_challenge=None, code_challenge_method=None)
    params.pop("_verifier")
    assert_par_error(client.post("/par", data=params), "invalid_request")


def test_private_key_jwt_client_authenticates_with_the_par_endpoint_as_audience(app, client):
    with app.app_context():
        make_account()
    key = ECKey.generate_key("P-256", auto_kid=True)
    jwt_rp = new_client(app, name="JWT", token_endpoint_auth_method="private_key_jwt",
                        jwks={"keys": [key.as_dict(private=False)]})

    def assertion(aud):
        now = int(time.time())
        return jwt.encode({"alg": "ES256", "kid": key.kid},
                          {"iss": jwt_rp.client_id, "sub": jwt_rp.client_id, "aud": aud, "iat": now,
                           "exp": now + 60, "jti": secrets.token_urlsafe(16)}, key, algorithms=["ES256"])

    for aud in (ISSUER + "/par", ISSUER):
        params = request_params(jwt_rp)
        params.pop("_verifier")
        params.update(client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                      client_assertion=assertion(aud))
        response = client.post("/par", data=params)
        assert response.status_code == 201, response.get_data(as_text=True)
    # the assertion's jti is single use here as at /token
    assert_par_error(client.post("/par", data=params), "invalid_client", status=(400, 401))  # RFC 6749 §5.2


# ------------------------------------------------------------------ single use, short-lived
def test_request_uri_is_single_use(app, client, rp):
    request_uri, verifier = pushed(client, rp)
    answer = signed_in_code(client, use(client, rp.client_id, request_uri))
    assert answer["code"]
    again = use(client, rp.client_id, request_uri)  # the same browser, still signed in
    assert_error_page(again)
    assert "invalid_request_uri" in again.get_data(as_text=True)
    other_browser = app.test_client()
    assert_error_page(use(other_browser, rp.client_id, request_uri))


def test_request_uri_expires(app, client, rp):
    with time_machine.travel(time.time(), tick=False) as traveller:
        request_uri, _ = pushed(client, rp)
        traveller.shift(59)
        fresh, _ = pushed(client, rp)
        assert use(client, rp.client_id, request_uri).status_code == 302  # still within its minute
        traveller.shift(61)
        assert_error_page(use(client, rp.client_id, fresh))


def test_lifetime_is_a_setting(make_settings):
    from idp import create_app

    app = create_app(make_settings(tokens={"pushed_request_lifetime": 30}))
    try:
        with app.app_context():
            rp = make_client()
        response, _ = push(app.test_client(), rp)
        assert response.get_json()["expires_in"] == 30
    finally:
        app.extensions["idp.db"].dispose()
        app.extensions["idp.store"].close()


# ------------------------------------------------------------------ whose request it is
def test_request_uri_of_another_client_is_refused_and_not_used_up(app, client, rp):
    other = new_client(app, name="Other", redirect_uri="https://other.example/cb")
    request_uri, _ = pushed(client, rp)
    assert_error_page(use(client, other.client_id, request_uri))
    assert_error_page(use(client, "", request_uri))
    assert_error_page(client.get("/authorize?" + urlencode({"request_uri": request_uri})))
    # the client that pushed it can still use it
    assert signed_in_code(client, use(client, rp.client_id, request_uri))["code"]


def test_a_client_cannot_push_for_another(app, client, rp):
    other = new_client(app, name="Other", redirect_uri="https://other.example/cb")
    params = request_params(other)
    params.pop("_verifier")
    assert_par_error(client.post("/par", data=params, headers=basic(rp)), "invalid_request")
    # nor with another's secret, nor with none at all
    response = client.post("/par", data={**params, "client_secret": rp.client_secret})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    assert client.post("/par", data=params).status_code == 401
    forged = {"Authorization": "Basic " + base64.b64encode(f"{rp.client_id}:wrong".encode()).decode()}
    assert client.post("/par", data=request_params(rp), headers=forged).status_code == 401


# ------------------------------------------------------------------ validated as /authorize would
@pytest.mark.parametrize("changes, error", [
    ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
    ({"redirect_uri": None}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "profile"}, "invalid_scope"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ({"request_uri": URN + "nested"}, "invalid_request"),
    ({"prompt": "none login"}, "invalid_request"),
    ({"response_mode": "form_post"}, "invalid_request"),
])
def test_pushed_parameters_are_validated_at_push_time(client, rp, changes, error):
    response, _ = push(client, rp, **changes)
    assert_par_error(response, error)


def test_duplicated_parameters_are_refused(client, rp):
    params = request_params(rp)
    params.pop("_verifier")
    body = urlencode(params) + "&scope=openid+email"
    response = client.post("/par", data=body, headers={**basic(rp),
                                                        "Content-Type": "application/x-www-form-urlencoded"})
    assert_par_error(response, "invalid_request")


@pytest.mark.parametrize("name, second", [("prompt", "login"), ("max_age", "0"), ("nonce", "n-2"),
                                          ("redirect_uri", "https://evil.example/cb"), ("dpop_jkt", "d" * 43),
                                          ("code_challenge_method", "S256")])
def test_a_pushed_parameter_given_twice_is_refused(client, rp, name, second):
    params = request_params(rp, prompt="none", max_age="100", dpop_jkt="c" * 43)
    params.pop("_verifier")
    body = urlencode(params) + "&" + urlencode({name: second})
    response = client.post("/par", data=body, headers={**basic(rp),
                                                        "Content-Type": "application/x-www-form-urlencoded"})
    assert_par_error(response, "invalid_request")
    assert name in response.get_json()["error_description"]


def test_a_pushed_request_used_with_client_id_twice_gets_an_error_page_and_is_not_used_up(app, client, rp):
    request_uri, verifier = pushed(client, rp)
    twice = client.get("/authorize?" + urlencode([("client_id", rp.client_id), ("client_id", rp.client_id),
                                                  ("request_uri", request_uri)]))
    assert twice.status_code == 400 and "Location" not in twice.headers
    assert use(client, rp.client_id, request_uri).status_code == 302


@pytest.mark.parametrize("second", ["wrong", "the same"])
def test_a_repeated_client_secret_is_refused(client, rp, second):
    """RFC 6749 §3.2: the client authenticates as at /token, where no parameter may be given twice."""
    params = request_params(rp, client_secret=rp.client_secret)
    params.pop("_verifier")
    body = urlencode(params) + "&" + urlencode({"client_secret": rp.client_secret if second == "the same" else second})
    response = client.post("/par", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_par_error(response, "invalid_request")
    assert "client_secret" in response.get_json()["error_description"]


def test_prompt_none_is_judged_when_the_request_is_used(client, rp):
    request_uri, _ = pushed(client, rp, prompt="none")
    answer = query(use(client, rp.client_id, request_uri).location)
    assert answer["error"] == "login_required" and answer["state"] == "pushed-state"


def test_oversized_and_malformed_bodies(client, rp):
    huge = client.post("/par", data={"client_id": rp.client_id, "state": "x" * (2 * 1024 * 1024)},
                       headers=basic(rp))
    assert huge.status_code == 413 and huge.get_json()["error"] == "invalid_request"
    long_state, _ = push(client, rp, state="s" * (par.MAX_PARAMETER_CHARACTERS + 1))
    assert_par_error(long_state, "invalid_request")
    nested = "[" * 100_000 + "]" * 100_000
    as_json = client.post("/par", data=json.dumps({"client_id": rp.client_id, "claims": nested}),
                          headers={**basic(rp), "Content-Type": "application/json"})
    assert_par_error(as_json, "invalid_request")
    deep_json = client.post("/par", data="[" * 50_000, headers={**basic(rp), "Content-Type": "application/json"})
    assert_par_error(deep_json, "invalid_request")
    brackets, _ = push(client, rp, claims="{" * 4000)  # a form value is text, however it looks
    assert brackets.status_code == 201
    assert client.get("/par").status_code == 405


def test_garbage_request_uris_get_an_error_page(client, rp):
    for value in (URN, URN + "x" * 500, URN + "../../etc", URN + "\u0000"):
        assert_error_page(use(client, rp.client_id, value))


# ------------------------------------------------------------------ clients that must push
def test_a_client_registered_to_require_par(app, client):
    with app.app_context():
        make_account()
    strict = new_client(app, name="Strict", require_pushed_authorization_requests=True)
    verifier, challenge = pkce_pair()
    direct = client.get("/authorize?" + urlencode({
        "response_type": "code", "client_id": strict.client_id, "redirect_uri": strict.redirect_uri,
        "scope": "openid", "state": "st", "code_challenge": challenge, "code_challenge_method": "S256"}))
    answer = query(direct.location)
    assert direct.status_code == 302 and answer["error"] == "invalid_request" and answer["state"] == "st"
    assert "push" in answer["error_description"]

    # pushed, through the whole sign-in: the resumed request is pushed again, so the browser never
    # carries the parameters and the client's rule holds on the way back too
    request_uri, verifier = pushed(client, strict)
    start = use(client, strict.client_id, request_uri)
    signed = sign_in(client, EMAIL, PASSWORD, query(start.location)["authreq"])
    resumed = query(signed.location)
    assert set(resumed) == {"client_id", "request_uri", "_resume"}
    assert resumed["request_uri"] != request_uri and resumed["request_uri"].startswith(URN)
    back = client.get(signed.location)
    answer = query(back.location)
    assert answer["state"] == "pushed-state" and answer["code"]
    assert exchange(client, strict, answer["code"], verifier).status_code == 200
    assert_error_page(client.get(signed.location))  # the resume reference is single use too


def test_require_par_in_registration(app, client):
    from idp.oidc import clients

    with app.app_context():
        for bad in ("yes", 1, None):
            with pytest.raises(clients.ClientMetadataError, match="true or false"):
                clients.validate_metadata({"client_name": "x", "redirect_uris": ["https://a.example/cb"],
                                           "require_pushed_authorization_requests": bad})
        strict = make_client(require_pushed_authorization_requests=True)
        row = clients.get(strict.client_id)
        assert clients.describe(row)["require_pushed_authorization_requests"] is True
        assert clients.describe(clients.get(make_client(name="Lax").client_id))[
            "require_pushed_authorization_requests"] is False


def _keys(http):
    from joserfc.jwk import KeySet

    return KeySet.import_key_set(http.get("/jwks.json").get_json())


@pytest.fixture
def strict_app(make_settings, test_policies_dir, tmp_path):
    """The provider with par_per_client at 3 per minute."""
    import re
    import shutil

    from idp import create_app

    policies = tmp_path / "policies"
    shutil.copytree(test_policies_dir, policies)
    security = policies / "security.toml"
    security.write_text(re.sub(r'^par_per_client = "[^"]+"', 'par_per_client = "3 per minute"',
                               security.read_text(), flags=re.M))
    application = create_app(make_settings(policies={"dir": str(policies)}))
    application.config["TESTING"] = True
    yield application
    application.extensions["idp.db"].dispose()
    application.extensions["idp.store"].close()


def test_pushes_are_limited_per_authenticated_client(strict_app):
    """RFC 9126 §2.3: 429 once a client has pushed its budget; another client, and requests that do
    not authenticate, do not spend it."""
    http = strict_app.test_client()
    with strict_app.app_context():
        make_account()
        first, second = make_client(), make_client(name="Entries")
    impostor = type(first)(first.client_id, "wrong-secret", first.redirect_uri)
    for _ in range(5):
        assert push(http, impostor)[0].status_code == 401
    for _ in range(3):
        assert push(http, first)[0].status_code == 201
    refused = push(http, first)[0]
    assert refused.status_code == 429 and refused.get_json()["error"] == "invalid_request"
    assert push(http, second)[0].status_code == 201


def test_a_public_clients_pushes_are_limited_per_address(strict_app):
    """A public client's client_id authenticates nobody: pushes in its name from other addresses
    do not spend the budget of a person signing in to it, and one address still has a budget."""
    http = strict_app.test_client()
    with strict_app.app_context():
        make_account()
        public = make_client(name="Public", token_endpoint_auth_method="none")
    for n in range(1, 7):  # twice the budget, from as many addresses
        response = http.post("/par", data=request_params(public, _verifier=None),
                             environ_base={"REMOTE_ADDR": f"198.51.100.{n}"})
        assert response.status_code == 201, response.get_data(as_text=True)
    person = {"REMOTE_ADDR": "192.0.2.7"}
    for _ in range(3):
        assert http.post("/par", data=request_params(public, _verifier=None), environ_base=person).status_code == 201
    refused = http.post("/par", data=request_params(public, _verifier=None), environ_base=person)
    assert refused.status_code == 429 and refused.get_json()["error"] == "invalid_request"
