"""The OpenID Foundation conformance suite's RP-initiated logout plan (OpenID Connect
RP-Initiated Logout 1.0), module by module: test_oidcc_rp_initiated_logout_no_state mirrors
oidcc-rp-initiated-logout-no-state, and so on.

"Is the session over?" is always asked the way a relying party would: an authorization
request with prompt=none, which answers with a code or with error=login_required.
"""

from __future__ import annotations

import base64
import json
import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import time_machine
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support import authorize, exchange, make_account, make_client, query

ISSUER = "http://localhost"
COOKIE = "idp_session"  # the configured __Host- name without its prefix on a localhost http issuer
BYE = "https://rp.example/bye"


@pytest.fixture
def rp(app):
    with app.app_context():
        make_account()
        return make_client()


def id_token_for(http, rp, email="eo@centre.example") -> str:
    """Sign this browser in (if needed) and return a fresh ID token for ``rp``."""
    response, verifier = authorize(http, rp, email=email)
    assert response.status_code == 302, response.get_data(as_text=True)
    params = query(response.location)
    assert "code" in params, params
    tokens = exchange(http, rp, params["code"], verifier)
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    return tokens.get_json()["id_token"]


def session_alive(http, rp) -> bool:
    """What prompt=none says about this browser's session."""
    response = http.get("/authorize?" + urlencode({
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
        "scope": "openid", "state": "probe", "prompt": "none"}))
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.location.startswith(rp.redirect_uri + "?"), response.location
    params = query(response.location)
    assert params["state"] == "probe" and params["iss"] == ISSUER, params
    if "code" in params:
        return True
    assert params.get("error") == "login_required", params
    return False


def assert_signed_out(http, rp, old_cookie: str) -> None:
    """Signed out in the browser (cookie gone) and on the server (the old cookie is dead too)."""
    assert session_cookie(http) is None
    assert not session_alive(http, rp)
    http.set_cookie(COOKIE, old_cookie)
    assert not session_alive(http, rp)
    http.delete_cookie(COOKIE)


def logout_get(http, **params):
    return http.get("/logout?" + urlencode(params))


def session_cookie(http) -> str | None:
    cookie = http.get_cookie(COOKIE)
    return cookie.value if cookie is not None else None


def assert_not_redirected_to(response, uri: str):
    location = response.headers.get("Location", "")
    assert not location.startswith(uri.split("?")[0]), f"redirected to {location}"


