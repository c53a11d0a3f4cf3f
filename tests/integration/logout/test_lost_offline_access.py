"""A grant whose client has lost offline_access lives as its sign-in from then on, refreshed since or
not (found by an outside probe: at sign-out its row still said offline_access, and its tokens
were spared)."""

from __future__ import annotations

import base64

from tests.support import _csrf, code_flow, make_account, make_client, token_request


def _sign_out(http) -> None:
    page = http.get("/signout").get_data(as_text=True)
    assert http.post("/signout", data={"csrf_token": _csrf(page)}).status_code == 200


def _userinfo(http, tokens) -> int:
    return http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code


def _introspect(http, rp, tokens) -> bool:
    answer = http.post("/introspect", data={"token": tokens["access_token"]}, headers={
        "Authorization": "Basic " + base64.b64encode(f"{rp.client_id}:{rp.client_secret}".encode()).decode()})
    assert answer.status_code == 200
    return answer.get_json()["active"]


def test_a_grant_whose_client_lost_offline_access_stops_at_sign_out_without_a_refresh_first(app):
    """Attack: a service holds an offline_access grant; the board takes offline_access from the
    service's registration; the person signs out before the service has refreshed. The grant's
    refresh-token row still says offline_access, so the session's end counts the grant as offline
    (its row is not revoked, and the revoked:sid marker names it as a grant to spare), and its
    access token, whose scope still says offline_access, is never checked against the session's
    marker at all.

    Should: docs/security.md ("Codes and refresh tokens"): "A grant that lost `offline_access`
    lives as long as its sign-in from then on", and "when the person signs out ... the grants made
    through that session end with it (refresh tokens in the database, access tokens through the
    store markers)". The access token must be refused at UserInfo and inactive at introspection
    once the person has signed out. Happens: it goes on working (for up to the access token's
    lifetime), as a grant with offline_access would."""
    from idp.oidc import clients

    with app.app_context():
        make_account()
        rp = make_client(scope="openid profile offline_access")
    browser = app.test_client()
    offline = code_flow(browser, rp, scope="openid profile offline_access")
    with app.app_context():
        current = clients.describe(clients.get(rp.client_id))
        clients.update(rp.client_id, {**{k: current[k] for k in ("client_name", "redirect_uris", "grant_types")},
                                      "scope": "openid profile"}, actor="board", pepper=app.extensions["idp.pepper"])
    assert _userinfo(browser, offline) == 200

    _sign_out(browser)

    refused = token_request(browser, rp, {"grant_type": "refresh_token", "refresh_token": offline["refresh_token"]})
    assert refused.status_code == 400  # the refresh already knows the grant lives as its sign-in
    assert (_userinfo(browser, offline), _introspect(browser, rp, offline)) == (401, False)
