"""A grant made without offline_access lives as long as the sign-in it was made in: when the person
signs out, its refresh token stops working and its access tokens are refused at UserInfo, while a
grant with offline_access keeps working, and so does the grant of the person's other session."""

from __future__ import annotations

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


def test_signing_out_everywhere_ends_offline_grants_too(app):
    with app.app_context():
        make_account()
        rp = make_client(scope="openid profile offline_access")
    browser = app.test_client()
    offline = code_flow(browser, rp, scope="openid offline_access")
    page = browser.get("/account").get_data(as_text=True)
    assert browser.post("/signout", data={"csrf_token": _csrf(page), "everywhere": "1"}).status_code == 200
    assert _refresh(browser, rp, offline) == 400 and _userinfo(browser, offline) == 401