def confirmation_csrf(response) -> str:
    assert response.status_code == 200, response.status_code
    html = response.get_data(as_text=True)
    assert "<form" in html and 'name="confirm"' in html, html
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def tamper(token: str, **changes) -> str:
    """The same signature over different claims."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    new_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{new_payload}.{signature}"


def foreign_signed(token: str) -> str:
    """The same header and claims, signed by a key this provider never had."""
    header, payload, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    original_header = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    key = RSAKey.generate_key(2048)
    return jwt.encode({"alg": "RS256", "kid": original_header["kid"], "typ": "JWT"}, claims, key,
                      algorithms=["RS256"])


# ------------------------------------------------------------------ plan modules
def test_oidcc_rp_initiated_logout(app, client, rp):
    id_token = id_token_for(client, rp)
    old_cookie = session_cookie(client)
    assert old_cookie and session_alive(client, rp)

    response = logout_get(client, id_token_hint=id_token, post_logout_redirect_uri=BYE, state="bye-state")
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.location == f"{BYE}?state=bye-state"
    assert "no-store" in response.headers.get("Cache-Control", "")
    assert session_cookie(client) is None  # the browser's cookie is cleared ...
    assert not session_alive(client, rp)
    # ... and the session is over on the server: the old cookie value no longer signs anyone in
    client.set_cookie(COOKIE, old_cookie)
    assert not session_alive(client, rp)


def test_oidcc_rp_initiated_logout_bad_post_logout_redirect_uri(app, client, rp):
    id_token = id_token_for(client, rp)
    for unregistered in ("https://attacker.example/bye", f"{BYE}/x", f"{BYE}?x=1", "https://rp.example/cb"):
        response = logout_get(client, id_token_hint=id_token, post_logout_redirect_uri=unregistered, state="s")
        assert response.status_code != 302 or not response.location.startswith(unregistered)
        assert_not_redirected_to(response, unregistered)


def test_a_post_logout_uri_registered_with_a_line_break_is_not_redirected_to(app, client, rp):
    """Registration refuses it now; one registered before (written to the row here) gets the
    signed-out page, as an unregistered one does, not a 500 after the session has ended."""
    from idp.extensions import db
    from idp.oidc.models import Client

    broken = BYE + "\r\nSet-Cookie: x=1"
    with app.app_context():
        row = db.session.get(Client, rp.client_id)
        row.post_logout_redirect_uris = [BYE, broken]
        db.session.commit()
    id_token = id_token_for(client, rp)
    response = logout_get(client, id_token_hint=id_token, post_logout_redirect_uri=broken, state="s")
    assert response.status_code == 200 and "Set-Cookie: x=1" not in str(response.headers)
    assert not session_alive(client, rp)


def test_oidcc_rp_initiated_logout_no_state(app, client, rp):
    id_token = id_token_for(client, rp)
    old_cookie = session_cookie(client)
    response = logout_get(client, id_token_hint=id_token, post_logout_redirect_uri=BYE)
    assert response.status_code == 302
    assert response.location == BYE  # nothing added: no state was sent
    assert_signed_out(client, rp, old_cookie)


def test_oidcc_rp_initiated_logout_no_post_logout_redirect_uri(app, client, rp):
    id_token = id_token_for(client, rp)
    old_cookie = session_cookie(client)
    response = logout_get(client, id_token_hint=id_token, state="s")
    assert response.status_code == 200 and "Location" not in response.headers
    assert_signed_out(client, rp, old_cookie)


def test_oidcc_rp_initiated_logout_no_params(app, client, rp):
    id_token_for(client, rp)
    old_cookie = session_cookie(client)
    page = client.get("/logout")
    csrf = confirmation_csrf(page)  # without an id_token_hint the person is asked first
    assert session_alive(client, rp)
    # the same with only a state (oidcc-rp-initiated-logout-only-state): asked, never redirected
    only_state = logout_get(client, state="only-state")
    confirmation_csrf(only_state)
    assert "Location" not in only_state.headers and session_alive(client, rp)
    # a cross-site POST without the form's CSRF token does not end the session
    forged = client.post("/logout", data={"confirm": "yes"})
    assert forged.status_code in (200, 400) and "Location" not in forged.headers
    assert session_alive(client, rp)
    confirmed = client.post("/logout", data={"confirm": "yes", "csrf_token": csrf})
    assert confirmed.status_code == 200 and "Location" not in confirmed.headers
    assert_signed_out(client, rp, old_cookie)


def test_oidcc_rp_initiated_logout_no_id_token_hint(app, client, rp):
    id_token_for(client, rp)
    old_cookie = session_cookie(client)
    page = logout_get(client, client_id=rp.client_id, post_logout_redirect_uri=BYE, state="s")
    csrf = confirmation_csrf(page)
    assert session_alive(client, rp)
    confirmed = client.post("/logout", data={"confirm": "yes", "csrf_token": csrf, "client_id": rp.client_id,
                                             "post_logout_redirect_uri": BYE, "state": "s"})
    # the OP may or may not redirect once the person confirmed; if it does, only to the registered URI
    if confirmed.status_code == 302:
        assert confirmed.location == f"{BYE}?state=s"
    else:
        assert confirmed.status_code == 200
    assert_signed_out(client, rp, old_cookie)


def test_oidcc_rp_initiated_logout_bad_id_token_hint(app, client, rp):
    id_token = id_token_for(client, rp)
    # signed by a key this provider never had, or modified after signing
    for bad in (foreign_signed(id_token), tamper(id_token, sub="someone-else"),
                tamper(id_token, aud="another-client"), id_token[:-6] + "AAAAAA", "not.a.jwt", "garbage"):
        response = logout_get(client, id_token_hint=bad, post_logout_redirect_uri=BYE, state="s")
        assert response.status_code == 400 and "Location" not in response.headers, bad
    assert session_alive(client, rp)


def test_oidcc_rp_initiated_logout_client_id_must_match_hint(app, client, rp):
    with app.app_context():
        other = make_client(name="Other", redirect_uri="https://other.example/cb",
                            post_logout_redirect_uris=["https://other.example/bye"])
    id_token = id_token_for(client, rp)
    response = logout_get(client, id_token_hint=id_token, client_id=other.client_id,
                          post_logout_redirect_uri="https://other.example/bye", state="s")
    assert response.status_code == 400 and "Location" not in response.headers
    assert session_alive(client, rp)


def test_oidcc_rp_initiated_logout_post(app, client, rp):
    id_token = id_token_for(client, rp)
    old_cookie = session_cookie(client)
    response = client.post("/logout", data={"id_token_hint": id_token, "post_logout_redirect_uri": BYE,
                                            "state": "posted"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.location == f"{BYE}?state=posted"
    assert_signed_out(client, rp, old_cookie)


def test_oidcc_rp_initiated_logout_query_with_post(app, client):
    """A registered post_logout_redirect_uri that carries a query, the logout sent by form POST
    and by GET: the query is kept and state is added to it."""
    registered = "https://rp.example/bye?from=idp"
    with app.app_context():
        make_account()
        rp = make_client(post_logout_redirect_uris=[registered])
    id_token = id_token_for(client, rp)
    old_cookie = session_cookie(client)
    response = client.post("/logout", data={"id_token_hint": id_token, "post_logout_redirect_uri": registered,
                                            "state": "q"})
    assert response.status_code == 302, response.get_data(as_text=True)
    location = urlsplit(response.location)
    assert (location.scheme, location.netloc, location.path) == ("https", "rp.example", "/bye")
    assert parse_qs(location.query) == {"from": ["idp"], "state": ["q"]}
    assert_signed_out(client, rp, old_cookie)
    # by GET as well (oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri)
    id_token = id_token_for(client, rp)
    response = logout_get(client, id_token_hint=id_token, post_logout_redirect_uri=registered, state="g")
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.location).query) == {"from": ["idp"], "state": ["g"]}
    # the registered URI without its query is a different URI: no redirect to it
    id_token = id_token_for(client, rp)
    again = logout_get(client, id_token_hint=id_token, post_logout_redirect_uri=BYE, state="q")
    assert_not_redirected_to(again, BYE)


def test_rp_initiated_logout_accepts_an_expired_id_token_hint(app, client, rp):
    id_token = id_token_for(client, rp)
    old_cookie = session_cookie(client)
    lifetime = app.config["IDP_SETTINGS"].tokens.id_token_lifetime
    with time_machine.travel(time.time() + lifetime + 60, tick=True):
        response = logout_get(client, id_token_hint=id_token, post_logout_redirect_uri=BYE, state="late")
        assert response.status_code == 302 and response.location == f"{BYE}?state=late"
        assert_signed_out(client, rp, old_cookie)


def test_rp_initiated_logout_refuses_an_access_token_as_id_token_hint(app, client, rp):
    response, verifier = authorize(client, rp)
    tokens = exchange(client, rp, query(response.location)["code"], verifier).get_json()
    answer = logout_get(client, id_token_hint=tokens["access_token"], post_logout_redirect_uri=BYE, state="s")
    # an access token (typ at+jwt) is not an ID token: not a hint that skips confirmation
    assert_not_redirected_to(answer, BYE)
    assert answer.status_code in (200, 400)
    assert session_alive(client, rp)


def test_rp_initiated_logout_hint_for_another_person_does_not_silently_end_this_session(app, client, rp):
    with app.app_context():
        make_account(email="other@centre.example")
    other_browser = app.test_client()
    others_id_token = id_token_for(other_browser, rp, email="other@centre.example")
    id_token_for(client, rp)  # this browser: eo@centre.example
    response = logout_get(client, id_token_hint=others_id_token, post_logout_redirect_uri=BYE, state="s")
    # RP-Initiated Logout 1.0 §2: a hint that does not match the current session is suspect;
    # it must not sign this person out without asking
    assert session_alive(client, rp), f"ended by another person's id_token_hint ({response.status_code})"
