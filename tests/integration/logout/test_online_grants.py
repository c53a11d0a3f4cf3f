"""A grant made without offline_access lives as long as the sign-in it was made in: when the person
signs out, its refresh token stops working and its access tokens are refused at UserInfo, while a
grant with offline_access keeps working, and so does the grant of the person's other session."""

from __future__ import annotations

import base64

from tests.support import _csrf, code_flow, make_account, make_client, token_request


def _sign_out(http) -> None:
    page = http.get("/signout").get_data(as_text=True)
    assert http.post("/signout", data={"csrf_token": _csrf(page)}).status_code == 200


def _refresh(http, rp, tokens) -> int:
    return token_request(http, rp, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).status_code


def _userinfo(http, tokens) -> int:
    return http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code


def test_signing_out_ends_the_grants_of_that_session_that_are_not_offline(app):
    with app.app_context():
        make_account()
        rp = make_client(scope="openid profile offline_access")
    browser, other_browser = app.test_client(), app.test_client()
    online = code_flow(browser, rp, scope="openid profile")
    offline = code_flow(browser, rp, scope="openid profile offline_access")
    elsewhere = code_flow(other_browser, rp, scope="openid profile")  # the same person, another sign-in
    assert _userinfo(browser, online) == 200

    _sign_out(browser)

    assert _userinfo(browser, online) == 401
    refused = token_request(browser, rp, {"grant_type": "refresh_token", "refresh_token": online["refresh_token"]})
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert _refresh(browser, rp, offline) == 200 and _userinfo(browser, offline) == 200
    assert _refresh(other_browser, rp, elsewhere) == 200 and _userinfo(other_browser, elsewhere) == 200
    with app.app_context():
        from sqlalchemy import select

        from idp.audit import AuditEvent
        from idp.extensions import db

        ended = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "token.grant_revoked")).all()
        assert [(e.details["reason"], e.details["client_id"]) for e in ended] == [("session ended", rp.client_id)]
        assert ended[0].subject is not None


def test_signing_out_stops_the_access_tokens_of_a_grant_with_no_refresh_token(app):
    """Raised in the fix of an outside probe's findings: a service registered without the
    refresh_token grant type gets an access token alone, and its grant was known only through
    refresh-token rows: at sign-out nothing marked it, and the token went on working at UserInfo
    and introspection for the rest of its life (10 minutes). The session's end now stops every
    access token issued in it for a grant without offline_access; one with offline_access, and
    the same service's token from the person's other sign-in, go on working."""
    with app.app_context():
        make_account()
        rp = make_client(scope="openid profile offline_access", grant_types=["authorization_code"])
    browser, other_browser = app.test_client(), app.test_client()
    online = code_flow(browser, rp, scope="openid profile")
    offline = code_flow(browser, rp, scope="openid profile offline_access")
    elsewhere = code_flow(other_browser, rp, scope="openid profile")
    assert "refresh_token" not in online and _userinfo(browser, online) == 200

    _sign_out(browser)

    assert _userinfo(browser, online) == 401
    assert _introspect(browser, rp, online) is False
    assert _userinfo(browser, offline) == 200 and _introspect(browser, rp, offline) is True
    assert _userinfo(other_browser, elsewhere) == 200


def test_a_narrowed_token_of_an_offline_grant_outlives_the_sign_in(app):
    """Found by an outside probe: an offline grant refreshed with a narrower scope (RFC 6749 §6)
    while the person is signed in gives an access token without offline_access in its scope; when
    the person signed out, the session's marker stopped it, though its grant lives on. The marker
    names the session's offline grants, and spares their tokens."""
    with app.app_context():
        make_account()
        rp = make_client(scope="openid profile offline_access")
    browser = app.test_client()
    offline = code_flow(browser, rp, scope="openid profile offline_access")
    narrowed = token_request(browser, rp, {"grant_type": "refresh_token", "refresh_token": offline["refresh_token"],
                                           "scope": "openid profile"}).get_json()
    assert narrowed["scope"] == "openid profile"
    online = code_flow(browser, rp, scope="openid profile")

    _sign_out(browser)

    assert _userinfo(browser, narrowed) == 200 and _introspect(browser, rp, narrowed) is True
    assert _userinfo(browser, online) == 401


