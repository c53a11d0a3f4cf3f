"""Every page a person meets signing in, setting up a second factor, answering one, resetting a
password and using My account, in real Chromium on a laptop and on a phone, in English and Welsh:
each is free of the WCAG 2.2 A/AA problems axe-core finds, fits the screen's width (no sideways
scrolling at 390 px: WCAG 1.4.10), is in the chosen language, and runs its scripts without a CSP
violation or a JavaScript error. Pages are also seen with their errors: the error summary is
focused after a failed submit and links to the field it is about.

Set IDP_TEST_SCREENSHOTS to a folder to keep a screenshot of every page seen."""

from __future__ import annotations

import os
from pathlib import Path

import pyotp
import pytest

from tests.browser.a11y import SCREEN_LANGUAGES, SCREENS, assert_accessible
from tests.support import PASSWORD, add_passkey, add_totp, make_account

NEWCOMER = "new.person@centre.example"
EO = "eo@centre.example"
NEW_PASSWORD = "Lantern-orchard-quietly-42"
PHONE = "+447700900123"


class Visit:
    """One person's browser at one screen width and language, checking each page it reaches."""

    def __init__(self, page, issuer: str, width: int, lang: str, shots: Path | None) -> None:
        self.page, self.issuer, self.width, self.lang, self.shots = page, issuer, width, lang, shots
        self.seen: list[str] = []
        self.problems: list[str] = []
        # a page answered 400 (a form with errors) is reported as a failed load: only its scripts,
        # styles and images count here, and every other error (CSP, JavaScript)
        page.on("console", lambda m: self.problems.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.on("pageerror", lambda e: self.problems.append(str(e)))
        page.on("response", lambda r: self.problems.append(f"{r.status} {r.url}")
                if r.status >= 400 and r.request.resource_type != "document" else None)

    def goto(self, path: str, name: str):
        self.page.goto(self.issuer + path)
        self.check(name)

    def submit(self, name: str, selector: str = "main button[type=submit]"):
        self.page.click(selector)
        self.page.wait_for_load_state()
        self.check(name)

    def check(self, name: str) -> None:
        page = self.page
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == self.lang, name
        # GOV.UK Frontend's JavaScript ran (the body classes come from static/js-enabled.js)
        assert "govuk-frontend-supported" in (page.locator("body").get_attribute("class") or ""), name
        assert_accessible(page, f"{name} ({self.width} px, {self.lang})")
        assert page.evaluate("document.documentElement.scrollWidth") <= self.width, f"{name}: wider than the screen"
        if self.shots:
            page.screenshot(path=str(self.shots / f"{len(self.seen):02d}-{name}-{self.width}-{self.lang}.png"),
                            full_page=True)
        self.seen.append(name)

    def assert_error_summary_leads_to(self, field_id: str) -> None:
        """After a failed submit the error summary has the focus, and its link leads to the field."""
        page = self.page
        page.wait_for_function("document.activeElement && document.activeElement.matches('.govuk-error-summary')")
        link = page.locator(f".govuk-error-summary__list a[href='#{field_id}']").first
        assert link.is_visible()
        link.click()
        page.wait_for_function(f"document.activeElement && document.activeElement.id === {field_id!r}")
        described = page.locator(f"#{field_id}").get_attribute("aria-describedby") or ""
        assert f"{field_id}-error" in described.split(), described


@pytest.fixture
def shots(tmp_path):
    folder = os.environ.get("IDP_TEST_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _people(app):
    from idp.extensions import db
    from idp.mfa.models import MfaMethod

    with app.app_context():
        make_account(NEWCOMER, mfa=False, password_is_temporary=True, given_name="Newydd",
                     family_name="Person")
        eo = make_account(EO, mfa=False, given_name="Siân", family_name="Jones")
        add_passkey(eo)
        secret = add_totp(eo, label="")  # preferred: the challenge opens on it
        db.session.add(MfaMethod(account_id=eo.id, kind="sms", phone=PHONE))
        db.session.add(MfaMethod(account_id=eo.id, kind="email"))
        db.session.commit()
        methods = {m.kind: m.id for m in db.session.query(MfaMethod).filter_by(account_id=eo.id)}
    return secret, methods


@pytest.mark.parametrize("width, lang", SCREEN_LANGUAGES)
def test_every_page_of_the_journey_and_my_account_is_accessible(live, browser, shots, width, lang):
    app, issuer = live
    eo_secret, eo_methods = _people(app)
    context = browser.new_context(**SCREENS[width])
    context.set_default_timeout(30_000)  # CI shares two cores with the rest of the suite
    visit = Visit(context.new_page(), issuer, width, lang, shots)
    page = visit.page

    # ---- a first sign-in: temporary password, new password, second-factor set-up
    visit.goto(f"/signin?ui_locales={lang}", "signin-email")
    visit.submit("signin-email-error")
    visit.assert_error_summary_leads_to("email")
    page.fill("#email", NEWCOMER)
    visit.submit("signin-password")
    page.fill("#password", "not-the-password")
    visit.submit("signin-password-error")
    visit.assert_error_summary_leads_to("password")
    page.fill("#password", PASSWORD)
    visit.submit("new-password")
    page.fill("#password", "short")
    visit.submit("new-password-error")
    visit.assert_error_summary_leads_to("password")
    page.fill("#password", NEW_PASSWORD)
    visit.submit("mfa-choose")
    assert page.url.endswith("/signin/mfa/setup")

    visit.goto("/signin/mfa/setup/webauthn", "setup-passkey")
    visit.goto("/signin/mfa/setup/sms", "setup-sms")
    page.fill("#phone", PHONE)
    visit.submit("setup-sms-sent", "main button[value=send]")
    page.fill("#code", "000000")
    visit.submit("setup-sms-wrong-code", "main button[value=confirm]")
    visit.assert_error_summary_leads_to("code")
    visit.goto("/signin/mfa/setup/email", "setup-email")
    visit.submit("setup-email-sent", "main button[value=send]")
    visit.goto("/signin/mfa/setup/totp", "setup-app")
    page.fill("#code", "000000")
    visit.submit("setup-app-wrong-code")
    visit.assert_error_summary_leads_to("code")
    secret = page.locator("code.secret").inner_text().strip()
    page.fill("#code", pyotp.TOTP(secret).now())
    visit.submit("recovery-codes")
    visit.submit("account")  # "I have saved my codes"
    assert page.url.endswith("/account")

    # ---- My account
    visit.goto("/account/profile", "profile")
    page.fill("#given_name", "")
    visit.submit("profile-error")
    visit.assert_error_summary_leads_to("given_name")
    page.fill("#given_name", "Newydd")
    visit.submit("account-details-saved")
    assert page.locator(".govuk-notification-banner").is_visible()
    visit.goto("/account/password", "change-password")
    visit.submit("change-password-error")
    visit.assert_error_summary_leads_to("current")
    visit.goto("/account/mfa", "sign-in-methods")
    visit.goto("/account/mfa/add", "add-method")
    visit.goto("/account/mfa/add/totp", "add-app")
    visit.goto("/account/mfa", "sign-in-methods-again")
    visit.submit("new-recovery-codes", "main button[value=regenerate]")
    visit.goto("/account/mfa/verify", "confirm-it-is-you")
    visit.goto("/account", "account-again")
    # signing out from the header; on a phone its links are behind GOV.UK's menu button
    header_sign_out = page.locator("header form[action$='/signout'] button")
    if width < 640:
        assert not header_sign_out.is_visible()
        page.click(".govuk-service-navigation__toggle")
        visit.check("account-menu-open")
    header_sign_out.click()
    page.wait_for_load_state()
    visit.check("signed-out")
    assert page.url.endswith("/signout")

    # ---- signing in with a second factor: each way of answering
    visit.goto("/signin", "signin-again")
    page.fill("#email", EO)
    visit.submit("signin-password-again")
    page.fill("#password", PASSWORD)
    visit.submit("challenge-app")
    assert page.url.endswith("/signin/mfa")
    page.fill("#code", "000000")
    visit.submit("challenge-app-wrong-code")
    visit.assert_error_summary_leads_to("code")
    visit.goto(f"/signin/mfa?method={eo_methods['sms']}", "challenge-sms")
    visit.submit("challenge-sms-sent", "main button[value=send]")
    visit.goto(f"/signin/mfa?method={eo_methods['email']}", "challenge-email")
    visit.goto("/signin/mfa?method=webauthn", "challenge-passkey")
    visit.goto("/signin/mfa?method=recovery", "challenge-recovery-code")
    visit.goto(f"/signin/mfa?method={eo_methods['totp']}", "challenge-app-again")
    page.fill("#code", pyotp.TOTP(eo_secret).now())
    visit.submit("account-eo")
    assert page.url.endswith("/account")
    visit.goto("/logout", "logout-confirm")
    visit.submit("signed-out-by-logout")

    # ---- a forgotten password, and a broken sign-in link
    visit.goto("/forgot", "forgot")
    page.fill("#email", "")
    visit.submit("forgot-error")
    visit.assert_error_summary_leads_to("email")
    page.fill("#email", EO)
    visit.submit("reset")
    page.fill("#code", "1")
    visit.submit("reset-error")
    visit.assert_error_summary_leads_to("code")
    visit.goto("/authorize?client_id=no-such-client&response_type=code", "sign-in-link-error")

    assert not visit.problems, visit.problems
    context.close()
