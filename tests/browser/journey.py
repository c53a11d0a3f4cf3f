"""Steps of the sign-in journey that browser tests share."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.support import PASSWORD, pkce_pair


def authorize_url(issuer, rp, **extra) -> str:
    _, challenge = pkce_pair()
    return issuer + "/authorize?" + urlencode({
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "scope": "openid",
        "state": "browser-state", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256",
        **extra})


def password_steps(page, email):
    page.fill("#email", email)
    page.click("button[type=submit]")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