def _introspect(http, rp, tokens) -> bool:
    answer = http.post("/introspect", data={"token": tokens["access_token"]}, headers={
        "Authorization": "Basic " + base64.b64encode(f"{rp.client_id}:{rp.client_secret}".encode()).decode()})
    assert answer.status_code == 200
    return answer.get_json()["active"]


def test_signing_out_everywhere_ends_offline_grants_too(app):
    with app.app_context():
        make_account()
        rp = make_client(scope="openid profile offline_access")
    browser = app.test_client()
    offline = code_flow(browser, rp, scope="openid offline_access")
    page = browser.get("/account").get_data(as_text=True)
    assert browser.post("/signout", data={"csrf_token": _csrf(page), "everywhere": "1"}).status_code == 200
    assert _refresh(browser, rp, offline) == 400 and _userinfo(browser, offline) == 401


def test_an_online_grant_ends_when_its_sign_in_reaches_its_time_limit(app):
    """Nobody signed out, but the sign-in is older than [session] absolute_timeout_seconds: the
    online grant refreshes no more; an offline one does."""
    from datetime import timedelta

    from sqlalchemy import update

    from idp import policy
    from idp.accounts.models import SsoSession
    from idp.clock import utcnow
    from idp.extensions import db

    with app.app_context():
        make_account()
        rp = make_client(scope="openid profile offline_access")
    browser = app.test_client()
    online = code_flow(browser, rp, scope="openid profile")
    offline = code_flow(browser, rp, scope="openid offline_access")
    refreshed = token_request(browser, rp, {"grant_type": "refresh_token", "refresh_token": online["refresh_token"]})
    assert refreshed.status_code == 200
    online = refreshed.get_json()
    with app.app_context():
        limit = policy.current().sec("session").absolute_timeout_seconds
        db.session.execute(update(SsoSession).values(created_at=utcnow() - timedelta(seconds=limit + 60)))
        db.session.commit()
    assert _refresh(browser, rp, online) == 400
    assert _refresh(browser, rp, offline) == 200


def test_a_narrowed_refresh_keeps_the_grant_s_scope_for_the_next_one(app):
    """RFC 6749 §6: the new refresh token has the scope of the one presented, whatever the access
    token was narrowed to; so narrowing once does not make an offline grant online."""
    with app.app_context():
        make_account()
        rp = make_client(scope="openid profile offline_access")
    browser = app.test_client()
    offline = code_flow(browser, rp, scope="openid profile offline_access")
    narrowed = token_request(browser, rp, {"grant_type": "refresh_token", "refresh_token": offline["refresh_token"],
                                           "scope": "openid"})
    assert narrowed.status_code == 200 and narrowed.get_json()["scope"] == "openid"
    _sign_out(browser)
    again = token_request(browser, rp, {"grant_type": "refresh_token",
                                        "refresh_token": narrowed.get_json()["refresh_token"]})
    assert again.status_code == 200, again.get_json()
    assert set(again.get_json()["scope"].split()) == {"openid", "profile", "offline_access"}


def test_a_grant_whose_client_lost_offline_access_ends_with_its_sign_in(app):
    """offline_access taken from the client's registration is taken from its grants at their next
    refresh: from then on the grant lives as long as its sign-in, as one made without it does."""
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
    refreshed = token_request(browser, rp, {"grant_type": "refresh_token", "refresh_token": offline["refresh_token"]})
    assert refreshed.status_code == 200 and refreshed.get_json()["scope"] == "openid profile"
    _sign_out(browser)
    assert _refresh(browser, rp, refreshed.get_json()) == 400
