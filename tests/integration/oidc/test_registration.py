"""Client registration: metadata rules (RFC 7591 §2), initial access tokens, the RFC 7592 lifecycle,
declared clients imported idempotently."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from pathlib import Path

import pytest

from idp import protocol
from idp.oidc import clients, registration

GOOD = {"client_name": "Results", "redirect_uris": ["https://results.example/cb"]}
EC_JWKS = {"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                     "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "k1"}]}

INVALID = [
    ({"redirect_uris": ["https://a.example/cb"]}, "invalid_client_metadata", "client_name"),
    ({**GOOD, "redirect_uris": ["http://results.example/cb"]}, "invalid_redirect_uri", "https"),
    ({**GOOD, "redirect_uris": ["https://results.example/cb#frag"]}, "invalid_redirect_uri", "fragment"),
    ({**GOOD, "redirect_uris": []}, "invalid_redirect_uri", "redirect_uri"),
    ({**GOOD, "redirect_uris": "https://results.example/cb"}, "invalid_redirect_uri", "list"),
    ({**GOOD, "token_endpoint_auth_method": "client_secret_jwt"}, "invalid_client_metadata", "token_endpoint_auth_method"),
    ({**GOOD, "grant_types": ["implicit"]}, "invalid_client_metadata", "grant_types"),
    ({**GOOD, "response_types": ["token"]}, "invalid_client_metadata", "response_types"),
    ({**GOOD, "grant_types": ["client_credentials"], "response_types": ["code"]}, "invalid_client_metadata",
     "response_types"),
    ({**GOOD, "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "client_credentials"]},
     "invalid_client_metadata", "public client"),
    ({**GOOD, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata", "jwks"),
    ({**GOOD, "token_endpoint_auth_method": "private_key_jwt", "jwks": EC_JWKS, "jwks_uri": "https://a.example/j"},
     "invalid_client_metadata", "not both"),
    ({**GOOD, "jwks": {"keys": [{**EC_JWKS["keys"][0], "d": "secret"}]}}, "invalid_client_metadata", "public keys"),
    ({**GOOD, "id_token_signed_response_alg": "none"}, "invalid_client_metadata", "id_token_signed_response_alg"),
    ({**GOOD, "id_token_signed_response_alg": "HS256"}, "invalid_client_metadata", "id_token_signed_response_alg"),
    ({**GOOD, "post_logout_redirect_uris": ["ftp://a.example/"]}, "invalid_client_metadata", "post_logout"),
    ({**GOOD, "backchannel_logout_uri": "http://rp.example/logout"}, "invalid_client_metadata", "backchannel"),
    ({**GOOD, "backchannel_logout_session_required": "yes"}, "invalid_client_metadata", "true or false"),
    ({**GOOD, "allowed_profiles": ["results.view", "superpowers"]}, "invalid_client_metadata", "allowed_profiles"),
    ({**GOOD, "allowed_profiles": [["results.view"]]}, "invalid_client_metadata", "allowed_profiles"),
    ({**GOOD, "allowed_profiles": [{}]}, "invalid_client_metadata", "allowed_profiles"),
    ({**GOOD, "scope": "openid \x00"}, "invalid_client_metadata", "scope"),
    ({**GOOD, "scope": "openid pro\"file"}, "invalid_client_metadata", "scope"),
    ({**GOOD, "scope": "openid prōfile"}, "invalid_client_metadata", "scope"),
]

#: values no field taking a URI accepts: a host or port that does not parse or could be no server's, and characters no URI
#: holds (a line break would reach a Location header: at /logout, after the session had ended)
BAD_URIS = ["https://[::1/cb", "https://[x]/cb", "https://a.example:99999/cb", "https://a.example/bye\r\nSet-Cookie: x=1",
            "https://a.example/b e", "https://a.example/\x00", "https://a.example/\tcb", "https://a.example/é",
            # no server listens on port 0, and a name with an empty label is no host's (found by an
            # outside probe: both were accepted)
            "https://a.example:0/cb", "https://a..example/cb", "https://.a.example/cb", "https://a-.example/cb",
            "https://" + "a" * 64 + ".example/cb"]
#: each field that takes a URI, and the error for a bad one
URI_FIELDS = {"redirect_uris": "invalid_redirect_uri", "post_logout_redirect_uris": "invalid_client_metadata",
              "jwks_uri": "invalid_client_metadata", "backchannel_logout_uri": "invalid_client_metadata",
              "initiate_login_uri": "invalid_client_metadata"}


def _with_uri(meta: dict, field: str, uri: str) -> dict:
    return {**meta, field: [uri] if field.endswith("_uris") else uri}

VALID = [
    GOOD,
    {**GOOD, "redirect_uris": ["http://127.0.0.1:8080/cb", "http://localhost/cb", "https://x.example/cb?a=1"]},
    {**GOOD, "token_endpoint_auth_method": "none"},
    {**GOOD, "token_endpoint_auth_method": "private_key_jwt", "jwks": EC_JWKS},
    {**GOOD, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://rp.example/jwks.json"},
    {"client_name": "Batch", "grant_types": ["client_credentials"], "scope": "results.read"},
    {**GOOD, "id_token_signed_response_alg": "ES256", "backchannel_logout_uri": "https://rp.example/bcl",
     "backchannel_logout_session_required": True, "allowed_profiles": ["results.view"]},
]


@pytest.fixture
def initial_token(app):
    with app.app_context():
        return registration.issue_initial_token(actor="test", uses=50)


def _register(client, meta, token):
    return client.post("/register", json=meta, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("meta,error,words", INVALID)
def test_invalid_metadata_is_refused_with_the_rfc_error(client, initial_token, meta, error, words):
    response = _register(client, meta, initial_token)
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"] == error
    assert words.lower() in body["error_description"].lower()


@pytest.mark.parametrize("field", URI_FIELDS)
def test_a_malformed_uri_is_refused_in_every_field_that_takes_one(client, initial_token, field):
    created = _register(client, GOOD, initial_token).get_json()
    uri = "/register/" + created["client_id"]
    auth = {"Authorization": f"Bearer {created['registration_access_token']}"}
    for bad in BAD_URIS:
        registered = _register(client, _with_uri(GOOD, field, bad), initial_token)
        assert registered.status_code == 400, (bad, registered.get_json())
        assert registered.get_json()["error"] == URI_FIELDS[field], bad
        replaced = client.put(uri, json=_with_uri({**GOOD, "client_id": created["client_id"]}, field, bad), headers=auth)
        assert replaced.status_code == 400 and replaced.get_json()["error"] == URI_FIELDS[field], bad
        assert "\n" not in replaced.get_json()["error_description"]
    assert client.get(uri, headers=auth).get_json() == {k: v for k, v in created.items()
                                                        if k not in ("client_secret", "client_secret_expires_at",
                                                                     "registration_access_token")}


@pytest.mark.parametrize("field", ["client_name", "scope", "description"])
def test_a_lone_surrogate_is_refused_and_spends_nothing(app, client, field):
    """\\ud800 in JSON parses to a string no database can store: refused as the body is read."""
    with app.app_context():
        token = registration.issue_initial_token(actor="test", uses=1)
    raw = json.dumps({**GOOD, field: "SURROGATE"}).replace("SURROGATE", "x \\ud800")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    refused = client.post("/register", data=raw, headers=headers)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_client_metadata"
    created = _register(client, GOOD, token).get_json()
    auth = {"Authorization": f"Bearer {created['registration_access_token']}", "Content-Type": "application/json"}
    raw = json.dumps({**GOOD, "client_id": created["client_id"], field: "SURROGATE"}).replace("SURROGATE", "\\udfff")
    replaced = client.put("/register/" + created["client_id"], data=raw, headers=auth)
    assert replaced.status_code == 400 and replaced.get_json()["error"] == "invalid_client_metadata"
    assert client.get("/register/" + created["client_id"], headers=auth).get_json()["client_name"] == GOOD["client_name"]


def test_errors_are_english_whatever_the_callers_language(client, initial_token):
    # the board console shows these refusals in Welsh on Welsh pages; RFC 7591 answers programs
    refused = client.post("/register?ui_locales=cy", json={**GOOD, "redirect_uris": ["http://results.example/cb"]},
                          headers={"Authorization": f"Bearer {initial_token}", "Accept-Language": "cy"})
    assert refused.status_code == 400
    assert refused.get_json()["error_description"] == \
        "redirect_uri must use https (http only for localhost/loopback): http://results.example/cb"


@pytest.mark.parametrize("meta", VALID)
def test_valid_metadata_registers(client, initial_token, meta):
    response = _register(client, meta, initial_token)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["client_id"] and body["registration_access_token"]
    assert body["registration_client_uri"] == f"http://localhost/register/{body['client_id']}"
    confidential = body["token_endpoint_auth_method"] in ("client_secret_basic", "client_secret_post")
    assert ("client_secret" in body) == confidential
    assert response.headers["Cache-Control"] == "no-store"


def test_initial_access_token_is_required_and_single_use(app, client):
    assert client.post("/register", json=GOOD).status_code == 401
    assert _register(client, GOOD, "not-a-token").status_code == 401
    with app.app_context():
        token = registration.issue_initial_token(actor="test", uses=1)
    assert _register(client, GOOD, token).status_code == 201
    assert _register(client, GOOD, token).status_code == 401


def test_failed_registration_does_not_spend_the_token(app, client):
    with app.app_context():
        token = registration.issue_initial_token(actor="test", uses=1)
    assert _register(client, {"client_name": ""}, token).status_code == 400
    assert _register(client, GOOD, token).status_code == 201


def test_a_self_registered_client_cannot_give_itself_the_admin_api(client, initial_token):
    refused = _register(client, {**GOOD, "scope": "openid access admin_api"}, initial_token)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_client_metadata"
    assert "admin_api" in refused.get_json()["error_description"]
    created = _register(client, GOOD, initial_token).get_json()
    auth = {"Authorization": f"Bearer {created['registration_access_token']}"}
    added = client.put("/register/" + created["client_id"], headers=auth,
                       json={**GOOD, "client_id": created["client_id"], "scope": "openid admin_api"})
    assert added.status_code == 400 and "admin_api" in added.get_json()["error_description"]


def test_rfc7592_read_update_delete(client, initial_token):
    created = _register(client, GOOD, initial_token).get_json()
    uri = "/register/" + created["client_id"]
    auth = {"Authorization": f"Bearer {created['registration_access_token']}"}
    assert client.get(uri).status_code == 401
    assert client.get(uri, headers={"Authorization": "Bearer wrong"}).status_code == 401
    read = client.get(uri, headers=auth).get_json()
    assert read["redirect_uris"] == GOOD["redirect_uris"] and "client_secret" not in read

    changed = {**GOOD, "client_id": created["client_id"], "redirect_uris": ["https://results.example/new"]}
    updated = client.put(uri, json=changed, headers=auth)
    assert updated.status_code == 200 and updated.get_json()["redirect_uris"] == ["https://results.example/new"]
    bad = client.put(uri, json={**changed, "redirect_uris": ["http://evil.example/cb"]}, headers=auth)
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_redirect_uri"
    wrong_id = client.put(uri, json={**changed, "client_id": "someone-else"}, headers=auth)
    assert wrong_id.status_code == 400

    assert client.delete(uri, headers=auth).status_code == 204
    assert client.get(uri, headers=auth).status_code == 401


def _as_board(app, client_id, **changes):
    """Board staff change a client (the API, the board's form and the CLI all call this)."""
    with app.app_context():
        meta = {**clients.metadata_of(clients.get(client_id)), **changes}
        clients.update(client_id, meta, actor="board", pepper=app.extensions["idp.pepper"])


RESTRICTED = {"scope": "openid profile", "allowed_profiles": ["results.embargoed", "results.view"],
              "require_pushed_authorization_requests": True, "dpop_bound_access_tokens": True,
              "grant_types": ["authorization_code"], "token_endpoint_auth_method": "private_key_jwt", "jwks": EC_JWKS}


@pytest.mark.parametrize("loosened", [
    None,  # every restriction left out, as the client first registered
    {"scope": "openid profile email"},
    {"allowed_profiles": None},
    {"allowed_profiles": ["results.view", "entries.view"]},
    {"require_pushed_authorization_requests": False},
    {"dpop_bound_access_tokens": False},
    {"grant_types": ["authorization_code", "refresh_token"]},
    {"grant_types": ["authorization_code", "client_credentials"]},
    {"token_endpoint_auth_method": "client_secret_basic", "jwks": None},
    {"token_endpoint_auth_method": "none", "jwks": None},
])
def test_rfc7592_cannot_loosen_what_the_client_holds(app, client, initial_token, loosened):
    """Board staff narrowed a self-registered client's scopes, profiles and grant types, and required
    PAR, DPoP and private_key_jwt of it: a PUT that would undo any of it is refused and changes
    nothing (no secret is issued); one that keeps or tightens it is taken."""
    created = _register(client, GOOD, initial_token).get_json()
    uri, auth = "/register/" + created["client_id"], {"Authorization": f"Bearer {created['registration_access_token']}"}
    _as_board(app, created["client_id"], **RESTRICTED)
    held = client.get(uri, headers=auth).get_json()
    assert {k: held[k] for k in RESTRICTED} == RESTRICTED
    body = {**GOOD, "client_id": created["client_id"]} if loosened is None else \
        {k: v for k, v in {**held, **loosened}.items() if v is not None}
    refused = client.put(uri, json=body, headers=auth)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_client_metadata", refused.get_json()
    assert client.get(uri, headers=auth).get_json() == held
    tightened = {**held, "scope": "openid", "allowed_profiles": ["results.view"],
                 "redirect_uris": ["https://results.example/new"]}
    taken = client.put(uri, json=tightened, headers=auth)
    assert taken.status_code == 200, taken.get_json()
    assert {k: taken.get_json()[k] for k in ("scope", "allowed_profiles", "redirect_uris")} == \
        {"scope": "openid", "allowed_profiles": ["results.view"], "redirect_uris": ["https://results.example/new"]}


@pytest.mark.one_backend
@pytest.mark.parametrize("registered,sent", list(itertools.product(protocol.AUTH_METHODS, repeat=2)))
def test_rfc7592_may_change_the_auth_method_to_one_that_proves_as_much_never_less(client, initial_token,
                                                                                    registered, sent):
    """A client's token endpoint auth method may move up (none, then a secret sent either way, then a
    signature with its own key), never down: a client required to sign cannot go back to a secret."""
    keys = {"jwks": EC_JWKS} if registered == "private_key_jwt" else {}
    created = _register(client, {**GOOD, "token_endpoint_auth_method": registered, **keys}, initial_token).get_json()
    uri, auth = "/register/" + created["client_id"], {"Authorization": f"Bearer {created['registration_access_token']}"}
    held = client.get(uri, headers=auth).get_json()
    body = {k: v for k, v in {**held, "token_endpoint_auth_method": sent,
                              "jwks": EC_JWKS if sent == "private_key_jwt" else None}.items() if v is not None}
    answer = client.put(uri, json=body, headers=auth)
    if protocol.AUTH_METHOD_STRENGTH[sent] >= protocol.AUTH_METHOD_STRENGTH[registered]:
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["token_endpoint_auth_method"] == sent
        assert ("client_secret" in answer.get_json()) == (sent in protocol.SECRET_METHODS
                                                          and registered not in protocol.SECRET_METHODS)
    else:
        assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_client_metadata"
        assert registered in answer.get_json()["error_description"] and "client_secret" not in answer.get_json()
        assert client.get(uri, headers=auth).get_json() == held


def test_a_disabled_client_cannot_read_replace_or_delete_its_registration(app, client, initial_token):
    created = _register(client, GOOD, initial_token).get_json()
    client_id = created["client_id"]
    uri, auth = "/register/" + client_id, {"Authorization": f"Bearer {created['registration_access_token']}"}
    with app.app_context():
        clients.set_disabled(client_id, True, actor="board")
    for method, body in (("GET", None), ("PUT", {**GOOD, "client_id": client_id}), ("DELETE", None)):
        refused = client.open(uri, method=method, json=body, headers=auth)
        assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_token", method
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    with app.app_context():
        assert clients.get(client_id).disabled
        clients.set_disabled(client_id, False, actor="board")
    assert client.get(uri, headers=auth).status_code == 200


def test_a_registered_client_can_use_the_token_endpoint_and_is_gone_after_delete(client, initial_token):
    import base64

    created = _register(client, {"client_name": "Batch", "grant_types": ["client_credentials"],
                                 "scope": "results.read"}, initial_token).get_json()
    basic = base64.b64encode(f"{created['client_id']}:{created['client_secret']}".encode()).decode()
    ok = client.post("/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
    assert ok.status_code == 200 and ok.get_json()["scope"] == "results.read"
    client.delete(created["registration_client_uri"].replace("http://localhost", ""),
                  headers={"Authorization": f"Bearer {created['registration_access_token']}"})
    gone = client.post("/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
    assert gone.status_code == 401


def test_discovery_lists_the_registration_endpoint(client):
    assert client.get("/.well-known/openid-configuration").get_json()["registration_endpoint"] == \
        "http://localhost/register"


def test_declared_clients_import_is_idempotent(tmp_path, settings):
    repo = Path(__file__).resolve().parents[3]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(IDP_DATABASE_URL=settings.database_url, IDP_DATA_DIR=str(settings.data_dir),
               IDP_KEYS_DIR=str(settings.keys_dir), IDP_SECRET_KEY="test-secret-key",
               IDP_LOGGING_LEVEL="WARNING", IDP_ISSUER="http://localhost")
    if settings.store.redis_url:
        env.update(IDP_REDIS_URL=settings.store.redis_url, IDP_STORE_PREFIX=settings.store.prefix)
    idp = str(Path(os.sys.executable).with_name("idp"))

    def run(extra_env=None):
        done = subprocess.run([idp, "client", "import", str(repo / "clients" / "registrations")], cwd=tmp_path,
                              env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return {row["client_id"]: row for row in json.loads(done.stdout)}

    secret = "r" * 40
    first = run({"RESULTS_CLIENT_SECRET": secret})
    assert {r["action"] for r in first.values()} == {"created"}
    assert "client_secret" not in first["results"]  # it came from the environment
    assert len(first["entries"]["client_secret"]) >= 32  # generated, shown once
    second = run({"RESULTS_CLIENT_SECRET": secret})
    assert {r["action"] for r in second.values()} == {"unchanged"}
    assert all("client_secret" not in r for r in second.values())
    third = run({"RESULTS_CLIENT_SECRET": "s" * 40})
    assert third["results"]["action"] == "updated"

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.toml").write_text('client_id = "a-client"\nclient_name = "A"\nredirect_uris = ["http://a.example/cb"]\n')
    done = subprocess.run([idp, "client", "import", str(broken)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "a.toml" in done.stderr and "Traceback" not in done.stderr
