"""The sign-in journey in real Chromium (Debian's package, driven by Playwright), with Chromium's own
virtual WebAuthn authenticator: set up a passkey at the first sign-in, then sign in with it. This is
what exercises static/webauthn.js, the CSP and the pages as a browser sees them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.browser.journey import authorize_url, password_steps
from tests.support import make_account, make_client


class _Authenticator:
    """Chromium's virtual authenticator. With presence simulated it answers every request at once,
    the passkey autofill of the email page (conditional mediation) included, as a person picking
    the passkey offered would; ``present(False)`` leaves requests waiting, as a person who ignores
    the offer does."""

    def __init__(self, page) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable")
        self.id = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
            "isUserVerified": True, "automaticPresenceSimulation": True}})["authenticatorId"]

    def present(self, yes: bool) -> None:
        self.cdp.send("WebAuthn.setAutomaticPresenceSimulation", {"authenticatorId": self.id, "enabled": yes})


def _open_with_passkey_support(browser):
    context = browser.new_context()
    context.set_default_timeout(30_000)  # CI shares two cores with the rest of the suite
    page = context.new_page()
    return context, page, _Authenticator(page)


def _until_redirect(page, redirect_uri: str, action) -> dict:
    """Run ``action`` and return the query of the browser's request to the client's redirect URI.
    (Observed as it starts: route handlers do not see requests reached through a redirect.)"""
    with page.expect_request(lambda request: request.url.startswith(redirect_uri), timeout=30_000) as seen:
        action()
    page.wait_for_url(redirect_uri + "*")
    return {k: v[0] for k, v in parse_qs(urlsplit(seen.value.url).query).items()}


def test_first_sign_in_sets_up_a_passkey_then_signs_in_with_it(live, browser):
    app, issuer = live
    with app.app_context():
        make_account(email="browser@centre.example", mfa=False)
        # a redirect URI the browser can load (the provider's own 404 page): no network needed
        rp = make_client(redirect_uri=f"{issuer}/rp-callback")

    context, page, authenticator = _open_with_passkey_support(browser)
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(authorize_url(issuer, rp))
    password_steps(page, "browser@centre.example")
    assert page.url.endswith("/signin/mfa/setup")
    page.click("text=Passkey or security key")
    page.fill("#label", "Virtual key")
    page.click("button[type=submit]")  # webauthn.js asks the (virtual) authenticator, then submits
    page.wait_for_url("**/signin/mfa/recovery-codes")
    assert len(page.locator("ul.codes li").all()) == 10
    params = _until_redirect(page, rp.redirect_uri, lambda: page.click("button[type=submit]"))
    assert params["state"] == "browser-state" and params["code"] and params["iss"] == issuer
    assert not [e for e in errors if "Content Security Policy" in e], errors

    # sign in again (prompt=login) on the same device, ignoring the passkey the email page offers:
    # the passkey answers the challenge after the password
    authenticator.present(False)
    page.goto(authorize_url(issuer, rp) + "&prompt=login")
    password_steps(page, "browser@centre.example")
    assert page.url.endswith("/signin/mfa")
    authenticator.present(True)
    params = _until_redirect(page, rp.redirect_uri, lambda: page.click("text=Use your passkey or security key"))
    assert params["code"] and params["state"] == "browser-state"
    with app.app_context():
        from idp.accounts.models import Account
        from idp.extensions import db
        from idp.mfa.models import MfaMethod

        account = db.session.query(Account).filter_by(email_key="browser@centre.example").one()
        method = db.session.query(MfaMethod).filter_by(account_id=account.id, kind="webauthn").one()
        assert method.label == "Virtual key" and method.last_used_at is not None
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()


def test_sign_in_with_a_passkey_alone(live, browser):
    """Passkey-first: after setting one up, "Sign in with a passkey" on the email page signs in with
    it alone (Chromium's virtual authenticator keeps it as a discoverable credential and verifies
    the user), through static/webauthn.js under the page's CSP."""
    app, issuer = live
    with app.app_context():
        make_account(email="first@centre.example", mfa=False)
        rp = make_client(redirect_uri=f"{issuer}/rp-callback")

    context, page, authenticator = _open_with_passkey_support(browser)
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(authorize_url(issuer, rp))
    password_steps(page, "first@centre.example")
    page.click("text=Passkey or security key")
    page.fill("#label", "Virtual key")
    page.click("button[type=submit]")
    page.wait_for_url("**/signin/mfa/recovery-codes")
    _until_redirect(page, rp.redirect_uri, lambda: page.click("button[type=submit]"))

    # the button, the offer in the address's autofill left unanswered
    authenticator.present(False)
    page.goto(authorize_url(issuer, rp, prompt="login"))
    assert page.locator("#email").get_attribute("autocomplete") == "username webauthn"
    authenticator.present(True)
    params = _until_redirect(page, rp.redirect_uri, lambda: page.click("#passkey-start"))
    assert params["code"] and params["state"] == "browser-state"

    # the autofill (conditional mediation): picking the passkey offered signs in, no button pressed
    params = _until_redirect(page, rp.redirect_uri, lambda: page.goto(authorize_url(issuer, rp, prompt="login")))
    assert params["code"] and params["state"] == "browser-state"
    with app.app_context():
        from idp.accounts.models import SsoSession
        from idp.extensions import db

        latest = db.session.query(SsoSession).order_by(SsoSession.created_at.desc()).first()
        assert "pwd" not in latest.amr and "mfa" in latest.amr
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()
