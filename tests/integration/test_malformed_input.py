"""Malformed input at every door, as an attacker sends it: a NUL, a quote or backslash, a non-ASCII
or control character in each parameter of each protocol endpoint, and a NUL in a path or a form.
Never a 500 (on PostgreSQL a NUL in text is an error of the database's; Authlib refuses to quote
some characters in an error description): the protocol's error, or a page a person can act on."""

from __future__ import annotations

import base64

import pytest

from idp.oidc.clients import is_client_id
from tests.support import code_flow, make_account, make_client, sign_in

BAD_VALUES = {"nul": "a\x00b", "quote and backslash": 'a"b\\c', "non-ascii": "aéb", "del": "a\x7fb",
              "space and angle": "a b<"}
AUTHORIZE_PARAMETERS = ("client_id", "redirect_uri", "scope", "state", "nonce", "response_type", "code_challenge",
                        "code_challenge_method", "prompt", "login_hint", "acr_values", "request_uri", "max_age",
                        "ui_locales", "id_token_hint", "claims", "request", "dpop_jkt", "resource")


@pytest.fixture
def answers(app):
    """The app answering as in production: an unexpected exception becomes a 500 page, which the
    test then sees, instead of being raised into the test."""
    app.testing = False
    app.config["PROPAGATE_EXCEPTIONS"] = False
    with app.app_context():
        make_account("eo@centre.example")
        rp = make_client(grant_types=["authorization_code", "refresh_token", "client_credentials"],
                         scope="openid profile offline_access")
    http = app.test_client()
    issued = code_flow(http, rp, scope="openid profile offline_access")
    return http, rp, issued


def _basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.mark.parametrize("bad", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_no_protocol_endpoint_fails_on_a_malformed_parameter(answers, bad):
    http, rp, issued = answers
    basic = _basic(rp.client_id, rp.client_secret)
    seen = []

    def note(what, answer):
        seen.append((what, answer.status_code))

    for parameter in AUTHORIZE_PARAMETERS:
        query = {"client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "response_type": "code",
                 "scope": "openid", "state": "s", "nonce": "n", "code_challenge": "x" * 43,
                 "code_challenge_method": "S256", parameter: bad}
        note(("authorize", parameter), http.get("/authorize", query_string=query))
        note(("par", parameter), http.post("/par", data=query, headers=basic))
    for grant, fields in [("authorization_code", ["code", "redirect_uri", "code_verifier"]),
                          ("refresh_token", ["refresh_token", "scope"]),
                          ("client_credentials", ["scope", "resource"])]:
        for field in [*fields, "grant_type", "client_id"]:
            form = {"grant_type": grant, "code": "c", "redirect_uri": rp.redirect_uri,
                    "refresh_token": issued["refresh_token"], field: bad}
            note(("token", grant, field), http.post("/token", data=form, headers=basic))
            note(("token, secret in the form", grant, field),
                 http.post("/token", data={**form, "client_id": form.get("client_id", rp.client_id),
                                           "client_secret": bad}))
    for field in ("token", "token_type_hint"):
        note(("introspect", field), http.post("/introspect", headers=basic,
                                              data={"token": issued["access_token"], field: bad}))
        note(("revoke", field), http.post("/revoke", headers=basic, data={"token": issued["refresh_token"], field: bad}))
    note(("basic credentials",), http.post("/token", headers=_basic(bad, bad), data={"grant_type": "client_credentials"}))
    for field in ("id_token_hint", "post_logout_redirect_uri", "client_id", "state", "logout_hint", "ui_locales"):
        note(("logout", field), http.get("/logout", query_string={field: bad}))
    note(("registration read",), http.get("/register/" + bad, headers={"Authorization": "Bearer x"}))
    assert not [what for what, status in seen if status >= 500], seen


@pytest.mark.parametrize("path", ["/users/a%00b", "/users/a%00b/access", "/centres/a%00b/users",
                                  "/board/people/a%00b", "/board/services/a%00b", "/board/centres/a%00b",
                                  "/board/keys/a%00b/retire", "/api/v1/accounts/a%00b", "/register/a%00b"])
def test_a_nul_in_a_path_reaches_the_lookup_and_is_no_server_error(app, path):
    """Signed in as board staff (who may open every page), so the NUL reaches the lookup."""
    app.testing = False
    app.config["PROPAGATE_EXCEPTIONS"] = False
    with app.app_context():
        make_account("board@board.example", role="board", centre=None)
    http = app.test_client()
    assert sign_in(http, "board@board.example").status_code == 303
    answer = http.get(path)
    assert answer.status_code in (400, 401, 404), (path, answer.status_code)


def test_a_nul_in_a_query_is_no_server_error(answers):
    http, _, _ = answers
    assert http.get("/signin?next=a%00b").status_code < 500


def test_the_token_endpoint_answers_a_nul_with_the_protocol_error(answers):
    """A client_id of no client's shape names none: the protocol's answer, not the database's."""
    http, rp, _ = answers
    answer = http.post("/token", headers=_basic(rp.client_id, rp.client_secret),
                       data={"grant_type": "client_credentials", "scope": "openid\x00"})
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_scope"
    answer = http.post("/token", data={"grant_type": "client_credentials", "client_id": "a\x00bc",
                                       "client_secret": "x"})
    assert answer.status_code in (400, 401) and answer.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke", "/par"])
def test_a_form_body_that_is_not_utf8_is_refused_as_such(answers, path):
    """Werkzeug drops such a body whole: the endpoint said grant_type 'None' or an empty
    response_type was unsupported, about a parameter that had been sent."""
    http, rp, _ = answers
    answer = http.post(path, headers={**_basic(rp.client_id, rp.client_secret),
                                      "Content-Type": "application/x-www-form-urlencoded"},
                       data=b"grant_type=client_credentials&token=x&response_type=code&scope=\xff")
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.get_json() == {"error": "invalid_request", "error_description": "The form body is not UTF-8."}


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke", "/par"])
def test_plain_http_to_another_host_gets_the_protocol_error(answers, path):
    """A request over plain http to a name other than this machine's (a backend port reached
    directly, a proxy that does not say it terminated TLS): Authlib refuses it as it reads the
    request, which was a server error."""
    http, rp, _ = answers
    answer = http.post(path, headers=_basic(rp.client_id, rp.client_secret), base_url="http://idp.example",
                       data={"grant_type": "client_credentials", "token": "x", "response_type": "code"})
    assert answer.status_code == 400
    assert answer.get_json() == {"error": "invalid_request", "error_description": "Send OAuth requests over https."}
    assert answer.headers["Cache-Control"] == "no-store"


def test_a_redirect_uri_that_is_not_a_uri_gets_an_error_page_not_a_redirect(answers):
    http, rp, _ = answers
    answer = http.get("/authorize", query_string={"client_id": rp.client_id, "redirect_uri": rp.redirect_uri + '"',
                                                  "response_type": "code", "scope": "openid"})
    assert answer.status_code == 400 and "Location" not in answer.headers


@pytest.mark.parametrize("value, ok", [("results-service", True), ("abc", True), ("ab", False), ("abc\n", False),
                                       ("a\x00bc", False), ("x" * 65, False), (None, False), (["abc"], False)])
def test_what_can_be_a_client_id(value, ok):
    assert is_client_id(value) is ok
